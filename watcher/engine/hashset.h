/*
 * hashset.h: the type of whole mode's table of hashes not in the store yet,
 * held in struct tdm_s (engine/engine.h). Only engine/whole.c touches it.
 */
#ifndef TDM_HASHSET_H
#define TDM_HASHSET_H

#include <stdint.h>

#include "base/hashmap.h"

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

#endif /* TDM_HASHSET_H */
