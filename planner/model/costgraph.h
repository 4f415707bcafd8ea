/* costgraph.h: what the planner optimises over, independent of where it came from.
 *
 * Both a model YAML (with its profile or estimate) and a PipeDream graph.txt become a cost graph:
 * nodes in topological order (every edge goes from a lower to a higher index), each with its
 * forward and backward time per minibatch, the bytes of its output tensor per minibatch, and its
 * parameter bytes. The DP, the integer program, the simulator and the brute-force tests read
 * only this.
 */
#ifndef PD_COSTGRAPH_H
#define PD_COSTGRAPH_H

typedef struct {
    int n;               /* nodes, topologically ordered */
    char **name;         /* n names (owned) */
    double *fwd_ms;      /* n, per minibatch */
    double *bwd_ms;      /* n, per minibatch */
    double *act_bytes;   /* n, bytes of the node's output per minibatch */
    double *param_bytes; /* n */
    int n_edges;
    int *src, *dst;      /* n_edges; src < dst */
    double input_bytes;  /* bytes of one minibatch of model input (0 if unknown) */
    double input_ms;     /* data loading time per minibatch, if known (graph.txt Input node) */
    double optim_buffers; /* parameter-sized optimizer buffers a stage holds: 0 plain SGD, 1 SGD
                             with momentum (its velocity), 2 Adam and AdamW (their moments);
                             pd_costgraph_new sets 1 (a graph.txt names no optimizer: PipeDream
                             trained with momentum SGD) */
} pd_costgraph;

/* Allocates a graph with n nodes and room for max_edges edges (all zero). Returns NULL on OOM. */
pd_costgraph *pd_costgraph_new(int n, int max_edges);
void pd_costgraph_free(pd_costgraph *g);

#endif
