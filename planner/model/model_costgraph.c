/* model_costgraph.c: the cost graph of a resolved model (nodes = layers without the input), and
 * allocation of cost graphs in general. */
#include <stdlib.h>
#include <string.h>

#include "costs.h"

pd_costgraph *pd_costgraph_new(int n, int max_edges) {
    if (n < 0 || max_edges < 0) return NULL;
    pd_costgraph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    size_t nn = n > 0 ? (size_t)n : 1, ne = max_edges > 0 ? (size_t)max_edges : 1;
    g->n = n;
    g->optim_buffers = 1;
    g->name = calloc(nn, sizeof *g->name);
    g->fwd_ms = calloc(nn, sizeof(double));
    g->bwd_ms = calloc(nn, sizeof(double));
    g->act_bytes = calloc(nn, sizeof(double));
    g->param_bytes = calloc(nn, sizeof(double));
    g->src = calloc(ne, sizeof(int));
    g->dst = calloc(ne, sizeof(int));
    if (!g->name || !g->fwd_ms || !g->bwd_ms || !g->act_bytes || !g->param_bytes || !g->src ||
        !g->dst) {
        pd_costgraph_free(g);
        return NULL;
    }
    return g;
}

void pd_costgraph_free(pd_costgraph *g) {
    if (!g) return;
    if (g->name)
        for (int i = 0; i < g->n; i++) free(g->name[i]);
    free(g->name);
    free(g->fwd_ms);
    free(g->bwd_ms);
    free(g->act_bytes);
    free(g->param_bytes);
    free(g->stored_bytes);
    free(g->selective_keeps);
    free(g->src);
    free(g->dst);
    free(g);
}

pd_costgraph *pd_model_costgraph(const pd_model *m) {
    if (!m || m->n_layers < 1) return NULL;
    int max_edges = 0;
    for (int i = 1; i < m->n_layers; i++) max_edges += m->layers[i].n_inputs;
    pd_costgraph *g = pd_costgraph_new(m->n_layers - 1, max_edges);
    if (!g) return NULL;
    double batch = (double)m->batch;
    g->stored_bytes = calloc((size_t)g->n, sizeof(double));
    g->selective_keeps = calloc((size_t)g->n, 1);
    if (!g->stored_bytes || !g->selective_keeps) {
        pd_costgraph_free(g);
        return NULL;
    }
    g->input_bytes = 4.0 * batch * (double)pd_shape_numel(&m->input);
    /* what runtime/optim.c allocates beside the parameters (pd_optim_state_floats) */
    g->optim_buffers = m->optimizer == PD_OPT_ADAM || m->optimizer == PD_OPT_ADAMW ? 2
                       : m->momentum != 0                                          ? 1
                                                                                   : 0;
    for (int i = 1; i < m->n_layers; i++) {
        const pd_layer *L = &m->layers[i];
        int v = i - 1;
        g->name[v] = strdup(L->name);
        if (!g->name[v]) {
            pd_costgraph_free(g);
            return NULL;
        }
        g->fwd_ms[v] = L->fwd_ms;
        g->bwd_ms[v] = L->bwd_ms;
        g->act_bytes[v] = 4.0 * batch * (double)pd_shape_numel(&L->out);
        g->stored_bytes[v] = (L->aliases_input ? 0 : g->act_bytes[v]) + 4.0 * (double)L->saved_floats;
        g->selective_keeps[v] = (unsigned char)L->selective_keeps;
        g->param_bytes[v] = 4.0 * (double)(L->n_weight + L->n_bias);
        int first = g->n_edges; /* this node's in-edges start here */
        for (int k = 0; k < L->n_inputs; k++) {
            int u = L->inputs[k];
            if (u == 0) continue; /* the model input is not a node */
            int dup = 0;          /* add(x, x) is one tensor crossing, one edge */
            for (int e = first; e < g->n_edges; e++)
                if (g->src[e] == u - 1 && g->dst[e] == v) dup = 1;
            if (dup) continue;
            g->src[g->n_edges] = u - 1;
            g->dst[g->n_edges] = v;
            g->n_edges++;
        }
    }
    return g;
}

double pd_stage_recompute_ms(const pd_costgraph *g, const int *nodes, int n, int mode) {
    double again = 0;
    for (int i = 0; i < n; i++)
        if (pd_node_recomputed(g, nodes[i], mode)) again += g->fwd_ms[nodes[i]];
    return again;
}
