/*
 * test-engine.c: the library through its public API (tidemark.h), with a
 * callback processor, on real files and a real LMDB store.
 */
#include "test.h"
#include "tidemark.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What the callback saw, and how it should answer. */
typedef struct sink {
  char data[1 << 16];
  size_t len;
  int chunks;
  int retries_left;   /* answer RETRY this many times first */
  int fail;           /* answer FAIL */
  int stop_after;     /* call tdm_stop after this many chunks (0: never) */
  tdm_t *t;
  uint32_t flags;     /* OR of every chunk's flags */
} sink_t;

static int on_chunk(void *arg, const tdm_chunk_t *c) {
  sink_t *s = arg;
  if (s->fail)
    return TDM_PROC_FAIL;
  if (s->retries_left > 0) {
    s->retries_left--;
    return TDM_PROC_RETRY;
  }
  ASSERT_LE(s->len + c->len, sizeof(s->data));
  memcpy(s->data + s->len, c->data, c->len);
  s->len += c->len;
  s->chunks++;
  s->flags |= c->flags;
  if (s->stop_after > 0 && s->chunks >= s->stop_after)
    tdm_stop(s->t);
  return TDM_PROC_OK;
}

static void quiet(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  (void)level;
  (void)msg;
}

/* One tdm_run_once over the test dir's "src" with `s` as the processor. */
static int run(sink_t *s, size_t max_record, tdm_stats_t *stats) {
  tdm_options_t o;
  tdm_t *t;
  int rc;
  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.log_cb = quiet;
  if (max_record)
    o.max_record = max_record;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "sink", on_chunk, s), 0);
  s->t = t;
  rc = tdm_run_once(t);
  if (stats) {
    tdm_stats_init(stats);
    tdm_get_stats(t, stats);
  }
  tdm_close(t);
  return rc;
}

static const char *src(const char *name) {
  static char buf[8192];
  mkdir(tdm_test_path("src"), 0755);
  snprintf(buf, sizeof(buf), "%s/src/%s", tdm_test_dir, name);
  return buf;
}

#define SINK_EQ(s, str)                                                   \
  do {                                                                    \
    ASSERT_EQ((s)->len, strlen(str));                                     \
    ASSERT_EQ(memcmp((s)->data, (str), (s)->len), 0);                     \
  } while (0)

TEST(appended_bytes_only) {
  sink_t s = {0};
  tdm_test_write(src("a.log"), "one\ntwo\n", 8);
  ASSERT_EQ(run(&s, 0, NULL), 0);
  SINK_EQ(&s, "one\ntwo\n");
  tdm_test_append(src("a.log"), "three\n", 6);
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, NULL), 0);
  SINK_EQ(&s, "three\n");
}

TEST(partial_line_waits_for_its_newline) {
  sink_t s = {0};
  tdm_test_write(src("a.log"), "whole\npart", 10);
  ASSERT_EQ(run(&s, 0, NULL), 0);
  SINK_EQ(&s, "whole\n");
  tdm_test_append(src("a.log"), "ial\n", 4);
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, NULL), 0);
  SINK_EQ(&s, "partial\n");
}

TEST(unchanged_files_are_not_opened) {
  sink_t s = {0};
  tdm_stats_t st;
  tdm_test_write(src("a.log"), "x\n", 2);
  tdm_test_write(src("b.log"), "y\n", 2);
  ASSERT_EQ(run(&s, 0, &st), 0);
  ASSERT_EQ(st.files_opened, 2);
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, &st), 0);
  ASSERT_EQ(st.files_seen, 2);
  ASSERT_EQ(st.files_opened, 0);
  ASSERT_EQ(s.len, 0);
}

TEST(retry_then_accept_delivers_once) {
  sink_t s = {0};
  tdm_stats_t st;
  s.retries_left = 3;
  tdm_test_write(src("a.log"), "hello\n", 6);
  ASSERT_EQ(run(&s, 0, &st), 0);
  SINK_EQ(&s, "hello\n");
  ASSERT_EQ(st.proc_retries, 3);
}

TEST(failure_keeps_the_bookmark) {
  sink_t s = {0};
  tdm_stats_t st;
  s.fail = 1;
  tdm_test_write(src("a.log"), "keep me\n", 8);
  ASSERT_EQ(run(&s, 0, &st), TDM_EPARTIAL);
  ASSERT_EQ(st.proc_failures, 5); /* offered max_tries (5) times alone */
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, NULL), 0); /* retried on the next run */
  SINK_EQ(&s, "keep me\n");
}

TEST(rename_keeps_the_bookmark) {
  sink_t s = {0};
  char old[8192];
  tdm_test_write(src("app.log"), "a\nb\n", 4);
  ASSERT_EQ(run(&s, 0, NULL), 0);
  tdm_test_append(src("app.log"), "c\n", 2);
  snprintf(old, sizeof(old), "%s", src("app.log"));
  ASSERT_EQ(rename(old, src("app.log.1")), 0);
  tdm_test_write(src("app.log"), "new\n", 4);
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, NULL), 0);
  /* c\n from the rotated file, new\n from the new one, in some order. */
  ASSERT_EQ(s.len, 6);
  ASSERT(memmem(s.data, s.len, "c\n", 2) != NULL);
  ASSERT(memmem(s.data, s.len, "new\n", 4) != NULL);
}

TEST(truncation_restarts_at_zero) {
  sink_t s = {0};
  tdm_stats_t st;
  tdm_test_write(src("a.log"), "first line\nsecond line\n", 23);
  ASSERT_EQ(run(&s, 0, NULL), 0);
  tdm_test_write(src("a.log"), "after\n", 6); /* same inode, shorter */
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, &st), 0);
  SINK_EQ(&s, "after\n");
  ASSERT_EQ(st.truncations, 1);
  ASSERT(s.flags & TDM_CHUNK_RESTART);
}

TEST(rewrite_in_place_is_a_new_file) {
  sink_t s = {0};
  tdm_stats_t st;
  tdm_test_write(src("a.log"), "aaaa\n", 5);
  ASSERT_EQ(run(&s, 0, NULL), 0);
  tdm_test_write(src("a.log"), "bbbbbbbb\n", 9); /* same inode, longer */
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, &st), 0);
  SINK_EQ(&s, "bbbbbbbb\n");
  ASSERT_EQ(st.rewrites, 1);
}

TEST(long_lines_go_out_in_pieces) {
  sink_t s = {0};
  tdm_stats_t st;
  char line[1001];
  memset(line, 'x', 1000);
  line[1000] = '\n';
  tdm_test_write(src("a.log"), "short\n", 6);
  tdm_test_append(src("a.log"), line, sizeof(line));
  tdm_test_append(src("a.log"), "tail\n", 5);
  ASSERT_EQ(run(&s, 100, &st), 0);
  ASSERT_EQ(s.len, 6 + sizeof(line) + 5);
  ASSERT_EQ(st.pieces, 1);
  ASSERT(s.flags & TDM_CHUNK_PIECE);
}

TEST(stop_then_resume_loses_and_repeats_nothing) {
  sink_t s = {0}, all = {0};
  char expect[60000];
  size_t n = 0;
  int rc;
  /* Several files so that a stop lands between files and chunks. */
  for (int f = 0; f < 5; f++) {
    char name[32];
    n = 0;
    for (int i = 0; i < 500; i++)
      n += (size_t)snprintf(expect + n, sizeof(expect) - n, "f%d line %d\n", f, i);
    snprintf(name, sizeof(name), "f%d.log", f);
    tdm_test_write(src(name), expect, n);
  }
  s.stop_after = 1;
  rc = run(&s, 0, NULL);
  ASSERT_EQ(rc, TDM_ESTOPPED);
  ASSERT_GT(s.len, 0);
  memcpy(all.data, s.data, s.len);
  all.len = s.len;
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, NULL), 0);
  memcpy(all.data + all.len, s.data, s.len);
  all.len += s.len;
  /* Every line of every file exactly once. */
  ASSERT_EQ(all.len, 5 * n);
  for (int f = 0; f < 5; f++)
    for (int i = 0; i < 500; i += 97) {
      char line[32];
      int k = snprintf(line, sizeof(line), "\nf%d line %d\n", f, i);
      const char *hit = memmem(all.data, all.len, line + (i == 0), (size_t)k - (i == 0));
      ASSERT(hit != NULL);
      ASSERT(memmem(hit + 1, all.len - (size_t)(hit + 1 - all.data),
                    line + (i == 0), (size_t)k - (i == 0)) == NULL);
    }
}

TEST(second_open_in_process_is_refused) {
  tdm_options_t o;
  tdm_t *a, *b;
  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.log_cb = quiet;
  ASSERT_EQ(tdm_open(&o, &a), 0);
  ASSERT_EQ(tdm_open(&o, &b), TDM_ELOCKED);
  tdm_close(a);
  ASSERT_EQ(tdm_open(&o, &b), 0);
  tdm_close(b);
}

TEST(missing_source_is_an_error) {
  tdm_options_t o;
  tdm_t *t;
  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.log_cb = quiet;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("nope")), -ENOENT);
  tdm_close(t);
}

TEST(bad_options_are_refused) {
  tdm_options_t o;
  tdm_t *t;
  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.log_cb = quiet;
  o.max_record = 1;
  ASSERT_EQ(tdm_open(&o, &t), TDM_EUSAGE);
  tdm_options_init(&o);
  o.log_cb = quiet;
  ASSERT_EQ(tdm_open(&o, &t), TDM_EUSAGE); /* no state dir */
}

TEST(truncated_to_zero_then_regrown_is_the_same_file) {
  sink_t s = {0};
  tdm_stats_t st;
  tdm_test_write(src("a.log"), "one\ntwo\nthree\n", 14);
  ASSERT_EQ(run(&s, 0, NULL), 0);
  tdm_test_write(src("a.log"), "", 0); /* : > a.log */
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, &st), 0);
  ASSERT_EQ(st.truncations, 1);
  ASSERT_EQ(s.len, 0);
  tdm_test_write(src("a.log"), "four\n", 5); /* grows again, same inode */
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(run(&s, 0, &st), 0);
  ASSERT_EQ(st.rewrites, 0); /* not mistaken for a rewritten file */
  ASSERT_EQ(st.files_new, 0);
  SINK_EQ(&s, "four\n");
}

/* ---- a long stall does not hold back what was delivered before it ------ */

#include <sys/wait.h>

#include "state/store.h"

typedef struct stall {
  int retries;          /* RETRY answers so far for b.log */
  int child_status;     /* what the reader in the child process saw */
} stall_t;

static int find_a(void *arg, const tdm_file_rec_t *rec) {
  if (strstr(rec->path, "/a.log") != NULL)
    *(uint64_t *)arg = rec->offset;
  return 0;
}

/* A second process reads the store while the first one is stalled. */
static int bookmark_of_a_in_store(void) {
  pid_t pid = fork();
  int status;
  if (pid == 0) {
    tdm__log_t log = {TDM_LOG_ERROR, quiet, NULL};
    tdm_store_t *s;
    uint64_t off = 0;
    if (tdm_store_open(tdm_test_path("state"), TDM_STORE_RDONLY, &log, &s) != 0)
      _exit(100);
    tdm_store_load_files(s, find_a, &off);
    tdm_store_close(s);
    _exit(off == 6 ? 0 : 1);
  }
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static int stalling(void *arg, const tdm_chunk_t *c) {
  stall_t *st = arg;
  if (strstr(c->path, "/b.log") == NULL)
    return TDM_PROC_OK;
  if (++st->retries < 12) /* ~1.2 s of backoff: past --checkpoint-ms 100 */
    return TDM_PROC_RETRY;
  st->child_status = bookmark_of_a_in_store();
  return TDM_PROC_OK;
}

TEST(stalled_processor_still_checkpoints_earlier_files) {
  tdm_options_t o;
  stall_t st = {0, -1};
  tdm_t *t;
  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.log_cb = quiet;
  o.checkpoint_ms = 100;
  /* A directory's files are read before its subdirectories: a.log, then
     z/b.log. */
  tdm_test_write(src("a.log"), "first\n", 6);
  mkdir(src("z"), 0755);
  tdm_test_write(src("z/b.log"), "second\n", 7);
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "stalling", stalling, &st), 0);
  ASSERT_EQ(tdm_run_once(t), 0);
  tdm_close(t);
  ASSERT_EQ(st.retries, 12);
  ASSERT_EQ(st.child_status, 0); /* a.log's bookmark was durable meanwhile */
}

/* ---- a chunk's name is durable before the chunk is handed over ---------- */

typedef struct named {
  int chunks;
  int bad;              /* chunks whose name the store did not hold */
  uint64_t max_id;      /* the largest file id seen */
} named_t;

typedef struct want_rec {
  uint32_t generation;
  uint64_t offset;
  int ok;
} want_rec_t;

static int check_rec(void *arg, const tdm_file_rec_t *rec) {
  want_rec_t *w = arg;
  w->ok = rec->truncations == w->generation && rec->offset <= w->offset;
  return 0;
}

/* A second process reads the store: does it hold file `c->file_id` at
   generation `c->generation`, from a bookmark not past the chunk, and is
   that id taken? (What a restart after a kill -9 now would find.) */
static int named_in_store(const tdm_chunk_t *c) {
  pid_t pid = fork();
  int status;
  if (pid == 0) {
    tdm__log_t log = {TDM_LOG_ERROR, quiet, NULL};
    want_rec_t w = {c->generation, c->offset, 0};
    tdm_store_t *s;
    if (tdm_store_open(tdm_test_path("state"), TDM_STORE_RDONLY, &log, &s) != 0)
      _exit(100);
    if (tdm_store_get_file(s, c->file_id, check_rec, &w) != 0)
      _exit(2);
    if (tdm_store_next_id(s) <= c->file_id)
      _exit(3);
    tdm_store_close(s);
    _exit(w.ok ? 0 : 1);
  }
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static int naming(void *arg, const tdm_chunk_t *c) {
  named_t *n = arg;
  n->chunks++;
  n->bad += named_in_store(c) != 0;
  if (c->file_id > n->max_id)
    n->max_id = c->file_id;
  return TDM_PROC_OK;
}

static int run_named(named_t *n, tdm_mode_t mode) {
  tdm_options_t o;
  tdm_t *t;
  int rc;
  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.log_cb = quiet;
  o.mode = mode;
  o.checkpoint_ms = 600000; /* no checkpoint but the last */
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "naming", naming, n), 0);
  rc = tdm_run_once(t);
  tdm_close(t);
  return rc;
}

/* Id-keyed sinks name a record (file id, generation, offset): a kill -9
   before the next checkpoint must find that name in the store, or the id
   goes to another file and the file comes back under a new one. */
TEST(a_chunk_is_named_durably_before_it_is_handed_over) {
  named_t n = {0};
  char name[32];
  for (int i = 0; i < 40; i++) { /* new files, one store commit for all */
    snprintf(name, sizeof(name), "f%02d.log", i);
    tdm_test_write(src(name), "a line\nanother line\n", 20);
  }
  ASSERT_EQ(run_named(&n, TDM_MODE_TAIL), 0);
  ASSERT_EQ(n.chunks, 40);
  ASSERT_EQ(n.bad, 0);
  /* Truncated and written again: a new generation, from 0. */
  tdm_test_write(src("f00.log"), "short\n", 6);
  memset(&n, 0, sizeof(n));
  ASSERT_EQ(run_named(&n, TDM_MODE_TAIL), 0);
  ASSERT_EQ(n.chunks, 1);
  ASSERT_EQ(n.bad, 0);
}

TEST(a_whole_version_is_named_durably_before_it_is_handed_over) {
  named_t n = {0};
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  tdm_test_write(src("drop.csv"), "a,b\n1,2\n", 8);
  ASSERT_EQ(utimensat(AT_FDCWD, src("drop.csv"), old, 0), 0);
  ASSERT_EQ(run_named(&n, TDM_MODE_WHOLE), 0);
  ASSERT_EQ(n.chunks, 1);
  ASSERT_EQ(n.bad, 0);
  /* Written again in place with other content: a new version. */
  tdm_test_write(src("drop.csv"), "a,b\n3,4\n5,6\n", 12);
  ASSERT_EQ(utimensat(AT_FDCWD, src("drop.csv"), old, 0), 0);
  memset(&n, 0, sizeof(n));
  ASSERT_EQ(run_named(&n, TDM_MODE_WHOLE), 0);
  ASSERT_EQ(n.chunks, 1);
  ASSERT_EQ(n.bad, 0);
}

/* On its first chunk, rewrites the other of two new files (one put off
   until the records of both are durable) with other content. */
typedef struct rewriter {
  sink_t s;
  int done;
} rewriter_t;

static int rewrite_other(void *arg, const tdm_chunk_t *c) {
  rewriter_t *r = arg;
  if (!r->done) {
    const char *other = strstr(c->path, "a.log") ? "b.log" : "a.log";
    r->done = 1;
    tdm_test_write(src(other), "new one\nnew two\nnew three\n", 26);
  }
  return on_chunk(&r->s, c);
}

/* A new file's first read waits for its record's commit: what it holds by
   then was not what its look fingerprinted (copytruncate truncated it and
   wrote it again meanwhile). It is identified again before it is read, so
   its record names the content delivered, and a copy of that content (the
   next copytruncate) goes on from its bookmark, delivering nothing twice. */
TEST(a_file_rewritten_before_its_deferred_read_is_identified_again) {
  rewriter_t r = {0};
  sink_t s = {0};
  tdm_options_t o;
  tdm_t *t;

  tdm_test_write(src("a.log"), "old 1\nold 2\n", 12);
  tdm_test_write(src("b.log"), "old 1\nold 2\n", 12);
  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.log_cb = quiet;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "sink", rewrite_other, &r), 0);
  r.s.t = t;
  ASSERT_EQ(tdm_run_once(t), 0);
  tdm_close(t);
  ASSERT_EQ(r.s.len, 12 + 26); /* the first file's, the other's new */
  ASSERT(memmem(r.s.data, r.s.len, "new one\nnew two\nnew three\n", 26) != NULL);
  /* copytruncate on both: the copies hold nothing undelivered. */
  for (int i = 0; i < 2; i++) {
    char buf[64];
    ssize_t n;
    int fd;
    ASSERT((fd = open(src(i == 0 ? "a.log" : "b.log"), O_RDONLY)) >= 0);
    ASSERT((n = read(fd, buf, sizeof(buf))) > 0);
    close(fd);
    tdm_test_write(src(i == 0 ? "a.log.1" : "b.log.1"), buf, (size_t)n);
    ASSERT_EQ(truncate(src(i == 0 ? "a.log" : "b.log"), 0), 0);
  }
  ASSERT_EQ(run(&s, 0, NULL), 0);
  ASSERT_EQ(s.len, 0);
}

/* Whole mode: on its first chunk, writes the file again in place with a
   new version (lines of the same length, other content). */
typedef struct versioner {
  char *data;
  size_t len, cap;
  int chunks;
} versioner_t;

static void lines_of(const char *word, char *buf, size_t n) {
  char line[32]; /* 12 bytes a line while i < 10,000,000 */
  for (size_t i = 0; i < n; i++) {
    snprintf(line, sizeof(line), "%s %07zu\n", word, i);
    memcpy(buf + i * 12, line, 12);
  }
}

static int new_version_on_first(void *arg, const tdm_chunk_t *c) {
  versioner_t *v = arg;
  if (v->chunks++ == 0) {
    static char buf[12 * 200000];
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    lines_of("new", buf, 200000);
    tdm_test_write(c->path, buf, sizeof(buf));
    ASSERT_EQ(utimensat(AT_FDCWD, c->path, old, 0), 0); /* settled */
  }
  ASSERT(v->len + c->len <= v->cap);
  memcpy(v->data + v->len, c->data, c->len);
  v->len += c->len;
  return TDM_PROC_OK;
}

/* A version written again in place while it is delivered (a sink waiting
   for its server gives a writer all the time it needs): what follows the
   rewrite is not handed over as that version, where it would be the new
   one's bytes under the old one's names; the new version comes next, whole
   and once. */
TEST(a_whole_version_rewritten_while_delivered_is_not_mixed_with_the_next) {
  static char old_data[12 * 200000];
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  versioner_t v = {0};
  tdm_options_t o;
  tdm_t *t;
  size_t news = 0;

  v.cap = 3 * sizeof(old_data);
  ASSERT((v.data = malloc(v.cap)) != NULL);
  lines_of("old", old_data, 200000); /* 2.4 MB: read in several pieces */
  tdm_test_write(src("drop.txt"), old_data, sizeof(old_data));
  ASSERT_EQ(utimensat(AT_FDCWD, src("drop.txt"), old, 0), 0);
  for (int run = 0; run < 2; run++) {
    tdm_options_init(&o);
    o.state_dir = tdm_test_path("state");
    o.log_cb = quiet;
    o.mode = TDM_MODE_WHOLE;
    ASSERT_EQ(tdm_open(&o, &t), 0);
    ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
    ASSERT_EQ(tdm_add_callback(t, "sink", new_version_on_first, &v), 0);
    ASSERT_EQ(tdm_run_once(t), 0);
    tdm_close(t);
  }
  /* Some of the old version (a prefix), then the new one, once. */
  ASSERT_EQ(v.len % 12, 0);
  for (size_t i = 0; i < v.len; i += 12) {
    if (memcmp(v.data + i, "new ", 4) == 0) {
      ASSERT_EQ(strtoul(v.data + i + 4, NULL, 10), news);
      news++;
    } else {
      ASSERT_EQ(news, 0); /* no old line after a new one */
      ASSERT_EQ(memcmp(v.data + i, old_data + i, 12), 0);
    }
  }
  ASSERT_EQ(news, 200000);
  free(v.data);
}
