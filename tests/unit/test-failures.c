/*
 * test-failures.c: a processor that fails in the middle of a chunk is rolled
 * back to its last restore point before anything is offered to it again
 * (engine/chain.c, engine/checkpoint.c), delivery narrows down to the record
 * refused (engine/reader.c), and with --dead-letter that record is set aside
 * once (engine/deadletter.c). The processor is a host descriptor
 * (tdm_add_processor_desc) that writes each line to a real output file as
 * it goes, like a database sink inserting rows, so a failure halfway leaves
 * rows behind that only a rollback removes.
 */
#include "probe.h"

#include <fcntl.h>
#include <unistd.h>

/* The sink: appends line by line to `out` at `written`; fails (or rejects)
   a line holding "BAD" while `broken`. Blob: the committed length. */
typedef struct sink {
  int fd;
  uint64_t written, committed;
  int broken;     /* refuse lines holding "BAD" */
  int reject;     /* ... with TDM_PROC_REJECT rather than FAIL */
  int opens, refusals;
  char out[4096];
} sink_t;

static sink_t sink;

static int sink_open(void **state, const tdm_open_args_t *a) {
  sink_t *s = &sink;
  uint64_t len = 0;
  *state = s;
  s->opens++;
  if (s->fd <= 0)
    s->fd = open(s->out, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(s->fd, 0);
  if (a->restore_len == 8)
    memcpy(&len, a->restore, 8);
  else
    len = (uint64_t)lseek(s->fd, 0, SEEK_END);
  ASSERT_EQ(ftruncate(s->fd, (off_t)len), 0); /* back to the restore point */
  s->written = s->committed = len;
  return TDM_PROC_OK;
}

static int sink_process(void *state, const tdm_chunk_t *c, char *msg) {
  sink_t *s = state;
  const char *p = c->data, *end = p + c->len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
    if (s->broken && memmem(p, n, "BAD", 3) != NULL) {
      s->refusals++;
      snprintf(msg, TDM_MSG_MAX, "cannot parse \"%.*s\"", (int)(n - 1), p);
      return s->reject ? TDM_PROC_REJECT : TDM_PROC_FAIL; /* rows before
                                                            it are written */
    }
    ASSERT_EQ(pwrite(s->fd, p, n, (off_t)s->written), (ssize_t)n);
    s->written += n;
    p += n;
  }
  return TDM_PROC_OK;
}

static int sink_commit(void *state, void *restore, size_t *len, char *msg) {
  sink_t *s = state;
  (void)msg;
  ASSERT_EQ(fdatasync(s->fd), 0);
  s->committed = s->written;
  memcpy(restore, &s->committed, 8);
  *len = 8;
  return TDM_PROC_OK;
}

static void sink_close(void *state) { (void)state; }

static const tdm_processor_t sink_desc = {
    TDM_PROCESSOR_HEADER,
    .name = "sink",
    .open = sink_open,
    .process = sink_process,
    .commit = sink_commit,
    .close = sink_close,
};

static int sink_run(const char *dead_letter, uint32_t max_tries,
                    tdm_stats_t *st) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  int rc;
  o.dead_letter = dead_letter;
  o.max_tries = max_tries;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_processor_desc(t, &sink_desc, "sink", NULL), 0);
  rc = tdm_run_once(t);
  if (st != NULL) {
    tdm_stats_init(st);
    tdm_get_stats(t, st);
  }
  tdm_close(t);
  return rc;
}

static void sink_reset(void) {
  if (sink.fd > 0)
    close(sink.fd);
  memset(&sink, 0, sizeof(sink));
  snprintf(sink.out, sizeof(sink.out), "%s", tdm_test_path("out.txt"));
}

/* How many lines of `text` (len bytes) equal `line` (with its newline). */
static int count_line(const char *text, size_t len, const char *line) {
  size_t n = strlen(line);
  int k = 0;
  for (size_t i = 0; i + n <= len; i++)
    if ((i == 0 || text[i - 1] == '\n') && memcmp(text + i, line, n) == 0)
      k++;
  return k;
}

/* The case: a,b,BAD,c in one chunk, the sink fails at BAD after
   writing a and b; then it is fixed. 0 lost, 0 duplicated, and another file
   read in the same pass is not lost either. */
TEST(failure_mid_chunk_rolls_back_then_fixed) {
  tdm_stats_t st;
  char *out;
  size_t len;

  sink_reset();
  tdm_test_write(src("a.log"), "a\nb\nBAD\nc\n", 10);
  tdm_test_write(src("b.log"), "x\ny\n", 4);
  sink.broken = 1;
  ASSERT_EQ(sink_run(NULL, 2, &st), TDM_EPARTIAL);
  ASSERT_GE(st.proc_failures, 2);
  ASSERT_EQ(st.dead_letters, 0);
  ASSERT_GE(sink.opens, 3); /* reopened from its restore point each time */
  out = tdm_test_read(sink.out, &len);
  ASSERT_EQ(count_line(out, len, "a\n"), 1);
  ASSERT_EQ(count_line(out, len, "b\n"), 1);
  ASSERT_EQ(count_line(out, len, "BAD\n"), 0);
  ASSERT_EQ(count_line(out, len, "c\n"), 0); /* the file stops before BAD */
  ASSERT_EQ(count_line(out, len, "x\n"), 1);
  ASSERT_EQ(count_line(out, len, "y\n"), 1);
  free(out);

  sink.broken = 0; /* fixed */
  ASSERT_EQ(sink_run(NULL, 2, &st), 0);
  out = tdm_test_read(sink.out, &len);
  ASSERT_EQ(len, 14);
  ASSERT_EQ(count_line(out, len, "a\n"), 1);
  ASSERT_EQ(count_line(out, len, "b\n"), 1);
  ASSERT_EQ(count_line(out, len, "BAD\n"), 1);
  ASSERT_EQ(count_line(out, len, "c\n"), 1);
  ASSERT_EQ(count_line(out, len, "x\n"), 1);
  ASSERT_EQ(count_line(out, len, "y\n"), 1);
  ASSERT_NOT_NULL(memmem(out, len, "a\nb\n", 4));
  ASSERT_NOT_NULL(memmem(out, len, "BAD\nc\n", 6)); /* in the file's order */
  free(out);
}

/* With a dead-letter file: BAD is set aside once (max_tries refusals of it
   alone), the rest of its file goes on, exactly once; a second run adds
   nothing. */
TEST(dead_letter_sets_the_record_aside_once) {
  char dl[4096], *out, *text;
  size_t len, dlen;
  tdm_stats_t st;

  sink_reset();
  snprintf(dl, sizeof(dl), "%s", tdm_test_path("dead.jsonl"));
  static const char input[] = "a\nb\nBAD \xff\"x\nc\n";
  tdm_test_write(src("a.log"), input, sizeof(input) - 1);
  sink.broken = 1;
  ASSERT_EQ(sink_run(dl, 3, &st), 0);
  ASSERT_EQ(st.dead_letters, 1);
  ASSERT_EQ(sink.refusals, 1 + 3); /* the chunk, then BAD alone 3 times */
  out = tdm_test_read(sink.out, &len);
  ASSERT_EQ(len, 6);
  ASSERT_EQ(memcmp(out, "a\nb\nc\n", 6), 0);
  free(out);
  text = tdm_test_read(dl, &dlen);
  ASSERT_EQ(count_line(text, dlen, "{"), 1);
  ASSERT_NOT_NULL(strstr(text, "\"offset\":4,\"length\":8,"));
  ASSERT_NOT_NULL(strstr(text, "\"processor\":\"sink\""));
  ASSERT_NOT_NULL(strstr(text, "\"data\":\"BAD \\udcff\\\"x\\n\""));
  ASSERT_NOT_NULL(strstr(text, "\"error\":\"cannot parse"));
  ASSERT_NOT_NULL(strstr(text, "\"time\":\"20"));
  ASSERT_NOT_NULL(strstr(text, "a.log\""));
  free(text);

  ASSERT_EQ(sink_run(dl, 3, &st), 0); /* nothing new */
  ASSERT_EQ(st.dead_letters, 0);
  text = tdm_test_read(dl, &dlen);
  ASSERT_EQ(count_line(text, dlen, "{"), 1);
  free(text);
}

/* TDM_PROC_REJECT: set aside without the retries FAIL gets. */
TEST(reject_goes_straight_to_the_dead_letter_file) {
  char dl[4096], *text;
  size_t dlen;
  tdm_stats_t st;

  sink_reset();
  snprintf(dl, sizeof(dl), "%s", tdm_test_path("dead.jsonl"));
  tdm_test_write(src("a.log"), "a\nBAD\nb\nBAD2\nc\n", 15);
  sink.broken = 1;
  sink.reject = 1;
  ASSERT_EQ(sink_run(dl, 100, &st), 0);
  ASSERT_EQ(st.dead_letters, 2);
  ASSERT_LE(sink.refusals, 4); /* each: in its chunk, then alone */
  text = tdm_test_read(dl, &dlen);
  ASSERT_EQ(count_line(text, dlen, "{"), 2);
  free(text);
  text = tdm_test_read(sink.out, &dlen);
  ASSERT_EQ(dlen, 6);
  ASSERT_EQ(memcmp(text, "a\nb\nc\n", 6), 0);
  free(text);
}

/* A dead-letter file that cannot be written: tdm_open says so. */
TEST(unwritable_dead_letter_is_a_usage_error) {
  tdm_options_t o = probe_options();
  tdm_t *t = NULL;
  o.dead_letter = "/nonexistent-dir/dead.jsonl";
  ASSERT_EQ(tdm_open(&o, &t), TDM_EUSAGE);
  o.dead_letter = tdm_test_path("");
  ASSERT_EQ(tdm_open(&o, &t), TDM_EUSAGE); /* a directory */
  o.dead_letter = NULL;
  o.max_tries = 0;
  ASSERT_EQ(tdm_open(&o, &t), TDM_EUSAGE);
}
