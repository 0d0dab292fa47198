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
#include "core/framing.h"
#include "core/identity.h"
#include "engine/checkpoint.h"
#include "engine/engine.h"
#include "engine/zread.h"

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

int tdm__read(tdm_t *t, tdm_file_t *f, int fd, uint64_t end) {
  char q[PATH_MAX];

  /* A file first met empty (a compressor had just created it) is held as a
     plain one: its bytes are never read as text. tdm__zlook reads it once
     it is complete. */
  if (f->pos == 0 && end > 0) {
    tdm_comp_t kind;
    if (tdm__zkind(t, fd, &kind) == 0 && kind != TDM_COMP_NONE)
      return 0;
  }

  for (;;) {
    ssize_t n;
    size_t cut;
    int piece, rc;
    tdm_chunk_t c;

    size_t want;

    if (t->stop)
      return TDM_ESTOPPED;
    if (f->pos >= end)
      return 0;
    want = end - f->pos < t->buf_cap ? (size_t)(end - f->pos) : t->buf_cap;
    n = pread(fd, t->buf, want, (off_t)f->pos);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rc = -errno;
      tdm__warn(&t->log, "%s: read at offset %llu: %s",
                tdm__quote(f->path, q, sizeof(q)), (unsigned long long)f->pos,
                strerror(-rc));
      t->stats.file_errors++;
      return rc;
    }
    if (n == 0)
      return 0; /* shrank meanwhile: the next look says truncated */
    memset(&c, 0, sizeof(c));
    if (t->ml_on) {
      /* The last record is complete only when the file has been quiet long
         enough and this read reaches its end. */
      cut = tdm__frame_records(t->buf, (size_t)n, t->buf_cap, t->opts.max_record,
                               &t->ml_re, t->ml_flush && f->pos + (uint64_t)n >= end,
                               &t->ends, &piece);
      if (cut == (size_t)-1)
        return -ENOMEM;
      c.record_ends = t->ends.v;
      c.n_records = t->ends.n;
    } else {
      cut = tdm__frame(t->buf, (size_t)n, t->buf_cap, t->opts.records,
                       t->opts.max_record, &piece);
    }
    if (cut == 0)
      return 0;

    c.size = (uint32_t)sizeof(c);
    c.file_id = f->rec.id;
    c.path = f->path;
    c.offset = f->pos;
    c.data = t->buf;
    c.len = cut;
    c.flags = (piece ? TDM_CHUNK_PIECE : 0) | (f->restart ? TDM_CHUNK_RESTART : 0);
    rc = tdm__deliver_checkpointing(t, f, &c);
    if (rc != 0)
      return rc;

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
    if ((rc = update_marker(f, fd, t->buf, cut)) != 0) {
      tdm__warn(&t->log, "%s: read: %s", tdm__quote(f->path, q, sizeof(q)),
                strerror(-rc));
      t->stats.file_errors++;
      return rc;
    }
    if ((rc = tdm__checkpoint_maybe(t)) != 0)
      return rc;
    if (cut < (size_t)n && (size_t)n < t->buf_cap && f->pos + (n - cut) >= end &&
        t->opts.max_record >= t->buf_cap && !t->ml_on)
      return 0; /* what is left up to `end` is a partial line (multiline:
                   the next frame says whether the rest is one open record) */
  }
}
