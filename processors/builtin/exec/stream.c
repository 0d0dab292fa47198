/*
 * builtin/exec/stream.c: exec's tail mode, one long-running program fed the
 * bytes through its stdin: backpressure, restarts with backoff, commit once
 * it has read everything (the contract is at the top of exec.c).
 */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Start the program with a fresh stdin pipe. Returns 0, or an errno value
 * with a message in `msg` and nothing running.
 */
int tdm__exec_tail_start(exec_t *x, char *msg) {
  int p[2], err, fd = -1;
  pid_t pid = 0;

  err = tdm__exec_pipe_hi(p);
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
    err = tdm__exec_spawn(x, x->argv, environ, p[0], &pid, &fd);
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
  tdm__exec_relay_drain(&x->out);
  tdm__exec_relay_close(&x->out);
  if (have_status)
    tdm__exec_describe(status, x->why, sizeof(x->why));
  else
    snprintf(x->why, sizeof(x->why), "ended (its exit status was lost)");
  if (!x->closing || !have_status || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    tdm__exec_say(x->out.prefix, x->out.prefix_len, "%s (pid %ld)%s", x->why,
                  (long)x->pid,
                  x->uncommitted > 0
                      ? "; the bytes since the last checkpoint will be "
                        "delivered again"
                      : "");
  x->pid = 0;
  if (x->uncommitted > 0)
    x->lost = 1;
  x->fails++;
  x->due =
      tdm__exec_now_ms() +
      (x->fails <= 1 ? 0
                     : tdm__exec_backoff_delay(x->backoff_ms, x->fails - 1));
}

/* Has the program ended? Reap it if so. */
static void tail_check(exec_t *x) {
  int status = 0;
  pid_t r;
  if (x->pid <= 0)
    return;
  tdm__exec_relay_drain(&x->out);
  r = tdm__exec_reap(x->pid, &status);
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
void tdm__exec_tail_stop(exec_t *x, int grace_ms) {
  uint64_t deadline = tdm__exec_now_ms() + (uint64_t)grace_ms;
  if (x->in_fd >= 0)
    close(x->in_fd);
  x->in_fd = -1;
  tail_check(x);
  while (x->pid > 0 && tdm__exec_now_ms() < deadline)
    tail_wait(x, SLICE_MS, 0);
  if (x->pid > 0) {
    int status = 0;
    pid_t r;
    if (x->closing)
      tdm__exec_say(
          x->out.prefix, x->out.prefix_len,
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
  uint64_t now = tdm__exec_now_ms();

  if (now < x->due) {
    snprintf(msg, TDM_MSG_MAX,
             "exec: \"%s\" %s; restarting it in %" PRIu64 " ms", x->prog,
             x->why, x->due - now);
    return TDM_PROC_RETRY;
  }
  if (tdm__exec_tail_start(x, err) != 0) {
    x->fails++;
    x->due = now + tdm__exec_backoff_delay(x->backoff_ms, x->fails - 1);
    snprintf(msg, TDM_MSG_MAX, "%.200s; trying again in %" PRIu64 " ms", err,
             x->due - now);
    return TDM_PROC_RETRY;
  }
  snprintf(msg, TDM_MSG_MAX, "exec: \"%s\" %s; restarted it (pid %ld)", x->prog,
           x->why, (long)x->pid);
  tdm__exec_say(x->out.prefix, x->out.prefix_len, "restarted (pid %ld)",
                (long)x->pid);
  return TDM_PROC_RETRY;
}

static int unread_bytes(int fd) {
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) != 0)
    return 0;
  return n;
}

int tdm__exec_tail_process(exec_t *x, const tdm_chunk_t *c, char *msg) {
  const char *data = c->data;
  size_t off = 0;
  uint64_t deadline;

  tail_check(x);
  if (x->pid <= 0)
    return tail_restart(x, msg);

  /* Wait for room for the whole chunk, so that a RETRY leaves nothing
     behind. A chunk larger than the pipe cannot wait for that: it starts
     when the pipe is empty and goes in pieces. */
  deadline = tdm__exec_now_ms() + ROOM_WAIT_MS;
  for (;;) {
    int unread = unread_bytes(x->in_fd);
    size_t need = c->len < (size_t)x->pipe_cap ? c->len : (size_t)x->pipe_cap;
    if ((size_t)(x->pipe_cap - unread) >= need)
      break;
    if (tdm__exec_now_ms() >= deadline) {
      snprintf(msg, TDM_MSG_MAX,
               "exec: \"%s\" is not reading its input (%d bytes waiting)",
               x->prog, unread);
      return TDM_PROC_RETRY;
    }
    tail_wait(x, SLICE_MS, 0);
    if (x->pid <= 0)
      return tail_restart(x, msg);
  }

  deadline = tdm__exec_now_ms() + x->stall_ms;
  while (off < c->len) {
    ssize_t w = write(x->in_fd, data + off, c->len - off);
    if (w > 0) {
      off += (size_t)w;
      deadline = tdm__exec_now_ms() + x->stall_ms;
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
      if (tdm__exec_now_ms() >= deadline) {
        tdm__exec_say(
            x->out.prefix, x->out.prefix_len,
            "has not read its input for %u ms with a chunk half written "
            "(stall-ms); killing it",
            x->stall_ms);
        tdm__exec_tail_stop(x, 0);
        return tail_restart(x, msg);
      }
      tail_wait(x, SLICE_MS * 10, POLLOUT);
      if (x->pid <= 0)
        return tail_restart(x, msg);
      continue;
    }
    /* EPIPE: it closed its stdin (and is ending, or useless to us). */
    tdm__exec_tail_stop(x, EPIPE_WAIT_MS);
    return tail_restart(x, msg);
  }
  x->uncommitted += c->len;
  return TDM_PROC_OK;
}

int tdm__exec_tail_commit(exec_t *x, char *msg) {
  uint64_t deadline = tdm__exec_now_ms() + x->stall_ms;
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
      deadline = tdm__exec_now_ms() + x->stall_ms;
    last = unread;
    if (tdm__exec_now_ms() >= deadline) {
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
