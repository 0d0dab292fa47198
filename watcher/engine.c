/*
 * engine.c: the library's front door (tidemark.h) and one pass over the
 * sources (tdm_run_once).
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 64 /* deliver.c keeps a 64-bit "taken" mask */

uint64_t tdm__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t tdm__wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mtime_ns(const struct stat *st) {
  return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

void tdm_options_init(tdm_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->mode = TDM_MODE_TAIL;
  o->records = TDM_RECORDS_LINES;
  o->recursive = 1;
  o->max_record = 1u << 20;
  o->settle_ms = 1000;
  o->checkpoint_ms = 1000;
  o->log_level = TDM_LOG_INFO;
}

/* ---- open / close ------------------------------------------------------- */

static int load_file(void *arg, const tdm_file_rec_t *rec) {
  tdm_t *t = arg;
  if (tdm__filetable_get(&t->files, rec->dev, rec->ino) != NULL) {
    /* Two records for one inode can only come from an older crash between
       a rewrite's delete and insert; the newer id wins. */
    tdm_file_t *old = tdm__filetable_get(&t->files, rec->dev, rec->ino);
    if (old->rec.id > rec->id)
      return 0;
    tdm__filetable_remove(&t->files, old);
  }
  return tdm__filetable_add(&t->files, rec) != NULL ? 0 : -ENOMEM;
}

static int check_options(const tdm_options_t *o, const tdm__log_t *log) {
  if (o->state_dir == NULL || o->state_dir[0] == '\0') {
    tdm__error(log, "no state directory given (--state)");
    return TDM_EUSAGE;
  }
  if (o->mode == TDM_MODE_WHOLE) {
    tdm__error(log, "--mode whole: not available in this version yet; use "
               "--mode tail");
    return TDM_EUSAGE;
  }
  if (o->mode != TDM_MODE_TAIL) {
    tdm__error(log, "--mode: unknown mode %d", (int)o->mode);
    return TDM_EUSAGE;
  }
  if (o->records != TDM_RECORDS_LINES && o->records != TDM_RECORDS_BYTES) {
    tdm__error(log, "--records: unknown record kind %d", (int)o->records);
    return TDM_EUSAGE;
  }
  if (o->max_record < TDM_MAX_RECORD_MIN || o->max_record > TDM_MAX_RECORD_MAX) {
    tdm__error(log, "--max-record: %llu is outside [%u, %u]",
               (unsigned long long)o->max_record, TDM_MAX_RECORD_MIN,
               TDM_MAX_RECORD_MAX);
    return TDM_EUSAGE;
  }
  if (o->checkpoint_ms == 0) {
    tdm__error(log, "--checkpoint-ms: must be at least 1");
    return TDM_EUSAGE;
  }
  return 0;
}

int tdm_open(const tdm_options_t *o, tdm_t **out) {
  tdm_t *t;
  int rc;

  t = calloc(1, sizeof(*t));
  if (t == NULL)
    return -ENOMEM;
  t->log.level = o->log_level;
  t->log.cb = o->log_cb;
  t->log.arg = o->log_arg;
  tdm__filetable_init(&t->files);
  if ((rc = check_options(o, &t->log)) != 0)
    goto err;
  t->opts = *o;
  t->opts.include = NULL;
  t->opts.exclude = NULL;
  t->opts.n_include = t->opts.n_exclude = 0;
  t->opts.state_dir = strdup(o->state_dir);
  t->opts.plugin_dir = o->plugin_dir ? strdup(o->plugin_dir) : NULL;
  rc = -ENOMEM;
  if (t->opts.state_dir == NULL || (o->plugin_dir && !t->opts.plugin_dir))
    goto err;
  if ((rc = tdm__filter_init(&t->filter, o->include, o->n_include, o->exclude,
                             o->n_exclude)) != 0)
    goto err;
  if ((rc = tdm_store_open(o->state_dir, 0, &t->log, &t->store)) != 0)
    goto err;
  /* A state directory inside a source is not data. */
  t->filter.skip_dir = t->state_real = realpath(o->state_dir, NULL);
  if ((rc = tdm_registry_open(o->plugin_dir, &t->log, &t->registry)) != 0)
    goto err;
  if ((rc = tdm_store_load_files(t->store, load_file, t)) != 0)
    goto err;
  t->next_id = tdm_store_next_id(t->store);
  t->buf_cap = o->max_record > TDM_READ_MIN ? o->max_record : TDM_READ_MIN;
  *out = t;
  return 0;

err:
  tdm_close(t);
  return rc;
}

void tdm_close(tdm_t *t) {
  if (t == NULL)
    return;
  if (t->store != NULL && (t->need_checkpoint || t->n_dead > 0))
    tdm__checkpoint(t);
  for (size_t i = 0; i < t->n_procs; i++) {
    tdm__proc_close(&t->procs[i]);
    if (t->procs[i].desc != NULL)
      tdm_proc_spec_free(&t->procs[i].spec);
    free(t->procs[i].key);
  }
  free(t->procs);
  for (size_t i = 0; i < t->n_roots; i++)
    free(t->roots[i]);
  free(t->roots);
  tdm__filetable_free(&t->files);
  tdm__filter_free(&t->filter);
  tdm_registry_close(t->registry);
  tdm_store_close(t->store);
  free(t->dead);
  free(t->buf);
  free(t->state_real);
  free((char *)t->opts.state_dir);
  free((char *)t->opts.plugin_dir);
  free(t);
}

void tdm_stop(tdm_t *t) { t->stop = 1; }

void tdm_get_stats(const tdm_t *t, tdm_stats_t *out) { *out = t->stats; }

/* ---- sources and processors --------------------------------------------- */

int tdm_add_source(tdm_t *t, const char *dir) {
  char q[PATH_MAX], *real, **roots;
  struct stat st;

  real = realpath(dir, NULL);
  if (real == NULL || stat(real, &st) != 0) {
    int err = -errno;
    tdm__error(&t->log, "%s: source directory: %s",
               tdm__quote(dir, q, sizeof(q)), strerror(-err));
    free(real);
    return err;
  }
  if (!S_ISDIR(st.st_mode)) {
    tdm__error(&t->log, "%s: source is not a directory",
               tdm__quote(dir, q, sizeof(q)));
    free(real);
    return -ENOTDIR;
  }
  for (size_t i = 0; i < t->n_roots; i++)
    if (strcmp(t->roots[i], real) == 0) {
      free(real);
      return 0;
    }
  roots = realloc(t->roots, (t->n_roots + 1) * sizeof(*roots));
  if (roots == NULL) {
    free(real);
    return -ENOMEM;
  }
  t->roots = roots;
  t->roots[t->n_roots++] = real;
  return 0;
}

/* A new slot in t->procs for `key` (copied), or NULL (logged). */
static tdm_proc_t *new_proc(tdm_t *t, const char *key) {
  tdm_proc_t *v, *p;

  if (t->n_procs == MAX_PROCS) {
    tdm__error(&t->log, "processor '%s': at most %d processors", key, MAX_PROCS);
    return NULL;
  }
  for (size_t i = 0; i < t->n_procs; i++)
    if (strcmp(t->procs[i].key, key) == 0) {
      tdm__error(&t->log, "processor '%s' is given twice", key);
      return NULL;
    }
  v = realloc(t->procs, (t->n_procs + 1) * sizeof(*v));
  if (v == NULL)
    return NULL;
  t->procs = v;
  p = &t->procs[t->n_procs];
  memset(p, 0, sizeof(*p));
  if ((p->key = strdup(key)) == NULL)
    return NULL;
  return p;
}

int tdm_add_processor(tdm_t *t, const char *spec) {
  char err[256];
  tdm_proc_t *p;
  int rc;

  if ((p = new_proc(t, spec)) == NULL)
    return TDM_EUSAGE;
  if (tdm_proc_spec_parse(spec, &p->spec, err, sizeof(err)) != 0) {
    tdm__error(&t->log, "--processor '%s': %s", spec, err);
    free(p->key);
    return TDM_EUSAGE;
  }
  p->desc = tdm_registry_find(t->registry, p->spec.name);
  if (p->desc == NULL) {
    tdm__error(&t->log, "--processor '%s': unknown processor '%s' (see "
               "'tidemark processors')", spec, p->spec.name);
    rc = TDM_EUSAGE;
    goto err;
  }
  rc = tdm_store_get_blob(t->store, spec, p->blob, sizeof(p->blob),
                          &p->blob_len);
  if (rc != 0)
    goto err;
  /* A processor that will not open is misconfigured (a missing or unknown
     parameter, an output it cannot create): a usage error. */
  if (tdm__proc_open(t, p) != 0) {
    rc = TDM_EUSAGE;
    goto err;
  }
  t->n_procs++;
  t->need_checkpoint = 1; /* record its first restore point before any data */
  return 0;

err:
  tdm_proc_spec_free(&p->spec);
  free(p->key);
  return rc;
}

int tdm_add_callback(tdm_t *t, const char *name, tdm_chunk_cb cb, void *arg) {
  tdm_proc_t *p;

  if (cb == NULL || name == NULL) {
    tdm__error(&t->log, "callback processor: name and function are required");
    return TDM_EUSAGE;
  }
  if ((p = new_proc(t, name)) == NULL)
    return TDM_EUSAGE;
  p->cb = cb;
  p->cb_arg = arg;
  p->open = 1;
  t->n_procs++;
  return 0;
}

/* ---- one pass ----------------------------------------------------------- */

/* Remember `id` for deletion at the next checkpoint. */
static int bury(tdm_t *t, uint64_t id) {
  if (t->n_dead == t->cap_dead) {
    size_t cap = t->cap_dead ? t->cap_dead * 2 : 64;
    uint64_t *v = realloc(t->dead, cap * sizeof(*v));
    if (v == NULL)
      return -ENOMEM;
    t->dead = v;
    t->cap_dead = cap;
  }
  t->dead[t->n_dead++] = id;
  t->need_checkpoint = 1;
  return 0;
}

/* Start tracking the file open at `fd`. */
static tdm_file_t *track(tdm_t *t, const char *path, int fd,
                         const struct stat *st, int *rc) {
  tdm_file_rec_t rec;
  tdm_file_t *f;
  char q[PATH_MAX];

  memset(&rec, 0, sizeof(rec));
  rec.id = t->next_id++;
  rec.dev = (uint64_t)st->st_dev;
  rec.ino = (uint64_t)st->st_ino;
  rec.path = path;
  rec.state = TDM_FILE_ACTIVE;
  rec.first_seen_ns = tdm__wall_ns();
  *rc = tdm__fingerprint(fd, (uint64_t)st->st_size, &rec.fp_hash, &rec.fp_len);
  if (*rc == 0 && t->opts.from_end && st->st_size > 0) {
    rec.offset = (uint64_t)st->st_size;
    *rc = tdm__marker(fd, rec.offset, &rec.marker, &rec.marker_len);
  }
  if (*rc != 0) {
    tdm__warn(&t->log, "%s: read: %s", tdm__quote(path, q, sizeof(q)),
              strerror(-*rc));
    t->stats.file_errors++;
    return NULL;
  }
  if ((f = tdm__filetable_add(&t->files, &rec)) == NULL) {
    *rc = -ENOMEM;
    return NULL;
  }
  f->seen = 1;
  f->dirty = 1;
  t->need_checkpoint = 1;
  t->stats.files_new++;
  tdm__debug(&t->log, "%s: new file (id %llu)", tdm__quote(path, q, sizeof(q)),
             (unsigned long long)rec.id);
  return f;
}

/*
 * Bring `f` (known, open at `fd`, now of size `size`) in line with what is on
 * disk: same file, truncated, or rewritten (then it is replaced by a new
 * record). Returns the file to read, or NULL with *rc set.
 */
static tdm_file_t *reconcile(tdm_t *t, tdm_file_t *f, const char *path, int fd,
                             const struct stat *st, int *rc) {
  tdm_verdict_t v;
  char q[PATH_MAX];

  *rc = tdm__identify(fd, (uint64_t)st->st_size, f, &v);
  if (*rc != 0) {
    tdm__warn(&t->log, "%s: read: %s", tdm__quote(path, q, sizeof(q)),
              strerror(-*rc));
    t->stats.file_errors++;
    return NULL;
  }
  switch (v) {
  case TDM_SAME:
    break;
  case TDM_TRUNCATED:
    tdm__warn(&t->log, "%s: truncated (%llu bytes, bookmark at %llu): reading "
              "again from the start", tdm__quote(path, q, sizeof(q)),
              (unsigned long long)st->st_size, (unsigned long long)f->pos);
    t->stats.truncations++;
    f->rec.truncations++;
    f->pos = 0;
    f->marker = 0;
    f->marker_len = 0;
    f->in_piece = 0;
    f->restart = 1;
    f->rec.fp_len = 0; /* regrown below */
    f->dirty = 1;
    t->need_checkpoint = 1;
    break;
  case TDM_REWRITTEN:
    tdm__info(&t->log, "%s: content changed in place (or inode reused): a new "
              "file", tdm__quote(path, q, sizeof(q)));
    t->stats.rewrites++;
    if ((*rc = bury(t, f->rec.id)) != 0)
      return NULL;
    tdm__filetable_remove(&t->files, f);
    return track(t, path, fd, st, rc);
  }
  /* The fingerprint grows with the file up to its cap. */
  if (f->rec.fp_len < TDM_FP_CAP && (uint64_t)st->st_size > f->rec.fp_len) {
    *rc = tdm__fingerprint(fd, (uint64_t)st->st_size, &f->rec.fp_hash,
                           &f->rec.fp_len);
    if (*rc != 0) {
      tdm__warn(&t->log, "%s: read: %s", tdm__quote(path, q, sizeof(q)),
                strerror(-*rc));
      t->stats.file_errors++;
      return NULL;
    }
    f->dirty = 1;
  }
  return f;
}

/*
 * The scan found a regular file at `path` (lstat `lst`). Returns 0 to go on,
 * or a negative code that ends the pass (stop, store failure).
 */
static int on_file(void *arg, const char *path, const char *rel,
                   const struct stat *lst) {
  tdm_t *t = arg;
  tdm_file_t *f;
  struct stat st;
  char q[PATH_MAX];
  int fd, rc;

  (void)rel;
  if (t->stop)
    return TDM_ESTOPPED;
  t->stats.files_seen++;
  f = tdm__filetable_get(&t->files, (uint64_t)lst->st_dev,
                         (uint64_t)lst->st_ino);
  if (f != NULL) {
    f->seen = 1;
    if (strcmp(f->path, path) != 0) {
      tdm__info(&t->log, "%s: renamed from %s", tdm__quote(path, q, sizeof(q)),
                f->path);
      if (tdm__file_set_path(f, path) != 0)
        return -ENOMEM;
      f->dirty = 1;
      t->need_checkpoint = 1;
    }
    /* Unchanged since the last look: not opened at all. */
    if ((uint64_t)lst->st_size == f->rec.size &&
        mtime_ns(lst) == f->rec.mtime_ns && f->rec.state != TDM_FILE_FAILED)
      return 0;
  }

  /* O_NONBLOCK: the path may have become a FIFO since the lstat. */
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT && errno != ELOOP) { /* vanished / became a link */
      tdm__warn(&t->log, "%s: cannot open: %s", tdm__quote(path, q, sizeof(q)),
                strerror(errno));
      t->stats.file_errors++;
    }
    return 0;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return 0;
  }
  t->stats.files_opened++;
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  /* Identity comes from the descriptor: the path may have been swapped. */
  if (f == NULL || f->rec.dev != (uint64_t)st.st_dev ||
      f->rec.ino != (uint64_t)st.st_ino) {
    f = tdm__filetable_get(&t->files, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (f != NULL) {
      f->seen = 1;
      if (strcmp(f->path, path) != 0 && tdm__file_set_path(f, path) != 0) {
        close(fd);
        return -ENOMEM;
      }
    }
  }
  rc = 0;
  f = f != NULL ? reconcile(t, f, path, fd, &st, &rc) : track(t, path, fd, &st, &rc);
  if (f != NULL) {
    rc = tdm__read(t, f, fd, (uint64_t)st.st_size);
    if (rc == 0) {
      f->rec.size = (uint64_t)st.st_size;
      f->rec.mtime_ns = mtime_ns(&st);
      f->dirty = 1;
      t->need_checkpoint = 1;
    }
  }
  close(fd);
  if (t->checkpoint_rc != 0)
    return t->checkpoint_rc; /* rolled back: this pass is over */
  if (rc == TDM_ESTOPPED || rc == -ENOMEM)
    return rc;
  return 0; /* a file that failed was logged and counted; the pass goes on */
}

/* Is `path` inside `root`? */
static int under(const char *path, const char *root) {
  size_t n = strlen(root);
  return strncmp(path, root, n) == 0 && (path[n] == '/' || (n == 1 && root[0] == '/'));
}

/*
 * Forget files under the scanned roots that the scan did not meet and that
 * are no longer at their path (deleted, or rotated out of what the globs
 * take). A file still at its path but now excluded keeps its bookmark.
 */
static int collect_garbage(tdm_t *t, const int *scanned) {
  for (size_t i = 0; i < t->files.n;) {
    tdm_file_t *f = t->files.all[i];
    struct stat st;
    int gone = 0;

    if (!f->seen) {
      for (size_t r = 0; r < t->n_roots && !gone; r++)
        if (scanned[r] && under(f->path, t->roots[r]))
          gone = lstat(f->path, &st) != 0 ||
                 (uint64_t)st.st_dev != f->rec.dev ||
                 (uint64_t)st.st_ino != f->rec.ino;
    }
    f->seen = 0;
    if (gone) {
      char q[PATH_MAX];
      int rc;
      if (f->pos < f->rec.size)
        tdm__info(&t->log, "%s: gone with %llu bytes not delivered",
                  tdm__quote(f->path, q, sizeof(q)),
                  (unsigned long long)(f->rec.size - f->pos));
      if ((rc = bury(t, f->rec.id)) != 0)
        return rc;
      tdm__filetable_remove(&t->files, f); /* swaps the last one into i */
      continue;
    }
    i++;
  }
  return 0;
}

int tdm_run_once(tdm_t *t) {
  tdm_scan_stats_t ss = {0, 0};
  int *scanned = NULL;
  int rc = 0, partial = 0;

  if (t->n_procs == 0) {
    tdm__error(&t->log, "no processor to deliver to (--processor)");
    return TDM_EUSAGE;
  }
  if (t->buf == NULL) {
    if (posix_memalign((void **)&t->buf, 4096, t->buf_cap) != 0) {
      t->buf = NULL;
      return -ENOMEM;
    }
  }
  scanned = calloc(t->n_roots ? t->n_roots : 1, sizeof(*scanned));
  if (scanned == NULL)
    return -ENOMEM;
  t->last_checkpoint_ms = tdm__now_ms();
  /* New processors' first restore points go to the store before any data. */
  if (t->need_checkpoint && (rc = tdm__checkpoint(t)) != 0)
    goto out;

  for (size_t r = 0; r < t->n_roots; r++) {
    rc = tdm__scan(t->roots[r], &t->filter, t->opts.recursive, &t->log,
                   on_file, t, &ss);
    if (rc == TDM_ESTOPPED || rc == -ENOMEM || rc <= -4000)
      break;
    if (rc != 0) { /* the root could not be read (logged) */
      partial = 1;
      rc = 0;
      continue;
    }
    scanned[r] = 1;
  }
  t->stats.skipped_special += ss.special;
  t->stats.file_errors += ss.errors;
  if (rc == 0)
    rc = collect_garbage(t, scanned);
  else
    for (size_t i = 0; i < t->files.n; i++)
      t->files.all[i]->seen = 0;

  if (t->need_checkpoint || t->n_dead > 0) {
    int crc = tdm__checkpoint(t);
    if (rc == 0 || rc == TDM_ESTOPPED)
      rc = crc != 0 ? crc : rc;
  }
out:
  free(scanned);
  if (rc == 0 && (partial || t->stats.file_errors > 0 ||
                  t->stats.proc_failures > 0))
    rc = TDM_EPARTIAL;
  return rc;
}
