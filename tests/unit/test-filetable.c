/*
 * test-filetable.c: core/filetable.c, the tracked files in memory, found by
 * (dev, ino) and by path: add/get/by_path/remove/set_path, many files, and
 * the growth of its index past its first size.
 */
#include "test.h"
#include "core/filetable.h"

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
