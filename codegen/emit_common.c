/* emit_common.c: the printing both stage printers share (emit_common.h): literals, wrapped lines,
 * operands by name, the #defines, tables and init, the layers' calls and the descriptor's
 * values. */
#include "emit_common.h"
#include "emit_training.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- literals ---- */

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

const char *cg_cstr(const char *s, char *buf, size_t n) {
    FILE *o = fmemopen(buf, n, "w");
    if (!o) return "\"\"";
    cg_put_cstr(o, s);
    fclose(o);
    return buf;
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

/* "1e-05" -> "1e-5", "1e+20" -> "1e20"; a number with neither '.' nor an exponent gets ".0". */
static void tidy_number(char *s) {
    char *e = strchr(s, 'e');
    if (e) {
        char *src = e + 1, *dst = e + 1;
        if (*src == '+') src++;
        else if (*src == '-') *dst++ = *src++;
        while (*src == '0' && src[1]) src++;
        memmove(dst, src, strlen(src) + 1);
    } else if (!strchr(s, '.')) {
        strcat(s, ".0");
    }
}

const char *cg_float_literal(char *buf, size_t n, double v) {
    float f = (float)v;
    if (isnan(f)) return snprintf(buf, n, "__builtin_nanf(\"\")"), buf;
    if (isinf(f)) return snprintf(buf, n, "%s__builtin_inff()", f < 0 ? "-" : ""), buf;
    char t[40];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(t, sizeof t - 4, "%.*g", prec, (double)f);
        if (strtof(t, NULL) == f) break;
    }
    tidy_number(t);
    snprintf(buf, n, "%sf", t);
    return buf;
}

const char *cg_double_literal(char *buf, size_t n, double v) {
    if (isnan(v)) return snprintf(buf, n, "__builtin_nan(\"\")"), buf;
    if (isinf(v)) return snprintf(buf, n, "%s__builtin_inf()", v < 0 ? "-" : ""), buf;
    char t[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t - 4, "%.*g", prec, v);
        if (strtod(t, NULL) == v) break;
    }
    tidy_number(t);
    snprintf(buf, n, "%s", t);
    return buf;
}

/* ---- lines ---- */

/* Whether the comma at c stands between two numbers ("3, 3"). */
static int between_numbers(const char *line, size_t n, size_t c) {
    size_t a = c, b = c + 1;
    while (b < n && line[b] == ' ') b++;
    if (a == 0 || b >= n || !(line[a - 1] >= '0' && line[a - 1] <= '9')) return 0;
    if (!(line[b] >= '0' && line[b] <= '9')) return 0;
    while (a > 0 && ((line[a - 1] >= '0' && line[a - 1] <= '9') || line[a - 1] == '_' ||
                     (line[a - 1] >= 'A' && line[a - 1] <= 'Z') ||
                     (line[a - 1] >= 'a' && line[a - 1] <= 'z')))
        a--;
    return line[a] >= '0' && line[a] <= '9'; /* the token before is a number, not S0_..._1 */
}

void cg_wrap_line(FILE *o, const char *line, size_t n) {
    if (n <= CG_COLUMNS) {
        fwrite(line, 1, n, o);
        fputc('\n', o);
        return;
    }
    /* the outermost list with commas in it: its opening bracket and its commas */
    size_t open_at[64], commas[512];
    int depth = 0, list_depth = -1, nc = 0;
    size_t list_open = 0;
    char quote = 0;
    for (size_t i = 0; i < n; i++) {
        char c = line[i];
        if (quote) {
            if (c == '\\') i++;
            else if (c == quote) quote = 0;
            continue;
        }
        if (c == '"' || c == '\'') quote = c;
        else if (c == '/' && i + 1 < n && line[i + 1] == '*') break; /* a trailing comment */
        else if (c == '(' || c == '{' || c == '[') {
            if (depth < 64) open_at[depth] = i;
            depth++;
        } else if (c == ')' || c == '}' || c == ']') {
            depth--;
        } else if (c == ',' && depth > 0 && depth <= 64 && nc < 512) {
            if (list_depth < 0 || depth < list_depth) {
                list_depth = depth;
                list_open = open_at[depth - 1];
                nc = 0;
            }
            if (depth == list_depth && open_at[depth - 1] == list_open) commas[nc++] = i;
        }
    }
    size_t indent = 0;
    while (indent < n && line[indent] == ' ') indent++;
    size_t cont = list_open + 1;
    if (!nc || cont > 60) cont = indent + 8;
    size_t start = 0, col0 = 0; /* the printed line's start in line, and its first column */
    for (int k = 0; k < nc; k++) {
        size_t end = k + 1 < nc ? commas[k + 1] + 1 : n; /* the next piece ends there */
        if (col0 + (end - start) <= CG_COLUMNS) continue;
        if (col0 + (commas[k] + 1 - start) > CG_COLUMNS && k > 0 && commas[k - 1] + 1 > start)
            k--; /* even this comma is too far: break at the one before */
        int j = k; /* rather not between two numbers (a shape stays on one line) */
        while (j > 0 && commas[j - 1] + 1 > start && between_numbers(line, n, commas[j])) j--;
        if (!between_numbers(line, n, commas[j])) k = j;
        fwrite(line + start, 1, commas[k] + 1 - start, o);
        fprintf(o, "\n%*s", (int)cont, "");
        start = commas[k] + 1;
        while (start < n && line[start] == ' ') start++;
        col0 = cont;
    }
    fwrite(line + start, 1, n - start, o);
    fputc('\n', o);
}

void cg_printf(cg_em *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int len = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (len < 0) return;
    for (int i = 0; i < len; i++) {
        if (s[i] == '\n') {
            cg_wrap_line(e->o, e->line ? e->line : "", e->line_len);
            e->line_len = 0;
            continue;
        }
        if (e->line_len + 2 > e->line_cap) {
            size_t cap = e->line_cap ? 2 * e->line_cap : 256;
            char *nl = realloc(e->line, cap);
            if (!nl) break;
            e->line = nl;
            e->line_cap = cap;
        }
        e->line[e->line_len++] = s[i];
        e->line[e->line_len] = 0;
    }
    free(s);
}

/* ---- parameters a function uses ---- */

void cg_use(cg_em *e, const char *name) {
    for (int i = 0; i < e->n_used; i++)
        if (!strcmp(e->used[i], name)) return;
    if (e->n_used < (int)(sizeof e->used / sizeof e->used[0])) e->used[e->n_used++] = name;
}

void cg_print_unused(FILE *o, const cg_em *e, const char *const *params) {
    int any = 0;
    for (; *params; params++) {
        int used = 0;
        for (int i = 0; i < e->n_used && !used; i++) used = !strcmp(e->used[i], *params);
        if (!used) fprintf(o, "%s(void)%s;", any++ ? " " : "    ", *params);
    }
    if (any) fputc('\n', o);
}

char *cg_part(cg_em *e, void (*print)(cg_em *e), const char *const *params) {
    char *body = NULL, *fn = NULL;
    size_t len = 0;
    e->n_used = 0;
    e->o = open_memstream(&body, &len);
    if (!e->o) return NULL;
    print(e);
    if (e->line_len) cg_printf(e, "\n");
    int bad = fclose(e->o);
    e->o = NULL;
    if (bad || !params) {
        if (bad) { free(body); body = NULL; }
        return body;
    }
    FILE *o = open_memstream(&fn, &len);
    if (o) {
        cg_print_unused(o, e, params);
        fputs(body, o);
        if (fclose(o)) { free(fn); fn = NULL; }
    }
    free(body);
    return fn;
}

int cg_emit_file(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                 const char *banner, const char *tmpl, const cg_backend_printer *b, pd_diag *d) {
    static const char *const init_params[] = {"params", "buffers", "seed", NULL};
    cg_em e = {.m = m, .pr = pr, .cs = &pr->stages[s], .p = p, .s = s};
    cg_subst keys[CG_DESC_KEYS + 16] = {
        {"DEFINES", cg_part(&e, cg_emit_defines, NULL)},
        {"TABLES", cg_part(&e, cg_emit_tables, NULL)},
        {"INIT", cg_part(&e, cg_emit_init, init_params)},
        {"SCRATCH", cg_part(&e, b->scratch, b->scratch_params)},
        {"FORWARD", cg_part(&e, b->forward, b->forward_params)},
        {"BACKWARD", cg_part(&e, b->backward, b->backward_params)},
        {"TRAINING", cg_part(&e, cg_emit_training, NULL)},
        {"TRAINING_CUDA", cg_part(&e, cg_emit_training_cuda, NULL)},
        {"BANNER", banner},
        {"PRECISION", b->precision ? b->precision : ""},
    };
    const int n_parts = 8;
    char store[CG_DESC_KEYS][CG_KEY_BYTES], unknown[64];
    int rc = 0;
    for (int i = 0; i < n_parts; i++) rc |= !keys[i].value;
    if (rc) {
        pd_diag_error(d, NULL, 0, 0, "codegen: out of memory printing stage %d", s);
    } else {
        int n = n_parts + 2;
        n += cg_desc_keys(&e, keys + n, store);
        if (cg_fill(o, tmpl, keys, n, unknown, sizeof unknown)) {
            pd_diag_error(d, NULL, 0, 0, "codegen: the stage template names @%s@, which the "
                          "generator does not fill", unknown);
            rc = 1;
        }
    }
    for (int i = 0; i < n_parts; i++) free((char *)keys[i].value);
    free(e.line);
    return rc;
}

/* ---- operands ---- */

static const char *const ptr_names[CG_N_PTRS] = {
    [CG_NULL] = "NULL", [CG_IN] = "in", [CG_ACTS] = "acts", [CG_PARAMS] = "params",
    [CG_BUFFERS] = "buffers", [CG_OUT] = "out", [CG_DIN] = "din", [CG_DACTS] = "dacts",
    [CG_DPARAMS] = "dparams", [CG_DOUT] = "dout"};

const char *cg_sym_name(const cg_em *e, cg_operand x) {
    return e->cs->syms[x.sym].name;
}

const char *cg_opnd(cg_em *e, cg_operand x, char *buf, size_t n) {
    if (x.ptr == CG_NULL) return "NULL";
    cg_use(e, ptr_names[x.ptr]);
    snprintf(buf, n, "%s + %s", ptr_names[x.ptr], cg_sym_name(e, x));
    return buf;
}

/* Up to 8 operands printed at once: OP(k, x) is operand x in slot k. */
typedef char opbuf[8][192];
#define OP(k, x) cg_opnd(e, (x), ob[k], sizeof ob[k])

/* ---- shapes ---- */

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

/* A pooling layer's window as "KH, KW, SH, SW, PH, PW" (global average pooling: the input). */
static const char *window(const pd_layer *ly, const pd_shape *in, char *buf, size_t n) {
    if (ly->op == PD_OP_AVGPOOL2D && ly->global)
        snprintf(buf, n, "%d, %d, 1, 1, 0, 0", in->dim[1], in->dim[2]);
    else
        snprintf(buf, n, "%d, %d, %d, %d, %d, %d", ly->kernel[0], ly->kernel[1], ly->stride[0],
                 ly->stride[1], ly->padding[0], ly->padding[1]);
    return buf;
}

/* A convolution's "C, H, W, OC, KH, KW, SH, SW, PH, PW". */
static const char *conv_shape(const pd_model *m, const pd_layer *ly, char *buf, size_t n) {
    int C, H, W;
    chw(in_shape(m, ly, 0), &C, &H, &W);
    snprintf(buf, n, "%d, %d, %d, %d, %d, %d, %d, %d, %d, %d", C, H, W, ly->out_channels,
             ly->kernel[0], ly->kernel[1], ly->stride[0], ly->stride[1], ly->padding[0],
             ly->padding[1]);
    return buf;
}

/* ---- #defines and tables ---- */

static void defines_of(cg_em *e, cg_ptr blob, const char *title) {
    const cg_stage *cs = e->cs;
    int any = 0;
    char nb[96];
    for (int i = 0; i < cs->n_syms; i++) {
        const cg_sym *y = &cs->syms[i];
        if (y->blob != blob) continue;
        if (!any++) cg_printf(e, "\n/* %s */\n", title);
        cg_printf(e, "#define %s %" PRId64, y->name, y->value);
        if (blob == CG_IN || blob == CG_OUT) /* a pack entry: what it is, and its size */
            cg_printf(e, " /* %s, %" PRId64 " floats */",
                      y->layer ? cg_safe(e->m->layers[y->layer].name, nb, sizeof nb) : "input",
                      y->numel);
        cg_printf(e, "\n");
    }
}

void cg_emit_defines(cg_em *e) {
    const cg_stage *cs = e->cs;
    int s = e->s;
    /* P_B is this stage's batch, so that every stage links into one --single binary */
    cg_printf(e, "#define P_B S%d_BATCH\n#define S%d_BATCH %d\n", s, s, e->m->batch);
    cg_printf(e, "#define S%d_N_PARAMS %" PRId64 "\n#define S%d_N_BUFFERS %" PRId64 "\n", s,
              cs->n_params, s, cs->n_buffers);
    cg_printf(e, "#define S%d_N_ACTS %" PRId64 "\n#define S%d_IN_FLOATS %" PRId64 "\n"
              "#define S%d_OUT_FLOATS %" PRId64 "\n", s, cs->n_acts, s, cs->in_floats, s,
              cs->out_floats);
    defines_of(e, CG_IN, "offsets in floats: the input pack (in, din), what crosses the cut here");
    defines_of(e, CG_OUT, "the output pack (out, dout)");
    defines_of(e, CG_ACTS, "the activations (acts, dacts): each layer's output and saved state");
    defines_of(e, CG_PARAMS, "the parameters (params, dparams)");
    defines_of(e, CG_BUFFERS, "the buffers: batch-norm running statistics");
}

void cg_emit_tables(cg_em *e) {
    const pd_plan *p = e->p;
    const cg_stage *cs = e->cs;
    const pd_model *m = e->m;
    int s = e->s, nt = 0;
    char nb[256];
    /* the same for both backends: --save/--init files are interchangeable */
    cg_printf(e, "static const pdrt_tensor S%d_tensors[] = {\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const cg_op *op = &cs->ops[i];
        const pd_layer *ly = &m->layers[op->layer];
        const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
        cg_operand at[4] = {op->w, op->b, op->running[0], op->running[1]};
        for (int t = 0; t < 4; t++) {
            if (at[t].ptr == CG_NULL) continue;
            cg_printf(e, "    {%s, \"%s\", %s, %" PRId64 ", %d},\n",
                      cg_cstr(ly->name, nb, sizeof nb), names[t], cg_sym_name(e, at[t]),
                      cs->syms[at[t].sym].numel, t >= 2);
            nt++;
        }
    }
    if (!nt) cg_printf(e, "    {NULL, NULL, 0, 0, 0},\n");
    cg_printf(e, "};\n\nstatic const int S%d_warmup[] = {", s);
    for (int k = 0; k < p->n_stages; k++) cg_printf(e, "%s%d", k ? ", " : "", p->stages[k].warmup);
    cg_printf(e, "};\n\nstatic const int S%d_replicas[] = {", s);
    for (int k = 0; k < p->n_stages; k++)
        cg_printf(e, "%s%d", k ? ", " : "", p->stages[k].replicas);
    cg_printf(e, "};\n\n");
    /* the layers, for the profile the runtime measures inside training */
    cg_printf(e, "static const pdrt_layer S%d_layers[] = {\n", s);
    for (int i = 0; i < cs->n_ops; i++) {
        const pd_layer *ly = &m->layers[cs->ops[i].layer];
        cg_printf(e, "    {%s, %" PRId64 ", %" PRId64 "},\n", cg_cstr(ly->name, nb, sizeof nb),
                  4 * m->batch * pd_shape_numel(&ly->out),
                  4 * (int64_t)(ly->n_weight + ly->n_bias));
    }
    cg_printf(e, "};\n");
    e->n_tensors = nt;
}

void cg_emit_init(cg_em *e) {
    const pd_model *m = e->m;
    const cg_stage *cs = e->cs;
    opbuf ob;
    for (int i = 0; i < cs->n_ops; i++) {
        const cg_op *op = &cs->ops[i];
        const pd_layer *ly = &m->layers[op->layer];
        int C, H, W;
        chw(in_shape(m, ly, 0), &C, &H, &W);
        if (ly->op == PD_OP_LINEAR || ly->op == PD_OP_CONV2D) cg_use(e, "seed");
        if (ly->op == PD_OP_LINEAR)
            cg_printf(e, "    pd_init_linear(%s, %s, seed, %d, %" PRId64 ", %d);\n", OP(0, op->w),
                      OP(1, op->b), op->layer, pd_shape_numel(in_shape(m, ly, 0)),
                      ly->out_features);
        else if (ly->op == PD_OP_CONV2D)
            cg_printf(e, "    pd_init_conv2d(%s, %s, seed, %d, %d, %d, %d, %d);\n", OP(0, op->w),
                      OP(1, op->b), op->layer, C, ly->out_channels, ly->kernel[0], ly->kernel[1]);
        else if (ly->op == PD_OP_BATCHNORM2D)
            cg_printf(e, "    pd_init_batchnorm2d(%s, %s, %s, %s, %d);\n", OP(0, op->w),
                      OP(1, op->b), OP(2, op->running[0]), OP(3, op->running[1]), C);
    }
}

/* ---- the layers' calls ---- */

/* The kernel a call names: both names written out whole, so that renaming the kernels finds
 * them. Also notes the CUDA context argument's use. */
/* A kernel's name for the stage's backend: the CPU kernel of runtime/cpu/ops.h, or its CUDA twin
 * of runtime/cuda/ops_cuda.h, which has the same name with _cuda appended and takes ctx first. */
static const char *kernel(cg_em *e, const char *cpu) {
    static char names[4][64];
    static int next;
    if (e->pr->backend != CG_BACKEND_CUDA) return cpu;
    cg_use(e, "ctx");
    char *n = names[next++ % 4];
    snprintf(n, sizeof names[0], "%s_cuda", cpu);
    return n;
}
#define CTX (e->pr->backend == CG_BACKEND_CUDA ? "ctx, " : "")
/* the convolution's im2col buffer argument (CPU only) */
static const char *conv_scratch(cg_em *e) {
    if (e->pr->backend == CG_BACKEND_CUDA) return "";
    cg_use(e, "scratch");
    return "scratch, ";
}

void cg_emit_op_comment(cg_em *e, const cg_op *op) {
    char nb[96], nb2[96];
    const pd_layer *ly = &e->m->layers[op->layer];
    if (op->fuse == CG_FUSE_LINEAR_RELU)
        cg_printf(e, "    /* %s: linear, and %s: relu, as one call */\n",
                  cg_safe(ly->name, nb, sizeof nb),
                  cg_safe(e->m->layers[(op + 1)->layer].name, nb2, sizeof nb2));
    else if (op->fuse == CG_FUSED_INTO_PREV)
        cg_printf(e, "    /* %s: relu, in the linear's call */\n",
                  cg_safe(ly->name, nb, sizeof nb));
    else if (ly->op == PD_OP_FLATTEN)
        cg_printf(e, "    /* %s: flatten, a no-op: it shares its input's memory and gradient */\n",
                  cg_safe(ly->name, nb, sizeof nb));
    else
        cg_printf(e, "    /* %s: %s */\n", cg_safe(ly->name, nb, sizeof nb), pd_op_name(ly->op));
}

/* An add or concat layer's call, forward or backward. */
static void emit_join(cg_em *e, const cg_op *op, int backward) {
    const pd_layer *ly = &e->m->layers[op->layer];
    opbuf ob;
    cg_printf(e, "    {\n        %s", backward ? "float *dins_[] = {" : "const float *ins_[] = {");
    for (int j = 0; j < op->n_in; j++)
        cg_printf(e, "%s%s", j ? ", " : "", OP(0, backward ? op->dx[j] : op->x[j]));
    cg_printf(e, "};\n");
    const char *y = backward ? OP(1, op->dy) : OP(1, op->y);
    if (ly->op == PD_OP_ADD) {
        if (backward)
            cg_printf(e, "        %s(%sdins_, %s, %d, (size_t)P_B * %" PRId64 ");\n",
                      kernel(e, "pdrt_add_backward"), CTX, y, op->n_in,
                      op->out_numel);
        else
            cg_printf(e, "        %s(%s%s, ins_, %d, (size_t)P_B * %" PRId64 ");\n",
                      kernel(e, "pdrt_add_forward"), CTX, y, op->n_in,
                      op->out_numel);
    } else {
        cg_printf(e, "        static const int ch_[] = {");
        for (int j = 0; j < op->n_in; j++)
            cg_printf(e, "%s%d", j ? ", " : "", in_shape(e->m, ly, j)->dim[0]);
        int oc, oh, ow;
        chw(&ly->out, &oc, &oh, &ow);
        if (backward)
            cg_printf(e, "};\n        %s(%sdins_, %s, ch_, %d, P_B, %d);\n",
                      kernel(e, "pdrt_concat_backward"), CTX, y, op->n_in,
                      oh * ow);
        else
            cg_printf(e, "};\n        %s(%s%s, ins_, ch_, %d, P_B, %d);\n",
                      kernel(e, "pdrt_concat_forward"), CTX, y, op->n_in,
                      oh * ow);
    }
    cg_printf(e, "    }\n");
}

void cg_emit_op_forward(cg_em *e, const cg_op *op) {
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = in_shape(e->m, ly, 0);
    int C, H, W;
    chw(is, &C, &H, &W);
    int64_t N = op->out_numel;
    opbuf ob;
    char sh[128], f1[40], f2[40];
    switch (ly->op) {
    case PD_OP_LINEAR:
        if (op->fuse == CG_FUSE_LINEAR_RELU) /* into the ReLU's output */
            cg_printf(e, "    %s(ctx, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n",
                      kernel(e, "pdrt_linear_relu_forward"),
                      OP(0, (op + 1)->y), OP(1, op->x[0]), OP(2, op->w), OP(3, op->b),
                      pd_shape_numel(is), ly->out_features);
        else
            cg_printf(e, "    %s(%s%s, %s, %s, %s, P_B, %" PRId64 ", %d);\n",
                      kernel(e, "pdrt_linear_forward"), CTX, OP(0, op->y),
                      OP(1, op->x[0]), OP(2, op->w), OP(3, op->b), pd_shape_numel(is),
                      ly->out_features);
        break;
    case PD_OP_CONV2D:
        cg_printf(e, "    %s(%s%s, %s%s, %s, %s, P_B, %s);\n",
                  kernel(e, "pdrt_conv2d_forward"), CTX, OP(0, op->y),
                  conv_scratch(e), OP(1, op->x[0]), OP(2, op->w), OP(3, op->b),
                  conv_shape(e->m, ly, sh, sizeof sh));
        break;
    case PD_OP_RELU:
        if (op->fuse == CG_FUSED_INTO_PREV) break;
        cg_printf(e, "    %s(%s%s, %s, (size_t)P_B * %" PRId64 ");\n",
                  kernel(e, "pdrt_relu_forward"), CTX, OP(0, op->y),
                  OP(1, op->x[0]), N);
        break;
    case PD_OP_MAXPOOL2D:
        cg_printf(e, "    %s(%s%s, (int *)(%s), %s, P_B, %d, %d, %d, %s);\n",
                  kernel(e, "pdrt_maxpool2d_forward"), CTX, OP(0, op->y),
                  OP(1, op->aux[0]), OP(2, op->x[0]), C, H, W, window(ly, is, sh, sizeof sh));
        break;
    case PD_OP_AVGPOOL2D:
        cg_printf(e, "    %s(%s%s, %s, P_B, %d, %d, %d, %s);\n",
                  kernel(e, "pdrt_avgpool2d_forward"), CTX, OP(0, op->y),
                  OP(1, op->x[0]), C, H, W, window(ly, is, sh, sizeof sh));
        break;
    case PD_OP_FLATTEN: /* nothing to do */
        break;
    case PD_OP_DROPOUT:
        cg_use(e, "training");
        cg_use(e, "seed");
        cg_use(e, "step");
        cg_printf(e, "    if (training)\n        %s(%s%s, %s, %s, %s, seed, step, %d, 0, P_B, "
                  "%" PRId64 ");\n", kernel(e, "pdrt_dropout_forward"), CTX,
                  OP(0, op->y), OP(1, op->aux[0]), OP(2, op->x[0]),
                  cg_float_literal(f1, sizeof f1, ly->p), op->layer, N);
        cg_printf(e, "    else\n        %s(%s%s, %s, (size_t)P_B * %" PRId64 ");\n",
                  kernel(e, "pdrt_identity_forward"), CTX, OP(0, op->y),
                  OP(1, op->x[0]), N);
        break;
    case PD_OP_BATCHNORM2D:
        cg_use(e, "training");
        cg_printf(e, "    if (training)\n        %s(%s%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, P_B, "
                  "%d, %d, %d);\n", kernel(e, "pdrt_batchnorm2d_forward"),
                  CTX, OP(0, op->y), OP(1, op->aux[0]), OP(2, op->aux[1]), OP(3, op->running[0]),
                  OP(4, op->running[1]), OP(5, op->x[0]), OP(6, op->w), OP(7, op->b),
                  cg_float_literal(f1, sizeof f1, ly->momentum),
                  cg_float_literal(f2, sizeof f2, ly->eps), C, H, W);
        cg_printf(e, "    else\n        %s(%s%s, %s, %s, %s, %s, %s, %s, P_B, %d, %d, %d);\n",
                  kernel(e, "pdrt_batchnorm2d_forward_eval"), CTX,
                  OP(0, op->y), OP(1, op->x[0]), OP(2, op->w), OP(3, op->b),
                  OP(4, op->running[0]), OP(5, op->running[1]),
                  cg_float_literal(f2, sizeof f2, ly->eps), C, H, W);
        break;
    case PD_OP_ADD:
    case PD_OP_CONCAT:
        emit_join(e, op, 0);
        break;
    default:
        cg_printf(e, "#error unsupported op %s\n", pd_op_name(ly->op));
    }
}

void cg_emit_op_backward(cg_em *e, const cg_op *op) {
    const pd_layer *ly = &e->m->layers[op->layer];
    const pd_shape *is = in_shape(e->m, ly, 0);
    int C, H, W;
    chw(is, &C, &H, &W);
    int64_t N = op->out_numel;
    int no_din = op->dx[0].ptr == CG_NULL;
    opbuf ob;
    char sh[128];
    switch (ly->op) {
    case PD_OP_LINEAR: {
        /* fused: the gradient arrives at the ReLU's output */
        const cg_op *top = op->fuse == CG_FUSE_LINEAR_RELU ? op + 1 : op;
        if (op->fuse == CG_FUSE_LINEAR_RELU)
            cg_printf(e, "    %s(ctx, %s, %s, %s, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n",
                      kernel(e, "pdrt_linear_relu_backward"),
                      OP(0, op->dx[0]), OP(1, op->dw), OP(2, op->db), OP(3, top->dy),
                      OP(4, top->y), OP(5, op->x[0]), OP(6, op->w), pd_shape_numel(is),
                      ly->out_features);
        else
            cg_printf(e, "    %s(%s%s, %s, %s, %s, %s, %s, P_B, %" PRId64 ", %d);\n",
                      kernel(e, "pdrt_linear_backward"), CTX,
                      OP(0, op->dx[0]), OP(1, op->dw), OP(2, op->db), OP(3, op->dy),
                      OP(4, op->x[0]), OP(5, op->w), pd_shape_numel(is), ly->out_features);
        break;
    }
    case PD_OP_CONV2D:
        cg_printf(e, "    %s(%s%s, %s, %s, %s%s, %s, %s, P_B, %s);\n",
                  kernel(e, "pdrt_conv2d_backward"), CTX, OP(0, op->dx[0]),
                  OP(1, op->dw), OP(2, op->db), conv_scratch(e), OP(3, op->dy), OP(4, op->x[0]),
                  OP(5, op->w), conv_shape(e->m, ly, sh, sizeof sh));
        break;
    case PD_OP_RELU:
        if (no_din || op->fuse == CG_FUSED_INTO_PREV) break;
        cg_printf(e, "    %s(%s%s, %s, %s, (size_t)P_B * %" PRId64 ");\n",
                  kernel(e, "pdrt_relu_backward"), CTX, OP(0, op->dx[0]),
                  OP(1, op->dy), OP(2, op->y), N);
        break;
    case PD_OP_MAXPOOL2D:
        if (no_din) break;
        cg_printf(e, "    %s(%s%s, %s, (const int *)(%s), P_B, %d, %d, %d, %s);\n",
                  kernel(e, "pdrt_maxpool2d_backward"), CTX,
                  OP(0, op->dx[0]), OP(1, op->dy), OP(2, op->aux[0]), C, H, W,
                  window(ly, is, sh, sizeof sh));
        break;
    case PD_OP_AVGPOOL2D:
        if (no_din) break;
        cg_printf(e, "    %s(%s%s, %s, P_B, %d, %d, %d, %s);\n",
                  kernel(e, "pdrt_avgpool2d_backward"), CTX,
                  OP(0, op->dx[0]), OP(1, op->dy), C, H, W, window(ly, is, sh, sizeof sh));
        break;
    case PD_OP_FLATTEN: /* nothing to do */
        break;
    case PD_OP_DROPOUT:
        if (no_din) break;
        cg_printf(e, "    %s(%s%s, %s, %s, (size_t)P_B * %" PRId64 ");\n",
                  kernel(e, "pdrt_dropout_backward"), CTX, OP(0, op->dx[0]),
                  OP(1, op->dy), OP(2, op->aux[0]), N);
        break;
    case PD_OP_BATCHNORM2D:
        cg_printf(e, "    %s(%s%s, %s, %s, %s, %s, %s, %s, %s, P_B, %d, %d, %d);\n",
                  kernel(e, "pdrt_batchnorm2d_backward"), CTX,
                  OP(0, op->dx[0]), OP(1, op->dw), OP(2, op->db), OP(3, op->dy),
                  OP(4, op->x[0]), OP(5, op->w), OP(6, op->aux[0]), OP(7, op->aux[1]), C, H, W);
        break;
    case PD_OP_ADD:
    case PD_OP_CONCAT:
        emit_join(e, op, 1);
        break;
    default:
        cg_printf(e, "#error unsupported op %s\n", pd_op_name(ly->op));
    }
}

/* ---- the descriptor's values ---- */

int cg_desc_keys(cg_em *e, cg_subst *keys, char store[][CG_KEY_BYTES]) {
    const pd_plan *p = e->p;
    const pd_model *m = e->m;
    const pd_stage *ps = &p->stages[e->s];
    int n = 0, ic, ih, iw;
    chw(&m->input, &ic, &ih, &iw);
#define SET(k) (keys[n].key = (k), keys[n].value = store[n], n++)
#define KEY(k, ...) (snprintf(store[n], CG_KEY_BYTES, __VA_ARGS__), SET(k))
#define KEYD(k, v) (cg_double_literal(store[n], CG_KEY_BYTES, (v)), SET(k))
#define KEYS(k, v) (cg_cstr((v), store[n], CG_KEY_BYTES), SET(k))
    KEY("S", "%d", e->s);
    KEYS("MODEL", m->name);
    KEYS("DATASET", m->dataset);
    KEY("N_STAGES", "%d", p->n_stages);
    KEY("CLASSES", "%d", m->classes);
    KEY("IN_C", "%d", ic);
    KEY("IN_H", "%d", ih);
    KEY("IN_W", "%d", iw);
    KEY("N_TENSORS", "%d", e->n_tensors);
    KEY("WEIGHT_VERSIONS", "%d", ps->weight_versions);
    KEY("SCHEDULE", "\"%s\"", p->schedule[0] ? p->schedule : "1f1b");
    KEYD("PREDICTED_MS", ps->time_ms);
    KEYD("PREDICTED_COMPUTE_MS", ps->compute_ms);
    KEY("OPTIMIZER", "%d", (int)m->optimizer); /* pd_optim_kind: 0 SGD, 1 Adam, 2 AdamW */
    KEYD("LR", m->lr);
    KEYD("MOMENTUM", m->momentum);
    KEYD("WEIGHT_DECAY", m->weight_decay);
    KEYD("BETA1", m->beta1);
    KEYD("BETA2", m->beta2);
    KEYD("ADAM_EPS", m->adam_eps);
    KEY("EPOCHS", "%d", m->epochs);
    KEY("MICROBATCHES", "%d", e->pr->microbatches);
    KEY("VERTICAL_SYNC", "%d", p->vertical_sync);
    KEY("N_LAYERS", "%d", e->cs->n_ops);
    KEY("MODEL_LAYERS", "%d", m->n_layers - 1);
    KEY("PLAN_HASH", "\"%s\"", e->pr->plan_hash);
#undef KEY
#undef KEYD
#undef KEYS
#undef SET
    return n;
}
