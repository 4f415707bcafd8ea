/* emit_common.c: the pieces of a stage source that the CPU and CUDA printers print alike
 * (emit_common.h). */
#include "emit_common.h"
#include "runtime/schedule/schedule.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

void cg_put_cstr(FILE *o, const char *s) {
    fputc('"', o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(o, "\\%c", c);
        else if (c < 32 || c >= 127) fprintf(o, "\\%03o", c);
        else fputc(c, o);
    }
    fputc('"', o);
}

const char *cg_safe(const char *s, char *buf, size_t n) {
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        buf[i] = ok ? c : '?';
    }
    buf[i] = 0;
    return buf;
}

const char *cg_em_loc(cg_em *e, int slot, cg_loc l) {
    snprintf(e->a[slot], sizeof e->a[slot], "%s + %" PRId64, l.base == CG_IN ? "in" : "acts", l.off);
    return e->a[slot];
}

const char *cg_em_gloc(cg_em *e, int slot, cg_loc l) {
    if (l.base == CG_IN && e->s == 0) snprintf(e->a[slot], sizeof e->a[slot], "NULL");
    else snprintf(e->a[slot], sizeof e->a[slot], "%s + %" PRId64, l.base == CG_IN ? "din" : "dacts", l.off);
    return e->a[slot];
}

const char *cg_em_prm(cg_em *e, int slot, const char *blob, int64_t off) {
    if (off < 0) snprintf(e->a[slot], sizeof e->a[slot], "NULL");
    else snprintf(e->a[slot], sizeof e->a[slot], "%s + %" PRId64, blob, off);
    return e->a[slot];
}

const pd_shape *cg_in_shape(const pd_model *m, const pd_layer *ly, int i) {
    int src = ly->inputs[i];
    return src == 0 ? &m->input : &m->layers[src].out;
}

void cg_chw(const pd_shape *s, int *C, int *H, int *W) {
    *C = s->dim[0];
    *H = s->rank == 3 ? s->dim[1] : 1;
    *W = s->rank == 3 ? s->dim[2] : 1;
}

void cg_window(const pd_layer *ly, const pd_shape *in, int k[2], int st[2], int pad[2]) {
    if (ly->op == PD_OP_AVGPOOL2D && ly->global) {
        k[0] = in->dim[1]; k[1] = in->dim[2];
        st[0] = st[1] = 1; pad[0] = pad[1] = 0;
        return;
    }
    for (int i = 0; i < 2; i++) { k[i] = ly->kernel[i]; st[i] = ly->stride[i]; pad[i] = ly->padding[i]; }
}

cg_loc cg_pack_src(const cg_stage *cs, int layer) {
    cg_loc l = {0, 0};
    for (int j = 0; j < cs->n_ops; j++) if (cs->ops[j].layer == layer) l = cs->ops[j].out;
    for (int j = 0; j < cs->n_in; j++) if (cs->in[j].layer == layer) l = (cg_loc){CG_IN, cs->in[j].off};
    return l;
}

void cg_emit_sizes(cg_em *e) {
    FILE *o = e->o;
    const pd_model *m = e->m;
    const cg_stage *cs = e->cs;
    int s = e->s;
    char nb[96];
    /* sizes: P_ is this stage's prefix, so that every stage links into one --single binary */
    fprintf(o, "#define P_B S%d_BATCH\n", s);
    fprintf(o, "#define S%d_BATCH %d\n", s, m->batch);
    fprintf(o, "#define S%d_N_PARAMS %" PRId64 "\n#define S%d_N_BUFFERS %" PRId64 "\n", s, cs->n_params, s, cs->n_buffers);
    fprintf(o, "#define S%d_N_ACTS %" PRId64 "\n#define S%d_IN_FLOATS %" PRId64 "\n#define S%d_OUT_FLOATS %" PRId64 "\n\n",
            s, cs->n_acts, s, cs->in_floats, s, cs->out_floats);
    /* input and output packs */
    fprintf(o, "/* input pack (floats per minibatch at offset):");
    for (int i = 0; i < cs->n_in; i++)
        fprintf(o, " %s %" PRId64 "@%" PRId64, cs->in[i].layer ? cg_safe(m->layers[cs->in[i].layer].name, nb, sizeof nb) : "input",
                cs->in[i].numel, cs->in[i].off);
    fprintf(o, "\n * output pack:");
    for (int i = 0; i < cs->n_out; i++)
        fprintf(o, " %s %" PRId64 "@%" PRId64, cg_safe(m->layers[cs->out[i].layer].name, nb, sizeof nb),
                cs->out[i].numel, cs->out[i].off);
    fprintf(o, " */\n\n");
}

int cg_emit_tables(cg_em *e, const pd_plan *p) {
    FILE *o = e->o;
    const cg_stage *cs = e->cs;
    int s = e->s;
    /* tensor table (the same for both backends: --save/--init files are interchangeable) */
    int nt = 0;
    fprintf(o, "static const pdrt_tensor S%d_tensors[] = {\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const cg_op *op = &cs->ops[i];
        const pd_layer *ly = &e->m->layers[op->layer];
        const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
        int64_t offs[4] = {op->w_off, op->b_off, op->buf_off, op->buf_off >= 0 ? op->buf_off + ly->out.dim[0] : -1};
        int64_t ns[4] = {ly->n_weight, ly->n_bias, ly->out.dim[0], ly->out.dim[0]};
        for (int t = 0; t < 4; t++) {
            if (offs[t] < 0) continue;
            fprintf(o, "    {");
            cg_put_cstr(o, ly->name);
            fprintf(o, ", \"%s\", %" PRId64 ", %" PRId64 ", %d},\n", names[t], offs[t], ns[t], t >= 2);
            nt++;
        }
    }
    if (!nt) fprintf(o, "    {NULL, NULL, 0, 0, 0},\n");
    fprintf(o, "};\n\n");
    fprintf(o, "static const int S%d_warmup[] = {", s);
    for (int k = 0; k < p->n_stages; k++) fprintf(o, "%s%d", k ? ", " : "", p->stages[k].warmup);
    fprintf(o, "};\n\n");
    fprintf(o, "static const int S%d_replicas[] = {", s);
    for (int k = 0; k < p->n_stages; k++) fprintf(o, "%s%d", k ? ", " : "", p->stages[k].replicas);
    fprintf(o, "};\n\n");
    return nt;
}

void cg_emit_init(cg_em *e) {
    FILE *o = e->o;
    const pd_model *m = e->m;
    const cg_stage *cs = e->cs;
    fprintf(o, "static void S%d_init(float *params, float *buffers, uint64_t seed) {\n"
               "    (void)params; (void)buffers; (void)seed;\n", e->s);
    for (int i = 0; i < cs->n_ops; i++) {
        const cg_op *op = &cs->ops[i];
        const pd_layer *ly = &m->layers[op->layer];
        int C, H, W;
        cg_chw(cg_in_shape(m, ly, 0), &C, &H, &W);
        if (ly->op == PD_OP_LINEAR)
            fprintf(o, "    pd_init_linear(%s, %s, seed, %d, %" PRId64 ", %d);\n", cg_em_prm(e, 0, "params", op->w_off),
                    cg_em_prm(e, 1, "params", op->b_off), op->layer, pd_shape_numel(cg_in_shape(m, ly, 0)), ly->out_features);
        else if (ly->op == PD_OP_CONV2D)
            fprintf(o, "    pd_init_conv2d(%s, %s, seed, %d, %d, %d, %d, %d);\n", cg_em_prm(e, 0, "params", op->w_off),
                    cg_em_prm(e, 1, "params", op->b_off), op->layer, C, ly->out_channels, ly->kernel[0], ly->kernel[1]);
        else if (ly->op == PD_OP_BATCHNORM2D)
            fprintf(o, "    pd_init_batchnorm2d(%s, %s, buffers + %" PRId64 ", buffers + %" PRId64 ", %d);\n",
                    cg_em_prm(e, 0, "params", op->w_off), cg_em_prm(e, 1, "params", op->b_off), op->buf_off,
                    op->buf_off + C, C);
    }
    fprintf(o, "}\n\n");
}

void cg_emit_join(cg_em *e, const cg_op *op, int backward, const char *ctx, const char *sfx) {
    FILE *o = e->o;
    const pd_layer *ly = &e->m->layers[op->layer];
    int64_t N = op->out_numel;
    const char *dir = backward ? "backward" : "forward";
    fprintf(o, backward ? "    {\n        float *dins_[] = {" : "    {\n        const float *ins_[] = {");
    for (int j = 0; j < op->n_in; j++)
        fprintf(o, "%s%s", j ? ", " : "", backward ? cg_em_gloc(e, 0, op->in[j]) : cg_em_loc(e, 0, op->in[j]));
    fprintf(o, "};\n");
    /* forward: (out, ins_, ...); backward: (dins_, dout, ...) */
    const char *x = backward ? cg_em_gloc(e, 0, op->out) : cg_em_loc(e, 0, op->out);
    const char *a1 = backward ? "dins_" : x, *a2 = backward ? x : "ins_";
    if (ly->op == PD_OP_ADD) {
        fprintf(o, "        pdrt_add_%s%s(%s%s, %s, %d, (size_t)P_B * %" PRId64 ");\n", dir, sfx, ctx, a1, a2,
                op->n_in, N);
    } else {
        fprintf(o, "        static const int ch_[] = {");
        for (int j = 0; j < op->n_in; j++) fprintf(o, "%s%d", j ? ", " : "", cg_in_shape(e->m, ly, j)->dim[0]);
        int oc, oh, ow;
        cg_chw(&ly->out, &oc, &oh, &ow);
        fprintf(o, "};\n        pdrt_concat_%s%s(%s%s, %s, ch_, %d, P_B, %d);\n", dir, sfx, ctx, a1, a2,
                op->n_in, oh * ow);
    }
    fprintf(o, "    }\n");
}

void cg_emit_op_comment(cg_em *e, const cg_op *op) {
    const pd_layer *ly = &e->m->layers[op->layer];
    char nb[96];
    fprintf(e->o, "    /* %s: %s */\n", cg_safe(ly->name, nb, sizeof nb), pd_op_name(ly->op));
}

void cg_emit_op_forward(cg_em *e, const cg_op *op, const char *ctx, const char *sfx) {
    FILE *o = e->o;
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = cg_in_shape(e->m, ly, 0);
    int C, H, W, k[2], st[2], pad[2];
    cg_chw(is, &C, &H, &W);
    int64_t N = op->out_numel;
    switch (ly->op) {
    case PD_OP_LINEAR:
        fprintf(o, "    pdrt_linear_forward%s(%s%s, %s, %s, %s, P_B, %" PRId64 ", %d);\n", sfx, ctx,
                cg_em_loc(e, 0, op->out), cg_em_loc(e, 1, op->in[0]), cg_em_prm(e, 2, "params", op->w_off),
                cg_em_prm(e, 3, "params", op->b_off), pd_shape_numel(is), ly->out_features);
        break;
    case PD_OP_CONV2D:
        fprintf(o, "    pdrt_conv2d_forward%s(%s%s, %s%s, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n", sfx,
                ctx, cg_em_loc(e, 0, op->out), e->conv_scratch, cg_em_loc(e, 1, op->in[0]),
                cg_em_prm(e, 2, "params", op->w_off), cg_em_prm(e, 3, "params", op->b_off), C, H, W,
                ly->out_channels, ly->kernel[0], ly->kernel[1], ly->stride[0], ly->stride[1], ly->padding[0],
                ly->padding[1]);
        break;
    case PD_OP_RELU:
        fprintf(o, "    pdrt_relu_forward%s(%s%s, %s, (size_t)P_B * %" PRId64 ");\n", sfx, ctx,
                cg_em_loc(e, 0, op->out), cg_em_loc(e, 1, op->in[0]), N);
        break;
    case PD_OP_MAXPOOL2D:
    case PD_OP_AVGPOOL2D:
        cg_window(ly, is, k, st, pad);
        if (ly->op == PD_OP_MAXPOOL2D)
            fprintf(o, "    pdrt_maxpool2d_forward%s(%s%s, (int *)(acts + %" PRId64 "), %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    sfx, ctx, cg_em_loc(e, 0, op->out), op->aux_off, cg_em_loc(e, 1, op->in[0]), C, H, W,
                    k[0], k[1], st[0], st[1], pad[0], pad[1]);
        else
            fprintf(o, "    pdrt_avgpool2d_forward%s(%s%s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n", sfx, ctx,
                    cg_em_loc(e, 0, op->out), cg_em_loc(e, 1, op->in[0]), C, H, W, k[0], k[1], st[0],
                    st[1], pad[0], pad[1]);
        break;
    case PD_OP_FLATTEN:
        fprintf(o, "    /* no-op: its output is its input's memory */\n");
        break;
    case PD_OP_DROPOUT:
        fprintf(o, "    if (training) pdrt_dropout_forward%s(%s%s, acts + %" PRId64 ", %s, (float)%.17g, seed, step, %d, 0, P_B, %" PRId64 ");\n",
                sfx, ctx, cg_em_loc(e, 0, op->out), op->aux_off, cg_em_loc(e, 1, op->in[0]), ly->p,
                op->layer, N);
        fprintf(o, "    else pdrt_identity_forward%s(%s%s, %s, (size_t)P_B * %" PRId64 ");\n", sfx, ctx,
                cg_em_loc(e, 0, op->out), cg_em_loc(e, 1, op->in[0]), N);
        break;
    case PD_OP_BATCHNORM2D:
        fprintf(o, "    if (training) pdrt_batchnorm2d_forward%s(%s%s, acts + %" PRId64 ", acts + %" PRId64 ", buffers + %" PRId64 ", buffers + %" PRId64 ", %s, %s, %s, (float)%.17g, (float)%.17g, P_B, %d, %d, %d);\n",
                sfx, ctx, cg_em_loc(e, 0, op->out), op->aux_off, op->aux_off + C, op->buf_off,
                op->buf_off + C, cg_em_loc(e, 1, op->in[0]), cg_em_prm(e, 2, "params", op->w_off),
                cg_em_prm(e, 3, "params", op->b_off), ly->momentum, ly->eps, C, H, W);
        fprintf(o, "    else pdrt_batchnorm2d_forward_eval%s(%s%s, %s, %s, %s, buffers + %" PRId64 ", buffers + %" PRId64 ", (float)%.17g, P_B, %d, %d, %d);\n",
                sfx, ctx, cg_em_loc(e, 0, op->out), cg_em_loc(e, 1, op->in[0]),
                cg_em_prm(e, 2, "params", op->w_off), cg_em_prm(e, 3, "params", op->b_off), op->buf_off,
                op->buf_off + C, ly->eps, C, H, W);
        break;
    case PD_OP_ADD:
    case PD_OP_CONCAT:
        cg_emit_join(e, op, 0, ctx, sfx);
        break;
    default:
        fprintf(o, "#error unsupported op %s\n", pd_op_name(ly->op));
    }
}

void cg_emit_op_backward(cg_em *e, const cg_op *op, const char *ctx, const char *sfx) {
    FILE *o = e->o;
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = cg_in_shape(e->m, ly, 0);
    int C, H, W, k[2], st[2], pad[2];
    cg_chw(is, &C, &H, &W);
    int64_t N = op->out_numel;
    const char *din = cg_em_gloc(e, 0, op->in[0]);
    int no_din = !strcmp(din, "NULL");
    switch (ly->op) {
    case PD_OP_LINEAR:
        fprintf(o, "    pdrt_linear_backward%s(%s%s, %s, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n", sfx, ctx, din,
                cg_em_prm(e, 1, "dparams", op->w_off), cg_em_prm(e, 2, "dparams", op->b_off),
                cg_em_gloc(e, 3, op->out), cg_em_loc(e, 4, op->in[0]), cg_em_prm(e, 5, "params", op->w_off),
                pd_shape_numel(is), ly->out_features);
        break;
    case PD_OP_CONV2D:
        fprintf(o, "    pdrt_conv2d_backward%s(%s%s, %s, %s, %s%s, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                sfx, ctx, din, cg_em_prm(e, 1, "dparams", op->w_off), cg_em_prm(e, 2, "dparams", op->b_off),
                e->conv_scratch, cg_em_gloc(e, 3, op->out), cg_em_loc(e, 4, op->in[0]),
                cg_em_prm(e, 5, "params", op->w_off), C, H, W, ly->out_channels, ly->kernel[0], ly->kernel[1],
                ly->stride[0], ly->stride[1], ly->padding[0], ly->padding[1]);
        break;
    case PD_OP_RELU:
        if (!no_din)
            fprintf(o, "    pdrt_relu_backward%s(%s%s, %s, %s, (size_t)P_B * %" PRId64 ");\n", sfx, ctx, din,
                    cg_em_gloc(e, 1, op->out), cg_em_loc(e, 2, op->out), N);
        break;
    case PD_OP_MAXPOOL2D:
    case PD_OP_AVGPOOL2D:
        if (no_din) break;
        cg_window(ly, is, k, st, pad);
        if (ly->op == PD_OP_MAXPOOL2D)
            fprintf(o, "    pdrt_maxpool2d_backward%s(%s%s, %s, (const int *)(acts + %" PRId64 "), P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    sfx, ctx, din, cg_em_gloc(e, 1, op->out), op->aux_off, C, H, W, k[0], k[1], st[0],
                    st[1], pad[0], pad[1]);
        else
            fprintf(o, "    pdrt_avgpool2d_backward%s(%s%s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n", sfx,
                    ctx, din, cg_em_gloc(e, 1, op->out), C, H, W, k[0], k[1], st[0], st[1], pad[0], pad[1]);
        break;
    case PD_OP_FLATTEN:
        fprintf(o, "    /* no-op: its gradient is its input's gradient */\n");
        break;
    case PD_OP_DROPOUT:
        if (!no_din)
            fprintf(o, "    pdrt_dropout_backward%s(%s%s, %s, acts + %" PRId64 ", (size_t)P_B * %" PRId64 ");\n", sfx,
                    ctx, din, cg_em_gloc(e, 1, op->out), op->aux_off, N);
        break;
    case PD_OP_BATCHNORM2D:
        fprintf(o, "    pdrt_batchnorm2d_backward%s(%s%s, %s, %s, %s, %s, %s, acts + %" PRId64 ", acts + %" PRId64 ", P_B, %d, %d, %d);\n",
                sfx, ctx, no_din ? "NULL" : din, cg_em_prm(e, 1, "dparams", op->w_off),
                cg_em_prm(e, 2, "dparams", op->b_off), cg_em_gloc(e, 3, op->out), cg_em_loc(e, 4, op->in[0]),
                cg_em_prm(e, 5, "params", op->w_off), op->aux_off, op->aux_off + C, C, H, W);
        break;
    case PD_OP_ADD:
    case PD_OP_CONCAT:
        cg_emit_join(e, op, 1, ctx, sfx);
        break;
    default:
        fprintf(o, "#error unsupported op %s\n", pd_op_name(ly->op));
    }
}

/* One descriptor field: <pre>name = value<end>. */
static void desc_field(FILE *o, const char *pre, const char *end, const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(o, "%s%s = ", pre, name);
    vfprintf(o, fmt, ap);
    fprintf(o, "%s\n", end);
    va_end(ap);
}

/* A string field, as a C literal. */
static void desc_str(FILE *o, const char *pre, const char *end, const char *name, const char *v) {
    fprintf(o, "%s%s = ", pre, name);
    cg_put_cstr(o, v);
    fprintf(o, "%s\n", end);
}

void cg_emit_desc(cg_em *e, const pd_plan *p, int nt, int part, const char *pre, const char *end) {
    FILE *o = e->o;
    const pd_model *m = e->m;
    int s = e->s;
    if (part == CG_DESC_SHAPE) {
        int ic, ih, iw;
        cg_chw(&m->input, &ic, &ih, &iw);
        desc_field(o, pre, end, "abi", "PDRT_ABI");
        desc_str(o, pre, end, "model", m->name);
        desc_field(o, pre, end, "index", "%d", s);
        desc_field(o, pre, end, "n_stages", "%d", p->n_stages);
        desc_field(o, pre, end, "batch", "S%d_BATCH", s);
        desc_field(o, pre, end, "classes", "%d", m->classes);
        desc_field(o, pre, end, "in_c", "%d", ic);
        desc_field(o, pre, end, "in_h", "%d", ih);
        desc_field(o, pre, end, "in_w", "%d", iw);
        desc_str(o, pre, end, "dataset", m->dataset);
        desc_field(o, pre, end, "in_floats", "S%d_IN_FLOATS", s);
        desc_field(o, pre, end, "out_floats", "S%d_OUT_FLOATS", s);
        desc_field(o, pre, end, "n_params", "S%d_N_PARAMS", s);
        desc_field(o, pre, end, "n_buffers", "S%d_N_BUFFERS", s);
        desc_field(o, pre, end, "n_acts", "S%d_N_ACTS", s);
    } else if (part == CG_DESC_TABLES) {
        desc_field(o, pre, end, "n_tensors", "%d", nt);
        desc_field(o, pre, end, "tensors", "S%d_tensors", s);
        desc_field(o, pre, end, "init", "S%d_init", s);
    } else {
        const pd_stage *ps = &p->stages[s];
        desc_field(o, pre, end, "warmup", "S%d_warmup", s);
        desc_field(o, pre, end, "weight_versions", "%d", ps->weight_versions);
        desc_str(o, pre, end, "schedule", p->schedule[0] ? p->schedule : "1f1b");
        desc_field(o, pre, end, "predicted_ms", "%.17g", ps->time_ms);
        desc_field(o, pre, end, "predicted_compute_ms", "%.17g", ps->compute_ms);
        desc_field(o, pre, end, "optimizer", "%d", m->optimizer == PD_OPT_ADAM ? 1 : 0);
        desc_field(o, pre, end, "lr", "%.17g", m->lr);
        desc_field(o, pre, end, "momentum", "%.17g", m->momentum);
        desc_field(o, pre, end, "weight_decay", "%.17g", m->weight_decay);
        desc_field(o, pre, end, "beta1", "%.17g", m->beta1);
        desc_field(o, pre, end, "beta2", "%.17g", m->beta2);
        desc_field(o, pre, end, "adam_eps", "%.17g", m->adam_eps);
        desc_field(o, pre, end, "epochs", "%d", m->epochs);
        int reps[256], nr = p->n_stages < 256 ? p->n_stages : 256;
        for (int k = 0; k < nr; k++) reps[k] = p->stages[k].replicas;
        desc_field(o, pre, end, "replicas", "S%d_replicas", s);
        desc_field(o, pre, end, "microbatches", "%d", pd_schedule_default_microbatches(nr, reps));
        desc_field(o, pre, end, "vertical_sync", "%d", p->vertical_sync);
    }
}
