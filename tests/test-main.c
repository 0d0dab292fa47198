/* test-main.c: the runner behind tests/test.h. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

tdm_test_entry_t tdm_tests_[TDM_TEST_MAX];
int tdm_n_tests_;
char tdm_test_dir[4096];

#define TEST_TIMEOUT_S 120

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static int run_one(const tdm_test_entry_t *t) {
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tdm_test_dir, sizeof(tdm_test_dir), "%s/tdm-test-%s-XXXXXX", base,
           t->name);
  if (mkdtemp(tdm_test_dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  t->fn();
  nftw(tdm_test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

static int run_forked(const tdm_test_entry_t *t) {
  pid_t pid = fork();
  int status;
  if (pid == 0) {
    alarm(TEST_TIMEOUT_S);
    exit(run_one(t)); /* exit, not _exit: LeakSanitizer runs at exit */
  }
  if (pid < 0 || waitpid(pid, &status, 0) < 0) {
    perror("fork/waitpid");
    return 1;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    printf("ok - %s\n", t->name);
    return 0;
  }
  if (WIFSIGNALED(status))
    printf("not ok - %s (signal %d%s)\n", t->name, WTERMSIG(status),
           WTERMSIG(status) == SIGALRM ? ", timeout" : "");
  else
    printf("not ok - %s (exit %d)\n", t->name, WEXITSTATUS(status));
  return 1;
}

int main(int argc, char **argv) {
  int failed = 0;
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1) {
    for (int i = 0; i < tdm_n_tests_; i++)
      if (strcmp(tdm_tests_[i].name, argv[1]) == 0)
        return run_forked(&tdm_tests_[i]);
    fprintf(stderr, "%s: no test named '%s'\n", argv[0], argv[1]);
    return 2;
  }
  for (int i = 0; i < tdm_n_tests_; i++)
    failed += run_forked(&tdm_tests_[i]);
  printf("%d passed, %d failed\n", tdm_n_tests_ - failed, failed);
  return failed != 0;
}

static void write_mode(const char *path, const void *data, size_t len,
                       int flags) {
  int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
  const char *p = data;
  if (fd < 0)
    TDM_FAIL_("open %s: %s", path, strerror(errno));
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0)
      TDM_FAIL_("write %s: %s", path, strerror(errno));
    p += n;
    len -= (size_t)n;
  }
  close(fd);
}

void tdm_test_write(const char *path, const void *data, size_t len) {
  write_mode(path, data, len, O_TRUNC);
}

void tdm_test_append(const char *path, const void *data, size_t len) {
  write_mode(path, data, len, O_APPEND);
}

char *tdm_test_read(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  char *buf;
  size_t off = 0;
  if (fd < 0 || fstat(fd, &st) != 0)
    TDM_FAIL_("open %s: %s", path, strerror(errno));
  buf = malloc((size_t)st.st_size + 1);
  ASSERT_NOT_NULL(buf);
  while (off < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
    if (n <= 0)
      break;
    off += (size_t)n;
  }
  close(fd);
  buf[off] = '\0';
  if (len != NULL)
    *len = off;
  return buf;
}

const char *tdm_test_path(const char *name) {
  static char bufs[4][8192];
  static int next;
  char *b = bufs[next++ & 3];
  int n = snprintf(b, sizeof(bufs[0]), "%s/%s", tdm_test_dir, name);
  if (n < 0 || (size_t)n >= sizeof(bufs[0]))
    TDM_FAIL_("test path too long: %s", name);
  return b;
}
