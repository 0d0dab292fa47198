/*
 * test-outputs.c: watcher/engine/outputs.c, our processors' own output files
 * are never read back as input: known by identity (a hard link to one is
 * skipped too, a file of the same name elsewhere is not), and one created
 * after the list was made is found when first met.
 */
#include "test.h"

#include "engine/engine.h"
#include "engine/outputs.h"
#include "tidemark.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void quiet(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  (void)level;
  (void)msg;
}

static char state[4096], srcdir[4096], out[4200], spec[4300];

static tdm_t *open_with_file_output(void) {
  tdm_options_t o;
  tdm_t *t;

  tdm_options_init(&o);
  snprintf(state, sizeof(state), "%s", tdm_test_path("state"));
  snprintf(srcdir, sizeof(srcdir), "%s", tdm_test_path("src"));
  snprintf(out, sizeof(out), "%s/out.log", srcdir);
  snprintf(spec, sizeof(spec), "file:path=%s", out);
  mkdir(srcdir, 0755);
  o.state_dir = state;
  o.log_cb = quiet;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, srcdir), 0);
  ASSERT_EQ(tdm_add_processor(t, spec), 0);
  return t;
}

static int skip(tdm_t *t, const char *path, int fresh) {
  struct stat st;
  ASSERT_EQ(stat(path, &st), 0);
  return tdm__outputs_skip(t, path, &st, fresh);
}

TEST(known_by_identity) {
  tdm_t *t = open_with_file_output();
  char hard[4300], other[4300];

  ASSERT_EQ(tdm__outputs_collect(t), 0);
  ASSERT_EQ(t->outputs.n, 1);
  ASSERT_STR_EQ(t->outputs.v[0].path, out);
  tdm_test_write(out, "x\n", 2); /* the processor may not have made it yet */
  ASSERT(skip(t, out, 1));
  snprintf(hard, sizeof(hard), "%s/again.log", srcdir);
  ASSERT_EQ(link(out, hard), 0);
  ASSERT(skip(t, hard, 0)); /* the same inode */
  snprintf(other, sizeof(other), "%s/sub", srcdir);
  ASSERT_EQ(mkdir(other, 0755), 0);
  snprintf(other, sizeof(other), "%s/sub/out.log", srcdir);
  tdm_test_write(other, "y\n", 2);
  ASSERT(!skip(t, other, 1)); /* the same name, another file */
  tdm_close(t);
}

/* A pass over the source delivers the other files, never OUT itself. */
TEST(never_read_back) {
  tdm_t *t = open_with_file_output();
  char in[4300];
  size_t len;
  char *text;

  snprintf(in, sizeof(in), "%s/in.log", srcdir);
  tdm_test_write(in, "hello\n", 6);
  ASSERT_EQ(tdm_run_once(t), 0);
  ASSERT_EQ(tdm_run_once(t), 0); /* OUT now exists: still not input */
  tdm_close(t);
  text = tdm_test_read(out, &len);
  ASSERT_EQ(len, 6);
  ASSERT(memcmp(text, "hello\n", 6) == 0);
  free(text);
}
