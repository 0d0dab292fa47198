/*
 * whole.h: whole mode: completeness, content hashes, duplicates, per-file
 * hand-over and outcomes.
 */
#ifndef TDM_WHOLE_H
#define TDM_WHOLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/filetable.h"
#include "engine/mode.h"
#include "state/store.h"
#include "tidemark.h"

/* Whole mode's operations, for t->mode (engine/mode.h says what each does).
   Everything outside whole.c reaches them through t->mode. */
extern const tdm_mode_ops_t tdm__mode_whole;
/* Whole mode's look (tdm_mode_ops_t.look). */
int tdm__whole_look(tdm_t *t, const char *path, const struct stat *lst,
                    unsigned hints);
/* Collect outcomes of pending file() calls; with `wait_ms`, block that long
   for the first. Outcomes collected are made durable at once, all in one
   checkpoint. Returns 0 or what ends the pass. */
int tdm__whole_poll(tdm_t *t, int wait_ms);
/* tdm_mode_ops_t.batch, .committed and .free: the done hashes to write,
   forgetting them after a commit (ok) or a rollback (!ok), freeing them. */
size_t tdm__whole_batch(tdm_t *t, tdm_store_hash_t **out);
void tdm__whole_committed(tdm_t *t, int ok);
/* tdm_mode_ops_t.resume: act on outcomes a kill -9 left unacted on, then
   forget the gone files due (--forget-after). */
void tdm__whole_resume(tdm_t *t);
void tdm__whole_free(tdm_t *t);
/* tdm_mode_ops_t.forget: a file leaves the table: drop what whole mode
   remembers of it (its uncommitted hash, its place among those in flight). */
void tdm__whole_forget(tdm_t *t, tdm_file_t *f);

#endif /* TDM_WHOLE_H */
