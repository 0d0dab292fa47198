/*
 * chain.h: the processor instances of a tdm_t and the hand-over of a chunk
 * to every one of them (retry with backoff, fail).
 */
#ifndef TDM_CHAIN_H
#define TDM_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/filetable.h"
#include "processors/registry.h"
#include "tidemark.h"

typedef struct tdm_proc {
  const tdm_processor_t *desc;
  void *state;
  char *key;              /* the spec as given: the key of its blob */
  tdm_proc_spec_t spec;   /* parsed, for reopening */
  tdm_chunk_cb cb;        /* callback processors: desc is NULL */
  void *cb_arg;
  void *ctx;              /* host descriptors: *state before open() */
  uint8_t blob[TDM_RESTORE_MAX]; /* the last durable restore blob */
  size_t blob_len;
  int open;               /* state is live */
  /* Metrics: what this processor accepted, retried, failed. */
  uint64_t m_bytes, m_records, m_retries, m_failures;
} tdm_proc_t;

/* Open a processor instance with its stored blob. Logs and returns
   TDM_EUSAGE when open() failed (bad parameters, an output it cannot make),
   TDM_EPROC when it answered TDM_PROC_UNAVAILABLE (a runtime failure). */
int tdm__proc_open(tdm_t *t, tdm_proc_t *p);
/* Close an instance (if open). */
void tdm__proc_close(tdm_proc_t *p);

/* The reader has caught up (nothing more to read now): let every processor
   that buffers hand over what it holds (tdm_processor_t.caught_up). Does
   nothing unless a chunk was delivered since the last call. */
void tdm__caught_up(tdm_t *t);

/*
 * tdm_run_once only (t->live == NULL), with --retry-timeout-ms set: has a
 * processor kept asking to retry since `since_ms` for too long? If so, say so
 * naming `path` (at `offset`, or UINT64_MAX for a whole file) and processor
 * `key` (with its last message `msg`), set t->gave_up and stop the pass
 * (t->stop), and return 1: the caller returns TDM_ESTOPPED and keeps the
 * bookmark. Else 0.
 */
int tdm__give_up(tdm_t *t, uint64_t since_ms, const char *path,
                 uint64_t offset, const char *key, const char *msg);

/* The hand-over of one chunk, across tdm__deliver's returns: who has it,
   the backoff, when the retries began. Zero it before the first call. */
typedef struct tdm_delivery {
  uint64_t taken;         /* bit i: processor i has the chunk */
  unsigned backoff;       /* ms; 0: not retried yet */
  uint64_t since_ms;      /* first RETRY of this chunk (0: none yet) */
  uint64_t records;       /* records in the chunk, counted once (metrics) */
  const char *last_key;   /* the last processor that asked to retry */
  char last_msg[TDM_MSG_MAX];
  int quiet;              /* in: a failure is logged at debug level only
                             (the caller says what comes of it) */
  int fail_rc;            /* out, with TDM_EPROC: TDM_PROC_FAIL or
                             TDM_PROC_REJECT */
  const char *fail_key;   /* out: the processor that refused */
  char fail_msg[TDM_MSG_MAX]; /* out: its message ("" if none) */
  int rolled_all;         /* out: tdm__rollback moved every file back (not
                             only the processors) */
} tdm_delivery_t;

/* tdm__deliver: nobody has the chunk yet and someone asks to retry. */
#define TDM__STALLED 1

/*
 * Hand a chunk to every processor that does not have it yet (d, zeroed for a
 * new chunk). RETRY is retried with backoff until it is accepted or
 * tdm_stop() is called (tdm_run_once: or tdm__give_up says so). Returns 0
 * when all accepted; TDM__STALLED after a backoff in which no processor holds
 * any of it, so that the caller may checkpoint what came before (a commit
 * then covers exactly the bookmarks) and call again with the same `d`;
 * TDM_EPROC when one failed or rejected it (logged, naming the processor and
 * the file; the file is marked failed; d->fail_* say who and why), after
 * everything was rolled back to the last checkpoint (tdm__rollback: f->pos
 * is its durable bookmark now), so that nothing is offered to that
 * processor again before it is back at its last restore point;
 * TDM_ESTOPPED.
 */
int tdm__deliver(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c,
                 tdm_delivery_t *d);

/*
 * Undo everything since the last durable checkpoint, as a crash would: every
 * processor with a commit() is closed and reopened with its last durable
 * restore blob (those without carry on: they have no restore point), every
 * file goes back to its durable bookmark, the dead-letter file to its
 * checkpointed length. Files moved back are read again at their next look.
 * `failed_checkpoint`: counted as a checkpoint error (else: a processor
 * failed a chunk). In tail mode, when a processor failed a chunk and none
 * accepted anything since the last checkpoint (t->accepted), only the
 * processors are reopened: the files and the dead-letter file hold nothing a
 * processor took, and stay. Returns 1 when everything went back, 0 when only
 * the processors did. Here, beside the processors it reopens: the chain
 * calls it when a processor fails a chunk, the checkpoint when a commit
 * fails.
 */
int tdm__rollback(tdm_t *t, int failed_checkpoint);

#endif /* TDM_CHAIN_H */
