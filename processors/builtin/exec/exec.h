/*
 * builtin/exec/exec.h: what the parts of the `exec` processor share (internal;
 * the contract is at the top of exec.c). exec.c: parameters, open and the
 * methods; argv.c: cmd into words; spawn.c: starting a child and relaying its
 * output; jobs.c: whole mode; stream.c: tail mode.
 */
#ifndef TDM_PROC_EXEC_H
#define TDM_PROC_EXEC_H

#include "../builtin.h"
#include "base/log.h"

#include <poll.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/types.h>

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

typedef struct relay {
  int fd;       /* read end of the child's stdout+stderr; -1 once closed */
  char *prefix; /* "tidemark: exec: NAME: " */
  size_t prefix_len;
  size_t len; /* bytes of an unfinished line in buf */
  char buf[LINE_CAP];
} relay_t;

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

/* ---- argv.c -------------------------------------------------------------- */

/* Split `cmd` into x->argv / x->words, and set x->argc and x->prog (see the
   top of exec.c). Returns 0, or -1 with a message naming cmd in `msg`. */
int tdm__exec_split_cmd(exec_t *x, const char *cmd, char *msg);

/* ---- spawn.c ------------------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t tdm__exec_now_ms(void);
/* backoff * 2^(n-1), at most BACKOFF_CAP_MS (n >= 1). */
unsigned tdm__exec_backoff_delay(unsigned backoff, unsigned n);
/* One line "PREFIX<printf>" on stderr (cut at 511 bytes). */
void tdm__exec_say(const char *prefix, size_t plen, const char *fmt, ...)
    TDM__PRINTF(3, 4);
/* "tidemark: exec: NAME: " with NAME's control characters escaped; malloc'd,
   NULL when out of memory. */
char *tdm__exec_make_prefix(const char *name, size_t *len);
/* Describe a wait(2) status into `buf` ("exited with status 3", "killed by
   signal 9 (SIGKILL)") and return the outcome's exit_status: the code, or -N
   for signal N. */
int32_t tdm__exec_describe(int status, char *buf, size_t cap);
/* waitpid(pid, WNOHANG) over EINTR: pid (reaped, *status set), 0 (still
   running) or -1 (errno; ECHILD: not ours to reap any more). */
pid_t tdm__exec_reap(pid_t pid, int *status);
/* Relay what the child wrote, without blocking (at most DRAIN_MAX bytes). At
   end of file the pipe is closed. */
void tdm__exec_relay_drain(relay_t *r);
/* Emit an unfinished last line and close the pipe. */
void tdm__exec_relay_close(relay_t *r);
/* A pipe with both ends O_CLOEXEC and above 2. Returns 0 or an errno value. */
int tdm__exec_pipe_hi(int p[2]);
/* Start `argv` with `envp`: stdin `in_fd` (-1: /dev/null), stdout and stderr
   a new pipe whose read end (non-blocking, O_CLOEXEC) goes to *out_fd.
   Returns 0, or an errno value with nothing left open. */
int tdm__exec_spawn(exec_t *x, char *const argv[], char *const envp[],
                    int in_fd, pid_t *pid, int *out_fd);

/* ---- jobs.c (whole mode) ------------------------------------------------- */

/* file(): PENDING, RETRY (no free slot, out of memory) or FAIL (no path). */
int tdm__exec_whole_file(exec_t *x, const tdm_file_info_t *info, char *msg);
/* poll(): the number of outcomes written to out (at most max). */
int tdm__exec_whole_poll(exec_t *x, tdm_outcome_t *out, size_t max,
                         int wait_ms);
/* close(): SIGTERM, CLOSE_WAIT_MS, SIGKILL; every child reaped, slots freed. */
void tdm__exec_whole_close(exec_t *x);

/* ---- stream.c (tail mode) ------------------------------------------------ */

/* Start the program with a fresh stdin pipe. Returns 0, or an errno value
   with a message in `msg` and nothing running. */
int tdm__exec_tail_start(exec_t *x, char *msg);
/* Stop the program: EOF on its stdin, `grace_ms` to end, then SIGKILL. */
void tdm__exec_tail_stop(exec_t *x, int grace_ms);
/* process(): OK (written whole) or RETRY (nothing written, or restarted). */
int tdm__exec_tail_process(exec_t *x, const tdm_chunk_t *c, char *msg);
/* commit(): OK once the program has read everything, or RETRY. */
int tdm__exec_tail_commit(exec_t *x, char *msg);

#endif
