/*
 * checkpoint.c: make delivered bytes count.
 *
 * Order matters. First every processor commits (makes what it accepted
 * durable and returns its restore blob); then ONE store transaction records
 * every moved bookmark together with every blob. A crash before the
 * transaction leaves the old bookmarks and the old blobs: the processors roll
 * back to the old blobs on restart and the bytes are delivered again, which
 * is exactly once for a processor that can roll back (`file`) and at least
 * once for the rest.
 *
 * A failed checkpoint, and a processor that failed a chunk (tdm__rollback,
 * engine/chain.c), are undone in memory the same way a crash would be: each
 * processor is closed and reopened with its last durable blob, and each file
 * goes back to its durable bookmark. A processor whose commit answers
 * TDM_PROC_RETRY (not now, nothing lost: say, acknowledgements still due)
 * only defers the checkpoint: nothing is rolled back, the bookmarks stay
 * where the store has them, and the next checkpoint tries again.
 */
#include "engine/checkpoint.h"

#include "base/clock.h"
#include "engine/deadletter.h"
#include "engine/engine.h"
#include "engine/files.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

/* A processor answered RETRY to commit: not now, nothing lost. */
#define DEFERRED 1

/*
 * Commit every processor, collecting its restore blob into blobs[i] and the
 * store's view of it into sblobs (*n_blobs of them). Returns 0; DEFERRED
 * when one cannot commit yet (acknowledgements still due: the checkpoint
 * waits, nothing is rolled back, said once until a checkpoint succeeds); or
 * TDM_EPROC when one failed (everything was rolled back).
 */
static int commit_processors(tdm_t *t, uint8_t (*blobs)[TDM_RESTORE_MAX],
                             tdm_store_blob_t *sblobs, size_t *n_blobs) {
  for (size_t i = 0; i < t->n_procs; i++) {
    tdm_proc_t *p = &t->procs[i];
    char msg[TDM_MSG_MAX] = "";
    size_t len = TDM_RESTORE_MAX;
    int crc = TDM_PROC_OK;

    if (p->desc == NULL)
      continue;
    if (!p->open && tdm__proc_open(t, p) != 0) {
      /* Not reopened after a rollback: nothing of it to commit yet. */
      snprintf(msg, sizeof(msg), "could not be reopened");
      crc = TDM_PROC_RETRY;
    } else if (p->desc->commit != NULL) {
      crc = p->desc->commit(p->state, blobs[i], &len, msg);
    }
    msg[sizeof(msg) - 1] = '\0';
    if (crc == TDM_PROC_RETRY) {
      if (!t->checkpoint_deferred++)
        tdm__warn(&t->log, "processor '%s' cannot commit yet%s%s; the "
                  "checkpoint waits", p->key, msg[0] ? ": " : "", msg);
      return DEFERRED;
    }
    if (crc != TDM_PROC_OK) {
      tdm__error(&t->log, "processor '%s' could not commit%s%s; the checkpoint "
                 "is cancelled and delivery resumes from the last one", p->key,
                 msg[0] ? ": " : "", msg);
      tdm__rollback(t, 1);
      return TDM_EPROC;
    }
    if (p->desc->commit == NULL || len > TDM_RESTORE_MAX)
      len = 0;
    sblobs[*n_blobs].key = p->key;
    sblobs[*n_blobs].data = blobs[i];
    sblobs[*n_blobs].len = len;
    (*n_blobs)++;
  }
  if (t->dl.fd >= 0) { /* its length goes with the bookmarks */
    int err = tdm__deadletter_commit(t, blobs[t->n_procs]);
    if (err != 0) {
      char q[4096];
      tdm__error(&t->log, "--dead-letter %s: %s; the checkpoint is cancelled "
                 "and delivery resumes from the last one",
                 tdm__quote(t->dl.path, q, sizeof(q)), strerror(-err));
      tdm__rollback(t, 1);
      return TDM_EPROC;
    }
    sblobs[*n_blobs].key = t->dl.key;
    sblobs[*n_blobs].data = blobs[t->n_procs];
    sblobs[*n_blobs].len = TDM_DEADLETTER_BLOB_LEN;
    (*n_blobs)++;
  }
  return 0;
}

/* The committed state is the durable one now: blobs, bookmarks, counters. */
static void adopt(tdm_t *t, const tdm_store_blob_t *sblobs, size_t n_blobs) {
  for (size_t k = 0; k < n_blobs; k++)
    for (size_t i = 0; i < t->n_procs; i++) {
      tdm_proc_t *p = &t->procs[i];
      if (sblobs[k].key == p->key) {
        memcpy(p->blob, sblobs[k].data, sblobs[k].len);
        p->blob_len = sblobs[k].len;
      }
    }
  for (size_t i = 0; i < t->files.n; i++) {
    tdm_file_t *f = t->files.all[i];
    if (!f->dirty)
      continue;
    f->durable_offset = f->rec.offset;
    f->durable_marker = f->rec.marker;
    f->durable_marker_len = f->rec.marker_len;
    f->dirty = 0;
    tdm__set_fresh(t, f, 0); /* its record is in the store now */
  }
  if (t->dl.fd >= 0)
    tdm__deadletter_adopt(t);
  t->accepted = 0;
  t->unsaved_dead = 0;
  t->n_dead = 0;
  t->need_checkpoint = 0;
  t->bytes_since_checkpoint = 0;
  t->unsaved_outcomes = 0;
  t->lost_unsaved = 0;
  t->stats.checkpoints++;
  if (t->checkpoint_deferred > 1)
    tdm__info(&t->log, "checkpoints go on (%d waited)",
              t->checkpoint_deferred - 1);
  t->checkpoint_deferred = 0;
  if (t->mode->committed != NULL)
    t->mode->committed(t, 1);
  /* Not here: a caller up the stack may hold a file (a read that
     checkpoints when stalled). */
  t->rest_due = 1;
}

static int checkpoint(tdm_t *t) {
  uint8_t (*blobs)[TDM_RESTORE_MAX] = NULL;
  tdm_store_blob_t *sblobs = NULL;
  const tdm_file_rec_t **puts = NULL;
  tdm_store_hash_t *hashes = NULL;
  tdm_store_batch_t b;
  size_t n_puts = 0, n_dirty = 0, n_blobs = 0;
  int rc = -ENOMEM;

  /* Only pointers to the dirty records are staged: 8 bytes a file, even on
     the first checkpoint after 100,000 new files. */
  for (size_t i = 0; i < t->files.n; i++)
    n_dirty += t->files.all[i]->dirty;
  /* One more for the dead-letter file's. */
  blobs = calloc(t->n_procs + 1, sizeof(*blobs));
  sblobs = calloc(t->n_procs + 1, sizeof(*sblobs));
  puts = malloc((n_dirty ? n_dirty : 1) * sizeof(*puts));
  if (blobs == NULL || sblobs == NULL || puts == NULL)
    goto out;

  if ((rc = commit_processors(t, blobs, sblobs, &n_blobs)) != 0) {
    if (rc == DEFERRED)
      rc = 0;
    goto out;
  }
  for (size_t i = 0; i < t->files.n; i++) {
    tdm_file_t *f = t->files.all[i];
    if (!f->dirty)
      continue;
    f->rec.offset = f->pos; /* undone by rollback() if the commit fails */
    f->rec.marker = f->marker;
    f->rec.marker_len = f->marker_len;
    puts[n_puts++] = &f->rec;
  }

  memset(&b, 0, sizeof(b));
  b.put_files = puts;
  b.n_put_files = n_puts;
  b.del_files = t->dead;
  b.n_del_files = t->n_dead;
  b.blobs = sblobs;
  b.n_blobs = n_blobs;
  b.next_id = t->next_id;
  b.add_lost_files = t->lost_unsaved;
  b.n_hashes = t->mode->batch != NULL ? t->mode->batch(t, &hashes) : 0;
  b.hashes = hashes;
  if ((rc = tdm_store_commit(t->store, &b)) != 0)
    tdm__rollback(t, 1);
  else
    adopt(t, sblobs, n_blobs);
out:
  t->checkpoint_rc = rc;
  t->last_checkpoint_ms = tdm__now_ms();
  free(blobs);
  free(sblobs);
  free(puts);
  free(hashes);
  return rc;
}

/* What the store may hold of fresh file `f` before any chunk of it is
   handed over: its id, generation, head fingerprint and content hash, with
   the bookmark it starts from (its durable one; 0 after a truncation) and a
   state that says nothing was handled yet. */
static void fresh_record(const tdm_t *t, const tdm_file_t *f,
                         tdm_file_rec_t *r) {
  *r = f->rec;
  if (t->opts.mode == TDM_MODE_WHOLE) {
    r->state = TDM_FILE_PENDING; /* its outcome comes with a checkpoint */
    r->offset = 0;
    r->marker = 0;
    r->marker_len = 0;
  } else if (f->pos < f->durable_offset) { /* truncated: from its start */
    r->offset = f->pos;
    r->marker = f->marker;
    r->marker_len = f->marker_len;
  } else {
    r->offset = f->durable_offset;
    r->marker = f->durable_marker;
    r->marker_len = f->durable_marker_len;
  }
}

int tdm__register(tdm_t *t) {
  tdm_file_rec_t *recs = NULL;
  tdm_file_t **fs = NULL;
  const tdm_file_rec_t **puts = NULL;
  tdm_store_batch_t b;
  size_t n = t->n_fresh, k = 0;
  int rc;

  if (n == 0)
    return 0;
  recs = malloc(n * sizeof(*recs));
  fs = malloc(n * sizeof(*fs));
  puts = malloc(n * sizeof(*puts));
  if (recs == NULL || fs == NULL || puts == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  /* New files are the last in the table: looked for from its end. */
  for (size_t i = t->files.n; i-- > 0 && k < n;) {
    tdm_file_t *f = t->files.all[i];
    if (!f->fresh)
      continue;
    fresh_record(t, f, &recs[k]);
    puts[k] = &recs[k];
    fs[k++] = f;
  }
  memset(&b, 0, sizeof(b));
  b.put_files = puts;
  b.n_put_files = k;
  b.next_id = t->next_id;
  if ((rc = tdm_store_commit(t->store, &b)) != 0) {
    /* Said by the store, naming it. Nothing of theirs was handed over: the
       pass ends as after a failed checkpoint, and they wait. */
    t->checkpoint_rc = rc;
    t->stats.checkpoint_errors++;
    goto out;
  }
  for (size_t i = 0; i < k; i++) {
    tdm_file_t *f = fs[i];
    /* The bookmark the store holds now, where a rollback goes back to;
       the record stays dirty for the checkpoint that moves it. */
    f->rec.offset = f->durable_offset = recs[i].offset;
    f->rec.marker = f->durable_marker = recs[i].marker;
    f->rec.marker_len = f->durable_marker_len = recs[i].marker_len;
    tdm__set_fresh(t, f, 0);
  }
  /* Pages of the records' tree this commit passed: not kept resident. */
  tdm_store_shed_map(t->store);
  tdm__debug(&t->log, "%zu new file record%s made durable", k,
             k == 1 ? "" : "s");
out:
  free(recs);
  free(fs);
  free(puts);
  return rc;
}

/* The checkpoint, timed for the metrics; then t->checkpointed. */
int tdm__checkpoint(tdm_t *t) {
  struct timespec a, b;
  int rc;

  clock_gettime(CLOCK_MONOTONIC, &a);
  rc = checkpoint(t);
  clock_gettime(CLOCK_MONOTONIC, &b);
  t->checkpoint_ns_sum += (uint64_t)((int64_t)(b.tv_sec - a.tv_sec) *
                                         1000000000 +
                                     (b.tv_nsec - a.tv_nsec));
  t->checkpoint_ns_count++;
  if (t->checkpointed != NULL)
    t->checkpointed(t);
  return rc;
}

int tdm__checkpoint_maybe(tdm_t *t) {
  if (!t->need_checkpoint)
    return 0;
  /* While a processor defers checkpoints, only the clock asks again. */
  if ((t->checkpoint_deferred > 0 ||
       (t->bytes_since_checkpoint < TDM_CHECKPOINT_BYTES &&
        t->files.n < t->hot_floor + TDM_CHECKPOINT_FILES)) &&
      tdm__now_ms() - t->last_checkpoint_ms < t->opts.checkpoint_ms)
    return 0;
  return tdm__checkpoint(t);
}

int tdm__deliver_checkpointing(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c) {
  tdm_delivery_t d;

  memset(&d, 0, sizeof(d));
  return tdm__deliver_checkpointing_d(t, f, c, &d);
}

int tdm__deliver_checkpointing_d(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c,
                                 tdm_delivery_t *d) {
  int rc;

  /* Record ids are built from the file's id and generation: both are
     durable before the first of them leaves. */
  if (f->fresh && (rc = tdm__register(t)) != 0)
    return rc;
  while ((rc = tdm__deliver(t, f, c, d)) == TDM__STALLED) {
    uint64_t done = t->stats.checkpoints;
    /* A long stall must not keep what was delivered before it out of the
       store. A failed checkpoint rolled everything back: the pass ends. */
    if ((rc = tdm__checkpoint_maybe(t)) != 0)
      return rc;
    /* Every processor committed: they are moving, slowly, not stuck. */
    if (t->stats.checkpoints != done)
      d->since_ms = 0;
  }
  return rc;
}
