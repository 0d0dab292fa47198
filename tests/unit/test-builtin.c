/*
 * test-builtin.c: the built-in processors (processors/builtin/): stdout,
 * count and file, driven through their descriptors as the engine drives them.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "processors/builtin/builtin.h"
#include "processors/registry.h"

/* ---- helpers ------------------------------------------------------------ */

static int open_proc(const tdm_processor_t *d, void **st, const tdm_kv_t *kv,
                     size_t n, const void *blob, size_t blob_len, char *msg) {
  tdm_open_args_t a = {.size = sizeof(a),
                       .mode = TDM_MODE_TAIL,
                       .params = kv,
                       .n_params = n,
                       .restore = blob,
                       .restore_len = blob_len,
                       .msg = msg};
  msg[0] = '\0';
  *st = NULL;
  return d->open(st, &a);
}

static int feed(const tdm_processor_t *d, void *st, uint64_t file_id,
                const void *data, size_t len, char *msg) {
  tdm_chunk_t c = {.file_id = file_id,
                   .path = "/src/file.log",
                   .offset = 0,
                   .data = data,
                   .len = len,
                   .flags = 0};
  msg[0] = '\0';
  return d->process(st, &c, msg);
}

/* Send fd 1 to `path` (truncated); returns the old fd 1 for put_stdout. */
static int take_stdout(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int saved = dup(STDOUT_FILENO);
  ASSERT_GE(fd, 0);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
  close(fd);
  return saved;
}

static void put_stdout(int saved) {
  ASSERT_EQ(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
  close(saved);
}

static uint64_t file_size(const char *path) {
  struct stat st;
  ASSERT_EQ(stat(path, &st), 0);
  return (uint64_t)st.st_size;
}

static uint64_t blob_u64(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)b[i] << (8 * i);
  return v;
}

static void make_blob(unsigned char *b, uint64_t v) {
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)(v >> (8 * i));
}

/* A byte of a deterministic stream, so content can be checked anywhere. */
static unsigned char pattern(uint64_t off) {
  return (unsigned char)((off * 2654435761u) >> 13);
}

static void fill(unsigned char *b, uint64_t off, size_t n) {
  for (size_t i = 0; i < n; i++)
    b[i] = pattern(off + i);
}

static uint64_t naive_lines(const unsigned char *p, size_t n) {
  uint64_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += p[i] == '\n';
  return c;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* xorshift64* */
  rnd_state ^= rnd_state >> 12;
  rnd_state ^= rnd_state << 25;
  rnd_state ^= rnd_state >> 27;
  return rnd_state * 0x2545f4914f6cdd1dull;
}

typedef struct totals {
  unsigned long long files, chunks, lines, bytes;
} totals_t;

/* Parse the count lines of `text`, one after the other. */
static const char *parse_count(const char *text, totals_t *t) {
  int used = 0;
  if (sscanf(text, "count: files=%llu chunks=%llu lines=%llu bytes=%llu\n%n",
             &t->files, &t->chunks, &t->lines, &t->bytes, &used) != 4 ||
      used == 0 || text[used - 1] != '\n')
    TDM_FAIL_("not a count line: \"%.80s\"", text);
  return text + used;
}

/* ---- count -------------------------------------------------------------- */

TEST(count_totals_line) {
  const tdm_processor_t *d = tdm__proc_count();
  const char *out = tdm_test_path("stdout");
  char msg[TDM_MSG_MAX];
  void *st;
  char *got;
  int saved;

  ASSERT_NULL(d->commit);
  ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, "a\nbb\n", 5, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, "ccc\n", 4, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 2, "no newline", 10, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, "\n\n\n", 3, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 0, "x\n", 2, msg), TDM_PROC_OK); /* id 0 is an id */
  ASSERT_EQ(feed(d, st, 2, "y", 1, msg), TDM_PROC_OK);
  saved = take_stdout(out);
  d->close(st);
  put_stdout(saved);
  got = tdm_test_read(out, NULL);
  ASSERT_STR_EQ(got, "count: files=3 chunks=6 lines=7 bytes=25\n");
  free(got);

  /* Nothing at all. */
  ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_OK);
  saved = take_stdout(out);
  d->close(st);
  put_stdout(saved);
  got = tdm_test_read(out, NULL);
  ASSERT_STR_EQ(got, "count: files=0 chunks=0 lines=0 bytes=0\n");
  free(got);
}

TEST(count_unknown_param) {
  const tdm_processor_t *d = tdm__proc_count();
  tdm_kv_t kv[] = {{"lines", "yes"}};
  char msg[TDM_MSG_MAX];
  void *st;
  ASSERT_EQ(open_proc(d, &st, kv, 1, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, "count"));
  ASSERT_NOT_NULL(strstr(msg, "\"lines\""));
}

/*
 * Chunks of 1..200 bytes at every alignment 0..63, of four kinds of content
 * (all newlines: the densest the vector counters get; none; random bytes over
 * the full range, so bytes like 0x8a, 0x0b and 0xff are there; lines of
 * lengths around the 16- and 64-byte vector widths), each counted by a fresh
 * instance and compared with a naive count.
 */
TEST(count_edge_sizes) {
  const tdm_processor_t *d = tdm__proc_count();
  const char *out = tdm_test_path("stdout");
  enum { KINDS = 4, MAXLEN = 200, ALIGNS = 64 };
  static unsigned char buf[KINDS][MAXLEN + ALIGNS];
  static uint64_t want[KINDS][MAXLEN + 1][ALIGNS];
  static const int line_lens[] = {15, 16, 17, 63, 64, 65, 1};
  char msg[TDM_MSG_MAX];
  const char *p;
  char *got;
  int saved;

  memset(buf[0], '\n', sizeof(buf[0]));
  memset(buf[1], 'x', sizeof(buf[1]));
  for (size_t i = 0; i < sizeof(buf[2]); i++)
    buf[2][i] = (unsigned char)rnd();
  for (size_t i = 0, k = 0, n = 0; i < sizeof(buf[3]); i++) {
    buf[3][i] = ++n == (size_t)line_lens[k % 7] ? '\n' : 'a';
    if (buf[3][i] == '\n') {
      n = 0;
      k++;
    }
  }

  saved = take_stdout(out);
  for (int k = 0; k < KINDS; k++)
    for (size_t len = 1; len <= MAXLEN; len++)
      for (size_t al = 0; al < ALIGNS; al++) {
        void *st;
        ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_OK);
        ASSERT_EQ(feed(d, st, 42, buf[k] + al, len, msg), TDM_PROC_OK);
        d->close(st);
        want[k][len][al] = naive_lines(buf[k] + al, len);
      }
  put_stdout(saved);

  got = tdm_test_read(out, NULL);
  p = got;
  for (int k = 0; k < KINDS; k++)
    for (size_t len = 1; len <= MAXLEN; len++)
      for (size_t al = 0; al < ALIGNS; al++) {
        totals_t t;
        p = parse_count(p, &t);
        if (t.lines != want[k][len][al] || t.bytes != len || t.files != 1 ||
            t.chunks != 1)
          TDM_FAIL_("kind %d len %zu align %zu: lines %llu want %llu, "
                    "bytes %llu",
                    k, len, al, t.lines,
                    (unsigned long long)want[k][len][al], t.bytes);
      }
  ASSERT_EQ(*p, '\0');
  free(got);
}

/* Big chunks of nothing but newlines: the byte counters of the vector loop
   must be summed before they wrap. */
TEST(count_dense_newlines) {
  const tdm_processor_t *d = tdm__proc_count();
  const char *out = tdm_test_path("stdout");
  size_t n = (4u << 20) + 37;
  unsigned char *big = malloc(n);
  char msg[TDM_MSG_MAX];
  totals_t t;
  char *got;
  void *st;
  int saved;

  ASSERT_NOT_NULL(big);
  memset(big, '\n', n);
  ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, big, n, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, big + 1, n - 1, msg), TDM_PROC_OK);
  /* Every other byte, and bytes next to '\n' (0x0b, 0x8a, 0x09). */
  for (size_t i = 0; i < n; i++)
    big[i] = i % 2 ? '\n' : (unsigned char)"\x0b\x8a\x09\xff"[i / 2 % 4];
  ASSERT_EQ(feed(d, st, 1, big, n, msg), TDM_PROC_OK);
  saved = take_stdout(out);
  d->close(st);
  put_stdout(saved);
  got = tdm_test_read(out, NULL);
  parse_count(got, &t);
  ASSERT_EQ(t.lines, (unsigned long long)(n + n - 1 + n / 2));
  ASSERT_EQ(t.bytes, (unsigned long long)(3 * n - 1));
  ASSERT_EQ(t.chunks, 3);
  ASSERT_EQ(t.files, 1);
  free(got);
  free(big);
}

/* Random data, cut into random chunks (mostly 1..200 bytes, some large),
   spread over many files: every total against a naive count. */
TEST(count_random_against_naive) {
  const tdm_processor_t *d = tdm__proc_count();
  const char *out = tdm_test_path("stdout");
  size_t n = 8u << 20;
  unsigned char *data = malloc(n);
  unsigned char *seen = calloc(20000, 1);
  char msg[TDM_MSG_MAX];
  uint64_t files = 0, chunks = 0, lines = 0;
  totals_t t;
  char *got;
  void *st;
  int saved;

  ASSERT_NOT_NULL(data);
  ASSERT_NOT_NULL(seen);
  for (size_t i = 0; i < n; i++) {
    uint64_t r = rnd();
    /* About one byte in 40 a newline, the rest anything. */
    data[i] = r % 40 == 0 ? '\n' : (unsigned char)(r >> 32);
  }
  ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_OK);
  for (size_t off = 0; off < n;) {
    uint64_t r = rnd();
    size_t len = r % 2048 == 0 ? (size_t)(r >> 20) % (512u << 10) + 1
                               : (size_t)(r >> 20) % 200 + 1;
    uint64_t id = (r >> 8) % 20000;
    if (len > n - off)
      len = n - off;
    if (!seen[id]) {
      seen[id] = 1;
      files++;
    }
    ASSERT_EQ(feed(d, st, id, data + off, len, msg), TDM_PROC_OK);
    lines += naive_lines(data + off, len);
    chunks++;
    off += len;
  }
  saved = take_stdout(out);
  d->close(st);
  put_stdout(saved);
  got = tdm_test_read(out, NULL);
  parse_count(got, &t);
  ASSERT_EQ(t.files, files);
  ASSERT_EQ(t.chunks, chunks);
  ASSERT_EQ(t.lines, lines);
  ASSERT_EQ(t.bytes, n);
  ASSERT_GT(files, 5000); /* the set grew many times */
  free(got);
  free(data);
  free(seen);
}

TEST(count_distinct_file_ids) {
  const tdm_processor_t *d = tdm__proc_count();
  const char *out = tdm_test_path("stdout");
  static const uint64_t ids[] = {0, 1, UINT64_MAX, 1ull << 63, 64, 128, 0};
  char msg[TDM_MSG_MAX];
  totals_t t;
  char *got;
  void *st;
  int saved;

  ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_OK);
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
      ASSERT_EQ(feed(d, st, ids[i], "z", 1, msg), TDM_PROC_OK);
    /* Ids that collide in a small table (multiples of its size). */
    for (uint64_t i = 1; i <= 1000; i++)
      ASSERT_EQ(feed(d, st, i * 4096, "z", 1, msg), TDM_PROC_OK);
  }
  saved = take_stdout(out);
  d->close(st);
  put_stdout(saved);
  got = tdm_test_read(out, NULL);
  parse_count(got, &t);
  ASSERT_EQ(t.files, 6 + 1000);
  ASSERT_EQ(t.chunks, 3 * (7 + 1000));
  free(got);
}

/* ---- stdout ------------------------------------------------------------- */

TEST(stdout_writes_and_commits) {
  const tdm_processor_t *d = tdm__proc_stdout();
  const char *out = tdm_test_path("stdout");
  size_t big_len = (3u << 20) + 5;
  unsigned char *big = malloc(big_len);
  unsigned char blob[TDM_RESTORE_MAX];
  size_t blob_len = sizeof(blob), got_len;
  char msg[TDM_MSG_MAX];
  char *got;
  void *st;
  int saved;

  ASSERT_NOT_NULL(big);
  fill(big, 0, big_len);
  ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_OK);
  saved = take_stdout(out);
  ASSERT_EQ(feed(d, st, 1, "hello\n", 6, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, big, big_len, msg), TDM_PROC_OK);
  /* stdout is a regular file here: commit fsyncs it. */
  ASSERT_EQ(d->commit(st, blob, &blob_len, msg), TDM_PROC_OK);
  ASSERT_EQ(blob_len, 0);
  if (d->close != NULL)
    d->close(st);
  put_stdout(saved);
  got = tdm_test_read(out, &got_len);
  ASSERT_EQ(got_len, 6 + big_len);
  ASSERT_EQ(memcmp(got, "hello\n", 6), 0);
  ASSERT_EQ(memcmp(got + 6, big, big_len), 0);
  free(got);
  free(big);
}

TEST(stdout_to_pipe) {
  const tdm_processor_t *d = tdm__proc_stdout();
  unsigned char blob[TDM_RESTORE_MAX];
  size_t blob_len = sizeof(blob);
  char msg[TDM_MSG_MAX], buf[16] = "";
  void *st;
  int p[2], saved;

  ASSERT_EQ(pipe(p), 0);
  saved = dup(STDOUT_FILENO);
  ASSERT_EQ(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
  close(p[1]);
  ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, "pipe\n", 5, msg), TDM_PROC_OK);
  ASSERT_EQ(d->commit(st, blob, &blob_len, msg), TDM_PROC_OK);
  ASSERT_EQ(blob_len, 0);
  put_stdout(saved);
  ASSERT_EQ(read(p[0], buf, sizeof(buf) - 1), 5);
  ASSERT_STR_EQ(buf, "pipe\n");
  close(p[0]);
}

TEST(stdout_epipe_fails) {
  const tdm_processor_t *d = tdm__proc_stdout();
  char msg[TDM_MSG_MAX];
  void *st;
  int p[2], saved;

  signal(SIGPIPE, SIG_IGN); /* as the daemon does */
  ASSERT_EQ(pipe(p), 0);
  close(p[0]);
  saved = dup(STDOUT_FILENO);
  ASSERT_EQ(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
  close(p[1]);
  ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, "lost\n", 5, msg), TDM_PROC_FAIL);
  put_stdout(saved);
  ASSERT_NOT_NULL(strstr(msg, "stdout: write: "));
  ASSERT_NOT_NULL(strstr(msg, strerror(EPIPE)));
}

TEST(stdout_unknown_param) {
  const tdm_processor_t *d = tdm__proc_stdout();
  tdm_kv_t kv[] = {{"fd", "2"}};
  char msg[TDM_MSG_MAX];
  void *st;
  ASSERT_EQ(open_proc(d, &st, kv, 1, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, "\"fd\""));
}

/* ---- file --------------------------------------------------------------- */

/* Commit and return the committed length from the blob. */
static uint64_t commit_ok(const tdm_processor_t *d, void *st) {
  unsigned char blob[TDM_RESTORE_MAX];
  size_t blob_len = sizeof(blob);
  char msg[TDM_MSG_MAX] = "";
  int rc = d->commit(st, blob, &blob_len, msg);
  if (rc != TDM_PROC_OK)
    TDM_FAIL_("commit: %d: %s", rc, msg);
  ASSERT_EQ(blob_len, 8);
  return blob_u64(blob);
}

TEST(file_params) {
  const tdm_processor_t *d = tdm__proc_file();
  char msg[TDM_MSG_MAX];
  void *st;
  tdm_kv_t bad[] = {{"pth", "x"}};
  tdm_kv_t empty[] = {{"path", ""}};
  tdm_kv_t twice[] = {{"path", "a"}, {"path", "b"}};
  tdm_kv_t missing_dir[] = {{"path", tdm_test_path("no/such/out")}};
  tdm_kv_t dev[] = {{"path", "/dev/null"}};

  ASSERT_EQ(open_proc(d, &st, NULL, 0, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, "missing parameter \"path\""));
  ASSERT_EQ(open_proc(d, &st, bad, 1, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, "unknown parameter \"pth\""));
  ASSERT_EQ(open_proc(d, &st, empty, 1, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, "empty"));
  ASSERT_EQ(open_proc(d, &st, twice, 2, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, "twice"));
  ASSERT_EQ(open_proc(d, &st, missing_dir, 1, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, missing_dir[0].value));
  ASSERT_NOT_NULL(strstr(msg, strerror(ENOENT)));
  ASSERT_EQ(open_proc(d, &st, dev, 1, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, "/dev/null: not a regular file"));
  /* A FIFO without a reader: refused at once, not waited on. */
  ASSERT_EQ(mkfifo(tdm_test_path("fifo"), 0644), 0);
  dev[0].value = tdm_test_path("fifo");
  ASSERT_EQ(open_proc(d, &st, dev, 1, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, dev[0].value));
}

TEST(file_write_commit_blob) {
  const tdm_processor_t *d = tdm__proc_file();
  const char *out = tdm_test_path("out");
  tdm_kv_t kv[] = {{"path", out}};
  char msg[TDM_MSG_MAX];
  char *got;
  void *st;

  ASSERT_EQ(open_proc(d, &st, kv, 1, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(file_size(out), 0); /* created */
  ASSERT_EQ(feed(d, st, 1, "a\n", 2, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 2, "bc\n", 3, msg), TDM_PROC_OK);
  ASSERT_EQ(commit_ok(d, st), 5);
  got = tdm_test_read(out, NULL);
  ASSERT_STR_EQ(got, "a\nbc\n");
  free(got);
  ASSERT_EQ(commit_ok(d, st), 5); /* nothing new */
  ASSERT_EQ(feed(d, st, 1, "d\n", 2, msg), TDM_PROC_OK);
  ASSERT_EQ(commit_ok(d, st), 7);
  d->close(st);
  got = tdm_test_read(out, NULL);
  ASSERT_STR_EQ(got, "a\nbc\nd\n");
  free(got);
}

/* Without a blob (first run), OUT's current content is kept and appended
   to; the first blob counts it. */
TEST(file_appends_to_existing) {
  const tdm_processor_t *d = tdm__proc_file();
  const char *out = tdm_test_path("out");
  tdm_kv_t kv[] = {{"path", out}};
  char msg[TDM_MSG_MAX];
  char *got;
  void *st;

  tdm_test_write(out, "old\n", 4);
  ASSERT_EQ(open_proc(d, &st, kv, 1, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, "new\n", 4, msg), TDM_PROC_OK);
  ASSERT_EQ(commit_ok(d, st), 8);
  d->close(st);
  got = tdm_test_read(out, NULL);
  ASSERT_STR_EQ(got, "old\nnew\n");
  free(got);
}

/* close() does not write what was accepted but never committed. */
TEST(file_close_does_not_flush) {
  const tdm_processor_t *d = tdm__proc_file();
  const char *out = tdm_test_path("out");
  tdm_kv_t kv[] = {{"path", out}};
  char msg[TDM_MSG_MAX];
  void *st;

  ASSERT_EQ(open_proc(d, &st, kv, 1, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, "a\n", 2, msg), TDM_PROC_OK);
  ASSERT_EQ(commit_ok(d, st), 2);
  ASSERT_EQ(feed(d, st, 1, "uncommitted\n", 12, msg), TDM_PROC_OK);
  d->close(st);
  ASSERT_EQ(file_size(out), 2);
}

/* A crash after bytes reached OUT but before the checkpoint: reopening with
   the last blob cuts them off, so the replay adds them exactly once. */
TEST(file_reopen_with_blob_truncates) {
  const tdm_processor_t *d = tdm__proc_file();
  const char *out = tdm_test_path("out");
  tdm_kv_t kv[] = {{"path", out}};
  size_t big_len = 300000; /* over the buffer: written at once */
  unsigned char *big = malloc(big_len);
  unsigned char blob[8];
  char msg[TDM_MSG_MAX];
  char *got;
  void *st;

  ASSERT_NOT_NULL(big);
  fill(big, 0, big_len);
  ASSERT_EQ(open_proc(d, &st, kv, 1, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, "one\n", 4, msg), TDM_PROC_OK);
  make_blob(blob, commit_ok(d, st));
  ASSERT_EQ(feed(d, st, 1, big, big_len, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, "tail\n", 5, msg), TDM_PROC_OK);
  d->close(st); /* "crash": no commit */
  ASSERT_EQ(file_size(out), 4 + big_len);
  tdm_test_append(out, "torn", 4); /* and whatever else got there */

  ASSERT_EQ(open_proc(d, &st, kv, 1, blob, 8, msg), TDM_PROC_OK);
  ASSERT_EQ(file_size(out), 4);
  ASSERT_EQ(feed(d, st, 1, "two\n", 4, msg), TDM_PROC_OK);
  ASSERT_EQ(commit_ok(d, st), 8);
  d->close(st);
  got = tdm_test_read(out, NULL);
  ASSERT_STR_EQ(got, "one\ntwo\n");
  free(got);

  /* A blob equal to the length: nothing to cut. */
  make_blob(blob, 8);
  ASSERT_EQ(open_proc(d, &st, kv, 1, blob, 8, msg), TDM_PROC_OK);
  ASSERT_EQ(commit_ok(d, st), 8);
  d->close(st);
  ASSERT_EQ(file_size(out), 8);
  free(big);
}

TEST(file_shorter_than_blob_fails) {
  const tdm_processor_t *d = tdm__proc_file();
  const char *out = tdm_test_path("out");
  tdm_kv_t kv[] = {{"path", out}};
  unsigned char blob[8];
  char msg[TDM_MSG_MAX], want[TDM_MSG_MAX];
  void *st;

  tdm_test_write(out, "0123456789", 10);
  make_blob(blob, 100);
  ASSERT_EQ(open_proc(d, &st, kv, 1, blob, 8, msg), TDM_PROC_FAIL);
  snprintf(want, sizeof(want),
           "%s is shorter (10 bytes) than its last checkpoint (100 bytes); "
           "refusing to guess",
           out);
  ASSERT_STR_EQ(msg, want);
  ASSERT_EQ(file_size(out), 10); /* untouched */

  /* A blob that is not ours. */
  ASSERT_EQ(open_proc(d, &st, kv, 1, blob, 3, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, out));
  ASSERT_NOT_NULL(strstr(msg, "restore point is 3 bytes"));

  /* A missing OUT with a blob: refused, and not created empty. */
  unlink(out);
  ASSERT_EQ(open_proc(d, &st, kv, 1, blob, 8, msg), TDM_PROC_FAIL);
  snprintf(want, sizeof(want),
           "%s is missing, but its last checkpoint has 100 bytes; refusing "
           "to guess",
           out);
  ASSERT_STR_EQ(msg, want);
  ASSERT_EQ(access(out, F_OK), -1);

  /* A blob of 0 bytes committed: a missing OUT is simply created. */
  make_blob(blob, 0);
  ASSERT_EQ(open_proc(d, &st, kv, 1, blob, 8, msg), TDM_PROC_OK);
  ASSERT_EQ(file_size(out), 0);
  d->close(st);
}

TEST(file_locked_against_second_writer) {
  const tdm_processor_t *d = tdm__proc_file();
  const char *out = tdm_test_path("out");
  tdm_kv_t kv[] = {{"path", out}};
  char msg[TDM_MSG_MAX];
  void *a, *b;

  ASSERT_EQ(open_proc(d, &a, kv, 1, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(open_proc(d, &b, kv, 1, NULL, 0, msg), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, out));
  ASSERT_NOT_NULL(strstr(msg, "in use"));
  d->close(a);
  ASSERT_EQ(open_proc(d, &b, kv, 1, NULL, 0, msg), TDM_PROC_OK);
  d->close(b);
}

/* Many chunks of every size around the 256 KiB buffer, committed at
   irregular points: OUT is exactly their concatenation. */
TEST(file_coalesces_chunks) {
  const tdm_processor_t *d = tdm__proc_file();
  const char *out = tdm_test_path("out");
  tdm_kv_t kv[] = {{"path", out}};
  static const size_t sizes[] = {1,          7,          100,   4096,
                                 262143,     262144,     262145, 300000,
                                 1u << 20,   131072};
  size_t cap = 8u << 20, total = 0, got_len;
  unsigned char *chunk = malloc(2u << 20);
  unsigned char *want = malloc(cap);
  char msg[TDM_MSG_MAX];
  char *got;
  void *st;

  ASSERT_NOT_NULL(chunk);
  ASSERT_NOT_NULL(want);
  ASSERT_EQ(open_proc(d, &st, kv, 1, NULL, 0, msg), TDM_PROC_OK);
  for (int i = 0; i < 200; i++) {
    size_t n = sizes[rnd() % 10];
    if (i % 3 == 0)
      n = (size_t)(rnd() % 200) + 1; /* mostly small, as in tail mode */
    if (total + n > cap)
      break;
    fill(chunk, total, n);
    ASSERT_EQ(feed(d, st, 1, chunk, n, msg), TDM_PROC_OK);
    memcpy(want + total, chunk, n);
    total += n;
    if (rnd() % 7 == 0)
      ASSERT_EQ(commit_ok(d, st), total);
  }
  ASSERT_EQ(commit_ok(d, st), total);
  d->close(st);
  got = tdm_test_read(out, &got_len);
  ASSERT_EQ(got_len, total);
  ASSERT_EQ(memcmp(got, want, total), 0);
  free(got);
  free(want);
  free(chunk);
}

/*
 * Write errors: OUT may not grow past 300000 bytes (RLIMIT_FSIZE, SIGXFSZ
 * ignored, so writes fail with EFBIG). Every failed write returns RETRY and
 * leaves no partial chunk; once the limit is lifted, the same instance goes
 * on and OUT is exactly what was accepted.
 */
static void write_errors_child(const char *out) {
  const tdm_processor_t *d = tdm__proc_file();
  tdm_kv_t kv[] = {{"path", out}};
  unsigned char blob[TDM_RESTORE_MAX];
  size_t blob_len;
  unsigned char *a = malloc(200000), *b = malloc(200000), *c = malloc(400000);
  struct rlimit rl;
  char msg[TDM_MSG_MAX];
  char *got;
  size_t got_len;
  void *st;

  ASSERT(a != NULL && b != NULL && c != NULL);
  fill(a, 0, 200000);
  fill(b, 200000, 200000);
  fill(c, 400000, 400000);
  signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &rl), 0);
  rl.rlim_cur = 300000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);

  ASSERT_EQ(open_proc(d, &st, kv, 1, NULL, 0, msg), TDM_PROC_OK);
  ASSERT_EQ(feed(d, st, 1, a, 200000, msg), TDM_PROC_OK); /* buffered */
  ASSERT_EQ(commit_ok(d, st), 200000);
  ASSERT_EQ(file_size(out), 200000);

  /* Buffered, then the commit's write fails half way: cut back, RETRY. */
  ASSERT_EQ(feed(d, st, 1, b, 200000, msg), TDM_PROC_OK);
  blob_len = sizeof(blob);
  ASSERT_EQ(d->commit(st, blob, &blob_len, msg), TDM_PROC_RETRY);
  ASSERT_EQ(blob_len, 0);
  ASSERT_NOT_NULL(strstr(msg, out));
  ASSERT_NOT_NULL(strstr(msg, ": write: "));
  ASSERT_NOT_NULL(strstr(msg, strerror(EFBIG)));
  ASSERT_EQ(file_size(out), 200000);

  /* A chunk that needs the buffer written first: refused whole. */
  ASSERT_EQ(feed(d, st, 1, c, 400000, msg), TDM_PROC_RETRY);
  ASSERT_NOT_NULL(strstr(msg, strerror(EFBIG)));
  ASSERT_EQ(file_size(out), 200000);

  /* Room again: the buffered chunk (accepted earlier) goes out. */
  rl.rlim_cur = rl.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
  ASSERT_EQ(commit_ok(d, st), 400000);
  ASSERT_EQ(file_size(out), 400000);

  /* A big chunk written directly (the buffer is empty) fails part way:
     nothing of it stays. */
  rl.rlim_cur = 500000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
  ASSERT_EQ(feed(d, st, 1, c, 400000, msg), TDM_PROC_RETRY);
  ASSERT_EQ(file_size(out), 400000);
  ASSERT_EQ(commit_ok(d, st), 400000);

  rl.rlim_cur = rl.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
  ASSERT_EQ(feed(d, st, 1, c, 400000, msg), TDM_PROC_OK);
  ASSERT_EQ(commit_ok(d, st), 800000);
  d->close(st);

  got = tdm_test_read(out, &got_len);
  ASSERT_EQ(got_len, 800000);
  ASSERT_EQ(memcmp(got, a, 200000), 0);
  ASSERT_EQ(memcmp(got + 200000, b, 200000), 0);
  ASSERT_EQ(memcmp(got + 400000, c, 400000), 0);
  free(got);
  free(a);
  free(b);
  free(c);
}

TEST(file_write_error_retries_without_partial_chunk) {
  const char *out = tdm_test_path("out");
  int status;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    write_errors_child(out);
    _exit(0);
  }
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    TDM_FAIL_("the child failed (status %#x)", status);
}
