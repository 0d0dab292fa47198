/*
 * engine.h: the engine's internals, shared by the files of watcher/.
 *
 * Data flow of one pass (tdm_run_once):
 *
 *   scan.c       walks each source, filters names (glob.c), lstat()s files
 *   engine.c     looks each file up by (dev, ino) in the file table
 *                (filetable.c); an unchanged size+mtime is not opened at all
 *   identity.c   opens the changed ones and decides, through the descriptor,
 *                whether they are the same file (fingerprint of the head,
 *                marker of the bytes before the bookmark), truncated, or new
 *   reader.c     preads from the bookmark to the current end in large reads;
 *                framing.c cuts each read at a record boundary
 *   deliver.c    hands each chunk to every processor (retry / fail)
 *   checkpoint.c commits every processor, then writes every moved bookmark
 *                and every restore blob in ONE store transaction
 *
 * Everything here runs on the thread that called tdm_run_once().
 */
#ifndef TDM_ENGINE_H
#define TDM_ENGINE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include <regex.h>

#include "../processors/registry.h"
#include "../state/store.h"
#include "decompress.h"
#include "inotify.h"
#include "log.h"
#include "tidemark.h"

/* Bytes of a file's head its fingerprint covers at most. */
#define TDM_FP_CAP 4096u
/* Bytes before the bookmark its marker covers at most. */
#define TDM_MARKER_LEN 64u
/* Smallest read buffer (the buffer is max(this, --max-record)). */
#define TDM_READ_MIN (1u << 20)
/* Checkpoint at the latest after this many bytes, whatever the clock says. */
#define TDM_CHECKPOINT_BYTES (256ull << 20)

/* ---- file table (filetable.c) ------------------------------------------ */

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
  unsigned inflight : 1;  /* whole: a processor's file() is pending */
  unsigned after : 1;     /* whole: done/failed, --on-done/--on-failed
                             to act once that is durable */
  uint64_t pending_mask;  /* whole: processors whose outcome is awaited */
  int fd;                 /* run: held open (rotation, deletion), or -1 */
  uint64_t active_ms;     /* run: last read, for closing idle descriptors */
  uint64_t grown_ms;      /* run, orphans: last time it was seen growing */
  size_t slot;            /* index in the table's vector */
  struct tdm_file *next;  /* (dev, ino) chain */
  struct tdm_file *pnext; /* path chain */
} tdm_file_t;

typedef struct tdm_filetable {
  tdm_file_t **all;       /* every file, in no particular order */
  size_t n, cap;
  tdm_file_t **buckets;   /* chained by (dev, ino) */
  tdm_file_t **pbuckets;  /* chained by path */
  size_t n_buckets;       /* power of two, for both */
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
/* Unlink `f` from the table and free it (closing f->fd). */
void tdm__filetable_remove(tdm_filetable_t *ft, tdm_file_t *f);
/* Replace f's path (copied). -ENOMEM leaves it unchanged. */
int tdm__file_set_path(tdm_filetable_t *ft, tdm_file_t *f, const char *path);
/* Replace f's error message (copied; NULL clears). */
void tdm__file_set_error(tdm_file_t *f, const char *msg);

/* ---- filters (glob.c) --------------------------------------------------- */

typedef struct tdm_filter {
  char **include;
  size_t n_include;
  char **exclude;
  size_t n_exclude;
  int hidden_dirs;        /* some include glob names a hidden component */
  const char *skip_dir;   /* absolute directory never entered (the state
                             directory, when it lies inside a source) */
} tdm_filter_t;

/* Copy the globs. -ENOMEM. */
int tdm__filter_init(tdm_filter_t *f, const char *const *inc, size_t n_inc,
                     const char *const *exc, size_t n_exc);
void tdm__filter_free(tdm_filter_t *f);
/* Does the file `rel` (path under its root; `name` its last component)
   pass? Globs with a '/' match `rel`, others `name`; a leading '.' is only
   matched by a glob that spells it. */
int tdm__filter_file(const tdm_filter_t *f, const char *rel, const char *name);
/* Should the scan descend into directory `name`? */
int tdm__filter_dir(const tdm_filter_t *f, const char *name);

/* ---- scan (scan.c) ------------------------------------------------------ */

/*
 * Called for each regular file that passes the filter. `path` is absolute
 * (root + rel), `rel` the part under the root; both valid only during the
 * call. `st` is its lstat. A negative return stops the scan and is returned.
 */
typedef int (*tdm_scan_cb)(void *arg, const char *path, const char *rel,
                           const struct stat *st);

typedef struct tdm_scan_stats {
  uint64_t special;       /* FIFOs, sockets, devices skipped */
  uint64_t errors;        /* directories that could not be read */
} tdm_scan_stats_t;

typedef struct tdm_scan {
  const tdm_filter_t *filter;
  int recursive;
  const tdm__log_t *log;
  tdm_scan_cb on_file;
  /* Called with each directory's absolute path before it is read (NULL:
     none); live watching adds its watch here so that nothing created
     between the watch and the listing is missed. Negative: stop. */
  int (*on_dir)(void *arg, const char *path);
  void *arg;
  tdm_scan_stats_t stats; /* added to */
} tdm_scan_t;

/*
 * Walk the directory `rel` under `root` ("" for the root itself; `root`
 * absolute). Unreadable subdirectories are logged, counted and skipped.
 * Returns 0, a callback's negative return, or -errno when the starting
 * directory itself cannot be opened (logged, naming it; -ENOENT silently
 * for a subdirectory that vanished).
 */
int tdm__scan(tdm_scan_t *s, const char *root, const char *rel);

/* ---- identity (identity.c) ---------------------------------------------- */

/* XXH3-64 of `len` bytes at `off` of `fd`. -errno on a read error, -ENODATA
   when the file holds fewer bytes. */
int tdm__hash_range(int fd, uint64_t off, uint32_t len, uint64_t *out);
/* The fingerprint of fd's head: *len = min(size, TDM_FP_CAP). */
int tdm__fingerprint(int fd, uint64_t size, uint64_t *hash, uint32_t *len);
/* The marker for a bookmark at `pos`. */
int tdm__marker(int fd, uint64_t pos, uint64_t *hash, uint32_t *len);

typedef enum tdm_verdict {
  TDM_SAME = 0,           /* carry on from the bookmark */
  TDM_TRUNCATED = 1,      /* shorter than the bookmark: restart at 0 */
  TDM_REWRITTEN = 2       /* different content at the same inode: new file */
} tdm_verdict_t;

/* Compare the open file (size `size`) with what `f` remembers. */
int tdm__identify(int fd, uint64_t size, const tdm_file_t *f,
                  tdm_verdict_t *out);

/* ---- framing (framing.c) ------------------------------------------------ */

/*
 * How many of the `n` bytes at `buf` (read from a record boundary, or from
 * inside an over-long record) to deliver now. `cap` is the read buffer's
 * size. lines: whole lines, each at most `max_record` bytes counting its
 * '\n'; a longer one goes out in pieces of `max_record` bytes (*piece = 1);
 * a partial last line waits (0). bytes: all of it.
 */
size_t tdm__frame(const char *buf, size_t n, size_t cap, tdm_records_t records,
                  size_t max_record, int *piece);

/* ---- processors (deliver.c) --------------------------------------------- */

typedef struct tdm_proc {
  const tdm_processor_t *desc;
  void *state;
  char *key;              /* the spec as given: the key of its blob */
  tdm_proc_spec_t spec;   /* parsed, for reopening */
  tdm_chunk_cb cb;        /* callback processors: desc is NULL */
  void *cb_arg;
  uint8_t blob[TDM_RESTORE_MAX]; /* the last durable restore blob */
  size_t blob_len;
  int open;               /* state is live */
} tdm_proc_t;

/* ---- whole mode (whole.c) ---------------------------------------------- */

/* Content hashes not in the store yet: of files done since the last
   checkpoint, and of files in flight (so a copy that lands meanwhile is a
   duplicate). Open addressing on the hash's first 8 bytes. */
typedef struct tdm_hashset_entry {
  uint8_t hash[16];
  uint64_t id;            /* 0: empty slot; UINT64_MAX: removed */
  int done;               /* to be written at the next checkpoint */
} tdm_hashset_entry_t;

typedef struct tdm_hashset {
  tdm_hashset_entry_t *slot;
  size_t cap, used;       /* cap: power of two; used counts removed too */
} tdm_hashset_t;

#define TDM_HINT_COMPLETE 0x1u /* renamed into the tree: complete if it
                                  holds still while hashed */
#define TDM_HINT_CLOSED 0x2u   /* closed by a writer: complete if nobody has
                                  it open for writing any more */

/* Whole mode's tdm__look (see reconcile.c). */
int tdm__whole_look(tdm_t *t, const char *path, const struct stat *lst,
                    unsigned hints);
/* Collect outcomes of pending file() calls; with `wait_ms`, block that long
   for the first. Returns 0 or what ends the pass. */
int tdm__whole_poll(tdm_t *t, int wait_ms);
/* A file is settling (whole), or a compressed one is still being written
   (tail): tdm__whole_recheck looks at it again. */
void tdm__set_waiting(tdm_t *t, tdm_file_t *f, int on);
/* Look again at files that were settling. */
int tdm__whole_recheck(tdm_t *t);
/* The milliseconds until the first settling file may be complete (0: none
   settling). */
uint64_t tdm__whole_next_settle_ms(const tdm_t *t);
/* Checkpoint helpers: the done hashes to write, and forgetting them after
   a commit (ok) or a rollback (!ok). */
size_t tdm__whole_batch(tdm_t *t, tdm_store_hash_t **out);
void tdm__whole_committed(tdm_t *t, int ok);
void tdm__whole_free(tdm_t *t);
/* A file leaves the table: drop what whole mode remembers of it. */
void tdm__whole_forget(tdm_t *t, tdm_file_t *f);

/* ---- the engine --------------------------------------------------------- */

/* Live watching (daemon.c): what the loop thread shares with the worker. */
typedef struct tdm_live {
  uv_loop_t *loop;
  uv_async_t wake;        /* tdm_stop / tdm_rescan from anywhere */
  uv_timer_t tick;        /* every --checkpoint-ms: checkpoint, drain */
  uv_timer_t sweep;       /* reconcile: safety net, or --poll-ms */
  uv_poll_t watch;        /* readable inotify descriptor */
  uv_work_t work;         /* the worker: one at a time */
  tdm_inotify_t in;       /* watch table: the worker's */
  int inotify;            /* watching with inotify (not polling) */
  /* Raw inotify events, appended by the loop thread, taken by the worker. */
  pthread_mutex_t lock;
  char *queue;
  size_t queue_len, queue_cap;
  int queue_overflow;     /* dropped events: the worker must rescan */
  /* Requests, set on the loop thread or by a signal handler while the
     worker may run: atomics (lock-free, so async-signal-safe). */
  atomic_int want_rescan;
  atomic_int want_checkpoint;
  atomic_int want_drain;
  atomic_int closing;     /* handles are being closed: no more wake-ups */
  /* Loop-thread state. */
  int busy;               /* a work item is queued or running */
  int stopping;
  int final_done;         /* the worker made its final checkpoint */
  int handles;            /* open handles, to know when all are closed */
  int status;
  int watch_failed;       /* a directory could not be watched: poll it */
  int limit_warned;
  tdm_stopped_cb stopped_cb;
  void *stopped_arg;
} tdm_live_t;

struct tdm_s {
  tdm_options_t opts;     /* strings below are owned copies */
  tdm__log_t log;
  tdm_store_t *store;
  tdm_registry_t *registry;
  tdm_filter_t filter;
  char *state_real;       /* the state directory, resolved */
  char **roots;           /* absolute, resolved source directories */
  size_t n_roots;
  uint8_t *root_gone;     /* root_gone[r]: source r was missing when last
                             looked at (so it is said once) */
  tdm_proc_t *procs;
  size_t n_procs;
  tdm_filetable_t files;
  uint64_t next_id;
  uint64_t *dead;         /* ids to delete at the next checkpoint */
  size_t n_dead, cap_dead;
  char *buf;              /* the read buffer */
  size_t buf_cap;
  int need_checkpoint;    /* something not in the store yet */
  uint64_t bytes_since_checkpoint;
  uint64_t last_checkpoint_ms;
  int checkpoint_rc;      /* the last checkpoint's result: a failure ends
                             the pass (everything was rolled back) */
  atomic_int stop;        /* tdm_stop: from a signal handler or any thread */
  tdm_stats_t stats;
  int from_end;           /* --from-end, until the first pass is done */
  int keep_open;          /* hold descriptors (live watching) */
  uint64_t read_budget;   /* bytes of one file per look (0: no limit) */
  size_t n_open, max_open;/* held descriptors, and their bound */
  size_t n_ready;         /* files with f->ready */
  size_t n_orphans;       /* files with f->orphan */
  size_t scan_root;       /* the source being scanned */
  tdm_live_t *live;       /* NULL unless started */
  tdm_hashset_t hashes;   /* whole: hashes not in the store yet */
  size_t n_waiting;       /* whole: files with f->waiting */
  size_t n_inflight;      /* whole: files with f->inflight */
  /* Records (records.c): multiline, compressed files, after done. */
  regex_t ml_re;          /* --multiline-start, when ml_on */
  int ml_on;
  int after_delete;       /* --on-done delete */
  char *done_dir;         /* --on-done move:DIR, resolved; NULL: none */
  char *failed_dir;       /* --on-failed move:DIR, resolved; NULL: none */
};

/* ---- records (records.c) ------------------------------------------------ */

/* Check and take the 0.2 record options (copies the strings, compiles the
   regex, checks the directories). TDM_EUSAGE naming the option. */
int tdm__records_open(tdm_t *t, const tdm_options_t *o);
void tdm__records_free(tdm_t *t);
/* A source `root` (resolved) must not hold the --on-done/--on-failed
   directories. TDM_EUSAGE naming the option. */
int tdm__records_check_source(tdm_t *t, const char *root);

/* ---- compressed files (zread.c) ----------------------------------------- */

/* Is the file at `fd` to be decompressed (per --decompress)? *kind is set. */
int tdm__zkind(tdm_t *t, int fd, tdm_comp_t *kind);

/*
 * Tail mode's look at a compressed file `f` (NULL: not tracked yet), open at
 * `fd` with fstat `st`: once complete, it is fingerprinted on its
 * uncompressed head, matched against the files tracked before (a rotated
 * log that logrotate compressed continues from its bookmark) and read to its
 * end. Returns as tdm__read.
 */
int tdm__zlook(tdm_t *t, tdm_file_t *f, const char *path, int fd,
               const struct stat *st, tdm_comp_t kind, unsigned hints);

/* A tail file that is gone: kept as a ghost (state GONE) when a compressed
   copy of it may still turn up, else forgotten. */
int tdm__retire(tdm_t *t, tdm_file_t *f);
/* Forget ghosts older than their time to live. */
int tdm__ghosts_expire(tdm_t *t);

/* Stream the whole uncompressed content of `fd` through `cb` in pieces of at
   most t->buf_cap bytes (t->buf). Returns 0, cb's non-zero return, or a
   decoder error (logged, naming `path` and the offset, counted). */
int tdm__zstream(tdm_t *t, const char *path, int fd, tdm_comp_t kind,
                 int (*cb)(void *arg, const char *buf, size_t n), void *arg);

/* ---- after done (after.c) ----------------------------------------------- */

/* Whole mode: act on the files whose outcome the last checkpoint made
   durable (done: --on-done; failed: --on-failed); also files found at
   start-up with such an outcome still in the tree. Never fails the pass:
   errors are logged and counted. */
void tdm__after_durable(tdm_t *t);

/* Check that a pass can run and allocate the read buffer. */
int tdm__prepare(tdm_t *t);

/* daemon.c: wake a started tdm_t's loop after tdm_stop (async-signal-safe),
   and free what tdm_start allocated (after it stopped). */
void tdm__live_wake(tdm_t *t);
void tdm__live_free(tdm_t *t);

/* ---- reconcile.c -------------------------------------------------------- */

/*
 * Look at the regular file at `path` (its lstat `lst`): skip it if unchanged,
 * else open it (or use the descriptor held for it), check its identity and
 * read what is new. Returns 0 to go on (a file's own failure is logged and
 * counted), or a negative code that ends the pass: TDM_ESTOPPED, -ENOMEM, or
 * a failed checkpoint's code.
 */
int tdm__look(tdm_t *t, const char *path, const struct stat *lst,
              unsigned hints);

/* `f` was met at `path`: if that is a new name (a rename), take it. */
int tdm__file_seen_at(tdm_t *t, tdm_file_t *f, const char *path);

/* A stat's mtime in nanoseconds. */
static inline int64_t mtime_ns(const struct stat *st) {
  return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Read a file through its held descriptor (moved away, deleted, or with more
   to read than one look's budget); forget it once a deleted one is drained. */
int tdm__drain(tdm_t *t, tdm_file_t *f);

/* Delete `f`'s record at the next checkpoint and drop it from memory. */
int tdm__forget(tdm_t *t, tdm_file_t *f);
/* Delete record `id` at the next checkpoint. */
int tdm__bury(tdm_t *t, uint64_t id);

void tdm__set_ready(tdm_t *t, tdm_file_t *f, int on);
void tdm__set_orphan(tdm_t *t, tdm_file_t *f, int on);

/* Close idle descriptors while more than t->max_open are held. */
void tdm__trim_fds(tdm_t *t);

/*
 * Scan every source against the store and forget what is gone. `on_dir` as
 * in tdm_scan_t. Returns 0, TDM_EPARTIAL when a source could not be read, or
 * what ended the pass (see tdm__look).
 */
int tdm__reconcile_all(tdm_t *t, int (*on_dir)(void *arg, const char *path));

/* The same for the directory `path` (absolute) of source `root` and what
   lies under it; a directory that vanished meanwhile is not an error. */
int tdm__reconcile_dir(tdm_t *t, size_t root, const char *path,
                       int (*on_dir)(void *arg, const char *path));

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t tdm__now_ms(void);
/* Nanoseconds of CLOCK_REALTIME. */
int64_t tdm__wall_ns(void);

/* Open a processor instance with its stored blob. Logs and returns
   TDM_EPROC on failure. */
int tdm__proc_open(tdm_t *t, tdm_proc_t *p);
/* Close an instance (if open). */
void tdm__proc_close(tdm_proc_t *p);

/*
 * Hand a chunk to every processor. RETRY is retried with backoff until it is
 * accepted or tdm_stop() is called. Returns 0 when all accepted, TDM_EPROC
 * when one failed (logged, naming the processor and the file; the file is
 * marked failed), TDM_ESTOPPED.
 */
int tdm__deliver(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c);

/*
 * Read `f` through `fd` from f->pos up to `end` (the size it had when it was
 * looked at: a file that keeps growing, such as a processor's own output in
 * the tree, must not be chased forever), delivering chunks.
 * Returns 0 (end reached, or only a partial line is left), TDM_EPROC,
 * TDM_ESTOPPED, -errno on a read error (logged, naming the file).
 */
int tdm__read(tdm_t *t, tdm_file_t *f, int fd, uint64_t end);

/*
 * Make everything delivered durable: commit every processor, then one store
 * transaction with every dirty file, dead ids and blobs. On failure (logged)
 * the processors are rolled back to their last durable blob and every file
 * to its durable bookmark, so nothing is recorded that was not accepted.
 */
int tdm__checkpoint(tdm_t *t);

/* Checkpoint if --checkpoint-ms or TDM_CHECKPOINT_BYTES says it is time. */
int tdm__checkpoint_maybe(tdm_t *t);

#endif /* TDM_ENGINE_H */
