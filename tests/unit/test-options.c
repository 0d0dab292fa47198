/*
 * test-options.c: watcher/engine/options.c, the record options taken at
 * tdm_open: --multiline-start compiled (and only with --records lines),
 * --on-done/--on-failed resolved to existing directories (and only in whole
 * mode), and a source that would hold one of them refused.
 */
#include "test.h"

#include "engine/engine.h"
#include "engine/options.h"
#include "tidemark.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char said[1024];

static void keep(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  if (level == TDM_LOG_ERROR)
    snprintf(said, sizeof(said), "%s", msg);
}

static char state[4096];

static tdm_options_t opts(void) {
  tdm_options_t o;
  tdm_options_init(&o);
  snprintf(state, sizeof(state), "%s", tdm_test_path("state"));
  o.state_dir = state;
  o.log_cb = keep;
  said[0] = '\0';
  return o;
}

/* tdm_open's verdict on `o`; the message must name `option`. */
static void refused(tdm_options_t *o, const char *option) {
  tdm_t *t = NULL;
  ASSERT_EQ(tdm_open(o, &t), TDM_EUSAGE);
  ASSERT_NULL(t);
  if (strstr(said, option) == NULL)
    TDM_FAIL_("\"%s\" does not name %s", said, option);
}

TEST(multiline_start) {
  tdm_options_t o = opts();
  tdm_t *t;

  o.multiline_start = "^(ab";
  refused(&o, "--multiline-start");
  o.multiline_start = "^[0-9]{4}-";
  o.records = TDM_RECORDS_BYTES;
  refused(&o, "--records lines");
  o.records = TDM_RECORDS_LINES;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT(t->ml_on);
  ASSERT_STR_EQ(t->opts.multiline_start, "^[0-9]{4}-");
  tdm_close(t);
}

TEST(on_done_and_on_failed) {
  tdm_options_t o = opts();
  char done[8200], failed[8200], real[4096];
  tdm_t *t;

  snprintf(done, sizeof(done), "move:%s", tdm_test_path("done"));
  snprintf(failed, sizeof(failed), "move:%s", tdm_test_path("failed"));
  o.on_done = "delete";
  refused(&o, "whole mode"); /* tail mode */
  o.mode = TDM_MODE_WHOLE;
  o.on_done = "remove";
  refused(&o, "--on-done");
  o.on_done = done; /* not there yet */
  refused(&o, "--on-done");
  ASSERT_EQ(mkdir(done + 5, 0755), 0);
  o.on_failed = "delete"; /* only move:DIR */
  refused(&o, "--on-failed");
  o.on_failed = failed;
  ASSERT_EQ(mkdir(failed + 5, 0755), 0);
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_NOT_NULL(realpath(done + 5, real));
  ASSERT_STR_EQ(t->done_dir, real);
  ASSERT(!t->after_delete);
  ASSERT_NOT_NULL(t->failed_dir);
  tdm_close(t);
  o.on_done = "delete";
  o.on_failed = NULL;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT(t->after_delete);
  ASSERT_NULL(t->done_dir);
  tdm_close(t);
}

/* A source holding the --on-done directory is refused: moved files would
   be found there again. One beside it is fine. */
TEST(source_must_not_hold_the_move_dir) {
  tdm_options_t o = opts();
  char done[8200], src[4096], other[4096];
  tdm_t *t;

  snprintf(src, sizeof(src), "%s", tdm_test_path("src"));
  snprintf(other, sizeof(other), "%s", tdm_test_path("other"));
  snprintf(done, sizeof(done), "move:%s/done", src);
  ASSERT_EQ(mkdir(src, 0755), 0);
  ASSERT_EQ(mkdir(other, 0755), 0);
  ASSERT_EQ(mkdir(done + 5, 0755), 0);
  o.mode = TDM_MODE_WHOLE;
  o.on_done = done;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, src), TDM_EUSAGE);
  ASSERT_NOT_NULL(strstr(said, "--on-done"));
  ASSERT_EQ(tdm_add_source(t, other), 0);
  tdm_close(t);
}
