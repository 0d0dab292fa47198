/*
 * test-api.c: the library's ABI promises (include/tidemark.h): option and
 * stats structs that carry their size, so a program built against an older,
 * smaller layout keeps working when fields are appended.
 */
#include "test.h"
#include "tidemark.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int seen;

static int on_chunk(void *arg, const tdm_chunk_t *c) {
  (void)arg;
  seen += (int)c->len;
  ASSERT_EQ(c->size, sizeof(tdm_chunk_t));
  return TDM_PROC_OK;
}

static void quiet(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  (void)level;
  (void)msg;
}

/* Options as a program built against the first sized layout passes them:
   `size` says TDM_OPTIONS_SIZE_V1, and whatever lies beyond is not its. */
TEST(options_older_smaller_size) {
  union {
    tdm_options_t o;
    unsigned char bytes[sizeof(tdm_options_t) + 64];
  } u;
  tdm_options_t cur;
  tdm_t *t;

  tdm_options_init(&cur);
  ASSERT_EQ(cur.size, sizeof(tdm_options_t));
  memset(&u, 0xA5, sizeof(u)); /* garbage past the old layout */
  memcpy(&u, &cur, TDM_OPTIONS_SIZE_V1);
  u.o.size = (uint32_t)TDM_OPTIONS_SIZE_V1;
  u.o.state_dir = tdm_test_path("state");
  u.o.log_cb = quiet;
  ASSERT_EQ(mkdir(tdm_test_path("src"), 0755), 0);
  tdm_test_write(tdm_test_path("src/a.log"), "one\ntwo\n", 8);

  ASSERT_EQ(tdm_open(&u.o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "cb", on_chunk, NULL), 0);
  ASSERT_EQ(tdm_run_once(t), 0);
  ASSERT_EQ(seen, 8);
  tdm_close(t);
}

/* A struct that was never initialised (size 0) or is smaller than any
   layout is refused, not read past its end. */
TEST(options_too_small_refused) {
  tdm_options_t o;
  tdm_t *t = NULL;

  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.log_cb = quiet;
  o.size = 8;
  ASSERT_EQ(tdm_open(&o, &t), TDM_EUSAGE);
  ASSERT_NULL(t);
  o.size = 0;
  ASSERT_EQ(tdm_open(&o, &t), TDM_EUSAGE);
  ASSERT_NULL(t);
}

/* tdm_get_stats fills only the caller's `size` bytes. */
TEST(stats_older_smaller_size) {
  union {
    tdm_stats_t s;
    unsigned char bytes[sizeof(tdm_stats_t)];
  } u;
  tdm_options_t o;
  tdm_t *t;
  size_t small = offsetof(tdm_stats_t, bytes) + sizeof(uint64_t);

  tdm_options_init(&o);
  o.state_dir = tdm_test_path("state");
  o.log_cb = quiet;
  ASSERT_EQ(mkdir(tdm_test_path("src"), 0755), 0);
  tdm_test_write(tdm_test_path("src/a.log"), "abc\n", 4);
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "cb", on_chunk, NULL), 0);
  ASSERT_EQ(tdm_run_once(t), 0);

  memset(&u, 0xA5, sizeof(u));
  u.s.size = (uint32_t)small;
  tdm_get_stats(t, &u.s);
  ASSERT_EQ(u.s.size, small);
  ASSERT_EQ(u.s.bytes, 4);
  ASSERT_EQ(u.s.files_new, 1);
  for (size_t i = small; i < sizeof(u.bytes); i++)
    ASSERT_EQ(u.bytes[i], 0xA5);

  tdm_stats_init(&u.s);
  tdm_get_stats(t, &u.s);
  ASSERT_EQ(u.s.size, sizeof(tdm_stats_t));
  ASSERT_EQ(u.s.files_tracked, 1);
  tdm_close(t);
}

TEST(version_from_project) {
  ASSERT_STR_EQ(tdm_version(), TDM_VERSION_STRING);
  ASSERT_EQ(TDM_PROCESSOR_ABI_VERSION, 2);
}

static char said[4096];

static void keep(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  (void)level;
  snprintf(said, sizeof(said), "%s", msg);
}

/* tdm_open is where globs, --metrics and --on-done/--on-failed are checked
   (the command passes them on unchecked): refused with TDM_EUSAGE and one
   message naming the option and the value. */
TEST(bad_values_refused_naming_the_option) {
  static const struct {
    int field; /* 0 include, 1 exclude, 2 metrics, 3 on_done, 4 on_failed */
    const char *value, *option;
  } bad[] = {
    {0, "[", "--include"},         {1, "a[bc", "--exclude"},
    {0, "x\\", "--include"},       {2, "nowhere", "--metrics"},
    {2, "1.2.3.4:0", "--metrics"}, {3, "bin", "--on-done"},
    {3, "move:", "--on-done"},     {4, "delete", "--on-failed"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    const char *one[1] = {bad[i].value};
    tdm_options_t o;
    tdm_t *t = NULL;

    tdm_options_init(&o);
    o.state_dir = tdm_test_path("state");
    o.log_cb = keep;
    o.mode = TDM_MODE_WHOLE;
    switch (bad[i].field) {
    case 0: o.include = one; o.n_include = 1; break;
    case 1: o.exclude = one; o.n_exclude = 1; break;
    case 2: o.metrics_listen = bad[i].value; break;
    case 3: o.on_done = bad[i].value; break;
    default: o.on_failed = bad[i].value; break;
    }
    said[0] = '\0';
    ASSERT_EQ(tdm_open(&o, &t), TDM_EUSAGE);
    ASSERT_NULL(t);
    if (strstr(said, bad[i].option) == NULL)
      TDM_FAIL_("%s '%s': the message \"%s\" does not name the option",
                bad[i].option, bad[i].value, said);
  }
}

/* tdm_processors_list: the built-ins, in one allocation freed by tdm_free. */
TEST(processors_list_has_builtins) {
  tdm_processor_info_t *v = NULL;
  size_t n = 0;
  int seen_count = 0, seen_file = 0;

  ASSERT_EQ(tdm_processors_list(NULL, &v, &n), 0);
  ASSERT_NOT_NULL(v);
  ASSERT_GE(n, 3);
  for (size_t i = 0; i < n; i++) {
    ASSERT_NOT_NULL(v[i].origin);
    ASSERT_NOT_NULL(v[i].summary);
    seen_count += strcmp(v[i].name, "count") == 0;
    seen_file += strcmp(v[i].name, "file") == 0 &&
                 strcmp(v[i].origin, "built-in") == 0;
  }
  ASSERT_EQ(seen_count, 1);
  ASSERT_EQ(seen_file, 1);
  tdm_free(v);
}

/* A plugin directory that is not there: -errno, said through the sink. */
TEST(processors_list_bad_dir_through_the_sink) {
  tdm_processor_info_t *v = (tdm_processor_info_t *)&v;
  tdm_options_t o;
  size_t n = 7;

  tdm_options_init(&o);
  o.plugin_dir = tdm_test_path("no-such-dir");
  o.log_cb = keep;
  said[0] = '\0';
  ASSERT_LT(tdm_processors_list(&o, &v, &n), 0);
  ASSERT_NULL(v);
  ASSERT_EQ(n, 0);
  ASSERT_NOT_NULL(strstr(said, "no-such-dir"));
}

/* tdm_status_write and tdm_reset_paths log through the options' sink, not
   stderr; reset counts the PATHs that matched nothing. */
TEST(status_and_reset_through_the_sink) {
  tdm_options_t o;
  tdm_t *t;
  char *out = NULL;
  size_t len = 0, forgotten = 9, untracked = 9;
  FILE *f;
  const char *none[1];
  char nowhere[4096], state[4096];

  tdm_options_init(&o);
  o.state_dir = tdm_test_path("nostate");
  o.log_cb = keep;
  said[0] = '\0';
  f = open_memstream(&out, &len);
  ASSERT_EQ(tdm_status_write(&o, TDM_STATUS_JSON, f), -ENOENT);
  fclose(f);
  free(out);
  ASSERT_NOT_NULL(strstr(said, "nostate"));

  snprintf(state, sizeof(state), "%s", tdm_test_path("state"));
  o.state_dir = state;
  ASSERT_EQ(mkdir(tdm_test_path("src"), 0755), 0);
  tdm_test_write(tdm_test_path("src/a.log"), "one\n", 4);
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "cb", on_chunk, NULL), 0);
  ASSERT_EQ(tdm_run_once(t), 0);
  tdm_close(t);

  f = open_memstream(&out, &len);
  ASSERT_EQ(tdm_status_write(&o, TDM_STATUS_TABLE, f), 0);
  fclose(f);
  ASSERT_NOT_NULL(strstr(out, "a.log"));
  free(out);

  snprintf(nowhere, sizeof(nowhere), "%s", tdm_test_path("elsewhere"));
  none[0] = nowhere;
  said[0] = '\0';
  if (tdm_reset_paths(&o, none, 1, &forgotten, &untracked) != 0)
    TDM_FAIL_("reset: %s", said);
  ASSERT_EQ(forgotten, 0);
  ASSERT_EQ(untracked, 1);
  ASSERT_NOT_NULL(strstr(said, "not tracked"));
  ASSERT_EQ(tdm_reset_paths(&o, NULL, 0, &forgotten, &untracked), 0);
  ASSERT_EQ(forgotten, 1);
  ASSERT_EQ(untracked, 0);
}
