/*
 * reader.c: deliver a file from its position to its current end.
 *
 * Large preads into one buffer (never the whole file in memory). Each read
 * starts at the delivered position; the tail after the last cut (a partial
 * line) is simply read again next time from the page cache, which is cheaper
 * than keeping it and keeps the buffer a single contiguous region.
 *
 * Refused records. When a processor fails or rejects a chunk, tdm__deliver
 * has rolled everything back to the last checkpoint (f->pos is the durable
 * bookmark again), and the chunk becomes a suspect (tdm_suspect_t). Reading
 * goes on from the bookmark: chunks are cut so that one ends where the
 * suspect starts, and from there the records of the refused chunk are
 * offered one at a time. The one refused alone is offered again (with a
 * growing pause, and a checkpoint just before it, so that a refusal only
 * rolls back that record) until it was refused --max-tries times (REJECT:
 * once). Then it is settled: with --dead-letter it is written there and the
 * bookmark moves past it, both made durable by one checkpoint before any
 * rollback could take them back (see set_aside); without,
 * the file stops before it, marked failed, and is offered again only on a
 * later pass (run: after a pause that doubles up to a minute).
 */
#include "engine/reader.h"

#include "base/clock.h"
#include "core/decompress.h"
#include "core/framing.h"
#include "core/identity.h"
#include "engine/checkpoint.h"
#include "engine/deadletter.h"
#include "engine/engine.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

/* ---- refused records ---------------------------------------------------- */

#define TRY_PAUSE_MIN_MS 10u      /* between tries of a record alone */
#define TRY_PAUSE_MAX_MS 1000u
#define HOLD_MIN_MS 1000u         /* run, no --dead-letter: a settled record */
#define HOLD_MAX_MS 60000u        /* is offered again after this pause */

/* The suspect of file `f`, or NULL. */
static tdm_suspect_t *suspect_of(tdm_t *t, const tdm_file_t *f) {
  for (size_t i = 0; i < t->n_suspects; i++)
    if (t->suspects[i].file_id == f->rec.id)
      return &t->suspects[i];
  return NULL;
}

/* A new suspect for `f`, zeroed but for its file id; NULL out of memory. */
static tdm_suspect_t *suspect_add(tdm_t *t, const tdm_file_t *f) {
  tdm_suspect_t *s;
  if (t->n_suspects == t->cap_suspects) {
    size_t cap = t->cap_suspects ? t->cap_suspects * 2 : 4;
    tdm_suspect_t *v = realloc(t->suspects, cap * sizeof(*v));
    if (v == NULL)
      return NULL;
    t->suspects = v;
    t->cap_suspects = cap;
  }
  s = &t->suspects[t->n_suspects++];
  memset(s, 0, sizeof(*s));
  s->file_id = f->rec.id;
  return s;
}

static void suspect_drop(tdm_t *t, tdm_suspect_t *s) {
  *s = t->suspects[--t->n_suspects];
}

/* Bytes of the first record of chunk `c` (all of it in bytes mode, or when
   it is a piece of an over-long record). */
static size_t first_record(const tdm_t *t, const tdm_chunk_t *c) {
  const char *nl;
  if (c->record_ends != NULL)
    return c->n_records > 0 ? c->record_ends[0] : c->len;
  if (t->opts.records != TDM_RECORDS_LINES)
    return c->len;
  nl = memchr(c->data, '\n', c->len);
  return nl != NULL ? (size_t)(nl - (const char *)c->data) + 1 : c->len;
}

/* Cut chunk `c` (and *piece) back to its first `n` bytes, a record end. */
static void shorten(tdm_chunk_t *c, size_t n, int *piece) {
  if (n >= c->len)
    return;
  c->len = n;
  *piece = 0;
  c->flags &= ~TDM_CHUNK_PIECE;
  if (c->record_ends != NULL) {
    size_t k = 0;
    while (k < c->n_records && c->record_ends[k] <= n)
      k++;
    c->n_records = k;
  }
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL); /* a signal cuts it short: t->stop is checked */
}

/* The file stops before settled suspect `s` (no --dead-letter): marked
   failed, naming the record and the processor. */
static int stop_at(tdm_t *t, tdm_file_t *f, const tdm_suspect_t *s) {
  char err[TDM_MSG_MAX + 128];
  snprintf(err, sizeof(err), "processor '%s' %s the record at offset "
           "%llu%s%s", s->key ? s->key : "?",
           s->rejected ? "rejected" : "failed", (unsigned long long)s->start,
           s->msg[0] ? ": " : "", s->msg);
  if (f->rec.state != TDM_FILE_FAILED || f->error == NULL ||
      strcmp(f->error, err) != 0) {
    f->rec.state = TDM_FILE_FAILED;
    tdm__file_set_error(f, err);
    f->dirty = 1;
    t->need_checkpoint = 1;
  }
  return TDM_EPROC;
}

/*
 * A processor refused chunk `c` of `f` (tdm__deliver rolled everything
 * back). Make or update the suspect. Returns 0 to read on from the bookmark,
 * TDM_EPROC when the file stops here (said), -ENOMEM.
 */
static int refused(tdm_t *t, tdm_file_t *f, const tdm_chunk_t *c,
                   const tdm_delivery_t *d) {
  tdm_suspect_t *s = suspect_of(t, f);
  char q[PATH_MAX];
  int single = first_record(t, c) == c->len;

  /* Every file went back to its bookmark: those read since the last
     checkpoint are read again (tdm_run_once: another pass; run: a rescan),
     this one at once. */
  if (d->rolled_all)
    t->rolled_back = 1;
  if (s == NULL && (s = suspect_add(t, f)) == NULL)
    return -ENOMEM;
  if (s->generation != f->rec.truncations || c->offset < s->start ||
      c->offset >= s->end) { /* a chunk of its own */
    s->generation = f->rec.truncations;
    s->start = c->offset;
    s->end = c->offset + c->len;
    s->tries = 0;
    s->backoff = 0;
    s->hold_ms = 0;
  } else if (c->offset != s->start) { /* a later record of the chunk */
    s->start = c->offset;
    s->tries = 0;
    s->backoff = 0;
  }
  s->settled = 0;
  s->hold_until_ms = 0;
  s->key = d->fail_key;
  s->rejected = d->fail_rc == TDM_PROC_REJECT;
  memcpy(s->msg, d->fail_msg, sizeof(s->msg));
  if (!single)
    return 0; /* narrow down: its records one at a time */
  s->tries++;
  if (d->fail_rc != TDM_PROC_REJECT && s->tries < t->opts.max_tries) {
    s->backoff = s->backoff == 0 ? TRY_PAUSE_MIN_MS
                 : s->backoff * 2 > TRY_PAUSE_MAX_MS ? TRY_PAUSE_MAX_MS
                                                     : s->backoff * 2;
    tdm__debug(&t->log, "%s: the record at offset %llu was refused %u "
               "time%s; offered again", tdm__quote(f->path, q, sizeof(q)),
               (unsigned long long)s->start, s->tries, s->tries == 1 ? "" : "s");
    sleep_ms(s->backoff);
    return 0;
  }
  s->settled = 1;
  if (t->dl.fd >= 0)
    return 0; /* set aside when the reading reaches it again */
  tdm__error(&t->log, "%s: processor '%s' %s the record at offset %llu "
             "(%zu bytes)%s%s; no --dead-letter to set it aside: the file "
             "stops before it", tdm__quote(f->path, q, sizeof(q)),
             s->key, d->fail_rc == TDM_PROC_REJECT ? "rejects"
                                                   : "keeps refusing",
             (unsigned long long)s->start, c->len, s->msg[0] ? ": " : "",
             s->msg);
  if (t->live != NULL) {
    s->hold_ms = s->hold_ms < HOLD_MIN_MS ? HOLD_MIN_MS
                 : s->hold_ms * 2 > HOLD_MAX_MS ? HOLD_MAX_MS : s->hold_ms * 2;
    s->hold_until_ms = tdm__now_ms() + s->hold_ms;
  } else {
    s->hold_until_ms = UINT64_MAX; /* tdm_run_once: until the next call */
  }
  return stop_at(t, f, s);
}

/* Set the settled record at f->pos (the first `n` bytes of t->buf) aside in
   the dead-letter file, move past it and checkpoint. */
static int set_aside(tdm_t *t, tdm_file_t *f, int fd, tdm_suspect_t *s,
                     size_t n, int piece);
static int advance(tdm_t *t, tdm_file_t *f, int fd, size_t cut, int piece);

void tdm__suspects_release(tdm_t *t) {
  for (size_t i = 0; i < t->n_suspects; i++)
    if (t->suspects[i].hold_until_ms == UINT64_MAX)
      t->suspects[i].hold_until_ms = 0;
}

/* The marker of the bookmark after a chunk that ended at `end` of buf. */
static int update_marker(tdm_file_t *f, int fd, const char *buf, size_t end) {
  if (end >= TDM_MARKER_LEN) {
    f->marker_len = TDM_MARKER_LEN;
    f->marker = XXH3_64bits(buf + end - TDM_MARKER_LEN, TDM_MARKER_LEN);
    return 0;
  }
  if (f->pos == end) { /* the chunk began at 0: all of [0, pos) is in buf
                          (a small file's first read: no pread again) */
    f->marker_len = (uint32_t)end;
    f->marker = XXH3_64bits(buf, end);
    return 0;
  }
  return tdm__marker(fd, f->pos, &f->marker, &f->marker_len);
}

/* pread up to t->buf_cap bytes of `f` at its bookmark, not past `end`,
   into t->buf. Returns the bytes read (0: none there any more), -EINTR to
   try again, or another negative errno (said and counted). */
static ssize_t read_at(tdm_t *t, tdm_file_t *f, int fd, uint64_t end) {
  char q[PATH_MAX];
  size_t want = end - f->pos < t->buf_cap ? (size_t)(end - f->pos) : t->buf_cap;
  ssize_t n;
  int rc;

  if (fd == t->head_fd && f->pos == 0 && want <= t->head_len) {
    t->head_fd = -1; /* the head a new file's fingerprint just read */
    return (ssize_t)want;
  }
  t->head_fd = -1;
  n = pread(fd, t->buf, want, (off_t)f->pos);
  if (n >= 0)
    return n;
  if (errno == EINTR)
    return -EINTR;
  rc = -errno;
  tdm__warn(&t->log, "%s: read at offset %llu: %s",
            tdm__quote(f->path, q, sizeof(q)), (unsigned long long)f->pos,
            strerror(-rc));
  t->stats.file_errors++;
  return rc;
}

/* Where the `n` bytes read into t->buf are cut (0: no whole record yet);
   `c` gets the record ends (multiline), *piece whether it is a piece of a
   longer record. Returns (size_t)-1 when out of memory. */
static size_t cut_read(tdm_t *t, const tdm_file_t *f, size_t n, uint64_t end,
                       tdm_chunk_t *c, int *piece) {
  size_t cut;

  if (!t->ml_on)
    return tdm__frame(t->buf, n, t->buf_cap, t->opts.records,
                      t->opts.max_record, piece);
  /* The last record is complete only when the file has been quiet long
     enough and this read reaches its end. */
  cut = tdm__frame_records(t->buf, n, t->buf_cap, t->opts.max_record,
                           &t->ml_re, t->ml_flush && f->pos + (uint64_t)n >= end,
                           &t->ends, piece);
  if (cut == (size_t)-1)
    return cut;
  c->record_ends = t->ends.v;
  c->n_records = t->ends.n;
  return cut;
}

void tdm__advance(tdm_t *t, tdm_file_t *f, size_t cut, int piece) {
  char q[PATH_MAX];

  if (piece && !f->in_piece) {
    f->rec.pieces++;
    t->stats.pieces++;
    tdm__debug(&t->log, "%s: record at offset %llu is longer than %zu bytes: "
               "delivered in pieces", tdm__quote(f->path, q, sizeof(q)),
               (unsigned long long)f->pos, (size_t)t->opts.max_record);
  }
  f->in_piece = (unsigned)piece;
  f->restart = 0;
  f->pos += cut;
  f->dirty = 1;
  f->rec.updated_ns = tdm__wall_ns();
  if (f->rec.state == TDM_FILE_FAILED) { /* a later pass got through */
    f->rec.state = TDM_FILE_ACTIVE;
    tdm__file_set_error(f, NULL);
  }
  t->stats.bytes += cut;
  t->stats.chunks++;
  t->bytes_since_checkpoint += cut;
  t->need_checkpoint = 1;
}

/* `cut` bytes of `f` at its bookmark were delivered (a piece of a longer
   record if `piece`): move the bookmark and the marker past them. Returns
   0, or the marker's read error (said and counted). */
static int advance(tdm_t *t, tdm_file_t *f, int fd, size_t cut, int piece) {
  char q[PATH_MAX];
  int rc;

  tdm__advance(t, f, cut, piece);
  if ((rc = update_marker(f, fd, t->buf, cut)) != 0) {
    tdm__warn(&t->log, "%s: read: %s", tdm__quote(f->path, q, sizeof(q)),
              strerror(-rc));
    t->stats.file_errors++;
  }
  return rc;
}

static int set_aside(tdm_t *t, tdm_file_t *f, int fd, tdm_suspect_t *s,
                     size_t n, int piece) {
  char q[PATH_MAX], dq[PATH_MAX];
  int rc = tdm__deadletter_write(t, f, f->pos, t->buf, n, s->key ? s->key : "",
                                 s->msg);
  if (rc != 0) {
    tdm__error(&t->log, "--dead-letter %s: %s; %s stops before the record at "
               "offset %llu", tdm__quote(t->dl.path, dq, sizeof(dq)),
               strerror(-rc), tdm__quote(f->path, q, sizeof(q)),
               (unsigned long long)f->pos);
    return stop_at(t, f, s);
  }
  tdm__warn(&t->log, "%s: the record at offset %llu (%zu bytes) was set aside "
            "in %s: processor '%s' %s%s%s", tdm__quote(f->path, q, sizeof(q)),
            (unsigned long long)f->pos, n,
            tdm__quote(t->dl.path, dq, sizeof(dq)), s->key ? s->key : "?",
            s->rejected ? "rejects it" : "kept failing it",
            s->msg[0] ? ": " : "", s->msg);
  if ((rc = advance(t, f, fd, n, piece)) != 0)
    return rc;
  if (f->pos < s->end) { /* the rest of the refused chunk, one at a time */
    s->start = f->pos;
    s->tries = 0;
    s->backoff = 0;
    s->settled = 0;
  } else {
    suspect_drop(t, s);
  }
  /* A processor accepted something since the last checkpoint: a refusal
     now would roll files back, this one too. Durable at once, then. */
  if (t->accepted)
    return tdm__checkpoint(t);
  /* Else it is made durable with the next chunk a processor accepts
     (tdm__read), or by the next checkpoint if none comes first: until
     then a refusal rolls back only the processors (nothing accepted since
     the last checkpoint), never this; after a crash it is set aside
     again. */
  t->unsaved_dead = 1;
  return tdm__checkpoint_maybe(t);
}

/*
 * Where a suspect of `f` lies in the chunk `c` (at f->pos, `*piece`):
 * shorten the chunk to end where the suspect starts, or to the suspect's
 * first record; set a settled record aside. Returns 0 to deliver `c`,
 * 1 when the record was set aside (read on), TDM_EPROC when the file stops
 * here, or a checkpoint's error.
 */
static int narrow(tdm_t *t, tdm_file_t *f, int fd, tdm_chunk_t *c, int *piece) {
  tdm_suspect_t *s = suspect_of(t, f);
  size_t n;
  int rc;

  if (s == NULL)
    return 0;
  if (f->pos > s->start || s->start >= s->end ||
      s->generation != f->rec.truncations) {
    suspect_drop(t, s); /* passed, or the file was truncated since */
    return 0;
  }
  if (f->pos < s->start) {
    if (s->start - f->pos < c->len)
      shorten(c, (size_t)(s->start - f->pos), piece);
    return 0;
  }
  n = first_record(t, c);
  if (n < c->len)
    shorten(c, n, piece);
  if (s->settled && t->dl.fd >= 0)
    return (rc = set_aside(t, f, fd, s, c->len, *piece)) != 0 ? rc : 1;
  if (s->settled) { /* no --dead-letter: held long enough, tries again */
    if (tdm__now_ms() < s->hold_until_ms)
      return stop_at(t, f, s);
    s->settled = 0;
    s->tries = 0;
    s->backoff = 0;
  }
  /* A record refused alone before: what was accepted before it is made
     durable first, so that its next refusal rolls back nothing else. */
  if (s->tries > 0 && t->accepted && t->need_checkpoint &&
      (rc = tdm__checkpoint(t)) != 0)
    return rc;
  return 0;
}

/* The chunk `c` at `start` was delivered: a suspect it covered is over (a
   record that went through, or the next record of a narrowed chunk). */
static void delivered(tdm_t *t, const tdm_file_t *f, uint64_t start) {
  tdm_suspect_t *s = suspect_of(t, f);
  if (s == NULL || start != s->start)
    return;
  if (f->pos >= s->end)
    suspect_drop(t, s);
  else
    s->start = f->pos, s->tries = 0, s->backoff = 0;
}

void tdm__chunk_fill(const tdm_t *t, const tdm_file_t *f, size_t cut,
                     int piece, tdm_chunk_t *c) {
  c->size = (uint32_t)sizeof(*c);
  c->file_id = f->rec.id;
  c->path = f->path;
  c->offset = f->pos;
  c->data = t->buf;
  c->len = cut;
  c->flags = (piece ? TDM_CHUNK_PIECE : 0) | (f->restart ? TDM_CHUNK_RESTART : 0);
  c->generation = f->rec.truncations;
}

int tdm__read(tdm_t *t, tdm_file_t *f, int fd, uint64_t end) {
  /* A file first met empty (a compressor had just created it) is held as a
     plain one: its bytes are never read as text. tdm__zlook reads it once
     it is complete. */
  if (f->pos == 0 && end > 0 && fd != t->plain_fd) {
    tdm_comp_t kind;
    if (tdm__zkind(t->opts.decompress, fd, &kind) == 0 && kind != TDM_COMP_NONE)
      return 0;
  }

  for (;;) {
    ssize_t n;
    size_t cut, framed;
    int piece, rc;
    tdm_chunk_t c;
    tdm_delivery_t d;
    uint64_t start;

    if (t->stop)
      return TDM_ESTOPPED;
    if (f->pos >= end)
      return 0;
    if ((n = read_at(t, f, fd, end)) == -EINTR)
      continue;
    if (n < 0)
      return (int)n;
    if (n == 0)
      return 0; /* shrank meanwhile: the next look says truncated */
    memset(&c, 0, sizeof(c));
    if ((cut = cut_read(t, f, (size_t)n, end, &c, &piece)) == (size_t)-1)
      return -ENOMEM;
    if (cut == 0)
      return 0;
    framed = cut;

    tdm__chunk_fill(t, f, cut, piece, &c);
    start = f->pos;
    if (t->n_suspects > 0) {
      if ((rc = narrow(t, f, fd, &c, &piece)) == 1)
        continue; /* set aside: read on after it */
      if (rc != 0)
        return rc;
      cut = c.len;
    }
    memset(&d, 0, sizeof(d));
    d.quiet = t->n_suspects > 0 && suspect_of(t, f) != NULL;
    rc = tdm__deliver_checkpointing_d(t, f, &c, &d);
    if (rc == TDM_EPROC && d.fail_rc != 0) {
      if ((rc = refused(t, f, &c, &d)) != 0)
        return rc;
      continue; /* rolled back: read on from the bookmark */
    }
    if (rc != 0 || (rc = advance(t, f, fd, cut, piece)) != 0)
      return rc;
    if (t->n_suspects > 0)
      delivered(t, f, start);
    /* Records set aside before this chunk are durable with it: from now
       on a refusal rolls files back, and must not take them back. */
    if ((rc = t->unsaved_dead ? tdm__checkpoint(t)
                              : tdm__checkpoint_maybe(t)) != 0)
      return rc;
    if (cut == framed && framed < (size_t)n && (size_t)n < t->buf_cap &&
        start + (size_t)n >= end &&
        t->opts.max_record >= t->buf_cap && !t->ml_on)
      return 0; /* what is left up to `end` is a partial line (multiline:
                   the next frame says whether the rest is one open record) */
  }
}
