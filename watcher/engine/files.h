/*
 * files.h: the life of a file record, from tracked to forgotten, and the
 * counts of its live flags and held descriptors kept in struct tdm_s.
 */
#ifndef TDM_FILES_H
#define TDM_FILES_H

#include <stdint.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "core/filetable.h"
#include "tidemark.h"

/* Is `st` the stat `f`'s record was last read or hashed at: the same size,
   mtime and ctime? (Any write or truncation sets ctime.) */
static inline int tdm__file_unchanged(const tdm_file_t *f,
                                      const struct stat *st) {
  return (uint64_t)st->st_size == f->rec.size &&
         mtime_ns(st) == f->rec.mtime_ns && ctime_ns(st) == f->rec.ctime_ns;
}

/* Track a new file, found at `path` with stat `st` (its dev and ino):
   `rec` (state and what the caller knows of it: fingerprint, bookmark,
   size) gets them, the next id and its first-seen time, goes into the
   table, and is written at the next checkpoint. The one place a record is
   made. It is fresh (f->fresh): its record goes to the store before its
   first chunk is handed over (tdm__register). NULL on out of memory. */
tdm_file_t *tdm__track(tdm_t *t, const char *path, const struct stat *st,
                       tdm_file_rec_t *rec);
/* A look found bytes to hand over from `f`: if it is fresh, put its reading
   off (f->deferred) until tdm__flush_fresh makes the records of every fresh
   file durable in one store commit and looks at it again, and return 1;
   else (not fresh) 0: read it now. One that look finds fresh again
   (truncated or rewritten meanwhile) is put off to the flush's next round. */
int tdm__defer(tdm_t *t, tdm_file_t *f);

/* `f` was met at `path`: if that is a new name (a rename), take it. */
int tdm__file_seen_at(tdm_t *t, tdm_file_t *f, const char *path);

/* Delete `f`'s record at the next checkpoint and drop it from memory. */
int tdm__forget(tdm_t *t, tdm_file_t *f);
/* A file that is gone: kept as a ghost (state GONE: dev 0, ino = its id,
   at no path) for a while when a compressed copy of it may still turn up
   (tail mode, engine/zread.c), or until --forget-after has passed (whole
   mode, a done or duplicate file: engine/whole.c), else forgotten. */
int tdm__retire(tdm_t *t, tdm_file_t *f);
/* A tail file `f` found truncated (or written anew in place): what it was
   before (its path, head fingerprint, bookmark and marker, as f has them
   now) is kept as a ghost of the truncation (state GONE, dup_of = `of`, the
   id of the file truncated), written to the store with the truncation
   itself (with the file's new generation, before its first chunk: the
   ghost at f's durable bookmark), so that a copy made just before it (copytruncate's
   app.log.1), met even after a restart, continues from that bookmark; the
   copy that does forgets it. At most TDM_TRUNC_GHOSTS are kept per file
   (the oldest goes), each for as long as any ghost. Returns the ghost,
   NULL when f had no bookmark to keep or on out of memory (*rc = -ENOMEM;
   else 0). */
#define TDM_TRUNC_GHOSTS 8
tdm_file_t *tdm__ghost_truncated(tdm_t *t, const tdm_file_t *f, uint64_t of,
                                 int *rc);
/* Is `f` the ghost of a truncation (tdm__ghost_truncated)? */
static inline int tdm__is_trunc_ghost(const tdm_file_t *f) {
  return f->rec.state == TDM_FILE_GONE && f->rec.dup_of != 0;
}
/* Tail mode: forget ghosts older than their time to live (and those of
   files gone, when compressed copies are not read: --decompress off). */
int tdm__ghosts_expire(tdm_t *t);
/* Delete record `id` at the next checkpoint. */
int tdm__bury(tdm_t *t, uint64_t id);

/* When a checkpoint committed since (t->rest_due): keep every file at rest
   cold (core/filetable.h), about 90 bytes instead of about 400. At rest:
   clean (the store holds its record), no descriptor, no flag, nothing
   pending (tail: delivered up to its size, a compressed file past it;
   whole: done or a duplicate, with no --on-done still to act on). Frees
   the files it makes cold: called only where no caller holds a tdm_file_t
   (between two files of a scan, after a pass, after the live worker's
   round). */
void tdm__rest(tdm_t *t);

void tdm__set_ready(tdm_t *t, tdm_file_t *f, int on);
/* `f`'s record is (on) or is no longer (off) to be made durable before its
   next chunk (f->fresh, counted in t->n_fresh). */
void tdm__set_fresh(tdm_t *t, tdm_file_t *f, int on);
void tdm__set_orphan(tdm_t *t, tdm_file_t *f, int on);
/* A file is settling (whole), or a compressed one is still being written or
   a multiline record is still open (tail): the mode's recheck()
   (tdm__recheck_waiting) looks at it again. */
void tdm__set_waiting(tdm_t *t, tdm_file_t *f, int on);

/* Hold `fd` as f's descriptor (closing another it held), counted in
   t->n_open. */
void tdm__hold(tdm_t *t, tdm_file_t *f, int fd);
/* Close f's held descriptor, if any. */
void tdm__release(tdm_t *t, tdm_file_t *f);

#endif /* TDM_FILES_H */
