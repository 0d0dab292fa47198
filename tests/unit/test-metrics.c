/*
 * test-metrics.c: engine/metrics.c: the Prometheus text of a tdm_t,
 * --metrics-file written at every checkpoint, and "ADDR:PORT" parsing.
 */
#include "test.h"

#include "engine/engine.h"
#include "engine/metrics.h"
#include "tidemark.h"

#include <errno.h>
#include <sys/stat.h>

static int on_chunk(void *arg, const tdm_chunk_t *c) {
  (void)arg;
  (void)c;
  return TDM_PROC_OK;
}

static void quiet(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  (void)level;
  (void)msg;
}

static tdm_t *open_with(const char *metrics_file) {
  tdm_options_t o;
  tdm_t *t;

  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.metrics_file = metrics_file;
  o.log_cb = getenv("TDM_TEST_LOG") ? NULL : quiet;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  return t;
}

/* The checkpoint tdm_close makes (a processor's first restore point, no pass
   ever run) writes --metrics-file too. */
TEST(file_written_by_close_checkpoint) {
  const char *path = tdm_test_path("metrics.prom");
  struct stat st;
  tdm_t *t = open_with(path);

  ASSERT_EQ(tdm_add_processor(t, "count"), 0); /* a first restore point */
  ASSERT_NE(stat(path, &st), 0);
  tdm_close(t);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_GT(st.st_size, 0);
}

/* After a pass the file holds the counters, with the processor's label. */
TEST(file_after_pass_has_counters) {
  char path[4096];
  size_t len;
  char *text;
  tdm_t *t;

  snprintf(path, sizeof(path), "%s", tdm_test_path("metrics.prom"));
  t = open_with(path);
  ASSERT_EQ(mkdir(tdm_test_path("src"), 0755), 0);
  tdm_test_write(tdm_test_path("src/a.log"), "one\ntwo\n", 8);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "cb", on_chunk, NULL), 0);
  ASSERT_EQ(tdm_run_once(t), 0);
  text = tdm_test_read(path, &len);
  ASSERT_NOT_NULL(text);
  ASSERT_NOT_NULL(strstr(text, "tidemark_bytes_delivered_total{processor=\"cb\"} 8\n"));
  free(text);
  tdm_close(t);
}

/* Rendered text: every sample line is NAME[{labels}] VALUE, every family
   has # HELP and # TYPE. */
TEST(render_is_exposition_format) {
  tdm_t *t = open_with(NULL);
  char *text, *line, *save = NULL;
  size_t len;
  uint64_t tracked = 99, pending = 99;

  ASSERT_EQ(tdm__metrics_render(t, &text, &len, &tracked, &pending), 0);
  ASSERT_EQ(strlen(text), len);
  ASSERT_EQ(tracked, 0);
  ASSERT_EQ(pending, 0);
  for (line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#') {
      ASSERT(strncmp(line, "# HELP tidemark_", 16) == 0 ||
             strncmp(line, "# TYPE tidemark_", 16) == 0);
      continue;
    }
    ASSERT(strncmp(line, "tidemark_", 9) == 0);
    ASSERT_NOT_NULL(strchr(line, ' '));
  }
  free(text);
  tdm_close(t);
}

/* A file that cannot be written is an error naming nothing worse: the old
   file stays, the call returns -errno. */
TEST(write_file_into_missing_dir) {
  tdm_t *t = open_with(NULL);
  ASSERT_EQ(tdm__metrics_write_file(t, tdm_test_path("no/such/m.prom"), "x\n", 2),
            -ENOENT);
  ASSERT_EQ(tdm__metrics_write_file(t, tdm_test_path("m.prom"), "x\n", 2), 0);
  tdm_close(t);
}
