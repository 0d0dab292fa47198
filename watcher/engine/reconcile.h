/*
 * reconcile.h: a file found on disk against the store: unchanged, new,
 * renamed, truncated, rewritten, gone.
 */
#ifndef TDM_RECONCILE_H
#define TDM_RECONCILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/filetable.h"
#include "tidemark.h"

/*
 * Look at the regular file at `path` (its lstat `lst`): skip it if unchanged,
 * else open it (or use the descriptor held for it), check its identity and
 * read what is new. Returns 0 to go on (a file's own failure is logged and
 * counted), or a negative code that ends the pass: TDM_ESTOPPED, -ENOMEM, or
 * a failed checkpoint's code.
 */
int tdm__look(tdm_t *t, const char *path, const struct stat *lst,
              unsigned hints);

/*
 * Make the records of the fresh files durable in one store commit
 * (tdm__register), then look again at those deferred (tdm__defer): their
 * bytes are handed over now. Every batch of looks ends with it (a scan, the
 * waiting files, run's events) and tdm__look calls it when many are
 * deferred. Returns 0 or what ends the pass (see tdm__look).
 */
int tdm__flush_fresh(tdm_t *t);

/*
 * `f` is gone from the tree (its name leads elsewhere or nowhere) and no
 * descriptor is held for it: forget it. If bytes were written to it that
 * were never read (f->stale, or a bookmark short of its last size), they are
 * out of reach: warn, naming it, and count it (stats.lost_files, and the
 * store's total that `status` shows). Returns what tdm__forget returns.
 */
int tdm__lost(tdm_t *t, tdm_file_t *f);

/* Read a file through its held descriptor (moved away, deleted, or with more
   to read than one look's budget); forget it once a deleted one is drained. */
int tdm__drain(tdm_t *t, tdm_file_t *f);

/* Close idle descriptors while more than t->max_open are held. */
void tdm__trim_fds(tdm_t *t);

/*
 * Look again at the files waiting (f->waiting: whole mode's settling files;
 * tail mode's compressed files still being written and open multiline
 * records): each mode's recheck() (engine/mode.h). Returns 0 or what ends
 * the pass (see tdm__look).
 */
int tdm__recheck_waiting(tdm_t *t);

/* The milliseconds until the first file still settling (f->waiting) may be
   complete: its mtime plus --settle-ms; 0 when none is settling. */
uint64_t tdm__next_settle_ms(const tdm_t *t);

/*
 * Scan every source against the store and forget what is gone. `on_dir` as
 * in tdm_scan_t. Returns 0, TDM_EPARTIAL when a source could not be read, or
 * what ended the pass (see tdm__look).
 */
int tdm__reconcile_all(tdm_t *t, int (*on_dir)(void *arg, const char *path));

/* The same for the directory `path` (absolute) of source `root` and what
   lies under it; a directory that vanished meanwhile is not an error. */
int tdm__reconcile_dir(tdm_t *t, size_t root, const char *path,
                       int (*on_dir)(void *arg, const char *path));

#endif /* TDM_RECONCILE_H */
