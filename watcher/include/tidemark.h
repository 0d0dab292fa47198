/*
 * tidemark.h: the embeddable library behind the `tidemark` command.
 *
 * tidemark hands processors the bytes of files they have not seen before and
 * remembers, per file, how far it got (a bookmark) in an LMDB state store.
 *
 *     tdm_options_t o;
 *     tdm_t *t;
 *     tdm_options_init(&o);
 *     o.state_dir = "/var/lib/myapp/tidemark";
 *     if (tdm_open(&o, &t) == 0 &&
 *         tdm_add_source(t, "/var/log/myapp") == 0 &&
 *         tdm_add_callback(t, "mine", on_chunk, ctx) == 0)
 *       rc = tdm_run_once(t);
 *     tdm_close(t);
 *
 * Conventions (libuv's): functions return 0 or a negative error code, either
 * -errno or a TDM_E* code below; tdm_strerror() names it. Whenever a function
 * fails it has already logged a message naming the file or option concerned
 * through the log callback (stderr by default). Strings passed in are copied
 * unless said otherwise.
 */
#ifndef TIDEMARK_H
#define TIDEMARK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* FILE: tdm_status_write */

#include "tidemark/processor.h"
#include "tidemark/version.h" /* generated from CMake's project(VERSION) */

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what libtidemark.so exports; everything else is built hidden. */
#if defined(__GNUC__) && defined(TDM_BUILDING_LIBRARY)
#define TDM_EXTERN __attribute__((visibility("default")))
#else
#define TDM_EXTERN
#endif

/* Error codes beside -errno, each XX(name, value, message): TDM_<name> =
   <value> (negative, below -4000, clear of every errno), and the static
   text tdm_strerror gives for it (tdm_err_name gives "<name>"). */
#define TDM_ERRNO_MAP(XX)                                                   \
  XX(EUSAGE, -4001, "bad usage or configuration")                          \
  XX(ESTATE, -4002, "state store is corrupt or of an unknown schema")      \
  XX(ELOCKED, -4003, "state directory is in use by another writer")        \
  XX(ESTORE, -4004, "state store error")                                   \
  XX(EPROC, -4005, "processor failed")                                     \
  XX(EABI, -4006, "plugin is not a compatible tidemark processor")         \
  XX(EPARTIAL, -4007, "some files could not be processed")                 \
  XX(ESTOPPED, -4008, "stopped before the work was done")

typedef enum tdm_errno {
#define TDM_XX_(name, val, msg) TDM_##name = (val),
  TDM_ERRNO_MAP(TDM_XX_)
#undef TDM_XX_
  TDM_ERRNO_MAX_ = -4000
} tdm_errno_t;

/* A static message for `err` (a TDM_E* code or a negative errno). Cannot
   fail: an unknown code gives "unknown error". */
TDM_EXTERN const char *tdm_strerror(int err);
/* A static name for `err`, e.g. "ELOCKED", "ENOENT". Cannot fail. */
TDM_EXTERN const char *tdm_err_name(int err);

/* The library's version, TDM_VERSION_STRING as it was built (a program may
   have been compiled against another header). Static; cannot fail. */
TDM_EXTERN const char *tdm_version(void);

/* Log levels. */
typedef enum tdm_log_level {
  TDM_LOG_ERROR = 0,
  TDM_LOG_WARN = 1,
  TDM_LOG_INFO = 2,  /* the default threshold: start/stop lines, warnings */
  TDM_LOG_DEBUG = 3
} tdm_log_level_t;

/*
 * A log sink. `msg` is one line without a trailing newline, valid only for the
 * call. Called from the thread that hit the event: the caller's in tdm_open,
 * tdm_add_source and the like, tdm_run_once and tdm_close; after tdm_start()
 * also the loop thread and libuv's pool threads (one at a time, never
 * concurrently for one tdm_t). `log_arg` must live until tdm_close() returns.
 */
typedef void (*tdm_log_cb)(void *arg, tdm_log_level_t level, const char *msg);

/*
 * The default sink (what a NULL log_cb logs through), as a tdm_log_cb, so a
 * program's own sink can hand lines on to it: one line on stderr,
 * "tidemark: LEVEL: msg"; or, when stderr is the journal stream systemd set
 * up (JOURNAL_STREAM names stderr's device and inode), "<N>msg" with N the
 * syslog priority (3 error, 4 warning, 6 info, 7 debug). One write(2); a
 * line over 4 KiB is cut. `arg` is not used. Cannot fail.
 */
TDM_EXTERN void tdm_log_stderr(void *arg, tdm_log_level_t level,
                               const char *msg);

/*
 * A line of the caller's own, complete ("tidemark: done: 3 files"), written
 * to stderr as the default sink writes: as it is, or under journald (see
 * tdm_log_stderr) after its "<N>" priority prefix. `line` has no trailing
 * newline. One write(2); cut at 4 KiB. Cannot fail.
 */
TDM_EXTERN void tdm_log_line(tdm_log_level_t level, const char *line);

/*
 * `s` spelled as the library's messages spell a name (a path, a value), in
 * `buf` (`cap` bytes, cut short to fit, always NUL-terminated): valid UTF-8
 * as it is; \n, \t, \\ for a backslash, and \xNN for any other control
 * byte and for every byte that is not part of valid UTF-8, so a name stays
 * on one line and cannot drive a terminal. Returns buf. Cannot fail.
 */
TDM_EXTERN const char *tdm_quote(const char *s, char *buf, size_t cap);

/* What a chunk holds (--records): whole lines, or bytes as they come. */
typedef enum tdm_records {
  TDM_RECORDS_LINES = 0,
  TDM_RECORDS_BYTES = 1
} tdm_records_t;

/* Compressed files (--decompress): read decompressed, or as they are. */
typedef enum tdm_decompress {
  TDM_DECOMPRESS_AUTO = 0,  /* gzip / zstd by their magic bytes */
  TDM_DECOMPRESS_NEVER = 1  /* every file is read as it is */
} tdm_decompress_t;

/*
 * Progress of tdm_run_once() (options.progress_cb). The totals are measured
 * by a stat-only scan before the pass: the files with something new and the
 * bytes between their bookmarks and their sizes then. `done` counts what the
 * pass has handed over since; it may pass the total when files grow
 * meanwhile.
 */
typedef struct tdm_progress {
  uint64_t files_total;
  uint64_t files_done;
  uint64_t bytes_total;
  uint64_t bytes_done;
  uint64_t elapsed_ms;       /* since the pass began */
  int final;                 /* the last call of the pass */
} tdm_progress_t;

/* Called on tdm_run_once()'s thread at most every progress_ms, and once with
   `final` set at the end. Must not call back into the tdm_t. */
typedef void (*tdm_progress_cb)(void *arg, const tdm_progress_t *p);

/*
 * Everything configurable. Initialise with tdm_options_init(), then set what
 * you need. tdm_open() copies what it keeps; the caller owns the strings,
 * which need live only during tdm_open().
 *
 * Fields are only ever appended. `size` is sizeof(tdm_options_t) as the
 * caller was compiled, set by tdm_options_init(): a program built against an
 * older header passes a smaller struct, and the fields it does not have take
 * their defaults.
 */
typedef struct tdm_options {
  uint32_t size;                   /* set by tdm_options_init() */
  const char *state_dir;           /* required */
  tdm_mode_t mode;                 /* TDM_MODE_TAIL */
  tdm_records_t records;           /* TDM_RECORDS_LINES */
  const char *const *include;      /* globs; none: every non-hidden file */
  size_t n_include;
  const char *const *exclude;
  size_t n_exclude;
  int recursive;                   /* 1 */
  int from_end;                    /* 0 */
  uint64_t max_record;             /* 1 MiB */
  uint32_t settle_ms;              /* 1000 */
  uint32_t checkpoint_ms;          /* 1000 */
  uint32_t poll_ms;                /* 0: inotify */
  const char *plugin_dir;          /* NULL: no plugins */
  tdm_log_level_t log_level;       /* TDM_LOG_INFO */
  tdm_log_cb log_cb;               /* NULL: stderr, "tidemark: level: msg" */
  void *log_arg;
  /* Appended in 0.2. */
  const char *metrics_listen;      /* NULL; "ADDR:PORT": a started tdm_t
                                      serves GET /metrics (Prometheus text
                                      0.0.4) on its loop */
  const char *metrics_file;        /* NULL; PATH: the same text, written
                                      atomically (temp + rename) at each
                                      checkpoint */
  tdm_progress_cb progress_cb;     /* NULL; tdm_run_once reports progress */
  void *progress_arg;
  uint32_t progress_ms;            /* 250: the least time between calls */
  int notify;                      /* 0; 1: a started tdm_t tells systemd
                                      (NOTIFY_SOCKET) READY=1 after the
                                      first pass, STATUS=, WATCHDOG=1 when
                                      WatchdogSec= is set, STOPPING=1 */
  /* tdm_run_once only (tdm_run and tdm_start retry for as
     long as it takes): how long a processor may keep answering
     TDM_PROC_RETRY for the same chunk, or file() for the same file, before
     the pass gives up, keeps the bookmark and returns TDM_EPROC. 0: never. */
  uint32_t retry_timeout_ms;       /* 60000 */
  /* 0.2, Records (appended) */
  tdm_decompress_t decompress;     /* TDM_DECOMPRESS_AUTO */
  const char *multiline_start;     /* POSIX ERE; NULL: a record is a line */
  uint32_t multiline_timeout_ms;   /* 1000 */
  const char *on_done;             /* whole: NULL, "delete" or "move:DIR" */
  const char *on_failed;           /* whole: NULL or "move:DIR" */
  /* 0.3, Failures (appended). A processor that fails a chunk
     (TDM_PROC_FAIL) or rejects it (TDM_PROC_REJECT) is rolled back first:
     every processor with a commit() is closed and reopened with its last
     durable restore blob, and every file goes back to its durable bookmark,
     as after a crash (exactly once for processors that roll back, at least
     once for the others, callbacks included). Delivery then narrows down
     from the chunk to the record that is refused: the records before it are
     delivered, and the record is offered alone, up to `max_tries` times
     (TDM_PROC_REJECT: once). A record refused that often is set aside: with
     `dead_letter`, written to that file as one JSON line (path, offset,
     length, processor, error, data, time; see README.md) and its file goes
     on after it, exactly once (the file is cut back to its checkpointed
     length on restart, as the `file` processor's output is); without it,
     its file stops before it, marked failed (tdm_run_once: TDM_EPARTIAL;
     tdm_run and tdm_start offer it again later, with a growing pause).
     Records are lines (--records lines), multiline records, or whole chunks
     (--records bytes). In whole mode and in compressed files a failure
     fails the file as in 0.2 (after the rollback). */
  const char *dead_letter;         /* NULL: none; PATH: created if missing;
                                      tdm_open fails with TDM_EUSAGE when it
                                      cannot be written */
  uint32_t max_tries;              /* 5; at least 1 */
  /* 0.3, A million files (appended). Whole mode: the record of a file that
     is done (or a duplicate) and gone from the tree (deleted, or moved
     away by on_done) for this long is dropped from the store; its content
     hash is kept, so the same content dropped again is still a duplicate.
     0: at the first checkpoint after it is gone; TDM_FORGET_NEVER: records
     are kept for ever. Failed and pending files are never forgotten. */
  uint64_t forget_after_ms;        /* 30 days */
} tdm_options_t;

#define TDM_FORGET_NEVER UINT64_MAX /* tdm_options_t.forget_after_ms */

/* The 0.2 layout: the smallest `size` tdm_open() accepts. */
#define TDM_OPTIONS_SIZE_V1 (offsetof(tdm_options_t, log_arg) + sizeof(void *))

/* Set every field to its default and `size` to sizeof(tdm_options_t). */
TDM_EXTERN void tdm_options_init(tdm_options_t *o);

/* Limits the options are checked against (tdm_open refuses others). */
#define TDM_MAX_RECORD_MIN 64u
#define TDM_MAX_RECORD_MAX (256u << 20)

typedef struct tdm_s tdm_t;

/*
 * Open the state directory (created if missing), take its writer lock and
 * load the registry of processors (built-ins and `plugin_dir`).
 * On success *out owns all of it until tdm_close(); on error *out is
 * untouched and nothing stays open. Errors: TDM_EUSAGE (a bad option,
 * logged naming it: a glob, --metrics, --on-done/--on-failed and its
 * directory, --multiline-start; or o->size smaller than
 * TDM_OPTIONS_SIZE_V1), TDM_ELOCKED (another writer), TDM_ESTATE (corrupt or
 * newer store), TDM_ESTORE (LMDB failed), -ENOMEM, -errno of the state
 * directory (-EACCES, -ENOTDIR, ...) or of a plugin_dir that cannot be read.
 * A plugin in plugin_dir that is refused (not a tidemark processor, another
 * ABI) is no error: it is skipped with a warning naming it.
 */
TDM_EXTERN int tdm_open(const tdm_options_t *o, tdm_t **out);

/*
 * Watch/scan `dir` (must exist and be a directory; a symlink to one is
 * followed; copied). May be called several times, before running; adding a
 * directory twice is a no-op. Errors: -ENOENT, -EACCES, ... (the directory
 * cannot be resolved), -ENOTDIR, TDM_EUSAGE (the --on-done or --on-failed
 * directory lies inside it: files moved there would be found again),
 * -ENOMEM. Each is logged, naming the directory.
 */
TDM_EXTERN int tdm_add_source(tdm_t *t, const char *dir);

/*
 * Add a processor by spec, `NAME` or `NAME:key=value,key=value` (a comma that
 * is not followed by `key=` belongs to the value; copied). The processor is
 * opened at once with the restore blob its spec last committed. Call before
 * running. Errors: TDM_EUSAGE (a malformed spec, an unknown name, the same
 * spec twice, more than 64 processors, or a processor that refused to open:
 * a bad or missing parameter, an output it cannot create — all logged,
 * naming the spec), TDM_EPROC (what the parameters name cannot be used now:
 * open() answered TDM_PROC_UNAVAILABLE, e.g. a server down, a missing
 * stream; logged), TDM_ESTORE (its blob could not be read), -ENOMEM.
 */
TDM_EXTERN int tdm_add_processor(tdm_t *t, const char *spec);

/*
 * A processor that is a plain C callback, called for each chunk; `chunk` and
 * what it points to are valid only during the call. Return TDM_PROC_OK,
 * TDM_PROC_RETRY, TDM_PROC_FAIL or TDM_PROC_REJECT (see
 * tdm_options_t.dead_letter). A callback has no restore point: when it or
 * another processor fails a chunk, it is not reopened, and the bytes since
 * the last checkpoint come to it again (at least once); a processor that
 * must not see them twice is a descriptor with commit()
 * (tdm_add_processor_desc). It runs on the thread doing the work:
 * the caller's in tdm_run_once(), one of libuv's pool threads after
 * tdm_start()/tdm_run() (never two calls at once). `name` (copied)
 * identifies it in logs and stats; `arg` is the caller's and must live until
 * tdm_close() returns. Errors: TDM_EUSAGE (no name or function, a name given
 * twice, more than 64 processors), -ENOMEM.
 */
typedef int (*tdm_chunk_cb)(void *arg, const tdm_chunk_t *chunk);
TDM_EXTERN int tdm_add_callback(tdm_t *t, const char *name, tdm_chunk_cb cb,
                                void *arg);

/*
 * A processor the host program supplies as a descriptor of its own (one
 * compiled into the program, or one written in another language: the Python
 * package's processors are these), beside those found by spec.
 *
 * `desc` is checked as a plugin's is (abi_version, size, process() present)
 * and is NOT copied: it and everything it points to must stay valid until
 * tdm_close(). `key` (copied) names the processor in logs and stats and keys
 * its restore blob in the store: the blob its commit() last returned under
 * this key is handed to open() (args->params is empty), here and after a
 * restart, so give the same key to the same sink every time. open() is
 * called at once, with *state preset to `ctx`: an open() that leaves *state
 * alone makes `ctx` the instance, and a descriptor without open() gets `ctx`
 * as its state. The methods run on the thread that runs the work: the caller
 * of tdm_run_once() and tdm_run_slice(), libuv's thread pool under
 * tdm_start() and tdm_run(); one at a time.
 *
 * Errors: TDM_EUSAGE (NULL or empty key, a key given twice, more than 64
 * processors), TDM_EABI (wrong abi_version, size below the version-1
 * layout, no process()), TDM_EPROC (open() failed; its message is logged and
 * close() is not called), TDM_ESTORE (reading the blob), -ENOMEM. On error
 * nothing was added.
 */
TDM_EXTERN int tdm_add_processor_desc(tdm_t *t, const tdm_processor_t *desc,
                           const char *key, void *ctx);

/*
 * Process every file under the sources up to its current end, checkpoint,
 * and return; runs on the calling thread. Returns 0 when everything was
 * handed over, TDM_EPARTIAL when some file or source could not be (each one
 * logged and counted; a file a processor's refusal stopped before a record,
 * without options.dead_letter, is one), TDM_EPROC when a processor failed
 * (the bookmark stays before the chunk it failed), TDM_ESTOPPED when tdm_stop() interrupted it (a
 * final checkpoint was made), TDM_ESTORE when a checkpoint failed (nothing
 * was recorded past the last good one), TDM_EUSAGE (no source or no
 * processor), -EBUSY when the tdm_t is started, -ENOMEM.
 */
TDM_EXTERN int tdm_run_once(tdm_t *t);

/*
 * Ask a running tdm_run_once(), tdm_run() or started tdm_t to make a final
 * checkpoint and stop. Async-signal-safe; may be called from any thread.
 * Cannot fail.
 */
TDM_EXTERN void tdm_stop(tdm_t *t);

/* ---- live watching ------------------------------------------------------ */

struct uv_loop_s; /* libuv's uv_loop_t */

/*
 * Called on the loop thread once a started tdm_t has stopped: every handle it
 * put on the loop is closed, the final checkpoint is done. `status` is 0 or
 * the error that stopped it. The tdm_t may be closed from inside the call.
 */
typedef void (*tdm_stopped_cb)(tdm_t *t, int status, void *arg);

/*
 * Start watching the sources on the host's `loop`: an inotify descriptor of
 * tidemark's own (one watch per directory; overflow, IN_CLOSE_WRITE and
 * renames seen) or, with options.poll_ms, a stat scan on a timer. The work
 * (scans, reads, processors, checkpoints) runs on libuv's thread pool, one
 * work item at a time; the loop thread only takes events. Returns at once;
 * the loop must then run. Stop with tdm_stop(): `cb` is called when done.
 * The host must not close `loop` before that; `arg` must live until then.
 * When tdm_start returns an error, `cb` is never called. Errors: -EBUSY
 * (already started), TDM_EUSAGE (no source or no processor), -ENOMEM, or a
 * libuv error as -errno. When the kernel refuses an inotify instance
 * (fs.inotify.max_user_instances) it says so and polls instead.
 */
TDM_EXTERN int tdm_start(tdm_t *t, struct uv_loop_s *loop, tdm_stopped_cb cb,
                         void *arg);

/*
 * tdm_start() on a loop of tidemark's own, run on the calling thread until
 * tdm_stop(). Returns 0 after a clean final checkpoint, else the error that
 * stopped it: tdm_start's errors, or what ended the worker (TDM_ESTORE: a
 * checkpoint failed; -ENOMEM).
 */
TDM_EXTERN int tdm_run(tdm_t *t);

/*
 * Live watching, as tdm_run(), driven from the calling thread in slices: the
 * work (scans, reads, processors, checkpoints) runs on this thread, not on
 * libuv's thread pool, between waits for events on a loop of tidemark's own.
 * For hosts whose processors are cheap only on their own thread (a Python
 * ctypes callback costs ~0.5 us from the thread that called in, ~8 us from
 * a thread C created) or that must get control back now and then (Python
 * runs its signal handlers only between such calls).
 *
 * The first call starts watching; every call returns after about `max_ms`
 * milliseconds (later while a pass is under way: it is not cut short) with 1:
 * still running, call again. Once tdm_stop() was called (from a signal
 * handler, another thread, or a processor) and the final checkpoint is made,
 * it returns 0, or the error that stopped it, and so does every later call.
 * Between calls nothing runs, so tdm_get_stats() may be called then.
 * Call it from one thread only. Errors at the start: as tdm_start(); -EBUSY
 * when the tdm_t was started by tdm_start() or tdm_run(). Before tdm_close(),
 * keep calling it until it returned something other than 1.
 */
TDM_EXTERN int tdm_run_slice(tdm_t *t, uint32_t max_ms);

/*
 * Ask a started tdm_t to compare everything on disk with the store (SIGHUP).
 * Async-signal-safe; may be called from any thread. Cannot fail; a tdm_t that
 * is not started ignores it.
 */
TDM_EXTERN void tdm_rescan(tdm_t *t);

/*
 * Counters since tdm_open(). Fields are only ever appended: `size` is
 * sizeof(tdm_stats_t) as the caller was compiled (tdm_stats_init sets it),
 * and tdm_get_stats fills only what it covers.
 */
typedef struct tdm_stats {
  uint32_t size;              /* set by tdm_stats_init() */
  uint64_t files_seen;        /* files examined by scans */
  uint64_t files_opened;      /* files opened (unchanged ones are not) */
  uint64_t files_new;         /* files tracked for the first time */
  uint64_t bytes;             /* bytes handed to the processors */
  uint64_t chunks;
  uint64_t pieces;            /* records over --max-record cut into pieces */
  uint64_t truncations;       /* files found truncated (restarted at 0) */
  uint64_t rewrites;          /* files found rewritten in place / inode reused */
  uint64_t skipped_special;   /* FIFOs, sockets, devices passed over */
  uint64_t file_errors;       /* files that could not be read */
  uint64_t proc_failures;     /* chunks a processor failed */
  uint64_t proc_retries;      /* times a processor asked to retry */
  uint64_t checkpoints;
  uint64_t checkpoint_errors;
  uint64_t rescans;           /* reconcile scans (overflow, SIGHUP, timer) */
  uint64_t overflows;         /* inotify queue overflows */
  uint64_t watches;           /* directories watched now */
  uint64_t polled_dirs;       /* directories polled: watch limit reached */
  uint64_t files_done;        /* whole: complete files handled */
  uint64_t duplicates;        /* whole: complete files skipped as duplicates */
  uint64_t files_failed;      /* whole: files a processor failed */
  uint64_t files_tracked;     /* files in the store now */
  uint64_t lost_files;        /* files renamed away or deleted with new bytes
                                 no descriptor reached (each warned about;
                                 `status` shows the total) */
  /* 0.2, Records (appended) */
  uint64_t compressed_files;  /* compressed files read (tail) or hashed */
  uint64_t compressed_errors; /* corrupt or truncated compressed data */
  uint64_t compressed_resumed;/* compressed files that continued the
                                 bookmark of a file tracked before */
  uint64_t files_moved;       /* whole: moved by --on-done/--on-failed */
  uint64_t files_deleted;     /* whole: deleted by --on-done delete */
  uint64_t after_errors;      /* whole: a move/delete that failed */
  /* 0.3, Failures (appended) */
  uint64_t dead_letters;      /* records set aside in options.dead_letter
                                 (net of what a rollback took back) */
  /* 0.3, A million files (appended) */
  uint64_t files_forgotten;   /* whole: gone files whose records were
                                 dropped, hashes kept (forget_after_ms) */
} tdm_stats_t;

/* Zero every counter and set `size` to sizeof(tdm_stats_t). */
TDM_EXTERN void tdm_stats_init(tdm_stats_t *s);

/*
 * Copy the counters into `out`, up to out->size bytes (call tdm_stats_init
 * first). While a started tdm_t runs, call it only from its stopped_cb or
 * after (the worker updates the counters without locks). Cannot fail.
 */
TDM_EXTERN void tdm_get_stats(const tdm_t *t, tdm_stats_t *out);

/*
 * Final checkpoint (if anything is pending), close processors, release the
 * lock and the store. Accepts NULL. Cannot fail (failures are logged). A
 * started tdm_t must have stopped first (its stopped_cb was called, or
 * tdm_run returned).
 */
TDM_EXTERN void tdm_close(tdm_t *t);

/* ---- the state directory, without a tdm_t ----------------------------- */

/*
 * What `tidemark status --json` prints for `state_dir`: one JSON object on
 * one line (with its newline), "state_dir", "schema", "last_checkpoint" and
 * "files", each file as documented in README.md. Opens the store read-only,
 * so it works while a writer runs. On success *json is a NUL-terminated
 * string the caller frees with tdm_free(); on error *json is NULL. Errors
 * (a message naming the directory is printed on stderr): -ENOENT (no state
 * there), -ENOTDIR, TDM_ESTATE (corrupt or newer store), TDM_ESTORE,
 * -ENOMEM, -errno.
 */
TDM_EXTERN int tdm_status_json(const char *state_dir, char **json);

/*
 * `tidemark reset`: forget every file (n_paths == 0) or every file at or
 * under one of `paths` (absolute or relative to the current directory), in
 * one transaction, so that it is read again from the start. Takes the
 * writer lock: nothing else may have the directory open for writing, this
 * process included. *forgotten (may be NULL) gets the number of files
 * forgotten. A path that matches nothing is reported on stderr and is not an
 * error. Errors (with a message on stderr): -ENOENT (no state there),
 * TDM_ELOCKED (a writer holds it), TDM_ESTATE, TDM_ESTORE, -ENOMEM, -errno.
 */
TDM_EXTERN int tdm_reset(const char *state_dir, const char *const *paths, size_t n_paths,
              size_t *forgotten);

/* What tdm_status_write writes. */
typedef enum tdm_status_format {
  TDM_STATUS_TABLE = 0, /* `tidemark status`: a table for people */
  TDM_STATUS_JSON = 1,  /* `tidemark status --json`: as tdm_status_json */
  TDM_STATUS_SUMMARY = 2, /* `tidemark status --summary`: counts by state,
                             bytes pending, the oldest pending file, from
                             the records alone (no file is looked at) */
  TDM_STATUS_SUMMARY_JSON = 3 /* `status --summary --json`: one object */
} tdm_status_format_t;

/*
 * tdm_status_json's report for o->state_dir (or the table `tidemark status`
 * prints), written to `out` as it is made, so a store of a million files is
 * never held in memory whole. Of `o` only state_dir, log_level, log_cb and
 * log_arg are read (initialise it with tdm_options_init); messages go
 * through that sink. `out` is the caller's; its write errors are the
 * caller's to check (ferror, fflush). Errors: as tdm_status_json.
 */
TDM_EXTERN int tdm_status_write(const tdm_options_t *o,
                                tdm_status_format_t format, FILE *out);

/*
 * tdm_status_write to the open descriptor `fd` (not closed; written
 * through a stream of its own, flushed before the return): for a pipe read
 * by another thread, as the Python binding's iterator does. A reader that
 * stops reading ends the walk: the write fails with EPIPE (the caller
 * ignores SIGPIPE) and the call returns 0. Errors as tdm_status_write, and
 * -errno of a failed dup/write.
 */
TDM_EXTERN int tdm_status_write_fd(const tdm_options_t *o,
                                   tdm_status_format_t format, int fd);

/*
 * tdm_reset with a log sink: of `o` only state_dir, log_level, log_cb and
 * log_arg are read. *untracked (may be NULL) gets the number of `paths`
 * that matched no tracked file (each reported as a warning naming it; the
 * others are still reset). Errors: as tdm_reset.
 */
TDM_EXTERN int tdm_reset_paths(const tdm_options_t *o, const char *const *paths,
                               size_t n_paths, size_t *forgotten,
                               size_t *untracked);

/* ---- processors, without a tdm_t -------------------------------------- */

/* One processor in tdm_processors_list. */
typedef struct tdm_processor_info {
  const char *name;    /* what a spec names it by: [a-z0-9_-]+ */
  const char *origin;  /* "built-in", or the plugin file's path */
  const char *summary; /* its one-line description ("" when it has none) */
} tdm_processor_info_t;

/*
 * Every processor a tdm_open with these options could use, in the order
 * they are registered: the built-ins, then the plugins of o->plugin_dir and
 * of the default plugin directories. Of `o` only plugin_dir, log_level,
 * log_cb and log_arg are read. origin and summary come escaped as log lines
 * spell names (control bytes and bytes that are not valid UTF-8 as \xNN,
 * a backslash doubled), so they can be printed to a terminal as they are:
 * a plugin's summary is its author's text. A plugin that is refused is
 * logged naming its file and left out. On success *list is one allocation
 * (the array and every string in it) the caller frees with tdm_free(), and
 * *n its length. Errors: -errno when o->plugin_dir cannot be read (logged,
 * naming it), -ENOMEM.
 */
TDM_EXTERN int tdm_processors_list(const tdm_options_t *o,
                                   tdm_processor_info_t **list, size_t *n);

/* Free what the library allocated for the caller (tdm_status_json,
   tdm_processors_list). */
TDM_EXTERN void tdm_free(void *p);

/* ---- 0.3: `tidemark top`, a live view of a running instance ------------- */

/*
 * What `tidemark top` shows of the instance whose state directory is
 * o->state_dir: its store, read-only (beside the running writer, as
 * tdm_status_write reads it), and with o->metrics_listen (the ADDR:PORT the
 * instance serves its metrics on; NULL: the store alone) its metrics, for
 * live rates and the state of each processor. A file's size now is looked
 * at (lstat) for 1,000 files per refresh in turn and for the files last
 * rendered; the store is walked again only after a new commit, and no more
 * often than keeps the walks under 1% of the time.
 */
typedef struct tdm_top_s tdm_top_t;

typedef enum tdm_top_sort {
  TDM_TOP_BY_PENDING = 0, /* bytes pending, then longest behind */
  TDM_TOP_BY_BEHIND = 1,  /* longest behind, then bytes pending */
  TDM_TOP_BY_RATE = 2,    /* fastest bookmark */
  TDM_TOP_BY_PATH = 3     /* path, bytewise */
} tdm_top_sort_t;
#define TDM_TOP_SORTS 4

/*
 * Open the view and look once. Of `o`: state_dir, metrics_listen, log_level,
 * log_cb, log_arg (initialise it with tdm_options_init). Errors, logged
 * naming the directory or the option: TDM_EUSAGE (metrics_listen is not
 * ADDR:PORT), -ENOENT (no state there), -ENOTDIR, TDM_ESTATE (not a store,
 * corrupt), TDM_ESTORE, -ENOMEM. An endpoint that does not answer is not an
 * error: see tdm_top_metrics_error.
 */
TDM_EXTERN int tdm_top_open(const tdm_options_t *o, tdm_top_t **out);

/* Accepts NULL. */
TDM_EXTERN void tdm_top_close(tdm_top_t *v);

/*
 * Look again: the store, and the metrics endpoint (1 s at most). 0, or the
 * store's error (logged once; the last view stays and the header says it).
 */
TDM_EXTERN int tdm_top_refresh(tdm_top_t *v);

/* Why the last look at the metrics endpoint failed ("ADDR:PORT: not
   answering: ..."), or NULL. Valid until the next refresh. */
TDM_EXTERN const char *tdm_top_metrics_error(const tdm_top_t *v);

/* One screen of the view. */
typedef struct tdm_top_frame {
  int width;             /* columns; 0: no limit */
  int rows;              /* the screen's rows; 0: every file, no keys line
                            (a snapshot) */
  tdm_top_sort_t sort;
  const char *filter;    /* only paths holding this; NULL or "": all */
  int editing;           /* the filter is being typed: the last row says so */
} tdm_top_frame_t;

/*
 * Call line(arg, row, text, reverse) for each row of `f`, top to bottom
 * (row from 0): the header, the column titles (reverse), the files in order
 * `f->sort`, then with f->rows blank rows and the keys line (reverse) on
 * the last row. `text` is UTF-8 with control characters escaped, at most
 * f->width columns, valid during the call. The files rendered are looked at
 * at the next refresh.
 */
TDM_EXTERN void tdm_top_render(tdm_top_t *v, const tdm_top_frame_t *f,
                               void (*line)(void *arg, int row,
                                            const char *text, int reverse),
                               void *arg);

#ifdef __cplusplus
}
#endif
#endif /* TIDEMARK_H */
