/*
 * chain.h: the processor instances of a tdm_t and the hand-over of a chunk
 * to every one of them (retry with backoff, fail).
 */
#ifndef TDM_CHAIN_H
#define TDM_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/filetable.h"
#include "registry.h"
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
 * Hand a chunk to every processor. RETRY is retried with backoff until it is
 * accepted or tdm_stop() is called. Returns 0 when all accepted, TDM_EPROC
 * when one failed (logged, naming the processor and the file; the file is
 * marked failed), TDM_ESTOPPED.
 */
int tdm__deliver(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c);

#endif /* TDM_CHAIN_H */
