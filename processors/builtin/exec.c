/*
 * builtin/exec.c: the `exec` processor, `exec:cmd=PROGRAM ARGS[,jobs=N]
 * [,retries=N][,backoff-ms=N][,stall-ms=N]`. Runs a program of the operator's, never
 * through a shell.
 *
 * cmd is split into words the way a shell splits them, and nothing else: no
 * variables, globs, tildes, command substitution or redirections. Whitespace
 * separates words; '...' is literal; "..." is literal except that \" and \\
 * stand for " and \; outside quotes a backslash makes the next character
 * literal. An unterminated quote or a trailing backslash is refused at open.
 * PROGRAM is looked up on PATH unless it holds a '/' (posix_spawnp).
 *
 * WHOLE MODE (one run per complete file)
 *
 *   process() takes and ignores the bytes. file(info) starts
 *       PROGRAM ARGS... PATH
 *   with PATH (info->path) as the last argument, stdin /dev/null, and the
 *   environment of tidemark plus TIDEMARK_PATH, TIDEMARK_SIZE (bytes) and
 *   TIDEMARK_HASH (32 hex digits, XXH3-128); values of those three inherited
 *   from tidemark's own environment are replaced, not duplicated.
 *
 *   Job slots. `jobs` (default: the number of online CPUs) files may be in
 *   flight at once. A file holds its slot from file() until poll() has handed
 *   out its outcome, through its retries and backoff waits (so an outcome
 *   not yet collected keeps its slot busy). file() returns
 *     TDM_PROC_PENDING  the file took a slot (its child started, or a spawn
 *                       failure was recorded as its outcome): the outcome
 *                       comes from poll(), exactly once;
 *     TDM_PROC_RETRY    every slot is taken (or out of memory): nothing was
 *                       kept; poll() and offer the file again;
 *     TDM_PROC_FAIL     info has no path (a host bug).
 *
 *   Retries. An exit status other than 0, or a death by a signal, is tried
 *   again after backoff-ms (default 500), doubling each time, at most 30 s,
 *   up to `retries` (default 3) more times. The retries happen inside exec:
 *   poll() (and file()) start the children whose wait is over, so the host
 *   must keep calling poll() while anything is pending. The final outcome:
 *   result TDM_PROC_OK (exit 0) or TDM_PROC_FAIL with exit_status (the code,
 *   or -N for signal N), attempts, and msg ("exited with status 3 after 4
 *   attempts", "killed by signal 9 (SIGKILL) after 1 attempt"). A program
 *   that cannot be run at all (ENOENT, EACCES, ENOEXEC, ...) fails at once,
 *   with exit_status 127 (not found) or 126, like a shell; a spawn that
 *   failed for want of resources (EAGAIN, ENOMEM, EMFILE) is retried.
 *
 *   poll(out, max, wait_ms) never blocks when wait_ms <= 0 or when nothing is
 *   in flight. Otherwise it blocks until an outcome is ready or wait_ms has
 *   passed, in slices of SLICE_MS: poll(2) on the children's output pipes (an
 *   exit usually wakes it at once, by closing the pipe), waitpid(WNOHANG)
 *   after each slice, and the next due retry shortens the slice. file() and
 *   poll() never block otherwise; a child that has ended stays a zombie
 *   until the next of them. commit() does nothing (OK, no blob).
 *
 * TAIL MODE (one long-running program fed the bytes)
 *
 *   open() starts PROGRAM ARGS (no path argument) with its stdin a pipe
 *   (grown to 1 MiB when the system allows). process() writes the chunk to
 *   it whole: it waits up to ROOM_WAIT_MS (1 s) for room, then answers RETRY
 *   without having written anything (backpressure: the host offers it again,
 *   and meanwhile checkpoints). A chunk larger than the pipe goes in pieces
 *   as the program reads; if the program reads nothing for stall-ms
 *   (default 60000) with such a chunk half written, it is killed and
 *   restarted. commit() waits until the program has read every byte
 *   (FIONREAD on the write end of the pipe, which Linux answers with the
 *   unread byte count), then answers OK with no restore blob. A program that
 *   is alive and reading, however slowly, is waited for: at most a pipe's
 *   worth (1 MiB) is ever unread. Only when it has read nothing for stall-ms
 *   does commit() answer RETRY (the checkpoint is cancelled). "Read" is as
 *   far as exec can see: bytes the program read but had not acted on when it
 *   died are lost to it, as with any pipe.
 *
 *   A program that dies (found by waitpid, or EPIPE on a write) is restarted
 *   by the next process(), which answers RETRY with a message (the host offers
 *   the chunk again, to the new program). The first restart is immediate;
 *   each further death without a successful commit between doubles the wait
 *   (backoff-ms, at most 30 s), during which process() answers RETRY. If the
 *   dead program left bytes accepted since the last successful commit (they
 *   may never have been read), every later commit() answers RETRY: the
 *   checkpoint must not move past them. The host rolls back (closes and
 *   reopens the instance, re-delivers from the last checkpoint): at least
 *   once. `jobs` and `retries` mean nothing in tail mode.
 *
 * OUTPUT. The child's stdout and stderr share one pipe, which exec reads
 * (never blocking) and writes to its own stderr line by line, each line
 * prefixed "tidemark: exec: NAME: ", NAME being the file's path (whole mode)
 * or PROGRAM (tail mode) with control characters escaped (tdm__quote), so a
 * newline in a file name cannot forge a line. A line longer than LINE_CAP is
 * cut into prefixed pieces; a last line without a newline gets one.
 *
 * CLOSE. Whole mode: running children get SIGTERM and CLOSE_WAIT_MS (5 s) to
 * exit, then SIGKILL; all are reaped. Their files never got an outcome, so
 * the host has not recorded them and handles them again after a restart (at
 * least once). Tail mode: the program's stdin is closed (EOF), it gets
 * CLOSE_WAIT_MS to finish, then SIGKILL; it is reaped.
 *
 * The host must not ignore SIGCHLD (children would be reaped by the kernel
 * and their exit status lost: each such run counts as failed) and must not
 * reap with waitpid(-1) (it would steal our children); it must ignore SIGPIPE
 * (tail mode gets EPIPE instead). Children start with every signal at its
 * default and none blocked, whatever the calling thread had; they stay in
 * tidemark's process group and session. Every descriptor exec opens is
 * O_CLOEXEC; a child inherits only its 0, 1 and 2 (and whatever tidemark
 * itself holds without FD_CLOEXEC). The instance has no global state and is
 * used from one thread at a time.
 */
#include "../registry.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define JOBS_MAX 1024
#define RETRIES_MAX 1000
#define RETRIES_DEFAULT 3
#define BACKOFF_DEFAULT_MS 500u
#define BACKOFF_CAP_MS 30000u  /* no wait between two tries is longer */
#define LINE_CAP 4096          /* longer output lines are cut into pieces */
#define DRAIN_MAX (256u << 10) /* bytes relayed per pipe per call, at most */
#define SLICE_MS 10            /* how often a blocked wait rechecks waitpid */
#define CLOSE_WAIT_MS 5000     /* grace before SIGKILL at close() */
#define EPIPE_WAIT_MS 1000     /* grace for a program that closed its stdin */
#define ROOM_WAIT_MS 1000      /* tail: process() waits this long for room */
#define STALL_DEFAULT_MS 60000u   /* tail: no byte read this long: stalled */
#define STALL_MAX_MS 86400000u    /* stall-ms: at most a day */
#define TAIL_PIPE_SIZE (1 << 20)

/* ---- small helpers ------------------------------------------------------- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* backoff * 2^(n-1), at most BACKOFF_CAP_MS (n >= 1). */
static unsigned backoff_delay(unsigned backoff, unsigned n) {
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

static void say(const char *prefix, size_t plen, const char *fmt, ...)
    TDM__PRINTF(3, 4);

static void say(const char *prefix, size_t plen, const char *fmt, ...) {
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
static char *make_prefix(const char *name, size_t *len) {
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
static int32_t describe(int status, char *buf, size_t cap) {
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
static pid_t reap(pid_t pid, int *status) {
  pid_t r;
  do
    r = waitpid(pid, status, WNOHANG);
  while (r < 0 && errno == EINTR);
  return r;
}

/* ---- relaying a child's output to our stderr ----------------------------- */

typedef struct relay {
  int fd;       /* read end of the child's stdout+stderr; -1 once closed */
  char *prefix; /* "tidemark: exec: NAME: " */
  size_t prefix_len;
  size_t len; /* bytes of an unfinished line in buf */
  char buf[LINE_CAP];
} relay_t;

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
static void relay_close(relay_t *r) {
  if (r->len > 0)
    emit(r->prefix, r->prefix_len, r->buf, r->len);
  r->len = 0;
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
}

/* Relay what the child wrote, without blocking (at most DRAIN_MAX bytes, so a
   chatty child cannot hold us). At end of file the pipe is closed. */
static void relay_drain(relay_t *r) {
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
    relay_close(r); /* end of file, or an error we cannot do better on */
  }
}

/* ---- the instance -------------------------------------------------------- */

enum job_state { JOB_FREE = 0, JOB_RUNNING, JOB_WAITING, JOB_DONE };

/* Whole mode: one file in flight. */
typedef struct job {
  enum job_state state;
  uint64_t file_id;
  char *path;
  uint64_t length;
  char hash_hex[33];
  pid_t pid; /* JOB_RUNNING */
  uint32_t attempts;
  uint64_t due;          /* JOB_WAITING: when to try again (now_ms) */
  tdm_outcome_t outcome; /* JOB_DONE */
  relay_t out;
} job_t;

typedef struct exec_s {
  tdm_mode_t mode;
  char **argv; /* argc words, then room for the path and NULL */
  size_t argc;
  char *words; /* what argv points into */
  unsigned jobs, retries, backoff_ms;
  unsigned stall_ms; /* tail: a program that reads nothing this long */
  posix_spawnattr_t attr;
  int attr_ok;   /* attr was initialised */
  char prog[80]; /* argv[0], quoted for messages (cut) */
  int closing;   /* in close(): an ending program is not news */

  /* whole mode */
  job_t *job;         /* jobs slots */
  struct pollfd *pfd; /* jobs entries, for poll(2) */

  /* tail mode */
  pid_t pid;            /* the program, 0 when there is none */
  int in_fd;            /* write end of its stdin, -1 when none */
  int pipe_cap;         /* capacity of that pipe */
  uint64_t uncommitted; /* bytes accepted since the last successful commit */
  int lost;             /* a program died with uncommitted bytes */
  unsigned fails;       /* deaths since the last successful commit */
  uint64_t due;         /* no restart before this (now_ms) */
  char why[64];         /* how the last program ended */
  relay_t out;          /* its output; prefix "tidemark: exec: PROGRAM: " */
} exec_t;

/* ---- open: parameters and cmd -------------------------------------------- */

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

/*
 * Split `cmd` into x->argv / x->words (see the top of the file). Returns 0,
 * or -1 with a message naming cmd in `msg`.
 */
static int split_cmd(exec_t *x, const char *cmd, char *msg) {
  size_t len = strlen(cmd), n = 0;
  const char *p = cmd, *what = NULL;
  char *o, q[160];

  /* The words never take more room than the text (each word's NUL takes the
     place of the separator or NUL after it); at most len/2 + 1 words. */
  x->words = malloc(len + 1);
  x->argv = malloc((len / 2 + 3) * sizeof(*x->argv));
  if (x->words == NULL || x->argv == NULL) {
    snprintf(msg, TDM_MSG_MAX, "exec: out of memory");
    return -1;
  }
  o = x->words;
  for (;;) {
    while (is_space(*p))
      p++;
    if (*p == '\0')
      break;
    x->argv[n++] = o;
    while (*p != '\0' && !is_space(*p)) {
      if (*p == '\'') {
        for (p++; *p != '\0' && *p != '\''; p++)
          *o++ = *p;
        if (*p == '\0') {
          what = "unterminated single quote";
          goto bad;
        }
        p++;
      } else if (*p == '"') {
        for (p++; *p != '\0' && *p != '"'; p++) {
          if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
          *o++ = *p;
        }
        if (*p == '\0') {
          what = "unterminated double quote";
          goto bad;
        }
        p++;
      } else if (*p == '\\') {
        if (p[1] == '\0') {
          what = "ends with a lone backslash";
          goto bad;
        }
        *o++ = p[1];
        p += 2;
      } else {
        *o++ = *p++;
      }
    }
    *o++ = '\0';
  }
  if (n == 0) {
    what = "no program (use exec:cmd=PROGRAM ARGS)";
    goto bad;
  }
  x->argc = n;
  tdm__quote(x->argv[0], x->prog, sizeof(x->prog));
  x->argv[n] = NULL;
  x->argv[n + 1] = NULL;
  return 0;

bad:
  snprintf(msg, TDM_MSG_MAX, "exec: cmd \"%s\": %s",
           tdm__quote(cmd, q, sizeof(q)), what);
  return -1;
}

/* A whole number in [lo, hi], digits only. */
static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out) {
  uint64_t v = 0;
  if (s == NULL || *s == '\0')
    return -1;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > hi)
      return -1;
  }
  if (v < lo)
    return -1;
  *out = (unsigned)v;
  return 0;
}

static void exec_free(exec_t *x);
static int tail_start(exec_t *x, char *msg);

static int exec_open(void **state, const tdm_open_args_t *args) {
  static const struct {
    const char *key;
    unsigned lo, hi;
  } nums[] = {{"jobs", 1, JOBS_MAX},
              {"retries", 0, RETRIES_MAX},
              {"backoff-ms", 0, BACKOFF_CAP_MS},
              {"stall-ms", 1, STALL_MAX_MS}};
  enum { N_NUMS = sizeof(nums) / sizeof(nums[0]) };
  const char *cmd = NULL;
  unsigned *num_dst[N_NUMS];
  int seen[N_NUMS] = {0};
  sigset_t none, all;
  char q[64];
  long ncpu;
  exec_t *x;

  x = calloc(1, sizeof(*x));
  if (x == NULL) {
    snprintf(args->msg, TDM_MSG_MAX, "exec: out of memory");
    return TDM_PROC_FAIL;
  }
  x->in_fd = -1;
  x->out.fd = -1;
  x->mode = args->mode;
  ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  x->jobs = ncpu < 1 ? 1 : ncpu > JOBS_MAX ? JOBS_MAX : (unsigned)ncpu;
  x->retries = RETRIES_DEFAULT;
  x->backoff_ms = BACKOFF_DEFAULT_MS;
  num_dst[0] = &x->jobs;
  num_dst[1] = &x->retries;
  num_dst[2] = &x->backoff_ms;
  x->stall_ms = STALL_DEFAULT_MS;
  num_dst[3] = &x->stall_ms;

  for (size_t i = 0; i < args->n_params; i++) {
    const tdm_kv_t *kv = &args->params[i];
    size_t k;
    if (strcmp(kv->key, "cmd") == 0) {
      if (cmd != NULL) {
        snprintf(args->msg, TDM_MSG_MAX, "exec: parameter \"cmd\" given twice");
        goto err;
      }
      cmd = kv->value;
      continue;
    }
    for (k = 0; k < N_NUMS; k++)
      if (strcmp(kv->key, nums[k].key) == 0)
        break;
    if (k == N_NUMS) {
      snprintf(args->msg, TDM_MSG_MAX,
               "exec: unknown parameter \"%s\" (exec takes cmd, jobs, "
               "retries, backoff-ms, stall-ms)",
               tdm__quote(kv->key, q, sizeof(q)));
      goto err;
    }
    if (seen[k]++) {
      snprintf(args->msg, TDM_MSG_MAX, "exec: parameter \"%s\" given twice",
               nums[k].key);
      goto err;
    }
    if (parse_uint(kv->value, nums[k].lo, nums[k].hi, num_dst[k]) != 0) {
      snprintf(args->msg, TDM_MSG_MAX,
               "exec: %s=\"%s\": expected a whole number from %u to %u",
               nums[k].key, tdm__quote(kv->value, q, sizeof(q)), nums[k].lo,
               nums[k].hi);
      goto err;
    }
  }
  if (cmd == NULL) {
    snprintf(args->msg, TDM_MSG_MAX,
             "exec: missing parameter \"cmd\" (use exec:cmd=PROGRAM ARGS)");
    goto err;
  }
  if (split_cmd(x, cmd, args->msg) != 0)
    goto err;

  /* Children start clean: no signal blocked (a libuv worker thread blocks
     them all) and every signal at its default (we ignore SIGPIPE). */
  sigemptyset(&none);
  sigfillset(&all);
  if (posix_spawnattr_init(&x->attr) == 0)
    x->attr_ok = 1;
  if (!x->attr_ok || posix_spawnattr_setsigmask(&x->attr, &none) != 0 ||
      posix_spawnattr_setsigdefault(&x->attr, &all) != 0 ||
      posix_spawnattr_setflags(&x->attr, POSIX_SPAWN_SETSIGMASK |
                                             POSIX_SPAWN_SETSIGDEF) != 0) {
    snprintf(args->msg, TDM_MSG_MAX, "exec: posix_spawnattr: out of memory");
    goto err;
  }

  if (x->mode == TDM_MODE_WHOLE) {
    x->job = calloc(x->jobs, sizeof(*x->job));
    x->pfd = calloc(x->jobs, sizeof(*x->pfd));
    if (x->job == NULL || x->pfd == NULL) {
      snprintf(args->msg, TDM_MSG_MAX, "exec: out of memory");
      goto err;
    }
    for (unsigned i = 0; i < x->jobs; i++)
      x->job[i].out.fd = -1;
  } else {
    x->out.prefix = make_prefix(x->argv[0], &x->out.prefix_len);
    if (x->out.prefix == NULL) {
      snprintf(args->msg, TDM_MSG_MAX, "exec: out of memory");
      goto err;
    }
    if (tail_start(x, args->msg) != 0)
      goto err;
  }
  *state = x;
  return TDM_PROC_OK;

err:
  exec_free(x);
  return TDM_PROC_FAIL;
}

/* ---- starting a child ---------------------------------------------------- */

/*
 * A pipe with both ends O_CLOEXEC and above 2: a host started with 0, 1 or 2
 * closed would otherwise get a pipe end there, and the child's dup2s would
 * clobber it. Returns 0 or an errno value.
 */
static int pipe_hi(int p[2]) {
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
static int spawn(exec_t *x, char *const argv[], char *const envp[], int in_fd,
                 pid_t *pid, int *out_fd) {
  posix_spawn_file_actions_t fa;
  int p[2], err;

  err = pipe_hi(p);
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

/* Errors that say the program cannot be run, so that trying again is futile.
   Shell conventions for the status: 127 not found, 126 not runnable. */
static int spawn_is_final(int err) {
  return err == ENOENT || err == ENOTDIR || err == EACCES || err == EPERM ||
         err == ENOEXEC || err == ELOOP || err == ENAMETOOLONG ||
         err == EISDIR || err == E2BIG;
}

/* ---- whole mode ---------------------------------------------------------- */

static int env_is_ours(const char *e) {
  return strncmp(e, "TIDEMARK_PATH=", 14) == 0 ||
         strncmp(e, "TIDEMARK_SIZE=", 14) == 0 ||
         strncmp(e, "TIDEMARK_HASH=", 14) == 0;
}

/* environ without TIDEMARK_{PATH,SIZE,HASH}, plus ours for `j`. One
   allocation (free() it); NULL when out of memory. */
static char **make_env(const job_t *j) {
  size_t n = 0, k = 0, extra;
  char **env, *s;
  int w;

  for (char **e = environ; e != NULL && *e != NULL; e++)
    n++;
  extra = strlen(j->path) + 64 + 64;
  env = malloc((n + 4) * sizeof(*env) + extra);
  if (env == NULL)
    return NULL;
  s = (char *)(env + n + 4);
  for (char **e = environ; e != NULL && *e != NULL; e++)
    if (!env_is_ours(*e))
      env[k++] = *e;
  env[k++] = s;
  w = sprintf(s, "TIDEMARK_PATH=%s", j->path);
  s += w + 1;
  env[k++] = s;
  w = sprintf(s, "TIDEMARK_SIZE=%" PRIu64, j->length);
  s += w + 1;
  if (j->hash_hex[0] != '\0') {
    env[k++] = s;
    sprintf(s, "TIDEMARK_HASH=%s", j->hash_hex);
  }
  env[k] = NULL;
  return env;
}

/* `j` is over: its outcome waits for poll(). */
static void job_finish(job_t *j, int result, int32_t code, const char *msg) {
  j->state = JOB_DONE;
  j->pid = 0;
  memset(&j->outcome, 0, sizeof(j->outcome));
  j->outcome.file_id = j->file_id;
  j->outcome.result = result;
  j->outcome.exit_status = code;
  j->outcome.attempts = j->attempts;
  snprintf(j->outcome.msg, sizeof(j->outcome.msg), "%s", msg);
}

/* An attempt of `j` failed (`why`, `code` for exit_status). Try again after
   the backoff unless it was the last allowed or `final`. */
static void job_failed(exec_t *x, job_t *j, int32_t code, const char *why,
                       int final) {
  char msg[TDM_MSG_MAX];

  if (!final && j->attempts <= x->retries) {
    unsigned d = backoff_delay(x->backoff_ms, j->attempts);
    j->state = JOB_WAITING;
    j->pid = 0;
    j->due = now_ms() + d;
    say(j->out.prefix, j->out.prefix_len,
        "%s; attempt %" PRIu32 " of %u, trying again in %u ms", why,
        j->attempts, x->retries + 1, d);
    return;
  }
  if (final)
    snprintf(msg, sizeof(msg), "%s", why);
  else
    snprintf(msg, sizeof(msg), "%s after %" PRIu32 " attempt%s", why,
             j->attempts, j->attempts == 1 ? "" : "s");
  job_finish(j, TDM_PROC_FAIL, code, msg);
}

/* Start the next attempt of `j`. Never fails: a spawn error is recorded as
   a failed attempt. */
static void job_start(exec_t *x, job_t *j) {
  char why[TDM_MSG_MAX];
  char **env;
  int err, fd = -1;
  pid_t pid = 0;

  j->attempts++;
  env = make_env(j);
  if (env == NULL) {
    err = ENOMEM;
  } else {
    x->argv[x->argc] = j->path;
    err = spawn(x, x->argv, env, -1, &pid, &fd);
    x->argv[x->argc] = NULL;
    free(env);
  }
  if (err == 0) {
    j->state = JOB_RUNNING;
    j->pid = pid;
    j->out.fd = fd;
    j->out.len = 0;
    return;
  }
  snprintf(why, sizeof(why), "cannot run \"%s\": %s", x->prog, strerror(err));
  job_failed(x, j, err == ENOENT ? 127 : 126, why, spawn_is_final(err));
}

/* A running `j`: relay its output, and if it has ended, judge the attempt. */
static void job_check(exec_t *x, job_t *j) {
  char why[128];
  int status = 0;
  pid_t r;

  relay_drain(&j->out);
  r = reap(j->pid, &status);
  if (r == 0)
    return;
  /* Everything it wrote before it ended is in the pipe now. A grandchild
     may still hold the pipe open: take what is there, then let go. */
  relay_drain(&j->out);
  relay_close(&j->out);
  j->pid = 0;
  if (r < 0) {
    job_failed(x, j, -1,
               "its exit status was lost (is SIGCHLD ignored, or did "
               "someone else reap it?)",
               0);
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    job_finish(j, TDM_PROC_OK, 0, "");
    return;
  }
  job_failed(x, j, describe(status, why, sizeof(why)), why, 0);
}

/* Reap, relay, and start the retries that are due. Never blocks. */
static void whole_service(exec_t *x) {
  uint64_t now = 0;
  for (unsigned i = 0; i < x->jobs; i++) {
    job_t *j = &x->job[i];
    if (j->state == JOB_RUNNING) {
      job_check(x, j);
    } else if (j->state == JOB_WAITING) {
      if (now == 0)
        now = now_ms();
      if (j->due <= now)
        job_start(x, j);
    }
  }
}

static void job_clear(job_t *j) {
  free(j->path);
  free(j->out.prefix);
  memset(j, 0, sizeof(*j));
  j->out.fd = -1;
}

static int whole_file(exec_t *x, const tdm_file_info_t *info, char *msg) {
  job_t *j = NULL;

  if (info == NULL || info->path == NULL) {
    snprintf(msg, TDM_MSG_MAX, "exec: file() without a path");
    return TDM_PROC_FAIL;
  }
  whole_service(x);
  for (unsigned i = 0; i < x->jobs && j == NULL; i++)
    if (x->job[i].state == JOB_FREE)
      j = &x->job[i];
  if (j == NULL) {
    snprintf(msg, TDM_MSG_MAX, "exec: all %u jobs are busy", x->jobs);
    return TDM_PROC_RETRY;
  }
  j->path = strdup(info->path);
  j->out.prefix = make_prefix(info->path, &j->out.prefix_len);
  if (j->path == NULL || j->out.prefix == NULL) {
    job_clear(j);
    snprintf(msg, TDM_MSG_MAX, "exec: out of memory");
    return TDM_PROC_RETRY;
  }
  j->file_id = info->file_id;
  j->length = info->length;
  if (info->hash_hex != NULL && strlen(info->hash_hex) < sizeof(j->hash_hex))
    strcpy(j->hash_hex, info->hash_hex);
  j->attempts = 0;
  job_start(x, j); /* RUNNING, or a failed attempt: WAITING or DONE */
  return TDM_PROC_PENDING;
}

/* Hand out finished outcomes (at most max) and free their slots. */
static size_t whole_collect(exec_t *x, tdm_outcome_t *out, size_t max) {
  size_t n = 0;
  for (unsigned i = 0; i < x->jobs && n < max; i++)
    if (x->job[i].state == JOB_DONE) {
      out[n++] = x->job[i].outcome;
      job_clear(&x->job[i]);
    }
  return n;
}

static int whole_poll(exec_t *x, tdm_outcome_t *out, size_t max, int wait_ms) {
  uint64_t deadline = now_ms() + (wait_ms > 0 ? (uint64_t)wait_ms : 0);

  for (;;) {
    uint64_t now, next_due = UINT64_MAX;
    size_t n, npfd = 0, busy = 0;
    int timeout;

    whole_service(x);
    n = whole_collect(x, out, max);
    if (n > 0 || max == 0 || wait_ms <= 0)
      return (int)n;
    for (unsigned i = 0; i < x->jobs; i++) {
      job_t *j = &x->job[i];
      if (j->state == JOB_RUNNING) {
        busy++;
        if (j->out.fd >= 0) {
          x->pfd[npfd].fd = j->out.fd;
          x->pfd[npfd].events = POLLIN;
          x->pfd[npfd].revents = 0;
          npfd++;
        }
      } else if (j->state == JOB_WAITING) {
        busy++;
        if (j->due < next_due)
          next_due = j->due;
      }
    }
    if (busy == 0)
      return 0; /* nothing in flight: nothing to wait for */
    now = now_ms();
    if (now >= deadline)
      return 0;
    if (next_due > deadline)
      next_due = deadline;
    if (next_due > now + SLICE_MS)
      next_due = now + SLICE_MS;
    timeout = next_due > now ? (int)(next_due - now) : 0;
    /* EINTR or not, the next round looks at everything again. */
    (void)poll(x->pfd, npfd, timeout);
  }
}

/* close(): SIGTERM the running children, give them CLOSE_WAIT_MS, then
   SIGKILL; reap every one. */
static void whole_close(exec_t *x) {
  uint64_t deadline = now_ms() + CLOSE_WAIT_MS;
  int killed = 0;

  for (unsigned i = 0; i < x->jobs; i++)
    if (x->job[i].state == JOB_RUNNING)
      kill(x->job[i].pid, SIGTERM);
  for (;;) {
    size_t npfd = 0, left = 0;
    int status;
    for (unsigned i = 0; i < x->jobs; i++) {
      job_t *j = &x->job[i];
      if (j->state != JOB_RUNNING)
        continue;
      relay_drain(&j->out);
      if (reap(j->pid, &status) != 0) { /* ended, or not ours any more */
        relay_drain(&j->out);
        relay_close(&j->out);
        j->state = JOB_FREE;
        j->pid = 0;
        continue;
      }
      left++;
      if (j->out.fd >= 0) {
        x->pfd[npfd].fd = j->out.fd;
        x->pfd[npfd].events = POLLIN;
        x->pfd[npfd].revents = 0;
        npfd++;
      }
    }
    if (left == 0)
      break;
    if (!killed && now_ms() >= deadline) {
      for (unsigned i = 0; i < x->jobs; i++)
        if (x->job[i].state == JOB_RUNNING) {
          say(x->job[i].out.prefix, x->job[i].out.prefix_len,
              "still running %d s after SIGTERM; killing it",
              CLOSE_WAIT_MS / 1000);
          kill(x->job[i].pid, SIGKILL);
        }
      killed = 1;
    }
    (void)poll(x->pfd, npfd, SLICE_MS);
  }
  for (unsigned i = 0; i < x->jobs; i++) {
    relay_close(&x->job[i].out);
    job_clear(&x->job[i]);
  }
}

/* ---- tail mode ----------------------------------------------------------- */

/*
 * Start the program with a fresh stdin pipe. Returns 0, or an errno value
 * with a message in `msg` and nothing running.
 */
static int tail_start(exec_t *x, char *msg) {
  int p[2], err, fd = -1;
  pid_t pid = 0;

  err = pipe_hi(p);
  if (err == 0) {
    if (fcntl(p[1], F_SETFL, O_NONBLOCK) != 0) {
      err = errno;
      close(p[0]);
      close(p[1]);
    }
  }
  if (err == 0) {
    /* Room for a good burst; refused (EPERM past the user's pipe quota) is
       fine, the default is smaller but works. */
    (void)fcntl(p[1], F_SETPIPE_SZ, TAIL_PIPE_SIZE);
    x->argv[x->argc] = NULL;
    err = spawn(x, x->argv, environ, p[0], &pid, &fd);
    close(p[0]);
    if (err != 0)
      close(p[1]);
  }
  if (err != 0) {
    snprintf(msg, TDM_MSG_MAX, "exec: cannot run \"%s\": %s", x->prog,
             strerror(err));
    return err;
  }
  x->pid = pid;
  x->in_fd = p[1];
  x->pipe_cap = fcntl(p[1], F_GETPIPE_SZ);
  if (x->pipe_cap <= 0)
    x->pipe_cap = 65536;
  x->out.fd = fd;
  x->out.len = 0;
  return 0;
}

/* The program has ended (`status` from waitpid, or have_status 0: lost).
   Close its pipes and remember what it means for restarts and commits. */
static void tail_ended(exec_t *x, int status, int have_status) {
  if (x->in_fd >= 0)
    close(x->in_fd);
  x->in_fd = -1;
  relay_drain(&x->out);
  relay_close(&x->out);
  if (have_status)
    describe(status, x->why, sizeof(x->why));
  else
    snprintf(x->why, sizeof(x->why), "ended (its exit status was lost)");
  if (!x->closing || !have_status || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    say(x->out.prefix, x->out.prefix_len, "%s (pid %ld)%s", x->why,
        (long)x->pid,
        x->uncommitted > 0 ? "; the bytes since the last checkpoint will be "
                             "delivered again"
                           : "");
  x->pid = 0;
  if (x->uncommitted > 0)
    x->lost = 1;
  x->fails++;
  x->due = now_ms() +
           (x->fails <= 1 ? 0 : backoff_delay(x->backoff_ms, x->fails - 1));
}

/* Has the program ended? Reap it if so. */
static void tail_check(exec_t *x) {
  int status = 0;
  pid_t r;
  if (x->pid <= 0)
    return;
  relay_drain(&x->out);
  r = reap(x->pid, &status);
  if (r != 0)
    tail_ended(x, status, r > 0);
}

/* Wait up to `ms` (relaying output, waking early for it), then check the
   program. `events` on in_fd (POLLOUT or 0) also wake it. */
static void tail_wait(exec_t *x, int ms, short events) {
  struct pollfd p[2];
  nfds_t n = 0;
  if (x->out.fd >= 0)
    p[n++] = (struct pollfd){.fd = x->out.fd, .events = POLLIN};
  if (events != 0 && x->in_fd >= 0)
    p[n++] = (struct pollfd){.fd = x->in_fd, .events = events};
  (void)poll(p, n, ms);
  tail_check(x);
}

/* Stop the program: EOF on its stdin, `grace_ms` to end, then SIGKILL. It is
   reaped either way. */
static void tail_stop(exec_t *x, int grace_ms) {
  uint64_t deadline = now_ms() + (uint64_t)grace_ms;
  if (x->in_fd >= 0)
    close(x->in_fd);
  x->in_fd = -1;
  tail_check(x);
  while (x->pid > 0 && now_ms() < deadline)
    tail_wait(x, SLICE_MS, 0);
  if (x->pid > 0) {
    int status = 0;
    pid_t r;
    if (x->closing)
      say(x->out.prefix, x->out.prefix_len,
          "still running %d ms after its input was closed; killing it",
          grace_ms);
    kill(x->pid, SIGKILL);
    do
      r = waitpid(x->pid, &status, 0);
    while (r < 0 && errno == EINTR);
    tail_ended(x, status, r == x->pid); /* else ECHILD: reaped elsewhere */
  }
}

/* The program is gone: start another when its backoff allows. Always RETRY:
   the host offers the chunk again, to the new program. */
static int tail_restart(exec_t *x, char *msg) {
  char err[TDM_MSG_MAX];
  uint64_t now = now_ms();

  if (now < x->due) {
    snprintf(msg, TDM_MSG_MAX,
             "exec: \"%s\" %s; restarting it in %" PRIu64 " ms", x->prog,
             x->why, x->due - now);
    return TDM_PROC_RETRY;
  }
  if (tail_start(x, err) != 0) {
    x->fails++;
    x->due = now + backoff_delay(x->backoff_ms, x->fails - 1);
    snprintf(msg, TDM_MSG_MAX, "%.200s; trying again in %" PRIu64 " ms", err,
             x->due - now);
    return TDM_PROC_RETRY;
  }
  snprintf(msg, TDM_MSG_MAX, "exec: \"%s\" %s; restarted it (pid %ld)", x->prog,
           x->why, (long)x->pid);
  say(x->out.prefix, x->out.prefix_len, "restarted (pid %ld)", (long)x->pid);
  return TDM_PROC_RETRY;
}

static int unread_bytes(int fd) {
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) != 0)
    return 0;
  return n;
}

static int tail_process(exec_t *x, const tdm_chunk_t *c, char *msg) {
  const char *data = c->data;
  size_t off = 0;
  uint64_t deadline;

  tail_check(x);
  if (x->pid <= 0)
    return tail_restart(x, msg);

  /* Wait for room for the whole chunk, so that a RETRY leaves nothing
     behind. A chunk larger than the pipe cannot wait for that: it starts
     when the pipe is empty and goes in pieces. */
  deadline = now_ms() + ROOM_WAIT_MS;
  for (;;) {
    int unread = unread_bytes(x->in_fd);
    size_t need = c->len < (size_t)x->pipe_cap ? c->len : (size_t)x->pipe_cap;
    if ((size_t)(x->pipe_cap - unread) >= need)
      break;
    if (now_ms() >= deadline) {
      snprintf(msg, TDM_MSG_MAX,
               "exec: \"%s\" is not reading its input (%d bytes waiting)",
               x->prog, unread);
      return TDM_PROC_RETRY;
    }
    tail_wait(x, SLICE_MS, 0);
    if (x->pid <= 0)
      return tail_restart(x, msg);
  }

  deadline = now_ms() + x->stall_ms;
  while (off < c->len) {
    ssize_t w = write(x->in_fd, data + off, c->len - off);
    if (w > 0) {
      off += (size_t)w;
      deadline = now_ms() + x->stall_ms;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (off == 0 && c->len <= (size_t)x->pipe_cap) {
        /* Room was there, but not in whole pages: nothing written yet, so
           it is still ours to refuse. */
        snprintf(msg, TDM_MSG_MAX,
                 "exec: \"%s\" is not reading its input fast enough", x->prog);
        return TDM_PROC_RETRY;
      }
      if (now_ms() >= deadline) {
        say(x->out.prefix, x->out.prefix_len,
            "has not read its input for %u ms with a chunk half written "
            "(stall-ms); killing it",
            x->stall_ms);
        tail_stop(x, 0);
        return tail_restart(x, msg);
      }
      tail_wait(x, SLICE_MS * 10, POLLOUT);
      if (x->pid <= 0)
        return tail_restart(x, msg);
      continue;
    }
    /* EPIPE: it closed its stdin (and is ending, or useless to us). */
    tail_stop(x, EPIPE_WAIT_MS);
    return tail_restart(x, msg);
  }
  x->uncommitted += c->len;
  return TDM_PROC_OK;
}

static int tail_commit(exec_t *x, char *msg) {
  uint64_t deadline = now_ms() + x->stall_ms;
  int last = -1; /* unread bytes at the last look */

  tail_check(x);
  for (;;) {
    int unread;
    if (x->lost) {
      snprintf(msg, TDM_MSG_MAX,
               "exec: \"%s\" %s before it had read everything accepted "
               "since the last checkpoint; that must be delivered again",
               x->prog, x->why);
      return TDM_PROC_RETRY;
    }
    if (x->pid <= 0)
      return TDM_PROC_OK; /* nothing accepted since it died */
    unread = unread_bytes(x->in_fd);
    if (unread == 0)
      break;
    /* Reading, however slowly, is backpressure: wait for it. Only a
       program that read nothing for stall-ms holds the checkpoint up. */
    if (last < 0 || unread < last)
      deadline = now_ms() + x->stall_ms;
    last = unread;
    if (now_ms() >= deadline) {
      snprintf(msg, TDM_MSG_MAX,
               "exec: \"%s\" has not read any of the %d bytes of its input "
               "still waiting in %u ms (stall-ms)",
               x->prog, unread, x->stall_ms);
      return TDM_PROC_RETRY;
    }
    tail_wait(x, SLICE_MS, 0);
  }
  x->uncommitted = 0;
  x->fails = 0;
  return TDM_PROC_OK;
}

/* ---- the methods --------------------------------------------------------- */

static int exec_process(void *state, const tdm_chunk_t *chunk, char *msg) {
  exec_t *x = state;
  if (x->mode == TDM_MODE_WHOLE)
    return TDM_PROC_OK; /* the program reads the file itself */
  return tail_process(x, chunk, msg);
}

static int exec_commit(void *state, void *restore, size_t *restore_len,
                       char *msg) {
  exec_t *x = state;
  (void)restore;
  *restore_len = 0;
  if (x->mode == TDM_MODE_WHOLE)
    return TDM_PROC_OK;
  return tail_commit(x, msg);
}

static int exec_file(void *state, const tdm_file_info_t *info, char *msg) {
  exec_t *x = state;
  if (x->mode != TDM_MODE_WHOLE)
    return TDM_PROC_OK;
  return whole_file(x, info, msg);
}

static int exec_poll(void *state, tdm_outcome_t *out, size_t max, int wait_ms) {
  exec_t *x = state;
  if (x->mode != TDM_MODE_WHOLE)
    return 0;
  return whole_poll(x, out, max, wait_ms);
}

/* Free an instance whose children are gone (or were never started). */
static void exec_free(exec_t *x) {
  if (x->attr_ok)
    posix_spawnattr_destroy(&x->attr);
  free(x->job);
  free(x->pfd);
  free(x->out.prefix);
  free(x->argv);
  free(x->words);
  free(x);
}

static void exec_close(void *state) {
  exec_t *x = state;
  if (x == NULL)
    return;
  if (x->mode == TDM_MODE_WHOLE) {
    if (x->job != NULL)
      whole_close(x);
  } else {
    x->closing = 1;
    x->uncommitted = 0;
    tail_stop(x, CLOSE_WAIT_MS);
    relay_close(&x->out);
  }
  exec_free(x);
}

static const tdm_processor_t exec_processor = {
    TDM_PROCESSOR_HEADER,
    .name = "exec",
    .summary = "whole mode: runs PROGRAM on each complete file "
               "(exec:cmd=PROGRAM ARGS), never through a shell; tail mode: "
               "streams the bytes into PROGRAM's stdin",
    .open = exec_open,
    .process = exec_process,
    .commit = exec_commit,
    .close = exec_close,
    .file = exec_file,
    .poll = exec_poll,
};

const tdm_processor_t *tdm__proc_exec(void) { return &exec_processor; }
