/* test_optim.c: SGD (momentum, weight decay) and Adam against steps worked out by hand from
 * torch.optim's update rules, on a parameter and on a whole blob through pd_optim_step. */
#include <string.h>

#include "runtime/optim.h"
#include "test.h"

/* w = 1, grads 0.5, -0.25, 0.125, lr 0.1, weight decay 0.01:
 * SGD momentum 0.9: g1 = 0.51, buf = 0.51, w = 0.949; g2 = -0.24051, buf = 0.21849,
 * w = 0.927151; g3 = 0.13427151, buf = 0.33091251, w = 0.894059749. */
TEST(sgd_momentum_weight_decay_matches_hand_steps) {
    float w = 1.0f, buf = 0.0f, g[3] = {0.5f, -0.25f, 0.125f};
    double want[3] = {0.949, 0.927151, 0.894059749};
    for (int t = 0; t < 3; t++) {
        pd_sgd_step(&w, &buf, &g[t], 0.1f, 0.9f, 0.01f, 1);
        CHECK_CLOSE(w, want[t], 1e-6, 1e-6);
    }
    CHECK_CLOSE(buf, 0.33091251, 1e-6, 1e-6);
}

TEST(sgd_without_momentum_is_plain_descent) {
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f};
    pd_sgd_step(w, NULL, g, 0.1f, 0.0f, 0.01f, 2);
    CHECK_CLOSE(w[0], 1.0 - 0.1 * (0.5 + 0.01), 1e-7, 1e-6);
    CHECK_CLOSE(w[1], -2.0 - 0.1 * (0.25 - 0.02), 1e-7, 1e-6);
}

/* Adam lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, same gradients:
 * t=1: g = 0.51, m = 0.051, v = 2.601e-4, mhat = 0.51, vhat = 0.2601, w = 1 - 0.1*0.51/(0.51+1e-8)
 * = 0.9000000019607843; t=2: w = 0.8712293476231743; t=3: w = 0.8348430342568426. */
TEST(adam_matches_hand_steps) {
    float w = 1.0f, m = 0.0f, v = 0.0f, g[3] = {0.5f, -0.25f, 0.125f};
    double want[3] = {0.9000000019607843, 0.8712293476231743, 0.8348430342568426};
    for (int t = 0; t < 3; t++) {
        pd_adam_step(&w, &m, &v, &g[t], 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, t + 1, 1);
        CHECK_CLOSE(w, want[t], 2e-6, 2e-6);
    }
}

TEST(optim_step_dispatches_over_one_blob) {
    enum { N = 5 };
    float w1[N], w2[N], g[N], s1[2 * N] = {0}, m[N] = {0}, v[N] = {0}, buf[N] = {0};
    for (int i = 0; i < N; i++) {
        w1[i] = w2[i] = 0.3f * (float)i - 0.5f;
        g[i] = 0.1f * (float)(i * i) - 0.7f;
    }
    pd_optim adam = {PD_OPTIM_ADAM, 0.01f, 0, 0.001f, 0.9f, 0.999f, 1e-8f};
    CHECK_EQ_INT(pd_optim_state_floats(&adam, N), 2 * N);
    for (int t = 1; t <= 3; t++) {
        pd_optim_step(w1, s1, g, &adam, t, N);
        pd_adam_step(w2, m, v, g, 0.01f, 0.9f, 0.999f, 1e-8f, 0.001f, t, N);
    }
    CHECK(memcmp(w1, w2, sizeof w1) == 0);
    CHECK(memcmp(s1, m, sizeof m) == 0 && memcmp(s1 + N, v, sizeof v) == 0);
    pd_optim sgd = {PD_OPTIM_SGD, 0.05f, 0.9f, 1e-4f, 0, 0, 0};
    CHECK_EQ_INT(pd_optim_state_floats(&sgd, N), N);
    memset(s1, 0, sizeof s1);
    for (int t = 1; t <= 3; t++) {
        pd_optim_step(w1, s1, g, &sgd, t, N);
        pd_sgd_step(w2, buf, g, 0.05f, 0.9f, 1e-4f, N);
    }
    CHECK(memcmp(w1, w2, sizeof w1) == 0);
    pd_optim plain = {PD_OPTIM_SGD, 0.05f, 0.0f, 0.0f, 0, 0, 0};
    CHECK_EQ_INT(pd_optim_state_floats(&plain, N), 0);
    pd_optim_step(w1, NULL, g, &plain, 1, N);
    CHECK_CLOSE(w1[0], w2[0] - 0.05 * g[0], 1e-7, 1e-6);
}
