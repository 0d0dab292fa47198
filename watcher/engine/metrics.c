/*
 * metrics.c: the metrics text of a tdm_t and the --metrics-file writer (see
 * metrics.h). Runs on the thread that owns the engine.
 */
#include "engine/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "engine/engine.h"

/* ---- the text ------------------------------------------------------------ */

typedef struct text {
  char *buf;
  size_t len, cap;
  int oom;
} text_t;

TDM__PRINTF(2, 3)
static void put(text_t *x, const char *fmt, ...) {
  va_list ap;
  int n;

  if (x->oom)
    return;
  for (;;) {
    va_start(ap, fmt);
    n = vsnprintf(x->buf + x->len, x->cap - x->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      x->oom = 1;
      return;
    }
    if ((size_t)n < x->cap - x->len) {
      x->len += (size_t)n;
      return;
    }
    {
      size_t cap = x->cap * 2 + (size_t)n + 1;
      char *b = realloc(x->buf, cap);
      if (b == NULL) {
        x->oom = 1;
        return;
      }
      x->buf = b;
      x->cap = cap;
    }
  }
}

/* One metric without labels: HELP, TYPE, value. */
static void metric(text_t *x, const char *name, const char *type,
                   const char *help, uint64_t v) {
  put(x, "# HELP tidemark_%s %s\n# TYPE tidemark_%s %s\ntidemark_%s %" PRIu64
      "\n", name, help, name, type, name, v);
}

/* The length of the valid UTF-8 sequence at `s` (1 to 4), or 0 when the
   bytes there are not one (a stray or overlong byte, a surrogate, a cut
   sequence). */
static size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  size_t n;
  unsigned min;

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef)
    n = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4)
    n = 4, min = 0x10000;
  else
    return 0;
  unsigned v = c & (0x3f >> (n - 1));
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
      return 0;
    v = (v << 6) | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
    return 0;
  return n;
}

/* A label value, escaped as the text format wants (\\, \", \n). The
   format allows only UTF-8, so a byte that is not part of valid UTF-8 (a
   path or spec can hold any byte) is written as the four characters \xHH
   with its backslash escaped: the scrape stays valid and the byte readable. */
static void put_label(text_t *x, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  while (*u != '\0') {
    size_t n = utf8_len(u);
    if (n == 0) {
      put(x, "\\\\x%02x", *u);
      u++;
    } else if (*u == '\\') {
      put(x, "\\\\");
      u++;
    } else if (*u == '"') {
      put(x, "\\\"");
      u++;
    } else if (*u == '\n') {
      put(x, "\\n");
      u++;
    } else {
      put(x, "%.*s", (int)n, (const char *)u);
      u += n;
    }
  }
}

/* A per-processor counter: field at `off` of tdm_proc_t. */
static void per_proc(text_t *x, const tdm_t *t, const char *name,
                     const char *help, size_t off) {
  put(x, "# HELP tidemark_%s %s\n# TYPE tidemark_%s counter\n", name, help,
      name);
  for (size_t i = 0; i < t->n_procs; i++) {
    const tdm_proc_t *p = &t->procs[i];
    uint64_t v;
    memcpy(&v, (const char *)p + off, sizeof(v));
    put(x, "tidemark_%s{processor=\"", name);
    put_label(x, p->key != NULL ? p->key : "");
    put(x, "\"} %" PRIu64 "\n", v);
  }
}

/* Descriptors open in this process now. */
static uint64_t open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  uint64_t n = 0;
  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n > 0 ? n - 1 : 0; /* not the one opendir holds */
}

/* Bytes seen but not handed over: what a look found beyond the position.
   A file's pending time starts at the first snapshot that sees it. Returns
   the bytes; *oldest gets the earliest pending time (0: none). */
static uint64_t pending_bytes(tdm_t *t, uint64_t now, uint64_t *oldest_out) {
  uint64_t bytes_pending = 0, oldest = 0;

  for (size_t i = 0; i < t->files.n; i++) {
    tdm_file_t *f = t->files.all[i];
    if (f->rec.size > f->pos && f->rec.state != TDM_FILE_FAILED &&
        t->opts.mode == TDM_MODE_TAIL) {
      bytes_pending += f->rec.size - f->pos;
      if (f->pending_ms == 0)
        f->pending_ms = now;
      if (oldest == 0 || f->pending_ms < oldest)
        oldest = f->pending_ms;
    } else {
      f->pending_ms = 0;
    }
  }
  *oldest_out = oldest;
  return bytes_pending;
}

int tdm__metrics_render(tdm_t *t, char **out, size_t *len, uint64_t *tracked,
                        uint64_t *pending) {
  const tdm_stats_t *st = &t->stats;
  text_t x = {NULL, 0, 0, 0};
  uint64_t now = tdm__now_ms(), bytes_pending, oldest;

  bytes_pending = pending_bytes(t, now, &oldest);
  if (tracked != NULL)
    *tracked = tdm__filetable_count(&t->files);
  if (pending != NULL)
    *pending = bytes_pending;

  x.cap = 4096;
  if ((x.buf = malloc(x.cap)) == NULL)
    return -ENOMEM;
  metric(&x, "files_tracked", "gauge", "Files in the state store.",
         (uint64_t)tdm__filetable_count(&t->files));
  per_proc(&x, t, "bytes_delivered_total",
           "Bytes each processor accepted.", offsetof(tdm_proc_t, m_bytes));
  per_proc(&x, t, "records_delivered_total",
           "Records (lines; chunks with --records bytes; files in whole "
           "mode) each processor accepted.",
           offsetof(tdm_proc_t, m_records));
  per_proc(&x, t, "processor_retries_total",
           "Times each processor asked for a chunk again.",
           offsetof(tdm_proc_t, m_retries));
  per_proc(&x, t, "processor_failures_total",
           "Chunks each processor failed.", offsetof(tdm_proc_t, m_failures));
  metric(&x, "dead_letter_records_total", "counter",
         "Records set aside in the --dead-letter file.", st->dead_letters);
  metric(&x, "bytes_pending", "gauge",
         "Bytes seen in tracked files and not yet handed to every processor.",
         bytes_pending);
  put(&x, "# HELP tidemark_oldest_pending_seconds Age of the oldest pending "
          "bytes (since first seen pending), 0 when none.\n"
          "# TYPE tidemark_oldest_pending_seconds gauge\n"
          "tidemark_oldest_pending_seconds %.3f\n",
      oldest != 0 ? (double)(now - oldest) / 1000.0 : 0.0);
  metric(&x, "checkpoints_total", "counter", "Checkpoints committed.",
         st->checkpoints);
  metric(&x, "checkpoint_errors_total", "counter", "Checkpoints that failed.",
         st->checkpoint_errors);
  put(&x, "# HELP tidemark_checkpoint_duration_seconds Time spent in "
          "checkpoints (processor commits and the store transaction).\n"
          "# TYPE tidemark_checkpoint_duration_seconds summary\n"
          "tidemark_checkpoint_duration_seconds_sum %.6f\n"
          "tidemark_checkpoint_duration_seconds_count %" PRIu64 "\n",
      (double)t->checkpoint_ns_sum / 1e9, t->checkpoint_ns_count);
  metric(&x, "rescans_total", "counter",
         "Comparisons of every file with the store (start, overflow, SIGHUP, "
         "sweep).", st->rescans);
  metric(&x, "overflows_total", "counter", "inotify queue overflows.",
         st->overflows);
  metric(&x, "truncations_total", "counter",
         "Files found truncated (restarted at 0).", st->truncations);
  metric(&x, "rewrites_total", "counter",
         "Files found rewritten in place.", st->rewrites);
  metric(&x, "pieces_total", "counter",
         "Records longer than --max-record delivered in pieces.", st->pieces);
  metric(&x, "duplicates_total", "counter",
         "Whole mode: complete files skipped as duplicates.", st->duplicates);
  metric(&x, "files_done_total", "counter",
         "Whole mode: complete files handled.", st->files_done);
  metric(&x, "files_failed_total", "counter",
         "Whole mode: files a processor failed.", st->files_failed);
  metric(&x, "files_forgotten_total", "counter",
         "Whole mode: gone files whose records were dropped after "
         "--forget-after (their content hashes kept).", st->files_forgotten);
  metric(&x, "file_errors_total", "counter", "Files that could not be read.",
         st->file_errors);
  metric(&x, "watches", "gauge", "Directories watched with inotify.",
         st->watches);
  metric(&x, "polled_directories", "gauge",
         "Directories polled because they could not be watched.",
         st->polled_dirs);
  metric(&x, "open_fds", "gauge", "Descriptors open in the process.",
         open_fds());
  metric(&x, "held_files", "gauge", "Tracked files held open.",
         (uint64_t)t->n_open);
  if (x.oom) {
    free(x.buf);
    return -ENOMEM;
  }
  *out = x.buf;
  *len = x.len;
  return 0;
}

int tdm__metrics_write_file(tdm_t *t, const char *path, const char *text,
                            size_t len) {
  static _Thread_local int warned; /* errno last warned about */
  char tmp[PATH_MAX], q[PATH_MAX];
  const char *slash = strrchr(path, '/');
  size_t dlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
  size_t off = 0;
  int fd, rc = 0;

  if ((size_t)snprintf(tmp, sizeof(tmp), "%.*s.%s.XXXXXX", (int)dlen, path,
                       path + dlen) >= sizeof(tmp))
    rc = -ENAMETOOLONG;
  else if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
    rc = -errno;
  else {
    while (off < len && rc == 0) {
      ssize_t n = write(fd, text + off, len - off);
      if (n < 0 && errno != EINTR)
        rc = -errno;
      else if (n > 0)
        off += (size_t)n;
    }
    /* mkstemp makes it 0600; node_exporter may run as another user. */
    if (rc == 0)
      fchmod(fd, 0644);
    if (close(fd) != 0 && rc == 0)
      rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
      rc = -errno;
    if (rc != 0)
      unlink(tmp);
  }
  if (rc != 0 && warned != -rc) {
    warned = -rc;
    tdm__warn(&t->log, "--metrics-file %s: %s", tdm__quote(path, q, sizeof(q)),
              strerror(-rc));
  } else if (rc == 0) {
    warned = 0;
  }
  return rc;
}

void tdm__metrics_checkpointed(tdm_t *t) {
  char *text;
  size_t len;

  if (t->opts.metrics_file != NULL &&
      tdm__metrics_render(t, &text, &len, NULL, NULL) == 0) {
    tdm__metrics_write_file(t, t->opts.metrics_file, text, len);
    free(text);
  }
}
