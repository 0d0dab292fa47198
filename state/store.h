/*
 * store.h: the durable state of one state directory, an LMDB environment.
 *
 * Layout of a state directory DIR:
 *   DIR/data.mdb, DIR/lock.mdb   the LMDB environment
 *   DIR/writer.lock              our own writer lock (flock), holds the pid
 *   DIR/checked                  when the corruption check may be skipped
 *                                (see check.h)
 *
 * Named databases (opened once, at open time):
 *   "meta"   "schema" -> u32 LE TDM_STORE_SCHEMA; "next_id" -> u64 LE;
 *            "checkpoint_ns" -> i64 LE (wall time of the last commit);
 *            "lost_files" -> u64 LE (files whose new bytes became
 *            unreachable, see tdm_store_batch_t.add_lost_files; absent: 0)
 *            "instance" -> 8 random bytes, made by the first writer that
 *            finds none (stores older than 0.2 get one, same schema)
 *   "files"  u64 BE file id -> encoded tdm_file_rec_t (see record.h)
 *   "procs"  processor spec string -> restore blob (<= TDM_RESTORE_MAX)
 *   "hashes" 16-byte canonical XXH3-128 -> u64 BE file id (whole mode)
 *   "dirs"   u64 BE directory id -> its path, NUL-terminated (schema 2): a
 *            record's path is its directory's id and the name in it
 *   "dirkeys" XXH3-128 of a directory's path -> u64 BE directory id
 *            (schema 2; meta "next_dir" -> u64 LE, the next unused id)
 *   "forgotten" (schema 3) the content hashes of whole-mode files whose
 *            records were dropped (--forget-after), packed into buckets of
 *            neighbouring hashes (state/forgotten.h); meta "forgotten" ->
 *            u64 LE, how many (absent: 0)
 * A store of schema 1 (tidemark 0.2) or 2 is brought to schema 3 by the
 * first writer that opens it; a reader reads any of them.
 *
 * The engine keeps every file record in memory; the store is the durable
 * copy, written by one all-or-nothing tdm_store_commit() per checkpoint.
 *
 * Threading: a tdm_store_t is used from one thread at a time.
 */
#ifndef TDM_STORE_H
#define TDM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/log.h"

#define TDM_STORE_SCHEMA 3u

/* tdm_file_rec_t.state */
typedef enum tdm_file_state {
  TDM_FILE_ACTIVE = 0,    /* tail: being followed */
  TDM_FILE_DONE = 1,      /* whole: processed */
  TDM_FILE_DUPLICATE = 2, /* whole: same content as file `dup_of` */
  TDM_FILE_FAILED = 3,    /* a processor failed it; `error` says why */
  TDM_FILE_PENDING = 4,   /* whole: seen, not complete yet */
  TDM_FILE_GONE = 5       /* tail: deleted or rotated away; kept a while
                             (dev 0, ino = id) so that its compressed copy
                             continues from its bookmark. With `dup_of`:
                             what file dup_of was before a truncation, so
                             that a copy made then (copytruncate) does */
} tdm_file_state_t;

/*
 * One tracked file. `path` is owned by whoever built the record; records
 * handed out by tdm_store_load_files() are valid only during the callback.
 */
typedef struct tdm_file_rec {
  uint64_t id;          /* > 0, never reused */
  uint64_t dev;
  uint64_t ino;
  uint64_t size;        /* size at the last look */
  int64_t mtime_ns;     /* mtime at the last look */
  int64_t ctime_ns;     /* ctime at the last look; 0: unknown (a record of
                           format 1): the file counts as changed once */
  uint64_t offset;      /* the bookmark: delivered and durable up to here */
  uint64_t fp_hash;     /* XXH3-64 of the first fp_len bytes */
  uint32_t fp_len;
  uint32_t marker_len;  /* bytes before `offset` that `marker` hashes */
  uint64_t marker;      /* XXH3-64 of [offset - marker_len, offset) */
  uint32_t state;       /* tdm_file_state_t */
  uint32_t truncations;  /* the file's generation (tdm_chunk_t.generation):
                            tail mode, times its offsets began again at 0;
                            whole mode, also each new content after the
                            first (a rewrite, a new file on a reused inode) */
  uint64_t pieces;      /* records cut into pieces (over --max-record) */
  int64_t first_seen_ns;
  int64_t updated_ns;   /* last time the bookmark moved */
  uint8_t content_hash[16]; /* whole: canonical XXH3-128, zero if none */
  uint64_t dup_of;      /* whole: id of the file this one duplicates;
                           tail, GONE: id of the file truncated */
  uint32_t attempts;    /* whole: processing attempts */
  int32_t exit_status;  /* whole/exec: last status */
  const char *path;     /* absolute path at the last look */
  const char *error;    /* last error message, or NULL */
} tdm_file_rec_t;

typedef struct tdm_store_s tdm_store_t;

/* tdm_store_open() flags */
#define TDM_STORE_RDONLY 0x1u /* reader: no writer lock, no creation */

/*
 * Open the state directory `dir`.
 *  - writer (flags 0): creates `dir` (mode 0700) if missing, takes the writer
 *    lock (flock on DIR/writer.lock, non-blocking), writes the schema record
 *    into a new store, clears stale LMDB reader slots.
 *  - reader (TDM_STORE_RDONLY): the directory must exist and hold a store.
 * A process may open one directory only once at a time (LMDB's rule); a
 * second open of the same directory in the same process fails with
 * TDM_ELOCKED.
 * Errors (each logged naming `dir`): TDM_ELOCKED (another writer: the message
 * names its pid), TDM_ESTATE (not an LMDB store, corrupt, schema missing or
 * newer than TDM_STORE_SCHEMA), -ENOENT (reader, no store), -EACCES, ...
 * `log` must outlive the store.
 */
int tdm_store_open(const char *dir, unsigned flags, const tdm__log_t *log,
                   tdm_store_t **out);

/* Accepts NULL. Releases the lock. */
void tdm_store_close(tdm_store_t *s);

/* The directory the store was opened with. Valid until close. */
const char *tdm_store_dir(const tdm_store_t *s);

/*
 * Call `cb` for every file record, in id order: the writer inside one read
 * transaction, a reader (TDM_STORE_RDONLY) in one per 4,096 records, so
 * that a long walk (`status` over a million files) never keeps the writer
 * from reusing pages. The record and its strings are valid only during the
 * call. A non-zero
 * return from `cb` stops the walk and is returned. The map's pages the walk
 * has passed are let go as it goes (the page cache keeps them), so a walk
 * over millions of records does not hold them all resident. TDM_ESTATE on a record
 * that does not decode (logged with its id).
 */
int tdm_store_load_files(tdm_store_t *s,
                         int (*cb)(void *arg, const tdm_file_rec_t *rec),
                         void *arg);

/*
 * Call `cb` with the record of file `id`, valid only during the call; its
 * result is returned. -ENOENT when there is none, TDM_ESTATE when it does not
 * decode (logged).
 */
int tdm_store_get_file(tdm_store_t *s, uint64_t id,
                       int (*cb)(void *arg, const tdm_file_rec_t *rec),
                       void *arg);

/*
 * Call `cb` for every processor restore blob (key: the processor's spec, not
 * NUL-terminated), in key order, inside one read transaction; everything is
 * valid only during the call. A non-zero return from `cb` stops the walk
 * and is returned.
 */
int tdm_store_load_blobs(tdm_store_t *s,
                         int (*cb)(void *arg, const char *key, size_t key_len,
                                   const void *blob, size_t len),
                         void *arg);

/*
 * Copy the restore blob stored under `key` into `buf` (`cap` bytes).
 * *len = its length; 0 and *len = 0 when there is none; -ENOBUFS (nothing
 * copied, *len = its length) when it is longer than `cap`. A key must be 1 to
 * 511 bytes (LMDB's key limit); a longer one is -EINVAL here and in commit.
 */
int tdm_store_get_blob(tdm_store_t *s, const char *key, void *buf, size_t cap,
                       size_t *len);

/*
 * Whole mode: the id of the file whose content hashed to `hash`.
 * 0 and *file_id set when found, -ENOENT when not.
 */
int tdm_store_find_hash(tdm_store_t *s, const uint8_t hash[16],
                        uint64_t *file_id);

/*
 * Whole mode: is `hash` among the content hashes of files forgotten
 * (tdm_store_batch_t.forget)? 1 when so, 0 when not, or a negative code
 * (logged).
 */
int tdm_store_hash_forgotten(tdm_store_t *s, const uint8_t hash[16]);

/* How many content hashes of forgotten files the store keeps. */
uint64_t tdm_store_forgotten(const tdm_store_t *s);

/* The next unused file id (ids are handed out by the engine and persisted
   through tdm_store_batch_t.next_id). */
uint64_t tdm_store_next_id(const tdm_store_t *s);

/* The store's instance id: 16 lower-case hex digits, made once per state
   directory; "" for a reader of a store no 0.2 writer has opened yet.
   Valid until close. */
const char *tdm_store_instance(const tdm_store_t *s);

/* Wall time (ns since the epoch) of the last commit, 0 if none. */
int64_t tdm_store_checkpoint_ns(const tdm_store_t *s);

/* How many files had new bytes that could not be read any more (renamed
   away or deleted while no descriptor was held), ever: each was warned
   about by name when it happened. */
uint64_t tdm_store_lost_files(const tdm_store_t *s);

/*
 * Readers (TDM_STORE_RDONLY) only: read next_id, the checkpoint time, the
 * lost files and the instance again, as the last commit left them (a
 * reader's copies are otherwise those of its open). *txnid = the id of that
 * commit: equal ids mean nothing was committed in between, so a reader that
 * polls need not walk the files again. 0, or -EINVAL (a writer), TDM_ESTATE,
 * TDM_ESTORE (logged, naming the directory).
 */
int tdm_store_refresh(tdm_store_t *s, uint64_t *txnid);

typedef struct tdm_store_blob {
  const char *key;
  const void *data;
  size_t len;
} tdm_store_blob_t;

typedef struct tdm_store_hash {
  uint8_t hash[16];
  uint64_t file_id;
} tdm_store_hash_t;

/* One checkpoint: all of it is applied, or none of it. Deletes are applied
   before puts, so an id or hash both deleted and put ends up put. */
typedef struct tdm_store_batch {
  const tdm_file_rec_t *const *put_files; /* insert or replace by id */
  size_t n_put_files;
  const uint64_t *del_files;              /* ids to delete (absent: fine) */
  size_t n_del_files;
  const tdm_store_blob_t *blobs;          /* put processor restore blobs */
  size_t n_blobs;
  const tdm_store_hash_t *hashes;         /* put content hashes */
  size_t n_hashes;
  const uint8_t (*del_hashes)[16];        /* hashes to forget */
  size_t n_del_hashes;
  uint64_t next_id;                       /* persist if > current */
  uint64_t add_lost_files;                /* add to the lost_files count */
  /* Whole mode's forgetting, applied after everything above: the record of
     each file_id is deleted, and its "hashes" entry when that names the
     same file; the hash (unless all zero) joins the forgotten set. */
  const tdm_store_hash_t *forget;
  size_t n_forget;
} tdm_store_batch_t;

/*
 * Apply `b` in ONE write transaction and make it durable (fsync). Grows the
 * map and retries when it is full (MDB_MAP_FULL). Writers only.
 * On error nothing of `b` is applied; the message (logged) names the
 * directory. Errors: TDM_ESTORE, -ENOSPC (disk full), -EIO, ...
 */
int tdm_store_commit(tdm_store_t *s, const tdm_store_batch_t *b);

/*
 * Let go of the map's pages in this process (they stay in the page cache and
 * come back on the next access): a commit that wrote records over the whole
 * tree (every new file of a pass, made durable before it is read) would
 * otherwise keep each page it passed resident until the process ends.
 */
void tdm_store_shed_map(tdm_store_t *s);

/* Forget every file record and content hash, forgotten ones too (`reset`
   with no paths). Blobs
   are kept: they describe processors' outputs, not the inputs. */
int tdm_store_clear_files(tdm_store_t *s);

/* For tests: the map size a new store starts with (default 1 GiB; the file
   is sparse), e.g. 64 KiB to exercise growth. Affects later opens only. */
void tdm__store_set_initial_map_size(size_t bytes);

#endif /* TDM_STORE_H */
