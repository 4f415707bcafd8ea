/* test_tokens.c: the token path's kernels. The embedding's forward against a naive reference
 * (gather + position rows) and its backward against central differences of L = sum(w * y) on
 * the double reference, gradients pre-filled (accumulation); the per-token cross-entropy over
 * B*T rows against a hand-computed double reference and against PyTorch's
 * F.cross_entropy(logits.view(-1, V), targets.view(-1)) and its gradient (/usr/bin/python3 with
 * torch; SKIP without it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cpu/ops.h"
#include "test.h"

static uint64_t st = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    st ^= st >> 12;
    st ^= st << 25;
    st ^= st >> 27;
    return (double)((st * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

enum { B = 3, T = 5, V = 7, C = 4 };

/* y = w[id] + pos[t] in double */
static void ref_embedding(double *y, const float *ids, const double *w, const double *pos) {
    for (int i = 0; i < B * T; i++)
        for (int c = 0; c < C; c++)
            y[i * C + c] = w[(int)ids[i] * C + c] + (pos ? pos[(i % T) * C + c] : 0.0);
}
static double ref_loss(const float *ids, const double *w, const double *pos, const float *g) {
    double y[B * T * C], L = 0;
    ref_embedding(y, ids, w, pos);
    for (int k = 0; k < B * T * C; k++) L += g[k] * y[k];
    return L;
}

TEST(embedding_forward_backward_match_reference) {
    float ids[B * T], w[V * C], pos[T * C], y[B * T * C], g[B * T * C];
    float dw[V * C], dpos[T * C], dw0[V * C], dpos0[T * C];
    double wd[V * C], pd[T * C], yr[B * T * C];
    for (int i = 0; i < B * T; i++) ids[i] = (float)(i % 3 == 0 ? 2 : (int)(urand() * V)); /* repeats */
    for (int k = 0; k < V * C; k++) wd[k] = w[k] = (float)(urand() - 0.5);
    for (int k = 0; k < T * C; k++) pd[k] = pos[k] = (float)(urand() - 0.5);
    for (int k = 0; k < B * T * C; k++) g[k] = (float)(urand() - 0.5);
    for (int k = 0; k < V * C; k++) dw[k] = dw0[k] = (float)urand();
    for (int k = 0; k < T * C; k++) dpos[k] = dpos0[k] = (float)urand();
    for (int with_pos = 0; with_pos < 2; with_pos++) {
        pdrt_embedding_forward(y, ids, w, with_pos ? pos : NULL, B, T, V, C);
        ref_embedding(yr, ids, wd, with_pos ? pd : NULL);
        for (int k = 0; k < B * T * C; k++) CHECK_CLOSE(y[k], yr[k], 1e-6, 1e-6);
    }
    pdrt_embedding_backward(dw, dpos, g, ids, B, T, V, C);
    const double h = 1e-3;
    for (int k = 0; k < V * C; k++) { /* central differences of the reference */
        double s = wd[k];
        wd[k] = s + h; double up = ref_loss(ids, wd, pd, g);
        wd[k] = s - h; double dn = ref_loss(ids, wd, pd, g);
        wd[k] = s;
        CHECK_CLOSE(dw[k] - dw0[k], (up - dn) / (2 * h), 1e-5, 1e-4);
    }
    for (int k = 0; k < T * C; k++) {
        double s = pd[k];
        pd[k] = s + h; double up = ref_loss(ids, wd, pd, g);
        pd[k] = s - h; double dn = ref_loss(ids, wd, pd, g);
        pd[k] = s;
        CHECK_CLOSE(dpos[k] - dpos0[k], (up - dn) / (2 * h), 1e-5, 1e-4);
    }
    /* deterministic: the same call gives the same bits */
    float dw2[V * C], dpos2[T * C];
    memcpy(dw2, dw0, sizeof dw2);
    memcpy(dpos2, dpos0, sizeof dpos2);
    pdrt_embedding_backward(dw2, dpos2, g, ids, B, T, V, C);
    CHECK(!memcmp(dw2, dw, sizeof dw) && !memcmp(dpos2, dpos, sizeof dpos));
    /* NULL gradients are skipped */
    pdrt_embedding_backward(NULL, NULL, g, ids, B, T, V, C);
}

/* the mean over B*T rows of -log softmax(z)[target], and its gradient, in double */
TEST(token_cross_entropy_is_mean_over_every_token) {
    enum { N = B * T, K = 11 };
    float z[N * K], dz[N * K];
    int tg[N];
    for (int k = 0; k < N * K; k++) z[k] = (float)(4 * urand() - 2);
    for (int i = 0; i < N; i++) tg[i] = (int)(urand() * K);
    float loss = pdrt_softmax_cross_entropy(dz, z, tg, N, K);
    double L = 0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += exp(z[i * K + k]);
        L += log(s) - z[i * K + tg[i]];
        for (int k = 0; k < K; k++)
            CHECK_CLOSE(dz[i * K + k], (exp(z[i * K + k]) / s - (k == tg[i])) / N, 1e-7, 1e-5);
    }
    CHECK_CLOSE(loss, L / N, 1e-6, 1e-6);
    CHECK_EQ_INT(pdrt_count_correct(z, tg, N, K) >= 0, 1);
}

TEST(token_cross_entropy_equals_pytorch) {
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        test_skip("no /usr/bin/python3 with torch");
        return;
    }
    enum { Bt = 2, Tt = 6, K = 9, N = Bt * Tt };
    float z[N * K], dz[N * K];
    int tg[N];
    for (int k = 0; k < N * K; k++) z[k] = (float)(6 * urand() - 3);
    for (int i = 0; i < N; i++) tg[i] = (int)(urand() * K);
    float loss = pdrt_softmax_cross_entropy(dz, z, tg, N, K);
    char dir[] = "/tmp/pd_test_tokens_XXXXXX", path[256], cmd[1024];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/in.txt", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    for (int k = 0; k < N * K; k++) fprintf(f, "%.9g\n", (double)z[k]);
    for (int i = 0; i < N; i++) fprintf(f, "%d\n", tg[i]);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"\n"
             "import torch, torch.nn.functional as F\n"
             "v = open('%s/in.txt').read().split()\n"
             "z = torch.tensor([float(x) for x in v[:%d]]).view(%d, %d, %d).requires_grad_()\n"
             "t = torch.tensor([int(x) for x in v[%d:]]).view(%d, %d)\n"
             "l = F.cross_entropy(z.view(-1, %d), t.view(-1)); l.backward()\n"
             "print('%%.9g' %% l.item()); [print('%%.9g' %% g) for g in z.grad.view(-1).tolist()]\n"
             "\" > %s/out.txt",
             dir, N * K, Bt, Tt, K, N * K, Bt, Tt, K, dir);
    CHECK_EQ_INT(system(cmd), 0);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    double ref;
    CHECK_EQ_INT(fscanf(f, "%lf", &ref), 1);
    CHECK_CLOSE(loss, ref, 1e-6, 1e-6);
    for (int k = 0; k < N * K; k++) {
        CHECK_EQ_INT(fscanf(f, "%lf", &ref), 1);
        CHECK_CLOSE(dz[k], ref, 1e-8, 1e-5);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}
