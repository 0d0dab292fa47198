/*
 * live.c: live watching on a libuv loop (tdm_start, tdm_run).
 *
 * Two threads touch a started tdm_t, and they share very little:
 *
 *   the loop thread   runs the watch backend's handles (live/watch.h: the
 *                     inotify descriptor is read without file I/O and its
 *                     raw events queued), the timers, and tdm_stop /
 *                     tdm_rescan through an async handle. It never touches
 *                     the engine.
 *   the worker        one uv_queue_work item at a time: dispatches the
 *                     backend's events, scans, reads, calls the processors, checkpoints. It owns
 *                     the engine exactly as tdm_run_once's caller does, so the
 *                     engine needs no locks.
 *
 * The loop thread queues a work item whenever there is something to do and
 * none is queued or running; after one finishes it looks again, so no
 * request is lost between the two. Events are hints: an overflowed queue, a
 * SIGHUP and a periodic sweep each make the worker compare the whole tree with
 * the store, which does not reopen unchanged files.
 */
#include "live/live.h"

#include "base/clock.h"
#include "engine/checkpoint.h"
#include "engine/engine.h"
#include "engine/files.h"
#include "engine/metrics.h"
#include "engine/pass.h"
#include "engine/reconcile.h"
#include "engine/mode.h"
#include "live/notify.h"
#include "live/watch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define READ_BUDGET (16u << 20) /* bytes of one file per look */
#define PUBLISH_MS 500u         /* metrics text at most this often */
#define STATUS_MS 5000u         /* systemd STATUS= line at most this often */
#define OUTCOME_WAIT_MS 20      /* the worker's wait for loaders' outcomes */

static void after_work(uv_work_t *req, int status);
static void on_idle(uv_idle_t *h);
static void on_sweep(uv_timer_t *h);

/* ---- the worker --------------------------------------------------------- */

/* tdm_scan_t.on_dir: watch each directory before it is listed; one that
   cannot be watched is swept at the fallback interval. */
int tdm__live_on_dir(void *arg, const char *path) {
  tdm_t *t = arg;
  tdm_live_t *lv = t->live;
  int rc;

  if (lv->watch->add_dir == NULL)
    return 0;
  rc = lv->watch->add_dir(t, lv->watch_state, path, t->scan_root);
  if (rc == 1) {
    t->stats.polled_dirs++;
    lv->watch_failed = 1;
    return 0;
  }
  return rc;
}

/* Read on the files marked in `flag` (ready: budget left over; orphans:
   moved or deleted, drained through their descriptor). */
static int pass_over(tdm_t *t, int orphans) {
  for (size_t i = 0; i < t->files.n;) {
    tdm_file_t *f = t->files.all[i];
    size_t before = t->files.n;
    int rc = 0;

    if (orphans ? f->orphan : f->ready) {
      if (f->fd >= 0) {
        rc = tdm__drain(t, f);
      } else if (orphans) { /* gone with no descriptor (watch_inotify.c) */
        struct stat st;
        if (lstat(f->path, &st) == 0 && S_ISREG(st.st_mode) &&
            (uint64_t)st.st_dev == f->rec.dev &&
            (uint64_t)st.st_ino == f->rec.ino)
          rc = tdm__look(t, f->path, &st, 0);
        else
          rc = tdm__lost(t, f);
      } else {
        struct stat st;
        tdm__set_ready(t, f, 0);
        if (lstat(f->path, &st) == 0 && S_ISREG(st.st_mode))
          rc = tdm__look(t, f->path, &st, 0);
      }
      if (rc < 0)
        return rc;
    }
    if (t->files.n == before)
      i++; /* else the last file was swapped into i */
  }
  return 0;
}

/* Render the metrics (the worker owns the engine) and hand the text to the
   loop thread. Only when someone reads it: --metrics or systemd. */
static void publish(tdm_t *t, int force) {
  tdm_live_t *lv = t->live;
  uint64_t now = tdm__now_ms(), tracked = 0, pending = 0;
  char *text = NULL, *old;
  size_t len = 0;

  if (lv->http == NULL && !t->opts.notify)
    return;
  t->stats.watches = lv->watch->count ? lv->watch->count(lv->watch_state) : 0;
  if (!force && lv->m_last_ms != 0 && now - lv->m_last_ms < PUBLISH_MS) {
    lv->m_stale = 1;
    return;
  }
  lv->m_stale = 0;
  if (tdm__metrics_render(t, &text, &len, &tracked, &pending) != 0)
    return; /* out of memory: the last text stays */
  lv->m_last_ms = now;
  pthread_mutex_lock(&lv->mlock);
  old = lv->mtext;
  lv->mtext = text;
  lv->mlen = len;
  lv->m_tracked = tracked;
  lv->m_pending = pending;
  pthread_mutex_unlock(&lv->mlock);
  free(old);
}

/* After every checkpoint, on the worker: the --metrics-file as before, and
   the text the loop thread serves (at most every PUBLISH_MS), so that a
   long work item (a catch-up) does not leave /metrics, and the rates `top`
   and the status page make of it, standing still until it ends. */
static void checkpointed(tdm_t *t) {
  tdm__metrics_checkpointed(t);
  if (t->live != NULL)
    publish(t, 0);
}

static void work_cb(uv_work_t *req) {
  tdm_t *t = req->data;
  tdm_live_t *lv = t->live;
  int rc = 0;

  if (lv->m_last_ms == 0)
    publish(t, 1); /* something to serve during a long first pass */
  /* New processors' first restore points go to the store before any data. */
  if (t->need_checkpoint && t->stats.checkpoints == 0 &&
      (rc = tdm__checkpoint(t)) != 0) {
    lv->status = rc;
    t->stop = 1;
  }

  if (rc >= 0 && !t->stop && lv->watch->dispatch != NULL)
    rc = lv->watch->dispatch(t, lv->watch_state);

  if (!t->stop && lv->want_rescan) {
    lv->want_rescan = 0;
    t->stats.rescans++;
    rc = tdm__reconcile_all(t, tdm__live_on_dir);
    t->from_end = 0; /* --from-end: only for files there at start */
    if (!lv->first_pass_done) {
      lv->first_pass_done = 1;
      publish(t, 1);
    }
  }
  if (!t->stop && t->n_ready > 0)
    rc = pass_over(t, 0);
  if (!t->stop && lv->want_drain && t->n_orphans > 0)
    rc = pass_over(t, 1);
  if (!t->stop && t->n_inflight > 0 && t->mode->poll != NULL)
    rc = t->mode->poll(t, 0);
  if (!t->stop && lv->want_drain && t->n_waiting > 0 && t->mode->recheck != NULL)
    rc = t->mode->recheck(t);
  lv->want_drain = 0;
  /* New files these events met: their records go to the store in one
     commit, then they are read. */
  if (!t->stop && t->n_deferred > 0)
    rc = tdm__flush_fresh(t);
  /* Everything there was is read: buffering processors hand it over now,
     not at the next checkpoint. */
  if (!t->stop && t->n_ready == 0)
    tdm__caught_up(t);

  /* Whole mode: gone files due to be forgotten are, after a checkpoint. */
  if (lv->want_checkpoint && t->forget_due_ns != 0 &&
      tdm__wall_ns() >= t->forget_due_ns)
    t->need_checkpoint = 1;
  if ((lv->want_checkpoint || t->stop) && (t->need_checkpoint || t->n_dead > 0)) {
    rc = tdm__checkpoint(t);
    if (rc == 0 && t->stop && t->need_checkpoint)
      rc = TDM_EPROC; /* the last one was deferred (logged) */
    if (rc != 0 && t->stop)
      lv->status = rc;
  }
  lv->want_checkpoint = 0;
  if (t->checkpoint_rc != 0 || t->rolled_back) {
    t->rolled_back = 0;
    lv->want_rescan = 1; /* rolled back: read it all again */
  }
  /* Loaders running and nothing else to do: wait a little for their
     outcomes here (exec's poll wakes when a child exits), so each is made
     durable promptly; the loop queues the worker again at once. */
  if (!t->stop && t->n_inflight > 0 && t->mode->poll != NULL &&
      t->checkpoint_rc == 0 &&
      !lv->want_rescan &&
      !(lv->watch->pending && lv->watch->pending(lv->watch_state)))
    (void)t->mode->poll(t, OUTCOME_WAIT_MS);
  if (t->n_open > t->max_open)
    tdm__trim_fds(t);
  tdm__rest(t); /* the round is over: no file is held */
  t->stats.watches = lv->watch->count ? lv->watch->count(lv->watch_state) : 0;
  publish(t, t->stop);
  if (t->stop)
    lv->final_done = 1;
}

/* ---- the loop thread ---------------------------------------------------- */

static int has_work(const tdm_t *t) {
  const tdm_live_t *lv = t->live;
  return (lv->watch->pending && lv->watch->pending(lv->watch_state)) ||
         lv->want_rescan ||
         t->n_ready > 0 || (lv->want_checkpoint && t->need_checkpoint) ||
         (lv->want_checkpoint && t->forget_due_ns != 0 && /* whole mode */
          tdm__wall_ns() >= t->forget_due_ns) ||
         t->n_inflight > 0 || /* outcomes to collect as they come */
         (lv->want_drain &&
          (t->n_orphans > 0 || t->n_waiting > 0 || lv->m_stale)) ||
         lv->stopping;
}

/* Queue the worker if there is work and none is queued or running. Reading
   the engine's counters here is safe: no worker runs while !busy. */
void tdm__live_kick(tdm_t *t) {
  tdm_live_t *lv = t->live;
  if (lv->busy || !has_work(t))
    return;
  lv->busy = 1;
  lv->work.data = t;
  if (lv->inline_work) {
    uv_idle_start(&lv->idle, on_idle); /* runs at the loop's next turn */
    return;
  }
  if (uv_queue_work(lv->loop, &lv->work, work_cb, after_work) != 0)
    lv->busy = 0; /* cannot happen with a live loop */
}

/* tdm_run_slice: the worker's turn, on the loop thread itself. */
static void on_idle(uv_idle_t *h) {
  tdm_t *t = h->data;
  uv_idle_stop(h);
  work_cb(&t->live->work);
  after_work(&t->live->work, 0);
}

static void handle_closed(tdm_t *t) {
  tdm_live_t *lv = t->live;

  if (--lv->handles > 0)
    return;
  if (lv->stopped_cb != NULL)
    lv->stopped_cb(t, lv->status, lv->stopped_arg); /* may tdm_close(t) */
}

static void on_closed(uv_handle_t *h) {
  handle_closed(h->data);
}

static void on_http_closed(void *arg) {
  tdm_t *t = arg;
  t->live->http = NULL;
  handle_closed(t);
}

static void close_all(tdm_t *t) {
  tdm_live_t *lv = t->live;
  lv->closing = 1;
  lv->handles = 3 + lv->inline_work + lv->watchdog_on + (lv->http != NULL);
  if (lv->watch->close != NULL)
    lv->handles += lv->watch->close(lv->watch_state, on_closed);
  if (lv->inline_work)
    uv_close((uv_handle_t *)&lv->idle, on_closed);
  if (lv->watchdog_on)
    uv_close((uv_handle_t *)&lv->watchdog, on_closed);
  if (lv->http != NULL)
    tdm__metrics_http_close(lv->http, on_http_closed, t);
  uv_close((uv_handle_t *)&lv->wake, on_closed);
  uv_close((uv_handle_t *)&lv->tick, on_closed);
  uv_close((uv_handle_t *)&lv->sweep, on_closed);
}

static void begin_stop(tdm_t *t) {
  tdm_live_t *lv = t->live;
  if (lv->stopping)
    return;
  lv->stopping = 1;
  if (t->opts.notify)
    tdm__notify_stopping();
  if (lv->watch->stop != NULL)
    lv->watch->stop(lv->watch_state);
  uv_timer_stop(&lv->tick);
  uv_timer_stop(&lv->sweep);
  tdm__live_kick(t);
}

/* READY=1 once the first pass is done, then a STATUS= line now and then.
   Loop thread: first_pass_done was written by the work item that just
   ended (after_work runs after it). */
static void tell_systemd(tdm_t *t) {
  tdm_live_t *lv = t->live;
  uint64_t now = tdm__now_ms(), tracked, pending;

  if (!lv->first_pass_done || (lv->ready_sent && now - lv->status_ms < STATUS_MS))
    return;
  pthread_mutex_lock(&lv->mlock);
  tracked = lv->m_tracked;
  pending = lv->m_pending;
  pthread_mutex_unlock(&lv->mlock);
  if (!lv->ready_sent)
    tdm__notify_ready(tracked, pending);
  else
    tdm__notify_status(tracked, pending);
  lv->ready_sent = 1;
  lv->status_ms = now;
}

static void on_watchdog(uv_timer_t *h) {
  (void)h;
  tdm__notify_watchdog();
}

/* The HTTP endpoint's copy of the text (loop thread). */
static char *metrics_text(void *arg, size_t *len) {
  tdm_live_t *lv = ((tdm_t *)arg)->live;
  char *copy = NULL;
  pthread_mutex_lock(&lv->mlock);
  if (lv->mtext != NULL && (copy = malloc(lv->mlen)) != NULL) {
    memcpy(copy, lv->mtext, lv->mlen);
    *len = lv->mlen;
  }
  pthread_mutex_unlock(&lv->mlock);
  return copy;
}

static void after_work(uv_work_t *req, int status) {
  tdm_t *t = req->data;
  tdm_live_t *lv = t->live;

  (void)status;
  lv->busy = 0;
  if (lv->stopping || t->stop) {
    if (lv->final_done)
      close_all(t);
    else {
      begin_stop(t);
      tdm__live_kick(t);
    }
    return;
  }
  if (t->opts.notify)
    tell_systemd(t);
  if (lv->watch_failed &&
      uv_timer_get_repeat(&lv->sweep) > TDM_WATCH_FALLBACK_MS)
    uv_timer_start(&lv->sweep, on_sweep, TDM_WATCH_FALLBACK_MS,
                   TDM_WATCH_FALLBACK_MS);
  tdm__live_kick(t);
}

static void on_wake(uv_async_t *h) {
  tdm_t *t = h->data;
  if (t->stop)
    begin_stop(t);
  else
    tdm__live_kick(t);
}

static void on_tick(uv_timer_t *h) {
  tdm_t *t = h->data;
  t->live->want_checkpoint = 1;
  t->live->want_drain = 1;
  tdm__live_kick(t);
}

static void on_sweep(uv_timer_t *h) {
  tdm_t *t = h->data;
  t->live->want_rescan = 1;
  tdm__live_kick(t);
}

/* How many descriptors to hold: half of what is left under RLIMIT_NOFILE.
   Under a small limit a quarter of it, at least 4: the process itself
   (LMDB, inotify, the loop, a processor's files and pipes) needs the rest,
   and a file that cannot be opened waits for the next sweep. */
static size_t fd_budget(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 1024;
  if (rl.rlim_cur < 256)
    return rl.rlim_cur < 16 ? 4 : (size_t)rl.rlim_cur / 4;
  return rl.rlim_cur > 16384 ? 8192 : (size_t)(rl.rlim_cur - 128) / 2;
}

/* How a watch backend calls back (live/watch.h). */
static const tdm_watch_host_t watch_host = {
  .kick = tdm__live_kick,
  .on_dir = tdm__live_on_dir,
};

/* inotify, unless --poll-ms asks for polling or the kernel refuses an
   instance; then polling. */
static int open_watch(tdm_t *t, uv_loop_t *loop) {
  tdm_live_t *lv = t->live;
  int rc;

  if (t->opts.poll_ms == 0) {
    lv->watch = &tdm__watch_inotify;
    rc = lv->watch->open(t, loop, &watch_host, &lv->watch_state);
    if (rc == 0)
      return 0;
    if (rc != -EMFILE && rc != -ENFILE) {
      tdm__error(&t->log, "inotify: %s", strerror(-rc));
      return rc;
    }
    tdm__warn(&t->log, "cannot create an inotify instance (sysctl "
              "fs.inotify.max_user_instances): polling every %u ms instead",
              TDM_WATCH_FALLBACK_MS);
  }
  lv->watch = &tdm__watch_poll;
  return lv->watch->open(t, loop, &watch_host, &lv->watch_state);
}

static int start(tdm_t *t, uv_loop_t *loop, tdm_stopped_cb cb, void *arg,
                 int inline_work) {
  tdm_live_t *lv;
  uint64_t every;
  int rc;

  if (t->live != NULL)
    return -EBUSY;
  if ((rc = tdm__pass_prepare(t)) != 0)
    return rc;
  if ((lv = calloc(1, sizeof(*lv))) == NULL)
    return -ENOMEM;
  lv->loop = loop;
  lv->stopped_cb = cb;
  lv->stopped_arg = arg;
  if (t->opts.metrics_listen != NULL &&
      ((rc = tdm__metrics_http_start(loop, t->opts.metrics_listen, &t->log,
                                     metrics_text, t, &lv->http)) != 0 ||
       (rc = tdm__metrics_http_pages(lv->http, t->state_real,
                                     t->status_print)) != 0)) {
    if (lv->http != NULL)
      tdm__metrics_http_close(lv->http, NULL, NULL); /* frees itself */
    free(lv);
    return rc;
  }
  t->live = lv; /* the backend's handles carry t */
  t->checkpointed = checkpointed;
  if ((rc = open_watch(t, loop)) != 0) {
    if (lv->http != NULL)
      tdm__metrics_http_close(lv->http, NULL, NULL); /* frees itself */
    t->live = NULL;
    free(lv);
    return rc;
  }
  pthread_mutex_init(&lv->mlock, NULL);
  t->keep_open = 1;
  t->read_budget = t->buf_cap * 2 > READ_BUDGET ? t->buf_cap * 2 : READ_BUDGET;
  t->max_open = fd_budget();

  lv->inline_work = inline_work;
  if (inline_work) {
    uv_idle_init(loop, &lv->idle);
    lv->idle.data = t;
  }
  uv_async_init(loop, &lv->wake, on_wake);
  uv_timer_init(loop, &lv->tick);
  uv_timer_init(loop, &lv->sweep);
  lv->wake.data = lv->tick.data = lv->sweep.data = t;
  uv_timer_start(&lv->tick, on_tick, t->opts.checkpoint_ms, t->opts.checkpoint_ms);
  every = lv->watch->sweep_ms(t);
  uv_timer_start(&lv->sweep, on_sweep, every, every);
  if (t->opts.notify) {
    uint64_t usec = tdm__notify_watchdog_usec();
    if (usec > 0) {
      uint64_t ms = usec / 2000 > 0 ? usec / 2000 : 1;
      uv_timer_init(loop, &lv->watchdog);
      lv->watchdog.data = t;
      lv->watchdog_on = 1;
      uv_timer_start(&lv->watchdog, on_watchdog, ms, ms);
      tdm__notify_watchdog();
    }
  }
  lv->want_rescan = 1; /* the first pass: everything against the store */
  tdm__live_kick(t);
  return 0;
}

int tdm_start(tdm_t *t, uv_loop_t *loop, tdm_stopped_cb cb, void *arg) {
  return start(t, loop, cb, arg, 0);
}

static void run_stopped(tdm_t *t, int status, void *arg) {
  (void)t;
  *(int *)arg = status;
}

int tdm_run(tdm_t *t) {
  uv_loop_t loop;
  int status = 0, rc;

  if ((rc = uv_loop_init(&loop)) != 0)
    return rc;
  if ((rc = tdm_start(t, &loop, run_stopped, &status)) != 0) {
    uv_loop_close(&loop);
    return rc;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return status;
}

/* ---- tdm_run_slice: the work on the caller's thread ----------------------- */

static void slice_stopped(tdm_t *t, int status, void *arg) {
  (void)arg;
  t->live->slice_done = 1;
  t->live->slice_status = status;
}

static void on_slice_end(uv_timer_t *h) {
  uv_stop(h->loop);
}

int tdm_run_slice(tdm_t *t, uint32_t max_ms) {
  tdm_live_t *lv = t->live;
  uv_loop_t *loop;
  int rc;

  if (lv == NULL) {
    if ((loop = malloc(sizeof(*loop))) == NULL)
      return -ENOMEM;
    if ((rc = uv_loop_init(loop)) != 0) {
      free(loop);
      return rc;
    }
    if ((rc = start(t, loop, slice_stopped, NULL, 1)) != 0) {
      uv_loop_close(loop);
      free(loop);
      return rc;
    }
    lv = t->live;
    lv->own_loop = loop;
    /* Unreferenced: once tidemark's handles are closed, uv_run returns
       whatever the timer says. */
    uv_timer_init(loop, &lv->slice);
    uv_unref((uv_handle_t *)&lv->slice);
  } else if (lv->own_loop == NULL) {
    /* Started by tdm_start()/tdm_run(), or a slice run that is over. */
    return lv->inline_work ? lv->slice_status : -EBUSY;
  }
  loop = lv->own_loop;
  if (!lv->slice_done) {
    uv_timer_start(&lv->slice, on_slice_end, max_ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_timer_stop(&lv->slice);
    if (!lv->slice_done)
      return 1;
  }
  uv_close((uv_handle_t *)&lv->slice, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  free(loop);
  lv->own_loop = NULL;
  return lv->slice_status;
}

void tdm_rescan(tdm_t *t) {
  tdm_live_t *lv = t->live;
  if (lv != NULL && !lv->closing) {
    lv->want_rescan = 1;
    uv_async_send(&lv->wake);
  }
}

void tdm__live_wake(tdm_t *t) {
  tdm_live_t *lv = t->live;
  if (lv != NULL && !lv->closing)
    uv_async_send(&lv->wake);
}

void tdm__live_free(tdm_t *t) {
  tdm_live_t *lv = t->live;
  if (lv == NULL)
    return;
  if (lv->watch != NULL && lv->watch->free != NULL)
    lv->watch->free(lv->watch_state);
  pthread_mutex_destroy(&lv->mlock);
  free(lv->mtext);
  free(lv);
  t->live = NULL;
}
