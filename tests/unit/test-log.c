/*
 * test-log.c: watcher/base/log.c: UTF-8 checks, quoting names for a log line
 * and back, and the lines the default sink and tdm_log_line write (with and
 * without journald's priority prefix).
 */
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

TEST(utf8_and_quote_round_trip) {
  static const char *const bad[] = {
    "\xff", "\xc3", "a\xc3(", "\xc0\xaf" /* overlong '/' */,
    "\xed\xa0\x80" /* surrogate */, "\xf4\x90\x80\x80" /* > U+10FFFF */,
    "\xe2\x82" /* cut */};
  static const char *const good[] = {"", "ascii", "caf\xc3\xa9",
                                     "\xf4\x8f\xbf\xbf", "\xef\xbf\xbd"};
  char buf[256];
  char *back;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ASSERT_EQ(tdm__utf8_valid(bad[i]), 0);
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    ASSERT_EQ(tdm__utf8_valid(good[i]), 1);
  ASSERT_STR_EQ(tdm__quote("bad\xff\xfe \xc3\xa9 a\\b\n", buf, sizeof(buf)),
                "bad\\xff\\xfe \xc3\xa9 a\\\\b\\n");
  back = tdm__unquote(buf);
  ASSERT_NOT_NULL(back);
  ASSERT_STR_EQ(back, "bad\xff\xfe \xc3\xa9 a\\b\n");
  free(back);
  ASSERT_NULL(tdm__unquote("no escape"));
  ASSERT_NULL(tdm__unquote("bad \\q escape"));
  ASSERT_NULL(tdm__unquote("nul \\x00"));
}

/* Point stderr at a file of the test directory; returns its path. */
static const char *stderr_to_file(const char *name) {
  const char *p = tdm_test_path(name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT(fd >= 0);
  ASSERT_EQ(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  close(fd);
  return p;
}

/* Without journald: the sink's lines say "tidemark: LEVEL:", the caller's
   own lines are written as they are. */
TEST(stderr_lines_plain) {
  char path[4096];
  size_t len;
  char *text;

  unsetenv("JOURNAL_STREAM");
  snprintf(path, sizeof(path), "%s", stderr_to_file("err"));
  tdm__log(NULL, TDM_LOG_ERROR, "x %d: bad", 1);
  tdm_log_stderr(NULL, TDM_LOG_WARN, "careful");
  tdm_log_line(TDM_LOG_INFO, "tidemark: once: 1 dir, processors: count");
  text = tdm_test_read(path, &len);
  ASSERT_STR_EQ(text, "tidemark: error: x 1: bad\n"
                      "tidemark: warning: careful\n"
                      "tidemark: once: 1 dir, processors: count\n");
  free(text);
}

/* JOURNAL_STREAM naming stderr: every line starts with its <N> priority,
   the sink's and the caller's own alike. */
TEST(stderr_lines_journald) {
  char path[4096], js[64];
  struct stat st;
  size_t len;
  char *text;

  snprintf(path, sizeof(path), "%s", stderr_to_file("err"));
  ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
  snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
           (unsigned long long)st.st_ino);
  setenv("JOURNAL_STREAM", js, 1);
  tdm__log(NULL, TDM_LOG_ERROR, "x %d: bad", 1);
  tdm_log_stderr(NULL, TDM_LOG_DEBUG, "detail");
  tdm_log_line(TDM_LOG_INFO, "tidemark: once: 1 dir, processors: count");
  tdm_log_line(TDM_LOG_ERROR, "tidemark: error: it failed");
  text = tdm_test_read(path, &len);
  ASSERT_STR_EQ(text, "<3>x 1: bad\n<7>detail\n"
                      "<6>tidemark: once: 1 dir, processors: count\n"
                      "<3>tidemark: error: it failed\n");
  free(text);
}

static char got[256];
static int got_level = -1;

static void sink(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  got_level = (int)level;
  snprintf(got, sizeof(got), "%s", msg);
}

/* A sink gets the formatted line; lines above its level never reach it. */
TEST(sink_and_threshold) {
  tdm__log_t log = {TDM_LOG_WARN, sink, NULL};
  tdm__info(&log, "dropped %s", "line");
  ASSERT_EQ(got_level, -1);
  tdm__warn(&log, "kept %s", "line");
  ASSERT_EQ(got_level, TDM_LOG_WARN);
  ASSERT_STR_EQ(got, "kept line");
}

/* tdm_quote is tdm__quote, for programs outside the library. */
TEST(public_quote) {
  char a[64], b[64];
  ASSERT_STR_EQ(tdm_quote("a\nb\xff", a, sizeof(a)),
                tdm__quote("a\nb\xff", b, sizeof(b)));
  ASSERT_STR_EQ(a, "a\\nb\\xff");
}
