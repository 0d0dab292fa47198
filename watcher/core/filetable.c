/*
 * filetable.c: every tracked file in memory, found by (dev, ino) or by path.
 *
 * Hot files: a vector of pointers (for walks) plus two hash tables
 * (base/hashmap.h) that index the same files, by (dev, ino) and by path.
 * The vector index lives in the file, so removal is a swap with the last
 * entry.
 *
 * Cold files (see filetable.h): a vector of tdm_cold_t, no allocation of
 * their own; two open-addressing tables of 32-bit indices into it (linear
 * probing, at most 3/4 full, removal by shifting back, so no tombstones);
 * directories interned and counted; names end to end in one arena, which
 * is compacted when more than half of it is names of files gone hot.
 * Cost a cold file: 64 B + 2 x 4 B / load (1/2 on average: 16 B) + its
 * name and NUL; a few hundred bytes a directory.
 */
#include "core/filetable.h"

#include <errno.h>
#include <stdint.h>
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

static tdm_file_t *hot_get(const tdm_filetable_t *ft, uint64_t dev,
                           uint64_t ino) {
  uint64_t h = id_hash(dev, ino);
  for (tdm_hnode_t *n = tdm__hmap_first(&ft->ids, h); n; n = tdm__hmap_next(n)) {
    tdm_file_t *f = tdm__container_of(n, tdm_file_t, by_id);
    if (f->rec.ino == ino && f->rec.dev == dev)
      return f;
  }
  return NULL;
}

/* ---- cold files ----------------------------------------------------------- */

#define NONE UINT32_MAX
#define NAMES_MAX ((size_t)UINT32_MAX)

static uint64_t cold_path_hash(uint32_t dir, const char *name, size_t len) {
  return tdm__hash_bytes(name, len) ^ tdm__hash_u64((uint64_t)dir + 1);
}

/* By identity: 16 inodes allocated together (a directory's files, mostly)
   land in the 16 slots of one cache line, so a scan or a load in that order
   finds its slots in a few lines instead of one miss a file. The rest of
   the inode number and the device are mixed as usual. (Runs of 64 made
   the probes for identities not there, every load's and every new file's,
   walk runs of a hundred slots.) */
static uint64_t cold_id_hash(uint64_t dev, uint64_t ino) {
  return id_hash(dev, ino >> 4) ^ (ino & 15);
}

static uint64_t cold_id_hash_of(const tdm_filetable_t *ft, const tdm_cold_t *c) {
  return cold_id_hash(ft->devs[c->dev], c->ino);
}

static uint64_t cold_path_hash_of(const tdm_filetable_t *ft,
                                  const tdm_cold_t *c) {
  const char *name = ft->names + c->name;
  return cold_path_hash(c->dir, name, strlen(name));
}

static uint32_t *cold_map(tdm_filetable_t *ft, int by_path) {
  return by_path ? ft->cold_paths : ft->cold_ids;
}

static uint64_t cold_hash(const tdm_filetable_t *ft, int by_path, uint32_t i) {
  return by_path ? cold_path_hash_of(ft, &ft->cold[i])
                 : cold_id_hash_of(ft, &ft->cold[i]);
}

/* Is cold file i's identity that of another cold file? */
static int cold_dup(const tdm_filetable_t *ft, uint32_t i) {
  const tdm_cold_t *c = &ft->cold[i];
  size_t s = cold_id_hash_of(ft, c) & ft->cold_mask;
  for (; ft->cold_ids[s] != NONE; s = (s + 1) & ft->cold_mask) {
    const tdm_cold_t *o = &ft->cold[ft->cold_ids[s]];
    if (o->ino == c->ino && o->dev == c->dev)
      return 1;
  }
  return 0;
}

static void map_put(tdm_filetable_t *ft, int by_path, uint32_t i) {
  uint32_t *m = cold_map(ft, by_path);
  size_t s = cold_hash(ft, by_path, i) & ft->cold_mask;
  while (m[s] != NONE)
    s = (s + 1) & ft->cold_mask;
  m[s] = i;
}

/* The slot holding index i. */
static size_t map_slot(tdm_filetable_t *ft, int by_path, uint32_t i) {
  uint32_t *m = cold_map(ft, by_path);
  size_t s = cold_hash(ft, by_path, i) & ft->cold_mask;
  while (m[s] != i)
    s = (s + 1) & ft->cold_mask;
  return s;
}

/* Empty slot s, shifting back the entries of the run after it that may
   move (linear probing's deletion). */
static void map_del(tdm_filetable_t *ft, int by_path, size_t s) {
  uint32_t *m = cold_map(ft, by_path);
  size_t j = s;
  for (;;) {
    size_t home;
    m[s] = NONE;
    for (;;) {
      j = (j + 1) & ft->cold_mask;
      if (m[j] == NONE)
        return;
      home = cold_hash(ft, by_path, m[j]) & ft->cold_mask;
      /* m[j] may move to s unless its home lies cyclically in (s, j] */
      if (s <= j ? (home <= s || home > j) : (home <= s && home > j))
        break;
    }
    m[s] = m[j];
    s = j;
  }
}

/* Room for one more cold file in the vector and the maps. */
static int cold_reserve(tdm_filetable_t *ft) {
  if (ft->n_cold == ft->cap_cold) {
    size_t cap = ft->cap_cold ? ft->cap_cold * 2 : 1024;
    tdm_cold_t *v;
    if (cap > (size_t)NONE)
      return -EOVERFLOW;
    if ((v = realloc(ft->cold, cap * sizeof(*v))) == NULL)
      return -ENOMEM;
    ft->cold = v;
    ft->cap_cold = cap;
  }
  if ((ft->n_cold + 1) * 4 > (ft->cold_mask + 1) * 3 || ft->cold_mask == 0) {
    size_t slots = ft->cold_mask ? (ft->cold_mask + 1) * 2 : 2048;
    uint32_t *ids = malloc(slots * sizeof(*ids));
    uint32_t *paths = ft->cold_paths != NULL ? malloc(slots * sizeof(*paths))
                                             : NULL;
    if (ids == NULL || (paths == NULL && ft->cold_paths != NULL)) {
      free(ids);
      free(paths);
      return -ENOMEM;
    }
    memset(ids, 0xff, slots * sizeof(*ids));
    free(ft->cold_ids);
    ft->cold_ids = ids;
    ft->cold_mask = slots - 1;
    for (size_t i = 0; i < ft->n_cold; i++)
      map_put(ft, 0, (uint32_t)i);
    if (paths != NULL) {
      memset(paths, 0xff, slots * sizeof(*paths));
      free(ft->cold_paths);
      ft->cold_paths = paths;
      for (size_t i = 0; i < ft->n_cold; i++)
        map_put(ft, 1, (uint32_t)i);
    }
  }
  return 0;
}

/* The index by path, made at its first use: a pass that meets no new file
   and no event by name (a nothing-new `once`) never needs it, and making
   it as records load was a cache miss a file. 0 or -ENOMEM. */
static int paths_build(tdm_filetable_t *ft) {
  if (ft->cold_paths != NULL || ft->cold_mask == 0)
    return 0;
  if ((ft->cold_paths = malloc((ft->cold_mask + 1) * sizeof(uint32_t))) == NULL)
    return -ENOMEM;
  memset(ft->cold_paths, 0xff, (ft->cold_mask + 1) * sizeof(uint32_t));
  for (size_t i = 0; i < ft->n_cold; i++)
    map_put(ft, 1, (uint32_t)i);
  return 0;
}

static uint32_t dev_index(tdm_filetable_t *ft, uint64_t dev) {
  uint64_t *v;
  for (uint32_t i = 0; i < ft->n_devs; i++)
    if (ft->devs[i] == dev)
      return i;
  if ((v = realloc(ft->devs, (ft->n_devs + 1) * sizeof(*v))) == NULL)
    return NONE;
  ft->devs = v;
  v[ft->n_devs] = dev;
  return ft->n_devs++;
}

static uint32_t dir_find(const tdm_filetable_t *ft, const char *path,
                         size_t len) {
  uint64_t h;
  /* The last one found or made: files come a directory at a time. */
  if (ft->last_dir < ft->n_dirs) {
    const tdm_dir_t *d = ft->dirs[ft->last_dir];
    if (d->refs > 0 && d->len == len && memcmp(d->path, path, len) == 0)
      return ft->last_dir;
  }
  h = tdm__hash_bytes(path, len);
  for (tdm_hnode_t *n = tdm__hmap_first(&ft->dir_map, h); n;
       n = tdm__hmap_next(n)) {
    tdm_dir_t *d = tdm__container_of(n, tdm_dir_t, node);
    if (d->len == len && memcmp(d->path, path, len) == 0)
      return ((tdm_filetable_t *)ft)->last_dir = d->index;
  }
  return NONE;
}

/* The directory `path` (len bytes), counted once more; NONE: no memory. */
static uint32_t dir_ref(tdm_filetable_t *ft, const char *path, size_t len) {
  uint32_t i = dir_find(ft, path, len);
  tdm_dir_t *d;

  if (i != NONE) {
    ft->dirs[i]->refs++;
    return i;
  }
  if (len >= NONE)
    return NONE;
  for (i = 0; i < ft->n_dirs && ft->dirs[i]->refs > 0; i++)
    ;
  if (i == ft->n_dirs) {
    if (ft->n_dirs == ft->cap_dirs) {
      uint32_t cap = ft->cap_dirs ? ft->cap_dirs * 2 : 64;
      tdm_dir_t **v = realloc(ft->dirs, cap * sizeof(*v));
      if (v == NULL)
        return NONE;
      ft->dirs = v;
      ft->cap_dirs = cap;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL)
      return NONE;
    d->index = i;
    ft->dirs[ft->n_dirs++] = d;
  }
  d = ft->dirs[i];
  free(d->path);
  if ((d->path = malloc(len + 1)) == NULL)
    return NONE; /* left free (refs 0), reused later */
  memcpy(d->path, path, len);
  d->path[len] = '\0';
  d->len = (uint32_t)len;
  if (tdm__hmap_insert(&ft->dir_map, &d->node, tdm__hash_bytes(path, len)) != 0) {
    free(d->path);
    d->path = NULL;
    return NONE;
  }
  d->refs = 1;
  ft->last_dir = i;
  return i;
}

static void dir_unref(tdm_filetable_t *ft, uint32_t i) {
  tdm_dir_t *d = ft->dirs[i];
  if (--d->refs == 0) {
    tdm__hmap_remove(&ft->dir_map, &d->node);
    free(d->path);
    d->path = NULL;
    /* A free slot scanned for by dir_ref: shrink the tail now. */
    while (ft->n_dirs > 0 && ft->dirs[ft->n_dirs - 1]->refs == 0) {
      free(ft->dirs[ft->n_dirs - 1]);
      ft->n_dirs--;
    }
  }
}

/* Move the arena's live names into a fresh one. */
static int names_compact(tdm_filetable_t *ft) {
  size_t cap = ft->names_len - ft->names_dead + 4096, len = 0;
  char *v = malloc(cap);
  if (v == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < ft->n_cold; i++) {
    const char *name = ft->names + ft->cold[i].name;
    size_t n = strlen(name) + 1;
    memcpy(v + len, name, n);
    ft->cold[i].name = (uint32_t)len;
    len += n;
  }
  free(ft->names);
  ft->names = v;
  ft->names_len = len;
  ft->names_cap = cap;
  ft->names_dead = 0;
  return 0;
}

/* Room for a name of len bytes (and its NUL) at the arena's end. */
static int names_reserve(tdm_filetable_t *ft, size_t len) {
  size_t cap;
  char *v;
  if (ft->names_dead > (1u << 20) && ft->names_dead * 2 > ft->names_len &&
      names_compact(ft) != 0)
    return -ENOMEM;
  if (ft->names_len + len + 1 <= ft->names_cap)
    return 0;
  if (ft->names_len + len + 1 > NAMES_MAX)
    return -EOVERFLOW;
  cap = ft->names_cap ? ft->names_cap * 2 : 65536;
  while (cap < ft->names_len + len + 1)
    cap *= 2;
  if (cap > NAMES_MAX)
    cap = NAMES_MAX;
  if ((v = realloc(ft->names, cap)) == NULL)
    return -ENOMEM;
  ft->names = v;
  ft->names_cap = cap;
  return 0;
}

/* A cold file for `rec` at `path`: 0, -ENOMEM, -EOVERFLOW, -EINVAL (a path
   with no '/'). Nothing changed on error. */
static int cold_add(tdm_filetable_t *ft, const tdm_file_rec_t *rec,
                    const char *path) {
  const char *slash = strrchr(path, '/');
  size_t dlen, nlen;
  uint32_t dev, dir, i;
  tdm_cold_t *c;
  int rc;

  if (slash == NULL || rec->fp_len > UINT16_MAX)
    return -EINVAL;
  dlen = (size_t)(slash - path);
  nlen = strlen(slash + 1);
  if ((rc = cold_reserve(ft)) != 0 || (rc = names_reserve(ft, nlen)) != 0)
    return rc;
  if ((dev = dev_index(ft, rec->dev)) == NONE)
    return -ENOMEM;
  if ((dir = dir_ref(ft, path, dlen)) == NONE)
    return -ENOMEM;
  i = (uint32_t)ft->n_cold++;
  c = &ft->cold[i];
  memset(c, 0, sizeof(*c));
  c->id = rec->id;
  c->ino = rec->ino;
  c->size = rec->size;
  c->mtime_ns = rec->mtime_ns;
  c->ctime_ns = rec->ctime_ns;
  c->fp_hash = rec->fp_hash;
  c->fp_len = (uint16_t)rec->fp_len;
  c->dev = dev;
  c->dir = dir;
  c->name = (uint32_t)ft->names_len;
  c->state = (uint8_t)rec->state;
  if (cold_dup(ft, i)) { /* the one probe a load makes for it */
    ft->n_cold--;
    dir_unref(ft, dir);
    return -EEXIST;
  }
  memcpy(ft->names + ft->names_len, slash + 1, nlen + 1);
  ft->names_len += nlen + 1;
  map_put(ft, 0, i);
  if (ft->cold_paths != NULL)
    map_put(ft, 1, i);
  return 0;
}

/* Take cold file i out (the last one moves into i). */
static void cold_remove(tdm_filetable_t *ft, uint32_t i) {
  uint32_t last = (uint32_t)ft->n_cold - 1;

  map_del(ft, 0, map_slot(ft, 0, i));
  if (ft->cold_paths != NULL)
    map_del(ft, 1, map_slot(ft, 1, i));
  ft->names_dead += strlen(ft->names + ft->cold[i].name) + 1;
  dir_unref(ft, ft->cold[i].dir);
  if (i != last) {
    size_t si = map_slot(ft, 0, last);
    if (ft->cold_paths != NULL)
      ft->cold_paths[map_slot(ft, 1, last)] = i;
    ft->cold[i] = ft->cold[last];
    ft->cold_ids[si] = i;
  }
  ft->n_cold--;
}

tdm_cold_t *tdm__filetable_cold(const tdm_filetable_t *ft, uint64_t dev,
                                uint64_t ino) {
  size_t s;
  if (ft->n_cold == 0)
    return NULL;
  s = cold_id_hash(dev, ino) & ft->cold_mask;
  for (; ft->cold_ids[s] != NONE; s = (s + 1) & ft->cold_mask) {
    tdm_cold_t *c = &ft->cold[ft->cold_ids[s]];
    if (c->ino == ino && ft->devs[c->dev] == dev)
      return c;
  }
  return NULL;
}

static tdm_cold_t *cold_by_path(tdm_filetable_t *ft, const char *path) {
  const char *slash = strrchr(path, '/');
  uint32_t dir;
  size_t s, nlen;

  if (ft->n_cold == 0 || slash == NULL ||
      (dir = dir_find(ft, path, (size_t)(slash - path))) == NONE)
    return NULL;
  if (paths_build(ft) != 0) { /* no memory for the index: one by one */
    for (size_t i = 0; i < ft->n_cold; i++)
      if (ft->cold[i].dir == dir &&
          strcmp(ft->names + ft->cold[i].name, slash + 1) == 0)
        return &ft->cold[i];
    return NULL;
  }
  nlen = strlen(slash + 1);
  s = cold_path_hash(dir, slash + 1, nlen) & ft->cold_mask;
  for (; ft->cold_paths[s] != NONE; s = (s + 1) & ft->cold_mask) {
    tdm_cold_t *c = &ft->cold[ft->cold_paths[s]];
    if (c->dir == dir && strcmp(ft->names + c->name, slash + 1) == 0)
      return c;
  }
  return NULL;
}

int tdm__cold_at(const tdm_filetable_t *ft, const tdm_cold_t *c,
                 const char *path) {
  const tdm_dir_t *d = ft->dirs[c->dir];
  return strncmp(path, d->path, d->len) == 0 && path[d->len] == '/' &&
         strcmp(path + d->len + 1, ft->names + c->name) == 0;
}

int tdm__cold_path(const tdm_filetable_t *ft, const tdm_cold_t *c, char *buf,
                   size_t cap) {
  const tdm_dir_t *d = ft->dirs[c->dir];
  const char *name = ft->names + c->name;
  size_t n = strlen(name);
  if ((size_t)d->len + 1 + n + 1 > cap)
    return -ENAMETOOLONG;
  memcpy(buf, d->path, d->len);
  buf[d->len] = '/';
  memcpy(buf + d->len + 1, name, n + 1);
  return 0;
}

size_t tdm__filetable_count(const tdm_filetable_t *ft) {
  return ft->n + ft->n_cold;
}

void tdm__filetable_set_load(tdm_filetable_t *ft, tdm_file_load_fn load,
                             void *arg) {
  ft->load = load;
  ft->load_arg = arg;
}

static tdm_file_t *add_hot(tdm_filetable_t *ft, const tdm_file_rec_t *rec);

typedef struct thaw {
  tdm_filetable_t *ft;
  const tdm_cold_t *c;
  const char *path;
  tdm_file_t *f;
} thaw_t;

/* The store's record, with what the cold file holds laid over it. (The
   bookmark is the store's: a file is made cold only where it is durable.) */
static int thaw_cb(void *arg, const tdm_file_rec_t *rec) {
  thaw_t *a = arg;
  tdm_file_rec_t r = *rec;

  if (r.dev != a->ft->devs[a->c->dev] || r.ino != a->c->ino)
    return -ESTALE; /* the store's record is another file's */
  r.path = a->path;
  r.size = a->c->size;
  r.mtime_ns = a->c->mtime_ns;
  r.ctime_ns = a->c->ctime_ns;
  r.state = a->c->state;
  return (a->f = add_hot(a->ft, &r)) != NULL ? 0 : -ENOMEM;
}

tdm_file_t *tdm__filetable_thaw(tdm_filetable_t *ft, tdm_cold_t *c) {
  char path[4096 + 256];
  thaw_t a = {ft, c, path, NULL};
  unsigned seen = c->seen;
  int rc;

  if ((rc = tdm__cold_path(ft, c, path, sizeof(path))) != 0 ||
      (rc = ft->load(ft->load_arg, c->id, thaw_cb, &a)) != 0) {
    if (a.f != NULL)
      tdm__filetable_remove(ft, a.f);
    ft->err = rc;
    return NULL;
  }
  cold_remove(ft, (uint32_t)(c - ft->cold));
  a.f->seen = seen;
  return a.f;
}

int tdm__filetable_add_cold(tdm_filetable_t *ft, const tdm_file_rec_t *rec) {
  if (ft->n > 0 && hot_get(ft, rec->dev, rec->ino) != NULL)
    return -EEXIST;
  return cold_add(ft, rec, rec->path != NULL ? rec->path : "");
}

int tdm__filetable_freeze(tdm_filetable_t *ft, tdm_file_t *f) {
  int rc;
  if (ft->load == NULL)
    return -EINVAL;
  if ((rc = cold_add(ft, &f->rec, f->path)) != 0)
    return rc;
  ft->cold[ft->n_cold - 1].seen = f->seen;
  tdm__filetable_remove(ft, f);
  return 0;
}

static void cold_free(tdm_filetable_t *ft) {
  for (uint32_t i = 0; i < ft->n_dirs; i++) {
    free(ft->dirs[i]->path);
    free(ft->dirs[i]);
  }
  free(ft->dirs);
  tdm__hmap_free(&ft->dir_map);
  free(ft->cold);
  free(ft->cold_ids);
  free(ft->cold_paths);
  free(ft->devs);
  free(ft->names);
}

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
  cold_free(ft);
  memset(ft, 0, sizeof(*ft));
}

tdm_file_t *tdm__filetable_get(tdm_filetable_t *ft, uint64_t dev,
                               uint64_t ino) {
  tdm_file_t *f = hot_get(ft, dev, ino);
  tdm_cold_t *c;
  if (f != NULL)
    return f;
  c = tdm__filetable_cold(ft, dev, ino);
  return c != NULL ? tdm__filetable_thaw(ft, c) : NULL;
}

tdm_file_t *tdm__filetable_by_path(tdm_filetable_t *ft, const char *path) {
  uint64_t h = path_hash(path);
  tdm_cold_t *c;
  for (tdm_hnode_t *n = tdm__hmap_first(&ft->paths, h); n; n = tdm__hmap_next(n)) {
    tdm_file_t *f = tdm__container_of(n, tdm_file_t, by_path);
    if (f->rec.state != TDM_FILE_GONE && strcmp(f->path, path) == 0)
      return f; /* a ghost (tdm__retire) is at no path any more */
  }
  c = cold_by_path(ft, path);
  return c != NULL ? tdm__filetable_thaw(ft, c) : NULL;
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
  if (tdm__filetable_cold(ft, rec->dev, rec->ino) != NULL) {
    ft->err = -EEXIST; /* a cold file that could not be made hot */
    return NULL;
  }
  return add_hot(ft, rec);
}

static tdm_file_t *add_hot(tdm_filetable_t *ft, const tdm_file_rec_t *rec) {
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
