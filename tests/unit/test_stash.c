/* test_stash.c: the weight stash: a backward gets the version its forward used, updates go to the
 * newest version, and the ring keeps exactly weight_versions versions. */
#include <stdlib.h>

#include "runtime/rt.h"
#include "test.h"

TEST(stash_versions_follow_1f1b) {
    pdrt_stash s;
    pdrt_stash_init(&s, 2, 3, 2); /* warm-up 1: two versions, two minibatches in flight */
    float *w0 = pdrt_stash_newest(&s);
    for (int i = 0; i < 3; i++) w0[i] = 1.0f;
    CHECK(pdrt_stash_for_forward(&s, 0) == w0);
    CHECK(pdrt_stash_for_forward(&s, 1) == w0);
    CHECK_EQ_INT(pdrt_stash_version_of(&s, 1), 0);
    CHECK(pdrt_stash_for_backward(&s, 0) == w0);
    float *w1 = pdrt_stash_begin_update(&s); /* version 1 starts as a copy of version 0 */
    CHECK(w1 != w0);
    CHECK(w1[0] == 1.0f && w1[2] == 1.0f);
    w1[0] = 2.0f;
    CHECK(pdrt_stash_for_forward(&s, 2) == w1);
    CHECK_EQ_INT(pdrt_stash_version_of(&s, 2), 1);
    /* minibatch 1's forward used version 0, which is still stashed */
    float *b1 = pdrt_stash_for_backward(&s, 1);
    CHECK(b1 == w0 && b1[0] == 1.0f);
    float *w2 = pdrt_stash_begin_update(&s); /* overwrites version 0's slot */
    CHECK(w2 == w0 && w2[0] == 2.0f);
    CHECK_EQ_INT(s.newest, 2);
    CHECK(pdrt_stash_for_backward(&s, 2) == w1);
    pdrt_stash_free(&s);
}

TEST(stash_single_version_updates_in_place) {
    pdrt_stash s;
    pdrt_stash_init(&s, 1, 4, 1);
    float *w = pdrt_stash_for_forward(&s, 0);
    CHECK(pdrt_stash_for_backward(&s, 0) == w);
    CHECK(pdrt_stash_begin_update(&s) == w);
    CHECK(pdrt_stash_for_forward(&s, 1) == w);
    pdrt_stash_free(&s);
}
