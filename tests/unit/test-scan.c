/*
 * test-scan.c: core/scan.c, the filtered directory walk, on a real tree:
 * what it reports (regular files, with their lstat), what it passes over
 * (symlinks, FIFOs, hidden and excluded names, the state directory), the
 * directory callback, and how a callback stops it.
 */
#include "test.h"
#include "core/scan.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct seen {
  char files[64][256];    /* rel paths, in the order reported */
  off_t sizes[64];
  int n;
  char dirs[64][512];
  int n_dirs;
  int stop_at;            /* return -1234 at this file (1-based; 0: never) */
} seen_t;

static int on_file(void *arg, const char *path, const char *rel,
                   const struct stat *st) {
  seen_t *s = arg;
  char want[8192];
  ASSERT_LT(s->n, 64);
  ASSERT_LT(strlen(rel), 4096);
  snprintf(want, sizeof(want), "%s/%s", tdm_test_path("src"), rel);
  ASSERT_STR_EQ(path, want); /* absolute: root + rel */
  ASSERT(S_ISREG(st->st_mode));
  snprintf(s->files[s->n], sizeof(s->files[0]), "%s", rel);
  s->sizes[s->n] = st->st_size;
  s->n++;
  if (s->stop_at == s->n)
    return -1234;
  return 0;
}

static int on_dir(void *arg, const char *path) {
  seen_t *s = arg;
  ASSERT_LT(s->n_dirs, 64);
  snprintf(s->dirs[s->n_dirs++], sizeof(s->dirs[0]), "%s", path);
  return 0;
}

static int has(const seen_t *s, const char *rel) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->files[i], rel) == 0)
      return 1;
  return 0;
}

static void mk(const char *rel) { ASSERT_EQ(mkdir(tdm_test_path(rel), 0755), 0); }
static void put(const char *rel, const char *data) {
  tdm_test_write(tdm_test_path(rel), data, strlen(data));
}

/* A tree with a bit of everything. */
static void tree(void) {
  mk("src");
  mk("src/sub");
  mk("src/sub/deeper");
  mk("src/.hidden");
  mk("src/state");
  put("src/a.log", "aaaa");
  put("src/b.txt", "b");
  put("src/.dot.log", "hidden");
  put("src/sub/c.log", "cc");
  put("src/sub/deeper/d.log", "ddd");
  put("src/.hidden/e.log", "e");
  put("src/state/data.mdb", "not a source file");
  ASSERT_EQ(symlink(tdm_test_path("src/a.log"), tdm_test_path("src/link.log")), 0);
  ASSERT_EQ(symlink(tdm_test_path("src/sub"), tdm_test_path("src/linkdir")), 0);
  ASSERT_EQ(mkfifo(tdm_test_path("src/fifo.log"), 0644), 0);
}

static int scan(seen_t *s, const char *const *inc, size_t n_inc, int recursive,
                tdm_scan_stats_t *stats) {
  tdm_filter_t f;
  tdm_scan_t sc;
  char root[8192], state[8192];
  int rc;

  ASSERT_EQ(tdm__filter_init(&f, inc, n_inc, NULL, 0), 0);
  snprintf(root, sizeof(root), "%s", tdm_test_path("src"));
  snprintf(state, sizeof(state), "%s", tdm_test_path("src/state"));
  f.skip_dir = state;
  memset(&sc, 0, sizeof(sc));
  sc.filter = &f;
  sc.recursive = recursive;
  sc.on_file = on_file;
  sc.on_dir = on_dir;
  sc.arg = s;
  rc = tdm__scan(&sc, root, "");
  if (stats)
    *stats = sc.stats;
  tdm__filter_free(&f);
  return rc;
}

TEST(reports_regular_files_only) {
  seen_t s = {0};
  tdm_scan_stats_t st;
  tree();
  ASSERT_EQ(scan(&s, NULL, 0, 1, &st), 0);
  ASSERT_EQ(s.n, 4);
  ASSERT(has(&s, "a.log"));
  ASSERT(has(&s, "b.txt"));
  ASSERT(has(&s, "sub/c.log"));
  ASSERT(has(&s, "sub/deeper/d.log"));
  /* Not: hidden names, the hidden directory, the state directory, the
     symlinks (to a file and to a directory), the FIFO (counted). */
  ASSERT(!has(&s, ".dot.log"));
  ASSERT(!has(&s, ".hidden/e.log"));
  ASSERT(!has(&s, "state/data.mdb"));
  ASSERT(!has(&s, "link.log"));
  ASSERT(!has(&s, "linkdir/c.log"));
  ASSERT(!has(&s, "fifo.log"));
  ASSERT_EQ(st.special, 1);
  ASSERT_EQ(st.errors, 0);
  for (int i = 0; i < s.n; i++)
    if (strcmp(s.files[i], "a.log") == 0)
      ASSERT_EQ(s.sizes[i], 4);
  /* on_dir saw every directory entered, the root first. */
  ASSERT_EQ(s.n_dirs, 3);
  ASSERT_STR_EQ(s.dirs[0], tdm_test_path("src"));
}

TEST(include_globs_and_no_recursion) {
  seen_t s = {0};
  const char *inc[] = {"*.log"};
  const char *deep[] = {"sub/deeper/*"};
  tree();
  ASSERT_EQ(scan(&s, inc, 1, 0, NULL), 0);
  ASSERT_EQ(s.n, 1); /* the top only: a.log */
  ASSERT_STR_EQ(s.files[0], "a.log");
  ASSERT_EQ(s.n_dirs, 1);

  memset(&s, 0, sizeof(s));
  ASSERT_EQ(scan(&s, inc, 1, 1, NULL), 0);
  ASSERT_EQ(s.n, 3);
  ASSERT(!has(&s, "b.txt"));

  memset(&s, 0, sizeof(s));
  ASSERT_EQ(scan(&s, deep, 1, 1, NULL), 0); /* a glob with '/' matches rel */
  ASSERT_EQ(s.n, 1);
  ASSERT_STR_EQ(s.files[0], "sub/deeper/d.log");
}

TEST(callback_stops_the_walk) {
  seen_t s = {0};
  tree();
  s.stop_at = 2;
  ASSERT_EQ(scan(&s, NULL, 0, 1, NULL), -1234);
  ASSERT_EQ(s.n, 2);
}

TEST(missing_root_is_an_error) {
  seen_t s = {0};
  ASSERT_EQ(scan(&s, NULL, 0, 1, NULL), -ENOENT);
  ASSERT_EQ(s.n, 0);
}

/* A tree deeper than any fixed stack would hold, with a file at the bottom;
   and a wide directory. */
TEST(deep_and_wide) {
  seen_t s = {0};
  char rel[4096] = "src";
  mk("src");
  for (int i = 0; i < 40; i++) {
    strcat(rel, "/d");
    mk(rel);
  }
  strcat(rel, "/bottom.log");
  put(rel, "x");
  ASSERT_EQ(scan(&s, NULL, 0, 1, NULL), 0);
  ASSERT_EQ(s.n, 1);
  ASSERT_EQ(strlen(s.files[0]), 40 * 2 + strlen("bottom.log"));
  ASSERT_EQ(s.n_dirs, 41);
}
