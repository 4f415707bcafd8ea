/* emit_cuda.c: the CUDA printer (pdplan --backend cuda). Prints one stage_<k>.cu from the same
 * resolved program as emit.c (resolve.h): the same sizes, offsets, packs and tensor table, with
 * forward and backward as straight-line calls to runtime/cuda/ops_cuda.h on device pointers
 * (cuBLASLt with a fused bias+ReLU epilogue where a linear feeds only a ReLU, cuDNN convolution
 * and batch norm, own kernels for the rest), the host init of the CPU backend (the runtime
 * uploads it, so both backends start from the same weights), the scratch size the context needs
 * at each precision, and a pdrt_cuda_stage descriptor for pdrt_cuda_main (pdrt_cuda.h). */
#include "emit.h"
#include "emit_common.h"
#include "runtime/schedule/schedule.h"

#include <inttypes.h>
#include <string.h>

/* Op i is a linear whose only consumer in the whole model is op i+1, a ReLU, and whose output
 * does not leave the stage: the pair becomes one cuBLASLt GEMM with the RELU_BIAS epilogue. */
static int fuses_with_relu(const cg_em *e, int i) {
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

static void emit_forward_op(cg_em *e, int i) {
    FILE *o = e->o;
    const cg_op *op = &e->cs->ops[i];
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = cg_in_shape(e->m, ly, 0);
    char nb[96];
    cg_emit_op_comment(e, op);
    switch (ly->op) {
    case PD_OP_LINEAR:
        if (fuses_with_relu(e, i)) {
            const cg_op *re = &e->cs->ops[i + 1];
            fprintf(o, "    pdrt_linear_relu_forward_cuda(ctx, %s, %s, %s, %s, P_B, %" PRId64 ", %d); /* + %s */\n",
                    cg_em_loc(e, 0, re->out), cg_em_loc(e, 1, op->in[0]), cg_em_prm(e, 2, "params", op->w_off),
                    cg_em_prm(e, 3, "params", op->b_off), pd_shape_numel(is), ly->out_features,
                    cg_safe(e->m->layers[re->layer].name, nb, sizeof nb));
            break;
        }
        cg_emit_op_forward(e, op, "ctx, ", "_cuda");
        break;
    case PD_OP_RELU:
        if (i > 0 && fuses_with_relu(e, i - 1)) {
            fprintf(o, "    /* fused into the linear above */\n");
            break;
        }
        /* fall through */
    default:
        cg_emit_op_forward(e, op, "ctx, ", "_cuda");
    }
}

static void emit_backward_op(cg_em *e, int i) {
    FILE *o = e->o;
    const cg_op *op = &e->cs->ops[i];
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = cg_in_shape(e->m, ly, 0);
    const char *din = cg_em_gloc(e, 0, op->in[0]);
    cg_emit_op_comment(e, op);
    switch (ly->op) {
    case PD_OP_LINEAR:
        if (fuses_with_relu(e, i)) {
            const cg_op *re = &e->cs->ops[i + 1];
            fprintf(o, "    pdrt_linear_relu_backward_cuda(ctx, %s, %s, %s, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n",
                    din, cg_em_prm(e, 1, "dparams", op->w_off), cg_em_prm(e, 2, "dparams", op->b_off),
                    cg_em_gloc(e, 3, re->out), cg_em_loc(e, 4, re->out), cg_em_loc(e, 5, op->in[0]),
                    cg_em_prm(e, 6, "params", op->w_off), pd_shape_numel(is), ly->out_features);
            break;
        }
        cg_emit_op_backward(e, op, "ctx, ", "_cuda");
        break;
    case PD_OP_RELU:
        if (i > 0 && fuses_with_relu(e, i - 1)) {
            fprintf(o, "    /* fused into the linear below */\n");
            break;
        }
        /* fall through */
    default:
        cg_emit_op_backward(e, op, "ctx, ", "_cuda");
    }
}

void cg_emit_stage_cuda(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                        const char *banner, int precision) {
    const cg_stage *cs = &pr->stages[s];
    cg_em e = {.o = o, .m = m, .cs = cs, .s = s, .conv_scratch = ""};
    fputs(banner, o);
    fprintf(o, "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n"
               "#include \"pdrt_cuda.h\"\n"
               "extern \"C\" {\n#include \"init.h\"\n}\n\n");
    cg_emit_sizes(&e);

    int nt = cg_emit_tables(&e, p);

    /* init: on the host, exactly the CPU stage's (the runtime uploads the result) */
    cg_emit_init(&e);

    /* the context's scratch arena: the most any op of this stage needs at that precision */
    fprintf(o, "static size_t S%d_scratch_bytes(pd_cuda_precision prec) {\n    size_t m = 0, t;\n"
               "    (void)prec; (void)t;\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const pd_layer *ly = &m->layers[cs->ops[i].layer];
        int C, H, W;
        cg_chw(cg_in_shape(m, ly, 0), &C, &H, &W);
        if (ly->op == PD_OP_LINEAR)
            fprintf(o, "    t = pdrt_linear_cuda_scratch_bytes(prec, P_B, %" PRId64 ", %d);\n",
                    pd_shape_numel(cg_in_shape(m, ly, 0)), ly->out_features);
        else if (ly->op == PD_OP_CONV2D)
            fprintf(o, "    t = pdrt_conv2d_cuda_scratch_bytes(prec, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                    C, H, W, ly->out_channels, ly->kernel[0], ly->kernel[1], ly->stride[0],
                    ly->stride[1], ly->padding[0], ly->padding[1]);
        else if (ly->op == PD_OP_BATCHNORM2D)
            fprintf(o, "    t = pdrt_batchnorm2d_cuda_scratch_bytes(P_B, %d, %d, %d);\n", C, H, W);
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
        fprintf(o, "    pdrt_identity_forward_cuda(ctx, out + %" PRId64 ", %s, %" PRId64 ");\n", cs->out[i].off,
                cg_em_loc(&e, 0, cg_pack_src(cs, cs->out[i].layer)), cs->out[i].numel);
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
        const char *g = cg_em_gloc(&e, 0, cg_pack_src(cs, cs->out[i].layer));
        if (strcmp(g, "NULL"))
            fprintf(o, "    pdrt_identity_backward_cuda(ctx, %s, dout + %" PRId64 ", %" PRId64 ");\n", g,
                    cs->out[i].off, cs->out[i].numel);
    }
    for (int i = cs->n_ops - 1; i >= 0; i--) emit_backward_op(&e, i);
    fprintf(o, "}\n\n");

    /* descriptor, filled field by field */
    fprintf(o, "static pdrt_cuda_stage S%d_describe(void) {\n    pdrt_cuda_stage c;\n"
               "    memset(&c, 0, sizeof c);\n    pdrt_stage *b = &c.base;\n"
               "    c.abi = PDRT_CUDA_ABI;\n", s);
    cg_emit_desc(&e, p, nt, CG_DESC_SHAPE, "    b->", ";");
    cg_emit_desc(&e, p, nt, CG_DESC_TABLES, "    b->", ";");
    cg_emit_desc(&e, p, nt, CG_DESC_TRAINING, "    b->", ";");
    fprintf(o, "    c.forward = S%d_forward;\n    c.backward = S%d_backward;\n"
               "    c.scratch_bytes = S%d_scratch_bytes;\n    c.precision = %s;\n    return c;\n}\n\n",
            s, s, s, precision ? "PD_CUDA_BF16" : "PD_CUDA_FP32");
    fprintf(o, "int main(int argc, char **argv) {\n    pdrt_cuda_stage c = S%d_describe();\n"
               "    return pdrt_cuda_main(argc, argv, &c);\n}\n", s);
    fprintf(o, "#undef P_B\n");
}
