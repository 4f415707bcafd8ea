/* test_schedule.c: the 1F1B generator's order for several stage and step counts, and the deadlock
 * checker on correct, blocking-send and deliberately broken schedules. */
#include <stdlib.h>
#include <string.h>

#include "schedule.h"
#include "test.h"

/* The kinds of rank r's actions, as a string of letters (F B s r S R p). */
static void kinds(char *out, const pd_schedule *s, int r) {
    const char *letters = "FBsrSRpaf";
    int i;
    for (i = 0; i < s->ranks[r].n && i < 255; i++) out[i] = letters[s->ranks[r].a[i].kind];
    out[i] = 0;
}

TEST(one_f_one_b_two_stages_exact_order) {
    pd_schedule *s = pd_schedule_1f1b(2, NULL, 3);
    CHECK(s != NULL);
    if (!s) return;
    char k[256];
    kinds(k, s, 0); /* warmup 1: F0 s0, then (F1 s1 R0 B0 p0) (F2 s2 R1 B1 p1), drain R2 B2 p2 */
    CHECK(strcmp(k, "FsFsRBpFsRBpRBp") == 0);
    kinds(k, s, 1); /* warmup 0: (r F B S p) x3 */
    CHECK(strcmp(k, "rFBSprFBSprFBSp") == 0);
    CHECK_EQ_INT(s->ranks[0].a[2].mb, 1);
    CHECK_EQ_INT(s->ranks[0].a[4].mb, 0);
    CHECK_EQ_INT(s->send_slots, 2);
    pd_schedule_free(s);
}

/* For every stage: forwards and backwards each run 0..steps-1 in order, every backward follows
 * its forward, and when backward m starts, exactly min(steps, m + warmup + 1) forwards are done. */
TEST(one_f_one_b_properties_many_sizes) {
    for (int n = 1; n <= 5; n++)
        for (int steps = 0; steps <= 9; steps++) {
            pd_schedule *s = pd_schedule_1f1b(n, NULL, steps);
            CHECK(s != NULL);
            if (!s) continue;
            for (int st = 0; st < n; st++) {
                int w = n - 1 - st, nf = 0, nb = 0, nstep = 0;
                const pd_rank_schedule *rs = &s->ranks[st];
                for (int i = 0; i < rs->n; i++) {
                    const pd_action *a = &rs->a[i];
                    if (a->kind == PD_A_FORWARD) CHECK_EQ_INT(a->mb, nf++);
                    if (a->kind == PD_A_BACKWARD) {
                        CHECK_EQ_INT(a->mb, nb);
                        int want = nb + w + 1 < steps ? nb + w + 1 : steps;
                        CHECK_EQ_INT(nf, want);
                        nb++;
                    }
                    if (a->kind == PD_A_STEP) CHECK_EQ_INT(a->mb, nstep++);
                }
                CHECK_EQ_INT(nf, steps);
                CHECK_EQ_INT(nb, steps);
                CHECK_EQ_INT(nstep, steps);
            }
            char why[512];
            int bad = pd_schedule_check(s, why, sizeof why);
            if (bad) fprintf(stderr, "n=%d steps=%d: %s\n", n, steps, why);
            CHECK_EQ_INT(bad, 0);
            pd_schedule_free(s);
        }
}

/* With blocking sends (no slot), 1F1B's forward send and the next stage's gradient send wait
 * for each other: the checker must say so. */
TEST(checker_catches_blocking_send_deadlock) {
    pd_schedule *s = pd_schedule_1f1b(2, NULL, 4);
    CHECK(s != NULL);
    if (!s) return;
    s->send_slots = 0;
    char why[512];
    CHECK_EQ_INT(pd_schedule_check(s, why, sizeof why), 1);
    CHECK(strstr(why, "deadlock") != NULL);
    CHECK(strstr(why, "rank 0") != NULL && strstr(why, "rank 1") != NULL);
    pd_schedule_free(s);
}

/* A deliberately broken schedule: the last stage receives minibatch 1 before 0 while stage 0
 * cannot send 1 before it has the gradient of 0 (warmup 0 for both). */
TEST(checker_catches_swapped_receives) {
    int warm[2] = {0, 0};
    pd_schedule *s = pd_schedule_1f1b(2, warm, 3);
    CHECK(s != NULL);
    if (!s) return;
    char why[512];
    CHECK_EQ_INT(pd_schedule_check(s, why, sizeof why), 0);
    /* rank 1: r0 F0 B0 S0 p0 r1 ...: make it wait for 1 first */
    pd_rank_schedule *r1 = &s->ranks[1];
    CHECK(r1->a[0].kind == PD_A_RECV_ACT && r1->a[5].kind == PD_A_RECV_ACT);
    r1->a[0].mb = 1;
    r1->a[5].mb = 0;
    CHECK_EQ_INT(pd_schedule_check(s, why, sizeof why), 1);
    CHECK(strstr(why, "deadlock") != NULL);
    pd_schedule_free(s);
}

TEST(checker_catches_missing_receive_and_bad_peer) {
    pd_schedule *s = pd_schedule_1f1b(3, NULL, 2);
    CHECK(s != NULL);
    if (!s) return;
    char why[512];
    pd_rank_schedule *r2 = &s->ranks[2];
    /* drop rank 2's last action pair (backward 1's send_grad becomes a forward): rank 1 then
     * waits forever for gradient 1 */
    for (int i = r2->n - 1; i >= 0; i--)
        if (r2->a[i].kind == PD_A_SEND_GRAD) { r2->a[i].kind = PD_A_STEP; break; }
    CHECK_EQ_INT(pd_schedule_check(s, why, sizeof why), 1);
    CHECK(strstr(why, "rank 1") != NULL);
    pd_schedule_free(s);

    s = pd_schedule_1f1b(2, NULL, 2);
    CHECK(s != NULL);
    if (!s) return;
    s->ranks[0].a[1].peer = 7;
    CHECK_EQ_INT(pd_schedule_check(s, why, sizeof why), 1);
    CHECK(strstr(why, "bad peer") != NULL);
    pd_schedule_free(s);
}

TEST(schedule_text_is_deterministic) {
    pd_schedule *a = pd_schedule_1f1b(3, NULL, 5), *b = pd_schedule_1f1b(3, NULL, 5);
    CHECK(a && b);
    if (!a || !b) { pd_schedule_free(a); pd_schedule_free(b); return; }
    char *ta = NULL, *tb = NULL;
    size_t na = 0, nb = 0;
    FILE *fa = open_memstream(&ta, &na), *fb = open_memstream(&tb, &nb);
    pd_schedule_write(fa, a);
    pd_schedule_write(fb, b);
    fclose(fa);
    fclose(fb);
    CHECK(na == nb && memcmp(ta, tb, na) == 0);
    CHECK(strstr(ta, "send_act 0 -> 1") != NULL);
    CHECK(strstr(ta, "recv_grad 0 <- 2") != NULL);
    free(ta);
    free(tb);
    pd_schedule_free(a);
    pd_schedule_free(b);
}
