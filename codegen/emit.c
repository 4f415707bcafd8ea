/* emit.c: the dumb printer. Prints one stage_<k>.c from what resolve.c computed: sizes and
 * offsets as #defines with the stage's prefix, init/forward/backward as straight-line calls to
 * runtime/ops.h with constant shapes, the tensor table and the pdrt_stage descriptor. */
#include "emit.h"
#include "schedule.h"

#include <inttypes.h>
#include <string.h>

/* A C string literal body: escapes quotes, backslashes and control bytes. */
static void put_cstr(FILE *o, const char *s) {
    fputc('"', o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(o, "\\%c", c);
        else if (c < 32 || c >= 127) fprintf(o, "\\%03o", c);
        else fputc(c, o);
    }
    fputc('"', o);
}

/* A name safe inside a C comment. */
static const char *safe(const char *s, char *buf, size_t n) {
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

typedef struct {
    FILE *o;
    const pd_model *m;
    const cg_stage *cs;
    int s;        /* stage index: the prefix is S<s>_ */
    char a[8][96];
} em;

static const char *loc(em *e, int slot, cg_loc l) {
    snprintf(e->a[slot], sizeof e->a[slot], "%s + %" PRId64, l.base == CG_IN ? "in" : "acts", l.off);
    return e->a[slot];
}

/* The gradient of a location: NULL for stage 0's input pack (the data needs none). */
static const char *gloc(em *e, int slot, cg_loc l) {
    if (l.base == CG_IN && e->s == 0) snprintf(e->a[slot], sizeof e->a[slot], "NULL");
    else snprintf(e->a[slot], sizeof e->a[slot], "%s + %" PRId64, l.base == CG_IN ? "din" : "dacts", l.off);
    return e->a[slot];
}

static const char *prm(em *e, int slot, const char *blob, int64_t off) {
    if (off < 0) snprintf(e->a[slot], sizeof e->a[slot], "NULL");
    else snprintf(e->a[slot], sizeof e->a[slot], "%s + %" PRId64, blob, off);
    return e->a[slot];
}

static const pd_shape *in_shape(const pd_model *m, const pd_layer *ly, int i) {
    int src = ly->inputs[i];
    return src == 0 ? &m->input : &m->layers[src].out;
}

/* C, H, W of a shape (rank 1: features, 1, 1) */
static void chw(const pd_shape *s, int *C, int *H, int *W) {
    *C = s->dim[0];
    *H = s->rank == 3 ? s->dim[1] : 1;
    *W = s->rank == 3 ? s->dim[2] : 1;
}

static void window(const pd_layer *ly, const pd_shape *in, int k[2], int st[2], int pad[2]) {
    if (ly->op == PD_OP_AVGPOOL2D && ly->global) {
        k[0] = in->dim[1]; k[1] = in->dim[2];
        st[0] = st[1] = 1; pad[0] = pad[1] = 0;
        return;
    }
    for (int i = 0; i < 2; i++) { k[i] = ly->kernel[i]; st[i] = ly->stride[i]; pad[i] = ly->padding[i]; }
}

static void emit_forward_op(em *e, const cg_op *op) {
    FILE *o = e->o;
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = in_shape(e->m, ly, 0);
    int C, H, W, k[2], st[2], pad[2];
    chw(is, &C, &H, &W);
    int64_t N = op->out_numel;
    char nb[96];
    fprintf(o, "    /* %s: %s */\n", safe(ly->name, nb, sizeof nb), pd_op_name(ly->op));
    switch (ly->op) {
    case PD_OP_LINEAR:
        fprintf(o, "    linear_forward(%s, %s, %s, %s, P_B, %" PRId64 ", %d);\n", loc(e, 0, op->out),
                loc(e, 1, op->in[0]), prm(e, 2, "params", op->w_off), prm(e, 3, "params", op->b_off),
                pd_shape_numel(is), ly->out_features);
        break;
    case PD_OP_CONV2D:
        fprintf(o, "    conv2d_forward(%s, scratch, %s, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                loc(e, 0, op->out), loc(e, 1, op->in[0]), prm(e, 2, "params", op->w_off),
                prm(e, 3, "params", op->b_off), C, H, W, ly->out_channels, ly->kernel[0],
                ly->kernel[1], ly->stride[0], ly->stride[1], ly->padding[0], ly->padding[1]);
        break;
    case PD_OP_RELU:
        fprintf(o, "    relu_forward(%s, %s, (size_t)P_B * %" PRId64 ");\n", loc(e, 0, op->out),
                loc(e, 1, op->in[0]), N);
        break;
    case PD_OP_MAXPOOL2D:
    case PD_OP_AVGPOOL2D:
        window(ly, is, k, st, pad);
        if (ly->op == PD_OP_MAXPOOL2D)
            fprintf(o, "    maxpool2d_forward(%s, (int *)(acts + %" PRId64 "), %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    loc(e, 0, op->out), op->aux_off, loc(e, 1, op->in[0]), C, H, W, k[0], k[1],
                    st[0], st[1], pad[0], pad[1]);
        else
            fprintf(o, "    avgpool2d_forward(%s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    loc(e, 0, op->out), loc(e, 1, op->in[0]), C, H, W, k[0], k[1], st[0], st[1],
                    pad[0], pad[1]);
        break;
    case PD_OP_FLATTEN:
        fprintf(o, "    /* no-op: its output is its input's memory */\n");
        break;
    case PD_OP_DROPOUT:
        fprintf(o, "    if (training) dropout_forward(%s, acts + %" PRId64 ", %s, (float)%.17g, seed, step, %d, 0, P_B, %" PRId64 ");\n",
                loc(e, 0, op->out), op->aux_off, loc(e, 1, op->in[0]), ly->p, op->layer, N);
        fprintf(o, "    else identity_forward(%s, %s, (size_t)P_B * %" PRId64 ");\n", loc(e, 0, op->out),
                loc(e, 1, op->in[0]), N);
        break;
    case PD_OP_BATCHNORM2D:
        fprintf(o, "    if (training) batchnorm2d_forward(%s, acts + %" PRId64 ", acts + %" PRId64 ", buffers + %" PRId64 ", buffers + %" PRId64 ", %s, %s, %s, (float)%.17g, (float)%.17g, P_B, %d, %d, %d);\n",
                loc(e, 0, op->out), op->aux_off, op->aux_off + C, op->buf_off, op->buf_off + C,
                loc(e, 1, op->in[0]), prm(e, 2, "params", op->w_off), prm(e, 3, "params", op->b_off),
                ly->momentum, ly->eps, C, H, W);
        fprintf(o, "    else batchnorm2d_forward_eval(%s, %s, %s, %s, buffers + %" PRId64 ", buffers + %" PRId64 ", (float)%.17g, P_B, %d, %d, %d);\n",
                loc(e, 0, op->out), loc(e, 1, op->in[0]), prm(e, 2, "params", op->w_off),
                prm(e, 3, "params", op->b_off), op->buf_off, op->buf_off + C, ly->eps, C, H, W);
        break;
    case PD_OP_ADD:
    case PD_OP_CONCAT: {
        fprintf(o, "    {\n        const float *ins_[] = {");
        for (int i = 0; i < op->n_in; i++) fprintf(o, "%s%s", i ? ", " : "", loc(e, 0, op->in[i]));
        fprintf(o, "};\n");
        if (ly->op == PD_OP_ADD) {
            fprintf(o, "        add_forward(%s, ins_, %d, (size_t)P_B * %" PRId64 ");\n", loc(e, 0, op->out),
                    op->n_in, N);
        } else {
            fprintf(o, "        static const int ch_[] = {");
            for (int i = 0; i < op->n_in; i++) fprintf(o, "%s%d", i ? ", " : "", in_shape(e->m, ly, i)->dim[0]);
            int oc, oh, ow;
            chw(&ly->out, &oc, &oh, &ow);
            fprintf(o, "};\n        concat_forward(%s, ins_, ch_, %d, P_B, %d);\n", loc(e, 0, op->out),
                    op->n_in, oh * ow);
        }
        fprintf(o, "    }\n");
        break;
    }
    default:
        fprintf(o, "#error unsupported op %s\n", pd_op_name(ly->op));
    }
}

static void emit_backward_op(em *e, const cg_op *op) {
    FILE *o = e->o;
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = in_shape(e->m, ly, 0);
    int C, H, W, k[2], st[2], pad[2];
    chw(is, &C, &H, &W);
    int64_t N = op->out_numel;
    const char *din = gloc(e, 0, op->in[0]);
    int no_din = !strcmp(din, "NULL");
    char nb[96];
    fprintf(o, "    /* %s: %s */\n", safe(ly->name, nb, sizeof nb), pd_op_name(ly->op));
    switch (ly->op) {
    case PD_OP_LINEAR:
        fprintf(o, "    linear_backward(%s, %s, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n", din,
                prm(e, 1, "dparams", op->w_off), prm(e, 2, "dparams", op->b_off),
                gloc(e, 3, op->out), loc(e, 4, op->in[0]), prm(e, 5, "params", op->w_off),
                pd_shape_numel(is), ly->out_features);
        break;
    case PD_OP_CONV2D:
        fprintf(o, "    conv2d_backward(%s, %s, %s, scratch, %s, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                din, prm(e, 1, "dparams", op->w_off), prm(e, 2, "dparams", op->b_off),
                gloc(e, 3, op->out), loc(e, 4, op->in[0]), prm(e, 5, "params", op->w_off), C, H, W,
                ly->out_channels, ly->kernel[0], ly->kernel[1], ly->stride[0], ly->stride[1],
                ly->padding[0], ly->padding[1]);
        break;
    case PD_OP_RELU:
        if (!no_din)
            fprintf(o, "    relu_backward(%s, %s, %s, (size_t)P_B * %" PRId64 ");\n", din,
                    gloc(e, 1, op->out), loc(e, 2, op->out), N);
        break;
    case PD_OP_MAXPOOL2D:
    case PD_OP_AVGPOOL2D:
        if (no_din) break;
        window(ly, is, k, st, pad);
        if (ly->op == PD_OP_MAXPOOL2D)
            fprintf(o, "    maxpool2d_backward(%s, %s, (const int *)(acts + %" PRId64 "), P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    din, gloc(e, 1, op->out), op->aux_off, C, H, W, k[0], k[1], st[0], st[1],
                    pad[0], pad[1]);
        else
            fprintf(o, "    avgpool2d_backward(%s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n", din,
                    gloc(e, 1, op->out), C, H, W, k[0], k[1], st[0], st[1], pad[0], pad[1]);
        break;
    case PD_OP_FLATTEN:
        fprintf(o, "    /* no-op: its gradient is its input's gradient */\n");
        break;
    case PD_OP_DROPOUT:
        if (!no_din)
            fprintf(o, "    dropout_backward(%s, %s, acts + %" PRId64 ", (size_t)P_B * %" PRId64 ");\n", din,
                    gloc(e, 1, op->out), op->aux_off, N);
        break;
    case PD_OP_BATCHNORM2D:
        fprintf(o, "    batchnorm2d_backward(%s, %s, %s, %s, %s, %s, acts + %" PRId64 ", acts + %" PRId64 ", P_B, %d, %d, %d);\n",
                no_din ? "NULL" : din, prm(e, 1, "dparams", op->w_off), prm(e, 2, "dparams", op->b_off),
                gloc(e, 3, op->out), loc(e, 4, op->in[0]), prm(e, 5, "params", op->w_off),
                op->aux_off, op->aux_off + C, C, H, W);
        break;
    case PD_OP_ADD:
    case PD_OP_CONCAT: {
        fprintf(o, "    {\n        float *dins_[] = {");
        for (int i = 0; i < op->n_in; i++) fprintf(o, "%s%s", i ? ", " : "", gloc(e, 0, op->in[i]));
        fprintf(o, "};\n");
        if (ly->op == PD_OP_ADD) {
            fprintf(o, "        add_backward(dins_, %s, %d, (size_t)P_B * %" PRId64 ");\n",
                    gloc(e, 0, op->out), op->n_in, N);
        } else {
            fprintf(o, "        static const int ch_[] = {");
            for (int i = 0; i < op->n_in; i++) fprintf(o, "%s%d", i ? ", " : "", in_shape(e->m, ly, i)->dim[0]);
            int oc, oh, ow;
            chw(&ly->out, &oc, &oh, &ow);
            fprintf(o, "};\n        concat_backward(dins_, %s, ch_, %d, P_B, %d);\n",
                    gloc(e, 0, op->out), op->n_in, oh * ow);
        }
        fprintf(o, "    }\n");
        break;
    }
    default:
        fprintf(o, "#error unsupported op %s\n", pd_op_name(ly->op));
    }
}

void cg_emit_stage(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                   const char *banner) {
    const cg_stage *cs = &pr->stages[s];
    const pd_stage *ps = &p->stages[s];
    em e = {.o = o, .m = m, .cs = cs, .s = s};
    char nb[96];
    fputs(banner, o);
    fprintf(o, "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n"
               "#include \"ops.h\"\n#include \"init.h\"\n#include \"pdrt.h\"\n\n");
    /* sizes: P_ is this stage's prefix, so that every stage links into one --single binary */
    fprintf(o, "#define P_B S%d_BATCH\n", s);
    fprintf(o, "#define S%d_BATCH %d\n", s, m->batch);
    fprintf(o, "#define S%d_N_PARAMS %" PRId64 "\n#define S%d_N_BUFFERS %" PRId64 "\n", s, cs->n_params, s, cs->n_buffers);
    fprintf(o, "#define S%d_N_ACTS %" PRId64 "\n#define S%d_IN_FLOATS %" PRId64 "\n#define S%d_OUT_FLOATS %" PRId64 "\n\n",
            s, cs->n_acts, s, cs->in_floats, s, cs->out_floats);
    /* input and output packs */
    fprintf(o, "/* input pack (floats per minibatch at offset):");
    for (int i = 0; i < cs->n_in; i++)
        fprintf(o, " %s %" PRId64 "@%" PRId64, cs->in[i].layer ? safe(m->layers[cs->in[i].layer].name, nb, sizeof nb) : "input",
                cs->in[i].numel, cs->in[i].off);
    fprintf(o, "\n * output pack:");
    for (int i = 0; i < cs->n_out; i++)
        fprintf(o, " %s %" PRId64 "@%" PRId64, safe(m->layers[cs->out[i].layer].name, nb, sizeof nb),
                cs->out[i].numel, cs->out[i].off);
    fprintf(o, " */\n\n");

    /* tensor table */
    int nt = 0;
    fprintf(o, "static const pdrt_tensor S%d_tensors[] = {\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const cg_op *op = &cs->ops[i];
        const pd_layer *ly = &m->layers[op->layer];
        const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
        int64_t offs[4] = {op->w_off, op->b_off, op->buf_off, op->buf_off >= 0 ? op->buf_off + ly->out.dim[0] : -1};
        int64_t ns[4] = {ly->n_weight, ly->n_bias, ly->out.dim[0], ly->out.dim[0]};
        for (int t = 0; t < 4; t++) {
            if (offs[t] < 0) continue;
            fprintf(o, "    {");
            put_cstr(o, ly->name);
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

    /* init */
    fprintf(o, "static void S%d_init(float *params, float *buffers, uint64_t seed) {\n"
               "    (void)params; (void)buffers; (void)seed;\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const cg_op *op = &cs->ops[i];
        const pd_layer *ly = &m->layers[op->layer];
        int C, H, W;
        chw(in_shape(m, ly, 0), &C, &H, &W);
        if (ly->op == PD_OP_LINEAR)
            fprintf(o, "    pd_init_linear(%s, %s, seed, %d, %" PRId64 ", %d);\n", prm(&e, 0, "params", op->w_off),
                    prm(&e, 1, "params", op->b_off), op->layer, pd_shape_numel(in_shape(m, ly, 0)), ly->out_features);
        else if (ly->op == PD_OP_CONV2D)
            fprintf(o, "    pd_init_conv2d(%s, %s, seed, %d, %d, %d, %d, %d);\n", prm(&e, 0, "params", op->w_off),
                    prm(&e, 1, "params", op->b_off), op->layer, C, ly->out_channels, ly->kernel[0], ly->kernel[1]);
        else if (ly->op == PD_OP_BATCHNORM2D)
            fprintf(o, "    pd_init_batchnorm2d(%s, %s, buffers + %" PRId64 ", buffers + %" PRId64 ", %d);\n",
                    prm(&e, 0, "params", op->w_off), prm(&e, 1, "params", op->b_off), op->buf_off,
                    op->buf_off + C, C);
    }
    fprintf(o, "}\n\n");

    /* scratch */
    fprintf(o, "static int64_t S%d_scratch_floats(void) {\n    int64_t m = 0, t;\n    (void)t;\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const pd_layer *ly = &m->layers[cs->ops[i].layer];
        if (ly->op != PD_OP_CONV2D) continue;
        int C, H, W;
        chw(in_shape(m, ly, 0), &C, &H, &W);
        fprintf(o, "    t = (int64_t)conv2d_scratch_floats(P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n"
                   "    if (t > m) m = t;\n", C, H, W, ly->out_channels, ly->kernel[0], ly->kernel[1],
                ly->stride[0], ly->stride[1], ly->padding[0], ly->padding[1]);
    }
    fprintf(o, "    return m;\n}\n\n");

    /* forward */
    fprintf(o, "static void S%d_forward(float *out, float *acts, float *scratch, float *buffers,\n"
               "                        const float *params, const float *in, int training, uint64_t seed,\n"
               "                        int64_t step) {\n"
               "    (void)out; (void)acts; (void)scratch; (void)buffers; (void)params; (void)in;\n"
               "    (void)training; (void)seed; (void)step;\n", s);
    for (int i = 0; i < cs->n_ops; i++) emit_forward_op(&e, &cs->ops[i]);
    fprintf(o, "    /* output pack */\n");
    for (int i = 0; i < cs->n_out; i++) {
        cg_loc l = {0, 0};
        int layer = cs->out[i].layer;
        for (int j = 0; j < cs->n_ops; j++) if (cs->ops[j].layer == layer) l = cs->ops[j].out;
        for (int j = 0; j < cs->n_in; j++) if (cs->in[j].layer == layer) l = (cg_loc){CG_IN, cs->in[j].off};
        fprintf(o, "    memcpy(out + %" PRId64 ", %s, %" PRId64 " * sizeof(float));\n", cs->out[i].off,
                loc(&e, 0, l), cs->out[i].numel);
    }
    fprintf(o, "}\n\n");

    /* backward */
    fprintf(o, "static void S%d_backward(float *din, float *dparams, float *dacts, float *scratch,\n"
               "                         const float *dout, const float *acts, const float *params,\n"
               "                         const float *in) {\n"
               "    (void)din; (void)scratch; (void)acts; (void)params; (void)in;\n"
               "    memset(dparams, 0, (S%d_N_PARAMS ? S%d_N_PARAMS : 1) * sizeof(float));\n"
               "    memset(dacts, 0, (S%d_N_ACTS ? S%d_N_ACTS : 1) * sizeof(float));\n"
               "    if (din) memset(din, 0, (S%d_IN_FLOATS ? S%d_IN_FLOATS : 1) * sizeof(float));\n"
               "    /* output pack gradients */\n", s, s, s, s, s, s, s);
    for (int i = 0; i < cs->n_out; i++) {
        cg_loc l = {0, 0};
        int layer = cs->out[i].layer;
        for (int j = 0; j < cs->n_ops; j++) if (cs->ops[j].layer == layer) l = cs->ops[j].out;
        for (int j = 0; j < cs->n_in; j++) if (cs->in[j].layer == layer) l = (cg_loc){CG_IN, cs->in[j].off};
        const char *g = gloc(&e, 0, l);
        if (strcmp(g, "NULL"))
            fprintf(o, "    identity_backward(%s, dout + %" PRId64 ", %" PRId64 ");\n", g, cs->out[i].off,
                    cs->out[i].numel);
    }
    for (int i = cs->n_ops - 1; i >= 0; i--) emit_backward_op(&e, &cs->ops[i]);
    fprintf(o, "}\n\n");

    /* descriptor */
    int ic, ih, iw;
    chw(&m->input, &ic, &ih, &iw);
    fprintf(o, "const pdrt_stage S%d_stage = {\n", s);
    fprintf(o, "    .abi = PDRT_ABI,\n    .model = ");
    put_cstr(o, m->name);
    fprintf(o, ",\n    .index = %d,\n    .n_stages = %d,\n    .batch = S%d_BATCH,\n    .classes = %d,\n", s,
            p->n_stages, s, m->classes);
    fprintf(o, "    .in_c = %d,\n    .in_h = %d,\n    .in_w = %d,\n    .dataset = ", ic, ih, iw);
    put_cstr(o, m->dataset);
    fprintf(o, ",\n    .in_floats = S%d_IN_FLOATS,\n    .out_floats = S%d_OUT_FLOATS,\n", s, s);
    fprintf(o, "    .n_params = S%d_N_PARAMS,\n    .n_buffers = S%d_N_BUFFERS,\n    .n_acts = S%d_N_ACTS,\n"
               "    .n_scratch = 0,\n", s, s, s);
    fprintf(o, "    .n_tensors = %d,\n    .tensors = S%d_tensors,\n", nt, s);
    fprintf(o, "    .init = S%d_init,\n    .forward = S%d_forward,\n    .backward = S%d_backward,\n"
               "    .scratch_floats = S%d_scratch_floats,\n", s, s, s, s);
    fprintf(o, "    .warmup = S%d_warmup,\n    .weight_versions = %d,\n    .schedule = ", s, ps->weight_versions);
    put_cstr(o, p->schedule[0] ? p->schedule : "1f1b");
    fprintf(o, ",\n    .predicted_ms = %.17g,\n    .predicted_compute_ms = %.17g,\n", ps->time_ms,
            ps->compute_ms);
    fprintf(o, "    .optimizer = %d,\n    .lr = %.17g,\n    .momentum = %.17g,\n    .weight_decay = %.17g,\n",
            m->optimizer == PD_OPT_ADAM ? 1 : 0, m->lr, m->momentum, m->weight_decay);
    fprintf(o, "    .beta1 = %.17g,\n    .beta2 = %.17g,\n    .adam_eps = %.17g,\n    .epochs = %d,\n",
            m->beta1, m->beta2, m->adam_eps, m->epochs);
    int reps[256], nr = p->n_stages < 256 ? p->n_stages : 256;
    for (int k = 0; k < nr; k++) reps[k] = p->stages[k].replicas;
    fprintf(o, "    .replicas = S%d_replicas,\n    .microbatches = %d,\n    .vertical_sync = %d,\n", s,
            pd_schedule_default_microbatches(nr, reps), p->vertical_sync);
    fprintf(o, "    .plan_hash = ");
    put_cstr(o, pr->plan_hash);
    fprintf(o, ",\n};\n\n");
    fprintf(o, "#ifndef PDRT_NO_MAIN\nint main(int argc, char **argv) { return pdrt_main(argc, argv, &S%d_stage); }\n#endif\n", s);
    fprintf(o, "#undef P_B\n");
}
