/*
 * live.c: live watching on a libuv loop (tdm_start, tdm_run).
 *
 * Two threads touch a started tdm_t, and they share very little:
 *
 *   the loop thread   reads the inotify descriptor (a non-blocking read of a
 *                     kernel queue, no file I/O) and appends the raw events to
 *                     a queue; runs the timers; takes tdm_stop/tdm_rescan
 *                     through an async handle. It never touches the engine.
 *   the worker        one uv_queue_work item at a time: parses the events,
 *                     scans, reads, calls the processors, checkpoints. It owns
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
#include "engine/reconcile.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define SWEEP_MS 60000u         /* the safety net's interval */
#define FALLBACK_POLL_MS 1000u  /* when some directory cannot be watched */
#define READ_BUDGET (16u << 20) /* bytes of one file per look */
#define QUEUE_MAX (16u << 20)   /* raw events held before we call it overflow */

static void kick(tdm_t *t);
static void after_work(uv_work_t *req, int status);
static void on_sweep(uv_timer_t *h);

/* ---- the worker --------------------------------------------------------- */

/* tdm_scan_t.on_dir: watch each directory before it is listed. */
static int add_watch(void *arg, const char *path) {
  tdm_t *t = arg;
  tdm_live_t *lv = t->live;
  char q[PATH_MAX];
  int wd;

  if (!lv->inotify)
    return 0;
  wd = tdm__inotify_add(&lv->in, path, t->scan_root);
  if (wd >= 0 || wd == -ENOENT || wd == -ENOTDIR)
    return 0; /* watched, or gone meanwhile */
  if (wd == -ENOSPC) {
    if (!lv->limit_warned++)
      tdm__warn(&t->log, "%s: cannot watch: the inotify watch limit is reached "
                "(sysctl fs.inotify.max_user_watches); polling the directories "
                "that could not be watched every %u ms instead",
                tdm__quote(path, q, sizeof(q)), FALLBACK_POLL_MS);
  } else {
    tdm__warn(&t->log, "%s: cannot watch: %s; polling it every %u ms",
              tdm__quote(path, q, sizeof(q)), strerror(-wd), FALLBACK_POLL_MS);
  }
  t->stats.polled_dirs++;
  lv->watch_failed = 1;
  return 0;
}

/* Is `path` one of the sources? */
static int is_root(const tdm_t *t, const char *path) {
  for (size_t r = 0; r < t->n_roots; r++)
    if (strcmp(t->roots[r], path) == 0)
      return 1;
  return 0;
}

/* One inotify event: a hint of what to look at. */
static int on_event(tdm_t *t, const struct inotify_event *ev) {
  tdm_live_t *lv = t->live;
  const tdm_watch_t *w;
  char path[PATH_MAX], q[PATH_MAX];
  const char *rel;
  struct stat st;
  tdm_file_t *f;
  int n;

  if (ev->mask & IN_Q_OVERFLOW) {
    tdm__warn(&t->log, "the inotify queue overflowed: comparing every file "
              "with the store");
    t->stats.overflows++;
    lv->want_rescan = 1;
    return 0;
  }
  if ((w = tdm__inotify_find(&lv->in, ev->wd)) == NULL)
    return 0; /* a watch we dropped */
  if (ev->mask & IN_IGNORED) {
    if (is_root(t, w->path))
      lv->watch_failed = 1; /* look for it at the fallback interval; the
                               next sweep says it is missing */
    tdm__inotify_forget(&lv->in, ev->wd);
    return 0;
  }
  if (ev->mask & IN_MOVE_SELF) {
    if (is_root(t, w->path)) {
      tdm__warn(&t->log, "%s: source directory was moved away",
                tdm__quote(w->path, q, sizeof(q)));
      snprintf(path, sizeof(path), "%s", w->path);
      tdm__inotify_remove_under(&lv->in, path);
      lv->watch_failed = 1; /* look for it at the fallback interval */
    }
    return 0;
  }
  if (ev->len == 0)
    return 0;
  n = snprintf(path, sizeof(path), "%s/%s", w->path, ev->name);
  if (n < 0 || (size_t)n >= sizeof(path))
    return 0;

  if (ev->mask & IN_ISDIR) {
    if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && t->opts.recursive &&
        tdm__filter_dir(&t->filter, ev->name) &&
        (t->filter.skip_dir == NULL || strcmp(path, t->filter.skip_dir) != 0))
      return tdm__reconcile_dir(t, w->root, path, add_watch);
    if (ev->mask & (IN_MOVED_FROM | IN_DELETE))
      tdm__inotify_remove_under(&lv->in, path);
    return 0;
  }

  if (ev->mask & (IN_MOVED_FROM | IN_DELETE)) {
    /* The name no longer leads to the file: drain it through the descriptor
       we hold. A move inside the tree finds it again by inode (IN_MOVED_TO);
       a deleted one is forgotten once drained. */
    f = tdm__filetable_by_path(&t->files, path);
    if (f != NULL && f->fd >= 0) {
      tdm__set_orphan(t, f, 1);
      return tdm__drain(t, f);
    }
    return 0;
  }

  /* IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO */
  rel = path + strlen(t->roots[w->root]);
  rel += *rel == '/';
  if (!tdm__filter_file(&t->filter, rel, ev->name))
    return 0;
  if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return 0;
  /* A rename onto an existing name (`mv app.log app.log.1` over an older
     app.log.1) replaces a file without an IN_DELETE: drain the old one. */
  f = tdm__filetable_by_path(&t->files, path);
  if (f != NULL && f->fd >= 0 && (f->rec.dev != (uint64_t)st.st_dev ||
                                  f->rec.ino != (uint64_t)st.st_ino)) {
    int rc;
    tdm__set_orphan(t, f, 1);
    if ((rc = tdm__drain(t, f)) < 0)
      return rc;
  }
  /* Renamed into the tree: complete (whole mode) once it holds still while
     it is hashed. */
  return tdm__look(t, path, &st,
                   ev->mask & IN_MOVED_TO      ? TDM_HINT_COMPLETE
                   : ev->mask & IN_CLOSE_WRITE ? TDM_HINT_CLOSED
                                               : 0);
}

/* Take the events the loop thread queued. */
static void take_events(tdm_live_t *lv, char **buf, size_t *len, int *overflow) {
  pthread_mutex_lock(&lv->lock);
  *buf = lv->queue;
  *len = lv->queue_len;
  *overflow = lv->queue_overflow;
  lv->queue = NULL;
  lv->queue_len = lv->queue_cap = 0;
  lv->queue_overflow = 0;
  pthread_mutex_unlock(&lv->lock);
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

static void work_cb(uv_work_t *req) {
  tdm_t *t = req->data;
  tdm_live_t *lv = t->live;
  char *events;
  size_t len;
  int overflow, rc = 0;

  /* New processors' first restore points go to the store before any data. */
  if (t->need_checkpoint && t->stats.checkpoints == 0 &&
      (rc = tdm__checkpoint(t)) != 0) {
    lv->status = rc;
    t->stop = 1;
  }

  take_events(lv, &events, &len, &overflow);
  if (overflow) {
    tdm__warn(&t->log, "more inotify events than we could hold: comparing "
              "every file with the store");
    t->stats.overflows++;
    lv->want_rescan = 1;
  }
  for (size_t off = 0; off < len && rc >= 0 && !t->stop;) {
    const struct inotify_event *ev = (const void *)(events + off);
    off += sizeof(*ev) + ev->len;
    rc = on_event(t, ev);
  }
  free(events);

  if (!t->stop && lv->want_rescan) {
    lv->want_rescan = 0;
    t->stats.rescans++;
    rc = tdm__reconcile_all(t, add_watch);
    t->from_end = 0; /* --from-end: only for files there at start */
  }
  if (!t->stop && t->n_ready > 0)
    rc = pass_over(t, 0);
  if (!t->stop && lv->want_drain && t->n_orphans > 0)
    rc = pass_over(t, 1);
  if (!t->stop && t->n_inflight > 0)
    rc = tdm__whole_poll(t, 0);
  if (!t->stop && lv->want_drain && t->n_waiting > 0)
    rc = tdm__whole_recheck(t);
  lv->want_drain = 0;

  if ((lv->want_checkpoint || t->stop) && (t->need_checkpoint || t->n_dead > 0)) {
    rc = tdm__checkpoint(t);
    if (rc != 0 && t->stop)
      lv->status = rc;
  }
  lv->want_checkpoint = 0;
  if (t->checkpoint_rc != 0)
    lv->want_rescan = 1; /* rolled back: read it all again */
  if (t->n_open > t->max_open)
    tdm__trim_fds(t);
  t->stats.watches = lv->in.n;
  if (t->stop)
    lv->final_done = 1;
}

/* ---- the loop thread ---------------------------------------------------- */

static int has_work(const tdm_t *t) {
  const tdm_live_t *lv = t->live;
  return lv->queue_len > 0 || lv->queue_overflow || lv->want_rescan ||
         t->n_ready > 0 || (lv->want_checkpoint && t->need_checkpoint) ||
         (lv->want_drain &&
          (t->n_orphans > 0 || t->n_waiting > 0 || t->n_inflight > 0)) ||
         lv->stopping;
}

/* Queue the worker if there is work and none is queued or running. Reading
   the engine's counters here is safe: no worker runs while !busy. */
static void kick(tdm_t *t) {
  tdm_live_t *lv = t->live;
  if (lv->busy || !has_work(t))
    return;
  lv->busy = 1;
  lv->work.data = t;
  if (uv_queue_work(lv->loop, &lv->work, work_cb, after_work) != 0)
    lv->busy = 0; /* cannot happen with a live loop */
}

static void on_closed(uv_handle_t *h) {
  tdm_t *t = h->data;
  tdm_live_t *lv = t->live;

  if (--lv->handles > 0)
    return;
  tdm__inotify_close(&lv->in);
  if (lv->stopped_cb != NULL)
    lv->stopped_cb(t, lv->status, lv->stopped_arg); /* may tdm_close(t) */
}

static void close_all(tdm_t *t) {
  tdm_live_t *lv = t->live;
  lv->closing = 1;
  lv->handles = 3 + lv->inotify;
  uv_close((uv_handle_t *)&lv->wake, on_closed);
  uv_close((uv_handle_t *)&lv->tick, on_closed);
  uv_close((uv_handle_t *)&lv->sweep, on_closed);
  if (lv->inotify)
    uv_close((uv_handle_t *)&lv->watch, on_closed);
}

static void begin_stop(tdm_t *t) {
  tdm_live_t *lv = t->live;
  if (lv->stopping)
    return;
  lv->stopping = 1;
  if (lv->inotify)
    uv_poll_stop(&lv->watch);
  uv_timer_stop(&lv->tick);
  uv_timer_stop(&lv->sweep);
  kick(t);
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
      kick(t);
    }
    return;
  }
  if (lv->watch_failed && uv_timer_get_repeat(&lv->sweep) != FALLBACK_POLL_MS)
    uv_timer_start(&lv->sweep, on_sweep, FALLBACK_POLL_MS, FALLBACK_POLL_MS);
  kick(t);
}

static void on_wake(uv_async_t *h) {
  tdm_t *t = h->data;
  if (t->stop)
    begin_stop(t);
  else
    kick(t);
}

static void on_tick(uv_timer_t *h) {
  tdm_t *t = h->data;
  t->live->want_checkpoint = 1;
  t->live->want_drain = 1;
  kick(t);
}

static void on_sweep(uv_timer_t *h) {
  tdm_t *t = h->data;
  t->live->want_rescan = 1;
  kick(t);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  tdm_t *t = h->data;
  tdm_live_t *lv = t->live;
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));

  (void)events;
  if (status < 0) {
    tdm__error(&t->log, "inotify: %s", uv_strerror(status));
    lv->want_rescan = 1;
    kick(t);
    return;
  }
  for (;;) {
    ssize_t n = read(lv->in.fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* EAGAIN: all taken */
    pthread_mutex_lock(&lv->lock);
    if (lv->queue_len + (size_t)n > QUEUE_MAX) {
      lv->queue_overflow = 1;
    } else {
      if (lv->queue_len + (size_t)n > lv->queue_cap) {
        size_t cap = lv->queue_cap ? lv->queue_cap * 2 : sizeof(buf);
        char *q;
        while (cap < lv->queue_len + (size_t)n)
          cap *= 2;
        if ((q = realloc(lv->queue, cap)) == NULL) {
          lv->queue_overflow = 1;
          pthread_mutex_unlock(&lv->lock);
          continue;
        }
        lv->queue = q;
        lv->queue_cap = cap;
      }
      memcpy(lv->queue + lv->queue_len, buf, (size_t)n);
      lv->queue_len += (size_t)n;
    }
    pthread_mutex_unlock(&lv->lock);
  }
  kick(t);
}

/* How many descriptors to hold: half of what is left under RLIMIT_NOFILE. */
static size_t fd_budget(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 1024;
  if (rl.rlim_cur < 256)
    return 32;
  return rl.rlim_cur > 16384 ? 8192 : (size_t)(rl.rlim_cur - 128) / 2;
}

int tdm_start(tdm_t *t, uv_loop_t *loop, tdm_stopped_cb cb, void *arg) {
  tdm_live_t *lv;
  int rc;

  if (t->live != NULL)
    return -EBUSY;
  if ((rc = tdm__prepare(t)) != 0)
    return rc;
  if ((lv = calloc(1, sizeof(*lv))) == NULL)
    return -ENOMEM;
  lv->in.fd = -1;
  lv->loop = loop;
  lv->stopped_cb = cb;
  lv->stopped_arg = arg;
  if (t->opts.poll_ms == 0) {
    rc = tdm__inotify_open(&lv->in);
    if (rc == -EMFILE || rc == -ENFILE) {
      tdm__warn(&t->log, "cannot create an inotify instance (sysctl "
                "fs.inotify.max_user_instances): polling every %u ms instead",
                FALLBACK_POLL_MS);
    } else if (rc != 0) {
      tdm__error(&t->log, "inotify: %s", strerror(-rc));
      free(lv);
      return rc;
    } else {
      lv->inotify = 1;
    }
  }
  if (lv->inotify && (rc = uv_poll_init(loop, &lv->watch, lv->in.fd)) != 0) {
    tdm__error(&t->log, "inotify: %s", uv_strerror(rc));
    tdm__inotify_close(&lv->in);
    free(lv);
    return rc;
  }
  pthread_mutex_init(&lv->lock, NULL);
  t->live = lv;
  t->keep_open = 1;
  t->read_budget = t->buf_cap * 2 > READ_BUDGET ? t->buf_cap * 2 : READ_BUDGET;
  t->max_open = fd_budget();

  uv_async_init(loop, &lv->wake, on_wake);
  uv_timer_init(loop, &lv->tick);
  uv_timer_init(loop, &lv->sweep);
  lv->wake.data = lv->tick.data = lv->sweep.data = lv->watch.data = t;
  uv_timer_start(&lv->tick, on_tick, t->opts.checkpoint_ms, t->opts.checkpoint_ms);
  {
    uint64_t every = !lv->inotify ? (t->opts.poll_ms ? t->opts.poll_ms
                                                     : FALLBACK_POLL_MS)
                                  : SWEEP_MS;
    uv_timer_start(&lv->sweep, on_sweep, every, every);
  }
  if (lv->inotify)
    uv_poll_start(&lv->watch, UV_READABLE, on_readable);
  lv->want_rescan = 1; /* the first pass: everything against the store */
  kick(t);
  return 0;
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
  tdm__inotify_close(&lv->in);
  pthread_mutex_destroy(&lv->lock);
  free(lv->queue);
  free(lv);
  t->live = NULL;
}
