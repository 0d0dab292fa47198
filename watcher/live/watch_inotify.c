/*
 * watch_inotify.c: the inotify backend (live/watch.h): a descriptor of
 * tidemark's own and its watch table (watch_inotify.h), read on the loop
 * thread, the events turned into looks on the worker.
 */
#include "live/watch_inotify.h"

#include "engine/engine.h"
#include "engine/files.h"
#include "engine/reconcile.h"
#include "live/live.h"
#include "live/watch.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tdm__inotify_open(tdm_inotify_t *in) {
  memset(in, 0, sizeof(*in));
  in->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  return in->fd < 0 ? -errno : 0;
}

static uint64_t wd_hash(int wd) {
  return tdm__hash_u64((uint64_t)(unsigned)wd);
}

static void watch_free(tdm_watch_t *w) {
  free(w->path);
  free(w);
}

static void drop(tdm_inotify_t *in, tdm_watch_t *w) {
  tdm__hmap_remove(&in->watches, &w->node);
  watch_free(w);
}

static void drop_node(tdm_hnode_t *node, void *arg) {
  drop(arg, tdm__container_of(node, tdm_watch_t, node));
}

void tdm__inotify_close(tdm_inotify_t *in) {
  tdm__hmap_walk(&in->watches, drop_node, in);
  tdm__hmap_free(&in->watches);
  if (in->fd >= 0)
    close(in->fd);
  memset(in, 0, sizeof(*in));
  in->fd = -1;
}

static tdm_watch_t *find(const tdm_inotify_t *in, int wd) {
  uint64_t h = wd_hash(wd);
  for (tdm_hnode_t *n = tdm__hmap_first(&in->watches, h); n;
       n = tdm__hmap_next(n)) {
    tdm_watch_t *w = tdm__container_of(n, tdm_watch_t, node);
    if (w->wd == wd)
      return w;
  }
  return NULL;
}

const tdm_watch_t *tdm__inotify_find(const tdm_inotify_t *in, int wd) {
  return find(in, wd);
}

int tdm__inotify_add(tdm_inotify_t *in, const char *path, size_t root) {
  tdm_watch_t *w;
  char *copy;
  int wd = inotify_add_watch(in->fd, path, TDM_INOTIFY_MASK);

  if (wd < 0)
    return -errno;
  if ((copy = strdup(path)) == NULL) {
    inotify_rm_watch(in->fd, wd);
    return -ENOMEM;
  }
  if ((w = find(in, wd)) != NULL) { /* the same directory, maybe renamed */
    free(w->path);
    w->path = copy;
    w->root = root;
    return wd;
  }
  if ((w = calloc(1, sizeof(*w))) == NULL) {
    free(copy);
    inotify_rm_watch(in->fd, wd);
    return -ENOMEM;
  }
  w->wd = wd;
  w->root = root;
  w->path = copy;
  if (tdm__hmap_insert(&in->watches, &w->node, wd_hash(wd)) != 0) {
    watch_free(w);
    inotify_rm_watch(in->fd, wd);
    return -ENOMEM;
  }
  return wd;
}

void tdm__inotify_forget(tdm_inotify_t *in, int wd) {
  tdm_watch_t *w = find(in, wd);
  if (w != NULL)
    drop(in, w);
}

typedef struct under_arg {
  tdm_inotify_t *in;
  const char *top;
  size_t len;
} under_arg_t;

/* Drop the watch if it is `top` or below it. */
static void drop_under(tdm_hnode_t *node, void *arg) {
  under_arg_t *a = arg;
  tdm_watch_t *w = tdm__container_of(node, tdm_watch_t, node);

  if (strncmp(w->path, a->top, a->len) == 0 &&
      (w->path[a->len] == '\0' || w->path[a->len] == '/')) {
    inotify_rm_watch(a->in->fd, w->wd); /* its IN_IGNORED finds no entry */
    drop(a->in, w);
  }
}

void tdm__inotify_remove_under(tdm_inotify_t *in, const char *path) {
  under_arg_t a = {in, path, strlen(path)};
  tdm__hmap_walk(&in->watches, drop_under, &a);
}

/* ---- the backend (watch.h) ---------------------------------------------- */

#define SWEEP_MS 60000u         /* the safety net's interval */
#define QUEUE_MAX (16u << 20)   /* raw events held before we call it overflow */

/* The backend's state: the descriptor and its watch table (the worker's),
   and the raw events the loop thread read and the worker has not taken. */
typedef struct inotify_backend {
  tdm_t *t;
  const tdm_watch_host_t *host; /* kick, on_dir: the live engine's */
  tdm_inotify_t in;
  uv_poll_t readable;
  pthread_mutex_t lock;   /* guards the queue */
  char *queue;
  size_t queue_len, queue_cap;
  int queue_overflow;     /* dropped events: the worker must rescan */
  int limit_warned;       /* the watch limit was said once */
} inotify_backend_t;

/* Loop thread: append what the descriptor holds to the queue, wake the
   worker. No file I/O: a non-blocking read of a kernel queue. */
static void on_readable(uv_poll_t *h, int status, int events) {
  inotify_backend_t *b = (inotify_backend_t *)((char *)h -
                                               offsetof(inotify_backend_t,
                                                        readable));
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));

  (void)events;
  if (status < 0) {
    tdm__error(&b->t->log, "inotify: %s", uv_strerror(status));
    b->t->live->want_rescan = 1;
    b->host->kick(b->t);
    return;
  }
  for (;;) {
    ssize_t n = read(b->in.fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* EAGAIN: all taken */
    pthread_mutex_lock(&b->lock);
    if (b->queue_len + (size_t)n > QUEUE_MAX) {
      b->queue_overflow = 1;
    } else {
      if (b->queue_len + (size_t)n > b->queue_cap) {
        size_t cap = b->queue_cap ? b->queue_cap * 2 : sizeof(buf);
        char *q;
        while (cap < b->queue_len + (size_t)n)
          cap *= 2;
        if ((q = realloc(b->queue, cap)) == NULL) {
          b->queue_overflow = 1;
          pthread_mutex_unlock(&b->lock);
          continue;
        }
        b->queue = q;
        b->queue_cap = cap;
      }
      memcpy(b->queue + b->queue_len, buf, (size_t)n);
      b->queue_len += (size_t)n;
    }
    pthread_mutex_unlock(&b->lock);
  }
  b->host->kick(b->t);
}

static int backend_open(tdm_t *t, uv_loop_t *loop,
                        const tdm_watch_host_t *host, void **state) {
  inotify_backend_t *b;
  int rc;

  if ((b = calloc(1, sizeof(*b))) == NULL)
    return -ENOMEM;
  b->t = t;
  b->host = host;
  if ((rc = tdm__inotify_open(&b->in)) != 0) {
    free(b);
    return rc;
  }
  if ((rc = uv_poll_init(loop, &b->readable, b->in.fd)) != 0) {
    tdm__inotify_close(&b->in);
    free(b);
    return rc;
  }
  pthread_mutex_init(&b->lock, NULL);
  b->readable.data = t; /* as every handle of a started tdm_t (live.c) */
  uv_poll_start(&b->readable, UV_READABLE, on_readable);
  *state = b;
  return 0;
}

static void backend_stop(void *state) {
  inotify_backend_t *b = state;
  uv_poll_stop(&b->readable);
}

static int backend_close(void *state, uv_close_cb done) {
  inotify_backend_t *b = state;
  uv_close((uv_handle_t *)&b->readable, done);
  return 1;
}

static void backend_free(void *state) {
  inotify_backend_t *b = state;
  if (b == NULL)
    return;
  tdm__inotify_close(&b->in);
  pthread_mutex_destroy(&b->lock);
  free(b->queue);
  free(b);
}

/* Loop thread. The worker empties the queue under the same lock. */
static int backend_pending(void *state) {
  inotify_backend_t *b = state;
  int any;
  pthread_mutex_lock(&b->lock);
  any = b->queue_len > 0 || b->queue_overflow;
  pthread_mutex_unlock(&b->lock);
  return any;
}

static int backend_add_dir(tdm_t *t, void *state, const char *path,
                           size_t root) {
  inotify_backend_t *b = state;
  char q[PATH_MAX];
  int wd = tdm__inotify_add(&b->in, path, root);

  if (wd >= 0 || wd == -ENOENT || wd == -ENOTDIR)
    return 0; /* watched, or gone meanwhile */
  if (wd == -ENOSPC) {
    if (!b->limit_warned++)
      tdm__warn(&t->log, "%s: cannot watch: the inotify watch limit is reached "
                "(sysctl fs.inotify.max_user_watches); polling the directories "
                "that could not be watched every %u ms instead",
                tdm__quote(path, q, sizeof(q)), TDM_WATCH_FALLBACK_MS);
  } else {
    tdm__warn(&t->log, "%s: cannot watch: %s; polling it every %u ms",
              tdm__quote(path, q, sizeof(q)), strerror(-wd),
              TDM_WATCH_FALLBACK_MS);
  }
  return 1;
}

/* Is `path` one of the sources? */
static int is_root(const tdm_t *t, const char *path) {
  for (size_t r = 0; r < t->n_roots; r++)
    if (strcmp(t->roots[r], path) == 0)
      return 1;
  return 0;
}

/* A directory event: a new subtree to scan (and watch), or watches to drop. */
static int on_dir_event(tdm_t *t, inotify_backend_t *b, const tdm_watch_t *w,
                        const struct inotify_event *ev, const char *path) {
  if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && t->opts.recursive &&
      tdm__filter_dir(&t->filter, ev->name) &&
      (t->filter.skip_dir == NULL || strcmp(path, t->filter.skip_dir) != 0))
    return tdm__reconcile_dir(t, w->root, path, b->host->on_dir);
  if (ev->mask & (IN_MOVED_FROM | IN_DELETE))
    tdm__inotify_remove_under(&b->in, path);
  return 0;
}

/* A file event: a hint of what to look at. */
static int on_file_event(tdm_t *t, const tdm_watch_t *w,
                         const struct inotify_event *ev, const char *path) {
  const char *rel;
  struct stat st;
  tdm_file_t *f;

  if (ev->mask & (IN_MOVED_FROM | IN_DELETE)) {
    /* The name no longer leads to the file: drain it through the descriptor
       we hold. A move inside the tree finds it again by inode (IN_MOVED_TO);
       a deleted one is forgotten once drained. */
    f = tdm__filetable_by_path(&t->files, path);
    if (f != NULL && f->fd >= 0) {
      tdm__set_orphan(t, f, 1);
      return tdm__drain(t, f);
    }
    /* No descriptor, and a write we could not read: out of reach, unless
       the file turns up again in the tree (by inode, IN_MOVED_TO). Decided
       at the next drain (live.c, pass_over). */
    if (f != NULL && f->stale)
      tdm__set_orphan(t, f, 1);
    return 0;
  }

  /* IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO */
  rel = path + strlen(t->roots[w->root]);
  rel += *rel == '/';
  if (!tdm__filter_file(&t->filter, rel, ev->name))
    return 0;
  if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
    /* Written, and its name is already gone: without a descriptor those
       bytes can be read only if it turns up again (see IN_MOVED_FROM). */
    if ((ev->mask & IN_MODIFY) &&
        t->opts.mode == TDM_MODE_TAIL &&
        (f = tdm__filetable_by_path(&t->files, path)) != NULL && f->fd < 0)
      f->stale = 1;
    return 0;
  }
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

/* One event: the queue's overflow, a watch's end, or a name in a directory. */
static int on_event(tdm_t *t, inotify_backend_t *b,
                    const struct inotify_event *ev) {
  tdm_live_t *lv = t->live;
  const tdm_watch_t *w;
  char path[PATH_MAX], q[PATH_MAX];
  int n;

  if (ev->mask & IN_Q_OVERFLOW) {
    tdm__warn(&t->log, "the inotify queue overflowed: comparing every file "
              "with the store");
    t->stats.overflows++;
    lv->want_rescan = 1;
    return 0;
  }
  if ((w = tdm__inotify_find(&b->in, ev->wd)) == NULL)
    return 0; /* a watch we dropped */
  if (ev->mask & IN_IGNORED) {
    if (is_root(t, w->path))
      lv->watch_failed = 1; /* look for it at the fallback interval; the
                               next sweep says it is missing */
    tdm__inotify_forget(&b->in, ev->wd);
    return 0;
  }
  if (ev->mask & IN_MOVE_SELF) {
    if (is_root(t, w->path)) {
      tdm__warn(&t->log, "%s: source directory was moved away",
                tdm__quote(w->path, q, sizeof(q)));
      snprintf(path, sizeof(path), "%s", w->path);
      tdm__inotify_remove_under(&b->in, path);
      lv->watch_failed = 1; /* look for it at the fallback interval */
    }
    return 0;
  }
  if (ev->len == 0)
    return 0;
  n = snprintf(path, sizeof(path), "%s/%s", w->path, ev->name);
  if (n < 0 || (size_t)n >= sizeof(path))
    return 0;
  if (ev->mask & IN_ISDIR)
    return on_dir_event(t, b, w, ev, path);
  return on_file_event(t, w, ev, path);
}

/* Worker: take the queue the loop thread filled and look at each event. */
static int backend_dispatch(tdm_t *t, void *state) {
  inotify_backend_t *b = state;
  char *events;
  size_t len;
  int overflow, rc = 0;

  pthread_mutex_lock(&b->lock);
  events = b->queue;
  len = b->queue_len;
  overflow = b->queue_overflow;
  b->queue = NULL;
  b->queue_len = b->queue_cap = 0;
  b->queue_overflow = 0;
  pthread_mutex_unlock(&b->lock);

  if (overflow) {
    tdm__warn(&t->log, "more inotify events than we could hold: comparing "
              "every file with the store");
    t->stats.overflows++;
    t->live->want_rescan = 1;
  }
  for (size_t off = 0; off < len && rc >= 0 && !t->stop;) {
    const struct inotify_event *ev = (const void *)(events + off);
    off += sizeof(*ev) + ev->len;
    rc = on_event(t, b, ev);
  }
  free(events);
  return rc;
}

static size_t backend_count(void *state) {
  const inotify_backend_t *b = state;
  return b->in.watches.n;
}

static uint32_t backend_sweep_ms(const tdm_t *t) {
  (void)t;
  return SWEEP_MS;
}

const tdm_watch_ops_t tdm__watch_inotify = {
    .name = "inotify",
    .open = backend_open,
    .stop = backend_stop,
    .close = backend_close,
    .free = backend_free,
    .pending = backend_pending,
    .add_dir = backend_add_dir,
    .dispatch = backend_dispatch,
    .count = backend_count,
    .sweep_ms = backend_sweep_ms,
};
