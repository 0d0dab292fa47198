/*
 * mode.h: what differs between tail mode and whole mode, as a table of
 * operations the mode-neutral modules (engine/reconcile.c,
 * engine/checkpoint.c) dispatch through instead of calling a mode by name.
 *
 * One table per mode: tdm__mode_tail (engine/reconcile.c) and
 * tdm__mode_whole (engine/whole.c). tdm_open (api.c) points t->mode at the
 * one opts.mode names, before anything else can run. Every operation runs on
 * the thread that runs the pass (tdm_run_once's caller, or the worker after
 * tdm_start), like the rest of the engine. A NULL operation means "nothing to
 * do" for that mode; callers check before calling.
 */
#ifndef TDM_MODE_H
#define TDM_MODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/filetable.h"
#include "state/store.h"
#include "tidemark.h"

#define TDM_HINT_COMPLETE 0x1u /* renamed into the tree: complete if it
                                  holds still while hashed */
#define TDM_HINT_CLOSED 0x2u   /* closed by a writer: complete if nobody has
                                  it open for writing any more */

typedef struct tdm_mode_ops {
  /* Look at the regular file at `path` (its lstat `lst`, TDM_HINT_* bits in
     `hints`) after tdm__look has left out our own outputs. `path` and `lst`
     are borrowed for the call. Returns what tdm__look returns (reconcile.h):
     0 to go on, or TDM_ESTOPPED, -ENOMEM, a failed checkpoint's code (or a
     code tdm__whole_poll returns) to end the pass. Never NULL. */
  int (*look)(tdm_t *t, const char *path, const struct stat *lst,
              unsigned hints);
  /* `f` leaves the file table (tdm__forget): drop what the mode remembers of
     it. `f` is still valid during the call and freed after it. */
  void (*forget)(tdm_t *t, tdm_file_t *f);
  /* Checkpoint: the extra records the mode writes in the store transaction.
     Sets *out to a malloc'ed array the caller frees (NULL when none or out
     of memory, then 0 is returned) and returns its length. */
  size_t (*batch)(tdm_t *t, tdm_store_hash_t **out);
  /* Checkpoint: the transaction was committed (ok = 1: called last, once
     every dirty record is durable; whole mode acts on --on-done/--on-failed
     here) or rolled back (ok = 0); what batch handed out is the store's
     now, or will be asked for again. */
  void (*committed)(tdm_t *t, int ok);
  /* The start of every pass, once or live (tdm__pass_prepare): act on what
     a kill -9 left undone (whole mode: --on-done/--on-failed for outcomes
     that were durable but not acted on). */
  void (*resume)(tdm_t *t);
  /* Collect the outcomes of work handed over and not answered yet (whole
     mode: pending file() calls); with `wait_ms`, block that long for the
     first. Returns 0 or what ends the pass. Only called while
     t->n_inflight > 0. */
  int (*poll)(tdm_t *t, int wait_ms);
  /* Look again at the files waiting (f->waiting: settling, a compressed file
     still being written, an open multiline record); both modes use
     tdm__recheck_waiting (reconcile.h). Returns 0 or what ends the pass.
     Only called while t->n_waiting > 0. */
  int (*recheck)(tdm_t *t);
  /* Hand over the bytes of `f`, whose reading a look put off (tdm__defer)
     until tdm__flush_fresh made its record durable: tail mode reads it
     through the descriptor held since, whole mode delivers the content it
     hashed then (each looks at it again if that cannot be). Returns what
     look returns. Never NULL. */
  int (*deferred)(tdm_t *t, tdm_file_t *f);
  /* The milliseconds until the first settling file may be complete (0: none
     is settling). */
  uint64_t (*next_settle_ms)(const tdm_t *t);
  /* tdm_close: free what the mode holds in struct tdm_s. */
  void (*free)(tdm_t *t);
} tdm_mode_ops_t;

extern const tdm_mode_ops_t tdm__mode_tail;  /* engine/reconcile.c */
extern const tdm_mode_ops_t tdm__mode_whole; /* engine/whole.c */

#endif /* TDM_MODE_H */
