/* test_laps.c: the runtime's per-layer times inside training (runtime/laps.c): marks time the
 * layers only while a recorder is open, warm-up calls are not counted, and the profile lines
 * attribute the executor's work outside the layers as documented (loading to the first layer's
 * forward, the rest of the forward to the last layer, the rest of the backward and the
 * optimizer by parameter bytes), so that the stage's lines sum to its compute. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/rt.h"
#include "test.h"

static void spin_ms(double ms) {
    double t = pdrt_now();
    while (1e3 * (pdrt_now() - t) < ms) {}
}

static const pdrt_layer three[] = {{"a", 100, 40}, {"b", 200, 0}, {"c", 300, 120}};
static const pdrt_stage stage3 = {.abi = PDRT_ABI, .model = "m", .batch = 4, .n_layers = 3,
                                  .layers = three, .model_layers = 3};

/* Parses "forward_ms: F, backward_ms: B" of line i of the profile lines. */
static int line_ms(const char *s, int i, double *f, double *b) {
    for (int k = 0; k < i && s; k++) {
        s = strchr(s, '\n');
        if (s) s++;
    }
    if (!s) return -1;
    const char *p = strstr(s, "forward_ms: "), *q = strstr(s, "backward_ms: ");
    if (!p || !q) return -1;
    *f = atof(p + 12);
    *b = atof(q + 13);
    return 0;
}

TEST(laps_time_only_inside_a_recorder) {
    pdrt_laps l;
    pdrt_laps_init(&l, 2, 1);
    pdrt_lap_start();
    pdrt_lap(0); /* nothing open: ignored */
    for (int call = 0; call < 3; call++) {
        pdrt_laps_begin(&l, 0);
        pdrt_lap_start();
        spin_ms(2);
        pdrt_lap(0);
        spin_ms(1);
        pdrt_lap(1);
        pdrt_lap(7); /* out of range: ignored */
        pdrt_laps_end(&l, 3.5, 0.25);
    }
    pdrt_lap(0); /* closed again */
    CHECK_EQ_INT(l.calls[0], 3);
    CHECK_EQ_INT(l.counted[0], 2); /* the first call warmed up */
    CHECK(l.ms[0][0] >= 2 * 2.0 && l.ms[0][0] < 2 * 2.0 + 20);
    CHECK(l.ms[0][1] >= 2 * 1.0 && l.ms[0][1] < 2 * 1.0 + 20);
    CHECK_CLOSE(l.total[0], 7.0, 1e-12, 0);
    CHECK_CLOSE(l.data_ms, 0.5, 1e-12, 0);
    pdrt_laps_free(&l);
}

TEST(profile_lines_attribute_the_rest) {
    pdrt_laps l;
    pdrt_laps_init(&l, 3, 0);
    /* two counted calls each way, set by hand: per call forward laps 1, 2, 3 ms, the whole
     * forward 8.5 ms of which 0.5 ms loading; backward laps 2, 2, 2 ms, the whole 7.6 ms */
    double fl[3] = {1, 2, 3}, bl[3] = {2, 2, 2};
    for (int i = 0; i < 3; i++) { l.ms[0][i] = 2 * fl[i]; l.ms[1][i] = 2 * bl[i]; }
    l.calls[0] = l.calls[1] = l.counted[0] = l.counted[1] = 2;
    l.total[0] = 2 * 8.5;
    l.total[1] = 2 * 7.6;
    l.data_ms = 2 * 0.5;
    char *s = pdrt_laps_profile_lines(&l, &stage3, 0.4); /* 0.4 ms of optimizer per minibatch */
    double f[3], b[3];
    for (int i = 0; i < 3; i++) CHECK(line_ms(s, i, &f[i], &b[i]) == 0);
    /* forward: loading to a, the rest (8.5 - 6 - 0.5 = 2) to c */
    CHECK_CLOSE(f[0], 1.5, 1e-9, 0);
    CHECK_CLOSE(f[1], 2.0, 1e-9, 0);
    CHECK_CLOSE(f[2], 5.0, 1e-9, 0);
    /* backward: the rest (7.6 - 6) plus the step (0.4) = 2 ms, by parameter bytes 40 : 0 : 120 */
    CHECK_CLOSE(b[0], 2.5, 1e-9, 0);
    CHECK_CLOSE(b[1], 2.0, 1e-9, 0);
    CHECK_CLOSE(b[2], 3.5, 1e-9, 0);
    CHECK_CLOSE(f[0] + f[1] + f[2] + b[0] + b[1] + b[2], 8.5 + 7.6 + 0.4, 1e-9, 0);
    CHECK(strstr(s, "  - {name: b, forward_ms: 2, backward_ms: 2, activation_bytes: 200, parameter_bytes: 0}\n") != NULL);
    free(s);
    pdrt_laps_free(&l);
}

TEST(profile_lines_without_parameters_or_counts) {
    static const pdrt_layer two[] = {{"x", 8, 0}, {"y", 8, 0}};
    const pdrt_stage st = {.abi = PDRT_ABI, .model = "m", .batch = 1, .n_layers = 2, .layers = two,
                           .model_layers = 2};
    pdrt_laps l;
    pdrt_laps_init(&l, 2, 5);
    char *s = pdrt_laps_profile_lines(&l, &st, 1.0); /* nothing counted: no lines */
    CHECK(s && s[0] == 0);
    free(s);
    l.ms[1][0] = l.ms[1][1] = 1;
    l.ms[0][0] = l.ms[0][1] = 1;
    l.counted[0] = l.counted[1] = 1;
    l.total[0] = 1.5; /* less than the laps (clock noise): nothing taken away */
    l.total[1] = 3;
    s = pdrt_laps_profile_lines(&l, &st, 1.0);
    double f[2], b[2];
    CHECK(line_ms(s, 0, &f[0], &b[0]) == 0 && line_ms(s, 1, &f[1], &b[1]) == 0);
    CHECK_CLOSE(f[0] + f[1], 2.0, 1e-12, 0);
    /* no parameters: the backward's rest (1) and the step (1) go to the last layer */
    CHECK_CLOSE(b[0], 1.0, 1e-12, 0);
    CHECK_CLOSE(b[1], 3.0, 1e-12, 0);
    free(s);
    pdrt_laps_free(&l);
}
