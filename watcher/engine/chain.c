/*
 * chain.c: processor instances and the hand-over of chunks.
 *
 * A chunk counts as delivered only when every processor has accepted it; only
 * then does the file's position move (and, at the next checkpoint, its
 * bookmark). A processor that answers RETRY gets the same chunk again after a
 * backoff, and the processors that already took it are not asked again.
 *
 * A processor that answers FAIL or REJECT may have done part of the chunk
 * (rows written before the bad one): everything is rolled back to the last
 * checkpoint at once, as a crash would (tdm__rollback), before anything is
 * offered to it again. The reader then narrows down to the record refused
 * (engine/reader.c).
 */
#include "engine/chain.h"

#include "base/clock.h"
#include "engine/deadletter.h"
#include "engine/engine.h"
#include "engine/progress.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 10u
#define BACKOFF_MAX_MS 1000u

/* tdm_open_args_t.log: `arg` is the engine's log (it lives as long as t). */
static void proc_log(void *arg, int level, const char *line) {
  if (level < TDM_LOG_ERROR)
    level = TDM_LOG_ERROR;
  if (level > TDM_LOG_DEBUG)
    level = TDM_LOG_DEBUG;
  tdm__log(arg, (tdm_log_level_t)level, "%s", line);
}

int tdm__proc_open(tdm_t *t, tdm_proc_t *p) {
  char msg[TDM_MSG_MAX] = "";
  tdm_open_args_t a;
  int rc;

  if (p->desc == NULL || p->desc->open == NULL) {
    p->open = 1;
    return 0;
  }
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.mode = t->opts.mode;
  a.params = p->spec.params;
  a.n_params = p->spec.n_params;
  a.restore = p->blob_len > 0 ? p->blob : NULL;
  a.restore_len = p->blob_len;
  a.msg = msg;
  a.instance = tdm_store_instance(t->store);
  a.checkpoint_ms = t->opts.checkpoint_ms;
  a.log = proc_log;
  a.log_arg = &t->log;
  p->state = p->ctx; /* NULL but for tdm_add_processor_desc's */
  rc = p->desc->open(&p->state, &a);
  if (rc != TDM_PROC_OK) {
    msg[sizeof(msg) - 1] = '\0';
    tdm__error(&t->log, "processor '%s': %s", p->key,
               msg[0] ? msg : "open failed");
    return rc == TDM_PROC_UNAVAILABLE ? TDM_EPROC : TDM_EUSAGE;
  }
  p->open = 1;
  return 0;
}

void tdm__proc_close(tdm_proc_t *p) {
  if (p->open && p->desc != NULL && p->desc->close != NULL)
    p->desc->close(p->state);
  p->open = 0;
  p->state = NULL;
}

void tdm__caught_up(tdm_t *t) {
  if (!t->delivered_since_caught_up)
    return;
  t->delivered_since_caught_up = 0;
  for (size_t i = 0; i < t->n_procs; i++) {
    tdm_proc_t *p = &t->procs[i];
    char msg[TDM_MSG_MAX] = "";
    int rc;

    if (!p->open || p->desc == NULL || !TDM_PROCESSOR_HAS(p->desc, caught_up))
      continue;
    rc = p->desc->caught_up(p->state, msg);
    msg[sizeof(msg) - 1] = '\0';
    if (rc != TDM_PROC_OK)
      tdm__debug(&t->log, "processor '%s' could not hand over what it holds "
                 "yet%s%s (the next checkpoint does)", p->key,
                 msg[0] ? ": " : "", msg);
  }
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL); /* a signal cuts it short: fine, t->stop is checked */
}

int tdm__give_up(tdm_t *t, uint64_t since_ms, const char *path,
                 uint64_t offset, const char *key, const char *msg) {
  char q[PATH_MAX], at[64] = "";
  uint64_t waited;

  if (t->live != NULL || t->opts.retry_timeout_ms == 0 || since_ms == 0)
    return 0;
  waited = tdm__now_ms() - since_ms;
  if (waited < t->opts.retry_timeout_ms)
    return 0;
  if (offset != UINT64_MAX)
    snprintf(at, sizeof(at), " at offset %llu", (unsigned long long)offset);
  tdm__error(&t->log, "giving up on %s%s: processor '%s' still asks to retry "
             "after %llu ms%s%s (--retry-timeout-ms); its bookmark is kept, "
             "the next run delivers from there",
             tdm__quote(path, q, sizeof(q)), at, key,
             (unsigned long long)waited, msg[0] ? ": " : "", msg);
  t->gave_up = 1;
  t->stop = 1;
  return 1;
}

/* Records in a chunk, for the metrics: lines, or the chunk itself (bytes
   mode, whole files). */
static uint64_t count_records(const tdm_t *t, const tdm_chunk_t *c) {
  const char *p = c->data, *end = p + c->len;
  uint64_t n = 0;
  if (t->opts.records != TDM_RECORDS_LINES || t->opts.mode != TDM_MODE_TAIL)
    return 1;
  while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    n++;
    p++;
  }
  return n > 0 ? n : 1; /* a piece of an over-long record */
}

/* Offer the chunk to every processor that does not have it. 0 (each
   took it or asked to retry), or TDM_EPROC (one failed: said, marked). */
static int offer(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c,
                 tdm_delivery_t *d) {
  char q[PATH_MAX];

  for (size_t i = 0; i < t->n_procs; i++) {
    tdm_proc_t *p = &t->procs[i];
    char msg[TDM_MSG_MAX] = "";
    int rc;

    if (d->taken & (1ull << i))
      continue;
    if (!p->open && tdm__proc_open(t, p) != 0) {
      /* Not reopened after a rollback (a server down, say): like a
         RETRY, it is tried again after the backoff. */
      snprintf(msg, sizeof(msg), "could not be reopened from its last "
               "checkpoint");
      rc = TDM_PROC_RETRY;
    } else {
      rc = p->desc != NULL ? p->desc->process(p->state, c, msg)
                           : p->cb(p->cb_arg, c);
    }
    msg[sizeof(msg) - 1] = '\0';
    if (rc == TDM_PROC_OK) {
      d->taken |= 1ull << i;
      t->accepted = 1;
      p->m_bytes += c->len;
      if (t->count_records) {
        if (d->records == 0)
          d->records = count_records(t, c);
        p->m_records += d->records;
      }
    } else if (rc == TDM_PROC_RETRY) {
      t->stats.proc_retries++;
      if (d->since_ms == 0)
        d->since_ms = tdm__now_ms();
      memcpy(d->last_msg, msg, sizeof(d->last_msg));
      d->last_key = p->key;
      p->m_retries++;
      if (d->backoff == 0) /* once per chunk, not per attempt */
        tdm__warn(&t->log, "processor '%s' asks to retry %s at offset %llu%s%s",
                  p->key, tdm__quote(f->path, q, sizeof(q)),
                  (unsigned long long)c->offset, msg[0] ? ": " : "", msg);
    } else {
      char err[TDM_MSG_MAX + 64];
      int reject = rc == TDM_PROC_REJECT;
      t->stats.proc_failures++;
      p->m_failures++;
      snprintf(err, sizeof(err), "processor '%s' %s%s%s", p->key,
               reject ? "rejected a record" : "failed", msg[0] ? ": " : "",
               msg);
      tdm__log(&t->log, d->quiet ? TDM_LOG_DEBUG : TDM_LOG_ERROR,
               "%s at offset %llu: %s", tdm__quote(f->path, q, sizeof(q)),
               (unsigned long long)c->offset, err);
      d->fail_rc = reject ? TDM_PROC_REJECT : TDM_PROC_FAIL;
      d->fail_key = p->key;
      memcpy(d->fail_msg, msg, sizeof(d->fail_msg));
      f->rec.state = TDM_FILE_FAILED;
      tdm__file_set_error(f, err);
      f->dirty = 1;
      t->need_checkpoint = 1;
      /* It may have kept part of the chunk: back to the last restore point
         before it sees anything again. */
      d->rolled_all = tdm__rollback(t, 0);
      return TDM_EPROC;
    }
  }
  return 0;
}

int tdm__deliver(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c,
                 tdm_delivery_t *d) {
  /* Wide enough for any sane chain; tdm_add_processor refuses more. */
  uint64_t all = t->n_procs >= 64 ? ~0ull : (1ull << t->n_procs) - 1;
  int rc;

  for (;;) {
    if ((rc = offer(t, f, c, d)) != 0)
      return rc;
    if (d->taken == all) {
      tdm__progress_tick(t);
      t->delivered_since_caught_up = 1;
      return 0;
    }
    if (t->stop)
      return TDM_ESTOPPED;
    if (tdm__give_up(t, d->since_ms, f->path, c->offset,
                     d->last_key ? d->last_key : "", d->last_msg))
      return TDM_ESTOPPED;
    d->backoff = d->backoff == 0 ? BACKOFF_MIN_MS
                 : d->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                   : d->backoff * 2;
    sleep_ms(d->backoff);
    if (t->stop)
      return TDM_ESTOPPED;
    if (d->taken == 0)
      return TDM__STALLED;
  }
}

int tdm__rollback(tdm_t *t, int failed_checkpoint) {
  for (size_t i = 0; i < t->n_procs; i++) {
    tdm_proc_t *p = &t->procs[i];
    /* Only a processor that commits keeps durable state to go back to;
       the others (count, callbacks) carry on. */
    if (p->desc == NULL || p->desc->commit == NULL)
      continue;
    tdm__proc_close(p);
    if (tdm__proc_open(t, p) != 0)
      tdm__error(&t->log, "processor '%s' could not be reopened from its last "
                 "checkpoint", p->key);
  }
  /* Tail mode, and no processor accepted anything since the last
     checkpoint: reopened, they are where they were before the chunk that
     failed, and what moved files since (records set aside, truncations)
     is no processor's: it stays. */
  if (!failed_checkpoint && !t->accepted && t->opts.mode == TDM_MODE_TAIL)
    return 0;
  if (t->mode->committed != NULL)
    t->mode->committed(t, 0);
  for (size_t i = 0; i < t->files.n; i++) {
    tdm_file_t *f = t->files.all[i];
    if (f->pos != f->durable_offset)
      f->rec.mtime_ns = -1; /* not "unchanged": the next look reads again */
    f->pos = f->rec.offset = f->durable_offset;
    f->marker = f->rec.marker = f->durable_marker;
    f->marker_len = f->rec.marker_len = f->durable_marker_len;
    f->in_piece = 0;
  }
  tdm__deadletter_rollback(t);
  t->accepted = 0;
  t->unsaved_dead = 0;
  if (failed_checkpoint)
    t->stats.checkpoint_errors++;
  return 1;
}
