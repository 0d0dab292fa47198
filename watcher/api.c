/*
 * api.c: the library's front door (tidemark.h): options, opening and
 * closing, sources and processors; a pass itself is engine/pass.c's.
 */
#include "engine/engine.h"

#include "base/clock.h"
#include "base/listen.h"
#include "engine/checkpoint.h"
#include "engine/files.h"
#include "engine/metrics.h"
#include "engine/options.h"
#include "engine/pass.h"
#include "engine/reader.h"
#include "live/live.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PROCS 64 /* chain.c keeps a 64-bit "taken" mask */

void tdm_options_init(tdm_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->size = (uint32_t)sizeof(*o);
  o->mode = TDM_MODE_TAIL;
  o->records = TDM_RECORDS_LINES;
  o->recursive = 1;
  o->max_record = 1u << 20;
  o->settle_ms = 1000;
  o->checkpoint_ms = 1000;
  o->retry_timeout_ms = 60000;
  o->log_level = TDM_LOG_INFO;
  o->progress_ms = 250;
  o->decompress = TDM_DECOMPRESS_AUTO;
  o->multiline_timeout_ms = 1000;
  o->max_tries = 5;
  o->forget_after_ms = 30ull * 24 * 3600 * 1000;
}

/* ---- open / close ------------------------------------------------------- */

/* How the file table reads a cold file's record back. */
static int load_record(void *arg, uint64_t id,
                       int (*cb)(void *cb_arg, const tdm_file_rec_t *rec),
                       void *cb_arg) {
  return tdm_store_get_file(arg, id, cb, cb_arg);
}

/* A record loaded at open is kept cold (core/filetable.h: 90 bytes, not
   400) unless it has something to do: bytes pending, a failure, a ghost,
   whole mode's pending files and --on-done/--on-failed still to act on. */
static int loads_cold(const tdm_t *t, const tdm_file_rec_t *rec) {
  switch (rec->state) {
  case TDM_FILE_ACTIVE:
    return rec->size <= rec->offset;
  case TDM_FILE_DONE:
  case TDM_FILE_DUPLICATE:
    return !(t->after_delete || t->done_dir != NULL);
  default:
    return 0;
  }
}

/* The older of two records for one inode (see load_file): in tail mode,
   when compressed copies are read, what it says of its content (head,
   bookmark, marker) is kept as a ghost, as when its file went while we
   looked: the inode given to a new file (logrotate's `create` after gzip
   deleted the old one) says nothing of where the old content is now, and
   its compressed copy still continues from that bookmark. Else deleted at
   the next checkpoint. */
static int load_older(tdm_t *t, const tdm_file_rec_t *rec) {
  tdm_file_rec_t g;
  tdm_file_t *f;

  if (t->opts.mode != TDM_MODE_TAIL || t->opts.decompress != TDM_DECOMPRESS_AUTO ||
      rec->state != TDM_FILE_ACTIVE || rec->fp_len == 0)
    return tdm__bury(t, rec->id);
  g = *rec;
  g.dev = 0; /* no file has it: never found by identity */
  g.ino = g.id;
  g.state = TDM_FILE_GONE;
  g.updated_ns = tdm__wall_ns();
  if ((f = tdm__filetable_add(&t->files, &g)) == NULL)
    return -ENOMEM;
  f->dirty = 1;
  t->need_checkpoint = 1;
  return 0;
}

static int load_file(void *arg, const tdm_file_rec_t *rec) {
  tdm_t *t = arg;
  if (loads_cold(t, rec)) {
    int rc = tdm__filetable_add_cold(&t->files, rec);
    if (rc == 0 || rc == -ENOMEM)
      return rc;
    /* A second record for one identity, or one to keep hot: below. */
  }
  if (tdm__filetable_get(&t->files, rec->dev, rec->ino) != NULL) {
    /* Two records for one inode: a new file's record was made durable
       before its first chunk (tdm__register), in an inode an older record
       still names (a file rewritten in place, or the inode of a deleted
       file given to a new one), and a kill -9 came before the checkpoint
       that deletes or retires the old one. The newer id wins. */
    tdm_file_t *old = tdm__filetable_get(&t->files, rec->dev, rec->ino);
    tdm_file_rec_t orec;
    int rc;
    if (old->rec.id > rec->id)
      return load_older(t, rec);
    orec = old->rec;
    orec.error = NULL; /* its memory goes with `old` */
    if ((orec.path = strdup(old->rec.path)) == NULL)
      return -ENOMEM;
    tdm__filetable_remove(&t->files, old);
    rc = load_older(t, &orec);
    free((char *)orec.path);
    if (rc != 0)
      return rc;
  } else if (t->files.err != 0) {
    return t->files.err; /* it could not be made hot */
  }
  return tdm__filetable_add(&t->files, rec) != NULL ? 0 : -ENOMEM;
}

static int check_options(const tdm_options_t *o, const tdm__log_t *log) {
  if (o->state_dir == NULL || o->state_dir[0] == '\0') {
    tdm__error(log, "no state directory given (--state)");
    return TDM_EUSAGE;
  }
  if (o->metrics_listen != NULL &&
      tdm__parse_listen(o->metrics_listen, NULL, 0, NULL) != 0) {
    char q[256];
    tdm__error(log, "--metrics: '%s' is not ADDR:PORT (e.g. 127.0.0.1:9464 "
               "or [::1]:9464)", tdm__quote(o->metrics_listen, q, sizeof(q)));
    return TDM_EUSAGE;
  }
  if (o->metrics_file != NULL && o->metrics_file[0] == '\0') {
    tdm__error(log, "--metrics-file: the path is empty");
    return TDM_EUSAGE;
  }
  if (o->mode != TDM_MODE_TAIL && o->mode != TDM_MODE_WHOLE) {
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
  for (int x = 0; x < 2; x++) {
    const char *const *g = x == 0 ? o->include : o->exclude;
    size_t n = x == 0 ? o->n_include : o->n_exclude;
    for (size_t i = 0; i < n; i++) {
      const char *why = g[i] != NULL ? tdm__filter_check(g[i]) : "no glob";
      if (why != NULL) {
        char q[256];
        tdm__error(log, "--%s '%s': not a valid glob: %s",
                   x == 0 ? "include" : "exclude",
                   g[i] != NULL ? tdm__quote(g[i], q, sizeof(q)) : "", why);
        return TDM_EUSAGE;
      }
    }
  }
  if (o->decompress != TDM_DECOMPRESS_AUTO &&
      o->decompress != TDM_DECOMPRESS_NEVER) {
    tdm__error(log, "--decompress: unknown value %d", (int)o->decompress);
    return TDM_EUSAGE;
  }
  if (o->max_tries == 0) {
    tdm__error(log, "--max-tries: must be at least 1");
    return TDM_EUSAGE;
  }
  if (o->dead_letter != NULL && o->dead_letter[0] == '\0') {
    tdm__error(log, "--dead-letter: the path is empty");
    return TDM_EUSAGE;
  }
  return 0;
}

/* The include/exclude globs; whole mode leaves out the temporary files of
   common writers too (dot-files, such as rsync's, are hidden already). */
static int open_filter(tdm_t *t, const tdm_options_t *o) {
  static const char *const temp[] = {"*.tmp", "*.part", "*.swp"};
  const char **exc;
  size_t n = o->n_exclude;
  int rc;

  if (o->mode != TDM_MODE_WHOLE)
    return tdm__filter_init(&t->filter, o->include, o->n_include, o->exclude,
                            o->n_exclude);
  exc = malloc((n + 3) * sizeof(*exc));
  if (exc == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    exc[i] = o->exclude[i];
  for (size_t i = 0; i < 3; i++)
    exc[n + i] = temp[i];
  rc = tdm__filter_init(&t->filter, o->include, o->n_include, exc, n + 3);
  free(exc);
  return rc;
}

int tdm_open(const tdm_options_t *caller, tdm_t **out) {
  tdm_options_t opts, *o = &opts;
  tdm_t *t;
  int rc;

  /* A program built against an older header passes a smaller struct: the
     fields it does not know keep their defaults. */
  tdm_options_init(o);
  if (caller->size >= TDM_OPTIONS_SIZE_V1)
    memcpy(o, caller, caller->size < sizeof(*o) ? caller->size : sizeof(*o));
  o->size = (uint32_t)sizeof(*o);
  t = calloc(1, sizeof(*t));
  if (t != NULL)
    t->plain_fd = t->head_fd = -1;
  if (t == NULL)
    return -ENOMEM;
  t->status_print = tdm__status_print;
  t->dl.fd = -1;
  t->log.level = o->log_level;
  t->log.cb = o->log_cb;
  t->log.arg = o->log_arg;
  tdm__filetable_init(&t->files);
  tdm_stats_init(&t->stats);
  if (caller->size < TDM_OPTIONS_SIZE_V1) {
    tdm__error(&t->log, "tdm_open: options of %u bytes, fewer than the %zu of "
               "the oldest layout (initialise them with tdm_options_init)",
               (unsigned)caller->size, (size_t)TDM_OPTIONS_SIZE_V1);
    rc = TDM_EUSAGE;
    goto err;
  }
  if ((rc = check_options(o, &t->log)) != 0)
    goto err;
  t->opts = *o;
  t->mode = o->mode == TDM_MODE_WHOLE ? &tdm__mode_whole : &tdm__mode_tail;
  t->opts.include = NULL;
  t->opts.exclude = NULL;
  t->opts.n_include = t->opts.n_exclude = 0;
  t->opts.state_dir = strdup(o->state_dir);
  t->opts.plugin_dir = o->plugin_dir ? strdup(o->plugin_dir) : NULL;
  t->opts.metrics_listen = o->metrics_listen ? strdup(o->metrics_listen) : NULL;
  t->opts.metrics_file = o->metrics_file ? strdup(o->metrics_file) : NULL;
  t->opts.multiline_start = NULL;
  t->opts.on_done = t->opts.on_failed = NULL;
  t->opts.dead_letter = NULL; /* t->dl has it */
  rc = -ENOMEM;
  if (t->opts.state_dir == NULL || (o->plugin_dir && !t->opts.plugin_dir) ||
      (o->metrics_listen && !t->opts.metrics_listen) ||
      (o->metrics_file && !t->opts.metrics_file))
    goto err;
  t->count_records = o->metrics_listen != NULL || o->metrics_file != NULL;
  if (o->metrics_file != NULL) /* every checkpoint, tdm_close's too */
    t->checkpointed = tdm__metrics_checkpointed;
  if ((rc = tdm__options_open(t, o)) != 0)
    goto err;
  if ((rc = open_filter(t, o)) != 0)
    goto err;
  if ((rc = tdm_store_open(o->state_dir, 0, &t->log, &t->store)) != 0)
    goto err;
  /* A state directory inside a source is not data. */
  t->filter.skip_dir = t->state_real = realpath(o->state_dir, NULL);
  if (o->dead_letter != NULL && (rc = tdm__deadletter_open(t, o->dead_letter)) != 0)
    goto err;
  if ((rc = tdm_registry_open(o->plugin_dir, &t->log, &t->registry)) != 0)
    goto err;
  tdm__filetable_set_load(&t->files, load_record, t->store);
  if ((rc = tdm_store_load_files(t->store, load_file, t)) != 0)
    goto err;
  t->next_id = tdm_store_next_id(t->store);
  t->hot_floor = t->files.n;
  for (size_t i = 0; i < t->files.n; i++) { /* --on-done/--on-failed */
    tdm_file_t *f = t->files.all[i];
    if (f->rec.state == TDM_FILE_FAILED)
      f->after = t->failed_dir != NULL;
    else if (f->rec.state == TDM_FILE_DONE || f->rec.state == TDM_FILE_DUPLICATE)
      f->after = t->after_delete || t->done_dir != NULL;
  }
  t->buf_cap = o->max_record > TDM_READ_MIN ? o->max_record : TDM_READ_MIN;
  t->from_end = o->from_end;
  *out = t;
  return 0;

err:
  tdm_close(t);
  return rc;
}

void tdm_close(tdm_t *t) {
  if (t == NULL)
    return;
  tdm__live_free(t); /* the caller stopped it first (tidemark.h) */
  if (t->store != NULL && (t->need_checkpoint || t->n_dead > 0))
    tdm__checkpoint(t);
  for (size_t i = 0; i < t->n_procs; i++) {
    tdm__proc_close(&t->procs[i]);
    if (t->procs[i].desc != NULL)
      tdm_proc_spec_free(&t->procs[i].spec);
    free(t->procs[i].key);
  }
  free(t->procs);
  tdm__deadletter_close(&t->dl);
  free(t->suspects);
  for (size_t i = 0; i < t->n_roots; i++)
    free(t->roots[i]);
  free(t->roots);
  free(t->root_gone);
  tdm__filetable_free(&t->files);
  if (t->mode != NULL && t->mode->free != NULL)
    t->mode->free(t);
  tdm__outputs_free(&t->outputs);
  tdm__filter_free(&t->filter);
  tdm_registry_close(t->registry);
  tdm_store_close(t->store);
  free(t->dead);
  free(t->buf);
  free(t->wbuf);
  free(t->state_real);
  free((char *)t->opts.state_dir);
  free((char *)t->opts.plugin_dir);
  free((char *)t->opts.metrics_listen);
  free((char *)t->opts.metrics_file);
  tdm__options_free(t);
  free(t);
}

void tdm_stop(tdm_t *t) {
  t->stop = 1;
  tdm__live_wake(t);
}

void tdm_stats_init(tdm_stats_t *s) {
  memset(s, 0, sizeof(*s));
  s->size = (uint32_t)sizeof(*s);
}

void tdm_get_stats(const tdm_t *t, tdm_stats_t *out) {
  tdm_stats_t all = t->stats;
  uint32_t size = out->size < sizeof(all) ? out->size : (uint32_t)sizeof(all);

  all.files_tracked = tdm__filetable_count(&t->files);
  all.size = size;
  if (size > 0)
    memcpy(out, &all, size);
}

/* ---- sources and processors --------------------------------------------- */

int tdm_add_source(tdm_t *t, const char *dir) {
  char q[PATH_MAX], *real, **roots;
  uint8_t *gone;
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
  if (tdm__options_check_source(t, real) != 0) {
    free(real);
    return TDM_EUSAGE;
  }
  roots = realloc(t->roots, (t->n_roots + 1) * sizeof(*roots));
  if (roots == NULL) {
    free(real);
    return -ENOMEM;
  }
  t->roots = roots;
  gone = realloc(t->root_gone, t->n_roots + 1);
  if (gone == NULL) {
    free(real);
    return -ENOMEM;
  }
  t->root_gone = gone;
  gone[t->n_roots] = 0;
  t->roots[t->n_roots++] = real;
  return 0;
}

/* A new slot in t->procs for `key` (copied) in *out: 0, TDM_EUSAGE (too
   many, or `key` given twice; logged) or -ENOMEM. */
static int new_proc(tdm_t *t, const char *key, tdm_proc_t **out) {
  tdm_proc_t *v, *p;

  if (t->n_procs == MAX_PROCS) {
    tdm__error(&t->log, "processor '%s': at most %d processors", key, MAX_PROCS);
    return TDM_EUSAGE;
  }
  for (size_t i = 0; i < t->n_procs; i++)
    if (strcmp(t->procs[i].key, key) == 0) {
      tdm__error(&t->log, "processor '%s' is given twice", key);
      return TDM_EUSAGE;
    }
  v = realloc(t->procs, (t->n_procs + 1) * sizeof(*v));
  if (v == NULL)
    return -ENOMEM;
  t->procs = v;
  p = &t->procs[t->n_procs];
  memset(p, 0, sizeof(*p));
  if ((p->key = strdup(key)) == NULL)
    return -ENOMEM;
  *out = p;
  return 0;
}

int tdm_add_processor(tdm_t *t, const char *spec) {
  char err[256];
  tdm_proc_t *p;
  int rc;

  if ((rc = new_proc(t, spec, &p)) != 0)
    return rc;
  if (tdm_proc_spec_parse(spec, &p->spec, err, sizeof(err)) != 0) {
    tdm__error(&t->log, "--processor '%s': %s", spec, err);
    free(p->key);
    return TDM_EUSAGE;
  }
  p->desc = tdm_registry_need(t->registry, p->spec.name);
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
     parameter, an output it cannot create): a usage error; unless it says
     that what it names cannot be used now (TDM_PROC_UNAVAILABLE: a server
     down, a missing stream): TDM_EPROC. */
  if ((rc = tdm__proc_open(t, p)) != 0)
    goto err;
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
  int rc;

  if (cb == NULL || name == NULL) {
    tdm__error(&t->log, "callback processor: name and function are required");
    return TDM_EUSAGE;
  }
  if ((rc = new_proc(t, name, &p)) != 0)
    return rc;
  p->cb = cb;
  p->cb_arg = arg;
  p->open = 1;
  t->n_procs++;
  return 0;
}

int tdm_add_processor_desc(tdm_t *t, const tdm_processor_t *desc,
                           const char *key, void *ctx) {
  tdm_proc_t *p;
  int rc;

  if (desc == NULL || key == NULL || key[0] == '\0') {
    tdm__error(&t->log, "host processor: a descriptor and a key are required");
    return TDM_EUSAGE;
  }
  /* Only abi_version and size may be read before these checks pass. */
  if (desc->abi_version != TDM_PROCESSOR_ABI_VERSION ||
      desc->size < TDM_PROCESSOR_SIZE_V1) {
    tdm__error(&t->log, "processor '%s': descriptor has ABI version %u and "
               "size %u; this library needs version %u and at least %zu",
               key, (unsigned)desc->abi_version, (unsigned)desc->size,
               (unsigned)TDM_PROCESSOR_ABI_VERSION,
               (size_t)TDM_PROCESSOR_SIZE_V1);
    return TDM_EABI;
  }
  if (desc->process == NULL) {
    tdm__error(&t->log, "processor '%s': descriptor has no process()", key);
    return TDM_EABI;
  }
  if ((rc = new_proc(t, key, &p)) != 0)
    return rc;
  p->desc = desc;
  p->ctx = ctx;
  rc = tdm_store_get_blob(t->store, key, p->blob, sizeof(p->blob),
                          &p->blob_len);
  if (rc != 0)
    goto err;
  if (tdm__proc_open(t, p) != 0) {
    rc = TDM_EPROC;
    goto err;
  }
  t->n_procs++;
  t->need_checkpoint = 1; /* record its first restore point before any data */
  return 0;

err:
  free(p->key);
  return rc;
}

int tdm_run_once(tdm_t *t) {
  if (t->live != NULL) {
    tdm__error(&t->log, "tdm_run_once: already started with tdm_start");
    return -EBUSY;
  }
  return tdm__pass_once(t);
}

/* ---- processors, without a tdm_t ---------------------------------------- */

int tdm_processors_list(const tdm_options_t *caller,
                        tdm_processor_info_t **list, size_t *count) {
  tdm_options_t o;
  tdm__log_t log;
  tdm_registry_t *r = NULL;
  tdm_processor_info_t *v;
  size_t n, bytes;
  char *p;
  int rc;

  *list = NULL;
  *count = 0;
  tdm_options_init(&o);
  if (caller != NULL && caller->size >= TDM_OPTIONS_SIZE_V1)
    memcpy(&o, caller, caller->size < sizeof(o) ? caller->size : sizeof(o));
  log.level = o.log_level;
  log.cb = o.log_cb;
  log.arg = o.log_arg;
  if ((rc = tdm_registry_open(o.plugin_dir, &log, &r)) != 0)
    return rc; /* the registry has said which directory and why */
  if ((rc = tdm_registry_load_defaults(r)) != 0)
    goto out;
  /* One allocation: the array, then each entry's escaped strings. */
  n = tdm_registry_count(r);
  bytes = n * sizeof(*v);
  for (size_t i = 0; i < n; i++) {
    const char *origin = NULL;
    const tdm_processor_t *d = tdm_registry_get(r, i, &origin);
    bytes += tdm__quote_size(d->name) + tdm__quote_size(origin ? origin : "") +
             tdm__quote_size(d->summary ? d->summary : "");
  }
  rc = -ENOMEM;
  if ((v = malloc(bytes > 0 ? bytes : 1)) == NULL)
    goto out;
  p = (char *)(v + n);
  for (size_t i = 0; i < n; i++) {
    const char *origin = NULL;
    const tdm_processor_t *d = tdm_registry_get(r, i, &origin);
    const char *from[3] = {d->name, origin ? origin : "",
                           d->summary ? d->summary : ""};
    const char **to[3] = {&v[i].name, &v[i].origin, &v[i].summary};
    for (int k = 0; k < 3; k++) {
      size_t need = tdm__quote_size(from[k]);
      *to[k] = tdm__quote(from[k], p, need);
      p += need;
    }
  }
  *list = v;
  *count = n;
  rc = 0;
out:
  tdm_registry_close(r);
  return rc;
}
