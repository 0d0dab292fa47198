/*
 * test-filetable.c: core/filetable.c, the tracked files in memory, found by
 * (dev, ino) and by path: add/get/by_path/remove/set_path, many files, and
 * the growth of its index past its first size; cold files (at rest, kept
 * compact): made cold and hot again through a loader standing for the
 * store, found both ways, the cold fields laid over the loaded record,
 * and their index, directories and names under churn.
 */
#include "test.h"
#include "core/filetable.h"

#include <errno.h>
#include <stdio.h>

static tdm_file_rec_t rec(uint64_t dev, uint64_t ino, const char *path) {
  tdm_file_rec_t r;
  memset(&r, 0, sizeof(r));
  r.id = ino;
  r.dev = dev;
  r.ino = ino;
  r.offset = ino * 10;
  r.marker = ino ^ 0x55;
  r.marker_len = 7;
  r.path = path;
  return r;
}

TEST(add_get_by_path) {
  tdm_filetable_t ft;
  tdm_file_rec_t r = rec(1, 42, "/a/b.log");
  char path[] = "/a/b.log";
  tdm_file_t *f;

  tdm__filetable_init(&ft);
  ASSERT_NULL(tdm__filetable_get(&ft, 1, 42));
  ASSERT_NULL(tdm__filetable_by_path(&ft, "/a/b.log"));
  r.path = path;
  r.error = "boom";
  f = tdm__filetable_add(&ft, &r);
  ASSERT_NOT_NULL(f);
  path[1] = 'z'; /* the table holds its own copy */
  ASSERT_EQ(ft.n, 1);
  ASSERT(tdm__filetable_get(&ft, 1, 42) == f);
  ASSERT_NULL(tdm__filetable_get(&ft, 2, 42)); /* same ino, other device */
  ASSERT_NULL(tdm__filetable_get(&ft, 1, 43));
  ASSERT(tdm__filetable_by_path(&ft, "/a/b.log") == f);
  ASSERT_NULL(tdm__filetable_by_path(&ft, "/z/b.log"));
  ASSERT_STR_EQ(f->path, "/a/b.log");
  ASSERT(f->rec.path == f->path);
  ASSERT_STR_EQ(f->rec.error, "boom");
  ASSERT_EQ(f->fd, -1);
  /* The position and the durable bookmark start at the record's. */
  ASSERT_EQ(f->pos, 420);
  ASSERT_EQ(f->durable_offset, 420);
  ASSERT_EQ(f->marker, 42 ^ 0x55);
  ASSERT_EQ(f->durable_marker_len, 7);
  tdm__filetable_free(&ft);
  ASSERT_EQ(ft.n, 0);
}

TEST(set_path_and_error) {
  tdm_filetable_t ft;
  tdm_file_rec_t r = rec(1, 1, "/old");
  tdm_file_t *f;

  tdm__filetable_init(&ft);
  f = tdm__filetable_add(&ft, &r);
  ASSERT_NOT_NULL(f);
  ASSERT_NULL(f->rec.error);
  ASSERT_EQ(tdm__file_set_path(&ft, f, "/new/name"), 0);
  ASSERT_NULL(tdm__filetable_by_path(&ft, "/old"));
  ASSERT(tdm__filetable_by_path(&ft, "/new/name") == f);
  ASSERT_STR_EQ(f->rec.path, "/new/name");
  ASSERT(tdm__filetable_get(&ft, 1, 1) == f); /* identity unchanged */
  tdm__file_set_error(f, "it failed");
  ASSERT_STR_EQ(f->rec.error, "it failed");
  tdm__file_set_error(f, NULL);
  ASSERT_NULL(f->rec.error);
  ASSERT_NULL(f->error);
  tdm__filetable_free(&ft);
}

TEST(remove_keeps_the_others) {
  tdm_filetable_t ft;
  tdm_file_t *f[3];
  char p[3][16];

  tdm__filetable_init(&ft);
  for (int i = 0; i < 3; i++) {
    tdm_file_rec_t r;
    snprintf(p[i], sizeof(p[i]), "/f%d", i);
    r = rec(7, (uint64_t)i + 1, p[i]);
    f[i] = tdm__filetable_add(&ft, &r);
    ASSERT_NOT_NULL(f[i]);
  }
  tdm__filetable_remove(&ft, f[0]); /* the first: the last moves into it */
  ASSERT_EQ(ft.n, 2);
  ASSERT_NULL(tdm__filetable_get(&ft, 7, 1));
  ASSERT_NULL(tdm__filetable_by_path(&ft, "/f0"));
  ASSERT(tdm__filetable_get(&ft, 7, 2) == f[1]);
  ASSERT(tdm__filetable_get(&ft, 7, 3) == f[2]);
  ASSERT(tdm__filetable_by_path(&ft, "/f2") == f[2]);
  for (size_t i = 0; i < ft.n; i++)
    ASSERT(ft.all[i] == f[1] || ft.all[i] == f[2]);
  tdm__filetable_remove(&ft, f[2]);
  tdm__filetable_remove(&ft, f[1]);
  ASSERT_EQ(ft.n, 0);
  ASSERT_NULL(tdm__filetable_by_path(&ft, "/f1"));
  /* Usable again after it was emptied. */
  {
    tdm_file_rec_t r = rec(7, 1, "/again");
    ASSERT_NOT_NULL(tdm__filetable_add(&ft, &r));
    ASSERT_NOT_NULL(tdm__filetable_by_path(&ft, "/again"));
  }
  tdm__filetable_free(&ft);
}

/* Many files: far past the index's first size, so it grows (and rehashes)
   several times; every file stays findable both ways, removals in the
   middle of growth included. */
TEST(many_files_and_growth) {
  enum { N = 20000 };
  tdm_filetable_t ft;
  char path[64];

  tdm__filetable_init(&ft);
  for (uint64_t i = 1; i <= N; i++) {
    tdm_file_rec_t r;
    snprintf(path, sizeof(path), "/d/%llu.log", (unsigned long long)i);
    /* Inodes that collide in their low bits, on two devices. */
    r = rec(i % 2, i << 12, path);
    ASSERT_NOT_NULL(tdm__filetable_add(&ft, &r));
    if (i % 1000 == 0) { /* remove one as we go */
      snprintf(path, sizeof(path), "/d/%llu.log", (unsigned long long)(i - 500));
      tdm_file_t *f = tdm__filetable_by_path(&ft, path);
      ASSERT_NOT_NULL(f);
      tdm__filetable_remove(&ft, f);
    }
  }
  ASSERT_EQ(ft.n, N - N / 1000);
  for (uint64_t i = 1; i <= N; i++) {
    tdm_file_t *f = tdm__filetable_get(&ft, i % 2, i << 12);
    snprintf(path, sizeof(path), "/d/%llu.log", (unsigned long long)i);
    if (i % 1000 == 500) {
      ASSERT_NULL(f);
      ASSERT_NULL(tdm__filetable_by_path(&ft, path));
      continue;
    }
    ASSERT_NOT_NULL(f);
    ASSERT_STR_EQ(f->path, path);
    ASSERT(tdm__filetable_by_path(&ft, path) == f);
    ASSERT(ft.all[f->slot] == f);
    ASSERT_NULL(tdm__filetable_get(&ft, (i + 1) % 2, i << 12));
  }
  tdm__filetable_free(&ft);
}

/* ---- cold files ---------------------------------------------------------- */

/* A store of records, by id, for the loader. */
enum { STORE_N = 30000 };
static tdm_file_rec_t store[STORE_N + 1];
static char store_paths[STORE_N + 1][48];
static int loads;

static int load(void *arg, uint64_t id,
                int (*cb)(void *cb_arg, const tdm_file_rec_t *rec),
                void *cb_arg) {
  (void)arg;
  loads++;
  if (id == 0 || id > STORE_N || store[id].id != id)
    return -ENOENT;
  return cb(cb_arg, &store[id]);
}

static tdm_file_rec_t stored(uint64_t id, const char *dir) {
  tdm_file_rec_t r;
  snprintf(store_paths[id], sizeof(store_paths[id]), "%s/f%llu.log", dir,
           (unsigned long long)id);
  r = rec(3, id * 7, store_paths[id]);
  r.id = id;
  r.size = r.offset;
  r.fp_hash = id * 31;
  r.fp_len = 100;
  r.truncations = 2;
  r.first_seen_ns = (int64_t)id * 1000;
  r.mtime_ns = (int64_t)id;
  r.ctime_ns = (int64_t)id + 1;
  store[id] = r;
  return r;
}

TEST(cold_made_hot_with_its_fields) {
  tdm_filetable_t ft;
  tdm_file_rec_t r = stored(5, "/logs/app");
  tdm_cold_t *c;
  tdm_file_t *f;
  char path[64];

  tdm__filetable_init(&ft);
  tdm__filetable_set_load(&ft, load, NULL);
  ASSERT_EQ(tdm__filetable_add_cold(&ft, &r), 0);
  ASSERT_EQ(tdm__filetable_add_cold(&ft, &r), -EEXIST); /* one identity */
  ASSERT_EQ(ft.n, 0);
  ASSERT_EQ(ft.n_cold, 1);
  ASSERT_EQ(tdm__filetable_count(&ft), 1);
  c = tdm__filetable_cold(&ft, 3, 35);
  ASSERT_NOT_NULL(c);
  ASSERT_NULL(tdm__filetable_cold(&ft, 4, 35));
  ASSERT(tdm__cold_at(&ft, c, "/logs/app/f5.log"));
  ASSERT(!tdm__cold_at(&ft, c, "/logs/app/f5.lo"));
  ASSERT(!tdm__cold_at(&ft, c, "/logs/ap/f5.log"));
  ASSERT_EQ(tdm__cold_path(&ft, c, path, sizeof(path)), 0);
  ASSERT_STR_EQ(path, "/logs/app/f5.log");
  ASSERT_EQ(tdm__cold_path(&ft, c, path, 10), -ENAMETOOLONG);
  /* A new file of the same identity is refused while it is cold. */
  ASSERT_NULL(tdm__filetable_add(&ft, &r));
  ASSERT_EQ(ft.err, -EEXIST);
  ft.err = 0;

  /* What the cold file holds wins over the store's (a rollback's -1). */
  c->mtime_ns = -1;
  c->seen = 1;
  loads = 0;
  f = tdm__filetable_get(&ft, 3, 35);
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(loads, 1);
  ASSERT_EQ(ft.n, 1);
  ASSERT_EQ(ft.n_cold, 0);
  ASSERT_EQ(f->rec.mtime_ns, -1);
  ASSERT_EQ(f->rec.ctime_ns, 6);
  ASSERT_EQ(f->rec.truncations, 2);
  ASSERT_EQ(f->rec.first_seen_ns, 5000);
  ASSERT_EQ(f->pos, 350);
  ASSERT_EQ(f->durable_offset, 350);
  ASSERT_EQ(f->seen, 1);
  ASSERT_STR_EQ(f->path, "/logs/app/f5.log");
  ASSERT(tdm__filetable_get(&ft, 3, 35) == f);
  ASSERT_EQ(loads, 1);

  /* Cold again, under a new name: found by it, and hot by path. */
  ASSERT_EQ(tdm__file_set_path(&ft, f, "/logs/app/renamed"), 0);
  ASSERT_EQ(tdm__filetable_freeze(&ft, f), 0);
  ASSERT_EQ(ft.n, 0);
  ASSERT_NULL(tdm__filetable_by_path(&ft, "/logs/app/f5.log"));
  f = tdm__filetable_by_path(&ft, "/logs/app/renamed");
  ASSERT_NOT_NULL(f);
  ASSERT_STR_EQ(f->path, "/logs/app/renamed");
  ASSERT_EQ(f->rec.mtime_ns, -1);

  /* A record that is not there (or another file's): stays cold. */
  ASSERT_EQ(tdm__filetable_freeze(&ft, f), 0);
  store[5].ino = 99;
  ASSERT_NULL(tdm__filetable_get(&ft, 3, 35));
  ASSERT_EQ(ft.err, -ESTALE);
  ASSERT_EQ(ft.n_cold, 1);
  ASSERT_EQ(ft.n, 0);
  store[5].id = 0;
  ASSERT_NULL(tdm__filetable_by_path(&ft, "/logs/app/renamed"));
  ASSERT_EQ(ft.err, -ENOENT);
  ASSERT_EQ(ft.n_cold, 1);
  tdm__filetable_free(&ft);
}

/* Many cold files in many directories, made hot and cold again in turns:
   every one stays findable both ways, with its own fields, through the
   index's growth, removals that shift entries back, directories freed and
   reused, and the name arena's compaction. */
TEST(cold_many_under_churn) {
  tdm_filetable_t ft;
  char dir[32], path[64];

  tdm__filetable_init(&ft);
  tdm__filetable_set_load(&ft, load, NULL);
  for (uint64_t id = 1; id <= STORE_N; id++) {
    tdm_file_rec_t r;
    snprintf(dir, sizeof(dir), "/t/d%llu", (unsigned long long)(id % 97));
    r = stored(id, dir);
    ASSERT_EQ(tdm__filetable_add_cold(&ft, &r), 0);
  }
  ASSERT_EQ(ft.n_cold, STORE_N);
  for (int round = 0; round < 40; round++) {
    /* Every third file hot (by identity or by path), then cold again. */
    for (uint64_t id = 1 + (uint64_t)round % 3; id <= STORE_N; id += 3) {
      tdm_file_t *f = (id & 1) ? tdm__filetable_get(&ft, 3, id * 7)
                               : tdm__filetable_by_path(&ft, store_paths[id]);
      ASSERT_NOT_NULL(f);
      ASSERT_EQ(f->rec.id, id);
      ASSERT_EQ(f->rec.fp_hash, id * 31);
      ASSERT_STR_EQ(f->path, store_paths[id]);
    }
    ASSERT_EQ(ft.n + ft.n_cold, STORE_N);
    while (ft.n > 0)
      ASSERT_EQ(tdm__filetable_freeze(&ft, ft.all[0]), 0);
  }
  /* 13,000 of them gone for good: directories emptied and reused. */
  for (uint64_t id = 1; id <= 13000; id++) {
    tdm_file_t *f = tdm__filetable_get(&ft, 3, id * 7);
    ASSERT_NOT_NULL(f);
    tdm__filetable_remove(&ft, f);
  }
  ASSERT_EQ(ft.n_cold, STORE_N - 13000);
  for (uint64_t id = 1; id <= STORE_N; id++) {
    tdm_cold_t *c = tdm__filetable_cold(&ft, 3, id * 7);
    if (id <= 13000) {
      ASSERT_NULL(c);
      continue;
    }
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(c->id, id);
    ASSERT_EQ(tdm__cold_path(&ft, c, path, sizeof(path)), 0);
    ASSERT_STR_EQ(path, store_paths[id]);
  }
  /* Names of files made hot were compacted away, at least once. */
  ASSERT(ft.names_len < (size_t)STORE_N * 12 * 2);
  tdm__filetable_free(&ft);
}
