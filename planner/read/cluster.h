/* cluster.h: the workers the planner may use.
 *
 * Levels are innermost first, as PipeDream's -n/-b: level 0 is e.g. GPUs in a server, level 1
 * servers in a rack. count[l] is the number of units of level l-1 in one unit of level l (for
 * level 0, workers per unit). The total number of workers is the product of the counts.
 * bandwidth[l] is in bytes/s between units at that level.
 */
#ifndef PD_CLUSTER_H
#define PD_CLUSTER_H

#define PD_MAX_LEVELS 8
/* The most workers pdplan plans for, all levels together: the one limit of -n and cluster files,
 * reported in every case as "at most 1000000 workers in all". */
#define PD_MAX_WORKERS 1000000

typedef struct {
    char name[64];
    int n_levels;
    int count[PD_MAX_LEVELS];
    double bandwidth[PD_MAX_LEVELS]; /* bytes/s */
    double memory_bytes;             /* per worker; 0 = no limit */
    char device[64];                 /* device name for analytic estimates, e.g. "cpu", "h200" */
} pd_cluster;

int pd_cluster_workers(const pd_cluster *c);

#endif
