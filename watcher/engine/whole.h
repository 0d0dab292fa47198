/*
 * whole.h: whole mode: completeness, content hashes, duplicates, per-file
 * hand-over and outcomes.
 */
#ifndef TDM_WHOLE_H
#define TDM_WHOLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base/hashmap.h"
#include "core/filetable.h"
#include "store.h"
#include "tidemark.h"

/* Content hashes not in the store yet: of files done since the last
   checkpoint, and of files in flight (so a copy that lands meanwhile is a
   duplicate). Keyed by the hash's first 8 bytes (XXH3: already mixed). */
typedef struct tdm_hashset_entry {
  tdm_hnode_t node;
  uint8_t hash[16];
  uint64_t id;            /* the file it belongs to */
  int done;               /* to be written at the next checkpoint */
} tdm_hashset_entry_t;

typedef struct tdm_hashset {
  tdm_hmap_t map;         /* of tdm_hashset_entry_t */
} tdm_hashset_t;

#define TDM_HINT_COMPLETE 0x1u /* renamed into the tree: complete if it
                                  holds still while hashed */
#define TDM_HINT_CLOSED 0x2u   /* closed by a writer: complete if nobody has
                                  it open for writing any more */

/* Whole mode's tdm__look (see reconcile.c). */
int tdm__whole_look(tdm_t *t, const char *path, const struct stat *lst,
                    unsigned hints);
/* Collect outcomes of pending file() calls; with `wait_ms`, block that long
   for the first. Outcomes collected are made durable at once, all in one
   checkpoint. Returns 0 or what ends the pass. */
int tdm__whole_poll(tdm_t *t, int wait_ms);
/* Look again at files that were settling. */
int tdm__whole_recheck(tdm_t *t);
/* A file is settling (whole), or a compressed one is still being written
   (tail): tdm__whole_recheck looks at it again. */
void tdm__set_waiting(tdm_t *t, tdm_file_t *f, int on);
/* The milliseconds until the first settling file may be complete (0: none
   settling). */
uint64_t tdm__whole_next_settle_ms(const tdm_t *t);
/* Checkpoint helpers: the done hashes to write, and forgetting them after
   a commit (ok) or a rollback (!ok). */
size_t tdm__whole_batch(tdm_t *t, tdm_store_hash_t **out);
void tdm__whole_committed(tdm_t *t, int ok);
void tdm__whole_free(tdm_t *t);
/* A file leaves the table: drop what whole mode remembers of it. */
void tdm__whole_forget(tdm_t *t, tdm_file_t *f);

#endif /* TDM_WHOLE_H */
