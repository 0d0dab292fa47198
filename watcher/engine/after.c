/*
 * after.c: whole mode's --on-done delete|move:DIR and --on-failed move:DIR.
 *
 * A file is acted on only after the checkpoint that recorded its outcome
 * committed: a crash before that handles it again (the outcome was not
 * durable), a crash after it finds the outcome in the store at the next
 * start and acts then (tdm__pass_prepare), never handling the file a second
 * time. A file is acted on only while it is still the file that was handled
 * (same inode, size and mtime): a new version dropped meanwhile is not
 * moved away unhandled.
 *
 * Moves keep the name; a name already in DIR is never overwritten
 * (renameat2 RENAME_NOREPLACE, or link(2), which never replaces): NAME.1,
 * NAME.2, ... are tried instead. Across filesystems the file is copied to a
 * hidden temporary in DIR (.tidemark-move.INSTANCE.XXXXXX, INSTANCE the
 * store's id), given the source's mode, owner (when allowed) and times as
 * mv(1) does, fsynced, linked to its final name, and only then unlinked from
 * the tree. A temporary a kill -9 left behind is removed at the next start;
 * only this store's, since another instance may be copying into the same DIR.
 */
#include "engine/after.h"
#include "base/clock.h"
#include "engine/engine.h"
#include "engine/files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SUFFIX 100000u

static void sync_dir(const char *path) {
  char d[PATH_MAX];
  char *slash;
  int fd;

  snprintf(d, sizeof(d), "%s", path);
  if ((slash = strrchr(d, '/')) == NULL)
    return;
  *slash = slash == d ? '/' : '\0';
  if (slash == d)
    d[1] = '\0';
  if ((fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

static void name_at(char *dst, size_t cap, const char *dir, const char *base,
                    unsigned k) {
  if (k == 0)
    snprintf(dst, cap, "%s/%s", dir, base);
  else
    snprintf(dst, cap, "%s/%s.%u", dir, base, k);
}

#define TMP_PREFIX ".tidemark-move."

/* Copy `src` into a new temporary in `dir` (named for store `inst`) with
   the source's mode, owner and times, fsynced; its path in tmp. */
static int copy_in(const char *src, const char *dir, const char *inst,
                   char *tmp, size_t cap) {
  int in, out, rc = 0;
  char buf[1 << 16];
  struct stat st;

  snprintf(tmp, cap, "%s/" TMP_PREFIX "%s.XXXXXX", dir, inst);
  if ((in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    return -errno;
  if (fstat(in, &st) != 0) {
    rc = -errno;
    close(in);
    return rc;
  }
  if ((out = mkostemp(tmp, O_CLOEXEC)) < 0) {
    rc = -errno;
    close(in);
    return rc;
  }
  for (;;) {
    ssize_t n = read(in, buf, sizeof(buf)), w = 0;
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = n < 0 ? -errno : 0;
      break;
    }
    while (w < n) {
      ssize_t k = write(out, buf + w, (size_t)(n - w));
      if (k < 0 && errno == EINTR)
        continue;
      if (k < 0) {
        rc = -errno;
        break;
      }
      w += k;
    }
    if (rc != 0)
      break;
  }
  if (rc == 0) { /* as mv(1): the owner only where allowed, then the mode */
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    (void)fchown(out, st.st_uid, st.st_gid);
    if (fchmod(out, st.st_mode & 07777) != 0 || futimens(out, times) != 0)
      rc = -errno;
  }
  if (rc == 0 && fsync(out) != 0)
    rc = -errno;
  close(in);
  if (close(out) != 0 && rc == 0)
    rc = -errno;
  if (rc != 0)
    unlink(tmp);
  return rc;
}

/* Move `path` into `dir` under its own name (or NAME.k); dst gets where. */
static int move_into(const char *path, const char *dir, const char *inst,
                     char *dst, size_t cap) {
  const char *base = strrchr(path, '/');
  char tmp[PATH_MAX];
  int rc = 0, copied = 0;

  base = base ? base + 1 : path;
  for (unsigned k = 0; k < MAX_SUFFIX; k++) {
    name_at(dst, cap, dir, base, k);
    if (!copied) {
      if (renameat2(AT_FDCWD, path, AT_FDCWD, dst, RENAME_NOREPLACE) == 0) {
        sync_dir(dst);
        sync_dir(path);
        return 0;
      }
      if (errno == EEXIST)
        continue;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS)
        return -errno;
      if (errno == EXDEV) {
        if ((rc = copy_in(path, dir, inst, tmp, sizeof(tmp))) != 0)
          return rc;
        copied = 1;
      } else { /* no RENAME_NOREPLACE here: link never replaces */
        if (link(path, dst) == 0) {
          sync_dir(dst);
          if (unlink(path) != 0)
            return -errno;
          sync_dir(path);
          return 0;
        }
        if (errno == EEXIST)
          continue;
        if (errno != EXDEV)
          return -errno;
        if ((rc = copy_in(path, dir, inst, tmp, sizeof(tmp))) != 0)
          return rc;
        copied = 1;
      }
    }
    /* Copied across filesystems: give the copy its name, never replacing. */
    if (link(tmp, dst) == 0) {
      unlink(tmp);
      sync_dir(dst);
      if (unlink(path) != 0)
        return -errno;
      sync_dir(path);
      return 0;
    }
    if (errno != EEXIST) {
      rc = -errno;
      unlink(tmp);
      return rc;
    }
  }
  if (copied)
    unlink(tmp);
  return -EEXIST;
}

/* Act on `f`. Returns 1 when it left the tree (deleted or moved), else 0. */
static int act(tdm_t *t, tdm_file_t *f) {
  char q[PATH_MAX], dst[PATH_MAX];
  const char *dir, *opt;
  struct stat st;
  int rc;

  f->after = 0;
  if (lstat(f->path, &st) != 0 || !S_ISREG(st.st_mode) ||
      (uint64_t)st.st_dev != f->rec.dev || (uint64_t)st.st_ino != f->rec.ino ||
      (uint64_t)st.st_size != f->rec.size || mtime_ns(&st) != f->rec.mtime_ns)
    return 0; /* moved already, gone, or a new version to handle */
  if (f->rec.state == TDM_FILE_FAILED) {
    dir = t->failed_dir;
    opt = "--on-failed";
  } else {
    dir = t->done_dir;
    opt = "--on-done";
  }
  tdm__quote(f->path, q, sizeof(q));
  if (dir == NULL && f->rec.state != TDM_FILE_FAILED && t->after_delete) {
    if (unlink(f->path) != 0) {
      tdm__error(&t->log, "%s: %s delete: %s", q, opt, strerror(errno));
      t->stats.after_errors++;
      return 0;
    }
    sync_dir(f->path);
    t->stats.files_deleted++;
    tdm__debug(&t->log, "%s: deleted (%s)", q, opt);
    return 1;
  }
  if (dir == NULL)
    return 0;
  if ((rc = move_into(f->path, dir, tdm_store_instance(t->store), dst,
                      sizeof(dst))) != 0) {
    tdm__error(&t->log, "%s: %s: cannot move it into %s: %s", q, opt, dir,
               strerror(-rc));
    t->stats.after_errors++;
    return 0;
  }
  t->stats.files_moved++;
  tdm__debug(&t->log, "%s: moved to %s (%s)", q, dst, opt);
  return 1;
}

/* Remove the copies into `dir` that a kill -9 of this store's process cut
   short (the source is still in the tree; its move is done again). */
static void sweep(tdm_t *t, const char *dir) {
  char prefix[64], p[PATH_MAX], q[PATH_MAX];
  DIR *d = opendir(dir);
  struct dirent *e;
  size_t n;

  if (d == NULL)
    return;
  n = (size_t)snprintf(prefix, sizeof(prefix), TMP_PREFIX "%s.",
                       tdm_store_instance(t->store));
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, n) != 0 || strlen(e->d_name) != n + 6)
      continue;
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    if (unlink(p) == 0)
      tdm__info(&t->log, "%s: removed a copy a crash cut short",
                tdm__quote(p, q, sizeof(q)));
  }
  closedir(d);
}

void tdm__after_durable(tdm_t *t) {
  if (t->opts.mode != TDM_MODE_WHOLE ||
      (t->done_dir == NULL && t->failed_dir == NULL && !t->after_delete))
    return;
  if (!t->after_swept) {
    t->after_swept = 1;
    if (t->done_dir != NULL)
      sweep(t, t->done_dir);
    if (t->failed_dir != NULL && (t->done_dir == NULL ||
                                  strcmp(t->failed_dir, t->done_dir) != 0))
      sweep(t, t->failed_dir);
  }
  for (size_t i = 0; i < t->files.n; i++) {
    tdm_file_t *f = t->files.all[i];
    if (f->after && !f->dirty && !f->inflight &&
        (f->rec.state == TDM_FILE_DONE || f->rec.state == TDM_FILE_DUPLICATE ||
         f->rec.state == TDM_FILE_FAILED) &&
        act(t, f) && f->rec.state != TDM_FILE_FAILED) {
      /* Gone from the tree now: kept as gone until --forget-after. The
         table puts another file in slot i: it is looked at next. */
      if (tdm__retire(t, f) == 0)
        i--;
    }
  }
}
