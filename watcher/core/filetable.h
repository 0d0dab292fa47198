/*
 * filetable.h: the tracked files in memory, by (dev, ino) and by path.
 */
#ifndef TDM_FILETABLE_H
#define TDM_FILETABLE_H

#include <stddef.h>
#include <stdint.h>

#include "base/hashmap.h"
#include "state/store.h"

/* One tracked file in memory. `rec` is what the next checkpoint writes; the
   position moves in `pos` between checkpoints, and `durable_*` is the
   bookmark the store holds, where a failed checkpoint rolls back to. */
typedef struct tdm_file {
  tdm_file_rec_t rec;     /* rec.path/rec.error point to path/error below */
  char *path;             /* owned */
  char *error;            /* owned, NULL if none */
  uint64_t pos;           /* delivered (accepted by every processor) */
  uint64_t marker;        /* marker of the bytes before pos */
  uint32_t marker_len;
  uint32_t durable_marker_len;
  uint64_t durable_offset;
  uint64_t durable_marker;
  unsigned dirty : 1;     /* differs from the store */
  unsigned seen : 1;      /* met by the current scan */
  unsigned in_piece : 1;  /* pos lies inside an over-long record */
  unsigned restart : 1;   /* next chunk carries TDM_CHUNK_RESTART */
  unsigned orphan : 1;    /* run: its path names it no more (moved out of
                             the tree, deleted); drained through `fd` */
  unsigned ready : 1;     /* run: on the ready list, more to read */
  unsigned waiting : 1;   /* whole: seen, not complete yet (settling) */
  unsigned settling : 1;  /* tail: a compressed file not complete yet (with
                             `waiting`): `once` waits for it */
  unsigned inflight : 1;  /* whole: a processor's file() is pending */
  unsigned stale : 1;     /* run: an event said it was written, but its name
                             led to it no more and no descriptor was held:
                             those bytes are out of reach unless the file
                             turns up again in the tree */
  unsigned after : 1;     /* whole: done/failed, --on-done/--on-failed
                             to act on once that is durable */
  unsigned fresh : 1;     /* its id, generation or content hash is not in
                             the store yet: none of its chunks may be
                             handed over before tdm__register makes it
                             durable (record ids are built from them) */
  unsigned deferred : 1;  /* fresh, and its reading put off until the
                             records of every fresh file go to the store in
                             one commit (tdm__defer, tdm__flush_fresh) */
  uint64_t pending_mask;  /* whole: processors whose outcome is awaited */
  int fd;                 /* run: held open (rotation, deletion), or -1 */
  uint64_t active_ms;     /* run: last read, for closing idle descriptors */
  uint64_t grown_ms;      /* run, orphans: last time it was seen growing */
  uint64_t pending_ms;    /* metrics: first seen with bytes pending (0:
                             none pending at the last snapshot) */
  size_t slot;            /* index in the table's vector */
  tdm_hnode_t by_id;      /* in tdm_filetable_t.ids, by (dev, ino) */
  tdm_hnode_t by_path;    /* in tdm_filetable_t.paths */
} tdm_file_t;

typedef struct tdm_filetable {
  tdm_file_t **all;       /* every file, in no particular order */
  size_t n, cap;
  tdm_hmap_t ids;         /* by (dev, ino) */
  tdm_hmap_t paths;       /* by path */
} tdm_filetable_t;

void tdm__filetable_init(tdm_filetable_t *ft);
/* Frees every file. */
void tdm__filetable_free(tdm_filetable_t *ft);
/* The file with this identity, or NULL. */
tdm_file_t *tdm__filetable_get(const tdm_filetable_t *ft, uint64_t dev,
                               uint64_t ino);
/*
 * A new file for `rec` (copied, with its strings), inserted. A file with the
 * same (dev, ino) must not be in the table. NULL on out of memory.
 */
tdm_file_t *tdm__filetable_add(tdm_filetable_t *ft, const tdm_file_rec_t *rec);
/* The file last seen at `path`, or NULL. */
tdm_file_t *tdm__filetable_by_path(const tdm_filetable_t *ft, const char *path);
/* The ghosts (state GONE) last seen at `path`: the first when `prev` is
   NULL, else the next after `prev`; NULL when there are no more. */
tdm_file_t *tdm__filetable_ghost_at(const tdm_filetable_t *ft, const char *path,
                                    const tdm_file_t *prev);
/* Unlink `f` from the table and free it (closing f->fd). */
void tdm__filetable_remove(tdm_filetable_t *ft, tdm_file_t *f);
/* Replace f's path (copied). -ENOMEM leaves it unchanged. */
int tdm__file_set_path(tdm_filetable_t *ft, tdm_file_t *f, const char *path);
/* Replace f's error message (copied; NULL clears). */
void tdm__file_set_error(tdm_file_t *f, const char *msg);

#endif /* TDM_FILETABLE_H */
