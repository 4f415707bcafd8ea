/* test.h: the in-house unit-test harness (llm.c / ggml style, no dependency).
 *
 * TEST(name) { ... } registers a test. CHECK(expr), CHECK_CLOSE(a, b, atol, rtol) and
 * CHECK_EQ_INT(a, b) record a failure with file and line and keep going; SKIP("why") ends the
 * test as skipped. Each binary prints "PASS name", "FAIL name", "SKIP name: why" lines and a
 * closing "N passed, N failed, N skipped"; tests/run.sh adds the binaries' counts together.
 * Run a binary with a substring argument to run only matching tests.
 */
#ifndef PD_TEST_H
#define PD_TEST_H

#include <math.h>
#include <stdio.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
void test_fail(const char *file, int line, const char *fmt, ...);
void test_skip(const char *why);
int test_failed_now(void);

#define TEST(name)                                                                  \
    static void name(void);                                                         \
    __attribute__((constructor)) static void register_##name(void) {                \
        test_register(#name, name);                                                 \
    }                                                                               \
    static void name(void)

#define CHECK(expr)                                                                 \
    do {                                                                            \
        if (!(expr)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #expr);            \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                          \
    do {                                                                            \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);             \
        if (check_a_ != check_b_)                                                   \
            test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b,       \
                      check_a_, check_b_);                                          \
    } while (0)

#define CHECK_CLOSE(a, b, atol, rtol)                                               \
    do {                                                                            \
        double check_a_ = (double)(a), check_b_ = (double)(b);                      \
        if (!(fabs(check_a_ - check_b_) <= (atol) + (rtol) * fabs(check_b_)))       \
            test_fail(__FILE__, __LINE__, "%s ~ %s: %.17g vs %.17g", #a, #b,       \
                      check_a_, check_b_);                                          \
    } while (0)

#define SKIP(why)                                                                   \
    do {                                                                            \
        test_skip(why);                                                             \
        return;                                                                     \
    } while (0)

#endif
