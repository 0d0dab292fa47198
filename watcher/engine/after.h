/*
 * after.h: whole mode's --on-done delete|move:DIR and --on-failed move:DIR.
 */
#ifndef TDM_AFTER_H
#define TDM_AFTER_H

#include "tidemark.h"

/*
 * Act on every file whose outcome is durable (done or duplicate: --on-done;
 * failed: --on-failed) and that still sits in the tree unchanged (same
 * inode, size and mtime). Called by whole mode's committed() after each
 * committed checkpoint, and by tdm__pass_prepare at the start of a pass
 * (outcomes a kill -9 left unacted on). Never fails: an error is logged
 * naming the file, the option and the directory, and counted
 * (stats.after_errors).
 */
void tdm__after_durable(tdm_t *t);

#endif /* TDM_AFTER_H */
