/* test-hashmap.c: the intrusive hash table (watcher/base/hashmap.c). */
#include "test.h"
#include "base/hashmap.h"

#include <stdlib.h>

typedef struct item {
  tdm_hnode_t node;
  uint64_t key;
  int visits;
} item_t;

static item_t *get(tdm_hmap_t *m, uint64_t key) {
  uint64_t h = tdm__hash_u64(key);
  for (tdm_hnode_t *n = tdm__hmap_first(m, h); n; n = tdm__hmap_next(n)) {
    item_t *it = tdm__container_of(n, item_t, node);
    if (it->key == key)
      return it;
  }
  return NULL;
}

static void visit(tdm_hnode_t *n, void *arg) {
  (void)arg;
  tdm__container_of(n, item_t, node)->visits++;
}

static void drop_odd(tdm_hnode_t *n, void *arg) {
  if (tdm__container_of(n, item_t, node)->key % 2 == 1)
    tdm__hmap_remove(arg, n);
}

/* Many inserts (through several doublings), lookups, a walk that visits
   each once, removal during a walk. */
TEST(grow_find_walk_remove) {
  enum { N = 20000 };
  item_t *items = calloc(N, sizeof(*items));
  tdm_hmap_t m = TDM_HMAP_INIT;

  for (uint64_t i = 0; i < N; i++) {
    items[i].key = i * 7919;
    ASSERT_EQ(tdm__hmap_insert(&m, &items[i].node, tdm__hash_u64(items[i].key)), 0);
  }
  ASSERT_EQ(m.n, N);
  ASSERT_GE(m.n_buckets, N);
  for (uint64_t i = 0; i < N; i++)
    ASSERT(get(&m, i * 7919) == &items[i]);
  ASSERT_NULL(get(&m, 3)); /* not a multiple of 7919 */

  tdm__hmap_walk(&m, visit, NULL);
  for (size_t i = 0; i < N; i++)
    ASSERT_EQ(items[i].visits, 1);

  tdm__hmap_walk(&m, drop_odd, &m);
  ASSERT_EQ(m.n, N / 2);
  for (uint64_t i = 0; i < N; i++)
    ASSERT((get(&m, i * 7919) != NULL) == (i % 2 == 0));

  tdm__hmap_free(&m);
  ASSERT_EQ(m.n, 0);
  ASSERT_NULL(tdm__hmap_first(&m, 1));
  free(items);
}

/* Entries with the same hash are told apart by the caller's key; first/next
   skip entries of other hashes that share a bucket. */
TEST(same_hash_chain) {
  item_t a = {.key = 1}, b = {.key = 2}, c = {.key = 3};
  tdm_hmap_t m = TDM_HMAP_INIT;
  int n = 0;

  ASSERT_EQ(tdm__hmap_insert(&m, &a.node, 42), 0);
  ASSERT_EQ(tdm__hmap_insert(&m, &b.node, 42), 0);
  ASSERT_EQ(tdm__hmap_insert(&m, &c.node, 42 + 64 * 1024), 0); /* same bucket */
  for (tdm_hnode_t *x = tdm__hmap_first(&m, 42); x; x = tdm__hmap_next(x)) {
    ASSERT_EQ(x->hash, 42);
    n++;
  }
  ASSERT_EQ(n, 2);
  tdm__hmap_remove(&m, &a.node);
  ASSERT(tdm__hmap_first(&m, 42) == &b.node);
  ASSERT_NULL(tdm__hmap_next(&b.node));
  tdm__hmap_free(&m);
}
