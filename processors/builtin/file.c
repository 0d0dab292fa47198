/*
 * builtin/file.c: the `file:path=OUT` processor. Appends every chunk to OUT
 * and delivers it exactly once across crashes.
 *
 * How exactly-once works. OUT's length is the whole state:
 *
 *   accepted   bytes taken by process() so far (on disk or in our buffer)
 *   written    bytes of those actually written to OUT (accepted - buffered)
 *   committed  the length that the last successful commit() made durable
 *              (fdatasync) and returned as the restore blob
 *
 * The host stores the blob (8 bytes: `committed`, u64 little-endian) in the
 * same LMDB transaction as the bookmarks. After a crash it reopens us with
 * that blob and re-delivers everything after the bookmarks; open() cuts OUT
 * back to `committed` first, so the bytes written after the last checkpoint
 * (which will come again) are not there twice. An OUT shorter than its blob
 * means someone else truncated or replaced it: we refuse rather than guess.
 *
 * Rules that keep the three lengths honest:
 *   - We write at explicit offsets (pwrite at `written`), never O_APPEND, so
 *     our idea of the length is the truth even if a write half-fails.
 *   - A chunk is taken whole or not at all. A write error (ENOSPC, EFBIG,
 *     EIO, ...) cuts OUT back to `written` (no partial chunk stays) and
 *     returns TDM_PROC_RETRY; the host offers the chunk again later.
 *   - Small chunks (one line each in tail mode) are coalesced in a 256 KiB
 *     buffer, written when it is full, when the reader has caught up
 *     (caught_up: a line appended to an idle file shows in OUT at once) and
 *     at commit. A failed buffer write is
 *     cut back the same way, and the buffer is kept for the next try: the
 *     chunks in it were already accepted.
 *   - commit() writes the buffer and fdatasyncs. If fdatasync (or a needed
 *     ftruncate) fails, nothing written since the last commit can be trusted
 *     (after a failed fsync Linux may have dropped the dirty pages), so OUT is
 *     cut back to `committed` and the instance refuses everything (process and
 *     commit return TDM_PROC_FAIL) until the host closes it and reopens it
 *     with the last durable blob, then re-delivers from the bookmarks.
 *     A failed buffer write during commit is only transient: TDM_PROC_RETRY,
 *     the checkpoint is cancelled, the instance stays usable.
 *   - close() does NOT write the buffer. The host commits before it closes;
 *     anything still buffered at close was never committed, so its bookmark
 *     did not move and it will be delivered again. Writing it would put bytes
 *     in OUT that no blob accounts for (harmless only because the next open
 *     cuts them off; pointless work at best).
 *
 * OUT is opened O_CLOEXEC (children of `exec` must not hold it) and locked
 * with flock(LOCK_EX|LOCK_NB): two processors, or two tidemarks, appending to
 * one OUT would each cut the other's bytes away on restart. A new OUT's
 * directory is fsynced at the first commit so its name is as durable as its
 * bytes.
 */
#include "builtin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_BUF_CAP (256u << 10)
#define FILE_BLOB_LEN 8

typedef struct file_out {
  int fd;
  int broken;     /* a commit failed: refuse everything until reopened */
  int need_sync;  /* OUT changed since the last fdatasync */
  int need_trunc; /* a cut-back failed: OUT may hold bytes past `written` */
  int sync_dir;   /* we created OUT: fsync its directory at the next commit */
  uint64_t committed;
  uint64_t written;
  uint64_t accepted; /* == written + len */
  size_t len;        /* bytes waiting in buf */
  char *buf;
  char path[]; /* OUT, for messages and the directory fsync */
} file_out_t;

/* Write all of p[0..n) at `off`, looping over partial writes and EINTR.
   Returns 0 or an errno value. */
static int pwrite_all(int fd, const char *p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, (off_t)off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (w == 0)
      return EIO;
    p += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

static int truncate_to(int fd, uint64_t len) {
  while (ftruncate(fd, (off_t)len) != 0) {
    if (errno != EINTR)
      return errno;
  }
  return 0;
}

/* After a failed write at `written`: cut OUT back so that no part of what we
   tried to write stays. If even that fails, remember to cut before the next
   commit. */
static void cut_back(file_out_t *f) {
  if (truncate_to(f->fd, f->written) != 0)
    f->need_trunc = 1;
}

/*
 * Write p[0..n) at `written` and advance `written`. On error OUT is cut back
 * to where it was, `written` is unchanged, a message naming OUT is in msg, and
 * TDM_PROC_RETRY is returned.
 */
static int write_at_end(file_out_t *f, const char *p, size_t n, char *msg) {
  int err = pwrite_all(f->fd, p, n, f->written);
  if (err != 0) {
    cut_back(f);
    snprintf(msg, TDM_MSG_MAX, "%s: write: %s", f->path, strerror(err));
    return TDM_PROC_RETRY;
  }
  f->written += n;
  f->need_sync = 1;
  return TDM_PROC_OK;
}

/* Write the buffer out. On error it is kept (its chunks were accepted) and
   TDM_PROC_RETRY is returned with a message. */
static int flush(file_out_t *f, char *msg) {
  int rc;
  if (f->len == 0)
    return TDM_PROC_OK;
  rc = write_at_end(f, f->buf, f->len, msg);
  if (rc == TDM_PROC_OK)
    f->len = 0;
  return rc;
}

static void put_u64le(unsigned char *b, uint64_t v) {
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64le(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)b[i] << (8 * i);
  return v;
}

/* Open OUT for writing, creating it if missing and `may_create`. *created
   tells which. O_NONBLOCK so that a FIFO given by mistake fails (ENXIO)
   rather than blocking until it has a reader; it means nothing for the
   regular file we go on to require. */
static int open_out(const char *path, int may_create, int *created) {
  const int flags = O_WRONLY | O_CLOEXEC | O_NONBLOCK;
  *created = 0;
  if (!may_create)
    return open(path, flags);
  for (int tries = 0; tries < 3; tries++) {
    int fd = open(path, flags | O_CREAT | O_EXCL, 0644);
    if (fd >= 0) {
      *created = 1;
      return fd;
    }
    if (errno != EEXIST)
      return -1;
    fd = open(path, flags);
    if (fd >= 0) {
      *created = 0;
      return fd;
    }
    if (errno != ENOENT) /* ENOENT: removed in between, try again */
      return -1;
  }
  return -1;
}

/*
 * open: `path` is required and is the only parameter. With a restore blob,
 * OUT is cut back to the committed length it holds (see the top of the file);
 * without one, OUT's current length is where appending starts. On failure
 * nothing is left open and args->msg names OUT or the parameter.
 */
/* The one parameter, path=OUT. NULL (args->msg says why) when it is
   missing, empty, given twice, or beside an unknown key. */
static const char *parse_path(const tdm_open_args_t *args) {
  const char *path = NULL;

  for (size_t i = 0; i < args->n_params; i++) {
    const tdm_kv_t *kv = &args->params[i];
    if (strcmp(kv->key, "path") != 0) {
      snprintf(args->msg, TDM_MSG_MAX,
               "file: unknown parameter \"%s\" (file takes path=OUT)",
               kv->key);
      return NULL;
    }
    if (path != NULL) {
      snprintf(args->msg, TDM_MSG_MAX, "file: parameter \"path\" given twice");
      return NULL;
    }
    path = kv->value;
  }
  if (path == NULL || path[0] == '\0') {
    snprintf(args->msg, TDM_MSG_MAX,
             "file: %s (use file:path=OUT)",
             path == NULL ? "missing parameter \"path\"" : "\"path\" is empty");
    return NULL;
  }
  return path;
}

/*
 * Open OUT for f, created only when no checkpoint recorded bytes in it (a
 * checkpoint that did needs the OUT that holds them: never an empty one in
 * its place), lock it against a second file processor, and check that it is
 * a regular file. *size: its length. 0, or -1 with args->msg set.
 */
static int take_out(file_out_t *f, uint64_t L, uint64_t *size,
                    const tdm_open_args_t *args) {
  const char *path = f->path;
  struct stat st;
  int created = 0;

  f->fd = open_out(path, L == 0, &created);
  if (f->fd < 0) {
    if (errno == ENOENT && L > 0)
      snprintf(args->msg, TDM_MSG_MAX,
               "%s is missing, but its last checkpoint has %" PRIu64
               " bytes; refusing to guess",
               path, L);
    else
      snprintf(args->msg, TDM_MSG_MAX, "%s: open: %s", path,
               strerror(errno));
    return -1;
  }
  f->sync_dir = created;
  if (flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      snprintf(args->msg, TDM_MSG_MAX,
               "%s: in use by another file processor (it is locked)", path);
    else
      snprintf(args->msg, TDM_MSG_MAX, "%s: flock: %s", path,
               strerror(errno));
    return -1;
  }
  if (fstat(f->fd, &st) != 0) {
    snprintf(args->msg, TDM_MSG_MAX, "%s: fstat: %s", path, strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(args->msg, TDM_MSG_MAX,
             "%s: not a regular file (file: must be able to truncate it "
             "back to a checkpoint)",
             path);
    return -1;
  }
  *size = (uint64_t)st.st_size;
  return 0;
}

/* Cut OUT (`size` bytes) back to its restore point L: what was written
   after the last checkpoint will be delivered again. 0, or -1 with
   args->msg set (shorter than L: bytes a checkpoint recorded are gone). */
static int roll_back(file_out_t *f, uint64_t size, uint64_t L,
                     const tdm_open_args_t *args) {
  int err;

  if (size < L) {
    snprintf(args->msg, TDM_MSG_MAX,
             "%s is shorter (%" PRIu64 " bytes) than its last checkpoint "
             "(%" PRIu64 " bytes); refusing to guess",
             f->path, size, L);
    return -1;
  }
  if (size > L && (err = truncate_to(f->fd, L)) != 0) {
    snprintf(args->msg, TDM_MSG_MAX,
             "%s: cannot truncate to its last checkpoint (%" PRIu64
             " bytes): %s",
             f->path, L, strerror(err));
    return -1;
  }
  return 0;
}

static int file_open(void **state, const tdm_open_args_t *args) {
  const char *path = parse_path(args);
  file_out_t *f;
  uint64_t L, size;

  if (path == NULL)
    return TDM_PROC_FAIL;
  if (args->restore_len != 0 &&
      (args->restore == NULL || args->restore_len != FILE_BLOB_LEN)) {
    snprintf(args->msg, TDM_MSG_MAX,
             "%s: restore point is %zu bytes, expected %d; refusing to guess",
             path, args->restore_len, FILE_BLOB_LEN);
    return TDM_PROC_FAIL;
  }
  f = calloc(1, sizeof(*f) + strlen(path) + 1);
  if (f == NULL || (f->buf = malloc(FILE_BUF_CAP)) == NULL) {
    snprintf(args->msg, TDM_MSG_MAX, "%s: out of memory", path);
    free(f);
    return TDM_PROC_FAIL;
  }
  strcpy(f->path, path);
  f->fd = -1;

  L = args->restore_len == FILE_BLOB_LEN ? get_u64le(args->restore) : 0;
  if (take_out(f, L, &size, args) != 0 ||
      (args->restore_len == FILE_BLOB_LEN && roll_back(f, size, L, args) != 0)) {
    if (f->fd >= 0)
      close(f->fd);
    free(f->buf);
    free(f);
    return TDM_PROC_FAIL;
  }
  if (args->restore_len != FILE_BLOB_LEN)
    L = size; /* first run: OUT's bytes are not ours to cut */
  f->committed = f->written = f->accepted = L;
  f->need_sync = 1; /* we may have cut it; the first commit makes it sure */
  *state = f;
  return TDM_PROC_OK;
}

static int file_process(void *state, const tdm_chunk_t *chunk, char *msg) {
  file_out_t *f = state;
  int rc;

  if (f->broken) {
    snprintf(msg, TDM_MSG_MAX,
             "%s: a checkpoint failed; the processor must be reopened from "
             "its last checkpoint",
             f->path);
    return TDM_PROC_FAIL;
  }
  if (chunk->len > FILE_BUF_CAP - f->len) {
    rc = flush(f, msg);
    if (rc != TDM_PROC_OK)
      return rc;
  }
  if (chunk->len >= FILE_BUF_CAP) {
    /* Too big to be worth copying: the buffer is empty, write it directly. */
    rc = write_at_end(f, chunk->data, chunk->len, msg);
    if (rc != TDM_PROC_OK)
      return rc;
  } else {
    memcpy(f->buf + f->len, chunk->data, chunk->len);
    f->len += chunk->len;
  }
  f->accepted += chunk->len;
  return TDM_PROC_OK;
}

/* A commit could not make OUT durable: go back to the last checkpoint and
   refuse everything until reopened (see the top of the file). */
static int commit_failed(file_out_t *f, const char *what, int err,
                         char *msg) {
  truncate_to(f->fd, f->committed); /* open() cuts again if this fails */
  f->len = 0;
  f->written = f->accepted = f->committed;
  f->broken = 1;
  snprintf(msg, TDM_MSG_MAX,
           "%s: %s: %s; rolled back to the last checkpoint (%" PRIu64
           " bytes), the processor must be reopened",
           f->path, what, strerror(err), f->committed);
  return TDM_PROC_FAIL;
}

/* fsync the directory holding OUT, so a new OUT's name survives a crash. */
static int sync_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  int fd, err = 0;

  if (slash == NULL)
    dir = strdup(".");
  else if (slash == path)
    dir = strdup("/");
  else
    dir = strndup(path, (size_t)(slash - path));
  if (dir == NULL)
    return ENOMEM;
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
    err = errno;
  if (fd >= 0)
    close(fd);
  free(dir);
  return err;
}

static int file_commit(void *state, void *restore, size_t *restore_len,
                       char *msg) {
  file_out_t *f = state;
  int rc, err;

  if (f->broken) {
    *restore_len = 0;
    snprintf(msg, TDM_MSG_MAX,
             "%s: a checkpoint failed; the processor must be reopened from "
             "its last checkpoint",
             f->path);
    return TDM_PROC_FAIL;
  }
  if (*restore_len < FILE_BLOB_LEN) {
    snprintf(msg, TDM_MSG_MAX, "%s: restore buffer too small (%zu bytes)",
             f->path, *restore_len);
    *restore_len = 0;
    return TDM_PROC_FAIL;
  }
  *restore_len = 0;

  rc = flush(f, msg); /* on error: cut back, buffer kept, RETRY */
  if (rc != TDM_PROC_OK)
    return rc;
  if (f->need_trunc) {
    err = truncate_to(f->fd, f->written);
    if (err != 0)
      return commit_failed(f, "ftruncate", err, msg);
    f->need_trunc = 0;
    f->need_sync = 1;
  }
  if (f->need_sync) {
    if (fdatasync(f->fd) != 0)
      return commit_failed(f, "fdatasync", errno, msg);
    f->need_sync = 0;
  }
  if (f->sync_dir) {
    err = sync_parent(f->path);
    if (err != 0) {
      /* The bytes are durable, the name maybe not: try again next time. */
      snprintf(msg, TDM_MSG_MAX, "%s: fsync of its directory: %s", f->path,
               strerror(err));
      return TDM_PROC_RETRY;
    }
    f->sync_dir = 0;
  }

  f->committed = f->accepted;
  put_u64le(restore, f->committed);
  *restore_len = FILE_BLOB_LEN;
  return TDM_PROC_OK;
}

/* The reader caught up: write the buffer, so that OUT shows what came
   without waiting for the checkpoint (which still makes it durable). A
   failed write keeps the buffer (RETRY, as in flush); commit tries again. */
static int file_caught_up(void *state, char *msg) {
  file_out_t *f = state;
  if (f->broken)
    return TDM_PROC_OK; /* refusing everything until reopened anyway */
  return flush(f, msg);
}

/* Close OUT without writing the buffer: see the top of the file. */
static void file_close(void *state) {
  file_out_t *f = state;
  if (f == NULL)
    return;
  close(f->fd); /* also releases the flock */
  free(f->buf);
  free(f);
}

/* outputs: OUT, so that tidemark never reads it back as input. */
static size_t file_outputs(void *state, const char **paths, size_t max) {
  file_out_t *f = state;
  if (max > 0)
    paths[0] = f->path;
  return 1;
}

static const tdm_processor_t file_processor = {
    TDM_PROCESSOR_HEADER,
    .name = "file",
    .summary = "appends the bytes to OUT (file:path=OUT), fsyncs at each "
               "checkpoint; exactly once",
    .open = file_open,
    .process = file_process,
    .commit = file_commit,
    .close = file_close,
    .outputs = file_outputs,
    .caught_up = file_caught_up,
};

const tdm_processor_t *tdm__proc_file(void) { return &file_processor; }
