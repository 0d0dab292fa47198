/*
 * tdm-host: a small host program that embeds libtidemark on its OWN libuv
 * loop (tdm_start), beside a timer of its own. Run by test-run-embed.sh:
 *
 *   tdm-host WORKDIR
 *
 * Phase 1, the host's loop:
 *   - WORKDIR/src/w.log starts with 5 lines; tidemark watches WORKDIR/src with
 *     a C callback that appends every chunk to a buffer (under a mutex: the
 *     callback runs on libuv's thread pool);
 *   - the host's uv_timer fires every 20 ms on the same loop and appends one
 *     numbered line to w.log, 50 times; then, still on the timer, it waits
 *     until the callback has seen all 55 lines and calls tdm_stop();
 *   - the stopped callback records its status and closes the timer;
 *   - after uv_run() returns: the timer fired >= 50 times and never stalled
 *     long (the loop thread was not blocked), every line was seen exactly
 *     once and in order, status 0, tdm_close(), uv_loop_close() == 0 (every
 *     handle tidemark put on the loop was closed).
 * Phase 2: a fresh tdm_open() on the same state and tdm_run_once() delivers
 *   nothing (the final checkpoint of phase 1 was durable).
 * Phase 3, tidemark's own loop: tdm_run() on a thread; 10 more lines are
 *   appended; once seen, tdm_stop() from the main thread; tdm_run() returns 0.
 *
 * Prints what it checks, "PASS" and exits 0 on success; "FAIL: ..." and 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "tidemark.h"

#define N_PRE 5
#define N_LINES 50
#define N_OWN 10
#define TICK_MS 20
#define GIVE_UP_MS 20000

typedef struct host {
  uv_loop_t loop;
  uv_timer_t timer;
  uv_mutex_t mu;
  tdm_t *t;
  char path[4200];
  /* what the callback saw (guarded by mu) */
  char *seen;
  size_t seen_len, seen_cap;
  unsigned long chunks;
  int bad_chunk; /* a chunk that was not whole lines */
  /* the timer (loop thread only) */
  int fired;
  int written;
  int stop_requested;
  int gave_up;
  uint64_t last_tick, max_gap;
  /* the stopped callback */
  int stopped;
  int stopped_status;
  int stopped_calls;
  int timer_closed;
} host_t;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("FAIL: ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  fflush(stdout);
  exit(1);
}

static void append_line(const char *path, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  int len, fd;
  va_start(ap, fmt);
  len = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, buf, (size_t)len) != len || close(fd) != 0)
    fail("append to %s: %s", path, strerror(errno));
}

static int on_chunk(void *arg, const tdm_chunk_t *c) {
  host_t *h = arg;
  uv_mutex_lock(&h->mu);
  if (c->len == 0 || ((const char *)c->data)[c->len - 1] != '\n')
    h->bad_chunk = 1;
  if (h->seen_len + c->len > h->seen_cap) {
    size_t cap = (h->seen_cap ? h->seen_cap : 4096);
    while (cap < h->seen_len + c->len)
      cap *= 2;
    char *p = realloc(h->seen, cap);
    if (!p) {
      uv_mutex_unlock(&h->mu);
      return TDM_PROC_FAIL;
    }
    h->seen = p;
    h->seen_cap = cap;
  }
  memcpy(h->seen + h->seen_len, c->data, c->len);
  h->seen_len += c->len;
  h->chunks++;
  uv_mutex_unlock(&h->mu);
  return TDM_PROC_OK;
}

static size_t count_lines(host_t *h) {
  size_t n = 0;
  uv_mutex_lock(&h->mu);
  for (size_t i = 0; i < h->seen_len; i++)
    n += h->seen[i] == '\n';
  uv_mutex_unlock(&h->mu);
  return n;
}

/* The expected text: N_PRE "pre" lines, then `n` host lines. */
static char *expected(int n_host, int n_own, size_t *len) {
  size_t cap = 64 * (size_t)(N_PRE + n_host + n_own) + 1, l = 0;
  char *s = malloc(cap);
  if (!s)
    fail("out of memory");
  for (int i = 1; i <= N_PRE; i++)
    l += (size_t)snprintf(s + l, cap - l, "pre line %d\n", i);
  for (int i = 1; i <= n_host; i++)
    l += (size_t)snprintf(s + l, cap - l, "host line %03d\n", i);
  for (int i = 1; i <= n_own; i++)
    l += (size_t)snprintf(s + l, cap - l, "own-loop line %03d\n", i);
  *len = l;
  return s;
}

static void on_timer_close(uv_handle_t *handle) {
  host_t *h = handle->data;
  h->timer_closed = 1;
}

static void on_stopped(tdm_t *t, int status, void *arg) {
  host_t *h = arg;
  if (t != h->t)
    fprintf(stderr, "tdm-host: stopped callback got another tdm_t\n");
  h->stopped = 1;
  h->stopped_calls++;
  h->stopped_status = status;
  uv_timer_stop(&h->timer);
  if (!uv_is_closing((uv_handle_t *)&h->timer))
    uv_close((uv_handle_t *)&h->timer, on_timer_close);
}

static void on_tick(uv_timer_t *timer) {
  host_t *h = timer->data;
  uint64_t now = uv_now(&h->loop);
  if (h->last_tick && now - h->last_tick > h->max_gap)
    h->max_gap = now - h->last_tick;
  h->last_tick = now;
  h->fired++;
  if (h->written < N_LINES) {
    h->written++;
    append_line(h->path, "host line %03d\n", h->written);
    return;
  }
  if (h->stop_requested)
    return;
  if (count_lines(h) >= N_PRE + N_LINES) {
    h->stop_requested = 1;
    tdm_stop(h->t);
  } else if ((uint64_t)h->fired * TICK_MS > GIVE_UP_MS) {
    printf("tdm-host: gave up waiting: %zu of %d lines seen\n", count_lines(h), N_PRE + N_LINES);
    h->gave_up = 1;
    h->stop_requested = 1;
    tdm_stop(h->t);
  }
}

static void check_seen(host_t *h, int n_host, int n_own, const char *what) {
  size_t want_len;
  char *want = expected(n_host, n_own, &want_len);
  uv_mutex_lock(&h->mu);
  if (h->bad_chunk)
    fail("%s: a chunk was not whole lines", what);
  if (h->seen_len != want_len || memcmp(h->seen, want, want_len) != 0) {
    printf("--- expected %zu bytes, seen %zu bytes:\n", want_len, h->seen_len);
    fwrite(h->seen, 1, h->seen_len, stdout);
    fail("%s: the callback did not see every line exactly once, in order", what);
  }
  uv_mutex_unlock(&h->mu);
  free(want);
  printf("ok: %s: all %d lines seen exactly once, in order (%lu chunks)\n", what,
         N_PRE + n_host + n_own, h->chunks);
}

static void init_options(tdm_options_t *o, const char *state) {
  tdm_options_init(o);
  o->state_dir = state;
  o->checkpoint_ms = 100;
}

typedef struct own_loop {
  tdm_t *t;
  int rc;
} own_loop_t;

static void own_loop_thread(void *arg) {
  own_loop_t *ol = arg;
  ol->rc = tdm_run(ol->t);
}

int main(int argc, char **argv) {
  char src[4096], state[4096];
  host_t h;
  tdm_options_t o;
  int rc;

  if (argc != 2) {
    fprintf(stderr, "usage: tdm-host WORKDIR\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  snprintf(src, sizeof src, "%s/src", argv[1]);
  snprintf(state, sizeof state, "%s/state", argv[1]);
  if (mkdir(src, 0755) != 0 && errno != EEXIST)
    fail("mkdir %s: %s", src, strerror(errno));

  memset(&h, 0, sizeof h);
  snprintf(h.path, sizeof h.path, "%s/w.log", src);
  for (int i = 1; i <= N_PRE; i++)
    append_line(h.path, "pre line %d\n", i);
  if (uv_mutex_init(&h.mu) != 0)
    fail("uv_mutex_init");

  /* ---- phase 1: tidemark on the host's loop, beside the host's timer ---- */
  init_options(&o, state);
  if ((rc = tdm_open(&o, &h.t)) != 0)
    fail("tdm_open: %s", tdm_strerror(rc));
  if ((rc = tdm_add_source(h.t, src)) != 0)
    fail("tdm_add_source: %s", tdm_strerror(rc));
  if ((rc = tdm_add_callback(h.t, "host", on_chunk, &h)) != 0)
    fail("tdm_add_callback: %s", tdm_strerror(rc));
  if ((rc = uv_loop_init(&h.loop)) != 0)
    fail("uv_loop_init: %s", uv_strerror(rc));
  uv_timer_init(&h.loop, &h.timer);
  h.timer.data = &h;
  if ((rc = tdm_start(h.t, &h.loop, on_stopped, &h)) != 0)
    fail("tdm_start: %s", tdm_strerror(rc));
  if ((rc = tdm_start(h.t, &h.loop, on_stopped, &h)) != -EBUSY)
    fail("a second tdm_start returned %d (%s), expected -EBUSY", rc, tdm_strerror(rc));
  uv_timer_start(&h.timer, on_tick, TICK_MS, TICK_MS);

  rc = uv_run(&h.loop, UV_RUN_DEFAULT);
  printf("tdm-host: uv_run returned %d; timer fired %d times, longest gap %llu ms; "
         "stopped status %d (%s)\n",
         rc, h.fired, (unsigned long long)h.max_gap, h.stopped_status,
         h.stopped ? tdm_strerror(h.stopped_status) : "never called");
  if (!h.stopped)
    fail("uv_run returned but the stopped callback was never called");
  if (h.stopped_calls != 1)
    fail("the stopped callback was called %d times", h.stopped_calls);
  if (h.gave_up)
    fail("the callback never saw all lines within %d ms", GIVE_UP_MS);
  if (h.stopped_status != 0)
    fail("stopped with status %d (%s)", h.stopped_status, tdm_strerror(h.stopped_status));
  if (h.fired < N_LINES)
    fail("the host timer fired %d times (< %d)", h.fired, N_LINES);
  if (!h.timer_closed)
    fail("the host timer's close callback did not run");
  if (h.max_gap > 1000)
    fail("the host timer stalled for %llu ms: the loop thread was blocked",
         (unsigned long long)h.max_gap);
  check_seen(&h, N_LINES, 0, "host loop");
  tdm_close(h.t);
  h.t = NULL;
  if ((rc = uv_loop_close(&h.loop)) != 0) {
    uv_print_all_handles(&h.loop, stdout);
    fail("uv_loop_close returned %d (%s): a handle was left on the host's loop", rc,
         uv_strerror(rc));
  }
  printf("ok: host loop: timer fired %d times, status 0, uv_loop_close() == 0\n", h.fired);

  /* ---- phase 2: the final checkpoint was durable ------------------------- */
  {
    host_t h2;
    memset(&h2, 0, sizeof h2);
    uv_mutex_init(&h2.mu);
    init_options(&o, state);
    if ((rc = tdm_open(&o, &h2.t)) != 0)
      fail("phase 2: tdm_open: %s", tdm_strerror(rc));
    if ((rc = tdm_add_source(h2.t, src)) != 0 ||
        (rc = tdm_add_callback(h2.t, "host", on_chunk, &h2)) != 0)
      fail("phase 2: setup: %s", tdm_strerror(rc));
    if ((rc = tdm_run_once(h2.t)) != 0)
      fail("phase 2: tdm_run_once: %s", tdm_strerror(rc));
    tdm_close(h2.t);
    if (h2.seen_len != 0) {
      fwrite(h2.seen, 1, h2.seen_len, stdout);
      fail("phase 2: a run after the stop delivered %zu bytes again", h2.seen_len);
    }
    free(h2.seen);
    uv_mutex_destroy(&h2.mu);
    printf("ok: a run_once after the stop delivers nothing\n");
  }

  /* ---- phase 3: tidemark's own loop (tdm_run on a thread) ---------------- */
  {
    own_loop_t ol;
    uv_thread_t th;
    uint64_t t0;
    init_options(&o, state);
    if ((rc = tdm_open(&o, &ol.t)) != 0)
      fail("phase 3: tdm_open: %s", tdm_strerror(rc));
    /* same buffer: it must end up holding phase 1's lines and these */
    if ((rc = tdm_add_source(ol.t, src)) != 0 ||
        (rc = tdm_add_callback(ol.t, "host", on_chunk, &h)) != 0)
      fail("phase 3: setup: %s", tdm_strerror(rc));
    ol.rc = 12345;
    if (uv_thread_create(&th, own_loop_thread, &ol) != 0)
      fail("phase 3: uv_thread_create");
    for (int i = 1; i <= N_OWN; i++) {
      append_line(h.path, "own-loop line %03d\n", i);
      usleep(TICK_MS * 1000);
    }
    t0 = uv_hrtime();
    while (count_lines(&h) < N_PRE + N_LINES + N_OWN) {
      if (uv_hrtime() - t0 > (uint64_t)GIVE_UP_MS * 1000000u) {
        tdm_stop(ol.t);
        uv_thread_join(&th);
        fail("phase 3: only %zu of %d lines seen", count_lines(&h), N_PRE + N_LINES + N_OWN);
      }
      usleep(5000);
    }
    t0 = uv_hrtime();
    tdm_stop(ol.t);
    uv_thread_join(&th);
    printf("tdm-host: tdm_run returned %d %.0f ms after tdm_stop\n", ol.rc,
           (double)(uv_hrtime() - t0) / 1e6);
    if (ol.rc != 0)
      fail("phase 3: tdm_run returned %d (%s)", ol.rc, tdm_strerror(ol.rc));
    tdm_close(ol.t);
    check_seen(&h, N_LINES, N_OWN, "own loop");
  }

  free(h.seen);
  uv_mutex_destroy(&h.mu);
  printf("PASS\n");
  return 0;
}
