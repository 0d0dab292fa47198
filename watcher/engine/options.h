/*
 * options.h: the record options, checked and taken at tdm_open:
 * --multiline-start (compiled), --on-done, --on-failed (directories
 * resolved).
 */
#ifndef TDM_OPTIONS_H
#define TDM_OPTIONS_H

#include "tidemark.h"

/* Check and take them (copies the strings into t). TDM_EUSAGE naming the
   option (logged), -ENOMEM. */
int tdm__options_open(tdm_t *t, const tdm_options_t *o);
/* Free what tdm__options_open took. Accepts a t it never ran on. */
void tdm__options_free(tdm_t *t);
/* A source `root` (resolved) must not hold the --on-done/--on-failed
   directories (moved files would be found again). TDM_EUSAGE, logged. */
int tdm__options_check_source(tdm_t *t, const char *root);

#endif /* TDM_OPTIONS_H */
