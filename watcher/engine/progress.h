/*
 * progress.h: tdm_run_once()'s progress (options.progress_cb): totals from a
 * stat-only scan before the pass, then calls at most every progress_ms while
 * it runs. All on the thread running the pass.
 */
#ifndef TDM_PROGRESS_H
#define TDM_PROGRESS_H

#include "tidemark.h"

/* What a pass with a progress callback keeps (t->progress). */
typedef struct tdm_progress_state {
  tdm_progress_t p;
  uint64_t start_ms, last_ms;
  uint64_t bytes0;        /* t->stats.bytes when the pass began */
} tdm_progress_state_t;

/* Measure the totals (a scan that opens nothing) and start reporting. Does
   nothing without a callback. 0 or -ENOMEM. */
int tdm__progress_begin(tdm_t *t);
/* A file of the pass was looked at; `changed`: it was opened (it had
   something new). Reports if it is time. */
void tdm__progress_file(tdm_t *t, int changed);
/* Bytes moved: report if it is time. */
void tdm__progress_tick(tdm_t *t);
/* The final report; frees what begin allocated. */
void tdm__progress_end(tdm_t *t);

#endif /* TDM_PROGRESS_H */
