/* emit_common.c: the printing both stage printers share (emit_common.h): literals, wrapped lines,
 * operands by name, the #defines, the tables and the descriptor's values. The layers' calls are
 * emit_calls.c's. */
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
    int any = 0, col = 0;
    for (; *params; params++) {
        int used = 0;
        for (int i = 0; i < e->n_used && !used; i++) used = !strcmp(e->used[i], *params);
        if (used) continue;
        int w = 7 + (int)strlen(*params); /* "(void)x;" */
        if (any && col + 1 + w > 100) { /* lines of at most 100 columns */
            fputc('\n', o);
            any = 0;
        }
        col = any ? col + 1 + w : 4 + w;
        fprintf(o, "%s(void)%s;", any++ ? " " : "    ", *params);
    }
    if (col) fputc('\n', o);
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

/* A selective stage's forward_recompute, the whole function and a blank line after it (""
 * for other stages). */
static char *recompute_forward(cg_em *e, const cg_backend_printer *b) {
    if (!e->cs->selective || !b->forward_recompute) return strdup("");
    char *body = cg_part(e, b->forward_recompute, b->forward_params), *fn = NULL;
    size_t len = 0;
    FILE *o = body ? open_memstream(&fn, &len) : NULL;
    if (!o) {
        free(body);
        return NULL;
    }
    fprintf(o, "/* selective recomputation: the forward of the layers whose outputs the stage "
               "does not keep\n * per minibatch (docs/ops.md), from the kept ones, before each "
               "backward */\n"
               "static void S%d_forward_recompute(float *out, float *acts, float *scratch, "
               "float *buffers,\n"
               "                                  const float *params, const float *in, "
               "int training,\n"
               "                                  uint64_t seed, int64_t step) {\n%s}\n\n",
            e->s, body);
    free(body);
    if (fclose(o)) {
        free(fn);
        fn = NULL;
    }
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
        {"BACKWARD_INPUT", b->backward_input ? cg_part(&e, b->backward_input, b->backward_params)
                                             : strdup("")},
        {"BACKWARD_WEIGHT", b->backward_weight ? cg_part(&e, b->backward_weight, b->backward_params)
                                               : strdup("")},
        {"RECOMPUTE_FORWARD", recompute_forward(&e, b)},
        {"TRAINING", cg_part(&e, cg_emit_training, NULL)},
        {"TRAINING_CUDA", cg_part(&e, cg_emit_training_cuda, NULL)},
        {"BANNER", banner},
        {"PRECISION", b->precision ? b->precision : ""},
    };
    const int n_parts = 11;
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
    if (cs->selective)
        cg_printf(e, "#define S%d_N_ACTS_KEPT %" PRId64 " /* selective: the kept part of acts */\n",
                  s, cs->n_acts_kept);
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
        for (int t = 0; t < op->n_tensors; t++) {
            cg_operand at = op->tensor_at[t];
            if (at.ptr == CG_NULL) continue;
            cg_printf(e, "    {%s, \"%s\", %s, %" PRId64 ", %d},\n",
                      cg_cstr(ly->name, nb, sizeof nb), op->tensor[t].name, cg_sym_name(e, at),
                      cs->syms[at.sym].numel, op->tensor[t].buffer);
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

/* ---- the descriptor's values ---- */

int cg_desc_keys(cg_em *e, cg_subst *keys, char store[][CG_KEY_BYTES]) {
    const pd_plan *p = e->p;
    const pd_model *m = e->m;
    const pd_stage *ps = &p->stages[e->s];
    int n = 0, ic, ih, iw;
    pd_chw(&m->input, &ic, &ih, &iw);
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
