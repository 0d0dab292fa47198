/*
 * scan.c: walk a source directory and report its regular files.
 *
 * Directories are visited from an explicit stack, one open at a time, so the
 * depth of a tree never costs descriptors. Symbolic links are not followed;
 * FIFOs, sockets and devices are counted and never opened (an open of a FIFO
 * with no writer would block). d_type spares a stat for directories; regular
 * files are lstat'ed (fstatat, AT_SYMLINK_NOFOLLOW) because the caller needs
 * their size and mtime anyway.
 */
#include "core/scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct dir_stack {
  char **rel;
  size_t n, cap;
} dir_stack_t;

static int push(dir_stack_t *s, const char *rel) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    char **v = realloc(s->rel, cap * sizeof(*v));
    if (v == NULL)
      return -ENOMEM;
    s->rel = v;
    s->cap = cap;
  }
  if ((s->rel[s->n] = strdup(rel)) == NULL)
    return -ENOMEM;
  s->n++;
  return 0;
}

static void stack_free(dir_stack_t *s) {
  while (s->n > 0)
    free(s->rel[--s->n]);
  free(s->rel);
}

/* Should the walk descend into directory `name` at `path`? Never into
   tidemark's own state directory. */
static int enter(const tdm_filter_t *filter, const char *name, const char *path) {
  return tdm__filter_dir(filter, name) &&
         (filter->skip_dir == NULL || strcmp(path, filter->skip_dir) != 0);
}

/* Join root, rel and name into buf ("" rel for the root itself). Two
   copies, no formatting: this runs twice for every file of every scan. */
static int join(char *buf, size_t cap, const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b), sep = na > 0 && nb > 0;
  if (na + sep + nb >= cap)
    return -ENAMETOOLONG;
  memcpy(buf, a, na);
  buf[na] = '/';
  memcpy(buf + na + sep, b, nb + 1);
  return 0;
}

/*
 * Open the directory `dpath` (rel under its root) for listing. NULL when it
 * cannot be: *err is -errno for the starting directory (logged, naming it;
 * -ENOENT silently for a subdirectory that vanished), 0 for one met on the
 * way (logged and counted, the walk goes on).
 */
static DIR *open_dir(tdm_scan_t *s, const char *dpath, const char *rel,
                     int first, int *err) {
  char q[PATH_MAX];
  DIR *dir;
  int fd = open(dpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (fd >= 0 && (dir = fdopendir(fd)) != NULL)
    return dir;
  *err = -errno;
  if (fd >= 0)
    close(fd);
  if (first && *rel == '\0')
    tdm__error(s->log, "%s: cannot read source directory: %s",
               tdm__quote(dpath, q, sizeof(q)), strerror(-*err));
  else if (*err != -ENOENT) /* vanished meanwhile: nothing to say */
    tdm__warn(s->log, "%s: cannot read directory: %s",
              tdm__quote(dpath, q, sizeof(q)), strerror(-*err));
  if (!first) {
    if (*err != -ENOENT)
      s->stats.errors++;
    *err = 0;
  }
  return NULL;
}

/*
 * One entry `name` of the directory `dir` (at frel under the root, fpath in
 * full): a subdirectory to push, a regular file for on_file, or something
 * passed over (symlinks, special files, filtered names). Returns 0 or what
 * stops the walk.
 */
static int scan_entry(tdm_scan_t *s, DIR *dir, const struct dirent *de,
                      const char *frel, const char *fpath,
                      dir_stack_t *stack) {
  const char *name = de->d_name;
  char q[PATH_MAX];
  struct stat st;
  int rc;

  if (de->d_type == DT_DIR)
    return s->recursive && enter(s->filter, name, fpath) ? push(stack, frel) : 0;
  if (de->d_type == DT_LNK)
    return 0; /* symlinks are not followed */
  if (!tdm__filter_file(s->filter, frel, name))
    return 0;
  if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN) {
    s->stats.special++;
    tdm__debug(s->log, "%s: not a regular file, skipped",
               tdm__quote(fpath, q, sizeof(q)));
    return 0;
  }
  if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) {
      tdm__warn(s->log, "%s: %s", tdm__quote(fpath, q, sizeof(q)),
                strerror(errno));
      s->stats.errors++;
    }
    return 0;
  }
  if (S_ISDIR(st.st_mode)) /* DT_UNKNOWN filesystems */
    return s->recursive && enter(s->filter, name, fpath) ? push(stack, frel) : 0;
  if (!S_ISREG(st.st_mode)) {
    if (!S_ISLNK(st.st_mode))
      s->stats.special++;
    return 0;
  }
  rc = s->on_file(s->arg, fpath, frel, &st);
  return rc < 0 ? rc : 0;
}

static int scan_dir(tdm_scan_t *s, const char *root, const char *rel,
                    int first, dir_stack_t *stack) {
  char dpath[PATH_MAX], frel[PATH_MAX], fpath[PATH_MAX], q[PATH_MAX];
  struct dirent *de;
  DIR *dir;
  int rc = 0;

  if (join(dpath, sizeof(dpath), root, rel) != 0)
    return -ENAMETOOLONG;
  if (s->on_dir != NULL && (rc = s->on_dir(s->arg, dpath)) < 0)
    return rc;
  if ((dir = open_dir(s, dpath, rel, first, &rc)) == NULL)
    return rc;
  while (rc == 0 && (errno = 0, de = readdir(dir)) != NULL) {
    const char *name = de->d_name;

    if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
      continue;
    if (join(frel, sizeof(frel), rel, name) != 0 ||
        join(fpath, sizeof(fpath), root, frel) != 0) {
      tdm__warn(s->log, "%s/%s: path too long, skipped",
                tdm__quote(dpath, q, sizeof(q)), name);
      s->stats.errors++;
      continue;
    }
    rc = scan_entry(s, dir, de, frel, fpath, stack);
  }
  if (rc == 0 && errno != 0) {
    tdm__warn(s->log, "%s: reading directory: %s",
              tdm__quote(dpath, q, sizeof(q)), strerror(errno));
    s->stats.errors++;
  }
  closedir(dir);
  return rc;
}

int tdm__scan(tdm_scan_t *s, const char *root, const char *rel) {
  dir_stack_t stack = {0};
  int rc;

  rc = scan_dir(s, root, rel, 1, &stack);
  while (rc >= 0 && stack.n > 0) {
    char *sub = stack.rel[--stack.n];
    rc = scan_dir(s, root, sub, 0, &stack);
    free(sub);
  }
  stack_free(&stack);
  return rc;
}
