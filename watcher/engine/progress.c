/* progress.c: tdm_run_once()'s progress reports (see progress.h). */
#include "engine/progress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "core/scan.h"
#include "engine/engine.h"

/* The pre-scan says nothing: the pass itself reports unreadable places. */
static void quiet(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  (void)level;
  (void)msg;
}

/* A file the pass will open: new, or size/mtime changed (reconcile's rule
   for "unchanged, not opened"). */
static int count(void *arg, const char *path, const char *rel,
                 const struct stat *st) {
  tdm_t *t = arg;
  tdm_progress_t *p = &t->progress->p;
  const tdm_cold_t *c = tdm__filetable_cold(&t->files, (uint64_t)st->st_dev,
                                           (uint64_t)st->st_ino);
  const tdm_file_t *f = c != NULL ? NULL
                                  : tdm__filetable_get(&t->files,
                                                       (uint64_t)st->st_dev,
                                                       (uint64_t)st->st_ino);
  uint64_t size = (uint64_t)st->st_size;
  (void)path;
  (void)rel;
  if (c != NULL) { /* at rest (so read to its old size): not made hot */
    if (size != c->size || mtime_ns(st) != c->mtime_ns) {
      p->files_total++;
      p->bytes_total += size >= c->size ? size - c->size : size;
    }
  } else if (f == NULL) {
    p->files_total++;
    p->bytes_total += t->from_end && t->opts.mode == TDM_MODE_TAIL ? 0 : size;
  } else if (size != f->rec.size || mtime_ns(st) != f->rec.mtime_ns) {
    p->files_total++;
    p->bytes_total += size >= f->pos ? size - f->pos : size;
  }
  return 0;
}

static void report(tdm_t *t, int final) {
  tdm_progress_state_t *s = t->progress;
  uint64_t now = tdm__now_ms();
  if (!final && now - s->last_ms < t->opts.progress_ms)
    return;
  s->last_ms = now;
  s->p.bytes_done = t->stats.bytes - s->bytes0;
  s->p.elapsed_ms = now - s->start_ms;
  s->p.final = final;
  t->opts.progress_cb(t->opts.progress_arg, &s->p);
}

int tdm__progress_begin(tdm_t *t) {
  tdm__log_t log = {TDM_LOG_ERROR, quiet, NULL};
  tdm_scan_t s;

  if (t->opts.progress_cb == NULL)
    return 0;
  if ((t->progress = calloc(1, sizeof(*t->progress))) == NULL)
    return -ENOMEM;
  memset(&s, 0, sizeof(s));
  s.filter = &t->filter;
  s.recursive = t->opts.recursive;
  s.log = &log;
  s.on_file = count;
  s.arg = t;
  for (size_t r = 0; r < t->n_roots; r++)
    tdm__scan(&s, t->roots[r], "");
  t->progress->start_ms = tdm__now_ms();
  t->progress->last_ms = t->progress->start_ms - t->opts.progress_ms;
  t->progress->bytes0 = t->stats.bytes;
  report(t, 0); /* at once: the totals */
  return 0;
}

void tdm__progress_file(tdm_t *t, int changed) {
  if (t->progress == NULL)
    return;
  t->progress->p.files_done += changed != 0;
  report(t, 0);
}

void tdm__progress_tick(tdm_t *t) {
  if (t->progress != NULL)
    report(t, 0);
}

void tdm__progress_end(tdm_t *t) {
  if (t->progress == NULL)
    return;
  report(t, 1);
  free(t->progress);
  t->progress = NULL;
}
