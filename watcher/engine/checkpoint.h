/*
 * checkpoint.h: making what the processors accepted durable, in one store
 * transaction with every processor's restore blob.
 */
#ifndef TDM_CHECKPOINT_H
#define TDM_CHECKPOINT_H

#include "core/filetable.h"
#include "engine/chain.h"
#include "tidemark.h"

/* Checkpoint at the latest after this many bytes, whatever the clock says. */
#define TDM_CHECKPOINT_BYTES (256ull << 20)
/* ...or when this many more files are hot (in memory in full, about 400
   bytes each: 3 MiB) than after the last time the files at rest were made
   cold (tdm__rest): a first pass over a million small files would
   otherwise hold a second's worth of them, 60,000 here, until the clock
   says. A checkpoint of 8,192 new files costs some 10 ms of fsyncs here. */
#define TDM_CHECKPOINT_FILES 8192u

/*
 * Make everything delivered durable: commit every processor, then one store
 * transaction with every dirty file, dead ids and blobs. On failure (logged)
 * the processors are rolled back to their last durable blob and every file
 * to its durable bookmark, so nothing is recorded that was not accepted.
 * A commit that answers TDM_PROC_RETRY defers the checkpoint: 0 is returned
 * with t->need_checkpoint still set, nothing rolled back.
 */
int tdm__checkpoint(tdm_t *t);

/*
 * Make the record of every fresh file (f->fresh: new, truncated, the ghost
 * of a truncation, a new whole-mode version) and the next file id durable, in ONE store commit and
 * without the processors: id-keyed sinks (nats, postgres) name records by
 * (file id, generation, offset), so a kill -9 before the next checkpoint
 * must neither give that id to another file nor track the file again under
 * a new id. Each is written with the bookmark it starts from, never a
 * position moved by delivery, and (whole mode) as pending. Called before
 * the first chunk of a fresh file is handed over. 0 (also when none is
 * fresh), or the store's error (said; t->checkpoint_rc set: the pass ends).
 */
int tdm__register(tdm_t *t);

/* Checkpoint if --checkpoint-ms, TDM_CHECKPOINT_BYTES or
   TDM_CHECKPOINT_FILES says it is time. */
int tdm__checkpoint_maybe(tdm_t *t);

/*
 * Hand a chunk to every processor (tdm__deliver), and while it stalls with
 * no processor holding any of it, checkpoint what was delivered before when
 * tdm__checkpoint_maybe says it is time. Returns tdm__deliver's codes, or a
 * failed checkpoint's.
 */
int tdm__deliver_checkpointing(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c);
/* The same with the caller's delivery state (zeroed, d->quiet set as wanted):
   d->fail_* tell who refused the chunk. */
int tdm__deliver_checkpointing_d(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c,
                                 tdm_delivery_t *d);

#endif /* TDM_CHECKPOINT_H */
