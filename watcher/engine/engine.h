/*
 * engine.h: struct tdm_s, the state every engine module works on.
 *
 * Data flow of one pass (tdm_run_once), layer by layer:
 *
 *   core/scan.c          walks each source, filters names (core/filter.c),
 *                        lstat()s files
 *   engine/reconcile.c   looks each file up by (dev, ino) in the file table
 *                        (core/filetable.c); an unchanged size+mtime+ctime
 *                        is not opened at all (and a file at rest, kept
 *                        cold, is not even made hot); the rest goes through
 *                        t->mode (engine/mode.h): tail mode's look, or
 *                        whole mode's in engine/whole.c
 *   core/identity.c      opens the changed ones and decides, through the
 *                        descriptor, whether they are the same file
 *                        (fingerprint of the head, marker of the bytes before
 *                        the bookmark), truncated, or new
 *   engine/reader.c      preads from the bookmark to the current end in large
 *                        reads; core/framing.c cuts each at a record boundary
 *   engine/chain.c       hands each chunk to every processor (retry / fail)
 *   engine/checkpoint.c  commits every processor, then writes every moved
 *                        bookmark and every restore blob in ONE store
 *                        transaction (state/store.c)
 *
 * Everything here runs on the thread that called tdm_run_once().
 */
#ifndef TDM_ENGINE_H
#define TDM_ENGINE_H

#include <limits.h>
#include <regex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h"
#include "core/filetable.h"
#include "core/filter.h"
#include "core/framing.h"
#include "engine/chain.h"
#include "engine/deadletter.h"
#include "engine/hashset.h"
#include "engine/mode.h"
#include "engine/outputs.h"
#include "processors/registry.h"
#include "state/store.h"
#include "tidemark.h"

/* Where a processor refused a chunk of a file (engine/reader.c): delivery
   narrows down from the chunk [start, end) to the record refused. */
typedef struct tdm_suspect {
  uint64_t file_id;
  uint64_t start, end;    /* the refused chunk; `start` moves on through
                             its records as each goes through or is set
                             aside */
  uint32_t generation;    /* the file's truncations then (tdm_chunk_t's) */
  uint32_t tries;         /* refusals of the record offered alone */
  int settled;            /* refused for good: REJECT, or max_tries */
  int rejected;           /* the last refusal was a REJECT */
  uint64_t hold_until_ms; /* settled, no --dead-letter: not offered again
                             before this (0: now) */
  unsigned backoff;       /* ms between tries of the record alone */
  unsigned hold_ms;       /* run, no --dead-letter: the last hold (doubles) */
  const char *key;        /* the processor that refused (its tdm_proc_t's) */
  char msg[TDM_MSG_MAX];  /* and why */
} tdm_suspect_t;

/* Defined in live/live.h: the engine only holds the pointer. */
typedef struct tdm_live tdm_live_t;

struct tdm_s {
  tdm_options_t opts;     /* strings below are owned copies */
  const tdm_mode_ops_t *mode; /* opts.mode's operations (engine/mode.h);
                                 set by tdm_open, never NULL after it */
  tdm__log_t log;
  tdm_store_t *store;
  tdm_registry_t *registry;
  tdm_filter_t filter;
  char *state_real;       /* the state directory, resolved */
  /* `status` of a state directory onto `out` (status.c, one layer up; set
     by tdm_open): the metrics endpoint serves it as /status.json. */
  int (*status_print)(const char *dir, int json, const tdm__log_t *log,
                      FILE *out);
  char **roots;           /* absolute, resolved source directories */
  size_t n_roots;
  uint8_t *root_gone;     /* root_gone[r]: source r was missing when last
                             looked at (so it is said once) */
  tdm_proc_t *procs;
  size_t n_procs;
  tdm_filetable_t files;
  uint64_t next_id;
  size_t n_fresh;         /* files with f->fresh */
  size_t n_deferred;      /* files deferred (f->deferred) since the last
                             tdm__flush_fresh */
  size_t defer_max;       /* flush when this many are deferred (0: not
                             worked out yet) */
  int flushing;           /* tdm__flush_fresh is reading them: what they
                             put off waits for its next round */
  uint64_t *dead;         /* ids to delete at the next checkpoint */
  size_t n_dead, cap_dead;
  char *buf;              /* the read buffer */
  char *wbuf;             /* whole mode: buf_cap bytes where a file's lines
                             are cut into chunks (engine/whole.c); lazily */
  size_t buf_cap;
  int need_checkpoint;    /* something not in the store yet */
  int delivered_since_caught_up; /* see tdm__caught_up */
  int checkpoint_deferred; /* checkpoints a processor's RETRY put off since
                              the last one that succeeded */
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
  struct tdm_whole_held { /* whole: files put off (tdm__defer) once hashed:
                             what their content is delivered through */
    uint64_t id;          /* the file's; 0: taken back */
    int fd;
    int kind;             /* its tdm_comp_t */
  } *held;                /* in the order they were put off */
  size_t first_held, n_held, cap_held; /* [first_held, n_held) in use */
  size_t n_waiting;       /* whole: files with f->waiting */
  size_t n_inflight;      /* whole: files with f->inflight */
  int rest_due;           /* a checkpoint committed: tdm__rest() makes the
                             files at rest cold at its next safe point */
  int head_fd;            /* t->buf holds the first head_len bytes of this
                             descriptor, read by the look under way for
                             a new file's fingerprint: its first read
                             takes them from there; else -1 */
  size_t head_len;
  int plain_fd;           /* a descriptor tail_look() found holding a plain
                             head (not compressed) in the look under way,
                             so tdm__read() need not look again; else -1 */
  size_t hot_floor;       /* hot files left by the last tdm__rest() (or
                             the load): TDM_CHECKPOINT_FILES more and a
                             checkpoint is due */
  /* Metrics (engine/metrics.c). */
  int count_records;      /* count records per processor (metrics wanted) */
  uint64_t checkpoint_ns_sum; /* time spent in checkpoints */
  uint64_t checkpoint_ns_count;
  void (*checkpointed)(tdm_t *t); /* after every checkpoint, committed or
                                     not; NULL: nothing. tdm_open points it
                                     at tdm__metrics_checkpointed for
                                     --metrics-file */
  struct tdm_progress_state *progress; /* tdm_run_once with a progress_cb */
  tdm_outputs_t outputs;  /* our processors' output files: never input */
  uint64_t lost_unsaved;   /* lost files not counted in the store yet */
  size_t unsaved_outcomes;/* whole: outcomes collected since the last
                             checkpoint (made durable promptly) */
  int gave_up;            /* once: a processor kept retrying past
                             --retry-timeout-ms; the pass stopped (t->stop)
                             and tdm_run_once returns TDM_EPROC */
  /* Records (engine/options.c): multiline, after done. */
  regex_t ml_re;          /* --multiline-start, when ml_on */
  int ml_on;
  int after_delete;       /* --on-done delete */
  char *done_dir;         /* --on-done move:DIR, resolved; NULL: none */
  char *failed_dir;       /* --on-failed move:DIR, resolved; NULL: none */
  int after_swept;        /* our temporaries a kill -9 left in DIR removed */
  int64_t forget_due_ns;  /* whole: when the next gone record is due to be
                             forgotten (--forget-after); 0: none known */
  tdm_ends_t ends;        /* multiline: the record ends of the last cut */
  int ml_flush;           /* multiline: the file has been quiet for
                             --multiline-timeout-ms: its last record is
                             complete (set for each read) */
  /* Failures (engine/reader.c, engine/deadletter.c). */
  tdm_deadletter_t dl;    /* --dead-letter; dl.fd < 0: none */
  tdm_suspect_t *suspects;/* places a processor refused, being narrowed */
  size_t n_suspects, cap_suspects;
  int accepted;           /* a processor accepted a chunk since the last
                             checkpoint (a rollback must move files back) */
  int unsaved_dead;       /* a record was set aside since the last
                             checkpoint: the next chunk accepted is made
                             durable at once, with it */
  int rolled_back;        /* a processor refused a record in tail mode and
                             everything was rolled back since this was
                             cleared: files already read must be read again
                             (tdm_run_once: a new pass; run: a rescan) */
};

#endif /* TDM_ENGINE_H */
