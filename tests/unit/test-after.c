/*
 * test-after.c: watcher/engine/after.c, whole mode's --on-done delete|move:DIR
 * and --on-failed move:DIR: acted on once the outcome is durable, a name
 * taken in DIR never replaced (NAME.1), a file changed since its outcome
 * left alone.
 */
#include "probe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Write src/NAME with an mtime a minute ago (settled). */
static const char *settled(const char *name, const char *text) {
  struct timespec ts[2];
  const char *p = src(name);
  tdm_test_write(p, text, strlen(text));
  clock_gettime(CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec -= 60;
  ts[1] = ts[0];
  ASSERT_EQ(utimensat(AT_FDCWD, p, ts, 0), 0);
  return p;
}

static char done_opt[4200], failed_opt[4200];

/* One whole-mode pass with --on-done `on_done` and --on-failed move:failed. */
static int run(const char *on_done, tdm_stats_t *st) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  int rc;

  snprintf(failed_opt, sizeof(failed_opt), "move:%s", tdm_test_path("failed"));
  mkdir(failed_opt + 5, 0755);
  o.mode = TDM_MODE_WHOLE;
  o.settle_ms = 100;
  o.on_done = on_done;
  o.on_failed = failed_opt;
  t = probe_open_tdm(&o);
  rc = tdm_run_once(t);
  tdm_stats_init(st);
  tdm_get_stats(t, st);
  tdm_close(t);
  return rc;
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

TEST(done_moved_never_replacing) {
  char in_done[8400];
  tdm_stats_t st;

  snprintf(done_opt, sizeof(done_opt), "move:%s", tdm_test_path("done"));
  ASSERT_EQ(mkdir(done_opt + 5, 0755), 0);
  snprintf(in_done, sizeof(in_done), "%s/a.csv", done_opt + 5);
  tdm_test_write(in_done, "older\n", 6); /* the name is taken */
  settled("a.csv", "one\n");
  settled("b.csv", "two\n");
  ASSERT_EQ(run(done_opt, &st), 0);
  ASSERT_EQ(st.files_moved, 2);
  ASSERT_EQ(st.after_errors, 0);
  ASSERT(!exists(src("a.csv")) && !exists(src("b.csv")));
  snprintf(in_done, sizeof(in_done), "%s/a.csv.1", done_opt + 5);
  ASSERT(exists(in_done));
  snprintf(in_done, sizeof(in_done), "%s/b.csv", done_opt + 5);
  ASSERT(exists(in_done));
}

TEST(failed_moved_done_deleted) {
  char in_failed[8400];
  tdm_stats_t st;

  probe.file_pending = 1;
  probe.outcome_fail = 1;
  settled("bad.csv", "x\n");
  ASSERT_EQ(run("delete", &st), TDM_EPARTIAL);
  ASSERT_EQ(st.files_failed, 1);
  ASSERT_EQ(st.files_moved, 1);
  snprintf(in_failed, sizeof(in_failed), "%s/bad.csv", tdm_test_path("failed"));
  ASSERT(exists(in_failed));
  ASSERT(!exists(src("bad.csv")));

  probe.outcome_fail = 0;
  settled("good.csv", "y\n");
  ASSERT_EQ(run("delete", &st), 0);
  ASSERT_EQ(st.files_deleted, 1);
  ASSERT(!exists(src("good.csv")));
}

/* Written to again after its outcome: a new version, not deleted. */
TEST(changed_since_the_outcome_left_alone) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  tdm_stats_t st;

  settled("c.csv", "one\n");
  o.mode = TDM_MODE_WHOLE;
  o.settle_ms = 100;
  t = probe_open_tdm(&o); /* no --on-done: only the outcome */
  ASSERT_EQ(tdm_run_once(t), 0);
  tdm_close(t);
  {
    /* A new version, still being written (its mtime ahead: it never
       settles within the pass). */
    struct timespec ts[2];
    tdm_test_append(src("c.csv"), "two\n", 4);
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec += 3600;
    ts[1] = ts[0];
    ASSERT_EQ(utimensat(AT_FDCWD, src("c.csv"), ts, 0), 0);
  }
  ASSERT_EQ(run("delete", &st), 0);
  ASSERT_EQ(st.files_deleted, 0);
  ASSERT(exists(src("c.csv")));
}
