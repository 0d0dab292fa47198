/* watch_inotify.c: the inotify descriptor and its watch table (see
   watch_inotify.h). */
#include "live/watch_inotify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tdm__inotify_open(tdm_inotify_t *in) {
  memset(in, 0, sizeof(*in));
  in->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in->fd < 0)
    return -errno;
  in->n_buckets = 256;
  in->buckets = calloc(in->n_buckets, sizeof(*in->buckets));
  if (in->buckets == NULL) {
    close(in->fd);
    in->fd = -1;
    return -ENOMEM;
  }
  return 0;
}

static void watch_free(tdm_watch_t *w) {
  free(w->path);
  free(w);
}

void tdm__inotify_close(tdm_inotify_t *in) {
  for (size_t i = 0; i < in->n_buckets; i++)
    while (in->buckets[i] != NULL) {
      tdm_watch_t *w = in->buckets[i];
      in->buckets[i] = w->next;
      watch_free(w);
    }
  free(in->buckets);
  if (in->fd >= 0)
    close(in->fd);
  memset(in, 0, sizeof(*in));
  in->fd = -1;
}

static tdm_watch_t **slot(const tdm_inotify_t *in, int wd) {
  return &in->buckets[(size_t)wd & (in->n_buckets - 1)];
}

/* Double the buckets when the chains grow long. */
static void grow(tdm_inotify_t *in) {
  size_t n = in->n_buckets * 2;
  tdm_watch_t **b = calloc(n, sizeof(*b));
  if (b == NULL)
    return; /* longer chains, still correct */
  for (size_t i = 0; i < in->n_buckets; i++)
    while (in->buckets[i] != NULL) {
      tdm_watch_t *w = in->buckets[i];
      in->buckets[i] = w->next;
      w->next = b[(size_t)w->wd & (n - 1)];
      b[(size_t)w->wd & (n - 1)] = w;
    }
  free(in->buckets);
  in->buckets = b;
  in->n_buckets = n;
}

const tdm_watch_t *tdm__inotify_find(const tdm_inotify_t *in, int wd) {
  for (tdm_watch_t *w = *slot(in, wd); w != NULL; w = w->next)
    if (w->wd == wd)
      return w;
  return NULL;
}

int tdm__inotify_add(tdm_inotify_t *in, const char *path, size_t root) {
  tdm_watch_t *w;
  char *copy;
  int wd = inotify_add_watch(in->fd, path, TDM_INOTIFY_MASK);

  if (wd < 0)
    return -errno;
  if ((copy = strdup(path)) == NULL) {
    inotify_rm_watch(in->fd, wd);
    return -ENOMEM;
  }
  w = (tdm_watch_t *)tdm__inotify_find(in, wd);
  if (w != NULL) { /* the same directory, maybe under a new name */
    free(w->path);
    w->path = copy;
    w->root = root;
    return wd;
  }
  if ((w = calloc(1, sizeof(*w))) == NULL) {
    free(copy);
    inotify_rm_watch(in->fd, wd);
    return -ENOMEM;
  }
  w->wd = wd;
  w->root = root;
  w->path = copy;
  if (in->n >= in->n_buckets * 2)
    grow(in);
  w->next = *slot(in, wd);
  *slot(in, wd) = w;
  in->n++;
  return wd;
}

void tdm__inotify_forget(tdm_inotify_t *in, int wd) {
  for (tdm_watch_t **pp = slot(in, wd); *pp != NULL; pp = &(*pp)->next)
    if ((*pp)->wd == wd) {
      tdm_watch_t *w = *pp;
      *pp = w->next;
      watch_free(w);
      in->n--;
      return;
    }
}

static int under(const char *p, const char *top, size_t n) {
  return strncmp(p, top, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

void tdm__inotify_remove_under(tdm_inotify_t *in, const char *path) {
  size_t n = strlen(path);
  for (size_t i = 0; i < in->n_buckets; i++)
    for (tdm_watch_t **pp = &in->buckets[i]; *pp != NULL;) {
      tdm_watch_t *w = *pp;
      if (under(w->path, path, n)) {
        inotify_rm_watch(in->fd, w->wd); /* its IN_IGNORED finds no entry */
        *pp = w->next;
        watch_free(w);
        in->n--;
      } else {
        pp = &w->next;
      }
    }
}
