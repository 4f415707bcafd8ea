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
    /* What the CPU runtime's activation blob holds per node and minibatch, for the memory of
     * recomputation (pd_node_stored_bytes, pd_node_recomputed; NULL, as from a graph.txt:
     * act_bytes, and every node kept under selective recomputation): */
    double *stored_bytes;          /* its output (none for an aliasing op) and saved state */
    unsigned char *selective_keeps; /* 1: selective recomputation keeps it (linear, conv2d,
                                      lstm), 0: recomputes it */
} pd_costgraph;

/* Bytes node v keeps per minibatch for its backward, as the runtime allocates them: its
 * stored_bytes where the graph has them (a model), else its output (a graph.txt). What every
 * memory count (the DP's, the certificate's, the simulator's) sums. */
static inline double pd_node_stored_bytes(const pd_costgraph *g, int v) {
    return g->stored_bytes ? g->stored_bytes[v] : g->act_bytes[v];
}


/* A stage's activation recomputation (pd_stage.recompute; the generated stage's .recompute). */
typedef enum { PD_RECOMPUTE_NONE = 0, PD_RECOMPUTE_FULL = 1, PD_RECOMPUTE_SELECTIVE = 2 } pd_recompute_mode;

/* Whether recomputation `mode` runs node v's forward again before a backward: every node under
 * full; under selective the nodes whose op does not keep its output (selective_keeps; a graph
 * without them, a graph.txt, keeps every node). What a selective stage keeps per minibatch is
 * the rest (planner/cost/memory.c), what it recomputes these (pd_stage_recompute_ms, and the
 * DP's pd_recompute_graph). */
static inline int pd_node_recomputed(const pd_costgraph *g, int v, int mode) {
    return mode == PD_RECOMPUTE_FULL ||
           (mode == PD_RECOMPUTE_SELECTIVE && g->selective_keeps && !g->selective_keeps[v]);
}

/* The forward time recomputation `mode` runs again for a stage of nodes[0..n) (0 under none). */
double pd_stage_recompute_ms(const pd_costgraph *g, const int *nodes, int n, int mode);

/* Allocates a graph with n nodes and room for max_edges edges (all zero). Returns NULL on OOM. */
pd_costgraph *pd_costgraph_new(int n, int max_edges);
void pd_costgraph_free(pd_costgraph *g);

#endif
