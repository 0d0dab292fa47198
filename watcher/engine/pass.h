/*
 * pass.h: one pass over the sources, and the checks before any pass.
 */
#ifndef TDM_PASS_H
#define TDM_PASS_H

#include "tidemark.h"

/* Check that a pass can run (a processor, a source) and allocate the read
   buffer; act on outcomes a kill -9 left unacted on. 0, TDM_EUSAGE (said),
   or -ENOMEM. Called by tdm_run_once and tdm_start. */
int tdm__pass_prepare(tdm_t *t);

/* One pass (tdm_run_once without a live watch): every source against the
   store, whole mode's settling files and pending outcomes waited for, then
   the final checkpoint. Returns as tdm_run_once. */
int tdm__pass_once(tdm_t *t);

#endif /* TDM_PASS_H */
