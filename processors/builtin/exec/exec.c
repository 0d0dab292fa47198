/*
 * builtin/exec/exec.c: the `exec` processor, `exec:cmd=PROGRAM ARGS[,jobs=N]
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
#include "exec.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- open: parameters and cmd -------------------------------------------- */

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

/*
 * Read the parameters into x (jobs, retries, backoff-ms, stall-ms, over the
 * defaults already there) and *cmd. Returns 0, or -1 with a message naming
 * the parameter in `msg`.
 */
static int exec_params(exec_t *x, const tdm_open_args_t *args,
                       const char **cmd) {
  static const struct {
    const char *key;
    unsigned lo, hi;
  } nums[] = {{"jobs", 1, JOBS_MAX},
              {"retries", 0, RETRIES_MAX},
              {"backoff-ms", 0, BACKOFF_CAP_MS},
              {"stall-ms", 1, STALL_MAX_MS}};
  enum { N_NUMS = sizeof(nums) / sizeof(nums[0]) };
  unsigned *num_dst[N_NUMS] = {&x->jobs, &x->retries, &x->backoff_ms,
                               &x->stall_ms};
  int seen[N_NUMS] = {0};
  char q[64];

  *cmd = NULL;
  for (size_t i = 0; i < args->n_params; i++) {
    const tdm_kv_t *kv = &args->params[i];
    size_t k;
    if (strcmp(kv->key, "cmd") == 0) {
      if (*cmd != NULL) {
        snprintf(args->msg, TDM_MSG_MAX, "exec: parameter \"cmd\" given twice");
        return -1;
      }
      *cmd = kv->value;
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
      return -1;
    }
    if (seen[k]++) {
      snprintf(args->msg, TDM_MSG_MAX, "exec: parameter \"%s\" given twice",
               nums[k].key);
      return -1;
    }
    if (parse_uint(kv->value, nums[k].lo, nums[k].hi, num_dst[k]) != 0) {
      snprintf(args->msg, TDM_MSG_MAX,
               "exec: %s=\"%s\": expected a whole number from %u to %u",
               nums[k].key, tdm__quote(kv->value, q, sizeof(q)), nums[k].lo,
               nums[k].hi);
      return -1;
    }
  }
  if (*cmd == NULL) {
    snprintf(args->msg, TDM_MSG_MAX,
             "exec: missing parameter \"cmd\" (use exec:cmd=PROGRAM ARGS)");
    return -1;
  }
  return 0;
}

/* Children start clean: no signal blocked (a libuv worker thread blocks
   them all) and every signal at its default (we ignore SIGPIPE). Returns 0,
   or -1 with a message in `msg`. */
static int exec_attr(exec_t *x, char *msg) {
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if (posix_spawnattr_init(&x->attr) == 0)
    x->attr_ok = 1;
  if (!x->attr_ok || posix_spawnattr_setsigmask(&x->attr, &none) != 0 ||
      posix_spawnattr_setsigdefault(&x->attr, &all) != 0 ||
      posix_spawnattr_setflags(&x->attr, POSIX_SPAWN_SETSIGMASK |
                                             POSIX_SPAWN_SETSIGDEF) != 0) {
    snprintf(msg, TDM_MSG_MAX, "exec: posix_spawnattr: out of memory");
    return -1;
  }
  return 0;
}

/* Whole mode: the job slots. Tail mode: start the program. Returns 0, or -1
   with a message in `msg`. */
static int exec_start(exec_t *x, char *msg) {
  if (x->mode == TDM_MODE_WHOLE) {
    x->job = calloc(x->jobs, sizeof(*x->job));
    x->pfd = calloc(x->jobs, sizeof(*x->pfd));
    if (x->job == NULL || x->pfd == NULL) {
      snprintf(msg, TDM_MSG_MAX, "exec: out of memory");
      return -1;
    }
    for (unsigned i = 0; i < x->jobs; i++)
      x->job[i].out.fd = -1;
    return 0;
  }
  x->out.prefix = tdm__exec_make_prefix(x->argv[0], &x->out.prefix_len);
  if (x->out.prefix == NULL) {
    snprintf(msg, TDM_MSG_MAX, "exec: out of memory");
    return -1;
  }
  return tdm__exec_tail_start(x, msg) != 0 ? -1 : 0;
}

static int exec_open(void **state, const tdm_open_args_t *args) {
  const char *cmd;
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
  x->stall_ms = STALL_DEFAULT_MS;

  if (exec_params(x, args, &cmd) != 0 ||
      tdm__exec_split_cmd(x, cmd, args->msg) != 0 ||
      exec_attr(x, args->msg) != 0 || exec_start(x, args->msg) != 0) {
    exec_free(x);
    return TDM_PROC_FAIL;
  }
  *state = x;
  return TDM_PROC_OK;
}

/* ---- the methods --------------------------------------------------------- */

static int exec_process(void *state, const tdm_chunk_t *chunk, char *msg) {
  exec_t *x = state;
  if (x->mode == TDM_MODE_WHOLE)
    return TDM_PROC_OK; /* the program reads the file itself */
  return tdm__exec_tail_process(x, chunk, msg);
}

static int exec_commit(void *state, void *restore, size_t *restore_len,
                       char *msg) {
  exec_t *x = state;
  (void)restore;
  *restore_len = 0;
  if (x->mode == TDM_MODE_WHOLE)
    return TDM_PROC_OK;
  return tdm__exec_tail_commit(x, msg);
}

static int exec_file(void *state, const tdm_file_info_t *info, char *msg) {
  exec_t *x = state;
  if (x->mode != TDM_MODE_WHOLE)
    return TDM_PROC_OK;
  return tdm__exec_whole_file(x, info, msg);
}

static int exec_poll(void *state, tdm_outcome_t *out, size_t max, int wait_ms) {
  exec_t *x = state;
  if (x->mode != TDM_MODE_WHOLE)
    return 0;
  return tdm__exec_whole_poll(x, out, max, wait_ms);
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
      tdm__exec_whole_close(x);
  } else {
    x->closing = 1;
    x->uncommitted = 0;
    tdm__exec_tail_stop(x, CLOSE_WAIT_MS);
    tdm__exec_relay_close(&x->out);
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
