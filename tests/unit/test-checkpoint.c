/*
 * test-checkpoint.c: engine/checkpoint.c. A checkpoint commits every
 * processor, then records every moved bookmark with every restore blob in
 * one store transaction; a processor whose commit fails cancels it, and
 * every file goes back to its durable bookmark, every committing processor
 * to its last durable blob. Real files, a real LMDB store, the probe
 * processor (probe.h).
 */
#include "probe.h"
#include "engine/checkpoint.h"

TEST(commits_bookmarks_with_the_blob) {
  stored_t s;
  char blob[64];
  tdm_stats_t st;

  tdm_test_write(src("a.log"), "one\ntwo\n", 8);
  tdm_test_write(src("b.log"), "three\n", 6);
  ASSERT_EQ(probe_run(0, &st), 0);
  ASSERT_EQ(probe.len, 14);
  ASSERT_GE(st.checkpoints, 1);
  ASSERT_EQ(st.checkpoint_errors, 0);
  stored_load(&s, blob, sizeof(blob));
  ASSERT_EQ(s.n, 2);
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 8);
  ASSERT_EQ(stored_find(&s, "b.log")->offset, 6);
  /* The blob stored is the one the processor's last commit returned, in
     the same transaction as the bookmarks. */
  ASSERT_STR_EQ(blob, probe.last_blob);
  ASSERT_EQ((uint64_t)probe.commits, st.checkpoints);

  /* The next open hands that blob back to the processor. */
  memset(&probe, 0, sizeof(probe));
  tdm_test_append(src("a.log"), "four\n", 5);
  ASSERT_EQ(probe_run(0, NULL), 0);
  ASSERT_STR_EQ(probe.restore, blob);
  PROBE_EQ("four\n");
  stored_load(&s, NULL, 0);
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 13);
}

/* A direct checkpoint with nothing moved still commits the processors and
   records their blobs; tdm__checkpoint_maybe waits for --checkpoint-ms. */
TEST(direct_checkpoint_and_maybe) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  char blob[64];
  stored_t s;

  memset(&probe, 0, sizeof(probe));
  tdm_test_write(src("a.log"), "x\n", 2);
  o.checkpoint_ms = 3600 * 1000;
  t = probe_open_tdm(&o);
  ASSERT_EQ(tdm_run_once(t), 0);
  int before = probe.commits;
  ASSERT_EQ(tdm__checkpoint(t), 0);
  ASSERT_EQ(probe.commits, before + 1);
  /* Something to write, but the last checkpoint was just now. */
  t->need_checkpoint = 1;
  ASSERT_EQ(tdm__checkpoint_maybe(t), 0);
  ASSERT_EQ(probe.commits, before + 1);
  ASSERT(t->need_checkpoint);
  tdm_close(t);
  stored_load(&s, blob, sizeof(blob));
  ASSERT_STR_EQ(blob, probe.last_blob); /* close's final one included */
}

/* The heart of it: a processor's commit fails after new bytes were
   delivered for two files. Nothing moves in the store; in memory every file
   is back at its durable bookmark; the processor was reopened with its last
   durable blob; the next pass delivers exactly the same bytes again. */
TEST(failed_commit_rolls_every_file_back) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  stored_t s;
  char blob[64], blob_before[64];
  tdm_stats_t st;

  memset(&probe, 0, sizeof(probe));
  tdm_test_write(src("a.log"), "a1\n", 3);
  tdm_test_write(src("b.log"), "b1\n", 3);
  ASSERT_EQ(probe_run(0, NULL), 0);
  stored_load(&s, blob_before, sizeof(blob_before));
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 3);

  tdm_test_append(src("a.log"), "a2\n", 3);
  tdm_test_append(src("b.log"), "b2\nb3\n", 6);
  tdm_test_write(src("c.log"), "c1\n", 3); /* new: durable bookmark 0 */
  memset(&probe, 0, sizeof(probe));
  probe.commit_fail = 1;
  t = probe_open_tdm(&o);
  ASSERT_EQ(probe.opens, 1);
  ASSERT_EQ(tdm_run_once(t), TDM_EPROC);
  ASSERT_EQ(probe.len, 12); /* it was all delivered... */
  tdm_stats_init(&st);
  tdm_get_stats(t, &st);
  ASSERT_GE(st.checkpoint_errors, 1);
  ASSERT_EQ(t->files.n, 3);
  for (size_t i = 0; i < t->files.n; i++) { /* ...and all rolled back */
    tdm_file_t *f = t->files.all[i];
    ASSERT_EQ(f->pos, f->durable_offset);
    ASSERT_EQ(f->rec.offset, f->durable_offset);
    ASSERT_EQ(f->marker, f->durable_marker);
    ASSERT_EQ(f->durable_offset, strstr(f->path, "c.log") ? 0 : 3);
  }
  /* Reopened with the last durable blob (a rollback is a crash, minus the
     crash). */
  ASSERT_GE(probe.opens, 2);
  ASSERT(probe.last_blob[0] != '\0');
  ASSERT_STR_EQ(probe.restore, probe.last_blob);
  {
    stored_t s2;
    char now[64];
    tdm_close(t); /* the store can be opened once per process */
    stored_load(&s2, now, sizeof(now));
    ASSERT_STR_EQ(now, probe.last_blob);
    ASSERT_EQ(stored_find(&s2, "a.log")->offset, 3);
    ASSERT_EQ(stored_find(&s2, "b.log")->offset, 3);
    ASSERT(stored_find(&s2, "c.log") == NULL ||
           stored_find(&s2, "c.log")->offset == 0);
  }
  t = probe_open_tdm(&o);

  /* The commit works again: the same bytes come again. */
  probe.commit_fail = 0;
  probe_reset_seen();
  ASSERT_EQ(tdm_run_once(t), 0);
  ASSERT_EQ(probe.len, 12);
  tdm_close(t);

  stored_load(&s, blob, sizeof(blob));
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 6);
  ASSERT_EQ(stored_find(&s, "b.log")->offset, 9);
  ASSERT_EQ(stored_find(&s, "c.log")->offset, 3);
  ASSERT(strcmp(blob, blob_before) != 0);
}

/* A failing commit on close (the final checkpoint) leaves the store at the
   last good checkpoint: a new run delivers the bytes again. */
TEST(failed_final_commit_delivers_again) {
  stored_t s;

  memset(&probe, 0, sizeof(probe));
  tdm_test_write(src("a.log"), "a1\n", 3);
  ASSERT_EQ(probe_run(0, NULL), 0);
  tdm_test_append(src("a.log"), "a2\n", 3);
  probe.commit_fail = 1;
  probe_reset_seen();
  ASSERT_NE(probe_run(0, NULL), 0);
  PROBE_EQ("a2\n");
  stored_load(&s, NULL, 0);
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 3);
  probe.commit_fail = 0;
  probe_reset_seen();
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("a2\n");
  stored_load(&s, NULL, 0);
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 6);
}
