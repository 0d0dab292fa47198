/*
 * reconcile.c: compare what is on disk with what we remember, and read what
 * is new.
 *
 * Every way a file comes to our attention (a scan, an inotify event, a poll)
 * ends in tdm__look(): the unchanged test on the lstat (same inode, size,
 * mtime and ctime: not opened at all), then identity through the descriptor, then a
 * read from the bookmark. Live watching holds descriptors open (so a file
 * renamed out of the tree or deleted can still be drained) and reads at most
 * `read_budget` bytes of one file per look, so a busy file cannot starve the
 * others.
 */
#include "engine/reconcile.h"

#include "base/clock.h"
#include "base/io.h"
#include "core/identity.h"
#include "core/scan.h"
#include "engine/checkpoint.h"
#include "engine/engine.h"
#include "engine/files.h"
#include "engine/progress.h"
#include "engine/reader.h"
#include "engine/mode.h"
#include "engine/zread.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

#define ORPHAN_GRACE_MS 1000u

/* Fingerprint f's head as it is now (through fd, of stat st). 0, or -errno
   after a warning naming the file (counted). */
static int refingerprint(tdm_t *t, tdm_file_t *f, int fd,
                         const struct stat *st, const char *path) {
  char q[PATH_MAX];
  int rc = tdm__fingerprint(fd, (uint64_t)st->st_size, &f->rec.fp_hash,
                            &f->rec.fp_len);
  if (rc != 0) {
    tdm__warn(&t->log, "%s: read: %s", tdm__quote(path, q, sizeof(q)),
              strerror(-rc));
    t->stats.file_errors++;
    return rc;
  }
  f->dirty = 1;
  return 0;
}

/* Does the file at `fd` (`size` bytes) hold a copy of the bytes a file of
   head fingerprint (fp_hash, fp_len) had read up to `pos` (marker over the
   bytes before it)? 1 yes, 0 no, or -errno. */
static int copy_of(int fd, uint64_t size, uint64_t fp_hash, uint32_t fp_len,
                   uint64_t pos, uint64_t marker, uint32_t marker_len) {
  uint64_t h, m;
  uint32_t mlen;
  int rc;

  if (pos == 0 || fp_len == 0 || size < pos || size < fp_len)
    return 0;
  if ((rc = tdm__hash_range(fd, 0, fp_len, &h)) != 0)
    return rc;
  if (h != fp_hash)
    return 0;
  if ((rc = tdm__marker(fd, pos, &m, &mlen)) != 0)
    return rc;
  return mlen == marker_len && m == marker;
}

/* Does the tracked file `live` hold now, at its path or through its held
   descriptor, the `size` bytes the copy at `fd` holds: the same head and
   the same bytes before `size`? 1 yes (*m, *ml: the marker at `size`),
   else 0. */
static int live_holds(const tdm_file_t *live, int fd, uint64_t size,
                      uint64_t *m, uint32_t *ml) {
  uint32_t n = size < TDM_FP_CAP ? (uint32_t)size : TDM_FP_CAP, cml;
  uint64_t h, ch, cm;
  struct stat ls;
  int lfd = live->fd, yes;

  if (lfd < 0 &&
      (lfd = open(live->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
    return 0;
  yes = fstat(lfd, &ls) == 0 && (uint64_t)ls.st_dev == live->rec.dev &&
        (uint64_t)ls.st_ino == live->rec.ino && (uint64_t)ls.st_size >= size &&
        tdm__hash_range(lfd, 0, n, &h) == 0 && tdm__hash_range(fd, 0, n, &ch) == 0 &&
        h == ch && tdm__marker(lfd, size, m, ml) == 0 &&
        tdm__marker(fd, size, &cm, &cml) == 0 && cm == *m && cml == *ml;
  if (lfd != live->fd)
    close(lfd);
  return yes;
}

/*
 * A new file that is a copy of a tracked file (copytruncate copies app.log
 * to app.log.1, then truncates app.log; `-i 'app.log*'` tracks both):
 * named after it, the same head fingerprint, and at the tracked file's
 * bookmark the same marker. It continues from that bookmark, so only the
 * tail no reader had seen is delivered, as the compressed path does for a
 * gzipped copy. The truncated original restarts at 0. A tracked file that
 * delivered nothing yet of what the copy holds, and still holds it, leaves
 * all of it to the copy and goes on after it; a copy shorter than the
 * bookmark (or than the head fingerprinted) whose bytes the tracked file
 * holds (one still being written) continues at its end (or the bookmark),
 * so far. The tracked file may have
 * been truncated already when the copy is met, even before a restart: what
 * it was then is a ghost of the truncation (tdm__ghost_truncated), found at
 * its path; a copy that continues from it forgets it, in the checkpoint
 * that writes the copy's bookmark. Sets f's bookmark and marker; 0 or
 * -errno.
 */
static int continue_copy(tdm_t *t, tdm_file_t *f, const char *path, int fd,
                         const struct stat *st, int *defer) {
  uint64_t size = (uint64_t)st->st_size, best = 0, bm = 0, m;
  uint32_t bml = 0, ml;
  const char *from = NULL;
  tdm_file_t *live = NULL, *ghost = NULL;
  char q[PATH_MAX];
  int rc, found = 0;

  /* The candidates: the tracked files named by a shorter prefix of this
     file's name in its directory, cut before a '.', '-', '_' or '~'
     (app.log.1, app.log-20261203, app.log_old, app.log~), looked up by
     path, not by a walk over every file: a pass over 20,000 new files
     stays linear. */
  char cand[PATH_MAX];
  const char *slash = strrchr(path, '/');
  size_t dlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
  size_t plen = strlen(path);
  if (plen >= sizeof(cand))
    return 0;
  memcpy(cand, path, plen + 1);
  for (size_t l = plen - 1; l > dlen; l--) {
    tdm_file_t *g;
    if (strchr(".-_~", path[l]) == NULL)
      continue; /* a copy's suffix starts with one of these */
    cand[l] = '\0';
    g = tdm__filetable_by_path(&t->files, cand);
    if (g != NULL && g->rec.state == TDM_FILE_ACTIVE && !g->in_piece &&
        (g->rec.dev != (uint64_t)st->st_dev || g->rec.ino != (uint64_t)st->st_ino)) {
      if (g->pos > best) {
        rc = copy_of(fd, size, g->rec.fp_hash, g->rec.fp_len, g->pos, g->marker,
                     g->marker_len);
        if (rc < 0)
          return rc;
        if (rc == 1) {
          best = g->pos, bm = g->marker, bml = g->marker_len;
          from = g->path;
          live = g, ghost = NULL, found = 1;
        } else if (!found && live_holds(g, fd, size, &m, &ml)) {
          /* Every byte of it in the original, but shorter than the
             original's bookmark or than its fingerprint: a copy still
             being written (cp, or a sendfile seen page by page), or of
             what was delivered already. It continues at the bookmark, or
             at its end when that comes first. */
          if (size < g->pos)
            best = size, bm = m, bml = ml;
          else
            best = g->pos, bm = g->marker, bml = g->marker_len;
          from = g->path;
          live = g, found = 1;
        }
      } else if (g->pos == 0 && !found && live_holds(g, fd, size, &m, &ml)) {
        /* Copied before a byte of it was read from the original. */
        from = g->path;
        live = g, found = 1;
      }
    }
    /* What the files at that path were before their truncations (never
       this file's own former content). */
    for (g = tdm__filetable_ghost_at(&t->files, cand, NULL); g != NULL;
         g = tdm__filetable_ghost_at(&t->files, cand, g)) {
      if (!tdm__is_trunc_ghost(g) || g->pos <= best || g->rec.dup_of == f->rec.id)
        continue;
      rc = copy_of(fd, size, g->rec.fp_hash, g->rec.fp_len, g->pos, g->marker,
                   g->marker_len);
      if (rc < 0)
        return rc;
      if (rc == 1) {
        best = g->pos, bm = g->marker, bml = g->marker_len;
        from = "a file truncated since";
        live = NULL, ghost = g, found = 1;
      }
    }
  }
  if (!found)
    return 0;
  if (live != NULL &&
      tdm__wall_ns() - mtime_ns(st) < (int64_t)t->opts.settle_ms * 1000000) {
    /* The copy of a file still in place may still be growing (cp writes
       it in pieces): decided once it held still for --settle-ms, so that
       the original, read on meanwhile, and the copy share its bytes at
       the copy's final end. */
    *defer = 1;
    return 0;
  }
  if (live != NULL && size > best && live->pos == best &&
      live_holds(live, fd, size, &m, &ml)) {
    /* The original still holds what the copy holds (or is truncated and
       will be found so): the bytes between its bookmark and the copy's end
       are delivered from the copy, once, and the original goes on after
       them (a backup copy of a growing log: the log continues at the
       copy's end; copytruncate: the truncation restarts it at 0). */
    live->pos = size;
    live->marker = m;
    live->marker_len = ml;
    live->dirty = 1;
    t->need_checkpoint = 1;
  }
  f->pos = best;
  f->marker = bm;
  f->marker_len = bml;
  f->copy = 1;
  f->dirty = 1;
  t->need_checkpoint = 1;
  tdm__info(&t->log, "%s: a copy of %s (same head, same bytes before its "
            "bookmark): continues from its bookmark %llu",
            tdm__quote(path, q, sizeof(q)), from, (unsigned long long)best);
  if (ghost != NULL) {
    /* A rollback before the checkpoint goes back where a restart would
       begin: at the ghost's durable bookmark, the ghost still in the
       store. */
    f->durable_offset = ghost->durable_offset;
    f->durable_marker = ghost->durable_marker;
    f->durable_marker_len = ghost->durable_marker_len;
    return tdm__forget(t, ghost); /* one copy continues from it */
  }
  return 0;
}

/* Start tracking the file open at `fd`. */
static tdm_file_t *track(tdm_t *t, const char *path, int fd,
                         const struct stat *st, int *rc) {
  tdm_file_rec_t rec;
  tdm_file_t *f;
  char q[PATH_MAX];

  memset(&rec, 0, sizeof(rec));
  rec.state = TDM_FILE_ACTIVE;
  if (!t->from_end && t->buf != NULL && t->buf_cap >= TDM_FP_CAP) {
    /* The head into t->buf, where the first read finds it (read_at()):
       a small file is read once, not twice. */
    ssize_t n;
    rec.fp_len = st->st_size < TDM_FP_CAP ? (uint32_t)st->st_size : TDM_FP_CAP;
    n = tdm__pread_full(fd, t->buf, rec.fp_len, 0);
    *rc = n < 0 ? (int)n : (size_t)n < rec.fp_len ? -ENODATA : 0;
    if (*rc == 0) {
      rec.fp_hash = XXH3_64bits(t->buf, rec.fp_len);
      t->head_fd = fd;
      t->head_len = rec.fp_len;
    }
  } else {
    *rc = tdm__fingerprint(fd, (uint64_t)st->st_size, &rec.fp_hash,
                           &rec.fp_len);
  }
  if (*rc == 0 && t->from_end && st->st_size > 0) {
    rec.offset = (uint64_t)st->st_size;
    *rc = tdm__marker(fd, rec.offset, &rec.marker, &rec.marker_len);
  }
  if (*rc != 0) {
    tdm__warn(&t->log, "%s: read: %s", tdm__quote(path, q, sizeof(q)),
              strerror(-*rc));
    t->stats.file_errors++;
    return NULL;
  }
  if ((f = tdm__track(t, path, st, &rec)) == NULL) {
    *rc = -ENOMEM;
    return NULL;
  }
  f->seen = 1;
  tdm__debug(&t->log, "%s: new file (id %llu)", tdm__quote(path, q, sizeof(q)),
             (unsigned long long)rec.id);
  return f;
}

/*
 * Bring `f` (known, open at `fd`, of size st->st_size) in line with what is
 * on disk: same file, truncated, or rewritten (then it is replaced by a new
 * record). Returns the file to read, or NULL with *rc set.
 */
static tdm_file_t *verify(tdm_t *t, tdm_file_t *f, const char *path, int fd,
                          const struct stat *st, const char *oldpath, int *rc) {
  tdm_file_t old;
  tdm_verdict_t v;
  char q[PATH_MAX];

  *rc = tdm__identify(fd, (uint64_t)st->st_size, f, &v);
  if (*rc != 0) {
    tdm__warn(&t->log, "%s: read: %s", tdm__quote(path, q, sizeof(q)),
              strerror(-*rc));
    t->stats.file_errors++;
    return NULL;
  }
  if (v != TDM_SAME && oldpath != NULL) {
    /* Met under another name AND no longer its content: the inode of a
       file deleted while we were down (logrotate's compressor removes the
       plain file, `create` makes a new one) was given to a new file. The
       old record stays a ghost (its compressed copy may still turn up);
       the new file is new. */
    tdm__info(&t->log, "%s: a new file in the inode %s had",
              tdm__quote(path, q, sizeof(q)), oldpath);
    if (tdm__file_set_path(&t->files, f, oldpath) != 0 ||
        (*rc = tdm__retire(t, f)) != 0) {
      *rc = *rc ? *rc : -ENOMEM;
      return NULL;
    }
    return track(t, path, fd, st, rc);
  }
  switch (v) {
  case TDM_SAME:
    break;
  case TDM_TRUNCATED:
    tdm__warn(&t->log, "%s: truncated (%llu bytes, bookmark at %llu): reading "
              "again from the start", tdm__quote(path, q, sizeof(q)),
              (unsigned long long)st->st_size, (unsigned long long)f->pos);
    t->stats.truncations++;
    if (tdm__ghost_truncated(t, f, f->rec.id, rc) == NULL && *rc != 0)
      return NULL;
    f->rec.truncations++;
    f->pos = 0;
    f->marker = 0;
    f->marker_len = 0;
    f->in_piece = 0;
    f->copy = 0;
    f->restart = 1;
    tdm__set_fresh(t, f, 1); /* its new generation: durable before its chunks */
    /* The head is what is there now (maybe nothing): a file truncated to 0
       that grows again is still this file, not a rewritten one. */
    if ((*rc = refingerprint(t, f, fd, st, path)) != 0)
      return NULL;
    t->need_checkpoint = 1;
    break;
  case TDM_REWRITTEN:
    tdm__warn(&t->log, "%s: content changed in place (or inode reused): "
              "delivered again from the start as a new file",
              tdm__quote(path, q, sizeof(q)));
    t->stats.rewrites++;
    /* Truncated and written again, met late: its former content may have
       been copied. The ghost is the new record's former content, made
       after it (a later id: the file comes first at its path). */
    old = *f;
    if ((old.path = strdup(f->path)) == NULL) {
      *rc = -ENOMEM;
      return NULL;
    }
    old.rec.path = old.path;
    if ((*rc = tdm__forget(t, f)) == 0 &&
        (f = track(t, path, fd, st, rc)) != NULL &&
        tdm__ghost_truncated(t, &old, f->rec.id, rc) == NULL && *rc != 0)
      f = NULL;
    free(old.path);
    return f;
  }
  /* The fingerprint grows with the file up to its cap. */
  if (f->rec.fp_len < TDM_FP_CAP && (uint64_t)st->st_size > f->rec.fp_len &&
      (*rc = refingerprint(t, f, fd, st, path)) != 0)
    return NULL;
  return f;
}

/* Read `f` at `fd` (of stat `st`) up to its end or the per-look budget. */
static int read_file(tdm_t *t, tdm_file_t *f, int fd, const struct stat *st) {
  uint64_t end = (uint64_t)st->st_size;
  int more = 0, rc;

  if (t->read_budget > 0 && end > f->pos && end - f->pos > t->read_budget) {
    end = f->pos + t->read_budget;
    more = 1;
  }
  /* Multiline: the last record is complete once the file has been quiet
     for --multiline-timeout-ms. */
  t->ml_flush = t->ml_on && tdm__wall_ns() - mtime_ns(st) >=
                                (int64_t)t->opts.multiline_timeout_ms * 1000000;
  rc = tdm__read(t, f, fd, end);
  f->active_ms = tdm__now_ms();
  tdm__set_ready(t, f, rc == 0 && more);
  if (rc == 0 && !more) {
    f->stale = 0;
    f->rec.size = (uint64_t)st->st_size;
    f->rec.mtime_ns = mtime_ns(st);
    f->rec.ctime_ns = ctime_ns(st);
    f->dirty = 1;
    t->need_checkpoint = 1;
    if (t->ml_on) {
      /* A record still open: looked at again at each tick (run) until a
         start line follows it or the timeout completes it. */
      int open_record = f->pos < (uint64_t)st->st_size;
      tdm__set_waiting(t, f, open_record);
      if (open_record)
        f->rec.mtime_ns = -1;
    }
  }
  return rc;
}

/* What a file's failure means for the caller: go on, or end the pass. */
static int outcome(tdm_t *t, int rc) {
  if (t->checkpoint_rc != 0)
    return t->checkpoint_rc; /* rolled back: this pass is over */
  if (rc == TDM_ESTOPPED || rc == -ENOMEM)
    return rc;
  return 0; /* a file that failed was logged and counted */
}

/* How many fresh files may wait for their records to go to the store
   before they are read (tdm__flush_fresh): one store commit per so many in
   a pass over many new files. Each holds a descriptor meanwhile: a quarter
   of RLIMIT_NOFILE, at least 16, at most 4,096. */
static size_t defer_max(tdm_t *t) {
  struct rlimit rl;
  if (t->defer_max == 0) {
    t->defer_max = 4096;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < t->defer_max)
      t->defer_max = rl.rlim_cur / 4 < 16 ? 16 : (size_t)rl.rlim_cur / 4;
  }
  return t->defer_max;
}

int tdm__look(tdm_t *t, const char *path, const struct stat *lst,
              unsigned hints) {
  tdm_cold_t *c = tdm__filetable_cold(&t->files, (uint64_t)lst->st_dev,
                                      (uint64_t)lst->st_ino);
  tdm_file_t *f;
  int rc;

  /* A cold file (at rest, core/filetable.h) unchanged at its path: what
     each mode's look does with a file it knows unchanged, without making
     it hot (tail: met_again(); whole: done or a duplicate, unchanged).
     Anything else makes it hot below. */
  if (c != NULL && !t->stop &&
      !(t->outputs.n > 0 && tdm__outputs_skip(t, path, lst, 0)) &&
      (uint64_t)lst->st_size == c->size && mtime_ns(lst) == c->mtime_ns &&
      ctime_ns(lst) == c->ctime_ns && tdm__cold_at(&t->files, c, path)) {
    t->stats.files_seen++;
    c->seen = 1;
    return 0;
  }
  if (c != NULL && tdm__filetable_thaw(&t->files, c) == NULL)
    return t->files.err == -ENOMEM ? -ENOMEM : TDM_ESTATE;

  if (t->outputs.n > 0) { /* our own output is not input */
    f = tdm__filetable_get(&t->files, (uint64_t)lst->st_dev,
                           (uint64_t)lst->st_ino);
    if (tdm__outputs_skip(t, path, lst, f == NULL))
      return f != NULL ? tdm__forget(t, f) : 0;
  }
  rc = t->mode->look(t, path, lst, hints);
  if (rc == 0 && t->n_deferred >= 16 && t->n_deferred >= defer_max(t) &&
      !t->flushing)
    rc = tdm__flush_fresh(t);
  return rc;
}

/* One file put off by tdm__defer, as tdm__flush_fresh finds it again. */
typedef struct deferred {
  uint64_t dev, ino, id;
} deferred_t;

static int look_open(tdm_t *t, tdm_file_t *f, const char *path, int fd,
                     const struct stat *st, char *oldpath);

/* Tail mode's deferred(): read `f` through the descriptor held since its
   look identified it. Unless its stat is still the one that look saw, it
   is identified again first, as a look does: the flush comes at the end of
   a pass or of a batch of events, and meanwhile copytruncate may have
   truncated it and written it again (read as it is then, the new content
   would be delivered under the old one's fingerprint, and its copy found
   no bookmark to go on from). None held any more: look at it again. */
static int tail_deferred(tdm_t *t, tdm_file_t *f) {
  char path[PATH_MAX]; /* a look may forget `f` */
  struct stat st;
  int fd, same;

  snprintf(path, sizeof(path), "%s", f->path);
  if (f->fd < 0 || fstat(f->fd, &st) != 0) {
    /* Gone or renamed since: the next scan or event finds it (its size was
       not taken: it is read then). */
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
      return 0;
    return tdm__look(t, path, &st, 0);
  }
  fd = f->fd;
  f->fd = -1;
  t->n_open--;
  /* Any write or truncation sets ctime. */
  same = (uint64_t)st.st_size == f->looked.size &&
         ctime_ns(&st) == f->looked.ctime_ns;
  return look_open(t, f, same ? NULL : path, fd, &st, NULL);
}

/* One commit for the fresh files put off so far, then each is read. */
static int flush_round(tdm_t *t) {
  deferred_t *v;
  size_t n = 0;
  int rc;

  if ((v = malloc(t->n_deferred * sizeof(*v))) == NULL)
    return -ENOMEM;
  /* Who they are (a look may forget or add files, and move them in the
     table). New files are the last in it: looked for from its end. */
  for (size_t i = t->files.n; i-- > 0 && n < t->n_deferred;) {
    tdm_file_t *f = t->files.all[i];
    if (!f->deferred)
      continue;
    f->deferred = 0;
    v[n].dev = f->rec.dev;
    v[n].ino = f->rec.ino;
    v[n++].id = f->rec.id;
  }
  t->n_deferred = 0;
  rc = tdm__register(t);
  t->flushing = 1;
  for (size_t i = n; i-- > 0;) { /* in the order they were met */
    tdm_file_t *f = tdm__filetable_get(&t->files, v[i].dev, v[i].ino);
    /* Forgotten meanwhile, or another record now: its own look read it.
       After what ended the pass, the rest wait for the next flush. */
    if (f != NULL && f->rec.id == v[i].id) {
      if (rc == 0)
        rc = t->mode->deferred(t, f);
      else if (!f->deferred) {
        f->deferred = 1;
        t->n_deferred++;
      }
    }
  }
  t->flushing = 0;
  free(v);
  return rc;
}

int tdm__flush_fresh(tdm_t *t) {
  int rc = 0;

  if (t->flushing)
    return 0;
  /* A file identified again as it is read may be fresh again (truncated,
     or rewritten: a new record): put off once more, for the next round.
     A file rewritten faster than the rounds go waits for the next flush. */
  for (int round = 0; rc == 0 && t->n_deferred > 0 && round < 8; round++)
    rc = flush_round(t);
  return rc;
}

/* `f` (found by the lstat's identity) is met at `path` again: take that
   name, keeping the old one in *oldpath (malloc'ed; left NULL when the
   same). Returns 1 when it is unchanged since the last look (not to be
   opened at all; *oldpath freed), 0 to read on, or -ENOMEM. */
static int met_again(tdm_t *t, tdm_file_t *f, const char *path,
                     const struct stat *lst, char **oldpath) {
  f->seen = 1;
  tdm__set_orphan(t, f, 0);
  if (strcmp(f->path, path) != 0 && (*oldpath = strdup(f->path)) == NULL)
    return -ENOMEM;
  if (tdm__file_seen_at(t, f, path) != 0) {
    free(*oldpath);
    *oldpath = NULL;
    return -ENOMEM;
  }
  /* Unchanged since the last look: not opened at all. */
  if (tdm__file_unchanged(f, lst) && f->rec.state != TDM_FILE_FAILED &&
      !f->ready && !f->deferred) {
    free(*oldpath);
    *oldpath = NULL;
    return 1;
  }
  return 0;
}

/* A descriptor for the file at `path` (`f`, if known, of lstat `lst`): the
   one held for `f`, taken back from it, or a new one. The caller owns it.
   Returns it, or -1 when the file cannot be opened (gone: nothing to do,
   `f` marked stale if bytes were lost; else said and counted). */
static int take_fd(tdm_t *t, tdm_file_t *f, const char *path,
                   const struct stat *lst) {
  char q[PATH_MAX];
  int fd;

  if (f != NULL && f->fd >= 0) {
    fd = f->fd; /* held open, and it is the file at `path` (same inode) */
    f->fd = -1;
    t->n_open--;
    return fd;
  }
  /* O_NONBLOCK: the path may have become a FIFO since the lstat. */
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 && (errno == EMFILE || errno == ENFILE) && t->n_open > 0) {
    tdm__trim_fds(t); /* ours are the ones to give back */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  }
  if (fd < 0) {
    /* Changed, and gone before we could open it: what was written is out
       of reach unless it turns up again (see tdm__lost). */
    if (errno == ENOENT && f != NULL && t->live != NULL &&
        (uint64_t)lst->st_size != f->rec.size)
      f->stale = 1;
    if (errno != ENOENT && errno != ELOOP) { /* vanished / became a link */
      tdm__warn(&t->log, "%s: cannot open: %s",
                tdm__quote(path, q, sizeof(q)), strerror(errno));
      t->stats.file_errors++;
    }
    return -1;
  }
  t->stats.files_opened++;
  /* Within the kernel's usual read-ahead (128 KiB) the advice changes
     nothing but costs a system call a file. */
  if (lst->st_size >= 128 * 1024)
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return fd;
}

/* If the file at `fd` (fstat `st`; `f` as found by the lstat) is
   compressed, read it whole through engine/zread.c and return 1, what the
   caller returns in *rc; else return 0. Never closes `fd`. */
static int compressed(tdm_t *t, tdm_file_t *f, const char *path, int fd,
                      const struct stat *st, unsigned hints, int *rc) {
  tdm_comp_t kind;
  tdm_file_t *g = f;

  /* Identity comes from the descriptor: the path may have been swapped. */
  if (g != NULL && (g->rec.dev != (uint64_t)st->st_dev ||
                    g->rec.ino != (uint64_t)st->st_ino))
    g = tdm__filetable_get(&t->files, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
  if (tdm__zkind(t->opts.decompress, fd, &kind) != 0)
    return 0;
  if (kind == TDM_COMP_NONE) {
    /* A whole magic's worth of plain head: tdm__read() in this look need
       not read it again (an emptier one may still be being written). */
    if (st->st_size >= 4)
      t->plain_fd = fd;
    return 0;
  }
  if (g != NULL) {
    g->seen = 1;
    tdm__release(t, g); /* read whole, never held */
    if (strcmp(g->path, path) != 0 &&
        tdm__file_set_path(&t->files, g, path) != 0) {
      *rc = -ENOMEM;
      return 1;
    }
  }
  *rc = outcome(t, tdm__zlook(t, g, path, fd, st, kind, hints));
  return 1;
}

/* The descriptor's identity (`st`) is not the lstat's `*fp`: the file it
   is, if known, becomes *fp, renamed to `path` (its old name replacing
   *oldpath). Returns 0, or -ENOMEM (*oldpath freed). */
static int reidentify(tdm_t *t, tdm_file_t **fp, const char *path,
                      const struct stat *st, char **oldpath) {
  tdm_file_t *f;

  f = *fp = tdm__filetable_get(&t->files, (uint64_t)st->st_dev,
                               (uint64_t)st->st_ino);
  if (f == NULL)
    return 0;
  f->seen = 1;
  tdm__set_orphan(t, f, 0);
  tdm__release(t, f); /* a descriptor of its own is the same file */
  free(*oldpath);
  *oldpath = NULL;
  if (strcmp(f->path, path) != 0 &&
      ((*oldpath = strdup(f->path)) == NULL ||
       tdm__file_set_path(&t->files, f, path) != 0)) {
    free(*oldpath);
    *oldpath = NULL;
    return -ENOMEM;
  }
  return 0;
}

static int tail_look_fd(tdm_t *t, const char *path, const struct stat *lst,
                        unsigned hints);

/* Tail mode's look (tdm_mode_ops_t.look); what it learnt of a descriptor
   (t->plain_fd), which it has closed or handed over, ends with it. */
static int tail_look(tdm_t *t, const char *path, const struct stat *lst,
                     unsigned hints) {
  int rc = tail_look_fd(t, path, lst, hints);
  t->plain_fd = t->head_fd = -1;
  return rc;
}

/* After tdm__look left out our own outputs, read what is new in the file. */
static int tail_look_fd(tdm_t *t, const char *path, const struct stat *lst,
                        unsigned hints) {
  tdm_file_t *f;
  struct stat st;
  char *oldpath = NULL; /* f's name before this look */
  int fd, rc;

  if (t->stop)
    return TDM_ESTOPPED;
  t->stats.files_seen++;
  f = tdm__filetable_get(&t->files, (uint64_t)lst->st_dev,
                         (uint64_t)lst->st_ino);
  if (f != NULL && (rc = met_again(t, f, path, lst, &oldpath)) != 0)
    return rc < 0 ? rc : 0;

  /* From here on this function owns the descriptor; a held one is taken
     back from the file and handed back (or closed) at the end. */
  if ((fd = take_fd(t, f, path, lst)) < 0) {
    free(oldpath);
    return 0;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    free(oldpath);
    return 0;
  }
  if (compressed(t, f, path, fd, &st, hints, &rc)) {
    close(fd);
    free(oldpath);
    return rc;
  }
  if ((f == NULL || f->rec.dev != (uint64_t)st.st_dev ||
       f->rec.ino != (uint64_t)st.st_ino) &&
      reidentify(t, &f, path, &st, &oldpath) != 0) {
    close(fd);
    return -ENOMEM;
  }
  return look_open(t, f, path, fd, &st, oldpath);
}

/* The rest of a look, at the descriptor `fd` (owned) of `f` (NULL: a new
   file) as it is now (`st`): identify it (`path`: its name now; NULL: as
   its last look did, unchanged since), see if it is a copy, read it (or
   put that off while its record is fresh). Frees `oldpath`. */
static int look_open(tdm_t *t, tdm_file_t *f, const char *path, int fd,
                     const struct stat *st, char *oldpath) {
  int rc = 0;

  if (path == NULL)
    path = f->path; /* not identified again: nothing may forget `f` */
  else if (f != NULL)
    f = verify(t, f, path, fd, st, oldpath, &rc);
  else
    f = track(t, path, fd, st, &rc);
  free(oldpath);
  if (f == NULL) {
    close(fd);
    return outcome(t, rc);
  }
  /* A new file may be a copy of a tracked one, often met while cp is still
     writing it (empty, or shorter than the bookmark it continues): until
     it delivered anything or was found a copy, a file is looked at as a
     possible copy again as it grows, and one that copies a file still in
     place waits until it holds still. */
  if (f->pos == 0 && f->rec.offset == 0 && !f->copy && !t->from_end &&
      st->st_size > 0) {
    int defer = 0;
    rc = continue_copy(t, f, path, fd, st, &defer);
    if (rc == 0 && defer) {
      f->settling = 1;
      tdm__set_waiting(t, f, 1);
      f->rec.mtime_ns = -1; /* looked at again (settle recheck) */
      close(fd);
      return 0;
    }
    if (f->settling) {
      f->settling = 0;
      tdm__set_waiting(t, f, 0);
    }
    if (rc == -ENOMEM) {
      close(fd);
      return rc;
    }
    rc = 0;
  }
  /* A fresh file's first chunk waits until its record is durable, with
     those of the other fresh files this pass meets (tdm__flush_fresh); its
     descriptor is held meanwhile, for the look that reads it, and its stat
     kept, by which that look knows whether it changed since. */
  if ((uint64_t)st->st_size > f->pos && tdm__defer(t, f)) {
    f->looked.size = (uint64_t)st->st_size;
    f->looked.ctime_ns = ctime_ns(st);
    tdm__hold(t, f, fd);
    if (t->keep_open && t->n_open > t->max_open)
      tdm__trim_fds(t); /* not a deferred one's: its flush reads it */
    return 0;
  }
  rc = read_file(t, f, fd, st);
  if (t->keep_open) {
    tdm__hold(t, f, fd);
    if (t->n_open > t->max_open)
      tdm__trim_fds(t);
  } else {
    close(fd);
  }
  return outcome(t, rc);
}

int tdm__drain(tdm_t *t, tdm_file_t *f) {
  uint64_t before = f->rec.size;
  struct stat st;
  int rc;

  if (f->fd < 0 || fstat(f->fd, &st) != 0)
    return 0;
  rc = read_file(t, f, f->fd, &st);
  /* A writer may still append to a deleted file for a moment (until it
     reopens its log): it is drained at every tick until it held still for
     ORPHAN_GRACE_MS, and only then forgotten. */
  if ((uint64_t)st.st_size != before)
    f->grown_ms = tdm__now_ms();
  if (rc == 0 && !f->ready && st.st_nlink == 0 &&
      tdm__now_ms() - f->grown_ms >=
          (t->ml_on && t->opts.multiline_timeout_ms > ORPHAN_GRACE_MS
               ? t->opts.multiline_timeout_ms : ORPHAN_GRACE_MS)) {
    char q[PATH_MAX];
    if (f->pos < (uint64_t)st.st_size)
      tdm__warn(&t->log, "%s: deleted; its unfinished last line (%llu bytes, "
                "no newline) was not delivered", tdm__quote(f->path, q, sizeof(q)),
                (unsigned long long)((uint64_t)st.st_size - f->pos));
    else
      tdm__info(&t->log, "%s: deleted, drained to its end",
                tdm__quote(f->path, q, sizeof(q)));
    return tdm__retire(t, f);
  }
  return outcome(t, rc);
}

int tdm__lost(tdm_t *t, tdm_file_t *f) {
  char q[PATH_MAX];

  if (t->opts.mode == TDM_MODE_TAIL && f->fd < 0 &&
      (f->stale || f->pos < f->rec.size)) {
    if (f->pos < f->rec.size)
      tdm__warn(&t->log, "%s: renamed away or deleted with %llu bytes not "
                "delivered: no descriptor was held for it",
                tdm__quote(f->path, q, sizeof(q)),
                (unsigned long long)(f->rec.size - f->pos));
    else
      tdm__warn(&t->log, "%s: renamed away or deleted after a write that may "
                "be not delivered: no descriptor was held for it (more files "
                "than RLIMIT_NOFILE allows to hold)",
                tdm__quote(f->path, q, sizeof(q)));
    t->stats.lost_files++;
    t->lost_unsaved++;
    t->need_checkpoint = 1;
  }
  /* A ghost for a while: its compressed copy (logrotate) may turn up. */
  return tdm__retire(t, f);
}

static int by_activity(const void *a, const void *b) {
  const tdm_file_t *x = *(tdm_file_t *const *)a, *y = *(tdm_file_t *const *)b;
  return x->active_ms < y->active_ms ? -1 : x->active_ms > y->active_ms;
}

/* Has `f` bytes past what was read (its descriptor's size now)? */
static int unread(tdm_file_t *f, struct stat *st) {
  return fstat(f->fd, st) != 0 || (uint64_t)st->st_size != f->rec.size ||
         ctime_ns(st) != f->rec.ctime_ns;
}

void tdm__trim_fds(tdm_t *t) {
  size_t target = t->max_open - t->max_open / 4, n = 0, k;
  tdm_file_t **idle;
  struct stat st;

  /* Close the descriptors of idle files, least recently read first, until a
     quarter of the budget is free again: one sort per trim, and a trim frees
     max_open / 4 descriptors. They are reopened by identity on their next
     change. A closed descriptor can no longer reach the file once its name
     is gone (renamed out of the tree, deleted), so: files read to their end
     are closed first, and a file with unread bytes is read before its
     descriptor is closed. */
  if (t->n_open <= target || (idle = malloc(t->n_open * sizeof(*idle))) == NULL)
    return;
  for (size_t i = 0; i < t->files.n && n < t->n_open; i++) {
    tdm_file_t *f = t->files.all[i];
    if (f->fd >= 0 && !f->ready && !f->orphan && !f->deferred)
      idle[n++] = f; /* a deferred one is read by its flush, not here */
  }
  qsort(idle, n, sizeof(*idle), by_activity);
  for (k = 0; k < n && t->n_open > target; k++)
    if (!unread(idle[k], &st)) {
      tdm__release(t, idle[k]);
      idle[k] = NULL;
    }
  for (k = 0; k < n && t->n_open > target && !t->stop; k++) {
    tdm_file_t *f = idle[k];
    if (f == NULL || fstat(f->fd, &st) != 0)
      continue;
    if (tdm__read(t, f, f->fd, (uint64_t)st.st_size) != 0 ||
        t->checkpoint_rc != 0)
      break; /* logged; keep the rest open, they are read next time */
    f->rec.size = (uint64_t)st.st_size;
    f->rec.mtime_ns = mtime_ns(&st);
    f->rec.ctime_ns = ctime_ns(&st);
    f->stale = 0;
    f->dirty = 1;
    t->need_checkpoint = 1;
    f->active_ms = tdm__now_ms();
    tdm__release(t, f);
  }
  free(idle);
}

/* ---- whole trees -------------------------------------------------------- */

static int on_file(void *arg, const char *path, const char *rel,
                   const struct stat *st) {
  tdm_t *t = arg;
  uint64_t opened = t->stats.files_opened;
  int rc;
  (void)rel;
  rc = tdm__look(t, path, st, 0);
  tdm__progress_file(t, t->stats.files_opened != opened);
  tdm__rest(t); /* between two files: none is held */
  return rc;
}

static void scan_init(tdm_t *t, tdm_scan_t *s,
                      int (*on_dir)(void *arg, const char *path)) {
  memset(s, 0, sizeof(*s));
  s->filter = &t->filter;
  s->recursive = t->opts.recursive;
  s->log = &t->log;
  s->on_file = on_file;
  s->on_dir = on_dir;
  s->arg = t;
}

/* Is `path` inside `root`? */
static int under(const char *path, const char *root) {
  size_t n = strlen(root);
  return strncmp(path, root, n) == 0 &&
         (path[n] == '/' || (n == 1 && root[0] == '/'));
}

/*
 * Forget files under the scanned roots that the scan did not meet and that
 * are no longer at their path (deleted, or rotated out of what the globs
 * take), after draining what a held descriptor still reaches. A file still
 * at its path but now excluded keeps its bookmark.
 */
static int collect_garbage(tdm_t *t, const int *scanned) {
  /* Cold files first: one not met and gone is made hot, for the walk
     below (the last cold file is swapped into i). */
  for (size_t i = 0; i < t->files.n_cold;) {
    tdm_cold_t *c = &t->files.cold[i];
    char path[PATH_MAX];
    struct stat st;
    int gone = 0;

    if (!c->seen && tdm__cold_path(&t->files, c, path, sizeof(path)) == 0)
      for (size_t r = 0; r < t->n_roots && !gone; r++)
        if (scanned[r] && under(path, t->roots[r]))
          gone = lstat(path, &st) != 0 ||
                 (uint64_t)st.st_dev != t->files.devs[c->dev] ||
                 (uint64_t)st.st_ino != c->ino;
    if (!gone) {
      c->seen = 0;
      i++;
    } else if (tdm__filetable_thaw(&t->files, c) == NULL) {
      return t->files.err == -ENOMEM ? -ENOMEM : TDM_ESTATE;
    }
  }
  for (size_t i = 0; i < t->files.n;) {
    tdm_file_t *f = t->files.all[i];
    struct stat st;
    int gone = 0, rc;

    if (f->rec.state == TDM_FILE_GONE) { /* a ghost: see tdm__retire */
      i++;
      continue;
    }
    if (!f->seen) {
      for (size_t r = 0; r < t->n_roots && !gone; r++)
        if (scanned[r] && under(f->path, t->roots[r]))
          gone = lstat(f->path, &st) != 0 ||
                 (uint64_t)st.st_dev != f->rec.dev ||
                 (uint64_t)st.st_ino != f->rec.ino;
    }
    f->seen = 0;
    if (!gone) {
      i++;
      continue;
    }
    if (f->fd >= 0) { /* the last look: all of it */
      rc = tdm__read(t, f, f->fd, UINT64_MAX);
      if (rc == TDM_ESTOPPED || t->checkpoint_rc != 0)
        return outcome(t, rc);
    } else {
      if ((rc = tdm__lost(t, f)) != 0) /* swaps the last one into i */
        return rc;
      continue;
    }
    if ((rc = tdm__retire(t, f)) != 0) /* swaps the last one into i */
      return rc;
  }
  return tdm__ghosts_expire(t);
}

/* No file met by a scan any more. */
static void unsee(tdm_t *t) {
  for (size_t i = 0; i < t->files.n; i++)
    t->files.all[i]->seen = 0;
  for (size_t i = 0; i < t->files.n_cold; i++)
    t->files.cold[i].seen = 0;
}

int tdm__reconcile_all(tdm_t *t, int (*on_dir)(void *arg, const char *path)) {
  tdm_scan_t s;
  int *scanned;
  int rc = 0, partial = 0;

  scanned = calloc(t->n_roots ? t->n_roots : 1, sizeof(*scanned));
  if (scanned == NULL)
    return -ENOMEM;
  scan_init(t, &s, on_dir);
  for (size_t r = 0; r < t->n_roots; r++) {
    struct stat st;
    char q[PATH_MAX];
    /* A missing source is said once, and once more when it is back. */
    if (stat(t->roots[r], &st) != 0 && errno == ENOENT) {
      if (!t->root_gone[r])
        tdm__error(&t->log, "%s: source directory is missing%s",
                   tdm__quote(t->roots[r], q, sizeof(q)),
                   t->live ? "; looking for it every second" : "");
      t->root_gone[r] = 1;
      partial = 1;
      continue;
    }
    if (t->root_gone[r]) {
      tdm__warn(&t->log, "%s: source directory is back",
                tdm__quote(t->roots[r], q, sizeof(q)));
      t->root_gone[r] = 0;
    }
    t->scan_root = r;
    rc = tdm__scan(&s, t->roots[r], "");
    if (rc == TDM_ESTOPPED || rc == -ENOMEM || rc <= -4000)
      break;
    if (rc != 0) { /* the root could not be read (logged) */
      partial = 1;
      rc = 0;
      continue;
    }
    scanned[r] = 1;
  }
  t->stats.skipped_special += s.stats.special;
  t->stats.file_errors += s.stats.errors;
  if (rc == 0)
    rc = tdm__flush_fresh(t); /* the new files this scan met */
  if (rc == 0)
    rc = collect_garbage(t, scanned);
  else
    unsee(t);
  free(scanned);
  return rc == 0 && partial ? TDM_EPARTIAL : rc;
}

int tdm__reconcile_dir(tdm_t *t, size_t root, const char *path,
                       int (*on_dir)(void *arg, const char *path)) {
  tdm_scan_t s;
  const char *rel;
  int rc;

  if (strcmp(path, t->roots[root]) == 0)
    rel = "";
  else if (under(path, t->roots[root]))
    rel = path + strlen(t->roots[root]) + 1;
  else
    return 0;
  scan_init(t, &s, on_dir);
  t->scan_root = root;
  rc = tdm__scan(&s, t->roots[root], rel);
  if (rc == 0 || rc == -ENOENT) {
    int frc = tdm__flush_fresh(t);
    if (frc != 0)
      rc = frc;
  }
  unsee(t);
  t->stats.skipped_special += s.stats.special;
  t->stats.file_errors += s.stats.errors;
  return rc == -ENOENT ? 0 : rc;
}

/* Look again at the files waiting (f->waiting): whole mode's settling
   files; tail mode's compressed files still being written and files whose
   last multiline record is still open, so that --multiline-timeout-ms
   completes the record of a file that has gone quiet (run: at each tick). */
uint64_t tdm__next_settle_ms(const tdm_t *t) {
  int64_t now = tdm__wall_ns(), first = INT64_MAX;
  for (size_t i = 0; i < t->files.n; i++) {
    const tdm_file_t *f = t->files.all[i];
    struct stat st;
    if (!f->waiting || lstat(f->path, &st) != 0)
      continue;
    int64_t left = mtime_ns(&st) + (int64_t)t->opts.settle_ms * 1000000 - now;
    if (left < first)
      first = left;
  }
  if (first == INT64_MAX)
    return 0;
  return first <= 0 ? 1 : (uint64_t)(first / 1000000) + 1;
}

int tdm__recheck_waiting(tdm_t *t) {
  for (size_t i = 0; i < t->files.n && t->n_waiting > 0;) {
    tdm_file_t *f = t->files.all[i];
    size_t before = t->files.n;
    struct stat st;
    int rc = 0;

    if (f->waiting) {
      if (lstat(f->path, &st) == 0 && S_ISREG(st.st_mode))
        rc = tdm__look(t, f->path, &st, 0);
      else
        tdm__set_waiting(t, f, 0); /* gone: the next sweep forgets it */
      if (rc < 0)
        return rc;
    }
    if (t->files.n == before)
      i++;
  }
  return tdm__flush_fresh(t);
}

/* Tail mode keeps nothing beyond the file table: its look, and a look
   again at waiting files. */
const tdm_mode_ops_t tdm__mode_tail = {
  .look = tail_look,
  .forget = NULL,
  .batch = NULL,
  .committed = NULL,
  .resume = NULL,
  .poll = NULL,
  .recheck = tdm__recheck_waiting, /* compressed files, multiline records */
  .deferred = tail_deferred,
  .next_settle_ms = tdm__next_settle_ms, /* compressed files settling */
  .free = NULL,
};
