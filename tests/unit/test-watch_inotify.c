/*
 * test-watch_inotify.c: live/watch_inotify.c, tidemark's inotify descriptor
 * and its watch table, on real directories: add (and add again after a
 * rename), find, forget, remove_under, and that events arrive for a watch.
 */
#include "test.h"
#include "live/watch_inotify.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *dir(const char *rel) {
  const char *p = tdm_test_path(rel);
  ASSERT_EQ(mkdir(p, 0755), 0);
  return p;
}

TEST(add_find_forget) {
  tdm_inotify_t in;
  int wa, wb;

  ASSERT_EQ(tdm__inotify_open(&in), 0);
  ASSERT_GE(in.fd, 0);
  wa = tdm__inotify_add(&in, dir("a"), 0);
  wb = tdm__inotify_add(&in, dir("b"), 3);
  ASSERT_GE(wa, 0);
  ASSERT_GE(wb, 0);
  ASSERT_NE(wa, wb);
  ASSERT_EQ(in.watches.n, 2);
  ASSERT_NOT_NULL(tdm__inotify_find(&in, wa));
  ASSERT_STR_EQ(tdm__inotify_find(&in, wa)->path, tdm_test_path("a"));
  ASSERT_EQ(tdm__inotify_find(&in, wa)->root, 0);
  ASSERT_STR_EQ(tdm__inotify_find(&in, wb)->path, tdm_test_path("b"));
  ASSERT_EQ(tdm__inotify_find(&in, wb)->root, 3);
  ASSERT_NULL(tdm__inotify_find(&in, wb + 1000));
  tdm__inotify_forget(&in, wa);
  ASSERT_NULL(tdm__inotify_find(&in, wa));
  ASSERT_NOT_NULL(tdm__inotify_find(&in, wb));
  ASSERT_EQ(in.watches.n, 1);
  tdm__inotify_forget(&in, wa); /* twice: nothing */
  ASSERT_EQ(in.watches.n, 1);
  tdm__inotify_close(&in);
  ASSERT_EQ(in.fd, -1);
  ASSERT_EQ(in.watches.n, 0);
  tdm__inotify_close(&in); /* a closed one is accepted */
}

TEST(errors_name_the_cause) {
  tdm_inotify_t in;
  ASSERT_EQ(tdm__inotify_open(&in), 0);
  ASSERT_EQ(tdm__inotify_add(&in, tdm_test_path("missing"), 0), -ENOENT);
  tdm_test_write(tdm_test_path("file"), "x", 1);
  ASSERT_EQ(tdm__inotify_add(&in, tdm_test_path("file"), 0), -ENOTDIR);
  ASSERT_EQ(in.watches.n, 0);
  tdm__inotify_close(&in);
}

/* The same directory watched again under a new name (it was renamed): the
   same wd, one entry, the new path. */
TEST(readd_after_rename_updates_the_path) {
  tdm_inotify_t in;
  int w1, w2;
  char old[4096], new[4096];

  ASSERT_EQ(tdm__inotify_open(&in), 0);
  snprintf(old, sizeof(old), "%s", dir("old"));
  snprintf(new, sizeof(new), "%s", tdm_test_path("new"));
  w1 = tdm__inotify_add(&in, old, 1);
  ASSERT_GE(w1, 0);
  ASSERT_EQ(rename(old, new), 0);
  w2 = tdm__inotify_add(&in, new, 2);
  ASSERT_EQ(w2, w1);
  ASSERT_EQ(in.watches.n, 1);
  ASSERT_STR_EQ(tdm__inotify_find(&in, w1)->path, new);
  ASSERT_EQ(tdm__inotify_find(&in, w1)->root, 2);
  tdm__inotify_close(&in);
}

/* remove_under drops a directory and everything below it, and nothing that
   only shares a prefix of its name. */
TEST(remove_under_a_subtree) {
  tdm_inotify_t in;
  int top, sub, subsub, sibling, other;

  ASSERT_EQ(tdm__inotify_open(&in), 0);
  dir("t");
  top = tdm__inotify_add(&in, tdm_test_path("t"), 0);
  sub = tdm__inotify_add(&in, dir("t/d"), 0);
  subsub = tdm__inotify_add(&in, dir("t/d/e"), 0);
  sibling = tdm__inotify_add(&in, dir("t/d2"), 0); /* prefix "t/d", not under */
  other = tdm__inotify_add(&in, dir("t/x"), 0);
  ASSERT_EQ(in.watches.n, 5);
  tdm__inotify_remove_under(&in, tdm_test_path("t/d"));
  ASSERT_EQ(in.watches.n, 3);
  ASSERT_NULL(tdm__inotify_find(&in, sub));
  ASSERT_NULL(tdm__inotify_find(&in, subsub));
  ASSERT_NOT_NULL(tdm__inotify_find(&in, top));
  ASSERT_NOT_NULL(tdm__inotify_find(&in, sibling));
  ASSERT_NOT_NULL(tdm__inotify_find(&in, other));
  tdm__inotify_remove_under(&in, tdm_test_path("t"));
  ASSERT_EQ(in.watches.n, 0);
  tdm__inotify_close(&in);
}

/* Many watches (the table grows), each found by its wd; and a watch
   delivers: a file created in a watched directory is an event on its wd. */
TEST(many_watches_and_an_event) {
  enum { N = 600 };
  static int wd[N];
  tdm_inotify_t in;
  char rel[64];
  union {
    struct inotify_event ev;
    char buf[4096];
  } u;
  struct pollfd pfd;
  ssize_t n;

  ASSERT_EQ(tdm__inotify_open(&in), 0);
  for (int i = 0; i < N; i++) {
    snprintf(rel, sizeof(rel), "w%d", i);
    wd[i] = tdm__inotify_add(&in, dir(rel), (size_t)i);
    ASSERT_GE(wd[i], 0);
  }
  ASSERT_EQ(in.watches.n, N);
  for (int i = 0; i < N; i++) {
    const tdm_watch_t *w = tdm__inotify_find(&in, wd[i]);
    snprintf(rel, sizeof(rel), "w%d", i);
    ASSERT_NOT_NULL(w);
    ASSERT_EQ(w->root, i);
    ASSERT_STR_EQ(w->path, tdm_test_path(rel));
  }
  tdm_test_write(tdm_test_path("w417/new.log"), "x\n", 2);
  pfd.fd = in.fd;
  pfd.events = POLLIN;
  ASSERT_EQ(poll(&pfd, 1, 10000), 1);
  n = read(in.fd, u.buf, sizeof(u.buf));
  ASSERT_GT(n, (ssize_t)sizeof(struct inotify_event));
  ASSERT_EQ(u.ev.wd, wd[417]);
  ASSERT(u.ev.mask & IN_CREATE);
  ASSERT_STR_EQ(u.ev.name, "new.log");
  tdm__inotify_close(&in);
}
