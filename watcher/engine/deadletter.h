/*
 * deadletter.h: --dead-letter FILE, where records no processor will take are
 * set aside, one JSON line each, exactly once across kill -9.
 *
 * FILE is rolled back like the `file` processor's output: its length is
 * written with every checkpoint (a blob under "@dead-letter:" + its absolute
 * path, or "@dead-letter:#" + the path's XXH3-64 in hex when that is long,
 * in the same store transaction as the bookmarks), and on open and on
 * every rollback FILE is cut back to that length, so a dead letter is in FILE
 * exactly when the bookmark past its record is in the store.
 */
#ifndef TDM_DEADLETTER_H
#define TDM_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/filetable.h"
#include "tidemark.h"

/* The prefix of a dead-letter file's blob key in the store. */
#define TDM_DEADLETTER_KEY "@dead-letter:"

/* Bytes of the blob: committed length, count, device, inode (u64 LE each). */
#define TDM_DEADLETTER_BLOB_LEN 32

typedef struct tdm_deadletter {
  int fd;                 /* -1: no --dead-letter */
  char *path;             /* absolute, for messages and outputs */
  char *key;              /* TDM_DEADLETTER_KEY + path: its blob */
  uint64_t dev, ino;
  uint64_t written;       /* FILE's length as we wrote it */
  uint64_t committed;     /* the length the last checkpoint recorded */
  uint64_t count;         /* dead letters ever written (this FILE) */
  uint64_t durable_count; /* ... as the last checkpoint recorded */
  int need_sync;          /* written since the last fdatasync */
  int sync_dir;           /* created: fsync its directory once */
} tdm_deadletter_t;

/*
 * Open (create) `path` for t->dl and cut it back to the length the store
 * recorded for it. A FILE shorter than that, or another inode at its path,
 * was taken away by someone (handled, rotated): writing starts at its end.
 * Returns 0, or TDM_EUSAGE when it cannot be opened for writing (said,
 * naming the file and --dead-letter), TDM_ESTORE, -ENOMEM.
 */
int tdm__deadletter_open(tdm_t *t, const char *path);

/* Close it (accepts a closed one). Nothing is written or synced. */
void tdm__deadletter_close(tdm_deadletter_t *dl);

/*
 * Append one dead letter for the `len` bytes at `offset` of `f` that
 * processor `proc` refused with `error`: one JSON line, {"path", "offset",
 * "length", "processor", "error", "data", "time"}. Strings are JSON
 * strings of the bytes as they are when they are UTF-8; a byte that is not
 * part of valid UTF-8 is written as \udcXX (XX its value in hex: Python's
 * "surrogateescape", so json.loads(line)["data"].encode("utf-8",
 * "surrogateescape") gives the record's bytes back exactly). Returns 0 or
 * -errno (FILE is cut back to where it was; the caller says so).
 */
int tdm__deadletter_write(tdm_t *t, const tdm_file_t *f, uint64_t offset,
                          const void *data, size_t len, const char *proc,
                          const char *error);

/* Checkpoint, before the store transaction: make FILE durable and fill its
   blob (TDM_DEADLETTER_BLOB_LEN bytes). 0 or -errno (the checkpoint is
   then cancelled and rolled back). */
int tdm__deadletter_commit(tdm_t *t, uint8_t *blob);
/* The checkpoint is in the store: what was written is durable now. */
void tdm__deadletter_adopt(tdm_t *t);
/* Undo what was written since the last checkpoint (FILE cut back). */
void tdm__deadletter_rollback(tdm_t *t);

/*
 * For `status`: is the blob under `key` a dead-letter file's? If so, 1 and
 * *count = how many dead letters it recorded; else 0.
 */
int tdm__deadletter_blob_count(const char *key, size_t key_len,
                               const void *blob, size_t len, uint64_t *count);

#endif /* TDM_DEADLETTER_H */
