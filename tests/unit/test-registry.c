/*
 * test-registry.c: the processor registry and plugin loader
 * (processors/registry.c) against the plugins of tests/plugins/ and the
 * template plugin.
 */
#include "test.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "processors/registry.h"

/* Every log line, one per '\n'. */
static char logged[65536];

static void capture(void *arg, tdm_log_level_t level, const char *msg) {
  size_t o = strlen(logged);
  (void)arg;
  (void)level;
  snprintf(logged + o, sizeof(logged) - o, "%s\n", msg);
}

static const tdm__log_t test_log = {TDM_LOG_DEBUG, capture, NULL};

/* Was a line logged that holds every one of the (NULL-terminated) words? */
static int logged_line_with(const char *w1, const char *w2, const char *w3) {
  const char *line = logged;
  while (*line != '\0') {
    const char *end = strchr(line, '\n');
    size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
    char buf[4096];
    snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
    if (strstr(buf, w1) != NULL && (w2 == NULL || strstr(buf, w2) != NULL) &&
        (w3 == NULL || strstr(buf, w3) != NULL))
      return 1;
    line += len + (end != NULL);
  }
  return 0;
}

static const char *nz(const char *s) { return s != NULL ? s : ""; }

#define ASSERT_LOGGED(w1, w2, w3)                                          \
  do {                                                                     \
    if (!logged_line_with((w1), (w2), (w3)))                               \
      TDM_FAIL_("no log line with \"%s\" \"%s\" \"%s\"; log:\n%s", (w1),   \
                nz(w2), nz(w3), logged);                                   \
  } while (0)

static const char *env_dir(const char *var) {
  const char *d = getenv(var);
  if (d == NULL)
    TDM_FAIL_("%s is not set (run through ctest)", var);
  return d;
}

/* ${TDM_TEST_PLUGINS}/<name> and ${TDM_TEST_PLUGINS}/<name>/<name>.so */
static const char *plugin_dir(const char *name) {
  static char buf[4][4096];
  static int next;
  char *b = buf[next++ & 3];
  snprintf(b, sizeof(buf[0]), "%s/%s", env_dir("TDM_TEST_PLUGINS"), name);
  return b;
}

static const char *plugin_so(const char *name) {
  static char buf[4][4096];
  static int next;
  char *b = buf[next++ & 3];
  snprintf(b, sizeof(buf[0]), "%s/%s/%s.so", env_dir("TDM_TEST_PLUGINS"),
           name, name);
  return b;
}

static tdm_registry_t *open_builtins(void) {
  tdm_registry_t *r = NULL;
  ASSERT_EQ(tdm_registry_open(NULL, &test_log, &r), 0);
  ASSERT_NOT_NULL(r);
  return r;
}

/* Load `name`'s plugin into a registry of built-ins: it must be refused,
   logged naming its .so and `why`, and leave the registry as it was. */
static void expect_refused(const char *name, const char *why,
                           const char *why2) {
  tdm_registry_t *r = open_builtins();
  const char *so = plugin_so(name);
  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_load(r, so), TDM_EABI);
  ASSERT_LOGGED(so, why, why2);
  ASSERT_LOGGED(so, "refused", NULL);
  ASSERT_EQ(tdm_registry_count(r), 4);
  ASSERT_NULL(tdm_registry_find(r, name));
  tdm_registry_close(r);
}

static int ok_process(void *state, const tdm_chunk_t *chunk, char *msg) {
  (void)state;
  (void)chunk;
  (void)msg;
  return TDM_PROC_OK;
}

TEST(builtins) {
  tdm_registry_t *r = open_builtins();
  const char *origin = NULL;
  const tdm_processor_t *d;

  ASSERT_EQ(tdm_registry_count(r), 4);
  d = tdm_registry_get(r, 0, &origin);
  ASSERT_STR_EQ(d->name, "stdout");
  ASSERT_STR_EQ(origin, "built-in");
  ASSERT_STR_EQ(tdm_registry_get(r, 1, NULL)->name, "count");
  ASSERT_STR_EQ(tdm_registry_get(r, 2, NULL)->name, "file");
  ASSERT_STR_EQ(tdm_registry_get(r, 3, NULL)->name, "exec");
  ASSERT_NULL(tdm_registry_get(r, 4, &origin));
  ASSERT_NULL(origin);
  for (size_t i = 0; i < 4; i++) {
    d = tdm_registry_get(r, i, NULL);
    ASSERT_EQ(d->abi_version, TDM_PROCESSOR_ABI_VERSION);
    ASSERT_NOT_NULL(d->process);
    ASSERT_NOT_NULL(d->summary);
    ASSERT(tdm_registry_find(r, d->name) == d);
  }
  ASSERT_NULL(tdm_registry_find(r, "nope"));
  ASSERT_NULL(tdm_registry_find(r, NULL));
  tdm_registry_close(r);
  tdm_registry_close(NULL);
  ASSERT_EQ(tdm_registry_count(NULL), 0);
}

TEST(refuse_bad_abi) {
  expect_refused("bad_abi", "ABI version 999", "expected 2");
}

TEST(refuse_too_small) {
  expect_refused("too_small", "descriptor size 8", "version-1 layout");
}

TEST(refuse_no_symbol) {
  expect_refused("no_symbol", "does not export", TDM_PROCESSOR_ENTRY_SYMBOL);
}

TEST(refuse_null_entry) { expect_refused("null_entry", "returned NULL", NULL); }

TEST(refuse_dup_name) {
  tdm_registry_t *r = open_builtins();
  const tdm_processor_t *builtin_count = tdm_registry_find(r, "count");
  const char *origin;
  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_load(r, plugin_so("dup_name")), TDM_EABI);
  ASSERT_LOGGED(plugin_so("dup_name"), "\"count\" is already registered",
                "built-in");
  ASSERT_EQ(tdm_registry_count(r), 4);
  ASSERT(tdm_registry_find(r, "count") == builtin_count);
  tdm_registry_get(r, 1, &origin);
  ASSERT_STR_EQ(origin, "built-in");
  tdm_registry_close(r);
}

TEST(refuse_not_a_library) {
  tdm_registry_t *r = open_builtins();
  const char *junk = tdm_test_path("junk.so");
  tdm_test_write(junk, "not an ELF file\n", 16);
  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_load(r, junk), TDM_EABI);
  ASSERT_LOGGED(junk, "dlopen failed", NULL);
  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_load(r, tdm_test_path("missing.so")), TDM_EABI);
  ASSERT_LOGGED("missing.so", "dlopen failed", NULL);
  ASSERT_EQ(tdm_registry_count(r), 4);
  tdm_registry_close(r);
}

TEST(load_good) {
  tdm_registry_t *r = open_builtins();
  const char *so = plugin_so("good");
  const tdm_processor_t *d;
  const char *origin;
  char msg[TDM_MSG_MAX] = "";
  tdm_chunk_t c = {.file_id = 1, .path = "x", .data = "abc", .len = 3};
  size_t *good_bytes;
  void *h;

  ASSERT_EQ(tdm_registry_load(r, so), 0);
  ASSERT_EQ(tdm_registry_count(r), 5);
  d = tdm_registry_find(r, "good");
  ASSERT_NOT_NULL(d);
  ASSERT(tdm_registry_get(r, 4, &origin) == d);
  ASSERT_STR_EQ(origin, so);
  ASSERT_NULL(d->open);
  ASSERT_NULL(d->commit);
  ASSERT_NULL(d->close);
  ASSERT_EQ(d->process(NULL, &c, msg), TDM_PROC_OK);

  /* It really ran inside the plugin. */
  h = dlopen(so, RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NOT_NULL(h);
  good_bytes = dlsym(h, "good_bytes");
  ASSERT_NOT_NULL(good_bytes);
  ASSERT_EQ(*good_bytes, 3);
  dlclose(h);

  /* Loading it again: the same name, refused naming the first origin. */
  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_load(r, so), TDM_EABI);
  ASSERT_LOGGED("\"good\" is already registered", so, NULL);
  ASSERT_EQ(tdm_registry_count(r), 5);
  tdm_registry_close(r);

  /* Unloaded with the registry. */
  ASSERT_NULL(dlopen(so, RTLD_NOW | RTLD_NOLOAD));
}

TEST(refused_plugin_is_unloaded) {
  tdm_registry_t *r = open_builtins();
  ASSERT_EQ(tdm_registry_load(r, plugin_so("bad_abi")), TDM_EABI);
  ASSERT_NULL(dlopen(plugin_so("bad_abi"), RTLD_NOW | RTLD_NOLOAD));
  ASSERT_EQ(tdm_registry_load(r, plugin_so("dup_name")), TDM_EABI);
  ASSERT_NULL(dlopen(plugin_so("dup_name"), RTLD_NOW | RTLD_NOLOAD));
  tdm_registry_close(r);
}

TEST(add_refusals) {
  tdm_registry_t *r = open_builtins();
  tdm_processor_t d = {.abi_version = TDM_PROCESSOR_ABI_VERSION,
                       .size = sizeof(tdm_processor_t),
                       .name = "mine",
                       .process = ok_process};
  tdm_processor_t bad;

  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_add(r, NULL, "unit-test"), TDM_EABI);
  ASSERT_LOGGED("unit-test", "no descriptor", NULL);

  bad = d;
  bad.abi_version = TDM_PROCESSOR_ABI_VERSION + 1;
  ASSERT_EQ(tdm_registry_add(r, &bad, "unit-test"), TDM_EABI);
  ASSERT_LOGGED("unit-test", "ABI version 3", "expected 2");

  bad = d;
  bad.size = (uint32_t)TDM_PROCESSOR_SIZE_V1 - 1;
  ASSERT_EQ(tdm_registry_add(r, &bad, "unit-test"), TDM_EABI);
  ASSERT_LOGGED("unit-test", "smaller than the version-1 layout", NULL);

  bad = d;
  bad.name = NULL;
  ASSERT_EQ(tdm_registry_add(r, &bad, "unit-test"), TDM_EABI);
  ASSERT_LOGGED("unit-test", "no name", NULL);
  bad.name = "";
  ASSERT_EQ(tdm_registry_add(r, &bad, "unit-test"), TDM_EABI);

  bad = d;
  bad.name = "Mine";
  ASSERT_EQ(tdm_registry_add(r, &bad, "unit-test"), TDM_EABI);
  ASSERT_LOGGED("unit-test", "\"Mine\" is not of [a-z0-9_-]+", NULL);
  bad.name = "a:b";
  ASSERT_EQ(tdm_registry_add(r, &bad, "unit-test"), TDM_EABI);
  bad.name = "new\nline";
  ASSERT_EQ(tdm_registry_add(r, &bad, "unit-test"), TDM_EABI);
  ASSERT_LOGGED("\"new\\nline\"", NULL, NULL);

  bad = d;
  bad.process = NULL;
  ASSERT_EQ(tdm_registry_add(r, &bad, "unit-test"), TDM_EABI);
  ASSERT_LOGGED("unit-test", "no process()", NULL);

  ASSERT_EQ(tdm_registry_count(r), 4);
  ASSERT_EQ(tdm_registry_add(r, &d, "unit-test"), 0);
  ASSERT_EQ(tdm_registry_count(r), 5);
  ASSERT_EQ(tdm_registry_add(r, &d, "other-test"), TDM_EABI);
  ASSERT_LOGGED("other-test", "\"mine\" is already registered", "unit-test");
  tdm_registry_close(r);
}

/* A descriptor from a newer plugin (same ABI, methods appended) is accepted;
   the registry copies only what this host knows. */
TEST(add_larger_descriptor) {
  tdm_registry_t *r = open_builtins();
  struct {
    tdm_processor_t p;
    void (*newer_method)(void);
  } big = {{.abi_version = TDM_PROCESSOR_ABI_VERSION,
            .size = sizeof(big),
            .name = "newer",
            .process = ok_process},
           NULL};
  const tdm_processor_t *d;
  ASSERT_EQ(tdm_registry_add(r, &big.p, "unit-test"), 0);
  d = tdm_registry_find(r, "newer");
  ASSERT_NOT_NULL(d);
  ASSERT(d != &big.p); /* a copy */
  ASSERT(d->process == ok_process);
  tdm_registry_close(r);
}

TEST(open_dir_good) {
  tdm_registry_t *r = NULL;
  const char *origin;
  ASSERT_EQ(tdm_registry_open(plugin_dir("good"), &test_log, &r), 0);
  ASSERT_EQ(tdm_registry_count(r), 5);
  ASSERT_STR_EQ(tdm_registry_get(r, 4, &origin)->name, "good");
  ASSERT_STR_EQ(origin, plugin_so("good"));
  tdm_registry_close(r);
}

TEST(open_dir_with_bad_plugin_warns) {
  static const char *bad[] = {"bad_abi", "too_small", "no_symbol",
                              "null_entry", "dup_name"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    tdm_registry_t *r = NULL;
    logged[0] = '\0';
    /* Skipped with a warning naming it; the built-ins are all there. */
    ASSERT_EQ(tdm_registry_open(plugin_dir(bad[i]), &test_log, &r), 0);
    ASSERT_NOT_NULL(r);
    ASSERT_LOGGED(plugin_so(bad[i]), "skipped", NULL);
    ASSERT_LOGGED(plugin_dir(bad[i]), "1 of 1 plugins skipped", NULL);
    ASSERT_NOT_NULL(tdm_registry_find(r, "count"));
    tdm_registry_close(r);
  }
}

/* One directory with every plugin: each bad one is reported (not just the
   first), in name order, and the good one is registered. */
TEST(open_dir_reports_every_refusal) {
  static const char *all[] = {"bad_abi",    "too_small", "no_symbol",
                              "null_entry", "dup_name",  "good"};
  tdm_registry_t *r = NULL;
  const char *dir = tdm_test_path("plugins");
  const char *p, *q;
  char link[4096];

  ASSERT_EQ(mkdir(dir, 0755), 0);
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    snprintf(link, sizeof(link), "%s/%s.so", dir, all[i]);
    ASSERT_EQ(symlink(plugin_so(all[i]), link), 0);
  }
  /* Not plugins: skipped. */
  snprintf(link, sizeof(link), "%s/README", dir);
  tdm_test_write(link, "x", 1);
  snprintf(link, sizeof(link), "%s/.hidden.so", dir);
  tdm_test_write(link, "x", 1);

  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_open(dir, &test_log, &r), 0);
  for (size_t i = 0; i < 5; i++) {
    snprintf(link, sizeof(link), "%s/%s.so", dir, all[i]);
    ASSERT_LOGGED(link, "skipped", NULL);
  }
  ASSERT_LOGGED(dir, "5 of 6 plugins skipped", NULL);
  ASSERT_NOT_NULL(tdm_registry_find(r, "good"));
  tdm_registry_close(r);
  ASSERT_NULL(strstr(logged, "README"));
  ASSERT_NULL(strstr(logged, "hidden"));
  /* Name order: bad_abi < dup_name < no_symbol < null_entry < too_small. */
  p = strstr(logged, "bad_abi.so");
  q = strstr(logged, "too_small.so");
  ASSERT(p != NULL && q != NULL && p < q);
}

/* Two files with one name: the first by file name wins, every time. */
TEST(open_dir_duplicate_is_deterministic) {
  tdm_registry_t *r = NULL;
  const char *dir = tdm_test_path("plugins");
  char a[4096], b[4096];
  ASSERT_EQ(mkdir(dir, 0755), 0);
  snprintf(a, sizeof(a), "%s/a.so", dir);
  snprintf(b, sizeof(b), "%s/b.so", dir);
  /* Created in the order opposite to the names. */
  ASSERT_EQ(symlink(plugin_so("good"), b), 0);
  ASSERT_EQ(symlink(plugin_so("good"), a), 0);
  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_open(dir, &test_log, &r), 0);
  ASSERT_LOGGED(b, "\"good\" is already registered", a);
  tdm_registry_close(r);
}

TEST(open_missing_dir) {
  tdm_registry_t *r = (tdm_registry_t *)&r;
  const char *dir = tdm_test_path("no-such-dir");
  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_open(dir, &test_log, &r), -ENOENT);
  ASSERT(r == (tdm_registry_t *)&r);
  ASSERT_LOGGED(dir, "No such file or directory", NULL);

  /* A file, not a directory. */
  tdm_test_write(tdm_test_path("f"), "x", 1);
  logged[0] = '\0';
  ASSERT_EQ(tdm_registry_open(tdm_test_path("f"), &test_log, &r), -ENOTDIR);
  ASSERT_LOGGED(tdm_test_path("f"), "Not a directory", NULL);
}

TEST(open_empty_dir) {
  tdm_registry_t *r = NULL;
  ASSERT_EQ(tdm_registry_open(tdm_test_dir, &test_log, &r), 0);
  ASSERT_EQ(tdm_registry_count(r), 4);
  tdm_registry_close(r);
}

/* The template plugin, through dlopen, like a user's plugin. */
TEST(template_loads_and_processes) {
  tdm_registry_t *r = NULL;
  const tdm_processor_t *d;
  const char *origin;
  const char *out = tdm_test_path("stdout");
  char msg[TDM_MSG_MAX] = "";
  tdm_kv_t kv[] = {{"prefix", ">> "}};
  tdm_open_args_t args = {.size = sizeof(args),
                          .mode = TDM_MODE_TAIL,
                          .params = kv,
                          .n_params = 1,
                          .msg = msg};
  unsigned char blob[TDM_RESTORE_MAX];
  size_t blob_len = sizeof(blob);
  void *st = NULL;
  tdm_chunk_t c = {.file_id = 7, .path = "/var/log/x.log", .offset = 0};
  char *got;
  int fd, saved;

  ASSERT_EQ(tdm_registry_open(env_dir("TDM_PLUGIN_DIR"), &test_log, &r), 0);
  d = tdm_registry_find(r, "template");
  ASSERT_NOT_NULL(d);
  tdm_registry_get(r, tdm_registry_count(r) - 1, &origin);
  ASSERT_NOT_NULL(strstr(origin, "template.so"));

  /* Its stdout goes to a file here. */
  fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  saved = dup(STDOUT_FILENO);
  ASSERT_EQ(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
  close(fd);

  ASSERT_EQ(d->open(&st, &args), TDM_PROC_OK);
  c.data = "one\ntwo\n";
  c.len = 8;
  ASSERT_EQ(d->process(st, &c, msg), TDM_PROC_OK);
  c.data = "three\n\nfour"; /* an empty line; a last line without '\n' */
  c.len = 11;
  ASSERT_EQ(d->process(st, &c, msg), TDM_PROC_OK);
  ASSERT_EQ(d->commit(st, blob, &blob_len, msg), TDM_PROC_OK);
  ASSERT_EQ(blob_len, 0);
  d->close(st);

  /* Default prefix. */
  args.n_params = 0;
  ASSERT_EQ(d->open(&st, &args), TDM_PROC_OK);
  c.data = "\nfive\n";
  c.len = 6;
  ASSERT_EQ(d->process(st, &c, msg), TDM_PROC_OK);
  d->close(st);

  ASSERT_EQ(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
  close(saved);
  got = tdm_test_read(out, NULL);
  ASSERT_STR_EQ(got, ">> one\n>> two\n>> three\n>> \n>> four> \n> five\n");
  free(got);

  /* A parameter it does not know: refused, naming the key. */
  kv[0].key = "prefx";
  args.n_params = 1;
  msg[0] = '\0';
  ASSERT_EQ(d->open(&st, &args), TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, "\"prefx\""));
  tdm_registry_close(r);
}
