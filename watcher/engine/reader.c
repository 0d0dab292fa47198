/*
 * reader.c: deliver a file from its position to its current end.
 *
 * Large preads into one buffer (never the whole file in memory). Each read
 * starts at the delivered position; the tail after the last cut (a partial
 * line) is simply read again next time from the page cache, which is cheaper
 * than keeping it and keeps the buffer a single contiguous region.
 */
#include "engine/reader.h"

#include "base/clock.h"
#include "core/decompress.h"
#include "core/framing.h"
#include "core/identity.h"
#include "engine/checkpoint.h"
#include "engine/engine.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

/* The marker of the bookmark after a chunk that ended at `end` of buf. */
static int update_marker(tdm_file_t *f, int fd, const char *buf, size_t end) {
  if (end >= TDM_MARKER_LEN) {
    f->marker_len = TDM_MARKER_LEN;
    f->marker = XXH3_64bits(buf + end - TDM_MARKER_LEN, TDM_MARKER_LEN);
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
  ssize_t n = pread(fd, t->buf, want, (off_t)f->pos);
  int rc;

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
  if (f->pos == 0 && end > 0) {
    tdm_comp_t kind;
    if (tdm__zkind(t->opts.decompress, fd, &kind) == 0 && kind != TDM_COMP_NONE)
      return 0;
  }

  for (;;) {
    ssize_t n;
    size_t cut;
    int piece, rc;
    tdm_chunk_t c;

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

    tdm__chunk_fill(t, f, cut, piece, &c);
    if ((rc = tdm__deliver_checkpointing(t, f, &c)) != 0 ||
        (rc = advance(t, f, fd, cut, piece)) != 0 ||
        (rc = tdm__checkpoint_maybe(t)) != 0)
      return rc;
    if (cut < (size_t)n && (size_t)n < t->buf_cap && f->pos + (n - cut) >= end &&
        t->opts.max_record >= t->buf_cap && !t->ml_on)
      return 0; /* what is left up to `end` is a partial line (multiline:
                   the next frame says whether the rest is one open record) */
  }
}
