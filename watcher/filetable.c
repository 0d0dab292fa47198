/*
 * filetable.c: every tracked file in memory, found by (dev, ino).
 *
 * A vector of pointers (for walks) plus chained buckets (for lookups). The
 * vector index lives in the file, so removal is a swap with the last entry.
 */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 1024u

static size_t bucket_of(const tdm_filetable_t *ft, uint64_t dev, uint64_t ino) {
  /* splitmix64 finaliser: inode numbers are dense, spread them. */
  uint64_t h = ino ^ (dev * 0x9e3779b97f4a7c15ull);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return (size_t)h & (ft->n_buckets - 1);
}

void tdm__filetable_init(tdm_filetable_t *ft) { memset(ft, 0, sizeof(*ft)); }

static void file_free(tdm_file_t *f) {
  free(f->path);
  free(f->error);
  free(f);
}

void tdm__filetable_free(tdm_filetable_t *ft) {
  for (size_t i = 0; i < ft->n; i++)
    file_free(ft->all[i]);
  free(ft->all);
  free(ft->buckets);
  memset(ft, 0, sizeof(*ft));
}

tdm_file_t *tdm__filetable_get(const tdm_filetable_t *ft, uint64_t dev,
                               uint64_t ino) {
  if (ft->n_buckets == 0)
    return NULL;
  for (tdm_file_t *f = ft->buckets[bucket_of(ft, dev, ino)]; f; f = f->next)
    if (f->rec.ino == ino && f->rec.dev == dev)
      return f;
  return NULL;
}

/* Double the buckets (or create them) and rehash. */
static int grow_buckets(tdm_filetable_t *ft) {
  size_t n = ft->n_buckets ? ft->n_buckets * 2 : INITIAL_BUCKETS;
  tdm_file_t **b = calloc(n, sizeof(*b));
  if (b == NULL)
    return -ENOMEM;
  free(ft->buckets);
  ft->buckets = b;
  ft->n_buckets = n;
  for (size_t i = 0; i < ft->n; i++) {
    tdm_file_t *f = ft->all[i];
    size_t k = bucket_of(ft, f->rec.dev, f->rec.ino);
    f->next = b[k];
    b[k] = f;
  }
  return 0;
}

int tdm__file_set_path(tdm_file_t *f, const char *path) {
  char *p = strdup(path);
  if (p == NULL)
    return -ENOMEM;
  free(f->path);
  f->path = p;
  f->rec.path = p;
  return 0;
}

void tdm__file_set_error(tdm_file_t *f, const char *msg) {
  free(f->error);
  f->error = msg != NULL ? strdup(msg) : NULL;
  f->rec.error = f->error;
}

tdm_file_t *tdm__filetable_add(tdm_filetable_t *ft, const tdm_file_rec_t *rec) {
  tdm_file_t *f;
  size_t k;

  if (ft->n == ft->cap) {
    size_t cap = ft->cap ? ft->cap * 2 : 256;
    tdm_file_t **all = realloc(ft->all, cap * sizeof(*all));
    if (all == NULL)
      return NULL;
    ft->all = all;
    ft->cap = cap;
  }
  if (ft->n >= ft->n_buckets && grow_buckets(ft) != 0)
    return NULL;
  f = calloc(1, sizeof(*f));
  if (f == NULL)
    return NULL;
  f->rec = *rec;
  f->rec.path = NULL;
  f->rec.error = NULL;
  if (tdm__file_set_path(f, rec->path != NULL ? rec->path : "") != 0) {
    free(f);
    return NULL;
  }
  if (rec->error != NULL)
    tdm__file_set_error(f, rec->error);
  f->pos = rec->offset;
  f->marker = rec->marker;
  f->marker_len = rec->marker_len;
  f->slot = ft->n;
  ft->all[ft->n++] = f;
  k = bucket_of(ft, rec->dev, rec->ino);
  f->next = ft->buckets[k];
  ft->buckets[k] = f;
  return f;
}

void tdm__filetable_remove(tdm_filetable_t *ft, tdm_file_t *f) {
  tdm_file_t **pp = &ft->buckets[bucket_of(ft, f->rec.dev, f->rec.ino)];
  while (*pp != f)
    pp = &(*pp)->next;
  *pp = f->next;
  ft->all[f->slot] = ft->all[--ft->n];
  ft->all[f->slot]->slot = f->slot;
  file_free(f);
}
