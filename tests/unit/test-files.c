/*
 * test-files.c: watcher/engine/files.c, the life of a file record: tracked
 * (ids, dirty, written at the next checkpoint), renamed, its live flags and
 * held descriptor counted, retired to a ghost or forgotten, buried.
 */
#include "probe.h"

#include "engine/checkpoint.h"
#include "engine/files.h"
#include "engine/reconcile.h"

#include <fcntl.h>
#include <unistd.h>

/* A tracked record for src/NAME (which is written first). */
static tdm_file_t *track(tdm_t *t, const char *name) {
  tdm_file_rec_t rec;
  struct stat st;
  const char *p = src(name);

  tdm_test_write(p, "line\n", 5);
  ASSERT_EQ(stat(p, &st), 0);
  memset(&rec, 0, sizeof(rec));
  rec.state = TDM_FILE_ACTIVE;
  rec.size = (uint64_t)st.st_size;
  return tdm__track(t, p, &st, &rec);
}

TEST(track_makes_a_record_written_at_the_checkpoint) {
  tdm_options_t o = probe_options();
  tdm_t *t = (src(""), probe_open_tdm(&o));
  tdm_file_t *a, *b;
  stored_t s;

  ASSERT_EQ(tdm__checkpoint(t), 0); /* the probe's first restore point */
  a = track(t, "a.log");
  b = track(t, "b.log");
  ASSERT_NOT_NULL(a);
  ASSERT_NOT_NULL(b);
  ASSERT_EQ(b->rec.id, a->rec.id + 1);
  ASSERT(a->dirty && t->need_checkpoint);
  ASSERT(a->rec.first_seen_ns > 0);
  ASSERT(tdm__filetable_by_path(&t->files, src("a.log")) == a);
  ASSERT_EQ(tdm__checkpoint(t), 0);
  ASSERT(!a->dirty);
  tdm_close(t); /* the store is read after the writer is gone */
  stored_load(&s, NULL, 0);
  ASSERT_EQ(s.n, 2);
  ASSERT_NOT_NULL(stored_find(&s, "a.log"));
}

/* A file met under a new name takes it, and is written again. */
TEST(seen_at_a_new_name_is_a_rename) {
  tdm_options_t o = probe_options();
  tdm_t *t = (src(""), probe_open_tdm(&o));
  tdm_file_t *a = track(t, "a.log");
  stored_t s;

  ASSERT_EQ(tdm__checkpoint(t), 0);
  ASSERT_EQ(rename(src("a.log"), src("a.1")), 0);
  ASSERT_EQ(tdm__file_seen_at(t, a, src("a.1")), 0);
  ASSERT(a->dirty);
  ASSERT(tdm__filetable_by_path(&t->files, src("a.1")) == a);
  ASSERT_NULL(tdm__filetable_by_path(&t->files, src("a.log")));
  ASSERT_EQ(tdm__file_seen_at(t, a, src("a.1")), 0); /* same name: nothing */
  ASSERT_EQ(tdm__checkpoint(t), 0);
  tdm_close(t);
  stored_load(&s, NULL, 0);
  ASSERT_NOT_NULL(stored_find(&s, "a.1"));
  ASSERT_NULL(stored_find(&s, "a.log"));
}

/* Each live flag is counted once however often it is set; forgetting a
   file clears them; a held descriptor is counted and replaced. */
TEST(flags_and_descriptors_counted) {
  tdm_options_t o = probe_options();
  tdm_t *t = (src(""), probe_open_tdm(&o));
  tdm_file_t *a = track(t, "a.log"), *b = track(t, "b.log");
  int fd1 = open(src("a.log"), O_RDONLY), fd2 = open(src("a.log"), O_RDONLY);
  size_t open0 = t->n_open;

  tdm__set_ready(t, a, 1);
  tdm__set_ready(t, a, 1);
  tdm__set_ready(t, b, 1);
  tdm__set_orphan(t, a, 1);
  tdm__set_waiting(t, b, 1);
  ASSERT_EQ(t->n_ready, 2);
  ASSERT_EQ(t->n_orphans, 1);
  ASSERT_EQ(t->n_waiting, 1);
  tdm__hold(t, a, fd1);
  ASSERT_EQ(t->n_open, open0 + 1);
  tdm__hold(t, a, fd2); /* closes fd1 */
  ASSERT_EQ(t->n_open, open0 + 1);
  ASSERT_EQ(fcntl(fd1, F_GETFD), -1);
  ASSERT_EQ(tdm__forget(t, a), 0);
  ASSERT_EQ(t->n_ready, 1);
  ASSERT_EQ(t->n_orphans, 0);
  ASSERT_EQ(t->n_open, open0);
  ASSERT_EQ(fcntl(fd2, F_GETFD), -1);
  tdm__release(t, b); /* holds none: nothing */
  ASSERT_EQ(t->n_open, open0);
  tdm__set_waiting(t, b, 0);
  ASSERT_EQ(t->n_waiting, 0);
  tdm_close(t);
}

/* A forgotten file's record is deleted at the next checkpoint; so is a
   buried id. */
TEST(forget_and_bury_delete_records) {
  tdm_options_t o = probe_options();
  tdm_t *t = (src(""), probe_open_tdm(&o));
  tdm_file_t *a = track(t, "a.log"), *b = track(t, "b.log");
  uint64_t bid = b->rec.id;
  stored_t s;

  ASSERT_EQ(tdm__checkpoint(t), 0);
  ASSERT_EQ(tdm__forget(t, a), 0);
  ASSERT_NULL(tdm__filetable_by_path(&t->files, src("a.log")));
  ASSERT_EQ(tdm__checkpoint(t), 0);
  tdm_close(t);
  stored_load(&s, NULL, 0);
  ASSERT_EQ(s.n, 1);
  ASSERT_EQ(s.rec[0].id, bid);

  t = probe_open_tdm(&o); /* loads b's record */
  ASSERT_EQ(tdm__bury(t, bid), 0);
  ASSERT_EQ(tdm__checkpoint(t), 0);
  tdm_close(t);
  stored_load(&s, NULL, 0);
  ASSERT_EQ(s.n, 0);
}

/* Tail mode with --decompress auto keeps a gone file as a ghost (a
   compressed copy may turn up); with --decompress never it is forgotten;
   ghosts go when they expire. */
TEST(retire_to_a_ghost_or_forget) {
  tdm_options_t o = probe_options();
  tdm_t *t = (src(""), probe_open_tdm(&o));
  tdm_file_t *a = track(t, "a.log"), *g;
  uint64_t id;

  a->rec.fp_len = 5; /* it has a fingerprint to be known by */
  id = a->rec.id;
  ASSERT_EQ(tdm__retire(t, a), 0);
  g = tdm__filetable_get(&t->files, 0, id);
  ASSERT_NOT_NULL(g);
  ASSERT_EQ(g->rec.state, TDM_FILE_GONE);
  ASSERT(g->dirty);
  ASSERT_EQ(tdm__ghosts_expire(t), 0); /* young: stays */
  ASSERT_NOT_NULL(tdm__filetable_get(&t->files, 0, id));
  g->rec.updated_ns = 1; /* long ago */
  ASSERT_EQ(tdm__ghosts_expire(t), 0);
  ASSERT_NULL(tdm__filetable_get(&t->files, 0, id));
  tdm_close(t);

  o.decompress = TDM_DECOMPRESS_NEVER;
  t = probe_open_tdm(&o);
  a = track(t, "b.log");
  a->rec.fp_len = 5;
  id = a->rec.id;
  ASSERT_EQ(tdm__retire(t, a), 0);
  ASSERT_NULL(tdm__filetable_get(&t->files, 0, id));
  ASSERT_EQ(t->files.n, 0);
  tdm_close(t);
}

/* A truncated file's former content is a ghost at its path (dup_of: the
   file truncated), written by the checkpoint that writes the truncation
   and loaded again at open; at most TDM_TRUNC_GHOSTS per file, the oldest
   going first; kept with --decompress never too; gone when it expires. */
TEST(truncation_ghosts_are_durable_and_bounded) {
  tdm_options_t o = probe_options();
  tdm_t *t = (src(""), probe_open_tdm(&o));
  tdm_file_t *a = track(t, "a.log"), *g, *first;
  uint64_t aid = a->rec.id, gid;
  int rc, n;
  stored_t s;

  ASSERT_EQ(tdm__checkpoint(t), 0);
  a->rec.fp_len = 5;
  a->rec.fp_hash = 77;
  /* Nothing delivered: nothing for a copy to continue from. */
  ASSERT_NULL(tdm__ghost_truncated(t, a, aid, &rc));
  ASSERT_EQ(rc, 0);
  a->pos = 5;
  a->marker = 99;
  a->marker_len = 5;
  first = tdm__ghost_truncated(t, a, aid, &rc);
  ASSERT_NOT_NULL(first);
  ASSERT_EQ(rc, 0);
  gid = first->rec.id;
  ASSERT(gid > aid);
  ASSERT(tdm__is_trunc_ghost(first));
  ASSERT_EQ(first->rec.dup_of, aid);
  ASSERT_EQ(first->pos, 5);
  ASSERT_EQ(first->durable_offset, 0); /* a's durable bookmark */
  ASSERT(first->dirty);
  /* At its path as a ghost, never as the file at that path. */
  ASSERT(tdm__filetable_by_path(&t->files, src("a.log")) == a);
  ASSERT(tdm__filetable_ghost_at(&t->files, src("a.log"), NULL) == first);
  ASSERT_NULL(tdm__filetable_ghost_at(&t->files, src("a.log"), first));
  ASSERT_NULL(tdm__filetable_ghost_at(&t->files, src("a.lo"), NULL));
  ASSERT_EQ(tdm__checkpoint(t), 0);
  tdm_close(t);

  stored_load(&s, NULL, 0);
  ASSERT_EQ(s.n, 2);
  for (int i = 0; i < s.n; i++)
    if (s.rec[i].id == gid) {
      ASSERT_EQ(s.rec[i].state, TDM_FILE_GONE);
      ASSERT_EQ(s.rec[i].dup_of, aid);
      ASSERT_EQ(s.rec[i].offset, 5);
      ASSERT_EQ(s.rec[i].marker, 99);
      ASSERT_EQ(s.rec[i].fp_hash, 77);
    }

  /* Loaded again; bounded per file; kept with --decompress never. */
  o.decompress = TDM_DECOMPRESS_NEVER;
  t = probe_open_tdm(&o);
  ASSERT_NOT_NULL(g = tdm__filetable_ghost_at(&t->files, src("a.log"), NULL));
  ASSERT_EQ(g->rec.id, gid);
  ASSERT_EQ(g->pos, 5);
  g->rec.updated_ns -= 1000; /* the oldest */
  a = tdm__filetable_by_path(&t->files, src("a.log"));
  ASSERT_NOT_NULL(a);
  a->pos = 5;
  a->rec.fp_len = 5;
  for (int i = 1; i < TDM_TRUNC_GHOSTS + 3; i++)
    ASSERT_NOT_NULL(tdm__ghost_truncated(t, a, aid, &rc));
  n = 0;
  for (g = tdm__filetable_ghost_at(&t->files, src("a.log"), NULL); g != NULL;
       g = tdm__filetable_ghost_at(&t->files, src("a.log"), g)) {
    n++;
    ASSERT(g->rec.id != gid); /* the oldest went first */
  }
  ASSERT_EQ(n, TDM_TRUNC_GHOSTS);
  ASSERT_EQ(tdm__ghosts_expire(t), 0);
  ASSERT_NOT_NULL(tdm__filetable_ghost_at(&t->files, src("a.log"), NULL));
  for (g = tdm__filetable_ghost_at(&t->files, src("a.log"), NULL); g != NULL;
       g = tdm__filetable_ghost_at(&t->files, src("a.log"), g))
    g->rec.updated_ns = 1; /* long ago */
  ASSERT_EQ(tdm__ghosts_expire(t), 0);
  ASSERT_NULL(tdm__filetable_ghost_at(&t->files, src("a.log"), NULL));
  ASSERT_EQ(tdm__checkpoint(t), 0);
  tdm_close(t);
  stored_load(&s, NULL, 0);
  ASSERT_EQ(s.n, 1); /* a alone */
}

/* A file at rest goes cold after a checkpoint (64 bytes, core/filetable.h),
   a look that finds it unchanged leaves it cold, and it comes back hot with
   everything its record held; a file with bytes pending stays hot. */
TEST(at_rest_goes_cold_and_comes_back_whole) {
  tdm_options_t o = probe_options();
  tdm_t *t = (src(""), probe_open_tdm(&o));
  tdm_file_t *a, *b;
  tdm_cold_t *c;
  tdm_file_rec_t before;
  struct stat st;
  uint64_t seen;

  ASSERT_EQ(tdm__checkpoint(t), 0);
  a = track(t, "a.log");
  b = track(t, "b.log");
  ASSERT_NOT_NULL(a);
  ASSERT_NOT_NULL(b);
  a->pos = a->rec.offset = a->durable_offset = a->rec.size; /* delivered */
  a->rec.fp_hash = 77;
  a->rec.fp_len = 5;
  a->rec.truncations = 3;
  ASSERT_EQ(lstat(src("a.log"), &st), 0); /* as a read to the end leaves it */
  a->rec.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  a->rec.ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
  before = a->rec;
  ASSERT_EQ(tdm__checkpoint(t), 0);
  ASSERT(t->rest_due);
  tdm__rest(t);
  ASSERT(!t->rest_due);
  ASSERT_EQ(t->files.n, 1); /* b: 5 bytes not delivered */
  ASSERT(t->files.all[0] == b);
  ASSERT_EQ(t->files.n_cold, 1);
  ASSERT_EQ(tdm__filetable_count(&t->files), 2);

  c = tdm__filetable_cold(&t->files, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
  ASSERT_NOT_NULL(c);
  ASSERT_EQ(c->id, before.id);
  ASSERT_EQ(c->fp_hash, 77);
  seen = t->stats.files_seen;
  ASSERT_EQ(tdm__look(t, src("a.log"), &st, 0), 0); /* unchanged */
  ASSERT_EQ(t->stats.files_seen, seen + 1);
  ASSERT_EQ(t->files.n_cold, 1);
  ASSERT(c->seen);

  a = tdm__filetable_get(&t->files, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
  ASSERT_NOT_NULL(a);
  ASSERT_EQ(t->files.n_cold, 0);
  ASSERT_EQ(t->files.n, 2);
  ASSERT(a->seen);
  ASSERT(!a->dirty);
  ASSERT_EQ(a->rec.id, before.id);
  ASSERT_EQ(a->rec.size, before.size);
  ASSERT_EQ(a->rec.offset, before.offset);
  ASSERT_EQ(a->pos, before.offset);
  ASSERT_EQ(a->durable_offset, before.offset);
  ASSERT_EQ(a->rec.mtime_ns, before.mtime_ns);
  ASSERT_EQ(a->rec.ctime_ns, before.ctime_ns);
  ASSERT_EQ(a->rec.fp_hash, 77);
  ASSERT_EQ(a->rec.fp_len, 5);
  ASSERT_EQ(a->rec.truncations, 3);
  ASSERT_EQ(a->rec.first_seen_ns, before.first_seen_ns);
  ASSERT_STR_EQ(a->path, src("a.log"));
  tdm_close(t);
}
