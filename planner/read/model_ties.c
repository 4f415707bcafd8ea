/* model_ties.c: resolves `tie: NAME` (docs/formats.md, "Tied weights") after shape inference: the
 * layer's weight becomes the weight of the earlier layer NAME, one logical tensor. A tie names an
 * earlier layer other than itself, whose weight has the same size and layout (a matrix of the
 * same rows: linear's out_features, embedding's vocabulary, conv2d's out_channels; the same
 * floats), that is not itself tied (no chains) and that no other layer ties to. Every problem is
 * a file:line:col diagnostic at the tie. */
#include <string.h>

#include "frontend.h"
#include "planner/ops/op.h"

/* The layer's weight as a tie sees it: its floats and rows; 0 when it has no tieable weight (a
 * matrix its op marks as decaying). */
static int64_t weight_of(const pd_layer *L, int64_t *rows) {
    pd_tensor t[PD_MAX_OP_TENSORS];
    int n = pd_op_tensors(L, t);
    *rows = L->num_embeddings ? L->num_embeddings
                              : (L->out_features ? L->out_features : L->out_channels);
    if (n < 1 || strcmp(t[0].name, "weight") || !t[0].decays || t[0].buffer || *rows <= 0)
        return 0;
    return t[0].floats;
}

int pd_resolve_ties(pd_model *m, const char *file, pd_diag *d) {
    int e = 0;
    for (int i = 1; i < m->n_layers; i++) {
        pd_layer *L = &m->layers[i];
        if (!L->tie[0]) continue;
        int j = 1;
        while (j < m->n_layers && strcmp(m->layers[j].name, L->tie)) j++;
        const char *f = file;
        int ln = L->tie_line, col = L->tie_col;
        if (j == m->n_layers) {
            pd_diag_error(d, f, ln, col, "layer '%s': tie to unknown layer '%s'", L->name, L->tie);
            e++;
            continue;
        }
        pd_layer *O = &m->layers[j];
        int64_t rl, ro, wl = weight_of(L, &rl), wo = weight_of(O, &ro);
        if (j == i) {
            pd_diag_error(d, f, ln, col, "layer '%s' ties its weight to itself", L->name);
            e++;
        } else if (j > i) {
            pd_diag_error(d, f, ln, col, "layer '%s' ties to '%s', which comes later: the tie "
                          "goes on the later layer, naming the earlier one (its owner)",
                          L->name, O->name);
            e++;
        } else if (O->tie[0]) {
            pd_diag_error(d, f, ln, col, "layer '%s' ties to '%s', which is itself tied to '%s': "
                          "no chains, tie to '%s'", L->name, O->name, O->tie, O->tie);
            e++;
        } else if (!wl || !wo) {
            pd_diag_error(d, f, ln, col, "layer '%s' ties to '%s', but %s has no weight matrix "
                          "to tie", L->name, O->name, !wl ? "the layer" : "that layer");
            e++;
        } else if (wl != wo || rl != ro) {
            pd_diag_error(d, f, ln, col, "layer '%s' ties to '%s', but their weights differ: "
                          "[%lld][%lld] against [%lld][%lld]", L->name, O->name, (long long)rl,
                          (long long)(wl / rl), (long long)ro, (long long)(wo / ro));
            e++;
        } else {
            for (int k = 1; k < i; k++)
                if (m->layers[k].tied_to == j) {
                    pd_diag_error(d, f, ln, col, "layer '%s' ties to '%s', which '%s' already "
                                  "ties to: one tie per weight", L->name, O->name,
                                  m->layers[k].name);
                    e++;
                }
            L->tied_to = j;
        }
    }
    return e;
}
