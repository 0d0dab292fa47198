/*
 * pass.c: one pass over the sources (tdm_run_once), and what every pass,
 * once or live, checks and sets up before it starts.
 */
#include "engine/files.h"
#include "engine/pass.h"

#include "base/clock.h"
#include "engine/chain.h"
#include "engine/checkpoint.h"
#include "engine/engine.h"
#include "engine/outputs.h"
#include "engine/progress.h"
#include "engine/reader.h"
#include "engine/reconcile.h"
#include "engine/mode.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <time.h>

int tdm__pass_prepare(tdm_t *t) {
  if (t->n_procs == 0) {
    tdm__error(&t->log, "no processor to deliver to (--processor)");
    return TDM_EUSAGE;
  }
  if (t->n_roots == 0) {
    tdm__error(&t->log, "no source directory to read");
    return TDM_EUSAGE;
  }
  if (tdm__outputs_collect(t) != 0)
    return -ENOMEM;
  if (t->buf == NULL && posix_memalign((void **)&t->buf, 4096, t->buf_cap) != 0) {
    t->buf = NULL;
    return -ENOMEM;
  }
  t->last_checkpoint_ms = tdm__now_ms();
  if (t->mode->resume != NULL)
    t->mode->resume(t); /* e.g. outcomes a kill -9 left unacted on */
  return 0;
}

/* Files waiting to be complete that this pass must wait for: in whole
   mode all; in tail mode the compressed ones (a multiline record that
   waits for its timeout is left for the next run, as it was). */
static size_t settling(const tdm_t *t) {
  size_t n = 0;
  if (t->opts.mode == TDM_MODE_WHOLE)
    return t->n_waiting;
  for (size_t i = 0; i < t->files.n && n < t->n_waiting; i++)
    n += t->files.all[i]->waiting && t->files.all[i]->settling;
  return n;
}

/*
 * The end of a pass: wait for files still settling (whole mode's files, a
 * compressed file in tail mode, which is read only once complete), at most
 * a few settle periods: one that never holds still is left for the next
 * run, and said, by name.
 */
static int wait_settling(tdm_t *t) {
  uint64_t waited = 0, limit = 3 * (uint64_t)t->opts.settle_ms + 1000;
  uint64_t ms;
  char q[PATH_MAX];

  while (settling(t) > 0 && !t->stop && waited < limit &&
         (ms = t->mode->next_settle_ms(t)) > 0) {
    struct timespec ts;
    if (ms > limit - waited)
      ms = limit - waited;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
    waited += ms;
    int r = t->mode->recheck(t);
    if (r < 0)
      return r;
  }
  if (settling(t) > 0) {
    size_t n = settling(t);
    tdm__warn(&t->log, "%zu file%s still being written: left for the next run",
              n, n == 1 ? " is" : "s are");
    for (size_t i = 0; i < t->files.n; i++)
      if (t->files.all[i]->waiting &&
          (t->opts.mode == TDM_MODE_WHOLE || t->files.all[i]->settling))
        tdm__warn(&t->log, "%s: still being written: not read in this run",
                  tdm__quote(t->files.all[i]->path, q, sizeof(q)));
  }
  return 0;
}

/* The end of a pass in a mode that waits for outcomes (whole mode): the
   files settling, then the outcomes of pending file() calls. */
static int finish_whole(tdm_t *t, int rc) {
  int r = wait_settling(t);
  if (r < 0)
    return r;
  while (t->n_inflight > 0 && !t->stop) {
    r = t->mode->poll(t, 100);
    if (r < 0)
      return r;
  }
  if (t->stats.files_failed > 0 && rc == 0)
    rc = TDM_EPARTIAL;
  return rc;
}

/* Did a processor's failure leave a file failed? (Tail mode: a file whose
   refused record was set aside, or that went through on a later try, is
   not failed any more; whole mode counts failures as they happen.) */
static int left_failed(const tdm_t *t) {
  if (t->opts.mode != TDM_MODE_TAIL)
    return t->stats.proc_failures > 0;
  for (size_t i = 0; i < t->files.n; i++)
    if (t->files.all[i]->rec.state == TDM_FILE_FAILED)
      return 1;
  return 0;
}

int tdm__pass_once(tdm_t *t) {
  int rc;

  if (t->gave_up) { /* the previous pass gave up: this one starts afresh */
    t->gave_up = 0;
    t->stop = 0;
  }
  if ((rc = tdm__pass_prepare(t)) != 0)
    return rc;
  /* New processors' first restore points go to the store before any data. */
  if (t->need_checkpoint && (rc = tdm__checkpoint(t)) != 0)
    return rc;
  if ((rc = tdm__progress_begin(t)) != 0)
    return rc;
  tdm__suspects_release(t);
  t->rolled_back = 0;
  rc = tdm__reconcile_all(t, NULL);
  /* A processor's refusal rolled every file back to its bookmark, those
     already read in this pass too: they are read again (each refusal is
     settled where it happened, so this ends). */
  for (int again = 0; again < 16 && t->rolled_back && !t->stop &&
                      (rc == 0 || rc == TDM_EPARTIAL);
       again++) {
    t->rolled_back = 0;
    rc = tdm__reconcile_all(t, NULL);
  }
  /* Each scan reads the fresh files it put off; none is left unread by
     the pass whatever ended a scan. */
  if (t->n_deferred > 0 && (rc == 0 || rc == TDM_EPARTIAL)) {
    int r = tdm__flush_fresh(t);
    if (r != 0)
      rc = r;
  }
  if (t->mode->poll != NULL && (rc == 0 || rc == TDM_EPARTIAL)) {
    rc = finish_whole(t, rc);
  } else if (settling(t) > 0 && (rc == 0 || rc == TDM_EPARTIAL)) {
    int r = wait_settling(t); /* fresh compressed files in tail mode */
    if (r < 0)
      rc = r;
  }
  tdm__progress_end(t);
  tdm__caught_up(t);
  if (t->need_checkpoint || t->n_dead > 0) {
    int crc = tdm__checkpoint(t);
    /* What acting on its outcomes changed (whole mode: files deleted or
       moved are gone now) goes into one more. */
    if (crc == 0 && t->need_checkpoint && t->opts.mode == TDM_MODE_WHOLE)
      crc = tdm__checkpoint(t);
    if (crc == 0 && t->need_checkpoint)
      crc = TDM_EPROC; /* a processor could not commit (logged) */
    if (rc == 0 || rc == TDM_ESTOPPED || rc == TDM_EPARTIAL)
      rc = crc != 0 ? crc : rc;
  }
  tdm__rest(t);
  if (rc == 0 && (t->stats.file_errors > 0 || left_failed(t)))
    rc = TDM_EPARTIAL;
  if (t->gave_up && (rc == 0 || rc == TDM_ESTOPPED || rc == TDM_EPARTIAL))
    rc = TDM_EPROC;
  return rc;
}
