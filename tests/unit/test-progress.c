/*
 * test-progress.c: watcher/engine/progress.c, tdm_run_once's progress:
 * totals measured before the pass, reports while it runs, and one final
 * report that says so and adds up.
 */
#include "test.h"

#include "tidemark.h"

#include <stdio.h>
#include <sys/stat.h>

static tdm_progress_t first, last;
static int calls, finals;

static void on_progress(void *arg, const tdm_progress_t *p) {
  (void)arg;
  if (calls++ == 0)
    first = *p;
  last = *p;
  finals += p->final != 0;
}

static int on_chunk(void *arg, const tdm_chunk_t *c) {
  (void)arg;
  (void)c;
  return TDM_PROC_OK;
}

static void quiet(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  (void)level;
  (void)msg;
}

static int run(void) {
  tdm_options_t o;
  tdm_t *t;
  char state[4096];
  int rc;

  tdm_options_init(&o);
  snprintf(state, sizeof(state), "%s", tdm_test_path("state"));
  o.state_dir = state;
  o.log_cb = quiet;
  o.progress_cb = on_progress;
  o.progress_ms = 1;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "cb", on_chunk, NULL), 0);
  rc = tdm_run_once(t);
  tdm_close(t);
  return rc;
}

TEST(totals_and_final) {
  char name[64];
  ASSERT_EQ(mkdir(tdm_test_path("src"), 0755), 0);
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof(name), "src/f%d.log", i);
    tdm_test_write(tdm_test_path(name), "0123456789\n", 11);
  }
  ASSERT_EQ(run(), 0);
  ASSERT_GE(calls, 1);
  ASSERT_EQ(finals, 1);
  ASSERT(last.final);
  ASSERT_EQ(first.files_total, 5);
  ASSERT_EQ(first.bytes_total, 55);
  ASSERT_EQ(last.files_done, 5);
  ASSERT_EQ(last.bytes_done, 55);
  ASSERT_LE(first.bytes_done, last.bytes_done);

  /* Nothing new: the totals count what is left to read, none. */
  calls = finals = 0;
  ASSERT_EQ(run(), 0);
  ASSERT_EQ(finals, 1);
  ASSERT_EQ(last.files_total, 0);
  ASSERT_EQ(last.bytes_total, 0);
  ASSERT_EQ(last.bytes_done, 0);
}
