/*
 * tidemark/processor.h: the processor ABI.
 *
 * This is the only header a processor needs, built-in or plugin. It depends on
 * <stddef.h> and <stdint.h> alone, so a plugin builds without tidemark's
 * sources or its dependencies:
 *
 *     cc -shared -fPIC -I/path/to/tidemark/processors -o myproc.so myproc.c
 *
 * A plugin exports one symbol, TDM_PROCESSOR_ENTRY_SYMBOL, a function that
 * returns a pointer to a static descriptor. processors/template/template.c is a
 * commented plugin to copy.
 *
 * Compatibility rules (as in sqlite3_module):
 *   - abi_version is bumped only for incompatible changes; the host refuses a
 *     descriptor whose abi_version differs from its own, naming the file.
 *   - New methods are only ever appended to tdm_processor_t. `size` is
 *     sizeof(tdm_processor_t) as the plugin was compiled; the host never calls
 *     a method that lies beyond `size`, and refuses a descriptor smaller than
 *     the version-1 layout.
 *
 * Threading: the host calls the methods of one processor instance from one
 * thread at a time (never concurrently), though not always the same thread.
 */
#ifndef TIDEMARK_PROCESSOR_H
#define TIDEMARK_PROCESSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2 since 0.2: tdm_chunk_t starts with its size. */
#define TDM_PROCESSOR_ABI_VERSION 2u

/* The symbol a plugin exports: `const tdm_processor_t *tdm_processor_entry(void)`. */
#define TDM_PROCESSOR_ENTRY_SYMBOL "tdm_processor_entry"

/* Capacity of the message buffer each method may fill (NUL-terminated). */
#define TDM_MSG_MAX 256

/* Capacity of a restore blob (see commit). */
#define TDM_RESTORE_MAX 256

/* What a method returns. */
typedef enum tdm_proc_result {
  TDM_PROC_OK = 0,    /* accepted / done */
  TDM_PROC_RETRY = 1, /* not accepted now (backpressure, transient error):
                         the host offers the same chunk again later */
  TDM_PROC_FAIL = 2,  /* not accepted: something in the chunk failed (it may
                         have done part of the chunk). The host rolls the
                         processor back before offering it anything again
                         (see process()), narrows the chunk down to the
                         record that fails and offers that record alone up
                         to --max-tries times; then it is set aside
                         (--dead-letter) or its file stops before it, marked
                         failed, and `msg` is reported */
  TDM_PROC_PENDING = 3, /* file() only: accepted, the outcome will come from
                          poll() */
  TDM_PROC_UNAVAILABLE = 4, /* open() only: the parameters are right but what
                              they name cannot be used now (a server down, a
                              missing stream): a runtime error, not a usage
                              error (the command exits 1, not 2) */
  TDM_PROC_REJECT = 5 /* process() only: a record in the chunk will never be
                         accepted, however often it is offered (bigger than
                         the server's max payload, a constraint violation,
                         not JSON). Like FAIL, nothing of the chunk may have
                         been kept. The host rolls the processor back, narrows
                         the chunk down to the record and sets that record
                         aside (--dead-letter) without the retries FAIL gets;
                         the rest of the file goes on (without --dead-letter
                         the file stops before it, marked failed). A host
                         older than 0.3 takes it as FAIL. */
} tdm_proc_result_t;

/* How the host reads files (--mode): tail follows appends, whole hands
   over each complete file once. */
typedef enum tdm_mode {
  TDM_MODE_TAIL = 0,  /* appended bytes of growing files */
  TDM_MODE_WHOLE = 1  /* each complete file once */
} tdm_mode_t;

/* One `key=value` pair of a processor spec (`NAME:key=value,key=value`). */
typedef struct tdm_kv {
  const char *key;
  const char *value;
} tdm_kv_t;

/* chunk->flags */
#define TDM_CHUNK_PIECE 0x1u /* a piece of a record longer than --max-record;
                                the record goes on in the next chunk */
#define TDM_CHUNK_RESTART 0x2u /* first chunk after the file was truncated or
                                  found rewritten: offset starts again at 0 */

/*
 * A run of new bytes of one file. In `lines` record mode it holds one or more
 * whole lines (each ending in '\n') unless TDM_CHUNK_PIECE is set.
 * Everything it points to is owned by the host and valid only for the
 * duration of the process() call: copy what you keep.
 *
 * Fields are only appended. `size` is sizeof(tdm_chunk_t) as the host built
 * it: a processor reads a field appended after 0.2 only when `size` covers it
 * (TDM_CHUNK_HAS).
 */
typedef struct tdm_chunk {
  uint32_t size;      /* sizeof(tdm_chunk_t) as the host built it */
  uint32_t flags;     /* TDM_CHUNK_* */
  uint64_t file_id;   /* stable id of the file in the state store */
  const char *path;   /* the file's current path */
  uint64_t offset;    /* file offset of data[0] */
  const void *data;
  size_t len;         /* > 0 */
  /* Appended (--multiline-start). Where the records in `data` end: end
     offsets within data (exclusive, ascending); the last one is `len`
     unless TDM_CHUNK_PIECE is set (a piece of an over-long record, which
     goes on in the next chunk: n_records counts only the records that end
     here, and a chunk that continues a piece starts with the rest of that
     record). NULL: records are lines (--records lines) or there are none
     (--records bytes). Valid only during process(), like data. A processor
     that sends one message per record (a stack trace is one record) reads
     them when TDM_CHUNK_HAS(c, n_records) and record_ends != NULL. */
  const uint32_t *record_ends;
  size_t n_records;
  /* Appended. A new value whenever the same (file_id, offset) could name
     different bytes: tail mode counts the times the file's offsets began
     again at 0 (truncations, logrotate's copytruncate); whole mode also
     counts each new content of the file id (rewritten in place, or a new
     file on the inode of a deleted one). It survives restarts, and a replay
     after a crash sees the value the first try saw. A processor that names
     a record by (file_id, offset), as nats does for deduplication, must add
     it once it is not 0, or a record of one generation looks like one of
     another. */
  uint32_t generation;
} tdm_chunk_t;

/* Does chunk `c` carry field `f`? */
#define TDM_CHUNK_HAS(c, f) \
  ((c)->size >= offsetof(tdm_chunk_t, f) + sizeof((c)->f))

/*
 * What open() receives. Owned by the host, valid only during the open() call.
 * `size` is sizeof(tdm_open_args_t) as the host built it; fields are only
 * appended.
 */
typedef struct tdm_open_args {
  uint32_t size;
  tdm_mode_t mode;
  const tdm_kv_t *params;  /* the spec's key=value pairs, in order */
  size_t n_params;
  const void *restore;     /* the blob the last durable commit returned, */
  size_t restore_len;      /* or NULL/0 when there was none (first run) */
  char *msg;               /* TDM_MSG_MAX bytes for an error message */

  /* ---- appended in 0.2; present when `size` covers them ---- */

  /* A random id made once per state directory (hex, NUL-terminated): tells
     this tidemark's records from other hosts' in a shared sink. */
  const char *instance;
  /* --checkpoint-ms: the longest time between two commit() calls while
     records keep coming. */
  uint64_t checkpoint_ms;
  /* Log one line (no trailing newline) through the host's log, at `level`
     (TDM_PROC_LOG_*). Call it only from within a method call (on the
     host's thread), never from a thread of your own. Valid until close(). */
  void (*log)(void *log_arg, int level, const char *line);
  void *log_arg;
} tdm_open_args_t;

/* tdm_open_args_t.log levels (the host's: error, warning, info, debug). */
#define TDM_PROC_LOG_ERROR 0
#define TDM_PROC_LOG_WARN 1
#define TDM_PROC_LOG_INFO 2
#define TDM_PROC_LOG_DEBUG 3

/* Does `args` carry field `f`? (A host older than the processor has a
   smaller `size`.) */
#define TDM_OPEN_ARGS_HAS(a, f) \
  ((a)->size >= offsetof(tdm_open_args_t, f) + sizeof((a)->f))

/*
 * A complete file in whole mode (see tdm_processor_t.file). Owned by the
 * host, valid only during the call. `size` is sizeof(tdm_file_info_t) as the
 * host built it; fields are only appended.
 */
typedef struct tdm_file_info {
  uint32_t size;
  uint64_t file_id;
  const char *path;       /* absolute */
  uint64_t length;        /* bytes of the complete file */
  const uint8_t *hash;    /* XXH3-128 of the content, canonical (16 bytes) */
  const char *hash_hex;   /* the same, 32 lower-case hex digits */
} tdm_file_info_t;

/*
 * The outcome of a file() that answered TDM_PROC_PENDING, from poll().
 * Written by the processor into an array the host owns, so its layout is
 * gated by the descriptor rather than by a size field: fields appended to it
 * in a later version come with a method appended to tdm_processor_t, and the
 * host hands a processor whose `size` does not cover that method an array of
 * the layout below.
 */
typedef struct tdm_outcome {
  uint64_t file_id;
  int result;             /* TDM_PROC_OK or TDM_PROC_FAIL */
  int32_t exit_status;    /* exec: the exit code, or -N for signal N */
  uint32_t attempts;      /* how many times it was tried */
  char msg[TDM_MSG_MAX];  /* why it failed */
} tdm_outcome_t;

/*
 * The descriptor. Built-ins and plugins use the same struct; the host never
 * writes to it. All methods but process() may be NULL.
 */
typedef struct tdm_processor {
  uint32_t abi_version;    /* TDM_PROCESSOR_ABI_VERSION */
  uint32_t size;           /* sizeof(tdm_processor_t) */
  const char *name;        /* [a-z0-9_-]+, unique among loaded processors */
  const char *summary;     /* one line for `tidemark processors` */

  /*
   * Create an instance. On TDM_PROC_OK stores the instance in *state (may be
   * NULL if the processor keeps none). The processor must roll its output back
   * to args->restore if it can (this is what makes delivery exactly once).
   * Unknown or missing parameters: return TDM_PROC_FAIL with a message naming
   * the key. On failure close() is not called.
   */
  int (*open)(void **state, const tdm_open_args_t *args);

  /*
   * Take a chunk. TDM_PROC_OK means the processor owns the bytes now; they need
   * not be durable before the next commit(). On TDM_PROC_RETRY the processor
   * must not have kept any part of the chunk. `msg` (TDM_MSG_MAX bytes) is
   * for an error message.
   *
   * TDM_PROC_FAIL and TDM_PROC_REJECT may come halfway through a chunk, after
   * the processor did part of it (rows written before the bad record): the
   * host does not offer anything to it again before it is back at its last
   * restore point. It rolls back the whole state as a crash would: every
   * processor that has commit() is closed and reopened with the restore blob
   * of the last durable checkpoint (so open() must roll its output back to
   * it, as it does after a restart), and every file goes back to its durable
   * bookmark, the dead-letter file to its checkpointed length (when no
   * processor accepted anything since that checkpoint, reopening them is
   * all it takes). Delivery then resumes from the bookmarks: exactly once for processors that roll back,
   * at least once (as after a crash) for those without commit(), which carry
   * on as they are. The record that failed is then offered alone, after a
   * checkpoint, so that a second failure rolls back only that record.
   */
  int (*process)(void *state, const tdm_chunk_t *chunk, char *msg);

  /*
   * Make everything accepted so far durable and describe the output in a
   * restore blob: write at most *restore_len (TDM_RESTORE_MAX) bytes to
   * `restore` and set *restore_len to the length written (0: no blob). The
   * host stores the blob in the same transaction as the bookmarks and hands it
   * back to open() after a restart. Returning anything but TDM_PROC_OK
   * cancels the checkpoint (bookmarks do not move); it is retried later.
   * TDM_PROC_RETRY: not yet, nothing lost (the instance keeps everything it
   * accepted, e.g. while acknowledgements are still due): the next
   * checkpoint asks again. TDM_PROC_FAIL: the host closes the instance and
   * reopens it with the last durable blob, and delivers again from the
   * bookmarks.
   */
  int (*commit)(void *state, void *restore, size_t *restore_len, char *msg);

  /* Release the instance. Called once, after the final commit. */
  void (*close)(void *state);

  /* ---- appended in 0.2 (whole mode); the host checks `size` first ---- */

  /*
   * Whole mode: `info` is complete, and all its bytes went through process().
   * TDM_PROC_OK: handled. TDM_PROC_PENDING: started (e.g. a child process),
   * its outcome comes from poll(). TDM_PROC_RETRY: not now (e.g. every job
   * slot busy): the host collects outcomes with poll() and offers it again.
   * TDM_PROC_FAIL: it will not be handled; `msg` says why. NULL: nothing to
   * do per file.
   */
  int (*file)(void *state, const tdm_file_info_t *info, char *msg);

  /*
   * Collect the outcomes of PENDING files: write at most `max` into `out` and
   * return how many. With `wait_ms` > 0, block up to that long for a first
   * one while any is pending. Returns 0 when none is ready.
   */
  int (*poll)(void *state, tdm_outcome_t *out, size_t max, int wait_ms);

  /* ---- appended in 0.2 (own outputs); the host checks `size` first ---- */

  /*
   * The files this instance writes, so that the host never reads them back
   * as input when they lie inside a source (it would deliver its own output
   * again, without end). Point at most `max` of them from `paths` and return
   * how many there are. Each path is a NUL-terminated string owned by the
   * instance, valid until close(); relative paths are taken from the working
   * directory. The host compares files by identity (device and inode), and
   * looks at the paths again whenever it meets a file it does not know, so
   * an output created later (or replaced) is still recognised. NULL: the
   * processor writes no file (exec, stdout).
   */
  size_t (*outputs)(void *state, const char **paths, size_t max);
  /* ---- appended in 0.2 (sinks deliver at once); `size` is checked ---- */

  /*
   * The reader has caught up: nothing more is there to read right now. A
   * processor that buffers hands over what it holds now (written, sent; no
   * fsync needed: durability is still commit()'s job), so that a record
   * appended to an idle file reaches the output at once rather than at the
   * next checkpoint. Called only after process() accepted something since
   * the last call. Anything but TDM_PROC_OK is logged at debug level only
   * (`msg` says why): what is held is still handed over by commit(). NULL:
   * the processor holds nothing back.
   */
  int (*caught_up)(void *state, char *msg);
} tdm_processor_t;

/* Does descriptor `d` carry method `m`? (A plugin built against an older
   header has a smaller `size`.) */
#define TDM_PROCESSOR_HAS(d, m)                                              \
  ((d)->size >= offsetof(tdm_processor_t, m) + sizeof((d)->m) && (d)->m != NULL)

/*
 * The first two fields of every descriptor, as nginx's NGX_MODULE_V1:
 *
 *     static const tdm_processor_t desc = {
 *         TDM_PROCESSOR_HEADER,
 *         .name = "mine",
 *         ...
 */
#define TDM_PROCESSOR_HEADER \
  .abi_version = TDM_PROCESSOR_ABI_VERSION, .size = sizeof(tdm_processor_t)

/* Type of the exported entry point. */
typedef const tdm_processor_t *(*tdm_processor_entry_fn)(void);

/* The smallest descriptor a host accepts: the version-1 layout (without the
   whole-mode methods, which a host calls only when `size` covers them). */
#define TDM_PROCESSOR_SIZE_V1 \
  (offsetof(tdm_processor_t, close) + sizeof(void (*)(void *)))

#ifdef __cplusplus
}
#endif
#endif /* TIDEMARK_PROCESSOR_H */
