/*
 * filetable.c: every tracked file in memory, found by (dev, ino) or by path.
 *
 * A vector of pointers (for walks) plus two sets of chained buckets (for
 * lookups). The vector index lives in the file, so removal is a swap with the
 * last entry.
 */
#include "core/filetable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

#define INITIAL_BUCKETS 1024u

static uint64_t mix(uint64_t h) { /* splitmix64's finaliser */
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

static size_t bucket_of(const tdm_filetable_t *ft, uint64_t dev, uint64_t ino) {
  return (size_t)mix(ino ^ (dev * 0x9e3779b97f4a7c15ull)) & (ft->n_buckets - 1);
}

static size_t pbucket_of(const tdm_filetable_t *ft, const char *path) {
  return (size_t)XXH3_64bits(path, strlen(path)) & (ft->n_buckets - 1);
}

void tdm__filetable_init(tdm_filetable_t *ft) { memset(ft, 0, sizeof(*ft)); }

static void file_free(tdm_file_t *f) {
  if (f->fd >= 0)
    close(f->fd);
  free(f->path);
  free(f->error);
  free(f);
}

void tdm__filetable_free(tdm_filetable_t *ft) {
  for (size_t i = 0; i < ft->n; i++)
    file_free(ft->all[i]);
  free(ft->all);
  free(ft->buckets);
  free(ft->pbuckets);
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

tdm_file_t *tdm__filetable_by_path(const tdm_filetable_t *ft, const char *path) {
  if (ft->n_buckets == 0)
    return NULL;
  for (tdm_file_t *f = ft->pbuckets[pbucket_of(ft, path)]; f; f = f->pnext)
    if (f->rec.state != TDM_FILE_GONE && strcmp(f->path, path) == 0)
      return f; /* a ghost (tdm__retire) is at no path any more */
  return NULL;
}

static void link_path(tdm_filetable_t *ft, tdm_file_t *f) {
  size_t k = pbucket_of(ft, f->path);
  f->pnext = ft->pbuckets[k];
  ft->pbuckets[k] = f;
}

static void unlink_path(tdm_filetable_t *ft, tdm_file_t *f) {
  tdm_file_t **pp = &ft->pbuckets[pbucket_of(ft, f->path)];
  while (*pp != f)
    pp = &(*pp)->pnext;
  *pp = f->pnext;
}

/* Double the buckets (or create them) and rehash. */
static int grow_buckets(tdm_filetable_t *ft) {
  size_t n = ft->n_buckets ? ft->n_buckets * 2 : INITIAL_BUCKETS;
  tdm_file_t **b = calloc(n, sizeof(*b)), **pb = calloc(n, sizeof(*pb));
  if (b == NULL || pb == NULL) {
    free(b);
    free(pb);
    return -ENOMEM;
  }
  free(ft->buckets);
  free(ft->pbuckets);
  ft->buckets = b;
  ft->pbuckets = pb;
  ft->n_buckets = n;
  for (size_t i = 0; i < ft->n; i++) {
    tdm_file_t *f = ft->all[i];
    size_t k = bucket_of(ft, f->rec.dev, f->rec.ino);
    f->next = b[k];
    b[k] = f;
    link_path(ft, f);
  }
  return 0;
}

int tdm__file_set_path(tdm_filetable_t *ft, tdm_file_t *f, const char *path) {
  char *p = strdup(path);
  if (p == NULL)
    return -ENOMEM;
  unlink_path(ft, f);
  free(f->path);
  f->path = p;
  f->rec.path = p;
  link_path(ft, f);
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
  f->rec.error = NULL;
  f->fd = -1;
  f->path = strdup(rec->path != NULL ? rec->path : "");
  if (f->path == NULL) {
    free(f);
    return NULL;
  }
  f->rec.path = f->path;
  if (rec->error != NULL)
    tdm__file_set_error(f, rec->error);
  f->pos = f->durable_offset = rec->offset;
  f->marker = f->durable_marker = rec->marker;
  f->marker_len = f->durable_marker_len = rec->marker_len;
  f->slot = ft->n;
  ft->all[ft->n++] = f;
  k = bucket_of(ft, rec->dev, rec->ino);
  f->next = ft->buckets[k];
  ft->buckets[k] = f;
  link_path(ft, f);
  return f;
}

void tdm__filetable_remove(tdm_filetable_t *ft, tdm_file_t *f) {
  tdm_file_t **pp = &ft->buckets[bucket_of(ft, f->rec.dev, f->rec.ino)];
  while (*pp != f)
    pp = &(*pp)->next;
  *pp = f->next;
  unlink_path(ft, f);
  ft->all[f->slot] = ft->all[--ft->n];
  ft->all[f->slot]->slot = f->slot;
  file_free(f);
}
