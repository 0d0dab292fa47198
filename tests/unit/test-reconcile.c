/*
 * test-reconcile.c: watcher/engine/reconcile.c, a file on disk against the
 * store: unchanged (not read again), new, renamed (its bookmark follows
 * it), truncated (read again from 0, counted), gone (forgotten).
 */
#include "probe.h"

#include <unistd.h>

TEST(unchanged_new_renamed) {
  stored_t s;
  const tdm_file_rec_t *r;
  uint64_t id;

  tdm_test_write(src("a.log"), "one\n", 4);
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("one\n");
  probe_reset_seen();
  ASSERT_EQ(probe_run(0, NULL), 0); /* unchanged */
  ASSERT_EQ(probe.calls, 0);
  stored_load(&s, NULL, 0);
  id = stored_find(&s, "a.log")->id;

  ASSERT_EQ(rename(src("a.log"), src("a.log.1")), 0);
  tdm_test_append(src("a.log.1"), "two\n", 4);
  tdm_test_write(src("b.log"), "new\n", 4);
  probe_reset_seen();
  ASSERT_EQ(probe_run(0, NULL), 0);
  ASSERT_EQ(probe.len, 8); /* "two\n" and "new\n", in either order */
  ASSERT_NOT_NULL(memmem(probe.data, probe.len, "two\n", 4));
  ASSERT_NOT_NULL(memmem(probe.data, probe.len, "new\n", 4));
  stored_load(&s, NULL, 0);
  ASSERT_NULL(stored_find(&s, "a.log"));
  r = stored_find(&s, "a.log.1");
  ASSERT_NOT_NULL(r);
  ASSERT_EQ(r->id, id); /* the same record, renamed */
  ASSERT_EQ(r->offset, 8);
}

TEST(truncated_read_from_zero) {
  tdm_stats_t st;

  tdm_test_write(src("a.log"), "a long first line\n", 18);
  ASSERT_EQ(probe_run(0, NULL), 0);
  tdm_test_write(src("a.log"), "short\n", 6); /* truncated, rewritten */
  probe_reset_seen();
  ASSERT_EQ(probe_run(0, &st), 0);
  PROBE_EQ("short\n");
  ASSERT_EQ(st.truncations, 1);
}

/* What a truncated file was is in the store with its truncation: a copy of
   it met by a later tidemark (copytruncate's a.log.1) continues from that
   bookmark, and the ghost is gone from the store with the copy's record. */
TEST(copy_continues_from_a_durable_truncation) {
  const tdm_file_rec_t *r;
  stored_t s;
  int ghosts = 0;

  tdm_test_write(src("a.log"), "one\ntwo\n", 8);
  ASSERT_EQ(probe_run(0, NULL), 0);
  tdm_test_write(src("a.log"), "four\n", 5); /* truncated */
  probe_reset_seen();
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("four\n");
  stored_load(&s, NULL, 0);
  for (int i = 0; i < s.n; i++)
    if (s.rec[i].state == TDM_FILE_GONE) {
      ghosts++;
      ASSERT_EQ(s.rec[i].offset, 8);
      ASSERT_EQ(s.rec[i].dup_of, stored_find(&s, "a.log")->id);
    }
  ASSERT_EQ(ghosts, 1);

  /* The copy, made before the truncation with a line unread then. */
  tdm_test_write(src("a.log.1"), "one\ntwo\nthree\n", 14);
  probe_reset_seen();
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("three\n");
  stored_load(&s, NULL, 0);
  ASSERT_EQ(s.n, 2);
  r = stored_find(&s, "a.log.1");
  ASSERT_NOT_NULL(r);
  ASSERT_EQ(r->offset, 14);
  for (int i = 0; i < s.n; i++)
    ASSERT(s.rec[i].state != TDM_FILE_GONE); /* one copy continues from it */

  /* Another copy of the same content is not a continuation any more. */
  tdm_test_write(src("a.log.2"), "one\ntwo\nthree\n", 14);
  probe_reset_seen();
  ASSERT_EQ(probe_run(0, NULL), 0);
  ASSERT_EQ(probe.len, 14);
}

/* A deleted file's record: kept a while as a ghost (state GONE) in case a
   compressed copy of it turns up (--decompress auto), else forgotten. */
TEST(gone_is_a_ghost_or_forgotten) {
  tdm_options_t o = probe_options();
  const tdm_file_rec_t *r;
  stored_t s;
  tdm_t *t;

  tdm_test_write(src("a.log"), "one\n", 4);
  tdm_test_write(src("b.log"), "two\n", 4);
  ASSERT_EQ(probe_run(0, NULL), 0);
  ASSERT_EQ(unlink(src("a.log")), 0);
  ASSERT_EQ(probe_run(0, NULL), 0);
  stored_load(&s, NULL, 0);
  ASSERT_EQ(s.n, 2);
  ASSERT_NOT_NULL(stored_find(&s, "b.log"));
  r = stored_find(&s, "a.log");
  ASSERT(r == NULL || r->state == TDM_FILE_GONE);
  for (int i = 0; i < s.n; i++)
    if (s.rec[i].state == TDM_FILE_GONE)
      ASSERT_EQ(s.rec[i].dev, 0); /* known by no inode */

  o.decompress = TDM_DECOMPRESS_NEVER; /* no copy to wait for */
  ASSERT_EQ(unlink(src("b.log")), 0);
  t = probe_open_tdm(&o);
  ASSERT_EQ(tdm_run_once(t), 0);
  tdm_close(t);
  stored_load(&s, NULL, 0);
  ASSERT_EQ(s.n, 0);
}
