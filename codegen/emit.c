/* emit.c: the dumb printer. Prints one stage_<k>.c from what resolve.c computed: sizes and
 * offsets as #defines with the stage's prefix, init/forward/backward as straight-line calls to
 * runtime/ops.h with constant shapes, the tensor table and the pdrt_stage descriptor. */
#include "emit.h"
#include "emit_common.h"
#include "schedule.h"

#include <inttypes.h>
#include <string.h>

static void emit_forward_op(cg_em *e, const cg_op *op) {
    FILE *o = e->o;
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = cg_in_shape(e->m, ly, 0);
    int C, H, W;
    cg_chw(is, &C, &H, &W);
    cg_emit_op_comment(e, op);
    switch (ly->op) {
    case PD_OP_LINEAR:
        fprintf(o, "    linear_forward(%s, %s, %s, %s, P_B, %" PRId64 ", %d);\n", cg_em_loc(e, 0, op->out),
                cg_em_loc(e, 1, op->in[0]), cg_em_prm(e, 2, "params", op->w_off), cg_em_prm(e, 3, "params", op->b_off),
                pd_shape_numel(is), ly->out_features);
        break;
    case PD_OP_CONV2D:
        fprintf(o, "    conv2d_forward(%s, scratch, %s, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                cg_em_loc(e, 0, op->out), cg_em_loc(e, 1, op->in[0]), cg_em_prm(e, 2, "params", op->w_off),
                cg_em_prm(e, 3, "params", op->b_off), C, H, W, ly->out_channels, ly->kernel[0],
                ly->kernel[1], ly->stride[0], ly->stride[1], ly->padding[0], ly->padding[1]);
        break;
    default:
        cg_emit_op_forward(e, op, "", "");
    }
}

static void emit_backward_op(cg_em *e, const cg_op *op) {
    FILE *o = e->o;
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = cg_in_shape(e->m, ly, 0);
    int C, H, W;
    cg_chw(is, &C, &H, &W);
    const char *din = cg_em_gloc(e, 0, op->in[0]);
    cg_emit_op_comment(e, op);
    switch (ly->op) {
    case PD_OP_LINEAR:
        fprintf(o, "    linear_backward(%s, %s, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n", din,
                cg_em_prm(e, 1, "dparams", op->w_off), cg_em_prm(e, 2, "dparams", op->b_off),
                cg_em_gloc(e, 3, op->out), cg_em_loc(e, 4, op->in[0]), cg_em_prm(e, 5, "params", op->w_off),
                pd_shape_numel(is), ly->out_features);
        break;
    case PD_OP_CONV2D:
        fprintf(o, "    conv2d_backward(%s, %s, %s, scratch, %s, %s, %s, P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n",
                din, cg_em_prm(e, 1, "dparams", op->w_off), cg_em_prm(e, 2, "dparams", op->b_off),
                cg_em_gloc(e, 3, op->out), cg_em_loc(e, 4, op->in[0]), cg_em_prm(e, 5, "params", op->w_off), C, H, W,
                ly->out_channels, ly->kernel[0], ly->kernel[1], ly->stride[0], ly->stride[1],
                ly->padding[0], ly->padding[1]);
        break;
    default:
        cg_emit_op_backward(e, op, "", "");
    }
}

void cg_emit_stage(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                   const char *banner) {
    const cg_stage *cs = &pr->stages[s];
    cg_em e = {.o = o, .m = m, .cs = cs, .s = s};
    fputs(banner, o);
    fprintf(o, "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n"
               "#include \"ops.h\"\n#include \"init.h\"\n#include \"pdrt.h\"\n\n");
    cg_emit_sizes(&e);

    int nt = cg_emit_tables(&e, p);

    cg_emit_init(&e);

    /* scratch */
    fprintf(o, "static int64_t S%d_scratch_floats(void) {\n    int64_t m = 0, t;\n    (void)t;\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const pd_layer *ly = &m->layers[cs->ops[i].layer];
        if (ly->op != PD_OP_CONV2D) continue;
        int C, H, W;
        cg_chw(cg_in_shape(m, ly, 0), &C, &H, &W);
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
        cg_loc l = cg_pack_src(cs, cs->out[i].layer);
        fprintf(o, "    memcpy(out + %" PRId64 ", %s, %" PRId64 " * sizeof(float));\n", cs->out[i].off,
                cg_em_loc(&e, 0, l), cs->out[i].numel);
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
        cg_loc l = cg_pack_src(cs, cs->out[i].layer);
        const char *g = cg_em_gloc(&e, 0, l);
        if (strcmp(g, "NULL"))
            fprintf(o, "    identity_backward(%s, dout + %" PRId64 ", %" PRId64 ");\n", g, cs->out[i].off,
                    cs->out[i].numel);
    }
    for (int i = cs->n_ops - 1; i >= 0; i--) emit_backward_op(&e, &cs->ops[i]);
    fprintf(o, "}\n\n");

    /* descriptor */
    fprintf(o, "const pdrt_stage S%d_stage = {\n", s);
    cg_emit_desc(&e, p, nt, CG_DESC_SHAPE, "    .", ",");
    fprintf(o, "    .n_scratch = 0,\n");
    cg_emit_desc(&e, p, nt, CG_DESC_TABLES, "    .", ",");
    fprintf(o, "    .forward = S%d_forward,\n    .backward = S%d_backward,\n"
               "    .scratch_floats = S%d_scratch_floats,\n", s, s, s);
    cg_emit_desc(&e, p, nt, CG_DESC_TRAINING, "    .", ",");
    fprintf(o, "    .plan_hash = ");
    cg_put_cstr(o, pr->plan_hash);
    fprintf(o, ",\n};\n\n");
    fprintf(o, "#ifndef PDRT_NO_MAIN\nint main(int argc, char **argv) { return pdrt_main(argc, argv, &S%d_stage); }\n#endif\n", s);
    fprintf(o, "#undef P_B\n");
}
