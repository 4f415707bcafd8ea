/* test_reverse_data.c: the synthetic sequence-to-sequence task `reverse` (runtime/data.c,
 * pd_reverse_init; docs/formats.md): every sample's T targets are its T ids in reverse order,
 * the ids lie in the vocabulary and are spread over it, a batch is the same for the same (seed,
 * epoch, index) and shuffles with the epoch, training and validation samples differ, and a
 * sample is T targets (pd_data_targets). */
#include <stdlib.h>
#include <string.h>

#include "runtime/data.h"
#include "test.h"

TEST(reverse_targets_are_the_ids_reversed) {
    enum { T = 7, V = 5, B = 16 };
    pd_data tr, va;
    pd_reverse_init(&tr, 64, T, V, 11, 1);
    pd_reverse_init(&va, 64, T, V, 11, 0);
    CHECK_EQ_INT(pd_data_targets(&tr), T);
    CHECK_EQ_INT(pd_data_sample_floats(&tr), T);
    CHECK_EQ_INT(pd_data_batches(&tr, B, 1), 4);
    float x[B * T], x2[B * T], xv[B * T];
    int y[B * T], y2[B * T], seen[V] = {0};
    CHECK_EQ_INT(pd_data_batch(x, y, &tr, 0, 1, B, 1, 11), B);
    for (int j = 0; j < B; j++)
        for (int t = 0; t < T; t++) {
            float id = x[j * T + t];
            CHECK(id >= 0 && id < V && id == (float)(int)id);
            CHECK_EQ_INT(y[j * T + T - 1 - t], (int)id);
            seen[(int)id]++;
        }
    for (int v = 0; v < V; v++) CHECK(seen[v] > 0);
    CHECK_EQ_INT(pd_data_batch(x2, y2, &tr, 0, 1, B, 1, 11), B); /* the same again */
    CHECK(!memcmp(x, x2, sizeof x) && !memcmp(y, y2, sizeof y));
    CHECK_EQ_INT(pd_data_batch(x2, NULL, &tr, 1, 1, B, 1, 11), B); /* another epoch's order */
    CHECK(memcmp(x, x2, sizeof x) != 0);
    CHECK_EQ_INT(pd_data_batch(xv, NULL, &va, 0, 1, B, 1, 11), B); /* validation differs */
    CHECK(memcmp(x, xv, sizeof x) != 0);
    CHECK_EQ_INT(pd_data_batch(x, NULL, &tr, 0, 4, B, 1, 11), 0); /* past the end */
    pd_data_free(&tr);
    pd_data_free(&va);
}
