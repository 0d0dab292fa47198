/*
 * test.h: the unit-test harness (after libuv's test/task.h).
 *
 *   TEST(store_reopen) { ... ASSERT_EQ(x, 3); ... }
 *
 * Each TEST is registered as its own ctest (tests/CMakeLists.txt reads the
 * TEST(...) names out of the source), so a failure names the test. Run one by
 * name: `./test-store store_reopen`; with no argument every test runs, each in
 * a forked child with a timeout. A test gets a fresh scratch directory in
 * tdm_test_dir (removed afterwards when it passes).
 */
#ifndef TDM_TEST_H
#define TDM_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*tdm_test_fn)(void);

typedef struct tdm_test_entry {
  const char *name;
  tdm_test_fn fn;
} tdm_test_entry_t;

#define TDM_TEST_MAX 256
extern tdm_test_entry_t tdm_tests_[TDM_TEST_MAX];
extern int tdm_n_tests_;
extern char tdm_test_dir[4096];

#define TEST(tname)                                                  \
  static void test_##tname(void);                                    \
  __attribute__((constructor)) static void register_##tname(void) {  \
    tdm_tests_[tdm_n_tests_].name = #tname;                          \
    tdm_tests_[tdm_n_tests_++].fn = test_##tname;                    \
  }                                                                  \
  static void test_##tname(void)

#define TDM_FAIL_(...)                                               \
  do {                                                               \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                  \
    fprintf(stderr, __VA_ARGS__);                                    \
    fprintf(stderr, "\n");                                           \
    abort();                                                         \
  } while (0)

#define ASSERT(expr)                                                 \
  do {                                                               \
    if (!(expr))                                                     \
      TDM_FAIL_("assertion failed: %s", #expr);                      \
  } while (0)

#define TDM_ASSERT_INT_(a, op, b)                                    \
  do {                                                               \
    long long a_ = (long long)(a), b_ = (long long)(b);              \
    if (!(a_ op b_))                                                 \
      TDM_FAIL_("assertion failed: %s %s %s (%lld %s %lld)", #a, #op, \
                #b, a_, #op, b_);                                    \
  } while (0)

#define ASSERT_EQ(a, b) TDM_ASSERT_INT_(a, ==, b)
#define ASSERT_NE(a, b) TDM_ASSERT_INT_(a, !=, b)
#define ASSERT_LT(a, b) TDM_ASSERT_INT_(a, <, b)
#define ASSERT_LE(a, b) TDM_ASSERT_INT_(a, <=, b)
#define ASSERT_GT(a, b) TDM_ASSERT_INT_(a, >, b)
#define ASSERT_GE(a, b) TDM_ASSERT_INT_(a, >=, b)

#define ASSERT_STR_EQ(a, b)                                          \
  do {                                                               \
    const char *a_ = (a), *b_ = (b);                                 \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)             \
      TDM_FAIL_("assertion failed: %s == %s (\"%s\" vs \"%s\")", #a, #b, \
                a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
  } while (0)

#define ASSERT_NULL(a) ASSERT((a) == NULL)
#define ASSERT_NOT_NULL(a) ASSERT((a) != NULL)

/* Helpers for tests (tests/test-main.c). */
/* Write `len` bytes to `path` (truncating); aborts on error. */
void tdm_test_write(const char *path, const void *data, size_t len);
/* Append `len` bytes to `path`; aborts on error. */
void tdm_test_append(const char *path, const void *data, size_t len);
/* Read a whole file into a malloc'd NUL-terminated buffer; *len its length. */
char *tdm_test_read(const char *path, size_t *len);
/* tdm_test_dir + "/" + name, in a static rotating buffer. */
const char *tdm_test_path(const char *name);

#endif /* TDM_TEST_H */
