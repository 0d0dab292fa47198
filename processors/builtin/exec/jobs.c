/*
 * builtin/exec/jobs.c: exec's whole mode, one run of the program per complete
 * file: job slots, retries with backoff, outcomes handed out by poll() (the
 * contract is at the top of exec.c).
 */
#include "exec.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
    unsigned d = tdm__exec_backoff_delay(x->backoff_ms, j->attempts);
    j->state = JOB_WAITING;
    j->pid = 0;
    j->due = tdm__exec_now_ms() + d;
    tdm__exec_say(j->out.prefix, j->out.prefix_len,
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
    err = tdm__exec_spawn(x, x->argv, env, -1, &pid, &fd);
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

  tdm__exec_relay_drain(&j->out);
  r = tdm__exec_reap(j->pid, &status);
  if (r == 0)
    return;
  /* Everything it wrote before it ended is in the pipe now. A grandchild
     may still hold the pipe open: take what is there, then let go. */
  tdm__exec_relay_drain(&j->out);
  tdm__exec_relay_close(&j->out);
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
  job_failed(x, j, tdm__exec_describe(status, why, sizeof(why)), why, 0);
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
        now = tdm__exec_now_ms();
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

int tdm__exec_whole_file(exec_t *x, const tdm_file_info_t *info, char *msg) {
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
  j->out.prefix = tdm__exec_make_prefix(info->path, &j->out.prefix_len);
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

int tdm__exec_whole_poll(exec_t *x, tdm_outcome_t *out, size_t max,
                         int wait_ms) {
  uint64_t deadline =
      tdm__exec_now_ms() + (wait_ms > 0 ? (uint64_t)wait_ms : 0);

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
    now = tdm__exec_now_ms();
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
void tdm__exec_whole_close(exec_t *x) {
  uint64_t deadline = tdm__exec_now_ms() + CLOSE_WAIT_MS;
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
      tdm__exec_relay_drain(&j->out);
      if (tdm__exec_reap(j->pid, &status) !=
          0) { /* ended, or not ours any more */
        tdm__exec_relay_drain(&j->out);
        tdm__exec_relay_close(&j->out);
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
    if (!killed && tdm__exec_now_ms() >= deadline) {
      for (unsigned i = 0; i < x->jobs; i++)
        if (x->job[i].state == JOB_RUNNING) {
          tdm__exec_say(x->job[i].out.prefix, x->job[i].out.prefix_len,
                        "still running %d s after SIGTERM; killing it",
                        CLOSE_WAIT_MS / 1000);
          kill(x->job[i].pid, SIGKILL);
        }
      killed = 1;
    }
    (void)poll(x->pfd, npfd, SLICE_MS);
  }
  for (unsigned i = 0; i < x->jobs; i++) {
    tdm__exec_relay_close(&x->job[i].out);
    job_clear(&x->job[i]);
  }
}
