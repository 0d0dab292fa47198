/*
 * hashmap.c: the intrusive chained hash table (see hashmap.h).
 */
#include "base/hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <xxh_x86dispatch.h>

#define INITIAL_BUCKETS 64u

uint64_t tdm__hash_u64(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

uint64_t tdm__hash_bytes(const void *data, size_t len) {
  return XXH3_64bits(data, len);
}

void tdm__hmap_free(tdm_hmap_t *m) {
  free(m->buckets);
  m->buckets = NULL;
  m->n_buckets = m->n = 0;
}

static tdm_hnode_t **bucket(const tdm_hmap_t *m, uint64_t hash) {
  return &m->buckets[hash & (m->n_buckets - 1)];
}

/* Double the buckets (or make the first ones) and move every node over. */
static int grow(tdm_hmap_t *m) {
  size_t n = m->n_buckets ? m->n_buckets * 2 : INITIAL_BUCKETS;
  tdm_hmap_t bigger = {calloc(n, sizeof(tdm_hnode_t *)), n, m->n};

  if (bigger.buckets == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < m->n_buckets; i++)
    while (m->buckets[i] != NULL) {
      tdm_hnode_t *node = m->buckets[i], **b;
      m->buckets[i] = node->next;
      b = bucket(&bigger, node->hash);
      node->next = *b;
      *b = node;
    }
  free(m->buckets);
  *m = bigger;
  return 0;
}

int tdm__hmap_insert(tdm_hmap_t *m, tdm_hnode_t *node, uint64_t hash) {
  tdm_hnode_t **b;

  if (m->n >= m->n_buckets && grow(m) != 0)
    return -ENOMEM;
  node->hash = hash;
  b = bucket(m, hash);
  node->next = *b;
  *b = node;
  m->n++;
  return 0;
}

void tdm__hmap_remove(tdm_hmap_t *m, tdm_hnode_t *node) {
  tdm_hnode_t **pp = bucket(m, node->hash);
  while (*pp != node)
    pp = &(*pp)->next;
  *pp = node->next;
  node->next = NULL;
  m->n--;
}

static tdm_hnode_t *same_hash(tdm_hnode_t *node, uint64_t hash) {
  while (node != NULL && node->hash != hash)
    node = node->next;
  return node;
}

tdm_hnode_t *tdm__hmap_first(const tdm_hmap_t *m, uint64_t hash) {
  if (m->n_buckets == 0)
    return NULL;
  return same_hash(*bucket(m, hash), hash);
}

tdm_hnode_t *tdm__hmap_next(const tdm_hnode_t *node) {
  return same_hash(node->next, node->hash);
}

void tdm__hmap_walk(tdm_hmap_t *m, void (*fn)(tdm_hnode_t *node, void *arg),
                    void *arg) {
  for (size_t i = 0; i < m->n_buckets; i++)
    for (tdm_hnode_t *node = m->buckets[i], *next; node != NULL; node = next) {
      next = node->next;
      fn(node, arg);
    }
}
