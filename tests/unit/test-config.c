/*
 * test-config.c: the command's configuration (watcher/cli/config.c) and its
 * status/reset commands (watcher/cli/status.c), linked from tdm_cli over
 * libtidemark (the store is seeded through state/store.h).
 */
#include "test.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/store.h"
#include "cli/config.h"

/* ---- helpers ------------------------------------------------------------- */

/* Parse a NULL-terminated argument vector (argv[0] is added). */
static int parse_v(tdm_config_t *c, char *err, size_t cap,
                   const char *const *args) {
  char *argv[64];
  int argc = 0;
  int rc;
  argv[argc++] = strdup("tidemark");
  for (; *args != NULL; args++)
    argv[argc++] = strdup(*args);
  argv[argc] = NULL;
  rc = tdm__config_parse(c, argc, argv, err, cap);
  for (int i = 0; i < argc; i++)
    free(argv[i]);
  return rc;
}

#define PARSE(c, err, ...) \
  parse_v((c), (err), sizeof(err), (const char *const[]){__VA_ARGS__, NULL})

/* Parse what must succeed; the config must be freed by the caller. */
#define PARSE_OK(c, ...)                                             \
  do {                                                               \
    char err_[512] = "";                                             \
    int rc_ = PARSE((c), err_, __VA_ARGS__);                         \
    if (rc_ != 0)                                                    \
      TDM_FAIL_("parse failed: rc %d: %s", rc_, err_);               \
  } while (0)

/* Parse what must fail with TDM_EUSAGE and a message holding each of the
   given substrings. */
static void parse_bad_v(const char *const *args, const char *const *want) {
  tdm_config_t c;
  char err[512] = "";
  int rc = parse_v(&c, err, sizeof(err), args);
  if (rc != TDM_EUSAGE)
    TDM_FAIL_("expected TDM_EUSAGE, got %d (message: \"%s\")", rc, err);
  for (; *want != NULL; want++)
    if (strstr(err, *want) == NULL)
      TDM_FAIL_("message \"%s\" lacks \"%s\"", err, *want);
  /* A failed parse leaves nothing to free, and freeing is still fine. */
  ASSERT_NULL(c.state_dir);
  ASSERT_NULL(c.dirs);
  tdm__config_free(&c);
}

#define PARSE_BAD(args, ...)                                         \
  parse_bad_v((const char *const[]){args, NULL},                     \
              (const char *const[]){__VA_ARGS__, NULL})
/* Turn a comma list into one macro argument. */
#define A(...) __VA_ARGS__

#define ASSERT_HAS(s, sub)                                           \
  do {                                                               \
    if (strstr((s), (sub)) == NULL)                                  \
      TDM_FAIL_("\"%s\" lacks \"%s\"", (s), (sub));                 \
  } while (0)

/* Write an INI file into the test directory; returns its path. */
static const char *ini(const char *name, const char *text) {
  const char *p = tdm_test_path(name);
  tdm_test_write(p, text, strlen(text));
  return p;
}

/* ---- commands, defaults -------------------------------------------------- */

TEST(defaults) {
  tdm_config_t c;
  unsetenv("TIDEMARK_STATE");
  PARSE_OK(&c, "once", "/data");
  ASSERT_EQ(c.command, TDM_CMD_ONCE);
  ASSERT_STR_EQ(c.options.state_dir, "./.tidemark");
  ASSERT_EQ(c.options.mode, TDM_MODE_TAIL);
  ASSERT_EQ(c.options.records, TDM_RECORDS_LINES);
  ASSERT_EQ(c.options.recursive, 1);
  ASSERT_EQ(c.options.from_end, 0);
  ASSERT_EQ(c.options.max_record, 1u << 20);
  ASSERT_EQ(c.options.settle_ms, 1000);
  ASSERT_EQ(c.options.checkpoint_ms, 1000);
  ASSERT_EQ(c.options.retry_timeout_ms, 60000);
  ASSERT_EQ(c.options.poll_ms, 0);
  ASSERT_NULL(c.options.plugin_dir);
  ASSERT_EQ(c.options.n_include, 0);
  ASSERT_EQ(c.options.n_exclude, 0);
  ASSERT_EQ(c.options.log_level, TDM_LOG_WARN);
  ASSERT_NULL(c.options.log_cb);
  ASSERT_EQ(c.verbosity, 0);
  ASSERT_EQ(c.json, 0);
  ASSERT_NULL(c.config_file);
  ASSERT_EQ(c.n_dirs, 1);
  ASSERT_STR_EQ(c.dirs[0], "/data");
  ASSERT_EQ(c.n_processors, 1);
  ASSERT_STR_EQ(c.processors[0], "stdout");
  ASSERT_EQ(c.n_paths, 0);
  tdm__config_free(&c);
  ASSERT_NULL(c.dirs);
  tdm__config_free(&c); /* twice is fine */
}

TEST(state_from_environment) {
  tdm_config_t c;
  setenv("TIDEMARK_STATE", "/var/lib/tdm env", 1);
  PARSE_OK(&c, "status");
  ASSERT_STR_EQ(c.options.state_dir, "/var/lib/tdm env");
  tdm__config_free(&c);
  PARSE_OK(&c, "status", "-s", "/cli");
  ASSERT_STR_EQ(c.options.state_dir, "/cli");
  tdm__config_free(&c);
  setenv("TIDEMARK_STATE", "", 1); /* empty: as if unset */
  PARSE_OK(&c, "status");
  ASSERT_STR_EQ(c.options.state_dir, "./.tidemark");
  tdm__config_free(&c);
}

TEST(every_command) {
  tdm_config_t c;
  PARSE_OK(&c, "run", "a", "b");
  ASSERT_EQ(c.command, TDM_CMD_RUN);
  ASSERT_EQ(c.n_dirs, 2);
  ASSERT_STR_EQ(c.dirs[1], "b");
  tdm__config_free(&c);
  PARSE_OK(&c, "status", "--json");
  ASSERT_EQ(c.command, TDM_CMD_STATUS);
  ASSERT_EQ(c.json, 1);
  ASSERT_EQ(c.n_processors, 0); /* no default processor outside run/once */
  tdm__config_free(&c);
  PARSE_OK(&c, "reset");
  ASSERT_EQ(c.command, TDM_CMD_RESET);
  ASSERT_EQ(c.n_paths, 0);
  tdm__config_free(&c);
  PARSE_OK(&c, "reset", "-s", "st", "x/y", "/z");
  ASSERT_EQ(c.n_paths, 2);
  ASSERT_STR_EQ(c.paths[0], "x/y");
  ASSERT_STR_EQ(c.paths[1], "/z");
  tdm__config_free(&c);
  PARSE_OK(&c, "processors", "--plugin-dir", "/p");
  ASSERT_EQ(c.command, TDM_CMD_PROCESSORS);
  ASSERT_STR_EQ(c.options.plugin_dir, "/p");
  tdm__config_free(&c);
  ASSERT_STR_EQ(tdm__config_command_name(TDM_CMD_RESET), "reset");
}

TEST(help_and_version_anywhere) {
  tdm_config_t c;
  PARSE_OK(&c, "--help");
  ASSERT_EQ(c.command, TDM_CMD_HELP);
  tdm__config_free(&c);
  PARSE_OK(&c, "-h");
  ASSERT_EQ(c.command, TDM_CMD_HELP);
  tdm__config_free(&c);
  PARSE_OK(&c, "--version");
  ASSERT_EQ(c.command, TDM_CMD_VERSION);
  tdm__config_free(&c);
  PARSE_OK(&c, "-V");
  ASSERT_EQ(c.command, TDM_CMD_VERSION);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "dir", "-m", "tail", "--help");
  ASSERT_EQ(c.command, TDM_CMD_HELP);
  tdm__config_free(&c);
  PARSE_OK(&c, "status", "-V");
  ASSERT_EQ(c.command, TDM_CMD_VERSION);
  tdm__config_free(&c);
  /* It wins over errors before and after it, and over a missing DIR. */
  PARSE_OK(&c, "once", "--mode", "bogus", "--help", "--bogus");
  ASSERT_EQ(c.command, TDM_CMD_HELP);
  tdm__config_free(&c);
  PARSE_OK(&c, "-v", "--version");
  ASSERT_EQ(c.command, TDM_CMD_VERSION);
  tdm__config_free(&c);
  /* ...but not after "--", where it is a DIR. */
  PARSE_OK(&c, "once", "--", "--help");
  ASSERT_EQ(c.command, TDM_CMD_ONCE);
  ASSERT_STR_EQ(c.dirs[0], "--help");
  tdm__config_free(&c);
}

TEST(usage_text_covers_everything) {
  const char *u = tdm__config_usage();
  static const char *const words[] = {
    "run", "once", "status", "reset", "processors", "--help", "--version",
    "-s, --state", "-m, --mode", "-p, --processor", "-i, --include",
    "-x, --exclude", "--no-recursive", "--from-end", "--records",
    "--max-record", "--settle-ms", "--checkpoint-ms", "--poll-ms",
    "--plugin-dir", "--retry-timeout-ms", "--json", "-c, --config", "-v", "-q", "TIDEMARK_STATE",
    "Exit status"};
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    ASSERT_HAS(u, words[i]);
}

/* ---- each option, long and short ----------------------------------------- */

TEST(option_state) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "--state", "/s1", "d");
  ASSERT_STR_EQ(c.options.state_dir, "/s1");
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-s", "/s2", "d");
  ASSERT_STR_EQ(c.options.state_dir, "/s2");
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "--state=/s3", "d");
  ASSERT_STR_EQ(c.options.state_dir, "/s3");
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-s/s4", "d");
  ASSERT_STR_EQ(c.options.state_dir, "/s4");
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-s", "/a", "-s", "/b", "d"); /* the last wins */
  ASSERT_STR_EQ(c.options.state_dir, "/b");
  tdm__config_free(&c);
}

TEST(option_mode) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "--mode", "whole", "d");
  ASSERT_EQ(c.options.mode, TDM_MODE_WHOLE);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-m", "tail", "d");
  ASSERT_EQ(c.options.mode, TDM_MODE_TAIL);
  tdm__config_free(&c);
  PARSE_BAD(A("once", "--mode", "Whole", "d"), "--mode", "'Whole'",
            "tail or whole");
  PARSE_BAD(A("once", "-m", "x", "d"), "-m", "'x'", "tail or whole");
}

TEST(option_processor) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "--processor", "count", "-p", "file:path=/o,x=1", "d");
  ASSERT_EQ(c.n_processors, 2);
  ASSERT_STR_EQ(c.processors[0], "count");
  ASSERT_STR_EQ(c.processors[1], "file:path=/o,x=1");
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-p", "exec:cmd=sort -t, -k2", "d");
  ASSERT_STR_EQ(c.processors[0], "exec:cmd=sort -t, -k2");
  tdm__config_free(&c);
  PARSE_BAD(A("once", "-p", "", "d"), "-p", "empty");
}

TEST(option_include_exclude) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "--include", "*.log", "-i", "a/*.txt", "--exclude",
           "*.gz", "-x", "tmp*", "-x", "*.swp", "d");
  ASSERT_EQ(c.options.n_include, 2);
  ASSERT_STR_EQ(c.options.include[0], "*.log");
  ASSERT_STR_EQ(c.options.include[1], "a/*.txt");
  ASSERT_EQ(c.options.n_exclude, 3);
  ASSERT_STR_EQ(c.options.exclude[2], "*.swp");
  ASSERT(c.options.include == (const char *const *)c.include);
  tdm__config_free(&c);
  PARSE_BAD(A("once", "--include=", "d"), "--include", "empty");
}

TEST(option_flags) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "--no-recursive", "--from-end", "d");
  ASSERT_EQ(c.options.recursive, 0);
  ASSERT_EQ(c.options.from_end, 1);
  tdm__config_free(&c);
  PARSE_BAD(A("once", "--no-recursive=yes", "d"), "--no-recursive",
            "does not take a value");
}

TEST(option_records) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "--records", "bytes", "d");
  ASSERT_EQ(c.options.records, TDM_RECORDS_BYTES);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "--records=lines", "d");
  ASSERT_EQ(c.options.records, TDM_RECORDS_LINES);
  tdm__config_free(&c);
  PARSE_BAD(A("once", "--records", "words", "d"), "--records", "'words'",
            "lines or bytes");
}

TEST(option_max_record_sizes) {
  tdm_config_t c;
  static const struct {
    const char *in;
    uint64_t want;
  } ok[] = {{"64", 64},          {"4096", 4096},      {"64K", 65536},
            {"64k", 65536},      {"64KiB", 65536},    {"1M", 1u << 20},
            {"1MiB", 1u << 20},  {"256M", 256u << 20}, {"3m", 3u << 20}};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    PARSE_OK(&c, "once", "--max-record", ok[i].in, "d");
    ASSERT_EQ(c.options.max_record, ok[i].want);
    tdm__config_free(&c);
  }
  PARSE_BAD(A("once", "--max-record", "63", "d"), "--max-record", "'63'",
            "64 to");
  PARSE_BAD(A("once", "--max-record", "257M", "d"), "--max-record", "'257M'");
  PARSE_BAD(A("once", "--max-record", "1G", "d"), "--max-record", "'1G'");
  PARSE_BAD(A("once", "--max-record", "0", "d"), "--max-record");
  PARSE_BAD(A("once", "--max-record", "1T", "d"), "--max-record",
            "not a number");
  PARSE_BAD(A("once", "--max-record", "1MB", "d"), "--max-record",
            "not a number");
  PARSE_BAD(A("once", "--max-record", "K", "d"), "not a number");
  PARSE_BAD(A("once", "--max-record", "-1M", "d"), "--max-record",
            "negative");
  PARSE_BAD(A("once", "--max-record", "99999999999999999999", "d"),
            "--max-record", "too large");
  /* Overflow in the multiplication, not only in strtoull. */
  PARSE_BAD(A("once", "--max-record", "18014398509481984K", "d"),
            "--max-record", "too large");
}

TEST(option_milliseconds) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "--settle-ms", "0", "--checkpoint-ms", "250",
           "--poll-ms=4294967295", "--retry-timeout-ms", "0", "d");
  ASSERT_EQ(c.options.retry_timeout_ms, 0);
  ASSERT_EQ(c.options.settle_ms, 0);
  ASSERT_EQ(c.options.checkpoint_ms, 250);
  ASSERT_EQ(c.options.poll_ms, 4294967295u);
  tdm__config_free(&c);
  PARSE_BAD(A("once", "--settle-ms", "4294967296", "d"), "--settle-ms",
            "'4294967296'", "too large");
  PARSE_BAD(A("once", "--checkpoint-ms", "-5", "d"), "--checkpoint-ms",
            "'-5'", "negative");
  PARSE_BAD(A("once", "--poll-ms", "10ms", "d"), "--poll-ms", "'10ms'",
            "not a number");
  PARSE_BAD(A("once", "--poll-ms", " 10", "d"), "--poll-ms", "not a number");
  PARSE_BAD(A("once", "--poll-ms", "+10", "d"), "--poll-ms", "not a number");
  PARSE_BAD(A("once", "--poll-ms", "1.5", "d"), "--poll-ms", "not a number");
  PARSE_BAD(A("once", "--settle-ms", "1K", "d"), "--settle-ms",
            "not a number");
  PARSE_BAD(A("once", "--settle-ms", "184467440737095516160", "d"),
            "--settle-ms", "too large");
}

TEST(option_plugin_dir) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "--plugin-dir", "/usr/lib/tdm", "d");
  ASSERT_STR_EQ(c.options.plugin_dir, "/usr/lib/tdm");
  tdm__config_free(&c);
}

TEST(option_verbosity) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "-v", "d");
  ASSERT_EQ(c.verbosity, 1);
  ASSERT_EQ(c.options.log_level, TDM_LOG_INFO);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-vv", "d");
  ASSERT_EQ(c.verbosity, 2);
  ASSERT_EQ(c.options.log_level, TDM_LOG_DEBUG);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "--verbose", "--verbose", "--verbose", "d");
  ASSERT_EQ(c.options.log_level, TDM_LOG_DEBUG);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-q", "d");
  ASSERT_EQ(c.verbosity, -1);
  ASSERT_EQ(c.options.log_level, TDM_LOG_ERROR);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "--quiet", "-v", "d"); /* the last one wins */
  ASSERT_EQ(c.verbosity, 1);
  tdm__config_free(&c);
  PARSE_OK(&c, "status", "-v", "-q");
  ASSERT_EQ(c.verbosity, -1);
  tdm__config_free(&c);
}

TEST(options_after_dirs_and_double_dash) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "d1", "-p", "count", "d2", "--mode", "whole");
  ASSERT_EQ(c.n_dirs, 2);
  ASSERT_STR_EQ(c.dirs[0], "d1");
  ASSERT_STR_EQ(c.dirs[1], "d2");
  ASSERT_STR_EQ(c.processors[0], "count");
  ASSERT_EQ(c.options.mode, TDM_MODE_WHOLE);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-s", "st", "--", "-weird dir", "-p");
  ASSERT_EQ(c.n_dirs, 2);
  ASSERT_STR_EQ(c.dirs[0], "-weird dir");
  ASSERT_STR_EQ(c.dirs[1], "-p");
  ASSERT_STR_EQ(c.processors[0], "stdout");
  tdm__config_free(&c);
}

TEST(paths_with_spaces) {
  tdm_config_t c;
  const char *f = ini("sp.ini", "state = /var/lib/my state dir\n"
                                "processor = file:path=/out/my file.log\n");
  PARSE_OK(&c, "once", "-c", f, "/data/a dir", "-x", "* *.tmp");
  ASSERT_STR_EQ(c.options.state_dir, "/var/lib/my state dir");
  ASSERT_STR_EQ(c.processors[0], "file:path=/out/my file.log");
  ASSERT_STR_EQ(c.dirs[0], "/data/a dir");
  ASSERT_STR_EQ(c.options.exclude[0], "* *.tmp");
  tdm__config_free(&c);
  PARSE_OK(&c, "reset", "-s", "/s t", "/a b/c d");
  ASSERT_STR_EQ(c.options.state_dir, "/s t");
  ASSERT_STR_EQ(c.paths[0], "/a b/c d");
  tdm__config_free(&c);
}

/* ---- usage errors -------------------------------------------------------- */

TEST(error_no_or_unknown_command) {
  PARSE_BAD(A("tidemark-first"), "unknown command", "'tidemark-first'");
  PARSE_BAD(A("-s", "x", "once", "d"), "no command given");
  PARSE_BAD(A("--bogus"), "'--bogus'");
  {
    tdm_config_t c;
    char err[256];
    char *argv[] = {"tidemark", NULL};
    ASSERT_EQ(tdm__config_parse(&c, 1, argv, err, sizeof(err)), TDM_EUSAGE);
    ASSERT_HAS(err, "no command given");
  }
}

TEST(error_unknown_option) {
  PARSE_BAD(A("once", "--bogus", "d"), "unknown", "'--bogus'");
  PARSE_BAD(A("once", "--bogus=3", "d"), "'--bogus'");
  PARSE_BAD(A("once", "-z", "d"), "unknown option", "'-z'");
  PARSE_BAD(A("once", "-vz", "d"), "'-z'");
  /* An abbreviation shared by several options is ambiguous. */
  PARSE_BAD(A("once", "--s", "x", "d"), "'--s'");
}

TEST(abbreviated_long_options) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "--sta", "/st", "--no-rec", "d");
  ASSERT_STR_EQ(c.options.state_dir, "/st");
  ASSERT_EQ(c.options.recursive, 0);
  tdm__config_free(&c);
}

TEST(error_missing_argument) {
  PARSE_BAD(A("once", "d", "--state"), "'--state'", "requires an argument");
  PARSE_BAD(A("once", "d", "-s"), "'-s'", "requires an argument");
  PARSE_BAD(A("once", "d", "-p"), "'-p'", "requires an argument");
  PARSE_BAD(A("once", "d", "-vm"), "'-m'", "requires an argument");
  PARSE_BAD(A("once", "d", "--max-record"), "'--max-record'",
            "requires an argument");
  PARSE_BAD(A("once", "d", "-c"), "'-c'", "requires an argument");
}

TEST(error_first_one_reported) {
  PARSE_BAD(A("once", "--mode", "x", "--records", "y", "d"), "--mode");
}

TEST(error_dirs) {
  PARSE_BAD(A("once"), "'once'", "DIR");
  PARSE_BAD(A("run", "-p", "count"), "'run'", "DIR");
  PARSE_BAD(A("once", ""), "empty");
  PARSE_BAD(A("status", "somedir"), "'status'", "'somedir'", "--state");
  PARSE_BAD(A("processors", "x"), "'processors'", "'x'");
}

TEST(error_option_not_for_command) {
  PARSE_BAD(A("status", "-p", "count"), "'-p'", "'status'");
  PARSE_BAD(A("status", "--mode", "whole"), "'--mode'", "'status'");
  PARSE_BAD(A("reset", "--json"), "'--json'", "'reset'");
  PARSE_BAD(A("once", "--json", "d"), "'--json'", "'once'");
  PARSE_BAD(A("processors", "-s", "x"), "'-s'", "'processors'");
}

TEST(error_message_escapes_control_bytes) {
  PARSE_BAD(A("once", "--mode", "a\nb", "d"), "'a\\nb'");
}

TEST(check_dirs) {
  tdm_config_t c;
  char err[512];
  const char *file = tdm_test_path("plain");
  tdm_test_write(file, "x", 1);
  PARSE_OK(&c, "once", tdm_test_dir, file);
  ASSERT_EQ(tdm__config_check_dirs(&c, err, sizeof(err)), TDM_EUSAGE);
  ASSERT_HAS(err, file);
  ASSERT_HAS(err, "not a directory");
  tdm__config_free(&c);
  PARSE_OK(&c, "once", tdm_test_path("missing"));
  ASSERT_EQ(tdm__config_check_dirs(&c, err, sizeof(err)), TDM_EUSAGE);
  ASSERT_HAS(err, "missing");
  ASSERT_HAS(err, "No such file");
  tdm__config_free(&c);
  PARSE_OK(&c, "once", tdm_test_dir);
  ASSERT_EQ(tdm__config_check_dirs(&c, err, sizeof(err)), 0);
  tdm__config_free(&c);
}

/* ---- the INI file --------------------------------------------------------- */

TEST(ini_every_key) {
  tdm_config_t c;
  const char *f = ini("all.ini",
                      "; a comment\n"
                      "# another\n"
                      "state = /st\n"
                      "mode = whole\n"
                      "processor = count\n"
                      "processor = file:path=/o\n"
                      "include = *.log\n"
                      "include = *.txt\n"
                      "exclude = *.gz\n"
                      "no-recursive = true\n"
                      "from-end = yes\n"
                      "records = bytes\n"
                      "max-record = 64K\n"
                      "settle-ms = 5\n"
                      "checkpoint-ms = 6\n"
                      "poll-ms = 7\n"
                      "retry-timeout-ms = 8\n"
                      "plugin-dir = /plugins\n"
                      "verbose = 2\n");
  PARSE_OK(&c, "once", "-c", f, "d");
  ASSERT_STR_EQ(c.config_file, f);
  ASSERT_STR_EQ(c.options.state_dir, "/st");
  ASSERT_EQ(c.options.mode, TDM_MODE_WHOLE);
  ASSERT_EQ(c.n_processors, 2);
  ASSERT_STR_EQ(c.processors[0], "count");
  ASSERT_STR_EQ(c.processors[1], "file:path=/o");
  ASSERT_EQ(c.options.n_include, 2);
  ASSERT_STR_EQ(c.options.include[1], "*.txt");
  ASSERT_EQ(c.options.n_exclude, 1);
  ASSERT_EQ(c.options.recursive, 0);
  ASSERT_EQ(c.options.from_end, 1);
  ASSERT_EQ(c.options.records, TDM_RECORDS_BYTES);
  ASSERT_EQ(c.options.max_record, 65536);
  ASSERT_EQ(c.options.settle_ms, 5);
  ASSERT_EQ(c.options.checkpoint_ms, 6);
  ASSERT_EQ(c.options.poll_ms, 7);
  ASSERT_EQ(c.options.retry_timeout_ms, 8);
  ASSERT_STR_EQ(c.options.plugin_dir, "/plugins");
  ASSERT_EQ(c.options.log_level, TDM_LOG_DEBUG);
  tdm__config_free(&c);
}

TEST(ini_section_indent_and_comments) {
  tdm_config_t c;
  const char *f = ini("sec.ini",
                      "\xEF\xBB\xBF"
                      "[tidemark]\r\n"
                      "  state = /st   ; trailing comment\r\n"
                      "\tmode = whole\r\n"
                      "\n"
                      "   # indented comment\n"
                      "    processor = count\n");
  PARSE_OK(&c, "once", "-c", f, "d");
  ASSERT_STR_EQ(c.options.state_dir, "/st");
  /* Indented lines are keys, not continuations of the value before. */
  ASSERT_EQ(c.options.mode, TDM_MODE_WHOLE);
  ASSERT_EQ(c.n_processors, 1);
  ASSERT_STR_EQ(c.processors[0], "count");
  tdm__config_free(&c);
}

TEST(ini_booleans) {
  static const char *const yes[] = {"true", "TRUE", "yes", "on", "1"};
  static const char *const no[] = {"false", "No", "off", "0"};
  tdm_config_t c;
  char text[128];
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    snprintf(text, sizeof(text), "no-recursive = %s\nfrom-end = %s\n", yes[i],
             yes[i]);
    PARSE_OK(&c, "once", "-c", ini("b.ini", text), "d");
    ASSERT_EQ(c.options.recursive, 0);
    ASSERT_EQ(c.options.from_end, 1);
    tdm__config_free(&c);
  }
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
    snprintf(text, sizeof(text), "no-recursive = %s\nfrom-end = %s\n", no[i],
             no[i]);
    PARSE_OK(&c, "once", "-c", ini("b.ini", text), "d");
    ASSERT_EQ(c.options.recursive, 1);
    ASSERT_EQ(c.options.from_end, 0);
    tdm__config_free(&c);
  }
}

TEST(ini_quiet_and_verbose) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "-c", ini("q.ini", "quiet = true\n"), "d");
  ASSERT_EQ(c.options.log_level, TDM_LOG_ERROR);
  tdm__config_free(&c);
  /* The command line's -v overrides the file's quiet. */
  PARSE_OK(&c, "once", "-c", ini("q.ini", "quiet = true\n"), "-v", "d");
  ASSERT_EQ(c.options.log_level, TDM_LOG_INFO);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-c", ini("v.ini", "verbose = 1\n"), "d");
  ASSERT_EQ(c.options.log_level, TDM_LOG_INFO);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-c", ini("v.ini", "verbose = 2\n"), "-q", "d");
  ASSERT_EQ(c.options.log_level, TDM_LOG_ERROR);
  tdm__config_free(&c);
}

TEST(command_line_overrides_ini) {
  tdm_config_t c;
  const char *f = ini("o.ini", "state = /file-state\n"
                               "mode = whole\n"
                               "records = bytes\n"
                               "max-record = 1K\n"
                               "settle-ms = 10\n"
                               "plugin-dir = /file-plugins\n");
  PARSE_OK(&c, "once", "-s", "/cli-state", "-c", f, "--records", "lines",
           "--settle-ms", "20", "d");
  ASSERT_STR_EQ(c.options.state_dir, "/cli-state");
  ASSERT_EQ(c.options.records, TDM_RECORDS_LINES);
  ASSERT_EQ(c.options.settle_ms, 20);
  /* What the command line did not give comes from the file. */
  ASSERT_EQ(c.options.mode, TDM_MODE_WHOLE);
  ASSERT_EQ(c.options.max_record, 1024);
  ASSERT_STR_EQ(c.options.plugin_dir, "/file-plugins");
  tdm__config_free(&c);
  /* And the file overrides $TIDEMARK_STATE. */
  setenv("TIDEMARK_STATE", "/env", 1);
  PARSE_OK(&c, "status", "-c", f);
  ASSERT_STR_EQ(c.options.state_dir, "/file-state");
  tdm__config_free(&c);
}

TEST(command_line_lists_replace_ini_lists) {
  tdm_config_t c;
  const char *f = ini("l.ini", "processor = count\n"
                               "processor = file:path=/o\n"
                               "include = *.log\n"
                               "exclude = *.gz\n"
                               "exclude = *.bz2\n");
  PARSE_OK(&c, "once", "-c", f, "-p", "stdout", "-x", "*.tmp", "d");
  ASSERT_EQ(c.n_processors, 1);
  ASSERT_STR_EQ(c.processors[0], "stdout");
  ASSERT_EQ(c.options.n_exclude, 1);
  ASSERT_STR_EQ(c.options.exclude[0], "*.tmp");
  /* -i was not given: the file's includes stay. */
  ASSERT_EQ(c.options.n_include, 1);
  ASSERT_STR_EQ(c.options.include[0], "*.log");
  tdm__config_free(&c);
}

TEST(ini_keys_of_other_commands_are_ignored) {
  tdm_config_t c;
  const char *f = ini("s.ini", "state = /st\nmode = whole\nprocessor = x\n");
  PARSE_OK(&c, "status", "-c", f);
  ASSERT_STR_EQ(c.options.state_dir, "/st");
  tdm__config_free(&c);
  PARSE_OK(&c, "processors", "-c", f);
  tdm__config_free(&c);
}

TEST(ini_errors_name_file_line_and_key) {
  PARSE_BAD(A("once", "-c", ini("e1.ini", "state = /x\n\nbogus = 1\n"), "d"),
            "e1.ini:3:", "unknown key", "'bogus'");
  PARSE_BAD(A("once", "-c", ini("e2.ini", "mode = sideways\n"), "d"),
            "e2.ini:1:", "mode", "'sideways'", "tail or whole");
  PARSE_BAD(A("once", "-c", ini("e3.ini", "# c\nmax-record = 12\n"), "d"),
            "e3.ini:2:", "max-record", "'12'");
  PARSE_BAD(A("once", "-c", ini("e4.ini", "settle-ms = -1\n"), "d"),
            "e4.ini:1:", "settle-ms", "negative");
  PARSE_BAD(A("once", "-c", ini("e5.ini", "no-recursive = maybe\n"), "d"),
            "e5.ini:1:", "no-recursive", "'maybe'", "true or false");
  PARSE_BAD(A("once", "-c", ini("e6.ini", "state =\n"), "d"), "e6.ini:1:",
            "state", "empty");
  PARSE_BAD(A("once", "-c", ini("e7.ini", "verbose = 9\n"), "d"), "e7.ini:1:",
            "verbose", "'9'");
  /* Options that only make sense on the command line. */
  PARSE_BAD(A("once", "-c", ini("e8.ini", "config = /x\n"), "d"), "e8.ini:1:",
            "'config'");
  PARSE_BAD(A("once", "-c", ini("e9.ini", "json = true\n"), "d"), "e9.ini:1:",
            "'json'");
  /* The long option's dashes are not part of the key. */
  PARSE_BAD(A("once", "-c", ini("e10.ini", "--state = /x\n"), "d"),
            "e10.ini:1:", "'--state'");
}

TEST(ini_errors_sections_and_syntax) {
  PARSE_BAD(A("once", "-c", ini("s1.ini", "state = /x\n[other]\nmode = tail\n"),
              "d"),
            "s1.ini:2:", "[other]");
  /* Refused even when the section holds no key. */
  PARSE_BAD(A("once", "-c", ini("s2.ini", "state = /x\n[empty]\n"), "d"),
            "s2.ini:2:", "[empty]");
  PARSE_BAD(A("once", "-c", ini("s3.ini", "state = /x\njust words\n"), "d"),
            "s3.ini:2:", "syntax error");
  PARSE_BAD(A("once", "-c", ini("s4.ini", "[tidemark\n"), "d"), "s4.ini:1:",
            "syntax error");
}

TEST(ini_long_lines) {
  tdm_config_t c;
  size_t n = 100000;
  char *want = malloc(n + 64), *text = malloc(n + 128);
  /* Lines of any length: a long exec:cmd= fits. */
  ASSERT_NOT_NULL(want);
  ASSERT_NOT_NULL(text);
  strcpy(want, "exec:cmd=/bin/echo ");
  memset(want + strlen(want), 'a', n);
  want[n] = '\0';
  snprintf(text, n + 128, "state = /x\nprocessor = %s   ; a comment\n", want);
  PARSE_OK(&c, "once", "-c", ini("long.ini", text), "d");
  ASSERT_EQ(c.n_processors, 1);
  ASSERT_STR_EQ(c.processors[0], want);
  tdm__config_free(&c);
  /* A last line without its newline counts too. */
  snprintf(text, n + 128, "processor = %s", want);
  PARSE_OK(&c, "once", "-c", ini("long2.ini", text), "d");
  ASSERT_STR_EQ(c.processors[0], want);
  tdm__config_free(&c);
  free(want);
  free(text);
}

TEST(ini_duplicate_scalar_names_both_lines) {
  tdm_config_t c;
  PARSE_BAD(A("once", "-c",
              ini("dup.ini", "mode = tail\nstate = /x\n[tidemark]\nmode = whole\n"),
              "d"),
            "dup.ini:4:", "'mode'", "dup.ini:1");
  PARSE_BAD(A("once", "-c", ini("dup2.ini", "quiet = true\n# x\nquiet = false\n"),
              "d"),
            "dup2.ini:3:", "'quiet'", "dup2.ini:1");
  /* Lists repeat. */
  PARSE_OK(&c, "once", "-c",
           ini("lists.ini", "processor = count\nprocessor = stdout\n"
                            "include = *.log\ninclude = *.txt\n"
                            "exclude = a\nexclude = b\n"),
           "d");
  ASSERT_EQ(c.n_processors, 2);
  ASSERT_EQ(c.options.n_include, 2);
  ASSERT_EQ(c.options.n_exclude, 2);
  tdm__config_free(&c);
}

/* Globs, --metrics and --on-done/--on-failed are the library's to check
   (tdm_open, naming the option: test-api.c); the command passes them on. */
TEST(globs_and_values_passed_to_the_library) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "-i", "[]x]", "-i", "[!a-z]*.log", "-i", "[[:digit:]]",
           "-x", "a\\[b", "-x", "*.[ch]", "d");
  ASSERT_EQ(c.options.n_include, 3);
  tdm__config_free(&c);
  PARSE_OK(&c, "once", "-i", "[", "--on-done", "bin", "d");
  ASSERT_EQ(c.options.n_include, 1);
  ASSERT_STR_EQ(c.options.include[0], "[");
  ASSERT_STR_EQ(c.options.on_done, "bin");
  tdm__config_free(&c);
  PARSE_OK(&c, "run", "--metrics", "nowhere", "d");
  ASSERT_STR_EQ(c.options.metrics_listen, "nowhere");
  tdm__config_free(&c);
}

TEST(ini_missing_or_unreadable) {
  PARSE_BAD(A("once", "-c", tdm_test_path("nope.ini"), "d"), "nope.ini",
            "No such file");
  PARSE_BAD(A("once", "-c", tdm_test_dir, "d"), "config file");
  PARSE_BAD(A("once", "--config=", "d"), "--config", "empty");
}

TEST(ini_nul_byte) {
  const char *p = tdm_test_path("nul.ini");
  tdm_test_write(p, "state = /x\nmode = t\0ail\n", 24);
  PARSE_BAD(A("once", "-c", p, "d"), "nul.ini:2:", "NUL");
}

TEST(ini_empty_file) {
  tdm_config_t c;
  PARSE_OK(&c, "once", "-c", ini("empty.ini", ""), "d");
  ASSERT_STR_EQ(c.processors[0], "stdout");
  tdm__config_free(&c);
}

/* ---- number parsing ------------------------------------------------------- */

TEST(parse_u64_edges) {
  uint64_t v = 0;
  ASSERT_EQ(tdm__parse_u64("0", 0, &v), NUM_OK);
  ASSERT_EQ(v, 0);
  ASSERT_EQ(tdm__parse_u64("18446744073709551615", 0, &v), NUM_OK);
  ASSERT(v == UINT64_MAX);
  ASSERT_EQ(tdm__parse_u64("18446744073709551616", 0, &v), NUM_RANGE);
  ASSERT_EQ(tdm__parse_u64("16G", 1, &v), NUM_OK);
  ASSERT(v == 16ull << 30);
  ASSERT_EQ(tdm__parse_u64("17179869184G", 1, &v), NUM_RANGE);
  ASSERT_EQ(tdm__parse_u64("", 0, &v), NUM_SYNTAX);
  ASSERT_EQ(tdm__parse_u64("-0", 0, &v), NUM_NEGATIVE);
  ASSERT_EQ(tdm__parse_u64("1K", 0, &v), NUM_SYNTAX);
  ASSERT_EQ(tdm__parse_u64("1Ki", 1, &v), NUM_SYNTAX);
  ASSERT_EQ(tdm__parse_u64("1KiBs", 1, &v), NUM_SYNTAX);
  ASSERT_EQ(tdm__parse_u64("0x10", 0, &v), NUM_SYNTAX);
  ASSERT_EQ(tdm__parse_u64("010", 0, &v), NUM_OK);
  ASSERT_EQ(v, 10); /* decimal, not octal */
}

/* ---- status and reset against a real store ------------------------------- */

/* Commit records for `paths` (id i+1, offset 3) into the store in `dir`. */
static void seed_store(const char *dir, const char *const *paths, size_t n) {
  tdm__log_t log = {TDM_LOG_ERROR, NULL, NULL};
  tdm_store_t *s;
  tdm_file_rec_t recs[8];
  const tdm_file_rec_t *put[8];
  tdm_store_batch_t b;
  tdm_store_hash_t h;
  ASSERT_LE(n, 8);
  ASSERT_EQ(tdm_store_open(dir, 0, &log, &s), 0);
  memset(recs, 0, sizeof(recs));
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    recs[i].id = i + 1;
    recs[i].path = paths[i];
    recs[i].offset = 3;
    recs[i].size = 5;
    recs[i].first_seen_ns = 1795554000000000000LL;
    if (stat(paths[i], &st) == 0) {
      recs[i].dev = (uint64_t)st.st_dev;
      recs[i].ino = (uint64_t)st.st_ino;
    }
    put[i] = &recs[i];
  }
  /* The first file is a whole-mode file with a hash and an error. */
  recs[0].state = TDM_FILE_FAILED;
  memset(recs[0].content_hash, 0xab, 16);
  recs[0].error = "exit \"status\" 3\n";
  recs[0].exit_status = 3;
  memset(&h, 0, sizeof(h));
  memset(h.hash, 0xab, 16);
  h.file_id = 1;
  memset(&b, 0, sizeof(b));
  b.put_files = put;
  b.n_put_files = n;
  b.hashes = &h;
  b.n_hashes = 1;
  b.next_id = n + 1;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  tdm_store_close(s);
}

/* Run status (json or not) on `state`; returns its output, *rc its status. */
static char *status_of(const char *state, int json, int *rc) {
  tdm_config_t c;
  char *buf = NULL;
  size_t len = 0;
  FILE *f;
  if (json)
    PARSE_OK(&c, "status", "-s", state, "--json", "-q");
  else
    PARSE_OK(&c, "status", "-s", state, "-q");
  f = open_memstream(&buf, &len);
  ASSERT_NOT_NULL(f);
  *rc = tdm__status_run(&c, f);
  fclose(f);
  tdm__config_free(&c);
  return buf;
}

TEST(status_json_and_text) {
  char st[4200], a[4200], b[4200], want[9000];
  const char *paths[2];
  char *out;
  int rc;
  snprintf(st, sizeof(st), "%s/state", tdm_test_dir);
  snprintf(a, sizeof(a), "%s/a \"q\".log", tdm_test_dir);
  snprintf(b, sizeof(b), "%s/gone.log", tdm_test_dir);
  tdm_test_write(a, "0123456789", 10); /* now 10 bytes, bookmark 3 */
  paths[0] = a;
  paths[1] = b;
  seed_store(st, paths, 2);

  out = status_of(st, 1, &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(out[strlen(out) - 1], '\n');
  snprintf(want, sizeof(want), "{\"state_dir\":\"%s\",\"schema\":3,", st);
  ASSERT_EQ(strncmp(out, want, strlen(want)), 0);
  ASSERT_HAS(out, "\"last_checkpoint\":\"");
  ASSERT_HAS(out, "\"path\":\"");
  ASSERT_HAS(out, "/a \\\"q\\\".log\",\"present\":true");
  ASSERT_HAS(out, "\"size\":10,\"bookmark\":3,\"pending\":7,\"state\":"
                  "\"failed\"");
  ASSERT_HAS(out, "\"first_seen\":\"2026-11-24T21:00:00Z\",\"updated\":null");
  ASSERT_HAS(out, "\"content_hash\":\"abababababababababababababababab\"");
  ASSERT_HAS(out, "\"exit_status\":3,\"error\":\"exit \\\"status\\\" 3\\n\",\"path_escaped\":false}");
  ASSERT_HAS(out, "/gone.log\",\"present\":false");
  ASSERT_HAS(out, "\"size\":5,\"bookmark\":3,\"pending\":2,\"state\":"
                  "\"active\"");
  ASSERT_HAS(out, "\"content_hash\":null,\"duplicate_of\":null");
  free(out);

  out = status_of(st, 0, &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_HAS(out, "STATE   BOOKMARK  SIZE  PENDING  PATH\n");
  ASSERT_HAS(out, "failed         3    10        7  ");
  ASSERT_HAS(out, "gone.log (gone)\n");
  ASSERT_HAS(out, "(error: exit \"status\" 3\\n)");
  ASSERT_HAS(out, "2 files (1 gone), 9 bytes pending, last checkpoint 20");
  free(out);
}

TEST(status_without_state) {
  int rc;
  char *out = status_of(tdm_test_path("nothing-here"), 1, &rc);
  ASSERT_EQ(rc, 1);
  ASSERT_STR_EQ(out, "");
  free(out);
  /* A directory that is not a store. */
  out = status_of(tdm_test_dir, 0, &rc);
  ASSERT_EQ(rc, 1);
  free(out);
}

/* Run reset on `state` with PATHs; returns its output, *rc its status. */
static char *reset_of(const char *state, const char *p1, const char *p2,
                      int *rc) {
  tdm_config_t c;
  char *buf = NULL;
  size_t len = 0;
  FILE *f;
  if (p1 == NULL)
    PARSE_OK(&c, "reset", "-s", state);
  else if (p2 == NULL)
    PARSE_OK(&c, "reset", "-s", state, p1);
  else
    PARSE_OK(&c, "reset", "-s", state, p1, p2);
  f = open_memstream(&buf, &len);
  ASSERT_NOT_NULL(f);
  *rc = tdm__status_reset(&c, f);
  fclose(f);
  tdm__config_free(&c);
  return buf;
}

TEST(reset_paths_and_all) {
  char st[4200], p[4][4200];
  const char *paths[4];
  char *out;
  int rc;
  snprintf(st, sizeof(st), "%s/state", tdm_test_dir);
  ASSERT_EQ(mkdir(tdm_test_path("d"), 0755), 0);
  ASSERT_EQ(mkdir(tdm_test_path("d/sub"), 0755), 0);
  snprintf(p[0], sizeof(p[0]), "%s/d/sub/x.log", tdm_test_dir);
  snprintf(p[1], sizeof(p[1]), "%s/d/y.log", tdm_test_dir);
  snprintf(p[2], sizeof(p[2]), "%s/dd/z.log", tdm_test_dir);
  snprintf(p[3], sizeof(p[3]), "%s/other.log", tdm_test_dir);
  for (int i = 0; i < 4; i++)
    paths[i] = p[i];
  seed_store(st, paths, 4);

  /* A directory (given relative, with a detour) forgets what lies under it
     and not its look-alike neighbour "dd". */
  ASSERT_EQ(chdir(tdm_test_dir), 0);
  out = reset_of(st, "./d/sub/../", NULL, &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_STR_EQ(out, "reset: forgot 2 files\n");
  free(out);
  /* The hash of file 1 went with it. */
  {
    tdm__log_t log = {TDM_LOG_ERROR, NULL, NULL};
    tdm_store_t *s;
    uint8_t h[16];
    uint64_t id;
    memset(h, 0xab, 16);
    ASSERT_EQ(tdm_store_open(st, TDM_STORE_RDONLY, &log, &s), 0);
    ASSERT_EQ(tdm_store_find_hash(s, h, &id), -ENOENT);
    tdm_store_close(s);
  }
  /* A PATH that matches nothing: reported, the others still reset. */
  out = reset_of(st, "nothing", p[2], &rc);
  ASSERT_EQ(rc, 1);
  ASSERT_STR_EQ(out, "reset: forgot 1 file\n");
  free(out);
  /* No PATH: everything. */
  out = reset_of(st, NULL, NULL, &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_STR_EQ(out, "reset: forgot 1 file\n");
  free(out);
  out = status_of(st, 1, &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_HAS(out, "\"files\":[]}");
  free(out);
}

TEST(reset_does_not_create_state) {
  int rc;
  char *out = reset_of(tdm_test_path("none"), NULL, NULL, &rc);
  struct stat st;
  ASSERT_EQ(rc, 1);
  ASSERT_STR_EQ(out, "");
  ASSERT_NE(stat(tdm_test_path("none"), &st), 0);
  free(out);
}
