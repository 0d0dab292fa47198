/*
 * filetable.h: the tracked files in memory, by (dev, ino) and by path.
 *
 * A file is held in one of two forms. Hot: a full tdm_file_t (its record
 * and the engine's live state), found through the vector `all` and two
 * chained hash tables; every engine function works on these. Cold: a file
 * at rest (clean, nothing held, nothing pending), kept as a 64-byte
 * tdm_cold_t (64 bytes) with its directory shared and its name in one arena, in two
 * open-addressing tables of 32-bit indices: about 90 bytes a file instead
 * of about 400. tdm__filetable_get() and tdm__filetable_by_path() make a
 * cold file hot again (thaw) by reading its record through `load` (the
 * store) and laying the cold fields over it, so a caller never meets a
 * cold file unless it asks for one (tdm__filetable_cold()).
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
  unsigned copy : 1;      /* tail: found a copy of a tracked file, or of
                             a ghost, and its bookmark set by that (at 0
                             when the original read none of it): not
                             looked at as a copy again */
  union {
    uint64_t pending_mask; /* whole: processors whose outcome is awaited */
    struct {               /* tail, deferred: its stat when it was put off
                              (tdm__defer), by which its flush knows whether
                              it changed since */
      uint64_t size;
      int64_t ctime_ns;
    } looked;
  };
  int fd;                 /* run: held open (rotation, deletion), or -1 */
  uint64_t active_ms;     /* run: last read, for closing idle descriptors */
  uint64_t grown_ms;      /* run, orphans: last time it was seen growing */
  uint64_t pending_ms;    /* metrics: first seen with bytes pending (0:
                             none pending at the last snapshot) */
  size_t slot;            /* index in the table's vector */
  tdm_hnode_t by_id;      /* in tdm_filetable_t.ids, by (dev, ino) */
  tdm_hnode_t by_path;    /* in tdm_filetable_t.paths */
} tdm_file_t;

/* A file at rest. Its other fields (fingerprint, marker, generation,
   times, whole mode's hash and outcome, error) are the store's, which
   holds them unchanged while it is cold. */
typedef struct tdm_cold {
  uint64_t id;
  uint64_t ino;
  uint64_t size;          /* its bookmark is the store's: nothing is
                             pending past it (tail: size <= bookmark) */
  int64_t mtime_ns;
  int64_t ctime_ns;
  uint64_t fp_hash;       /* for a compressed copy to find its origin by */
  uint32_t dev;           /* index in tdm_filetable_t.devs */
  uint32_t dir;           /* index in tdm_filetable_t.dirs */
  uint32_t name;          /* offset of its name in tdm_filetable_t.names */
  uint16_t fp_len;
  uint8_t state;          /* tdm_file_state_t */
  uint8_t seen;           /* met by the current scan */
} tdm_cold_t;

/* A directory of cold files: its path, shared by its files. */
typedef struct tdm_dir {
  tdm_hnode_t node;       /* in tdm_filetable_t.dir_map, by path */
  uint32_t refs;          /* cold files in it; 0: free, for reuse */
  uint32_t index;         /* in tdm_filetable_t.dirs */
  uint32_t len;
  char *path;             /* owned; no trailing '/' ("" for "/") */
} tdm_dir_t;

/* How a cold file's record is read back: calls cb with the record of file
   `id` (the store's tdm_store_get_file()). */
typedef int (*tdm_file_load_fn)(void *arg, uint64_t id,
                                int (*cb)(void *cb_arg,
                                          const tdm_file_rec_t *rec),
                                void *cb_arg);

typedef struct tdm_filetable {
  tdm_file_t **all;       /* every hot file, in no particular order */
  size_t n, cap;          /* hot files */
  tdm_hmap_t ids;         /* by (dev, ino) */
  tdm_hmap_t paths;       /* by path */
  /* cold files */
  tdm_cold_t *cold;       /* in no particular order */
  size_t n_cold, cap_cold;
  uint32_t *cold_ids;     /* open addressing, linear probing: indices */
  uint32_t *cold_paths;   /* into `cold`, UINT32_MAX empty; by (dev, ino)
                             and by (dir, name), this one made at its
                             first use (NULL until then) */
  size_t cold_mask;       /* slots - 1 (a power of two), 0: none yet */
  uint64_t *devs;         /* the devices cold files are on */
  uint32_t n_devs;
  tdm_dir_t **dirs;
  uint32_t n_dirs, cap_dirs;
  tdm_hmap_t dir_map;
  uint32_t last_dir;      /* the directory last found: tried first */
  char *names;            /* NUL-terminated names, end to end */
  size_t names_len, names_cap, names_dead;
  tdm_file_load_fn load;  /* NULL: no file is made cold */
  void *load_arg;
  int err;                /* the last thaw that failed (0: none) */
} tdm_filetable_t;

void tdm__filetable_init(tdm_filetable_t *ft);
/* Frees every file. */
void tdm__filetable_free(tdm_filetable_t *ft);
/* The file with this identity, made hot if it was cold, or NULL (none, or
   it could not be made hot: ft->err says why, and it stays cold, so
   tdm__filetable_add() of the same identity fails too). */
tdm_file_t *tdm__filetable_get(tdm_filetable_t *ft, uint64_t dev,
                               uint64_t ino);
/*
 * A new hot file for `rec` (copied, with its strings), inserted. A file
 * with the same (dev, ino) must not be in the table: NULL (and ft->err
 * -EEXIST) when a cold one has it. NULL on out of memory.
 */
tdm_file_t *tdm__filetable_add(tdm_filetable_t *ft, const tdm_file_rec_t *rec);
/* The file last seen at `path`, made hot if it was cold, or NULL. */
tdm_file_t *tdm__filetable_by_path(tdm_filetable_t *ft, const char *path);
/* Every file, hot and cold. */
size_t tdm__filetable_count(const tdm_filetable_t *ft);

/* Where cold files' records are read back from. Until it is set, no file
   is made cold. */
void tdm__filetable_set_load(tdm_filetable_t *ft, tdm_file_load_fn load,
                             void *arg);
/* The cold file with this identity (not made hot), or NULL. Valid until
   the table next changes. */
tdm_cold_t *tdm__filetable_cold(const tdm_filetable_t *ft, uint64_t dev,
                                uint64_t ino);
/* Is cold file `c` at `path`? */
int tdm__cold_at(const tdm_filetable_t *ft, const tdm_cold_t *c,
                 const char *path);
/* c's path into buf (cap bytes, PATH_MAX is enough). -ENAMETOOLONG. */
int tdm__cold_path(const tdm_filetable_t *ft, const tdm_cold_t *c, char *buf,
                   size_t cap);
/* Make cold file `c` hot. NULL (ft->err set, still cold) on failure. */
tdm_file_t *tdm__filetable_thaw(tdm_filetable_t *ft, tdm_cold_t *c);
/*
 * Keep the file of record `rec` cold from the start (a record loaded from
 * the store, whose engine fields are all at rest). 0, -ENOMEM, -EEXIST (a
 * hot or cold file has its (dev, ino)), -EOVERFLOW (names over 4 GiB),
 * -EINVAL (a path with no '/', an over-long fingerprint): the caller keeps
 * it hot, or settles the two.
 */
int tdm__filetable_add_cold(tdm_filetable_t *ft, const tdm_file_rec_t *rec);
/* Make hot file `f` cold (freed). The caller has checked it is at rest
   and the store holds its record. 0, or -ENOMEM/-EOVERFLOW: still hot. */
int tdm__filetable_freeze(tdm_filetable_t *ft, tdm_file_t *f);
/* The ghosts (state GONE, never cold) last seen at `path`: the first when
   `prev` is NULL, else the next after `prev`; NULL when there are no more. */
tdm_file_t *tdm__filetable_ghost_at(const tdm_filetable_t *ft, const char *path,
                                    const tdm_file_t *prev);
/* Unlink `f` from the table and free it (closing f->fd). */
void tdm__filetable_remove(tdm_filetable_t *ft, tdm_file_t *f);
/* Replace f's path (copied). -ENOMEM leaves it unchanged. */
int tdm__file_set_path(tdm_filetable_t *ft, tdm_file_t *f, const char *path);
/* Replace f's error message (copied; NULL clears). */
void tdm__file_set_error(tdm_file_t *f, const char *msg);

#endif /* TDM_FILETABLE_H */
