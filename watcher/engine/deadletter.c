/*
 * deadletter.c: the dead-letter file (--dead-letter FILE), see deadletter.h.
 *
 * The three lengths, as in the `file` processor: `written` is FILE's length
 * as we wrote it (explicit offsets, never O_APPEND), `committed` the length
 * the last checkpoint recorded in the store. A line is written whole or not
 * at all (a failed write is cut back). commit() fdatasyncs; the store then
 * records `committed` with the bookmarks that moved past the records set
 * aside. A rollback, and the next open after a kill -9, cut FILE back to
 * `committed`: the records after it come again and are set aside again,
 * once.
 */
#include "engine/deadletter.h"

#include "base/clock.h"
#include "engine/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

#define KEY_MAX 400 /* below LMDB's 511-byte keys */

static void put_u64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static int truncate_to(int fd, uint64_t len) {
  while (ftruncate(fd, (off_t)len) != 0)
    if (errno != EINTR)
      return -errno;
  return 0;
}

/* The absolute path of `path` (which exists now): its directory resolved,
   its name kept. NULL when out of memory or the directory is gone. */
static char *absolute(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *name = slash ? slash + 1 : path;
  char *dir, *real, *out;
  size_t n;

  if (slash == NULL)
    dir = strdup(".");
  else if (slash == path)
    dir = strdup("/");
  else
    dir = strndup(path, (size_t)(slash - path));
  if (dir == NULL)
    return NULL;
  real = realpath(dir, NULL);
  free(dir);
  if (real == NULL)
    return NULL;
  n = strlen(real) + strlen(name) + 2;
  if ((out = malloc(n)) != NULL)
    snprintf(out, n, "%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", name);
  free(real);
  return out;
}

int tdm__deadletter_open(tdm_t *t, const char *path) {
  tdm_deadletter_t *dl = &t->dl;
  uint8_t blob[TDM_RESTORE_MAX];
  size_t blob_len = 0;
  struct stat st;
  char q[PATH_MAX];
  int fd, rc, created = 0;

  fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 && errno == ENOENT) {
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    created = fd >= 0;
  }
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int err = fd < 0 ? errno : S_ISREG(st.st_mode) ? errno : 0;
    tdm__error(&t->log, "--dead-letter %s: cannot write to it: %s",
               tdm__quote(path, q, sizeof(q)),
               err ? strerror(err) : "not a regular file");
    if (fd >= 0)
      close(fd);
    return TDM_EUSAGE;
  }
  (void)fcntl(fd, F_SETFL, 0); /* O_NONBLOCK was only for a FIFO's open */
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    tdm__error(&t->log, "--dead-letter %s: in use by another tidemark or "
               "processor", tdm__quote(path, q, sizeof(q)));
    close(fd);
    return TDM_EUSAGE;
  }
  dl->fd = fd;
  dl->sync_dir = created;
  dl->dev = (uint64_t)st.st_dev;
  dl->ino = (uint64_t)st.st_ino;
  if ((dl->path = absolute(path)) == NULL ||
      (dl->key = malloc(strlen(TDM_DEADLETTER_KEY) + strlen(dl->path) + 1)) ==
          NULL) {
    tdm__deadletter_close(dl);
    return -ENOMEM;
  }
  /* The store's keys are at most 511 bytes (and the store would hash a
     longer one, hiding the prefix `status` looks for): a long path is
     named by its hash. */
  if (strlen(TDM_DEADLETTER_KEY) + strlen(dl->path) > KEY_MAX)
    sprintf(dl->key, "%s#%016llx", TDM_DEADLETTER_KEY,
            (unsigned long long)XXH3_64bits(dl->path, strlen(dl->path)));
  else
    sprintf(dl->key, "%s%s", TDM_DEADLETTER_KEY, dl->path);
  if ((rc = tdm_store_get_blob(t->store, dl->key, blob, sizeof(blob),
                               &blob_len)) != 0) {
    tdm__deadletter_close(dl);
    return rc == -ENOBUFS ? TDM_ESTATE : rc;
  }
  dl->written = (uint64_t)st.st_size;
  if (blob_len == TDM_DEADLETTER_BLOB_LEN) {
    uint64_t len = get_u64le(blob);
    dl->count = get_u64le(blob + 8);
    if (get_u64le(blob + 16) == dl->dev && get_u64le(blob + 24) == dl->ino &&
        (uint64_t)st.st_size >= len) {
      /* Ours as the last checkpoint left it: what a kill -9 left past it
         is set aside again. */
      if ((uint64_t)st.st_size > len && (rc = truncate_to(fd, len)) != 0) {
        tdm__error(&t->log, "--dead-letter %s: cannot cut it back to its "
                   "last checkpoint (%llu bytes): %s",
                   tdm__quote(path, q, sizeof(q)), (unsigned long long)len,
                   strerror(-rc));
        tdm__deadletter_close(dl);
        return TDM_EUSAGE;
      }
      dl->written = len;
    } else {
      tdm__info(&t->log, "--dead-letter %s: not the file the last checkpoint "
                "wrote to (rotated, or emptied): dead letters go on at its "
                "end", tdm__quote(path, q, sizeof(q)));
    }
  }
  dl->committed = dl->written;
  dl->durable_count = dl->count;
  dl->need_sync = 1;
  return 0;
}

void tdm__deadletter_close(tdm_deadletter_t *dl) {
  if (dl->fd >= 0)
    close(dl->fd);
  dl->fd = -1;
  free(dl->path);
  free(dl->key);
  dl->path = dl->key = NULL;
}

/* ---- one line ----------------------------------------------------------- */

typedef struct buf {
  char *p;
  size_t n, cap;
} buf_t;

static int grow(buf_t *b, size_t more) {
  if (b->n + more <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + more)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (p == NULL)
    return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

static void add(buf_t *b, const char *s, size_t n) {
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

/* The length (1 to 4) of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  uint32_t cp;

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

/* Append `s` (n bytes) as a JSON string (see deadletter.h for the escapes
   of bytes that are not UTF-8). At most 6 bytes per input byte, plus 2. */
static int add_string(buf_t *b, const void *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = s;

  if (grow(b, 6 * n + 2) != 0)
    return -1;
  b->p[b->n++] = '"';
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    size_t k;
    if (c == '"' || c == '\\') {
      b->p[b->n++] = '\\';
      b->p[b->n++] = (char)c;
      i++;
    } else if (c == '\n') {
      add(b, "\\n", 2);
      i++;
    } else if (c == '\t') {
      add(b, "\\t", 2);
      i++;
    } else if (c == '\r') {
      add(b, "\\r", 2);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      add(b, e, 6);
      i++;
    } else if ((k = utf8_len(p + i, n - i)) > 0) {
      add(b, (const char *)p + i, k);
      i += k;
    } else { /* not UTF-8: a lone low surrogate, as surrogateescape does */
      char e[6] = {'\\', 'u', 'd', 'c', hex[c >> 4], hex[c & 15]};
      add(b, e, 6);
      i++;
    }
  }
  b->p[b->n++] = '"';
  return 0;
}

static int add_text(buf_t *b, const char *s) {
  if (grow(b, strlen(s)) != 0)
    return -1;
  add(b, s, strlen(s));
  return 0;
}

/* "2026-12-03T14:05:09.123Z" */
static void now_iso(char *out, size_t cap) {
  int64_t ns = tdm__wall_ns();
  time_t secs = (time_t)(ns / 1000000000);
  struct tm tm;
  char day[32];
  gmtime_r(&secs, &tm);
  strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, cap, "%s.%03dZ", day, (int)(ns / 1000000 % 1000));
}

static int pwrite_all(int fd, const char *p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, (off_t)off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (w == 0)
      return -EIO;
    p += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

int tdm__deadletter_write(tdm_t *t, const tdm_file_t *f, uint64_t offset,
                          const void *data, size_t len, const char *proc,
                          const char *error) {
  tdm_deadletter_t *dl = &t->dl;
  buf_t b = {NULL, 0, 0};
  char num[128], when[64];
  int rc = -ENOMEM;

  now_iso(when, sizeof(when));
  if (add_text(&b, "{\"path\":") != 0 ||
      add_string(&b, f->path, strlen(f->path)) != 0)
    goto out;
  snprintf(num, sizeof(num), ",\"offset\":%llu,\"length\":%zu,\"processor\":",
           (unsigned long long)offset, len);
  if (add_text(&b, num) != 0 || add_string(&b, proc, strlen(proc)) != 0 ||
      add_text(&b, ",\"error\":") != 0 ||
      add_string(&b, error, strlen(error)) != 0 ||
      add_text(&b, ",\"data\":") != 0 || add_string(&b, data, len) != 0 ||
      add_text(&b, ",\"time\":\"") != 0 || add_text(&b, when) != 0 ||
      add_text(&b, "\"}\n") != 0)
    goto out;
  if ((rc = pwrite_all(dl->fd, b.p, b.n, dl->written)) != 0) {
    (void)truncate_to(dl->fd, dl->written); /* no half line stays */
    goto out;
  }
  dl->written += b.n;
  dl->count++;
  dl->need_sync = 1;
  t->stats.dead_letters++;
out:
  free(b.p);
  return rc;
}

/* ---- checkpoints -------------------------------------------------------- */

int tdm__deadletter_commit(tdm_t *t, uint8_t *blob) {
  tdm_deadletter_t *dl = &t->dl;

  if (dl->need_sync && fdatasync(dl->fd) != 0)
    return -errno;
  dl->need_sync = 0;
  if (dl->sync_dir) {
    char *slash = strrchr(dl->path, '/');
    char *dir = slash == dl->path ? strdup("/")
                                  : strndup(dl->path, (size_t)(slash - dl->path));
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0 && fsync(fd) == 0)
      dl->sync_dir = 0; /* else tried again at the next checkpoint */
    if (fd >= 0)
      close(fd);
    free(dir);
  }
  put_u64le(blob, dl->written);
  put_u64le(blob + 8, dl->count);
  put_u64le(blob + 16, dl->dev);
  put_u64le(blob + 24, dl->ino);
  return 0;
}

void tdm__deadletter_adopt(tdm_t *t) {
  t->dl.committed = t->dl.written;
  t->dl.durable_count = t->dl.count;
}

void tdm__deadletter_rollback(tdm_t *t) {
  tdm_deadletter_t *dl = &t->dl;

  if (dl->fd < 0 || dl->written == dl->committed)
    return;
  if (truncate_to(dl->fd, dl->committed) != 0) {
    char q[PATH_MAX];
    /* Left as it is, a line would be there twice: the next open (after
       the restart this calls for) cuts it back. */
    tdm__error(&t->log, "--dead-letter %s: cannot cut it back to its last "
               "checkpoint; restart tidemark to have it cut back",
               tdm__quote(dl->path, q, sizeof(q)));
  }
  t->stats.dead_letters -= dl->count - dl->durable_count;
  dl->written = dl->committed;
  dl->count = dl->durable_count;
  dl->need_sync = 1;
}

int tdm__deadletter_blob_count(const char *key, size_t key_len,
                               const void *blob, size_t len, uint64_t *count) {
  size_t n = strlen(TDM_DEADLETTER_KEY);
  if (key_len < n || memcmp(key, TDM_DEADLETTER_KEY, n) != 0)
    return 0;
  *count = len == TDM_DEADLETTER_BLOB_LEN ? get_u64le((const uint8_t *)blob + 8)
                                          : 0;
  return 1;
}
