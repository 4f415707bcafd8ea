/* emit_cuda.c: the CUDA printer (pdplan --backend cuda). Prints one stage_<k>.cu from the same
 * resolved program as emit.c (resolve.h): the same sizes, offsets, packs and tensor table, with
 * forward and backward as straight-line calls to runtime/cuda/ops_cuda.h on device pointers
 * (cuBLASLt with a fused bias+ReLU epilogue where a linear feeds only a ReLU, cuDNN convolution
 * and batch norm, own kernels for the rest), the host init of the CPU backend (the runtime
 * uploads it, so both backends start from the same weights), the scratch size the context needs
 * at each precision, and a pdrt_cuda_stage descriptor for pdrt_cuda_main (pdrt_cuda.h). */
#include "emit.h"
#include "schedule.h"

#include <inttypes.h>
#include <string.h>

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
    int s;
    char a[8][96];
} em;

static const char *loc(em *e, int slot, cg_loc l) {
    snprintf(e->a[slot], sizeof e->a[slot], "%s + %" PRId64, l.base == CG_IN ? "in" : "acts", l.off);
    return e->a[slot];
}

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

/* Op i is a linear whose only consumer in the whole model is op i+1, a ReLU, and whose output
 * does not leave the stage: the pair becomes one cuBLASLt GEMM with the RELU_BIAS epilogue. */
static int fuses_with_relu(const em *e, int i) {
    const cg_stage *cs = e->cs;
    if (i + 1 >= cs->n_ops) return 0;
    const pd_layer *lin = &e->m->layers[cs->ops[i].layer];
    const pd_layer *re = &e->m->layers[cs->ops[i + 1].layer];
    if (lin->op != PD_OP_LINEAR || re->op != PD_OP_RELU) return 0;
    if (re->n_inputs != 1 || re->inputs[0] != cs->ops[i].layer) return 0;
    int users = 0;
    for (int j = 0; j < e->m->n_layers; j++)
        for (int q = 0; q < e->m->layers[j].n_inputs; q++)
            users += e->m->layers[j].inputs[q] == cs->ops[i].layer;
    if (users != 1) return 0;
    for (int j = 0; j < cs->n_out; j++)
        if (cs->out[j].layer == cs->ops[i].layer) return 0;
    return 1;
}

static void emit_forward_op(em *e, int i) {
    FILE *o = e->o;
    const cg_op *op = &e->cs->ops[i];
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = in_shape(e->m, ly, 0);
    int C, H, W, k[2], st[2], pad[2];
    chw(is, &C, &H, &W);
    int64_t N = op->out_numel;
    char nb[96];
    fprintf(o, "    /* %s: %s */\n", safe(ly->name, nb, sizeof nb), pd_op_name(ly->op));
    switch (ly->op) {
    case PD_OP_LINEAR:
        if (fuses_with_relu(e, i)) {
            const cg_op *re = &e->cs->ops[i + 1];
            fprintf(o, "    linear_relu_forward_cuda(ctx, %s, %s, %s, %s, P_B, %" PRId64 ", %d); /* + %s */\n",
                    loc(e, 0, re->out), loc(e, 1, op->in[0]), prm(e, 2, "params", op->w_off),
                    prm(e, 3, "params", op->b_off), pd_shape_numel(is), ly->out_features,
                    safe(e->m->layers[re->layer].name, nb, sizeof nb));
        } else {
            fprintf(o, "    linear_forward_cuda(ctx, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n",
                    loc(e, 0, op->out), loc(e, 1, op->in[0]), prm(e, 2, "params", op->w_off),
                    prm(e, 3, "params", op->b_off), pd_shape_numel(is), ly->out_features);
        }
        break;
    case PD_OP_CONV2D:
        fprintf(o, "    conv2d_forward_cuda(ctx, %s, %s, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                loc(e, 0, op->out), loc(e, 1, op->in[0]), prm(e, 2, "params", op->w_off),
                prm(e, 3, "params", op->b_off), C, H, W, ly->out_channels, ly->kernel[0],
                ly->kernel[1], ly->stride[0], ly->stride[1], ly->padding[0], ly->padding[1]);
        break;
    case PD_OP_RELU:
        if (i > 0 && fuses_with_relu(e, i - 1)) fprintf(o, "    /* fused into the linear above */\n");
        else
            fprintf(o, "    relu_forward_cuda(ctx, %s, %s, (size_t)P_B * %" PRId64 ");\n",
                    loc(e, 0, op->out), loc(e, 1, op->in[0]), N);
        break;
    case PD_OP_MAXPOOL2D:
    case PD_OP_AVGPOOL2D:
        window(ly, is, k, st, pad);
        if (ly->op == PD_OP_MAXPOOL2D)
            fprintf(o, "    maxpool2d_forward_cuda(ctx, %s, (int *)(acts + %" PRId64 "), %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    loc(e, 0, op->out), op->aux_off, loc(e, 1, op->in[0]), C, H, W, k[0], k[1],
                    st[0], st[1], pad[0], pad[1]);
        else
            fprintf(o, "    avgpool2d_forward_cuda(ctx, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    loc(e, 0, op->out), loc(e, 1, op->in[0]), C, H, W, k[0], k[1], st[0], st[1],
                    pad[0], pad[1]);
        break;
    case PD_OP_FLATTEN:
        fprintf(o, "    /* no-op: its output is its input's memory */\n");
        break;
    case PD_OP_DROPOUT:
        fprintf(o, "    if (training) dropout_forward_cuda(ctx, %s, acts + %" PRId64 ", %s, (float)%.17g, seed, step, %d, 0, P_B, %" PRId64 ");\n",
                loc(e, 0, op->out), op->aux_off, loc(e, 1, op->in[0]), ly->p, op->layer, N);
        fprintf(o, "    else identity_forward_cuda(ctx, %s, %s, (size_t)P_B * %" PRId64 ");\n",
                loc(e, 0, op->out), loc(e, 1, op->in[0]), N);
        break;
    case PD_OP_BATCHNORM2D:
        fprintf(o, "    if (training) batchnorm2d_forward_cuda(ctx, %s, acts + %" PRId64 ", acts + %" PRId64 ", buffers + %" PRId64 ", buffers + %" PRId64 ", %s, %s, %s, (float)%.17g, (float)%.17g, P_B, %d, %d, %d);\n",
                loc(e, 0, op->out), op->aux_off, op->aux_off + C, op->buf_off, op->buf_off + C,
                loc(e, 1, op->in[0]), prm(e, 2, "params", op->w_off), prm(e, 3, "params", op->b_off),
                ly->momentum, ly->eps, C, H, W);
        fprintf(o, "    else batchnorm2d_forward_eval_cuda(ctx, %s, %s, %s, %s, buffers + %" PRId64 ", buffers + %" PRId64 ", (float)%.17g, P_B, %d, %d, %d);\n",
                loc(e, 0, op->out), loc(e, 1, op->in[0]), prm(e, 2, "params", op->w_off),
                prm(e, 3, "params", op->b_off), op->buf_off, op->buf_off + C, ly->eps, C, H, W);
        break;
    case PD_OP_ADD:
    case PD_OP_CONCAT: {
        fprintf(o, "    {\n        const float *ins_[] = {");
        for (int j = 0; j < op->n_in; j++) fprintf(o, "%s%s", j ? ", " : "", loc(e, 0, op->in[j]));
        fprintf(o, "};\n");
        if (ly->op == PD_OP_ADD) {
            fprintf(o, "        add_forward_cuda(ctx, %s, ins_, %d, (size_t)P_B * %" PRId64 ");\n",
                    loc(e, 0, op->out), op->n_in, N);
        } else {
            fprintf(o, "        static const int ch_[] = {");
            for (int j = 0; j < op->n_in; j++) fprintf(o, "%s%d", j ? ", " : "", in_shape(e->m, ly, j)->dim[0]);
            int oc, oh, ow;
            chw(&ly->out, &oc, &oh, &ow);
            fprintf(o, "};\n        concat_forward_cuda(ctx, %s, ins_, ch_, %d, P_B, %d);\n",
                    loc(e, 0, op->out), op->n_in, oh * ow);
        }
        fprintf(o, "    }\n");
        break;
    }
    default:
        fprintf(o, "#error unsupported op %s\n", pd_op_name(ly->op));
    }
}

static void emit_backward_op(em *e, int i) {
    FILE *o = e->o;
    const cg_op *op = &e->cs->ops[i];
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
        if (fuses_with_relu(e, i)) {
            const cg_op *re = &e->cs->ops[i + 1];
            fprintf(o, "    linear_relu_backward_cuda(ctx, %s, %s, %s, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n",
                    din, prm(e, 1, "dparams", op->w_off), prm(e, 2, "dparams", op->b_off),
                    gloc(e, 3, re->out), loc(e, 4, re->out), loc(e, 5, op->in[0]),
                    prm(e, 6, "params", op->w_off), pd_shape_numel(is), ly->out_features);
        } else {
            fprintf(o, "    linear_backward_cuda(ctx, %s, %s, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n",
                    din, prm(e, 1, "dparams", op->w_off), prm(e, 2, "dparams", op->b_off),
                    gloc(e, 3, op->out), loc(e, 4, op->in[0]), prm(e, 5, "params", op->w_off),
                    pd_shape_numel(is), ly->out_features);
        }
        break;
    case PD_OP_CONV2D:
        fprintf(o, "    conv2d_backward_cuda(ctx, %s, %s, %s, %s, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                din, prm(e, 1, "dparams", op->w_off), prm(e, 2, "dparams", op->b_off),
                gloc(e, 3, op->out), loc(e, 4, op->in[0]), prm(e, 5, "params", op->w_off), C, H, W,
                ly->out_channels, ly->kernel[0], ly->kernel[1], ly->stride[0], ly->stride[1],
                ly->padding[0], ly->padding[1]);
        break;
    case PD_OP_RELU:
        if (i > 0 && fuses_with_relu(e, i - 1)) fprintf(o, "    /* fused into the linear below */\n");
        else if (!no_din)
            fprintf(o, "    relu_backward_cuda(ctx, %s, %s, %s, (size_t)P_B * %" PRId64 ");\n", din,
                    gloc(e, 1, op->out), loc(e, 2, op->out), N);
        break;
    case PD_OP_MAXPOOL2D:
    case PD_OP_AVGPOOL2D:
        if (no_din) break;
        window(ly, is, k, st, pad);
        if (ly->op == PD_OP_MAXPOOL2D)
            fprintf(o, "    maxpool2d_backward_cuda(ctx, %s, %s, (const int *)(acts + %" PRId64 "), P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    din, gloc(e, 1, op->out), op->aux_off, C, H, W, k[0], k[1], st[0], st[1],
                    pad[0], pad[1]);
        else
            fprintf(o, "    avgpool2d_backward_cuda(ctx, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    din, gloc(e, 1, op->out), C, H, W, k[0], k[1], st[0], st[1], pad[0], pad[1]);
        break;
    case PD_OP_FLATTEN:
        fprintf(o, "    /* no-op: its gradient is its input's gradient */\n");
        break;
    case PD_OP_DROPOUT:
        if (!no_din)
            fprintf(o, "    dropout_backward_cuda(ctx, %s, %s, acts + %" PRId64 ", (size_t)P_B * %" PRId64 ");\n",
                    din, gloc(e, 1, op->out), op->aux_off, N);
        break;
    case PD_OP_BATCHNORM2D:
        fprintf(o, "    batchnorm2d_backward_cuda(ctx, %s, %s, %s, %s, %s, %s, acts + %" PRId64 ", acts + %" PRId64 ", P_B, %d, %d, %d);\n",
                no_din ? "NULL" : din, prm(e, 1, "dparams", op->w_off), prm(e, 2, "dparams", op->b_off),
                gloc(e, 3, op->out), loc(e, 4, op->in[0]), prm(e, 5, "params", op->w_off),
                op->aux_off, op->aux_off + C, C, H, W);
        break;
    case PD_OP_ADD:
    case PD_OP_CONCAT: {
        fprintf(o, "    {\n        float *dins_[] = {");
        for (int j = 0; j < op->n_in; j++) fprintf(o, "%s%s", j ? ", " : "", gloc(e, 0, op->in[j]));
        fprintf(o, "};\n");
        if (ly->op == PD_OP_ADD) {
            fprintf(o, "        add_backward_cuda(ctx, dins_, %s, %d, (size_t)P_B * %" PRId64 ");\n",
                    gloc(e, 0, op->out), op->n_in, N);
        } else {
            fprintf(o, "        static const int ch_[] = {");
            for (int j = 0; j < op->n_in; j++) fprintf(o, "%s%d", j ? ", " : "", in_shape(e->m, ly, j)->dim[0]);
            int oc, oh, ow;
            chw(&ly->out, &oc, &oh, &ow);
            fprintf(o, "};\n        concat_backward_cuda(ctx, dins_, %s, ch_, %d, P_B, %d);\n",
                    gloc(e, 0, op->out), op->n_in, oh * ow);
        }
        fprintf(o, "    }\n");
        break;
    }
    default:
        fprintf(o, "#error unsupported op %s\n", pd_op_name(ly->op));
    }
}

/* Where the output pack's tensor of `layer` lives in this stage. */
static cg_loc pack_src(const cg_stage *cs, int layer) {
    cg_loc l = {0, 0};
    for (int j = 0; j < cs->n_ops; j++) if (cs->ops[j].layer == layer) l = cs->ops[j].out;
    for (int j = 0; j < cs->n_in; j++) if (cs->in[j].layer == layer) l = (cg_loc){CG_IN, cs->in[j].off};
    return l;
}

void cg_emit_stage_cuda(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                        const char *banner, int precision) {
    const cg_stage *cs = &pr->stages[s];
    const pd_stage *ps = &p->stages[s];
    em e = {.o = o, .m = m, .cs = cs, .s = s};
    char nb[96];
    fputs(banner, o);
    fprintf(o, "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n"
               "#include \"pdrt_cuda.h\"\n"
               "extern \"C\" {\n#include \"init.h\"\n}\n\n");
    fprintf(o, "#define P_B S%d_BATCH\n", s);
    fprintf(o, "#define S%d_BATCH %d\n", s, m->batch);
    fprintf(o, "#define S%d_N_PARAMS %" PRId64 "\n#define S%d_N_BUFFERS %" PRId64 "\n", s, cs->n_params, s, cs->n_buffers);
    fprintf(o, "#define S%d_N_ACTS %" PRId64 "\n#define S%d_IN_FLOATS %" PRId64 "\n#define S%d_OUT_FLOATS %" PRId64 "\n\n",
            s, cs->n_acts, s, cs->in_floats, s, cs->out_floats);
    fprintf(o, "/* input pack (floats per minibatch at offset):");
    for (int i = 0; i < cs->n_in; i++)
        fprintf(o, " %s %" PRId64 "@%" PRId64, cs->in[i].layer ? safe(m->layers[cs->in[i].layer].name, nb, sizeof nb) : "input",
                cs->in[i].numel, cs->in[i].off);
    fprintf(o, "\n * output pack:");
    for (int i = 0; i < cs->n_out; i++)
        fprintf(o, " %s %" PRId64 "@%" PRId64, safe(m->layers[cs->out[i].layer].name, nb, sizeof nb),
                cs->out[i].numel, cs->out[i].off);
    fprintf(o, " */\n\n");

    /* tensor table (the same as the CPU stage's: --save/--init files are interchangeable) */
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
    fprintf(o, "};\n\nstatic const int S%d_replicas[] = {", s);
    for (int k = 0; k < p->n_stages; k++) fprintf(o, "%s%d", k ? ", " : "", p->stages[k].replicas);
    fprintf(o, "};\n\n");

    /* init: on the host, exactly the CPU stage's (the runtime uploads the result) */
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

    /* the context's scratch arena: the most any op of this stage needs at that precision */
    fprintf(o, "static size_t S%d_scratch_bytes(pd_cuda_precision prec) {\n    size_t m = 0, t;\n"
               "    (void)prec; (void)t;\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const pd_layer *ly = &m->layers[cs->ops[i].layer];
        int C, H, W;
        chw(in_shape(m, ly, 0), &C, &H, &W);
        if (ly->op == PD_OP_LINEAR)
            fprintf(o, "    t = linear_cuda_scratch_bytes(prec, P_B, %" PRId64 ", %d);\n",
                    pd_shape_numel(in_shape(m, ly, 0)), ly->out_features);
        else if (ly->op == PD_OP_CONV2D)
            fprintf(o, "    t = conv2d_cuda_scratch_bytes(prec, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    C, H, W, ly->out_channels, ly->kernel[0], ly->kernel[1], ly->stride[0],
                    ly->stride[1], ly->padding[0], ly->padding[1]);
        else if (ly->op == PD_OP_BATCHNORM2D)
            fprintf(o, "    t = batchnorm2d_cuda_scratch_bytes(P_B, %d, %d, %d);\n", C, H, W);
        else
            continue;
        fprintf(o, "    if (t > m) m = t;\n");
    }
    fprintf(o, "    return m;\n}\n\n");

    /* forward */
    fprintf(o, "static void S%d_forward(pd_cuda_ctx *ctx, float *out, float *acts, float *buffers,\n"
               "                        const float *params, const float *in, int training, uint64_t seed,\n"
               "                        int64_t step) {\n"
               "    (void)ctx; (void)out; (void)acts; (void)buffers; (void)params; (void)in;\n"
               "    (void)training; (void)seed; (void)step;\n", s);
    for (int i = 0; i < cs->n_ops; i++) emit_forward_op(&e, i);
    fprintf(o, "    /* output pack */\n");
    for (int i = 0; i < cs->n_out; i++)
        fprintf(o, "    identity_forward_cuda(ctx, out + %" PRId64 ", %s, %" PRId64 ");\n", cs->out[i].off,
                loc(&e, 0, pack_src(cs, cs->out[i].layer)), cs->out[i].numel);
    fprintf(o, "}\n\n");

    /* backward: accumulates into dparams (the runtime's accumulator), zeroes dacts and din */
    fprintf(o, "static void S%d_backward(pd_cuda_ctx *ctx, float *din, float *dparams, float *dacts,\n"
               "                         const float *dout, const float *acts, const float *params,\n"
               "                         const float *in) {\n"
               "    (void)din; (void)dparams; (void)acts; (void)params; (void)in;\n"
               "    pd_cuda_zero(ctx, dacts, (S%d_N_ACTS ? S%d_N_ACTS : 1) * sizeof(float));\n"
               "    if (din) pd_cuda_zero(ctx, din, (S%d_IN_FLOATS ? S%d_IN_FLOATS : 1) * sizeof(float));\n"
               "    /* output pack gradients */\n", s, s, s, s, s);
    for (int i = 0; i < cs->n_out; i++) {
        const char *g = gloc(&e, 0, pack_src(cs, cs->out[i].layer));
        if (strcmp(g, "NULL"))
            fprintf(o, "    identity_backward_cuda(ctx, %s, dout + %" PRId64 ", %" PRId64 ");\n", g,
                    cs->out[i].off, cs->out[i].numel);
    }
    for (int i = cs->n_ops - 1; i >= 0; i--) emit_backward_op(&e, i);
    fprintf(o, "}\n\n");

    /* descriptor, filled field by field */
    int ic, ih, iw;
    chw(&m->input, &ic, &ih, &iw);
    fprintf(o, "static pdrt_cuda_stage S%d_describe(void) {\n    pdrt_cuda_stage c;\n"
               "    memset(&c, 0, sizeof c);\n    pdrt_stage *b = &c.base;\n"
               "    c.abi = PDRT_CUDA_ABI;\n    b->abi = PDRT_ABI;\n    b->model = ", s);
    put_cstr(o, m->name);
    fprintf(o, ";\n    b->index = %d;\n    b->n_stages = %d;\n    b->batch = S%d_BATCH;\n    b->classes = %d;\n",
            s, p->n_stages, s, m->classes);
    fprintf(o, "    b->in_c = %d;\n    b->in_h = %d;\n    b->in_w = %d;\n    b->dataset = ", ic, ih, iw);
    put_cstr(o, m->dataset);
    fprintf(o, ";\n    b->in_floats = S%d_IN_FLOATS;\n    b->out_floats = S%d_OUT_FLOATS;\n", s, s);
    fprintf(o, "    b->n_params = S%d_N_PARAMS;\n    b->n_buffers = S%d_N_BUFFERS;\n    b->n_acts = S%d_N_ACTS;\n",
            s, s, s);
    fprintf(o, "    b->n_tensors = %d;\n    b->tensors = S%d_tensors;\n    b->init = S%d_init;\n", nt, s, s);
    fprintf(o, "    b->warmup = S%d_warmup;\n    b->weight_versions = %d;\n    b->schedule = ", s,
            ps->weight_versions);
    put_cstr(o, p->schedule[0] ? p->schedule : "1f1b");
    fprintf(o, ";\n    b->predicted_ms = %.17g;\n    b->predicted_compute_ms = %.17g;\n", ps->time_ms,
            ps->compute_ms);
    fprintf(o, "    b->optimizer = %d;\n    b->lr = %.17g;\n    b->momentum = %.17g;\n    b->weight_decay = %.17g;\n",
            m->optimizer == PD_OPT_ADAM ? 1 : 0, m->lr, m->momentum, m->weight_decay);
    fprintf(o, "    b->beta1 = %.17g;\n    b->beta2 = %.17g;\n    b->adam_eps = %.17g;\n    b->epochs = %d;\n",
            m->beta1, m->beta2, m->adam_eps, m->epochs);
    int reps[256], nr = p->n_stages < 256 ? p->n_stages : 256;
    for (int k = 0; k < nr; k++) reps[k] = p->stages[k].replicas;
    fprintf(o, "    b->replicas = S%d_replicas;\n    b->microbatches = %d;\n    b->vertical_sync = %d;\n", s,
            pd_schedule_default_microbatches(nr, reps), p->vertical_sync);
    fprintf(o, "    c.forward = S%d_forward;\n    c.backward = S%d_backward;\n"
               "    c.scratch_bytes = S%d_scratch_bytes;\n    c.precision = %s;\n    return c;\n}\n\n",
            s, s, s, precision ? "PD_CUDA_BF16" : "PD_CUDA_FP32");
    fprintf(o, "int main(int argc, char **argv) {\n    pdrt_cuda_stage c = S%d_describe();\n"
               "    return pdrt_cuda_main(argc, argv, &c);\n}\n", s);
    fprintf(o, "#undef P_B\n");
}
