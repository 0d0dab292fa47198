/*
 * builtin/exec/spawn.c: starting a child (posix_spawnp, never a shell) and
 * relaying its output to our stderr line by line, each line prefixed
 * "tidemark: exec: NAME: "; the small helpers the modes share.
 */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------- */

uint64_t tdm__exec_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* backoff * 2^(n-1), at most BACKOFF_CAP_MS (n >= 1). */
unsigned tdm__exec_backoff_delay(unsigned backoff, unsigned n) {
  uint64_t d = backoff;
  for (unsigned i = 1; i < n && d < BACKOFF_CAP_MS; i++)
    d *= 2;
  return d > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : (unsigned)d;
}

/* Write the iovecs to stderr, whole, over EINTR and partial writes. A
   non-blocking stderr that stays full is given up on: logging cannot fail. */
static void put_stderr(struct iovec *iov, int n) {
  int stuck = 0;
  while (n > 0) {
    ssize_t w = writev(STDERR_FILENO, iov, n);
    if (w < 0) {
      struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};
      if (errno == EINTR)
        continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && stuck++ < 10 &&
          poll(&p, 1, 100) >= 0)
        continue;
      return;
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
}

/* One line "PREFIXtext\n" on stderr, in one writev. */
static void emit(const char *prefix, size_t plen, const char *p, size_t n) {
  struct iovec iov[3] = {
      {(void *)prefix, plen}, {(void *)p, n}, {(void *)"\n", 1}};
  put_stderr(iov, 3);
}

void tdm__exec_say(const char *prefix, size_t plen, const char *fmt, ...) {
  char line[512];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  emit(prefix, plen, line,
       (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* "tidemark: exec: NAME: " with NAME's control characters escaped; malloc'd,
   NULL when out of memory. */
char *tdm__exec_make_prefix(const char *name, size_t *len) {
  size_t cap = 4 * strlen(name) + 8;
  char *q = malloc(cap), *p;
  size_t n;
  if (q == NULL)
    return NULL;
  tdm__quote(name, q, cap);
  n = strlen("tidemark: exec: ") + strlen(q) + 2;
  p = malloc(n + 1);
  if (p != NULL)
    snprintf(p, n + 1, "tidemark: exec: %s: ", q);
  free(q);
  *len = p != NULL ? n : 0;
  return p;
}

/*
 * Describe a wait(2) status into `buf` ("exited with status 3", "killed by
 * signal 9 (SIGKILL)") and return the outcome's exit_status: the code, or -N
 * for signal N.
 */
int32_t tdm__exec_describe(int status, char *buf, size_t cap) {
  if (WIFEXITED(status)) {
    snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char *abbrev = sigabbrev_np(sig);
    snprintf(buf, cap, "killed by signal %d (SIG%s)%s", sig,
             abbrev != NULL ? abbrev : "?",
             WCOREDUMP(status) ? ", core dumped" : "");
    return -sig;
  }
  snprintf(buf, cap, "ended with wait status %#x", (unsigned)status);
  return -1;
}

/* waitpid(pid, WNOHANG) over EINTR: pid (reaped, *status set), 0 (still
   running) or -1 (errno; ECHILD: not ours to reap any more). */
pid_t tdm__exec_reap(pid_t pid, int *status) {
  pid_t r;
  do
    r = waitpid(pid, status, WNOHANG);
  while (r < 0 && errno == EINTR);
  return r;
}

/* ---- relaying a child's output to our stderr ----------------------------- */

/* Emit the complete lines in buf; a full buffer with no newline is emitted as
   a piece. What is left is the start of the next line. */
static void relay_lines(relay_t *r) {
  size_t start = 0;
  for (;;) {
    char *nl = memchr(r->buf + start, '\n', r->len - start);
    if (nl == NULL)
      break;
    emit(r->prefix, r->prefix_len, r->buf + start,
         (size_t)(nl - (r->buf + start)));
    start = (size_t)(nl - r->buf) + 1;
  }
  if (start == 0 && r->len == LINE_CAP) {
    emit(r->prefix, r->prefix_len, r->buf, r->len);
    r->len = 0;
    return;
  }
  memmove(r->buf, r->buf + start, r->len - start);
  r->len -= start;
}

/* Emit an unfinished last line and close the pipe. */
void tdm__exec_relay_close(relay_t *r) {
  if (r->len > 0)
    emit(r->prefix, r->prefix_len, r->buf, r->len);
  r->len = 0;
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
}

/* Relay what the child wrote, without blocking (at most DRAIN_MAX bytes, so a
   chatty child cannot hold us). At end of file the pipe is closed. */
void tdm__exec_relay_drain(relay_t *r) {
  size_t total = 0;
  while (r->fd >= 0 && total < DRAIN_MAX) {
    ssize_t n = read(r->fd, r->buf + r->len, LINE_CAP - r->len);
    if (n > 0) {
      r->len += (size_t)n;
      total += (size_t)n;
      relay_lines(r);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    tdm__exec_relay_close(
        r); /* end of file, or an error we cannot do better on */
  }
}

/* ---- starting a child ---------------------------------------------------- */

/*
 * A pipe with both ends O_CLOEXEC and above 2: a host started with 0, 1 or 2
 * closed would otherwise get a pipe end there, and the child's dup2s would
 * clobber it. Returns 0 or an errno value.
 */
int tdm__exec_pipe_hi(int p[2]) {
  if (pipe2(p, O_CLOEXEC) != 0)
    return errno;
  for (int i = 0; i < 2; i++) {
    if (p[i] < 3) {
      int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
      if (fd < 0) {
        int err = errno;
        close(p[0]);
        close(p[1]);
        return err;
      }
      close(p[i]);
      p[i] = fd;
    }
  }
  return 0;
}

/*
 * Start `argv` with `envp`: stdin `in_fd` (-1: /dev/null), stdout and stderr
 * a new pipe whose read end (non-blocking, O_CLOEXEC) goes to *out_fd.
 * Returns 0, or an errno value (the program could not be run: ENOENT, EACCES,
 * ...; or we ran out of something) with nothing left open.
 */
int tdm__exec_spawn(exec_t *x, char *const argv[], char *const envp[],
                    int in_fd, pid_t *pid, int *out_fd) {
  posix_spawn_file_actions_t fa;
  int p[2], err;

  err = tdm__exec_pipe_hi(p);
  if (err != 0)
    return err;
  /* Only our end is non-blocking: the flag lives in the open file
     description, and the child's end is a description of its own. */
  if (fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) {
    err = errno;
    goto out;
  }
  err = posix_spawn_file_actions_init(&fa);
  if (err != 0)
    goto out;
  err = in_fd >= 0 ? posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO)
                   : posix_spawn_file_actions_addopen(&fa, STDIN_FILENO,
                                                      "/dev/null", O_RDONLY, 0);
  if (err == 0)
    err = posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
  if (err == 0)
    err = posix_spawn_file_actions_adddup2(&fa, p[1], STDERR_FILENO);
  if (err == 0)
    err = posix_spawnp(pid, argv[0], &fa, &x->attr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
out:
  close(p[1]);
  if (err != 0) {
    close(p[0]);
    return err;
  }
  *out_fd = p[0];
  return 0;
}
