/*
 * main.c: the `tidemark` command, a thin layer over the library (tidemark.h).
 *
 * Parsing and validation live in config.c, status/reset in status.c; this
 * file maps commands to library calls and results to exit statuses:
 *   0  done, or stopped by SIGINT/SIGTERM after the final checkpoint
 *   1  a runtime failure (the library or the store has printed why)
 *   2  bad usage or configuration (the message names the option/file/line)
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "tidemark.h"

/*
 * The instance the signal handlers stop. A signal handler can reach nothing
 * else, so this one pointer is file-global; it is set only while
 * tdm_run_once() or tdm_run() runs.
 */
static tdm_t *volatile running;

/* SIGINT/SIGTERM: ask the run to checkpoint and return (async-signal-safe).
   Installed with SA_RESETHAND, so a second signal kills at once; nothing is
   lost then either, it is only delivered again next time (at least once). */
static void on_stop_signal(int sig) {
  tdm_t *t = running;
  (void)sig;
  if (t != NULL)
    tdm_stop(t);
}

/* SIGHUP during `run`: compare everything with the store. */
static void on_rescan_signal(int sig) {
  tdm_t *t = running;
  (void)sig;
  if (t != NULL)
    tdm_rescan(t);
}

static void set_rescan_signal(void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, NULL);
}

/* Install (`handler`) the SIGINT/SIGTERM handling; no SA_RESTART, so a
   blocking call returns EINTR and the loop sees the stop at once. */
static void set_stop_signals(void (*handler)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/*
 * The command's log sink, for the library's lines and its own: the library's
 * default sink (stderr, or journald's <N> prefixes: tdm_log_stderr) at the
 * verbosity asked for. At the default verbosity the info lines processors
 * say while they open (the nats stream and its duplicate window) belong to
 * the start line: they are held and printed after it. The last error the
 * library said is kept, so that a refused option can be traced to the line
 * of the INI file that gave it.
 */
typedef struct cli_log {
  tdm_log_level_t level; /* what -v/-q asked for */
  int hold;              /* default verbosity: hold info lines while opening */
  int opening;           /* processors are being opened */
  char held[8][512];
  size_t n_held;
  char last_error[1024];
} cli_log_t;

static cli_log_t log_state; /* outlives every tdm_t: tdm_close logs too */

static void cli_log(void *arg, tdm_log_level_t level, const char *msg) {
  cli_log_t *cl = arg;
  if (level == TDM_LOG_ERROR)
    snprintf(cl->last_error, sizeof(cl->last_error), "%s", msg);
  if (level <= cl->level)
    tdm_log_stderr(NULL, level, msg);
  else if (cl->hold && cl->opening && level == TDM_LOG_INFO &&
           cl->n_held < sizeof(cl->held) / sizeof(cl->held[0]))
    snprintf(cl->held[cl->n_held++], sizeof(cl->held[0]), "%s", msg);
}

static void cli_log_flush(cli_log_t *cl) {
  for (size_t i = 0; i < cl->n_held; i++)
    tdm_log_stderr(NULL, TDM_LOG_INFO, cl->held[i]);
  cl->n_held = 0;
}

/* A line of the command's own ("tidemark: error: ..."), through the log
   sink: on stderr as it is, or under journald with its <N> priority. */
__attribute__((format(printf, 2, 3)))
static void say(tdm_log_level_t level, const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  tdm_log_line(level, line);
}

static void usage_error(const char *msg) {
  say(TDM_LOG_ERROR, "tidemark: error: %s", msg);
  say(TDM_LOG_ERROR, "Try 'tidemark --help'.");
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "stdout,file" from the specs (names only: parameters may be long). */
static void processor_names(const tdm_config_t *c, char *buf, size_t cap) {
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < c->n_processors && o + 1 < cap; i++) {
    const char *spec = c->processors[i];
    size_t n = strcspn(spec, ":");
    int w = snprintf(buf + o, cap - o, "%s%.*s", i > 0 ? "," : "", (int)n,
                     spec);
    if (w < 0)
      break;
    o += (size_t)w < cap - o ? (size_t)w : cap - o - 1;
  }
}

/* "12.3 MiB" */
static void human(uint64_t n, char *buf, size_t cap) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  snprintf(buf, cap, u == 0 ? "%.0f %s" : "%.1f %s", v, unit[u]);
}

/*
 * `once`'s progress line on stderr, rewritten in place ('\r', padded to the
 * width of the last one): files done/total, bytes done/total, rate, time
 * left. The final call ends the line.
 */
static void on_progress(void *arg, const tdm_progress_t *p) {
  int *width = arg;
  char done[32], total[32], rate[32], left[32], line[256];
  double secs = (double)p->elapsed_ms / 1000.0;
  double bps = secs > 0.05 ? (double)p->bytes_done / secs : 0;
  int n;

  human(p->bytes_done, done, sizeof(done));
  human(p->bytes_total, total, sizeof(total));
  human((uint64_t)bps, rate, sizeof(rate));
  if (p->final || p->bytes_done >= p->bytes_total)
    snprintf(left, sizeof(left), "%.1f s", secs);
  else if (bps <= 0)
    snprintf(left, sizeof(left), "--:-- left");
  else {
    uint64_t s = (uint64_t)((double)(p->bytes_total - p->bytes_done) / bps);
    snprintf(left, sizeof(left), "%" PRIu64 ":%02" PRIu64 " left", s / 60,
             s % 60);
  }
  n = snprintf(line, sizeof(line), "tidemark: %" PRIu64 "/%" PRIu64
               " files, %s/%s, %s/s, %s", p->files_done, p->files_total, done,
               total, rate, left);
  if (n < 0)
    return;
  fprintf(stderr, "\r%s%*s%s", line, *width > n ? *width - n : 0, "",
          p->final ? "\n" : "");
  fflush(stderr);
  *width = n;
}

/* The exit status for an error of tdm_add_source()/tdm_add_processor(). */
static int setup_exit(int err) {
  return err == TDM_EUSAGE || err == -ENOENT || err == -ENOTDIR ? 2 : 1;
}

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit, as servers do (nginx's
 * worker_rlimit_nofile, systemd's own services): `run` holds a descriptor
 * per followed file, so that a file renamed out of the tree or deleted is
 * still read to its end, and the soft limit a service gets (1024 under
 * systemd) is far below what the kernel allows it (the hard limit). The
 * command does this, not the library: a program embedding libtidemark owns
 * its process' limits (the library stays correct under any limit: it holds
 * what it may, reads a file before it closes its descriptor, and warns about
 * and counts bytes that became unreachable).
 */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl); /* best effort: the library copes */
  }
}

/* Add the directories and the processors to `t`: 0, or the error of the
   first one refused (the library has logged it). */
static int work_add(tdm_t *t, const tdm_config_t *c) {
  int rc;
  for (size_t i = 0; i < c->n_dirs; i++)
    if ((rc = tdm_add_source(t, c->dirs[i])) != 0)
      return rc;
  for (size_t i = 0; i < c->n_processors; i++)
    if ((rc = tdm_add_processor(t, c->processors[i])) != 0) {
      /* The library named the spec; say where it was written. */
      if (c->processor_origins != NULL && c->processor_origins[i][0] != '\0')
        say(TDM_LOG_ERROR, "tidemark: error: %s: processor refused (see the "
                           "message above)", c->processor_origins[i]);
      return rc;
    }
  return 0;
}

/* One pass (once) or watch until a signal (run), with the signals pointed
   at `t` meanwhile. Returns the library's result (run: TDM_ESTOPPED when
   stopped). */
static int work_run(tdm_t *t, int live) {
  int rc;
  running = t;
  set_stop_signals(on_stop_signal, SA_RESETHAND);
  if (live) {
    set_rescan_signal(on_rescan_signal);
    rc = tdm_run(t);
    if (rc == 0)
      rc = TDM_ESTOPPED; /* run only ends when stopped */
  } else {
    rc = tdm_run_once(t);
  }
  /* From here a signal must not reach `t`, which tdm_close() frees. */
  set_stop_signals(SIG_IGN, 0);
  if (live)
    set_rescan_signal(SIG_IGN);
  running = NULL;
  return rc;
}

/* The closing "stopped"/"done" line, with the counters. */
static void work_summary(tdm_t *t, int live, int rc, double t0) {
  char line[1024];
  size_t o;
  tdm_stats_t st;
  tdm_stats_init(&st);
  tdm_get_stats(t, &st);
  snprintf(line, sizeof(line),
           "tidemark: %s: %" PRIu64 " file%s tracked, %" PRIu64 " byte%s, %" PRIu64
           " chunk%s in %.1f s",
           live || rc == TDM_ESTOPPED ? "stopped" : "done", st.files_tracked,
           st.files_tracked == 1 ? "" : "s", st.bytes, st.bytes == 1 ? "" : "s",
           st.chunks, st.chunks == 1 ? "" : "s", now_s() - t0);
  o = strlen(line);
  if (st.file_errors > 0 && o < sizeof(line))
    o += (size_t)snprintf(line + o, sizeof(line) - o, "; %" PRIu64 " unreadable",
                          st.file_errors);
  if (st.proc_failures > 0 && o < sizeof(line))
    o += (size_t)snprintf(line + o, sizeof(line) - o,
                          "; %" PRIu64 " processor failures", st.proc_failures);
  if (st.dead_letters > 0 && o < sizeof(line))
    o += (size_t)snprintf(line + o, sizeof(line) - o,
                          "; %" PRIu64 " record%s set aside (--dead-letter)",
                          st.dead_letters, st.dead_letters == 1 ? "" : "s");
  if (st.checkpoint_errors > 0 && o < sizeof(line))
    snprintf(line + o, sizeof(line) - o, "; %" PRIu64 " failed checkpoints",
             st.checkpoint_errors);
  say(TDM_LOG_INFO, "%s", line);
}

/* The exit status for the run's result `rc` (an error is said). */
static int work_status(const char *what, int rc) {
  switch (rc) {
  case 0:
  case TDM_ESTOPPED: /* stopped by a signal, the final checkpoint made */
    return 0;
  case TDM_EPARTIAL:
    say(TDM_LOG_ERROR, "tidemark: error: some files could not be processed "
                       "(see the messages above)");
    return 1;
  default:
    say(TDM_LOG_ERROR, "tidemark: error: %s ended on an error: %s (see the "
                       "messages above)", what, tdm_strerror(rc));
    return 1;
  }
}

/* tdm_open refused an option (`said`: its message): when the value came
   from the INI file, say where it was written. */
static void say_origin(const tdm_config_t *c, const char *said) {
  for (size_t i = 0; i < c->n_lib_origins; i++) {
    const tdm_config_origin_t *x = &c->lib_origins[i];
    char opt[64], val[1024];
    snprintf(opt, sizeof(opt), "--%s", x->option);
    snprintf(val, sizeof(val), "'%s'", x->value);
    /* A list (globs) names the value; a scalar option is given once. */
    if (strstr(said, opt) != NULL &&
        (strstr(said, val) != NULL || (strcmp(x->option, "include") != 0 &&
                                       strcmp(x->option, "exclude") != 0)))
      say(TDM_LOG_ERROR, "tidemark: error: %s: refused (see the message "
                         "above)", x->where);
  }
}

/*
 * `once` and `run`: open, add sources and processors, run one pass (once) or
 * watch until a signal (run), close. Returns the exit status.
 */
static int cmd_work(const tdm_config_t *c, int live) {
  const char *what = live ? "run" : "once";
  char err[1024];
  char names[512];
  tdm_options_t opts;
  int progress_width = 0;
  tdm_t *t = NULL;
  double t0;
  int quiet = c->verbosity < 0;
  int rc;
  int status;

  if (tdm__config_check_dirs(c, err, sizeof(err)) != 0) {
    usage_error(err);
    return 2;
  }
  /* A processor writing to a closed pipe (stdout | head, an exec'd program
     that died) must fail with EPIPE, not kill us before the checkpoint. */
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  opts = c->options;
  opts.notify = live; /* Type=notify: does nothing without NOTIFY_SOCKET */
  if (log_state.hold)
    opts.log_level = TDM_LOG_INFO; /* cli_log holds them (see there) */
  /* once: a progress line when stderr is a terminal, or when forced. */
  if (!live && (c->progress == 1 || (c->progress < 0 && !quiet &&
                                     isatty(STDERR_FILENO)))) {
    opts.progress_cb = on_progress;
    opts.progress_arg = &progress_width;
  }
  log_state.last_error[0] = '\0';
  rc = tdm_open(&opts, &t);
  if (rc != 0) { /* tdm_open has logged why, naming the directory or option */
    if (rc == TDM_EUSAGE)
      say_origin(c, log_state.last_error);
    return rc == TDM_EUSAGE ? 2 : 1;
  }
  log_state.opening = 1;
  rc = work_add(t, c);
  log_state.opening = 0;
  if (rc != 0) {
    tdm_close(t);
    return setup_exit(rc);
  }

  processor_names(c, names, sizeof(names));
  if (!quiet)
    say(TDM_LOG_INFO, "tidemark: %s: %zu dir%s, processors: %s", what,
        c->n_dirs, c->n_dirs == 1 ? "" : "s", names);
  cli_log_flush(&log_state);

  t0 = now_s();
  rc = work_run(t, live);
  if (!quiet)
    work_summary(t, live, rc, t0);
  status = work_status(what, rc);
  tdm_close(t);
  return status;
}

static int cmd_processors(const tdm_config_t *c) {
  tdm_processor_info_t *v = NULL;
  int wn = (int)strlen("NAME"), wo = (int)strlen("ORIGIN");
  size_t n = 0;
  int rc;

  rc = tdm_processors_list(&c->options, &v, &n);
  if (rc != 0) { /* the library has said which plugin or directory and why */
    say(TDM_LOG_ERROR, "tidemark: error: cannot list the processors: %s",
        tdm_strerror(rc));
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    int a = (int)strlen(v[i].name), b = (int)strlen(v[i].origin);
    wn = a > wn ? a : wn;
    wo = b > wo ? b : wo;
  }
  /* origin and summary come escaped (a plugin's summary is its author's
     text: no newline or ESC sequence reaches the terminal). */
  printf("%-*s  %-*s  %s\n", wn, "NAME", wo, "ORIGIN", "SUMMARY");
  for (size_t i = 0; i < n; i++)
    printf("%-*s  %-*s  %s\n", wn, v[i].name, wo, v[i].origin, v[i].summary);
  tdm_free(v);
  return 0;
}

int main(int argc, char **argv) {
  tdm_config_t c;
  char err[1024];
  int rc, status;

  rc = tdm__config_parse(&c, argc, argv, err, sizeof(err));
  if (rc != 0) {
    if (rc == TDM_EUSAGE) {
      usage_error(err);
      status = 2;
    } else {
      say(TDM_LOG_ERROR, "tidemark: error: %s", err);
      status = 1;
    }
    tdm__config_free(&c);
    return status;
  }
  /* Every command logs through cli_log. */
  log_state.level = c.options.log_level;
  log_state.hold = c.options.log_level == TDM_LOG_WARN;
  c.options.log_cb = cli_log;
  c.options.log_arg = &log_state;

  switch (c.command) {
  case TDM_CMD_HELP:
    fputs(tdm__config_usage(), stdout);
    status = 0;
    break;
  case TDM_CMD_VERSION:
    printf("tidemark %s\n", tdm_version());
    status = 0;
    break;
  case TDM_CMD_ONCE:
    status = cmd_work(&c, 0);
    break;
  case TDM_CMD_RUN:
    status = cmd_work(&c, 1);
    break;
  case TDM_CMD_STATUS:
    status = tdm__status_run(&c, stdout);
    break;
  case TDM_CMD_RESET:
    status = tdm__status_reset(&c, stdout);
    break;
  case TDM_CMD_PROCESSORS:
    status = cmd_processors(&c);
    break;
  case TDM_CMD_TOP:
    status = tdm__top_run(&c);
    break;
  default:
    usage_error("no command given");
    status = 2;
  }
  tdm__config_free(&c);
  if (fflush(stdout) != 0 && status == 0) {
    say(TDM_LOG_ERROR, "tidemark: error: writing to standard output: %s",
        strerror(errno));
    status = 1;
  }
  return status;
}
