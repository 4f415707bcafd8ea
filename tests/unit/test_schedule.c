/* test_schedule.c: the 1F1B generator's order for several stage and step counts, and the deadlock
 * checker on correct, blocking-send and deliberately broken schedules. */
#include <stdlib.h>
#include <string.h>

#include "runtime/schedule/schedule.h"
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

/* Every generator, for several layouts (replicated stages included) and step counts that are
 * not multiples of the replica counts or batches: deadlock-free; every minibatch's forward and
 * backward run once per stage, on replica m mod r; each replica of a stage joins the same
 * number of all-reduces; each STEP follows that update's backwards. */
TEST(general_generator_properties) {
    static const int layouts[][4] = {{1, 1, 1, 0}, {2, 1, 0, 0}, {1, 2, 0, 0}, {2, 1, 1, 0},
                                     {3, 2, 1, 0}, {4, 0, 0, 0}, {1, 3, 2, 0}};
    const char *names[3] = {"1f1b", "flush", "gpipe"};
    for (int li = 0; li < (int)(sizeof layouts / sizeof layouts[0]); li++) {
        int n = 0, reps[4], R = 0;
        while (n < 4 && layouts[li][n]) { reps[n] = layouts[li][n]; R += reps[n]; n++; }
        for (int k = 0; k < 3; k++)
            for (int steps = 0; steps <= 11; steps++)
                for (int M = 0; M <= 5; M += 5) {
                    pd_schedule_spec sp = {names[k], n, reps, NULL, NULL, steps, M ? M : 3};
                    pd_schedule *s = pd_schedule_build(&sp);
                    CHECK(s != NULL);
                    if (!s) continue;
                    CHECK_EQ_INT(s->n_ranks, R);
                    char why[512];
                    int bad = pd_schedule_check(s, why, sizeof why);
                    if (bad) fprintf(stderr, "%s layout %d steps %d: %s\n", names[k], li, steps, why);
                    CHECK_EQ_INT(bad, 0);
                    bad = pd_schedule_check_in_order(s, why, sizeof why); /* NCCL's matching */
                    if (bad) fprintf(stderr, "%s layout %d steps %d: %s\n", names[k], li, steps, why);
                    CHECK_EQ_INT(bad, 0);
                    int first = 0;
                    for (int st = 0; st < n; st++) {
                        int ar0 = -1;
                        for (int j = 0; j < reps[st]; j++) {
                            const pd_rank_schedule *rs = &s->ranks[first + j];
                            CHECK_EQ_INT(rs->stage, st);
                            int nf = 0, nb = 0, nar = 0, pending = 0;
                            for (int i = 0; i < rs->n; i++) {
                                const pd_action *a = &rs->a[i];
                                if (a->kind == PD_A_FORWARD || a->kind == PD_A_BACKWARD)
                                    CHECK_EQ_INT(a->mb % reps[st], j);
                                if (a->kind == PD_A_FORWARD) nf++;
                                if (a->kind == PD_A_BACKWARD) { nb++; pending = 1; }
                                if (a->kind == PD_A_ALLREDUCE) CHECK_EQ_INT(a->mb, nar++);
                                if (a->kind == PD_A_STEP) pending = 0;
                            }
                            CHECK_EQ_INT(pending, 0);
                            int mine = steps > j ? (steps - j + reps[st] - 1) / reps[st] : 0;
                            CHECK_EQ_INT(nf, mine);
                            CHECK_EQ_INT(nb, mine);
                            if (reps[st] == 1) CHECK_EQ_INT(nar, 0);
                            if (ar0 < 0) ar0 = nar;
                            CHECK_EQ_INT(nar, ar0);
                        }
                        first += reps[st];
                    }
                    pd_schedule_free(s);
                }
    }
}

/* gpipe on one stage-pair: within a batch all forwards come before any backward; flush steps
 * once per batch of M; 1f1b with 2 replicas steps once per pair of minibatches. */
TEST(synchronous_schedules_step_once_per_batch) {
    int reps[2] = {1, 1};
    pd_schedule_spec sp = {"gpipe", 2, reps, NULL, NULL, 7, 3};
    pd_schedule *s = pd_schedule_build(&sp);
    CHECK(s != NULL);
    if (!s) return;
    char k[256];
    kinds(k, s, 1); /* batches {0,1,2} {3,4,5} {6} */
    CHECK(strcmp(k, "rFrFrFBSBSBSpfrFrFrFBSBSBSpfrFBSpf") == 0);
    CHECK_EQ_INT(s->send_slots, 4);
    pd_schedule_free(s);
    sp.name = "flush";
    s = pd_schedule_build(&sp);
    CHECK(s != NULL);
    if (!s) return;
    kinds(k, s, 0); /* warm-up 1 within each batch */
    CHECK(strcmp(k, "FsFsRBFsRBRBpfFsFsRBFsRBRBpfFsRBpf") == 0);
    pd_schedule_free(s);
    int r2[2] = {2, 1};
    pd_schedule_spec rr = {"1f1b", 2, r2, NULL, NULL, 3, 0};
    s = pd_schedule_build(&rr);
    CHECK(s != NULL);
    if (!s) return;
    kinds(k, s, 1); /* replica 1 of stage 0 has minibatch 1 only; joins update 1 with nothing */
    CHECK(strcmp(k, "FsRBapap") == 0);
    pd_schedule_free(s);
}

/* The in-order check: every schedule of the CUDA executor (NCCL matches a link's messages by
 * order), replicated layouts and partial batches included, delivers in order; one receive moved
 * behind the next on its link is caught, naming the link. */
TEST(links_deliver_in_order) {
    static const int layouts[][4] = {{1, 1, 1, 0}, {2, 1, 0, 0}, {1, 3, 2, 0}, {4, 0, 0, 0}};
    const char *names[] = {"1f1b", "flush", "gpipe", "zb-h1", "zb-h2", "2bw"};
    char why[512];
    for (int li = 0; li < 4; li++) {
        int n = 0, reps[4];
        while (n < 4 && layouts[li][n]) { reps[n] = layouts[li][n]; n++; }
        for (int k = 0; k < 6; k++)
            for (int steps = 1; steps <= 13; steps += 3) {
                pd_schedule_spec sp = {names[k], n, reps, NULL, NULL, steps, 0};
                pd_schedule *s = pd_schedule_build(&sp);
                if (!s) continue; /* a layout the schedule does not take (e.g. 2bw's M) */
                int bad = pd_schedule_check_in_order(s, why, sizeof why);
                if (bad) fprintf(stderr, "%s layout %d steps %d: %s\n", names[k], li, steps, why);
                CHECK_EQ_INT(bad, 0);
                pd_schedule_free(s);
            }
    }
    pd_schedule *s = pd_schedule_1f1b(3, NULL, 6);
    CHECK(s != NULL);
    if (!s) return;
    CHECK_EQ_INT(pd_schedule_check_in_order(s, why, sizeof why), 0);
    pd_rank_schedule *rs = &s->ranks[1];
    int swapped = 0; /* stage 1 receives activations 1 before 0 */
    for (int i = 0; i < rs->n && !swapped; i++)
        for (int j = i + 1; j < rs->n && rs->a[i].kind == PD_A_RECV_ACT && rs->a[i].mb == 0; j++)
            if (rs->a[j].kind == PD_A_RECV_ACT && rs->a[j].mb == 1) {
                rs->a[i].mb = 1, rs->a[j].mb = 0, swapped = 1;
                break;
            }
    CHECK(swapped);
    CHECK_EQ_INT(pd_schedule_check_in_order(s, why, sizeof why), 1);
    CHECK(strstr(why, "rank 0 -> 1: message 0") != NULL);
    pd_schedule_free(s);
}
