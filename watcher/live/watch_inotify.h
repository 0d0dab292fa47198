/*
 * watch_inotify.h: tidemark's own inotify descriptor and its watch table.
 *
 * libuv's uv_fs_event is not recursive on Linux (UV_FS_EVENT_RECURSIVE is
 * ignored there), drops the kernel's queue overflow (IN_Q_OVERFLOW) without
 * a word, never reports IN_CLOSE_WRITE and loses the move cookie, so the
 * daemon drives a descriptor of its own with a uv_poll_t. This file knows
 * nothing of the loop: the loop thread reads the descriptor, the engine's
 * worker adds and forgets watches and parses the events.
 */
#ifndef TDM_WATCH_INOTIFY_H
#define TDM_WATCH_INOTIFY_H

#include <stddef.h>
#include <sys/inotify.h>

#include "base/hashmap.h"

/* What a directory watch listens for. */
#define TDM_INOTIFY_MASK                                                     \
  (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |    \
   IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

typedef struct tdm_watch {
  int wd;
  size_t root;            /* index of the source it lies in */
  char *path;             /* absolute */
  tdm_hnode_t node;       /* in tdm_inotify_t.watches, by wd */
} tdm_watch_t;

typedef struct tdm_inotify {
  int fd;                 /* -1 when closed */
  tdm_hmap_t watches;     /* by wd; .n is how many */
} tdm_inotify_t;

/* A non-blocking, close-on-exec inotify descriptor. -errno (EMFILE: the
   per-user instance limit). */
int tdm__inotify_open(tdm_inotify_t *in);

/* Close the descriptor and forget every watch. Accepts a closed one. */
void tdm__inotify_close(tdm_inotify_t *in);

/*
 * Watch the directory `path` (absolute) of source `root`. Watching an
 * already watched directory (same inode) only updates its path. Returns the
 * wd, or -errno: ENOSPC (max_user_watches reached), ENOENT/ENOTDIR (gone),
 * EACCES, ENOMEM.
 */
int tdm__inotify_add(tdm_inotify_t *in, const char *path, size_t root);

/* The watch behind `wd`, or NULL. */
const tdm_watch_t *tdm__inotify_find(const tdm_inotify_t *in, int wd);

/* Forget `wd` after the kernel dropped it (IN_IGNORED). */
void tdm__inotify_forget(tdm_inotify_t *in, int wd);

/* Stop watching `path` and every directory under it (moved or deleted). */
void tdm__inotify_remove_under(tdm_inotify_t *in, const char *path);

#endif /* TDM_WATCH_INOTIFY_H */
