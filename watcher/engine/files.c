/*
 * files.c: the life of a file record: tracked, renamed, its live flags and
 * held descriptor, retired to a ghost, forgotten.
 *
 * Below reconcile.c, reader.c, zread.c and whole.c: every one of them
 * starts, moves and ends records through here, and this file calls none of
 * them (a mode's own clean-up goes through t->mode->forget).
 */
#include "engine/files.h"

#include "base/clock.h"
#include "engine/engine.h"
#include "engine/mode.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tdm__file_seen_at(tdm_t *t, tdm_file_t *f, const char *path) {
  char q[PATH_MAX];
  if (strcmp(f->path, path) == 0)
    return 0;
  tdm__info(&t->log, "%s: renamed from %s", tdm__quote(path, q, sizeof(q)),
            f->path);
  if (tdm__file_set_path(&t->files, f, path) != 0)
    return -ENOMEM;
  f->dirty = 1;
  t->need_checkpoint = 1;
  return 0;
}

/* ---- bookkeeping of the live flags -------------------------------------- */

void tdm__set_ready(tdm_t *t, tdm_file_t *f, int on) {
  if (f->ready != (unsigned)!!on) {
    f->ready = !!on;
    t->n_ready += on ? 1 : (size_t)-1;
  }
}

void tdm__set_orphan(tdm_t *t, tdm_file_t *f, int on) {
  if (f->orphan != (unsigned)!!on) {
    f->orphan = !!on;
    f->grown_ms = tdm__now_ms();
    t->n_orphans += on ? 1 : (size_t)-1;
  }
}

void tdm__set_fresh(tdm_t *t, tdm_file_t *f, int on) {
  if (f->fresh != (unsigned)!!on) {
    f->fresh = !!on;
    t->n_fresh += on ? 1 : (size_t)-1;
  }
}

void tdm__set_waiting(tdm_t *t, tdm_file_t *f, int on) {
  if (f->waiting != (unsigned)!!on) {
    f->waiting = !!on;
    t->n_waiting += on ? 1 : (size_t)-1;
  }
}

void tdm__hold(tdm_t *t, tdm_file_t *f, int fd) {
  if (f->fd < 0)
    t->n_open++;
  else if (f->fd != fd)
    close(f->fd);
  f->fd = fd;
}

void tdm__release(tdm_t *t, tdm_file_t *f) {
  if (f->fd >= 0) {
    close(f->fd);
    f->fd = -1;
    t->n_open--;
  }
}

int tdm__bury(tdm_t *t, uint64_t id) {
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

static int at_rest(const tdm_file_t *f) {
  if (f->dirty || f->fresh || f->deferred || f->in_piece || f->restart ||
      f->orphan || f->ready || f->waiting || f->settling || f->inflight ||
      f->stale || f->after ||
      f->fd >= 0 || f->pending_mask != 0)
    return 0;
  if (f->pos != f->rec.offset || f->marker != f->rec.marker ||
      f->marker_len != f->rec.marker_len ||
      f->durable_offset != f->rec.offset ||
      f->durable_marker != f->rec.marker ||
      f->durable_marker_len != f->rec.marker_len)
    return 0;
  switch (f->rec.state) {
  case TDM_FILE_ACTIVE: /* tail: nothing pending (a compressed file's
                           bookmark counts uncompressed bytes: beyond) */
    return f->rec.size <= f->rec.offset;
  case TDM_FILE_DONE:
  case TDM_FILE_DUPLICATE:
    return 1;
  default: /* failed, pending, ghosts: few, and looked at */
    return 0;
  }
}

void tdm__rest(tdm_t *t) {
  if (!t->rest_due)
    return;
  t->rest_due = 0;
  for (size_t i = 0; i < t->files.n;) {
    tdm_file_t *f = t->files.all[i];
    /* Made cold: the last file was swapped into i. Could not be (out of
       memory): it stays hot, which is only bigger. */
    if (!at_rest(f) || tdm__filetable_freeze(&t->files, f) != 0)
      i++;
  }
  t->hot_floor = t->files.n;
}

/* Ghosts: how long a gone file waits for its compressed copy. */
#define GHOST_TTL_NS (600ll * 1000000000)

int tdm__retire(tdm_t *t, tdm_file_t *f) {
  tdm_file_rec_t rec;
  tdm_file_t *g;
  /* Whole mode keeps a done (or duplicate) file gone from the tree until
     --forget-after has passed (whole.c forgets it, its hash kept). */
  int whole_kept = t->opts.mode == TDM_MODE_WHOLE && !f->inflight &&
                   (f->rec.state == TDM_FILE_DONE ||
                    f->rec.state == TDM_FILE_DUPLICATE);

  if (!whole_kept &&
      (t->opts.mode != TDM_MODE_TAIL || t->opts.decompress != TDM_DECOMPRESS_AUTO ||
       f->rec.fp_len == 0 || f->rec.state == TDM_FILE_GONE))
    return tdm__forget(t, f);
  rec = f->rec;
  rec.dev = 0; /* no file has it: never found by identity */
  rec.ino = rec.id;
  rec.state = TDM_FILE_GONE;
  rec.offset = f->pos;
  rec.marker = f->marker;
  rec.marker_len = f->marker_len;
  rec.updated_ns = tdm__wall_ns();
  tdm__set_ready(t, f, 0);
  tdm__set_orphan(t, f, 0);
  tdm__set_fresh(t, f, 0);
  tdm__release(t, f);
  if ((g = tdm__filetable_add(&t->files, &rec)) == NULL)
    return -ENOMEM;
  g->dirty = 1;
  t->need_checkpoint = 1;
  tdm__filetable_remove(&t->files, f);
  return 0;
}

tdm_file_t *tdm__ghost_truncated(tdm_t *t, const tdm_file_t *f, uint64_t of,
                                 int *rc) {
  tdm_file_rec_t rec;
  tdm_file_t *g, *oldest = NULL;
  size_t n = 0;

  *rc = 0;
  if (t->opts.mode != TDM_MODE_TAIL || f->pos == 0 || f->rec.fp_len == 0)
    return NULL;
  /* The file's ghosts so far (at its path, of its id): the oldest goes
     when there are as many as are kept. */
  for (g = tdm__filetable_ghost_at(&t->files, f->path, NULL); g != NULL;
       g = tdm__filetable_ghost_at(&t->files, f->path, g))
    if (g->rec.dup_of == of) {
      n++;
      if (oldest == NULL || g->rec.updated_ns < oldest->rec.updated_ns)
        oldest = g;
    }
  if (n >= TDM_TRUNC_GHOSTS && (*rc = tdm__forget(t, oldest)) != 0)
    return NULL;
  rec = f->rec;
  rec.id = t->next_id++;
  rec.dev = 0; /* no file has it: never found by identity */
  rec.ino = rec.id;
  rec.state = TDM_FILE_GONE;
  rec.dup_of = of;
  rec.offset = f->pos;
  rec.size = f->pos; /* nothing pending here: a copy delivers what followed */
  rec.marker = f->marker;
  rec.marker_len = f->marker_len;
  rec.error = NULL;
  rec.first_seen_ns = rec.updated_ns = tdm__wall_ns();
  if ((g = tdm__filetable_add(&t->files, &rec)) == NULL) {
    *rc = -ENOMEM;
    return NULL;
  }
  /* A rollback before the next checkpoint takes the processors back to
     what f's durable bookmark says was delivered: so does the ghost. */
  g->durable_offset = f->durable_offset;
  g->durable_marker = f->durable_marker;
  g->durable_marker_len = f->durable_marker_len;
  g->dirty = 1;
  /* The truncated file's new generation (at 0) goes to the store before
     its first chunk, ahead of the checkpoint: the ghost goes with it (at
     that durable bookmark), or a kill -9 between the two leaves a store
     that knows nothing of the old content, and its copy is read from 0. */
  tdm__set_fresh(t, g, 1);
  t->need_checkpoint = 1;
  return g;
}

int tdm__ghosts_expire(tdm_t *t) {
  int64_t now = tdm__wall_ns();
  if (t->opts.mode == TDM_MODE_WHOLE)
    return 0; /* gone whole files are forgotten by whole mode */
  for (size_t i = 0; i < t->files.n;) {
    tdm_file_t *f = t->files.all[i];
    int rc;
    if (f->rec.state == TDM_FILE_GONE &&
        (now - f->rec.updated_ns > GHOST_TTL_NS ||
         (t->opts.decompress != TDM_DECOMPRESS_AUTO &&
          !tdm__is_trunc_ghost(f)))) {
      if ((rc = tdm__forget(t, f)) != 0)
        return rc;
      continue;
    }
    i++;
  }
  return 0;
}

int tdm__forget(tdm_t *t, tdm_file_t *f) {
  int rc = tdm__bury(t, f->rec.id);
  if (rc != 0)
    return rc;
  tdm__set_ready(t, f, 0);
  tdm__set_orphan(t, f, 0);
  tdm__set_waiting(t, f, 0);
  tdm__set_fresh(t, f, 0);
  if (t->mode->forget != NULL)
    t->mode->forget(t, f);
  tdm__release(t, f);
  tdm__filetable_remove(&t->files, f);
  return 0;
}

tdm_file_t *tdm__track(tdm_t *t, const char *path, const struct stat *st,
                       tdm_file_rec_t *rec) {
  tdm_file_t *f;

  rec->dev = (uint64_t)st->st_dev;
  rec->ino = (uint64_t)st->st_ino;
  rec->path = path;
  rec->id = t->next_id++;
  rec->first_seen_ns = tdm__wall_ns();
  if ((f = tdm__filetable_add(&t->files, rec)) == NULL)
    return NULL;
  f->dirty = 1;
  tdm__set_fresh(t, f, 1); /* its id goes to the store before any chunk */
  t->need_checkpoint = 1;
  t->stats.files_new++;
  return f;
}

int tdm__defer(tdm_t *t, tdm_file_t *f) {
  if (!f->fresh)
    return 0;
  if (!f->deferred) {
    f->deferred = 1;
    t->n_deferred++;
  }
  return 1;
}
