/* emit_training.c: the descriptor's optional training fields (see emit_training.h). AdamW's decay
 * mask has one character per entry of the stage's tensor table, in the table's order: '1' for a
 * tensor its op's descriptor marks as decaying (the weight matrices of linear, conv2d, embedding),
 * '0' for biases, norms' parameters and buffers (torch_gpt_char.py decays the 2-D weights only).
 * Tied weights (docs/formats.md, "Tied weights"): one pdrt_tie per copy of a tied weight on this
 * stage, naming the other copy's stage and its index in that stage's tensor table. */
#include "emit_training.h"

#include <inttypes.h>
#include <string.h>

/* prints one field in the C (cuda 0) or C++ (1) form; value is already a literal */
static void field(cg_em *e, int cuda, const char *name, const char *value) {
    cg_printf(e, cuda ? "    b->%s = %s;\n" : "    .%s = %s,\n", name, value);
}

/* the mask as adjacent string literals of at most 64 characters, so lines stay short */
static void decay_mask(cg_em *e, int cuda) {
    const cg_stage *cs = e->cs;
    int n = 0;
    cg_printf(e, cuda ? "    b->decay = \"" : "    .decay = \"");
    for (int i = 0; i < cs->n_ops; i++) {
        const cg_op *op = &cs->ops[i];
        for (int t = 0; t < op->n_tensors; t++) {
            if (op->tensor_at[t].ptr == CG_NULL) continue;
            if (n && n % 64 == 0) cg_printf(e, "\"\n%*s\"", cuda ? 15 : 13, "");
            cg_printf(e, "%c", op->tensor[t].decays ? '1' : '0');
            n++;
        }
    }
    cg_printf(e, cuda ? "\";\n" : "\",\n");
}

/* The index in stage cs's tensor table of layer's weight (its first tensor), or -1 when the
 * layer is not on that stage. */
static int weight_index(const cg_stage *cs, int layer) {
    int n = 0;
    for (int i = 0; i < cs->n_ops; i++) {
        const cg_op *op = &cs->ops[i];
        for (int t = 0; t < op->n_tensors; t++) {
            if (op->tensor_at[t].ptr == CG_NULL) continue;
            if (op->layer == layer && t == 0) return n;
            n++;
        }
    }
    return -1;
}

/* Where the copy of layer's weight is: its stage (-1: none) and its index there. */
static int copy_at(const cg_program *pr, int layer, int *index) {
    for (int s = 0; s < pr->n_stages; s++)
        if ((*index = weight_index(&pr->stages[s], layer)) >= 0) return s;
    return -1;
}

/* The copies of tied weights on this stage (pdrt_tie: {tensor, peer_stage, peer_tensor, owner}):
 * C: `.ties` (a compound literal) and `.n_ties`; CUDA (C++): a function-scope static array and
 * the two fields set on b. Nothing when there are none. */
static void ties(cg_em *e, int cuda) {
    const pd_model *m = e->m;
    int n = 0;
    for (int l = 1; l < m->n_layers; l++) {
        const pd_layer *ly = &m->layers[l];
        if (!ly->tied_to) continue;
        int it, io, st = copy_at(e->pr, l, &it), so = copy_at(e->pr, ly->tied_to, &io);
        if (st != e->s && so != e->s) continue;
        if (!n++)
            cg_printf(e, cuda ? "    static const pdrt_tie ties[] = {"
                              : "    .ties = (const pdrt_tie[]){");
        if (so == e->s) cg_printf(e, "%s{%d, %d, %d, 1}", n > 1 ? ", " : "", io, st, it);
        if (st == e->s) cg_printf(e, "%s{%d, %d, %d, 0}", n > 1 || so == e->s ? ", " : "", it,
                                  so, io);
        if (so == e->s && st == e->s) n++;
    }
    if (n && cuda) cg_printf(e, "};\n    b->ties = ties;\n    b->n_ties = %d;\n", n);
    else if (n) cg_printf(e, "},\n    .n_ties = %d,\n", n);
}

static void training(cg_em *e, int cuda) {
    const pd_model *m = e->m;
    char v[64];
    if (m->optimizer == PD_OPT_ADAMW) decay_mask(e, cuda);
    if (m->warmup_iters) {
        snprintf(v, sizeof v, "%d", m->warmup_iters);
        field(e, cuda, "warmup_iters", v);
    }
    if (m->lr_decay_iters) {
        snprintf(v, sizeof v, "%d", m->lr_decay_iters);
        field(e, cuda, "lr_decay_iters", v);
    }
    if (m->min_lr != 0) field(e, cuda, "min_lr", cg_double_literal(v, sizeof v, m->min_lr));
    if (m->clip_grad_norm != 0)
        field(e, cuda, "clip_grad_norm", cg_double_literal(v, sizeof v, m->clip_grad_norm));
    ties(e, cuda);
    int rc = e->p->stages[e->s].recompute;
    if (rc) field(e, cuda, "recompute", rc == PD_RECOMPUTE_SELECTIVE ? "2" : "1");
    if (rc == PD_RECOMPUTE_SELECTIVE && !cuda) {
        char v[64];
        snprintf(v, sizeof v, "S%d_N_ACTS_KEPT", e->s);
        field(e, cuda, "n_acts_kept", v);
        snprintf(v, sizeof v, "S%d_forward_recompute", e->s);
        field(e, cuda, "forward_recompute", v);
    }
}

void cg_emit_training(cg_em *e) { training(e, 0); }
void cg_emit_training_cuda(cg_em *e) { training(e, 1); }
