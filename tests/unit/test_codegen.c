/* test_codegen.c: the code generator's small helpers (codegen/emit_common.c, resolve.c,
 * template.c): float and double literals that round-trip, line wrapping at 100 columns,
 * identifiers from layer names, template filling. The generated stages themselves are checked
 * byte for byte by tests/cli/test_golden_stages.sh. */
#include <stdlib.h>
#include <string.h>

#include "codegen/emit_common.h"
#include "codegen/resolve.h"
#include "codegen/template.h"
#include "test.h"

static const char *flit(double v) {
    static char buf[64];
    return cg_float_literal(buf, sizeof buf, v);
}

static const char *dlit(double v) {
    static char buf[64];
    return cg_double_literal(buf, sizeof buf, v);
}

TEST(float_literals_are_short) {
    CHECK(!strcmp(flit(0.1), "0.1f"));
    CHECK(!strcmp(flit(0.10000000000000001), "0.1f"));
    CHECK(!strcmp(flit(1e-5), "1e-5f"));
    CHECK(!strcmp(flit(1e-05), "1e-5f"));
    CHECK(!strcmp(flit(0.5), "0.5f"));
    CHECK(!strcmp(flit(2), "2.0f"));
    CHECK(!strcmp(flit(0), "0.0f"));
    CHECK(!strcmp(flit(-0.25), "-0.25f"));
    CHECK(!strcmp(flit(1e20), "1e20f"));
    CHECK(!strcmp(flit(123456789), "1.2345679e8f")); /* the float nearest 123456789 */
    CHECK(!strcmp(dlit(0.9), "0.9"));
    CHECK(!strcmp(dlit(0.90000000000000002), "0.9"));
    CHECK(!strcmp(dlit(0), "0.0"));
    CHECK(!strcmp(dlit(1e-8), "1e-8"));
    CHECK(!strcmp(dlit(22.322215679999999), "22.32221568"));
    CHECK(!strcmp(dlit(0.1 + 0.2), "0.30000000000000004"));
}

/* The literal, compiled, is the float (double) the generator was handed: parse it back. */
TEST(float_literals_round_trip) {
    unsigned s = 12345;
    for (int i = 0; i < 20000; i++) {
        s = s * 1103515245u + 12345u;
        unsigned bits = s ^ (s >> 7) * 2654435761u;
        float f;
        memcpy(&f, &bits, sizeof f);
        if (!isfinite(f)) continue;
        const char *t = flit(f);
        size_t n = strlen(t);
        CHECK(n > 1 && t[n - 1] == 'f' && (strchr(t, '.') || strchr(t, 'e')));
        char *end;
        float back = strtof(t, &end);
        CHECK(end == t + n - 1 && back == f);
        double d = (double)f * 1.0000001 + i;
        const char *u = dlit(d);
        CHECK(strtod(u, &end) == d && *end == 0);
        if (test_failed_now()) {
            printf("  %.9g gave %s; %.17g gave %s\n", f, t, d, u);
            return;
        }
    }
    CHECK(!strcmp(flit(NAN), "__builtin_nanf(\"\")"));
    CHECK(!strcmp(flit(-INFINITY), "-__builtin_inff()"));
}

static char *wrap(const char *line) {
    char *buf = NULL;
    size_t n = 0;
    FILE *o = open_memstream(&buf, &n);
    cg_wrap_line(o, line, strlen(line));
    fclose(o);
    return buf;
}

TEST(lines_wrap_at_100_columns) {
    char *w = wrap("    short(a, b);");
    CHECK(!strcmp(w, "    short(a, b);\n"));
    free(w);
    w = wrap("    conv2d_forward(acts + S0_ACT_CONV1_OUT, scratch, in + S0_IN_INPUT, "
             "params + S0_PARAM_CONV1_WEIGHT, params + S0_PARAM_CONV1_BIAS, P_B, 1, 28, 28, "
             "32, 3, 3, 1, 1, 1, 1);");
    CHECK(!strcmp(w, "    conv2d_forward(acts + S0_ACT_CONV1_OUT, scratch, in + S0_IN_INPUT,\n"
                     "                   params + S0_PARAM_CONV1_WEIGHT, "
                     "params + S0_PARAM_CONV1_BIAS, P_B,\n"
                     "                   1, 28, 28, 32, 3, 3, 1, 1, 1, 1);\n"));
    free(w);
    /* commas inside strings and nested calls are not break points */
    w = wrap("    {\"a, very, long, name, with, commas, in, it, that, goes, on, and, on, and, "
             "on\", \"weight\", S0_PARAM_X_WEIGHT, 100, 0},");
    CHECK(strstr(w, "on, and, on\",") != NULL && strchr(w, '\n') < strstr(w, "0},"));
    for (char *p = w, *nl; (nl = strchr(p, '\n')); p = nl + 1) CHECK(nl - p <= 100);
    free(w);
}

TEST(layer_identifiers_are_distinct) {
    pd_model m;
    memset(&m, 0, sizeof m);
    m.n_layers = 6;
    m.layers = calloc(6, sizeof *m.layers);
    const char *names[] = {"input", "layer1.0.conv", "layer1_0_conv", "floats", "input", "Conv"};
    for (int i = 0; i < 6; i++) snprintf(m.layers[i].name, sizeof m.layers[i].name, "%s", names[i]);
    char **ids = cg_layer_idents(&m);
    CHECK(ids != NULL);
    if (ids) {
        CHECK(!strcmp(ids[0], "INPUT"));
        CHECK(!strcmp(ids[1], "LAYER1_0_CONV"));
        CHECK(!strcmp(ids[2], "LAYER1_0_CONV_2"));
        CHECK(!strcmp(ids[3], "FLOATS_3"));
        CHECK(!strcmp(ids[4], "INPUT_4"));
        CHECK(!strcmp(ids[5], "CONV"));
    }
    cg_free_idents(ids, 6);
    free(m.layers);
}

TEST(templates_fill_and_report_unknown_keys) {
    cg_subst s[] = {{"A", "x"}, {"LONG_KEY", "y"}};
    char unknown[64];
    char *t = cg_fill_str("@A@ $@ @LONG_KEY@ a@b@ @A", s, 2, unknown, sizeof unknown);
    CHECK(t && !strcmp(t, "x $@ y a@b@ @A"));
    free(t);
    t = cg_fill_str("@A@ @MISSING@", s, 2, unknown, sizeof unknown);
    CHECK(t == NULL && !strcmp(unknown, "MISSING"));
}
