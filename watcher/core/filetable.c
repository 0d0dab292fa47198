/*
 * filetable.c: every tracked file in memory, found by (dev, ino) or by path.
 *
 * A vector of pointers (for walks) plus two hash tables (base/hashmap.h)
 * that index the same files, by (dev, ino) and by path. The vector index lives in the file, so removal is a swap with the
 * last entry.
 */
#include "core/filetable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t id_hash(uint64_t dev, uint64_t ino) {
  return tdm__hash_u64(ino ^ (dev * 0x9e3779b97f4a7c15ull));
}

static uint64_t path_hash(const char *path) {
  return tdm__hash_bytes(path, strlen(path));
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
  tdm__hmap_free(&ft->ids);
  tdm__hmap_free(&ft->paths);
  memset(ft, 0, sizeof(*ft));
}

tdm_file_t *tdm__filetable_get(const tdm_filetable_t *ft, uint64_t dev,
                               uint64_t ino) {
  uint64_t h = id_hash(dev, ino);
  for (tdm_hnode_t *n = tdm__hmap_first(&ft->ids, h); n; n = tdm__hmap_next(n)) {
    tdm_file_t *f = tdm__container_of(n, tdm_file_t, by_id);
    if (f->rec.ino == ino && f->rec.dev == dev)
      return f;
  }
  return NULL;
}

tdm_file_t *tdm__filetable_by_path(const tdm_filetable_t *ft, const char *path) {
  uint64_t h = path_hash(path);
  for (tdm_hnode_t *n = tdm__hmap_first(&ft->paths, h); n; n = tdm__hmap_next(n)) {
    tdm_file_t *f = tdm__container_of(n, tdm_file_t, by_path);
    if (f->rec.state != TDM_FILE_GONE && strcmp(f->path, path) == 0)
      return f; /* a ghost (tdm__retire) is at no path any more */
  }
  return NULL;
}

tdm_file_t *tdm__filetable_ghost_at(const tdm_filetable_t *ft, const char *path,
                                    const tdm_file_t *prev) {
  tdm_hnode_t *n = prev != NULL ? tdm__hmap_next(&prev->by_path)
                                : tdm__hmap_first(&ft->paths, path_hash(path));
  for (; n != NULL; n = tdm__hmap_next(n)) {
    tdm_file_t *f = tdm__container_of(n, tdm_file_t, by_path);
    if (f->rec.state == TDM_FILE_GONE && strcmp(f->path, path) == 0)
      return f;
  }
  return NULL;
}

int tdm__file_set_path(tdm_filetable_t *ft, tdm_file_t *f, const char *path) {
  char *p = strdup(path);
  if (p == NULL)
    return -ENOMEM;
  tdm__hmap_remove(&ft->paths, &f->by_path);
  free(f->path);
  f->path = p;
  f->rec.path = p;
  /* Cannot fail: the node was in the table, so the buckets exist and
     nothing grows. */
  tdm__hmap_insert(&ft->paths, &f->by_path, path_hash(p));
  return 0;
}

void tdm__file_set_error(tdm_file_t *f, const char *msg) {
  free(f->error);
  f->error = msg != NULL ? strdup(msg) : NULL;
  f->rec.error = f->error;
}

tdm_file_t *tdm__filetable_add(tdm_filetable_t *ft, const tdm_file_rec_t *rec) {
  tdm_file_t *f;

  if (ft->n == ft->cap) {
    size_t cap = ft->cap ? ft->cap * 2 : 256;
    tdm_file_t **all = realloc(ft->all, cap * sizeof(*all));
    if (all == NULL)
      return NULL;
    ft->all = all;
    ft->cap = cap;
  }
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
  if (tdm__hmap_insert(&ft->ids, &f->by_id, id_hash(rec->dev, rec->ino)) != 0) {
    file_free(f);
    return NULL;
  }
  if (tdm__hmap_insert(&ft->paths, &f->by_path, path_hash(f->path)) != 0) {
    tdm__hmap_remove(&ft->ids, &f->by_id);
    file_free(f);
    return NULL;
  }
  f->slot = ft->n;
  ft->all[ft->n++] = f;
  return f;
}

void tdm__filetable_remove(tdm_filetable_t *ft, tdm_file_t *f) {
  tdm__hmap_remove(&ft->ids, &f->by_id);
  tdm__hmap_remove(&ft->paths, &f->by_path);
  ft->all[f->slot] = ft->all[--ft->n];
  ft->all[f->slot]->slot = f->slot;
  file_free(f);
}
