/*
 * test-whole.c: engine/whole.c, whole mode: each complete file once; a
 * second file with the same content is a duplicate (by content hash, also
 * across runs through the store's hash table); a file whose mtime is not
 * older than --settle-ms waits; the outcome of a PENDING file() (from
 * poll()) decides done or failed. Real files, a real store, the probe
 * processor (probe.h).
 */
#include "probe.h"
#include "engine/whole.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

/* Set a file's mtime `secs` from now. */
static void age(const char *path, long secs) {
  struct timespec ts[2];
  clock_gettime(CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec += secs;
  ts[1] = ts[0];
  ASSERT_EQ(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static int run_whole(uint32_t settle_ms, tdm_stats_t *st) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  int rc;
  o.mode = TDM_MODE_WHOLE;
  o.settle_ms = settle_ms;
  t = probe_open_tdm(&o);
  rc = tdm_run_once(t);
  if (st != NULL) {
    tdm_stats_init(st);
    tdm_get_stats(t, st);
  }
  tdm_close(t);
  return rc;
}

static const tdm_file_rec_t *rec_of(stored_t *s, const char *name) {
  const tdm_file_rec_t *r = stored_find(s, name);
  ASSERT_NOT_NULL(r);
  return r;
}

TEST(dedup_by_content_hash) {
  tdm_stats_t st;
  stored_t s;
  const tdm_file_rec_t *a, *b, *c;

  tdm_test_write(src("a.csv"), "same\ncontent\n", 13);
  tdm_test_write(src("b.csv"), "same\ncontent\n", 13);
  tdm_test_write(src("c.csv"), "other\n", 6);
  age(src("a.csv"), -60);
  age(src("b.csv"), -60);
  age(src("c.csv"), -60);
  ASSERT_EQ(run_whole(100, &st), 0);
  ASSERT_EQ(probe.files, 2);       /* one of a/b, and c */
  ASSERT_EQ(probe.len, 13 + 6);    /* their bytes went through process() */
  ASSERT_EQ(st.files_done, 2);
  ASSERT_EQ(st.duplicates, 1);
  stored_load(&s, NULL, 0);
  a = rec_of(&s, "a.csv");
  b = rec_of(&s, "b.csv");
  c = rec_of(&s, "c.csv");
  ASSERT_EQ(c->state, TDM_FILE_DONE);
  ASSERT_EQ(c->offset, 6);
  ASSERT((a->state == TDM_FILE_DONE && b->state == TDM_FILE_DUPLICATE &&
          b->dup_of == a->id) ||
         (b->state == TDM_FILE_DONE && a->state == TDM_FILE_DUPLICATE &&
          a->dup_of == b->id));
  ASSERT_EQ(memcmp(a->content_hash, b->content_hash, 16), 0);
  ASSERT(memcmp(a->content_hash, c->content_hash, 16) != 0);

  /* The hash is in the store: a copy dropped later, under a new name, in a
     new run, is a duplicate too; nothing is handed over again. */
  tdm_test_write(src("d.csv"), "same\ncontent\n", 13);
  age(src("d.csv"), -60);
  memset(&probe, 0, sizeof(probe));
  ASSERT_EQ(run_whole(100, &st), 0);
  ASSERT_EQ(probe.files, 0);
  ASSERT_EQ(st.duplicates, 1);
  stored_load(&s, NULL, 0);
  ASSERT_EQ(rec_of(&s, "d.csv")->state, TDM_FILE_DUPLICATE);
  {
    tdm__log_t log = {TDM_LOG_ERROR, quiet, NULL};
    tdm_store_t *store;
    uint64_t id = 0;
    ASSERT_EQ(tdm_store_open(tdm_test_path("state"), TDM_STORE_RDONLY, &log,
                             &store), 0);
    ASSERT_EQ(tdm_store_find_hash(store, rec_of(&s, "c.csv")->content_hash,
                                  &id), 0);
    ASSERT_EQ(id, rec_of(&s, "c.csv")->id);
    tdm_store_close(store);
  }
}

/* A file whose mtime stays in the future never settles: left pending, not
   handed over; once it is older than --settle-ms it is. */
TEST(settle) {
  stored_t s;
  tdm_test_write(src("late.csv"), "x\n", 2);
  age(src("late.csv"), 3600);
  ASSERT_EQ(run_whole(50, NULL), 0);
  ASSERT_EQ(probe.files, 0);
  ASSERT_EQ(probe.len, 0);
  stored_load(&s, NULL, 0);
  ASSERT(stored_find(&s, "late.csv") == NULL ||
         stored_find(&s, "late.csv")->state == TDM_FILE_PENDING);

  age(src("late.csv"), -60);
  memset(&probe, 0, sizeof(probe));
  ASSERT_EQ(run_whole(50, NULL), 0);
  ASSERT_EQ(probe.files, 1);
  ASSERT_STR_EQ(probe.file_paths[0], src("late.csv"));
  stored_load(&s, NULL, 0);
  ASSERT_EQ(rec_of(&s, "late.csv")->state, TDM_FILE_DONE);

  /* Done: the next run does not hand it over again. */
  memset(&probe, 0, sizeof(probe));
  ASSERT_EQ(run_whole(50, NULL), 0);
  ASSERT_EQ(probe.files, 0);
}

/* file() answers PENDING; the outcome comes from poll(). OK: done, with the
   attempts the outcome reports. */
TEST(pending_outcome_ok) {
  stored_t s;
  const tdm_file_rec_t *r;
  tdm_test_write(src("a.csv"), "abc\n", 4);
  age(src("a.csv"), -60);
  probe.file_pending = 1;
  ASSERT_EQ(run_whole(100, NULL), 0);
  ASSERT_EQ(probe.files, 1);
  ASSERT_EQ(probe.n_pending, 0); /* collected */
  stored_load(&s, NULL, 0);
  r = rec_of(&s, "a.csv");
  ASSERT_EQ(r->state, TDM_FILE_DONE);
  ASSERT_EQ(r->attempts, 2);
  ASSERT_EQ(r->exit_status, 0);
}

/* FAIL from poll(): the file is failed, with the processor's message and
   exit status; the pass says EPARTIAL; its hash is not recorded, so the same
   content under another name is not a duplicate of a failure. */
TEST(pending_outcome_fail) {
  stored_t s;
  const tdm_file_rec_t *r;
  tdm_stats_t st;
  tdm_test_write(src("a.csv"), "abc\n", 4);
  age(src("a.csv"), -60);
  probe.file_pending = 1;
  probe.outcome_fail = 1;
  ASSERT_EQ(run_whole(100, &st), TDM_EPARTIAL);
  ASSERT_EQ(st.files_failed, 1);
  ASSERT_EQ(st.files_done, 0);
  stored_load(&s, NULL, 0);
  r = rec_of(&s, "a.csv");
  ASSERT_EQ(r->state, TDM_FILE_FAILED);
  ASSERT_EQ(r->exit_status, 3);
  ASSERT_NOT_NULL(r->error);
  ASSERT_NOT_NULL(strstr(r->error, "processor 'probe' failed: exit 3"));

  probe.outcome_fail = 0;
  tdm_test_write(src("b.csv"), "abc\n", 4);
  age(src("b.csv"), -60);
  memset(&probe, 0, sizeof(probe));
  ASSERT_EQ(run_whole(100, &st), 0);
  ASSERT_EQ(st.duplicates, 0);
  ASSERT_EQ(probe.files, 1);
  ASSERT_STR_EQ(probe.file_paths[0], src("b.csv"));
}
