/* emit.c: the dumb printer. Prints one stage_<k>.c from what resolve.c computed: sizes and
 * offsets as #defines with the stage's prefix, init/forward/backward as straight-line calls to
 * runtime/ops.h with constant shapes, the tensor table and the pdrt_stage descriptor. */
#include "emit.h"
#include "emit_common.h"
#include "runtime/schedule/schedule.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void emit_forward_op(cg_em *e, const cg_op *op) {
    cg_emit_op_comment(e, op);
    cg_emit_op_forward(e, op, "", "");
}

static void emit_backward_op(cg_em *e, const cg_op *op) {
    cg_emit_op_comment(e, op);
    cg_emit_op_backward(e, op, "", "");
}

/* The gradient regions a backward has zeroed so far, by where they start: every gradient is
 * zeroed right before its first writer (in backward order), not all at once on entry, so that a
 * layer's lap includes the zeroing of the gradients it writes and the region is warm when used. */
typedef struct {
    int n;
    cg_loc *at;
} zeroed_set;

static int64_t grad_floats(const pd_model *m, int layer) {
    return (int64_t)m->batch * (layer == 0 ? pd_shape_numel(&m->input) : pd_shape_numel(&m->layers[layer].out));
}

/* Zeroes the gradient at l (floats long) unless done already; says whether it was zeroed before
 * (the caller then accumulates). Stage 0's input has no gradient: reported as zeroed. */
static int zero_once(cg_em *e, zeroed_set *z, cg_loc l, int64_t floats) {
    const char *g = cg_em_gloc(e, 0, l);
    if (!strcmp(g, "NULL")) return 1;
    for (int i = 0; i < z->n; i++)
        if (z->at[i].base == l.base && z->at[i].off == l.off) return 1;
    z->at[z->n++] = l;
    if (floats >= 0) fprintf(e->o, "    memset(%s, 0, %" PRId64 " * sizeof(float));\n", g, floats);
    return 0;
}

void cg_emit_stage(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                   const char *banner) {
    const cg_stage *cs = &pr->stages[s];
    cg_em e = {.o = o, .m = m, .cs = cs, .s = s, .conv_scratch = "scratch, "};
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
        fprintf(o, "    t = (int64_t)pdrt_conv2d_scratch_floats(P_B, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n"
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
    fprintf(o, "    pdrt_lap_start();\n");
    for (int i = 0; i < cs->n_ops; i++) {
        emit_forward_op(&e, &cs->ops[i]);
        fprintf(o, "    pdrt_lap(%d);\n", i);
    }
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
               "    (void)din; (void)dparams; (void)dacts; (void)scratch; (void)dout; (void)acts;\n"
               "    (void)params; (void)in;\n"
               "    pdrt_lap_start();\n"
               "    /* output pack gradients */\n", s);
    zeroed_set z = {0, calloc((size_t)(cs->n_ops + cs->n_in + cs->n_out + 1), sizeof(cg_loc))};
    if (!z.at) { fprintf(o, "#error out of memory in the generator\n"); return; }
    for (int i = 0; i < cs->n_out; i++) {
        cg_loc l = cg_pack_src(cs, cs->out[i].layer);
        const char *g = cg_em_gloc(&e, 1, l);
        if (!strcmp(g, "NULL")) continue;
        if (zero_once(&e, &z, l, -1))
            fprintf(o, "    pdrt_identity_backward(%s, dout + %" PRId64 ", %" PRId64 ");\n", g, cs->out[i].off,
                    cs->out[i].numel);
        else /* the first write: a copy, no zeroing */
            fprintf(o, "    memcpy(%s, dout + %" PRId64 ", %" PRId64 " * sizeof(float));\n", g, cs->out[i].off,
                    cs->out[i].numel);
    }
    for (int i = cs->n_ops - 1; i >= 0; i--) {
        const cg_op *op = &cs->ops[i];
        const pd_layer *ly = &m->layers[op->layer];
        /* an output no later layer read has a zero gradient */
        zero_once(&e, &z, op->out, grad_floats(m, op->layer));
        if (op->w_off >= 0 || op->b_off >= 0) /* weight then bias, adjacent */
            fprintf(o, "    memset(dparams + %" PRId64 ", 0, %" PRId64 " * sizeof(float));\n",
                    op->w_off >= 0 ? op->w_off : op->b_off,
                    (int64_t)(op->w_off >= 0 ? ly->n_weight : 0) + (op->b_off >= 0 ? ly->n_bias : 0));
        for (int j = 0; j < op->n_in; j++) zero_once(&e, &z, op->in[j], grad_floats(m, ly->inputs[j]));
        emit_backward_op(&e, op);
        fprintf(o, "    pdrt_lap(%d);\n", i);
    }
    /* the previous stage reads every gradient of the input pack, written or not */
    for (int i = 0; i < cs->n_in; i++) zero_once(&e, &z, (cg_loc){CG_IN, cs->in[i].off}, cs->in[i].numel);
    free(z.at);
    fprintf(o, "}\n\n");

    /* layers, for the profile the runtime measures inside training */
    fprintf(o, "static const pdrt_layer S%d_layers[] = {\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const pd_layer *ly = &m->layers[cs->ops[i].layer];
        fprintf(o, "    {");
        cg_put_cstr(o, ly->name);
        fprintf(o, ", %" PRId64 ", %" PRId64 "},\n", 4 * grad_floats(m, cs->ops[i].layer),
                4 * (int64_t)(ly->n_weight + ly->n_bias));
    }
    fprintf(o, "};\n\n");

    /* descriptor */
    fprintf(o, "const pdrt_stage S%d_stage = {\n", s);
    cg_emit_desc(&e, p, nt, CG_DESC_SHAPE, "    .", ",");
    fprintf(o, "    .n_scratch = 0,\n");
    cg_emit_desc(&e, p, nt, CG_DESC_TABLES, "    .", ",");
    fprintf(o, "    .forward = S%d_forward,\n    .backward = S%d_backward,\n"
               "    .scratch_floats = S%d_scratch_floats,\n", s, s, s);
    cg_emit_desc(&e, p, nt, CG_DESC_TRAINING, "    .", ",");
    fprintf(o, "    .n_layers = %d,\n    .layers = S%d_layers,\n    .model_layers = %d,\n", cs->n_ops, s,
            m->n_layers - 1);
    fprintf(o, "    .plan_hash = ");
    cg_put_cstr(o, pr->plan_hash);
    fprintf(o, ",\n};\n\n");
    fprintf(o, "#ifndef PDRT_NO_MAIN\nint main(int argc, char **argv) { return pdrt_main(argc, argv, &S%d_stage); }\n#endif\n", s);
    fprintf(o, "#undef P_B\n");
}
