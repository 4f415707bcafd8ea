/* test_optim.c: SGD (momentum, weight decay) and Adam against steps worked out by hand from
 * torch.optim's update rules, on a parameter and on a whole blob through pd_optim_step;
 * AdamW, the warm-up + cosine learning rate and the clipping coefficient against numbers that
 * python3-torch 1.13 printed (the setup is in each test's comment). */
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
    pd_optim adam = {.kind = PD_OPTIM_ADAM, .lr = 0.01f, .weight_decay = 0.001f, .beta1 = 0.9f,
                     .beta2 = 0.999f, .eps = 1e-8f};
    CHECK_EQ_INT(pd_optim_state_floats(&adam, N), 2 * N);
    for (int t = 1; t <= 3; t++) {
        pd_optim_step(w1, s1, g, &adam, t, N);
        pd_adam_step(w2, m, v, g, 0.01f, 0.9f, 0.999f, 1e-8f, 0.001f, t, N);
    }
    CHECK(memcmp(w1, w2, sizeof w1) == 0);
    CHECK(memcmp(s1, m, sizeof m) == 0 && memcmp(s1 + N, v, sizeof v) == 0);
    pd_optim sgd = {.kind = PD_OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f};
    CHECK_EQ_INT(pd_optim_state_floats(&sgd, N), N);
    memset(s1, 0, sizeof s1);
    for (int t = 1; t <= 3; t++) {
        pd_optim_step(w1, s1, g, &sgd, t, N);
        pd_sgd_step(w2, buf, g, 0.05f, 0.9f, 1e-4f, N);
    }
    CHECK(memcmp(w1, w2, sizeof w1) == 0);
    pd_optim plain = {.kind = PD_OPTIM_SGD, .lr = 0.05f};
    CHECK_EQ_INT(pd_optim_state_floats(&plain, N), 0);
    pd_optim_step(w1, NULL, g, &plain, 1, N);
    CHECK_CLOSE(w1[0], w2[0] - 0.05 * g[0], 1e-7, 1e-6);
}

/* torch.optim.AdamW (python3-torch 1.13), lr 0.01, betas (0.9, 0.99), eps 1e-8, two parameter
 * groups: w = [1, -0.5, 0.25] with weight_decay 0.1 and b = [0.3, -0.2] with 0 (a bias), the
 * gradients below, three steps; torch printed these weights (%.9g). */
TEST(adamw_matches_torch_with_a_no_decay_span) {
    float p[5] = {1.0f, -0.5f, 0.25f, 0.3f, -0.2f}, st[10] = {0};
    const float g[3][5] = {{0.5f, -0.25f, 0.125f, 0.1f, -0.2f},
                           {-0.3f, 0.2f, 0.7f, 0.3f, 0.05f},
                           {0.05f, 0.4f, -0.6f, -0.4f, 0.25f}};
    const double want[3][5] = {{0.989000022, -0.489500016, 0.239749998, 0.290000021, -0.189999998},
                               {0.986094058, -0.48842898, 0.231025308, 0.280838758, -0.18529591},
                               {0.983080208, -0.492640913, 0.229894444, 0.281451166, -0.187916368}};
    pd_optim_span spans[2] = {{0, 3, 1}, {3, 2, 0}};
    pd_optim o = {PD_OPTIM_ADAMW, 0.01f, 0, 0.1f, 0.9f, 0.99f, 1e-8f, 0, 0, 0, 0, spans, 2};
    CHECK_EQ_INT(pd_optim_state_floats(&o, 5), 10);
    for (int t = 0; t < 3; t++) {
        pd_optim_step(p, st, g[t], &o, t + 1, 5);
        for (int i = 0; i < 5; i++) CHECK_CLOSE(p[i], want[t][i], 1e-7, 2e-7);
    }
    /* no spans: everything decays, which is the w group alone */
    float q[3] = {1.0f, -0.5f, 0.25f}, m[3] = {0}, v[3] = {0};
    pd_adamw_step(q, m, v, g[0], 0.01f, 0.9f, 0.99f, 1e-8f, 0.1f, 1, 3);
    for (int i = 0; i < 3; i++) CHECK_CLOSE(q[i], want[0][i], 1e-7, 2e-7);
    /* with weight decay 0, AdamW is Adam */
    float a[3] = {1.0f, -0.5f, 0.25f}, am[3] = {0}, av[3] = {0};
    float c[3] = {1.0f, -0.5f, 0.25f}, cm[3] = {0}, cv[3] = {0};
    pd_adamw_step(a, am, av, g[1], 0.01f, 0.9f, 0.99f, 1e-8f, 0.0f, 1, 3);
    pd_adam_step(c, cm, cv, g[1], 0.01f, 0.9f, 0.99f, 1e-8f, 0.0f, 1, 3);
    CHECK(memcmp(a, c, sizeof a) == 0);
}

/* torch_gpt_char.py's lr_at (lr 1e-3, min 1e-4, warm-up 100, decay to step 2000), printed by
 * python with %.9g, at steps 0, 49, 99, 100, 500, 1050, 1999; past 2000 it stays at min_lr. */
TEST(lr_schedule_matches_the_anchor) {
    pd_optim o = {PD_OPTIM_ADAMW, 1e-3f, 0, 0, 0.9f, 0.99f, 1e-8f, 100, 2000, 1e-4f, 0, NULL, 0};
    const int64_t it[7] = {0, 49, 99, 100, 500, 1050, 1999};
    const double want[7] = {1e-05, 0.0005, 0.001, 0.001, 0.000905113229, 0.00055, 0.000100000615};
    for (int i = 0; i < 7; i++) CHECK_CLOSE(pd_optim_lr(&o, it[i] + 1), want[i], 0, 1e-6);
    CHECK_CLOSE(pd_optim_lr(&o, 2001), 1e-4, 0, 1e-6);
    CHECK_CLOSE(pd_optim_lr(&o, 5000), 1e-4, 0, 1e-6);
    /* warm-up alone: then constant */
    o.lr_decay_iters = 0;
    CHECK_CLOSE(pd_optim_lr(&o, 1), 1e-5, 0, 1e-6);
    CHECK(pd_optim_lr(&o, 101) == 1e-3f && pd_optim_lr(&o, 9999) == 1e-3f);
    /* no schedule: the lr itself, so that SGD and Adam runs are unchanged */
    pd_optim s = {PD_OPTIM_SGD, 0.05f, 0.9f, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0};
    CHECK(pd_optim_lr(&s, 1) == 0.05f && pd_optim_lr(&s, 12345) == 0.05f);
}

/* torch.nn.utils.clip_grad_norm_ over [3, -4, 1] and [2, 0.5] with max_norm 1: norm 5.5, the
 * gradients times 1/(5.5 + 1e-6): 0.545454502 ... */
TEST(clip_coefficient_matches_torch) {
    float g1[3] = {3.0f, -4.0f, 1.0f}, g2[2] = {2.0f, 0.5f};
    double sq = pd_sq_norm(g1, 3) + pd_sq_norm(g2, 2);
    CHECK_CLOSE(sqrt(sq), 5.5, 0, 1e-12);
    float c = pd_clip_coef(sq, 1.0f);
    /* torch sums float32 per-tensor norms (its norm is 1 ulp off 5.5); ours is exact */
    CHECK_CLOSE(g1[0] * c, 0.545454502, 0, 3e-7);
    CHECK_CLOSE(g1[1] * c, -0.72727263, 0, 3e-7);
    CHECK_CLOSE(g2[1] * c, 0.0909090787, 0, 3e-7);
    CHECK(pd_clip_coef(sq, 10.0f) == 1.0f); /* below the limit: unchanged */
    CHECK(pd_clip_coef(0.0, 1.0f) == 1.0f);
}
