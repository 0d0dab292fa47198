/*
 * files.h: the life of a file record, from tracked to forgotten, and the
 * counts of its live flags and held descriptors kept in struct tdm_s.
 */
#ifndef TDM_FILES_H
#define TDM_FILES_H

#include <stdint.h>
#include <sys/stat.h>

#include "core/filetable.h"
#include "tidemark.h"

/* Track a new file, found at `path` with stat `st` (its dev and ino):
   `rec` (state and what the caller knows of it: fingerprint, bookmark,
   size) gets them, the next id and its first-seen time, goes into the
   table, and is written at the next checkpoint. The one place a record is
   made. NULL on out of memory. */
tdm_file_t *tdm__track(tdm_t *t, const char *path, const struct stat *st,
                       tdm_file_rec_t *rec);

/* `f` was met at `path`: if that is a new name (a rename), take it. */
int tdm__file_seen_at(tdm_t *t, tdm_file_t *f, const char *path);

/* Delete `f`'s record at the next checkpoint and drop it from memory. */
int tdm__forget(tdm_t *t, tdm_file_t *f);
/* A file that is gone: kept as a ghost (state GONE: dev 0, ino = its id,
   at no path) for a while when a compressed copy of it may still turn up
   (tail mode, engine/zread.c), or until --forget-after has passed (whole
   mode, a done or duplicate file: engine/whole.c), else forgotten. */
int tdm__retire(tdm_t *t, tdm_file_t *f);
/* Forget ghosts older than their time to live (tail mode). */
int tdm__ghosts_expire(tdm_t *t);
/* Delete record `id` at the next checkpoint. */
int tdm__bury(tdm_t *t, uint64_t id);

void tdm__set_ready(tdm_t *t, tdm_file_t *f, int on);
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
