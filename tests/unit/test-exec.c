/*
 * test-exec.c: the `exec` built-in (processors/builtin/exec.c), driven
 * through its descriptor as the engine drives it, with real child processes.
 *
 * The programs under test are small /bin/sh scripts written into the test's
 * directory: that is the operator's program, run by exec without a shell of
 * its own. Every test ends by checking that no child is left (not even a
 * zombie: waitpid(-1) says ECHILD) and, where it opens an instance, that no
 * descriptor was leaked (/proc/self/fd).
 */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "processors/builtin/builtin.h"
#include "processors/registry.h"

/* ---- helpers ------------------------------------------------------------ */

static const tdm_processor_t *ex(void) { return tdm__proc_exec(); }

static uint64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* A copy of `p` that outlives tdm_test_path()'s four rotating buffers. */
static const char *keep(const char *p) {
  static char ring[64][4096];
  static unsigned k;
  char *b = ring[k++ % 64];
  snprintf(b, sizeof(ring[0]), "%s", p);
  return b;
}

#define TPATH(name) keep(tdm_test_path(name))

/* Write an executable /bin/sh script `name` into the test dir. */
static const char *script(const char *name, const char *body) {
  const char *path = TPATH(name);
  size_t n = strlen(body);
  char *text = malloc(n + 16);
  ASSERT_NOT_NULL(text);
  memcpy(text, "#!/bin/sh\n", 10);
  memcpy(text + 10, body, n + 1);
  tdm_test_write(path, text, strlen(text));
  free(text);
  ASSERT_EQ(chmod(path, 0755), 0);
  return path;
}

/* Open from a spec string, as the daemon does with -p. */
static int open_spec(tdm_mode_t mode, const char *spec, void **st, char *msg) {
  tdm_proc_spec_t s;
  char err[512];
  int rc;
  tdm_open_args_t a = {.size = sizeof(a), .mode = mode, .msg = msg};
  if (tdm_proc_spec_parse(spec, &s, err, sizeof(err)) != 0)
    TDM_FAIL_("spec: %s", err);
  ASSERT_STR_EQ(s.name, "exec");
  a.params = s.params;
  a.n_params = s.n_params;
  msg[0] = '\0';
  *st = NULL;
  rc = ex()->open(st, &a);
  tdm_proc_spec_free(&s); /* exec must have copied what it keeps */
  return rc;
}

/* Open with "exec:cmd=" + cmd + rest (rest: "" or ",key=value..."). */
static void *open_ok(tdm_mode_t mode, const char *cmd, const char *rest) {
  char spec[8192], msg[TDM_MSG_MAX];
  void *st;
  int n, rc;
  /* A spec cut short would test another command line: refuse it. */
  n = snprintf(spec, sizeof(spec), "exec:cmd=%s%s", cmd, rest);
  if (n < 0 || (size_t)n >= sizeof(spec))
    TDM_FAIL_("spec of %d bytes does not fit %zu", n, sizeof(spec));
  rc = open_spec(mode, spec, &st, msg);
  if (rc != TDM_PROC_OK)
    TDM_FAIL_("open %s: %d: %s", spec, rc, msg);
  return st;
}

static int give_file(void *st, uint64_t id, const char *path, char *msg) {
  tdm_file_info_t info = {.size = sizeof(info),
                          .file_id = id,
                          .path = path,
                          .length = 1234,
                          .hash = (const uint8_t *)"0123456789abcdef",
                          .hash_hex = "00112233445566778899aabbccddeeff"};
  msg[0] = '\0';
  return ex()->file(st, &info, msg);
}

/* Collect `n` outcomes within `timeout_ms`, blocking in poll(). */
static void wait_outcomes(void *st, tdm_outcome_t *out, int n,
                          unsigned timeout_ms) {
  uint64_t end = ms_now() + timeout_ms;
  int got = 0;
  while (got < n) {
    int k = ex()->poll(st, out + got, (size_t)(n - got), 200);
    ASSERT_GE(k, 0);
    got += k;
    if (got < n && ms_now() > end)
      TDM_FAIL_("only %d of %d outcomes after %u ms", got, n, timeout_ms);
  }
}

/* Run one file through a fresh whole-mode poll and return its outcome. */
static tdm_outcome_t run_one(void *st, uint64_t id, const char *path) {
  char msg[TDM_MSG_MAX];
  tdm_outcome_t o;
  int rc = give_file(st, id, path, msg);
  if (rc != TDM_PROC_PENDING)
    TDM_FAIL_("file(%s): %d: %s", path, rc, msg);
  wait_outcomes(st, &o, 1, 20000);
  ASSERT_EQ(o.file_id, id);
  return o;
}

static int fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  ASSERT_NOT_NULL(d);
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* No child left, not even a zombie. */
static void assert_no_children(void) {
  int status;
  errno = 0;
  ASSERT_EQ(waitpid(-1, &status, WNOHANG), -1);
  ASSERT_EQ(errno, ECHILD);
}

/* Send fd 2 to `path`; returns the old fd 2 for put_stderr_back. */
static int take_stderr(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  ASSERT_GE(fd, 0);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  close(fd);
  return saved;
}

static void put_stderr_back(int saved) {
  ASSERT_EQ(dup2(saved, STDERR_FILENO), STDERR_FILENO);
  close(saved);
}

static int count_lines(const char *path) {
  char *s;
  int n = 0;
  if (access(path, F_OK) != 0)
    return 0;
  s = tdm_test_read(path, NULL);
  for (char *p = s; *p; p++)
    n += *p == '\n';
  free(s);
  return n;
}

/* Dumps its arguments (one "[arg]" a line), the TIDEMARK_* variables and
   the size of its stdin into $DUMP. */
static const char *dump_script(void) {
  setenv("DUMP", tdm_test_path("dump"), 1);
  return script("dumpargs",
                "{ printf 'argc=%s\\n' \"$#\"\n"
                "  for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n"
                "  printf 'PATH=[%s]\\nSIZE=[%s]\\nHASH=[%s]\\n' "
                "\"$TIDEMARK_PATH\" \"$TIDEMARK_SIZE\" \"$TIDEMARK_HASH\"\n"
                "  printf 'stdin=%s\\n' \"$(wc -c)\"\n"
                "  env | grep -c '^TIDEMARK_PATH=' | sed 's/^/npath=/'\n"
                "} > \"$DUMP\"\n");
}

/* The args part of the dump ("argc=..." and the "[...]" lines). */
static char *dump_args(void) {
  char *s = tdm_test_read(tdm_test_path("dump"), NULL);
  char *end = strstr(s, "PATH=[");
  ASSERT_NOT_NULL(end);
  *end = '\0';
  return s;
}

/* ---- cmd splitting and parameters -------------------------------------- */

/* Quotes and escapes, through a real program's argv (tail mode: no path). */
TEST(split_quotes_and_escapes) {
  const char *prog = dump_script();
  char cmd[8192];
  void *st;
  char *got;

  /* a 'b c' "d \"e\" \\ f\g" h\ i '' "" j'k'"l" 'it''s' \' "$HOME" '$(x)' */
  snprintf(cmd, sizeof(cmd),
           "%s a 'b c' \"d \\\"e\\\" \\\\ f\\g\" h\\ i '' \"\" j'k'\"l\" "
           "'it''s' \\' \"$HOME\" '$(x)' *  \t tab\\\ttab",
           prog);
  st = open_ok(TDM_MODE_TAIL, cmd, "");
  ex()->close(st); /* waits for it */
  got = dump_args();
  ASSERT_STR_EQ(got, "argc=13\n"
                     "[a]\n"
                     "[b c]\n"
                     "[d \"e\" \\ f\\g]\n"
                     "[h i]\n"
                     "[]\n"
                     "[]\n"
                     "[jkl]\n"
                     "[its]\n"
                     "[']\n"
                     "[$HOME]\n"
                     "[$(x)]\n"
                     "[*]\n"
                     "[tab\ttab]\n");
  free(got);
  assert_no_children();
}

/* The spec splits on a comma only before key=: cmd keeps its commas. */
TEST(split_commas_through_spec) {
  const char *prog = dump_script();
  char spec[4096], msg[TDM_MSG_MAX];
  tdm_outcome_t o;
  void *st;
  char *got;

  snprintf(spec, sizeof(spec), "exec:cmd=%s -t, -k2,1 x,y,jobs=1,retries=0",
           prog);
  ASSERT_EQ(open_spec(TDM_MODE_WHOLE, spec, &st, msg), TDM_PROC_OK);
  o = run_one(st, 7, "/data/x.csv");
  ASSERT_EQ(o.result, TDM_PROC_OK);
  ex()->close(st);
  got = dump_args();
  ASSERT_STR_EQ(got, "argc=4\n[-t,]\n[-k2,1]\n[x,y]\n[/data/x.csv]\n");
  free(got);

  /* jobs=1 was taken: a second file waits for the first. */
  snprintf(spec, sizeof(spec), "exec:cmd=%s x,y,jobs=1", prog);
  ASSERT_EQ(open_spec(TDM_MODE_WHOLE, spec, &st, msg), TDM_PROC_OK);
  ASSERT_EQ(give_file(st, 1, "/a", msg), TDM_PROC_PENDING);
  ASSERT_EQ(give_file(st, 2, "/b", msg), TDM_PROC_RETRY);
  wait_outcomes(st, &o, 1, 20000);
  ex()->close(st);
  assert_no_children();
}

TEST(bad_params_fail_naming_the_key) {
  static const struct {
    const char *spec, *want, *want2;
  } cases[] = {
      {"exec", "missing parameter \"cmd\"", NULL},
      {"exec:jobs=2", "missing parameter \"cmd\"", NULL},
      {"exec:cmd=", "no program", NULL},
      {"exec:cmd=   ", "no program", NULL},
      {"exec:cmd=sort 'abc", "unterminated single quote", "sort 'abc"},
      {"exec:cmd=sort \"a\\\"", "unterminated double quote", "sort \"a"},
      {"exec:cmd=sort abc\\", "lone backslash", "sort abc"},
      {"exec:cmd=true,job=2", "unknown parameter \"job\"", NULL},
      {"exec:cmd=true,jobs=0", "jobs=\"0\"", "from 1 to"},
      {"exec:cmd=true,jobs=x", "jobs=\"x\"", NULL},
      {"exec:cmd=true,jobs=-1", "jobs=\"-1\"", NULL},
      {"exec:cmd=true,jobs=", "jobs=\"\"", NULL},
      {"exec:cmd=true,retries=-1", "retries=\"-1\"", NULL},
      {"exec:cmd=true,retries=99999999999999999999", "retries=", NULL},
      {"exec:cmd=true,backoff-ms=1e3", "backoff-ms=\"1e3\"", NULL},
      {"exec:cmd=true,backoff-ms=30001", "backoff-ms=\"30001\"", "30000"},
      {"exec:cmd=true,cmd=false", "\"cmd\" given twice", NULL},
      {"exec:cmd=true,retries=1,retries=2", "\"retries\" given twice", NULL},
  };
  int fds = fd_count();
  char msg[TDM_MSG_MAX];
  void *st;

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    for (int mode = 0; mode < 2; mode++) {
      int rc = open_spec(mode ? TDM_MODE_WHOLE : TDM_MODE_TAIL, cases[i].spec,
                         &st, msg);
      if (rc != TDM_PROC_FAIL || strstr(msg, cases[i].want) == NULL ||
          (cases[i].want2 && strstr(msg, cases[i].want2) == NULL) ||
          strncmp(msg, "exec: ", 6) != 0)
        TDM_FAIL_("%s (mode %d): rc %d, msg \"%s\"", cases[i].spec, mode, rc,
                  msg);
    }
  /* Good ones, for contrast (and the boundaries). */
  ASSERT_EQ(open_spec(TDM_MODE_WHOLE,
                      "exec:cmd=true,jobs=1024,retries=0,backoff-ms=30000", &st,
                      msg),
            TDM_PROC_OK);
  ex()->close(st);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* ---- whole mode --------------------------------------------------------- */

TEST(whole_path_last_and_env) {
  const char *prog = dump_script();
  char cmd[4096], msg[TDM_MSG_MAX], want[8192];
  tdm_chunk_t c = {.file_id = 3, .path = "/in/f", .data = "abc", .len = 3};
  const char *path = TPATH("in file.csv");
  int fds = fd_count();
  tdm_outcome_t o;
  void *st;
  char *got;

  setenv("TIDEMARK_PATH", "stale-from-parent", 1); /* replaced, not kept */
  snprintf(cmd, sizeof(cmd), "%s --flag", prog);
  st = open_ok(TDM_MODE_WHOLE, cmd, "");
  ASSERT_EQ(ex()->process(st, &c, msg), TDM_PROC_OK); /* taken, ignored */
  o = run_one(st, 3, path);
  ASSERT_EQ(o.result, TDM_PROC_OK);
  ASSERT_EQ(o.exit_status, 0);
  ASSERT_EQ(o.attempts, 1);
  ASSERT_STR_EQ(o.msg, "");
  {
    unsigned char blob[TDM_RESTORE_MAX];
    size_t len = sizeof(blob);
    ASSERT_EQ(ex()->commit(st, blob, &len, msg), TDM_PROC_OK);
    ASSERT_EQ(len, 0);
  }
  ex()->close(st);
  got = tdm_test_read(tdm_test_path("dump"), NULL);
  snprintf(want, sizeof(want),
           "argc=2\n[--flag]\n[%s]\nPATH=[%s]\nSIZE=[1234]\n"
           "HASH=[00112233445566778899aabbccddeeff]\nstdin=0\nnpath=1\n",
           path, path);
  ASSERT_STR_EQ(got, want);
  free(got);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* Names a shell would act on arrive verbatim, and nothing is executed. */
TEST(whole_hostile_names_verbatim) {
  static const char *names[] = {"with space.csv",
                                "new\nline.csv",
                                "$(touch PWNED)",
                                "`touch PWNED`",
                                "a;touch PWNED;.csv",
                                "quote'\"s.csv",
                                "back\\slash",
                                "*",
                                "-n",
                                "tab\there",
                                "&& touch PWNED",
                                "|touch PWNED",
                                "> PWNED"};
  const char *prog = dump_script();
  const char *err = TPATH("stderr");
  char want[8192];
  int fds = fd_count(), saved;
  void *st;

  ASSERT_EQ(chdir(tdm_test_dir), 0); /* where a shell would create PWNED */
  st = open_ok(TDM_MODE_WHOLE, prog, ",jobs=1,retries=0");
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    const char *path = TPATH(names[i]);
    tdm_outcome_t o;
    char *got;
    tdm_test_write(path, "x", 1);
    o = run_one(st, i + 1, path);
    if (o.result != TDM_PROC_OK)
      TDM_FAIL_("%s: %s", names[i], o.msg);
    got = dump_args();
    snprintf(want, sizeof(want), "argc=1\n[%s]\n", path);
    ASSERT_STR_EQ(got, want);
    free(got);
  }
  ex()->close(st);
  ASSERT_EQ(access(tdm_test_path("PWNED"), F_OK), -1);
  ASSERT_EQ(access("PWNED", F_OK), -1);

  /* The log line of a child given a name with a newline stays one line. */
  st = open_ok(TDM_MODE_WHOLE, script("hello", "echo \"hello from $#\"\n"), "");
  saved = take_stderr(err);
  {
    tdm_outcome_t o = run_one(st, 1, tdm_test_path("new\nline.csv"));
    ex()->close(st);
    put_stderr_back(saved);
    if (o.result != TDM_PROC_OK)
      TDM_FAIL_("%s", o.msg);
  }
  {
    char *got = tdm_test_read(err, NULL);
    snprintf(want, sizeof(want),
             "tidemark: exec: %s/new\\nline.csv: hello from 1\n", tdm_test_dir);
    ASSERT_STR_EQ(got, want);
    free(got);
  }
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

/*
 * What `ls /proc/self/fd` prints in a child that inherited nothing from exec:
 * 0, 1, 2, the descriptors this process has without FD_CLOEXEC (a test
 * harness may pass some on), and ls's own directory (the lowest free one),
 * in ls's order (as strings).
 */
static void inheritable_fds(char *out, size_t cap) {
  char names[64][16];
  int n = 0, has[1024] = {0}, dirfd_no = 3;
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  size_t o = 0;

  ASSERT_NOT_NULL(d);
  has[0] = has[1] = has[2] = 1;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == dirfd(d) || fd >= 1024)
      continue;
    if ((fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0)
      has[fd] = 1;
  }
  closedir(d);
  while (has[dirfd_no])
    dirfd_no++;
  has[dirfd_no] = 1;
  for (int fd = 0; fd < 1024 && n < 64; fd++)
    if (has[fd])
      snprintf(names[n++], sizeof(names[0]), "%d", fd);
  qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
  out[0] = '\0';
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(out + o, cap - o, "%s\n", names[i]);
}

/* The program is found on PATH; the child gets no descriptor but 0, 1, 2. */
TEST(whole_path_lookup_and_no_inherited_fds) {
  const char *old = getenv("PATH");
  char path_env[8192], want_fds[1024], *got;
  tdm_outcome_t o[2];
  char msg[TDM_MSG_MAX];
  int fds = fd_count();
  void *st;

  inheritable_fds(want_fds, sizeof(want_fds));
  snprintf(path_env, sizeof(path_env), "%s:%s", tdm_test_dir,
           old ? old : "/usr/bin:/bin");
  setenv("PATH", path_env, 1);
  setenv("LSOUT", tdm_test_path("fds"), 1);
  script("lsfds", "exec ls /proc/self/fd > \"$LSOUT\"\n");
  script("slow", "sleep 0.3\n");
  /* Two at once, so the other child's pipe is open in us while this one
     starts: it must not be inherited. */
  st = open_ok(TDM_MODE_WHOLE, "slow", ",jobs=2");
  ASSERT_EQ(give_file(st, 1, "/x", msg), TDM_PROC_PENDING);
  ex()->close(st); /* SIGTERM: no outcome, nothing left */
  st = open_ok(TDM_MODE_WHOLE, "sleep 0.3", ",jobs=2,retries=0");
  ASSERT_EQ(give_file(st, 1, "0.01", msg), TDM_PROC_PENDING);
  {
    void *st2 = open_ok(TDM_MODE_WHOLE, "lsfds", ",retries=0");
    tdm_outcome_t o2 = run_one(st2, 9, "/ignored");
    ASSERT_EQ(o2.result, TDM_PROC_OK);
    ex()->close(st2);
  }
  wait_outcomes(st, o, 1, 20000);
  ASSERT_EQ(o[0].result, TDM_PROC_OK);
  ex()->close(st);
  /* ls's own: 0 1 2, what the test itself inherited without FD_CLOEXEC
     (the test harness may pass some on), and ls's directory. */
  got = tdm_test_read(tdm_test_path("fds"), NULL);
  ASSERT_STR_EQ(got, want_fds);
  free(got);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* jobs=2: a third file is refused (RETRY) until poll() hands out an
   outcome; poll() blocks while children run. */
TEST(whole_jobs_limit) {
  const char *gate = TPATH("gate");
  char cmd[4096], msg[TDM_MSG_MAX];
  tdm_outcome_t o[4];
  uint64_t t0;
  int fds = fd_count();
  void *st;

  snprintf(
      cmd, sizeof(cmd), "%s",
      script("waitgate", "while [ ! -e \"$GATE\" ]; do sleep 0.01; done\n"));
  setenv("GATE", gate, 1);
  st = open_ok(TDM_MODE_WHOLE, cmd, ",jobs=2");
  ASSERT_EQ(give_file(st, 1, "/a", msg), TDM_PROC_PENDING);
  ASSERT_EQ(give_file(st, 2, "/b", msg), TDM_PROC_PENDING);
  ASSERT_EQ(give_file(st, 3, "/c", msg), TDM_PROC_RETRY);
  ASSERT_NOT_NULL(strstr(msg, "busy"));
  ASSERT_EQ(ex()->poll(st, o, 4, 0), 0);
  t0 = ms_now();
  ASSERT_EQ(ex()->poll(st, o, 4, 150), 0); /* blocked, then nothing */
  ASSERT_GE(ms_now() - t0, 140);
  ASSERT_EQ(give_file(st, 3, "/c", msg), TDM_PROC_RETRY);

  tdm_test_write(gate, "", 0);
  wait_outcomes(st, o, 2, 20000);
  ASSERT_EQ(o[0].result, TDM_PROC_OK);
  ASSERT_EQ(o[1].result, TDM_PROC_OK);
  ASSERT_EQ(o[0].file_id + o[1].file_id, 3); /* 1 and 2 */
  ASSERT_EQ(give_file(st, 3, "/c", msg), TDM_PROC_PENDING);
  wait_outcomes(st, o, 1, 20000);
  ASSERT_EQ(o[0].file_id, 3);
  /* Nothing in flight: poll does not block. */
  t0 = ms_now();
  ASSERT_EQ(ex()->poll(st, o, 4, 5000), 0);
  ASSERT_LT(ms_now() - t0, 1000);
  ex()->close(st);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* Without jobs=, the number of online CPUs. */
TEST(whole_default_jobs_is_cpus) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  char msg[TDM_MSG_MAX];
  void *st;

  ASSERT_GE(n, 1);
  st = open_ok(TDM_MODE_WHOLE, "sleep 5", "");
  for (long i = 0; i < n; i++)
    ASSERT_EQ(give_file(st, (uint64_t)i + 1, "0.5", msg), TDM_PROC_PENDING);
  ASSERT_EQ(give_file(st, 99, "0.5", msg), TDM_PROC_RETRY);
  ex()->close(st);
  assert_no_children();
}

/* Always failing: tried 1 + retries times with doubling waits, then FAIL with
   the exit status. */
TEST(whole_retries_then_fail) {
  const char *count = TPATH("count");
  const char *err = TPATH("stderr");
  tdm_outcome_t o;
  uint64_t t0, took;
  char *log;
  int saved;
  void *st;

  setenv("COUNT", count, 1);
  st = open_ok(TDM_MODE_WHOLE,
               script("fail3", "echo run >> \"$COUNT\"\nexit 3\n"),
               ",retries=2,backoff-ms=40");
  saved = take_stderr(err);
  t0 = ms_now();
  o = run_one(st, 5, "/data/f");
  took = ms_now() - t0;
  put_stderr_back(saved);
  ASSERT_EQ(o.result, TDM_PROC_FAIL);
  ASSERT_EQ(o.exit_status, 3);
  ASSERT_EQ(o.attempts, 3);
  ASSERT_STR_EQ(o.msg, "exited with status 3 after 3 attempts");
  ASSERT_EQ(count_lines(count), 3);
  ASSERT_GE(took, 40 + 80); /* waited 40 ms, then 80 */
  log = tdm_test_read(err, NULL);
  ASSERT_NOT_NULL(strstr(log, "tidemark: exec: /data/f: exited with status "
                              "3; attempt 1 of 3, trying again in 40 ms\n"));
  ASSERT_NOT_NULL(strstr(log, "; attempt 2 of 3, trying again in 80 ms\n"));
  ASSERT_NULL(strstr(log, "attempt 3"));
  free(log);

  /* retries=0: one attempt. */
  ex()->close(st);
  unlink(count);
  st = open_ok(TDM_MODE_WHOLE, tdm_test_path("fail3"), ",retries=0");
  o = run_one(st, 6, "/data/g");
  ASSERT_EQ(o.result, TDM_PROC_FAIL);
  ASSERT_EQ(o.attempts, 1);
  ASSERT_STR_EQ(o.msg, "exited with status 3 after 1 attempt");
  ASSERT_EQ(count_lines(count), 1);
  ex()->close(st);
  assert_no_children();
}

/* Fails twice, then succeeds: OK after 3 attempts. */
TEST(whole_retry_then_success) {
  const char *count = TPATH("count");
  tdm_outcome_t o;
  void *st;

  setenv("COUNT", count, 1);
  st = open_ok(TDM_MODE_WHOLE,
               script("flaky", "echo run >> \"$COUNT\"\n"
                               "[ \"$(wc -l < \"$COUNT\")\" -ge 3 ]\n"),
               ",retries=5,backoff-ms=1");
  o = run_one(st, 8, "/data/f");
  ASSERT_EQ(o.result, TDM_PROC_OK);
  ASSERT_EQ(o.exit_status, 0);
  ASSERT_EQ(o.attempts, 3);
  ASSERT_EQ(count_lines(count), 3);
  ex()->close(st);
  assert_no_children();
}

TEST(whole_killed_by_signal) {
  tdm_outcome_t o;
  void *st;

  st = open_ok(TDM_MODE_WHOLE, script("die9", "kill -9 $$\n"),
               ",retries=1,backoff-ms=1");
  o = run_one(st, 4, "/data/f");
  ASSERT_EQ(o.result, TDM_PROC_FAIL);
  ASSERT_EQ(o.exit_status, -9);
  ASSERT_EQ(o.attempts, 2);
  ASSERT_STR_EQ(o.msg, "killed by signal 9 (SIGKILL) after 2 attempts");
  ex()->close(st);

  /* SIGPIPE is ignored by the host, but not in the child: it dies of it. */
  signal(SIGPIPE, SIG_IGN);
  st = open_ok(TDM_MODE_WHOLE, script("pipe", "kill -PIPE $$\n"), ",retries=0");
  o = run_one(st, 4, "/data/f");
  ASSERT_EQ(o.exit_status, -SIGPIPE);
  ex()->close(st);
  assert_no_children();
}

/* A program that cannot be run: a FAIL outcome at once, not retried. */
TEST(whole_missing_program) {
  int fds = fd_count();
  tdm_outcome_t o;
  char want[TDM_MSG_MAX];
  void *st;

  st = open_ok(TDM_MODE_WHOLE, "/nonexistent/prog --x", ",retries=3");
  o = run_one(st, 11, "/data/f");
  ASSERT_EQ(o.result, TDM_PROC_FAIL);
  ASSERT_EQ(o.attempts, 1);
  ASSERT_EQ(o.exit_status, 127);
  snprintf(want, sizeof(want), "cannot run \"/nonexistent/prog\": %s",
           strerror(ENOENT));
  ASSERT_STR_EQ(o.msg, want);
  ex()->close(st);

  /* Looked up on PATH, not found. */
  st = open_ok(TDM_MODE_WHOLE, "tidemark-no-such-program-here", "");
  o = run_one(st, 12, "/data/f");
  ASSERT_EQ(o.result, TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(o.msg, "tidemark-no-such-program-here"));
  ASSERT_NOT_NULL(strstr(o.msg, strerror(ENOENT)));
  ex()->close(st);

  /* Not executable. */
  tdm_test_write(tdm_test_path("noexec"), "#!/bin/sh\n", 10);
  st = open_ok(TDM_MODE_WHOLE, tdm_test_path("noexec"), "");
  o = run_one(st, 13, "/data/f");
  ASSERT_EQ(o.result, TDM_PROC_FAIL);
  ASSERT_EQ(o.exit_status, 126);
  ASSERT_NOT_NULL(strstr(o.msg, strerror(EACCES)));
  ex()->close(st);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* stdout and stderr of the child reach our stderr, line by line, each line
   prefixed with the file; long lines in pieces; a last line without a
   newline gets one. */
TEST(whole_output_prefixed) {
  const char *err = TPATH("stderr");
  char want[16384], longline[10001];
  tdm_outcome_t o;
  char *got;
  int saved;
  void *st;

  memset(longline, 'y', 10000);
  longline[10000] = '\0';
  st = open_ok(TDM_MODE_WHOLE,
               script("talk", "echo out one\n"
                              "echo err one >&2\n"
                              "echo out two\n"
                              "head -c 10000 /dev/zero | tr '\\0' y; echo\n"
                              "printf 'no newline'\n"),
               "");
  saved = take_stderr(err);
  o = run_one(st, 1, "/d/f.csv");
  ex()->close(st);
  put_stderr_back(saved);
  ASSERT_EQ(o.result, TDM_PROC_OK);
  got = tdm_test_read(err, NULL);
  snprintf(want, sizeof(want),
           "tidemark: exec: /d/f.csv: out one\n"
           "tidemark: exec: /d/f.csv: err one\n"
           "tidemark: exec: /d/f.csv: out two\n"
           "tidemark: exec: /d/f.csv: %.4096s\n"
           "tidemark: exec: /d/f.csv: %.4096s\n"
           "tidemark: exec: /d/f.csv: %.1808s\n"
           "tidemark: exec: /d/f.csv: no newline\n",
           longline, longline, longline);
  ASSERT_STR_EQ(got, want);
  free(got);
  assert_no_children();
}

/* Many files through 3 slots: every one gets exactly one outcome. */
TEST(whole_many_files) {
  enum { N = 40 };
  const char *log = TPATH("log");
  int seen[N + 1] = {0}, done = 0, fds = fd_count();
  char msg[TDM_MSG_MAX], name[32];
  tdm_outcome_t o[8];
  void *st;

  setenv("LOG", log, 1);
  st = open_ok(TDM_MODE_WHOLE,
               script("logit", "echo \"$TIDEMARK_PATH\" >> \"$LOG\"\n"),
               ",jobs=3");
  for (int i = 1; i <= N; i++) {
    int rc;
    snprintf(name, sizeof(name), "/f/%d", i);
    while ((rc = give_file(st, (uint64_t)i, name, msg)) == TDM_PROC_RETRY) {
      int k = ex()->poll(st, o, 8, 100);
      for (int j = 0; j < k; j++) {
        ASSERT_EQ(o[j].result, TDM_PROC_OK);
        seen[o[j].file_id]++;
        done++;
      }
    }
    ASSERT_EQ(rc, TDM_PROC_PENDING);
  }
  while (done < N) {
    int k = ex()->poll(st, o, 8, 1000);
    ASSERT_GT(k, 0);
    for (int j = 0; j < k; j++) {
      seen[o[j].file_id]++;
      done++;
    }
  }
  for (int i = 1; i <= N; i++)
    ASSERT_EQ(seen[i], 1);
  ASSERT_EQ(count_lines(log), N);
  ex()->close(st);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* close() with children running: SIGTERM, reaped, no outcome. */
TEST(whole_close_terminates_children) {
  char msg[TDM_MSG_MAX];
  int fds = fd_count();
  uint64_t t0;
  void *st;

  st = open_ok(TDM_MODE_WHOLE, script("long", "exec sleep 30\n"), ",jobs=3");
  for (int i = 1; i <= 3; i++)
    ASSERT_EQ(give_file(st, (uint64_t)i, "/f", msg), TDM_PROC_PENDING);
  t0 = ms_now();
  ex()->close(st);
  ASSERT_LT(ms_now() - t0, 2000);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* A child that ignores SIGTERM is killed after the grace period. */
TEST(whole_close_kills_stubborn_child) {
  char msg[TDM_MSG_MAX];
  const char *err = TPATH("stderr");
  uint64_t t0, took;
  int saved;
  void *st;

  st = open_ok(TDM_MODE_WHOLE,
               script("stubborn", "trap '' TERM\n"
                                  "echo started\n"
                                  "while :; do sleep 0.1; done\n"),
               "");
  ASSERT_EQ(give_file(st, 1, "/f", msg), TDM_PROC_PENDING);
  sleep_ms(200); /* let it install its trap */
  saved = take_stderr(err);
  t0 = ms_now();
  ex()->close(st);
  took = ms_now() - t0;
  put_stderr_back(saved);
  ASSERT_GE(took, 4500);
  ASSERT_LT(took, 8000);
  {
    char *log = tdm_test_read(err, NULL);
    ASSERT_NOT_NULL(strstr(log, "tidemark: exec: /f: still running 5 s "
                                "after SIGTERM; killing it\n"));
    free(log);
  }
  assert_no_children();
}

/* ---- tail mode ---------------------------------------------------------- */

static int feed(void *st, const void *data, size_t len, char *msg) {
  tdm_chunk_t c = {
      .file_id = 1, .path = "/src/app.log", .data = data, .len = len};
  msg[0] = '\0';
  return ex()->process(st, &c, msg);
}

static int commit(void *st, char *msg) {
  unsigned char blob[TDM_RESTORE_MAX];
  size_t len = sizeof(blob);
  int rc;
  msg[0] = '\0';
  rc = ex()->commit(st, blob, &len, msg);
  ASSERT_EQ(len, 0);
  return rc;
}

/* Chunks reach the program's stdin whole and in order, also one far larger
   than the pipe. */
TEST(tail_streams_in_order) {
  const char *out = TPATH("out");
  size_t big_len = (3u << 20) + 11, total = 0, got_len;
  char *want = malloc(big_len + (1u << 20));
  char *big = malloc(big_len);
  char cmd[4096], msg[TDM_MSG_MAX];
  int fds = fd_count();
  char *got;
  void *st;

  ASSERT(want != NULL && big != NULL);
  signal(SIGPIPE, SIG_IGN);
  snprintf(cmd, sizeof(cmd), "%s '%s'", script("catto", "exec cat > \"$1\"\n"),
           out);
  st = open_ok(TDM_MODE_TAIL, cmd, "");
  for (int i = 0; i < 5000; i++) {
    char line[64];
    int n = snprintf(line, sizeof(line), "line %d\n", i);
    ASSERT_EQ(feed(st, line, (size_t)n, msg), TDM_PROC_OK);
    memcpy(want + total, line, (size_t)n);
    total += (size_t)n;
    if (i % 1000 == 999)
      ASSERT_EQ(commit(st, msg), TDM_PROC_OK);
  }
  for (size_t i = 0; i < big_len; i++)
    big[i] = (char)('a' + (i * 7) % 26);
  big[big_len - 1] = '\n';
  ASSERT_EQ(feed(st, big, big_len, msg), TDM_PROC_OK);
  memcpy(want + total, big, big_len);
  total += big_len;
  ASSERT_EQ(feed(st, "last\n", 5, msg), TDM_PROC_OK);
  memcpy(want + total, "last\n", 5);
  total += 5;
  ASSERT_EQ(commit(st, msg), TDM_PROC_OK);
  ex()->close(st); /* EOF: cat finishes */
  got = tdm_test_read(out, &got_len);
  ASSERT_EQ(got_len, total);
  ASSERT_EQ(memcmp(got, want, total), 0);
  free(got);
  free(want);
  free(big);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* commit() returns only when the program has read everything. */
TEST(tail_commit_waits_for_drain) {
  const char *out = TPATH("out");
  char cmd[4096], msg[TDM_MSG_MAX], chunk[4096];
  size_t n = 0;
  uint64_t t0, took;
  void *st;

  signal(SIGPIPE, SIG_IGN);
  /* dash's read takes a byte at a time: what it has read, it has taken. */
  snprintf(cmd, sizeof(cmd), "%s '%s'",
           script("slow", "while IFS= read -r l; do sleep 0.02; "
                          "printf '%s\\n' \"$l\"; done > \"$1\"\n"),
           out);
  st = open_ok(TDM_MODE_TAIL, cmd, "");
  for (int i = 0; i < 20; i++)
    n += (size_t)snprintf(chunk + n, sizeof(chunk) - n, "l%d\n", i);
  ASSERT_EQ(feed(st, chunk, n, msg), TDM_PROC_OK);
  t0 = ms_now();
  ASSERT_EQ(commit(st, msg), TDM_PROC_OK);
  took = ms_now() - t0;
  ASSERT_GE(took, 19 * 20 - 40);
  ASSERT_GE(count_lines(out), 19); /* the last one may be in its hands */
  ex()->close(st);
  ASSERT_EQ(count_lines(out), 20);
  assert_no_children();
}

/* A program that does not read: commit() gives up (RETRY) after a bounded
   wait; process() refuses (RETRY, nothing written) when there is no room;
   close() kills it after its grace period. */
TEST(tail_not_reading) {
  const char *err = TPATH("stderr");
  char msg[TDM_MSG_MAX];
  char *block = calloc(1, 64u << 10);
  uint64_t t0, took;
  int saved, rc, fds = fd_count();
  void *st;

  ASSERT_NOT_NULL(block);
  signal(SIGPIPE, SIG_IGN);
  st = open_ok(TDM_MODE_TAIL, "sleep 30", ",stall-ms=1000");
  ASSERT_EQ(feed(st, "x\n", 2, msg), TDM_PROC_OK);
  t0 = ms_now();
  ASSERT_EQ(commit(st, msg), TDM_PROC_RETRY);
  took = ms_now() - t0;
  ASSERT_GE(took, 900);
  ASSERT_LT(took, 4000);
  ASSERT_NOT_NULL(strstr(msg, "has not read any of the 2 bytes"));
  ASSERT_NOT_NULL(strstr(msg, "stall-ms"));
  /* Fill the pipe: then a chunk is refused whole. */
  while ((rc = feed(st, block, 64u << 10, msg)) == TDM_PROC_OK) {
  }
  ASSERT_EQ(rc, TDM_PROC_RETRY);
  ASSERT_NOT_NULL(strstr(msg, "not reading its input"));
  saved = take_stderr(err);
  t0 = ms_now();
  ex()->close(st);
  took = ms_now() - t0;
  put_stderr_back(saved);
  ASSERT_GE(took, 4500);
  ASSERT_LT(took, 8000);
  free(block);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

static pid_t last_pid(const char *path) {
  char *s = tdm_test_read(path, NULL), *p = s, *last = s;
  pid_t pid;
  for (; *p; p++)
    if (*p == '\n' && p[1] != '\0')
      last = p + 1;
  pid = (pid_t)atol(last);
  free(s);
  return pid;
}

/* Wait until `pid` (our child) is a zombie, without reaping it. */
static void wait_zombie(pid_t pid) {
  char path[64], buf[512];
  for (int i = 0; i < 500; i++) {
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
      return;
    if (fgets(buf, sizeof(buf), f) != NULL) {
      char *p = strrchr(buf, ')');
      if (p != NULL && p[1] == ' ' && p[2] == 'Z') {
        fclose(f);
        return;
      }
    }
    fclose(f);
    sleep_ms(10);
  }
  TDM_FAIL_("pid %ld did not end", (long)pid);
}

/* The program is killed: the next process() restarts it and answers RETRY;
   the chunk offered again reaches the new program. Bytes accepted since the
   last commit when it died make commit() answer RETRY. */
TEST(tail_restart_after_kill) {
  const char *out = TPATH("out");
  const char *pids = TPATH("pids");
  char cmd[4096], msg[TDM_MSG_MAX];
  int fds = fd_count();
  pid_t pid;
  char *got;
  void *st;

  signal(SIGPIPE, SIG_IGN);
  snprintf(cmd, sizeof(cmd), "%s '%s' '%s'",
           script("catpid", "echo $$ >> \"$2\"\nexec cat >> \"$1\"\n"), out,
           pids);
  st = open_ok(TDM_MODE_TAIL, cmd, ",backoff-ms=50");
  ASSERT_EQ(feed(st, "a\n", 2, msg), TDM_PROC_OK);
  ASSERT_EQ(commit(st, msg), TDM_PROC_OK);
  while (count_lines(pids) < 1)
    sleep_ms(5);
  pid = last_pid(pids);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  wait_zombie(pid);

  ASSERT_EQ(feed(st, "b\n", 2, msg), TDM_PROC_RETRY);
  ASSERT_NOT_NULL(strstr(msg, "killed by signal 9"));
  ASSERT_NOT_NULL(strstr(msg, "restarted"));
  ASSERT_EQ(feed(st, "b\n", 2, msg), TDM_PROC_OK);
  ASSERT_EQ(commit(st, msg), TDM_PROC_OK); /* nothing was lost */
  while (count_lines(pids) < 2)
    sleep_ms(5);
  ASSERT_NE(last_pid(pids), pid);

  /* Killed with "c" accepted but not committed: the checkpoint must not
     pass it. */
  ASSERT_EQ(feed(st, "c\n", 2, msg), TDM_PROC_OK);
  pid = last_pid(pids);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  wait_zombie(pid);
  ASSERT_EQ(feed(st, "d\n", 2, msg), TDM_PROC_RETRY);
  ASSERT_EQ(feed(st, "d\n", 2, msg), TDM_PROC_OK);
  ASSERT_EQ(commit(st, msg), TDM_PROC_RETRY);
  ASSERT_NOT_NULL(strstr(msg, "delivered again"));

  /* Dying again before any commit: the restart waits out the backoff. */
  while (count_lines(pids) < 3)
    sleep_ms(5);
  pid = last_pid(pids);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  wait_zombie(pid);
  ASSERT_EQ(feed(st, "e\n", 2, msg), TDM_PROC_RETRY);
  ASSERT_NOT_NULL(strstr(msg, "restarting it in"));
  sleep_ms(60);
  ASSERT_EQ(feed(st, "e\n", 2, msg), TDM_PROC_RETRY);
  ASSERT_NOT_NULL(strstr(msg, "restarted"));
  ASSERT_EQ(feed(st, "e\n", 2, msg), TDM_PROC_OK);
  ex()->close(st);
  got = tdm_test_read(out, NULL);
  /* "c" and "d" may or may not have reached a cat before it was killed. */
  ASSERT_EQ(strncmp(got, "a\nb\n", 4), 0);
  ASSERT_EQ(strcmp(got + strlen(got) - 2, "e\n"), 0);
  free(got);
  ASSERT_EQ(count_lines(pids), 4);
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* A program that closes its stdin and exits (head -n 1): found on the next
   write (reaped or EPIPE), restarted. */
TEST(tail_program_exits_early) {
  const char *out = TPATH("out");
  char cmd[4096], msg[TDM_MSG_MAX];
  int rc = TDM_PROC_OK, i;
  char *got;
  void *st;

  signal(SIGPIPE, SIG_IGN);
  snprintf(cmd, sizeof(cmd), "%s '%s'",
           script("head1", "exec head -n 1 >> \"$1\"\n"), out);
  st = open_ok(TDM_MODE_TAIL, cmd, "");
  ASSERT_EQ(feed(st, "one\n", 4, msg), TDM_PROC_OK);
  while (count_lines(out) < 1)
    sleep_ms(5);
  for (i = 0; i < 200 && rc == TDM_PROC_OK; i++) {
    rc = feed(st, "two\n", 4, msg);
    if (rc == TDM_PROC_OK)
      sleep_ms(10);
  }
  ASSERT_EQ(rc, TDM_PROC_RETRY);
  ASSERT_NOT_NULL(strstr(msg, "restarted"));
  ASSERT_EQ(commit(st, msg), TDM_PROC_RETRY); /* "one" was not committed */
  ASSERT_EQ(feed(st, "three\n", 6, msg), TDM_PROC_OK);
  while (count_lines(out) < 2)
    sleep_ms(5);
  ex()->close(st);
  got = tdm_test_read(out, NULL);
  ASSERT_STR_EQ(got, "one\nthree\n");
  free(got);
  assert_no_children();
}

TEST(tail_missing_program_fails_open) {
  char msg[TDM_MSG_MAX];
  int fds = fd_count();
  void *st;
  ASSERT_EQ(
      open_spec(TDM_MODE_TAIL, "exec:cmd=/nonexistent/shipper -v", &st, msg),
      TDM_PROC_FAIL);
  ASSERT_NOT_NULL(strstr(msg, "/nonexistent/shipper"));
  ASSERT_NOT_NULL(strstr(msg, strerror(ENOENT)));
  ASSERT_EQ(fd_count(), fds);
  assert_no_children();
}

/* The program's output goes to our stderr prefixed with its name. */
TEST(tail_output_prefixed) {
  const char *err = TPATH("stderr");
  char msg[TDM_MSG_MAX], want[8192];
  const char *prog;
  char *got;
  int saved;
  void *st;

  signal(SIGPIPE, SIG_IGN);
  prog = script("upper", "tr a-z A-Z\necho bye >&2\n");
  saved = take_stderr(err);
  st = open_ok(TDM_MODE_TAIL, prog, "");
  ASSERT_EQ(feed(st, "hello\nworld\n", 12, msg), TDM_PROC_OK);
  ASSERT_EQ(commit(st, msg), TDM_PROC_OK);
  ex()->close(st);
  put_stderr_back(saved);
  got = tdm_test_read(err, NULL);
  snprintf(want, sizeof(want),
           "tidemark: exec: %s: HELLO\ntidemark: exec: %s: WORLD\n"
           "tidemark: exec: %s: bye\n",
           prog, prog, prog);
  ASSERT_STR_EQ(got, want);
  free(got);
  assert_no_children();
}
