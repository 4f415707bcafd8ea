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

/* The memory model the planner checks the limit under (planner/cost/memory.h computes it): the
 * schedule the plan will run, its minibatches per batch and recomputation. All zero: 1f1b
 * without recomputation, PipeDream's. pdplan sets it with --schedule, --microbatches and
 * --recompute; the DP, the certificate and every stage price read it from here. */
enum { PD_MEM_1F1B = 0, PD_MEM_2BW, PD_MEM_FLUSH, PD_MEM_GPIPE, PD_MEM_ZB_H1, PD_MEM_ZB_H2 };
typedef struct {
    int schedule;     /* PD_MEM_1F1B, ... */
    int microbatches; /* minibatches per batch (flush, gpipe, zb-h1, zb-h2); <= 0: no bound */
    int recompute;    /* 0 none, 1 full (only the stage's input kept per minibatch in flight) */
    int max_warmup;   /* zb-h1, zb-h2: an upper bound on the largest warm-up of the pipeline */
} pd_mem_model;

typedef struct {
    char name[64];
    int n_levels;
    int count[PD_MAX_LEVELS];
    double bandwidth[PD_MAX_LEVELS]; /* bytes/s */
    double memory_bytes;             /* per worker; 0 = no limit */
    pd_mem_model mem;                /* how a stage's memory is counted against memory_bytes */
    char device[64];                 /* device name for analytic estimates, e.g. "cpu", "h200" */
} pd_cluster;

int pd_cluster_workers(const pd_cluster *c);

#endif
