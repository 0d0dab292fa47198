/*
 * hashmap.h: the one hash table of the engine (file table, watch table,
 * whole mode's uncommitted hashes, the count processor's files).
 *
 * Intrusive and chained, as the Linux kernel's hlist: the caller embeds a
 * tdm_hnode_t in its own struct, computes the hash (tdm__hash_u64,
 * tdm__hash_bytes), and compares its own keys while it walks the chain of a
 * hash. The table owns only its buckets: it never allocates per entry and
 * never frees an entry. It doubles its buckets when it holds more entries
 * than buckets, reusing each node's stored hash.
 *
 *     for (tdm_hnode_t *n = tdm__hmap_first(&m, h); n; n = tdm__hmap_next(n))
 *       if (tdm__container_of(n, watch_t, node)->wd == wd) ...
 */
#ifndef TDM_HASHMAP_H
#define TDM_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tdm_hnode {
  struct tdm_hnode *next; /* private */
  uint64_t hash;          /* read-only: the hash it was inserted with */
} tdm_hnode_t;

typedef struct tdm_hmap {
  tdm_hnode_t **buckets;  /* private; NULL until the first insert */
  size_t n_buckets;       /* private; a power of two */
  size_t n;               /* read-only: entries */
} tdm_hmap_t;

#define TDM_HMAP_INIT {NULL, 0, 0}

/* The struct of `type` whose `member` is at `ptr`. */
#define tdm__container_of(ptr, type, member) \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Free the buckets (not the entries) and empty the table. */
void tdm__hmap_free(tdm_hmap_t *m);

/* Insert `node` under `hash`. -ENOMEM (growing failed): not inserted. */
int tdm__hmap_insert(tdm_hmap_t *m, tdm_hnode_t *node, uint64_t hash);

/* Remove `node`, which must be in `m`. Cannot fail. */
void tdm__hmap_remove(tdm_hmap_t *m, tdm_hnode_t *node);

/* The first node inserted under `hash` (most recent first), or NULL; then
   tdm__hmap_next for the others. Entries of other hashes are skipped. */
tdm_hnode_t *tdm__hmap_first(const tdm_hmap_t *m, uint64_t hash);
tdm_hnode_t *tdm__hmap_next(const tdm_hnode_t *node);

/* Call fn on every node, in no order. fn may remove (and free) the node it
   is given, and no other. */
void tdm__hmap_walk(tdm_hmap_t *m, void (*fn)(tdm_hnode_t *node, void *arg),
                    void *arg);

/* A well-mixed hash of an integer (splitmix64's finaliser). */
uint64_t tdm__hash_u64(uint64_t x);

/* XXH3-64 of `len` bytes. */
uint64_t tdm__hash_bytes(const void *data, size_t len);

#endif /* TDM_HASHMAP_H */
