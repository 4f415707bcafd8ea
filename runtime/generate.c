/* generate.c: sampling text from a trained token model in one process (the --single binary,
 * which links every stage): `pd_single --generate N [--prompt TEXT] [--temperature X] [--seed S]
 * [--init DIR] [--vocab FILE] [--data DIR]` (scripts/pdlaunch GENDIR --generate N ... runs it).
 * The context is the model's input [T]: the last T tokens so far, left-aligned in sample 0 of a
 * minibatch (the other samples and the positions after the context hold id 0; a causal model's
 * logits at position t see only tokens <= t), the forward of every stage in evaluation mode, the
 * logits at the context's last position divided by the temperature, softmax (double) over the
 * vocabulary's ids (classes past vocab.txt's characters are never drawn), and the
 * next id drawn by inverse CDF with u = pd_rng_uniform_double(key(seed, PD_RNG_USER + 1, 0, 0,
 * 0), i) for the i-th character: the same seed, weights and prompt give the same text. Ids are
 * decoded (and the prompt encoded) with vocab.txt: the vocabulary's characters in id order, UTF-8
 * (scripts/prepare_shakespeare.py), beside the training file of the model's token dataset unless
 * --vocab names one. The default prompt is a newline, as the anchor's sample starts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "runtime/base/rng.h"

#define PD_RNG_SAMPLE (PD_RNG_USER + 1)

typedef struct {
    char ch[8]; /* one UTF-8 character */
} vchar;

/* the length of the UTF-8 sequence starting with byte c (1 for a stray byte) */
static int utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

static int vocab_read(vchar *v, int cap, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) PDRT_FAIL("--generate: cannot read the vocabulary %s (--vocab FILE names one)", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    int k = 0;
    for (size_t i = 0; i < n && k < cap; k++) {
        int l = utf8_len((unsigned char)buf[i]);
        if (i + (size_t)l > n) l = (int)(n - i);
        memcpy(v[k].ch, buf + i, (size_t)l);
        v[k].ch[l] = 0;
        i += (size_t)l;
    }
    return k;
}

static int id_of(const vchar *v, int V, const char *s, int *len) {
    *len = utf8_len((unsigned char)s[0]);
    for (int k = 0; k < V; k++)
        if (!strncmp(v[k].ch, s, (size_t)*len) && (int)strlen(v[k].ch) == *len) return k;
    return -1;
}

int pdrt_generate(int argc, char **argv, const pdrt_stage *const *stages, int n) {
    long N = 0;
    double temp = 1.0;
    uint64_t seed = 1;
    const char *prompt = "\n", *init = "", *vocab = "", *data = "";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--generate") || !strcmp(o, "--prompt") || !strcmp(o, "--temperature") ||
            !strcmp(o, "--seed") || !strcmp(o, "--init") || !strcmp(o, "--vocab") ||
            !strcmp(o, "--data") || !strcmp(o, "--run-dir")) {
            if (!v) PDRT_FAIL("%s needs a value", o);
            char *end = NULL;
            if (!strcmp(o, "--generate")) N = strtol(v, &end, 10);
            else if (!strcmp(o, "--temperature")) temp = strtod(v, &end);
            else if (!strcmp(o, "--seed")) seed = strtoull(v, &end, 10);
            else if (!strcmp(o, "--prompt")) prompt = v;
            else if (!strcmp(o, "--init")) init = v;
            else if (!strcmp(o, "--vocab")) vocab = v;
            else if (!strcmp(o, "--data")) data = v;
            if (end && (*end || end == v)) PDRT_FAIL("%s: '%s' is not a number", o, v);
            i++;
        } else {
            PDRT_FAIL("--generate takes --prompt, --temperature, --seed, --init, --vocab, --data; "
                      "not '%s'", o);
        }
    }
    if (N < 1 || !(temp > 0)) PDRT_FAIL("--generate N needs N >= 1 and --temperature > 0");
    const pdrt_stage *s0 = stages[0], *sl = stages[n - 1];
    int T = s0->in_c, B = s0->batch, V = sl->classes;
    char vpath[2100];
    if (vocab[0]) {
        snprintf(vpath, sizeof vpath, "%s", vocab);
    } else {
        char tpath[2048], other[2048];
        pd_token_format fmt;
        if (pdrt_token_spec(tpath, other, sizeof tpath, &fmt, s0->dataset, data) != 1)
            PDRT_FAIL("--generate: the model's dataset '%s' is not a token stream", s0->dataset);
        char *slash = strrchr(tpath, '/');
        if (slash) *slash = 0;
        snprintf(vpath, sizeof vpath, "%s/vocab.txt", slash ? tpath : ".");
    }
    if (s0->in_h != 1 || s0->in_w != 1 || sl->out_floats != (int64_t)B * T * V)
        PDRT_FAIL("--generate needs a token model: input [T], output (T, classes)");
    vchar *voc = calloc((size_t)V, sizeof *voc);
    PDRT_CHECK(voc != NULL);
    int nv = vocab_read(voc, V, vpath);
    if (nv < 1) PDRT_FAIL("--generate: %s holds no characters", vpath);
    /* the prompt's ids, then room for N more */
    size_t cap = strlen(prompt) + (size_t)N + 1, len = 0;
    int *ids = calloc(cap, sizeof(int));
    PDRT_CHECK(ids != NULL);
    for (const char *p = prompt; *p;) {
        int l, id = id_of(voc, nv, p, &l);
        if (id < 0) PDRT_FAIL("--prompt: the character '%.*s' is not in %s", l, p, vpath);
        ids[len++] = id;
        p += l;
    }
    if (!len) PDRT_FAIL("--prompt must hold at least one character");
    /* every stage's memory, the newest weights */
    float **par = calloc((size_t)n, sizeof(float *)), **buf = calloc((size_t)n, sizeof(float *));
    float **acts = calloc((size_t)n, sizeof(float *)), **scr = calloc((size_t)n, sizeof(float *));
    float **in = calloc((size_t)n + 1, sizeof(float *));
    PDRT_CHECK(par && buf && acts && scr && in);
    for (int k = 0; k < n; k++) {
        const pdrt_stage *st = stages[k];
        par[k] = pdrt_alloc((size_t)st->n_params);
        buf[k] = pdrt_alloc((size_t)st->n_buffers);
        acts[k] = pdrt_alloc((size_t)st->n_acts);
        scr[k] = pdrt_alloc((size_t)pdrt_scratch_floats(st));
        in[k] = pdrt_alloc((size_t)st->in_floats);
        st->init(par[k], buf[k], seed);
        if (init[0]) pdrt_weights_load(init, st, par[k], buf[k]);
    }
    in[n] = pdrt_alloc((size_t)sl->out_floats);
    if (!init[0]) fprintf(stderr, "pdrt: warning: --generate without --init samples from the "
                                  "initial weights\n");
    double *p = malloc((size_t)V * sizeof(double));
    PDRT_CHECK(p != NULL);
    uint64_t key = pd_rng_key(seed, PD_RNG_SAMPLE, 0, 0, 0);
    for (long i = 0; i < N; i++) {
        size_t from = len > (size_t)T ? len - (size_t)T : 0, w = len - from;
        memset(in[0], 0, (size_t)s0->in_floats * sizeof(float));
        for (size_t t = 0; t < w; t++) in[0][t] = (float)ids[from + t];
        for (int k = 0; k < n; k++)
            stages[k]->forward(in[k + 1], acts[k], scr[k], buf[k], par[k], in[k], 0, seed, -1);
        const float *z = in[n] + (w - 1) * (size_t)V; /* sample 0, the context's last position */
        double mx = -HUGE_VAL, sum = 0;
        int nc = nv < V ? nv : V; /* classes past the vocabulary never occur: not drawn */
        for (int c = 0; c < nc; c++) mx = fmax(mx, (double)z[c] / temp);
        for (int c = 0; c < nc; c++) sum += p[c] = exp((double)z[c] / temp - mx);
        double u = pd_rng_uniform_double(key, (uint64_t)i) * sum, acc = 0;
        int next = nc - 1;
        for (int c = 0; c < nc; c++)
            if ((acc += p[c]) > u) { next = c; break; }
        ids[len++] = next;
        fputs(voc[next].ch, stdout);
    }
    putchar('\n');
    fflush(stdout);
    for (int k = 0; k < n; k++) { free(par[k]); free(buf[k]); free(acts[k]); free(scr[k]); free(in[k]); }
    free(in[n]);
    free(par); free(buf); free(acts); free(scr); free(in); free(p); free(ids); free(voc);
    return 0;
}
