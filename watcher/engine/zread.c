/*
 * zread.c: compressed files in tail mode (and the streaming helper whole
 * mode hashes and delivers them with).
 *
 * A compressed file is read once it is complete (renamed into the tree,
 * closed by its last writer, or unchanged for --settle-ms), from its
 * bookmark to its end, in uncompressed bytes. Its fingerprint and markers
 * are those of its uncompressed content, exactly as if it were the plain
 * file, so the `.gz` logrotate makes of a log we were following is
 * recognised:
 *
 *   - a file that is tracked (or a ghost: deleted/rotated away not long ago)
 *     whose fingerprint matches the uncompressed head, and whose marker
 *     matches the uncompressed bytes before its bookmark, hands its bookmark
 *     over: the compressed copy continues from there, so nothing is
 *     delivered twice, and a tail the plain file still had unread is read
 *     from the copy, so nothing is lost;
 *   - the plain file's record, when that file is gone, goes in the same
 *     checkpoint.
 *
 * Resuming inside a compressed file after a restart streams up to the
 * bookmark without delivering (there is no random access).
 */
#include "engine/zread.h"
#include "base/clock.h"
#include "core/framing.h"
#include "core/identity.h"
#include "engine/chain.h"
#include "engine/checkpoint.h"
#include "engine/engine.h"
#include "engine/files.h"
#include "engine/mode.h"
#include "engine/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

#define MAX_CANDIDATES 8

/* Say what stopped decoding `path`, naming the offset. `whole`: the file
   was being hashed for whole mode, so none of it goes out. */
static void zerror_as(tdm_t *t, const char *path, tdm_comp_t kind,
                      const tdm_dec_t *d, int rc, int whole) {
  char q[PATH_MAX], after[96];
  const char *why = tdm__dec_why(d), *unit = kind == TDM_COMP_GZIP ? "member" : "frame";

  tdm__quote(path, q, sizeof(q));
  t->stats.file_errors++;
  if (rc == -EBADMSG || rc == -EPIPE) {
    t->stats.compressed_errors++;
    if (whole)
      snprintf(after, sizeof(after), "the file is not delivered");
    else
      snprintf(after, sizeof(after), "none of it delivered (the file stops "
               "at uncompressed offset %llu)",
               (unsigned long long)tdm__dec_pos(d));
    if (strcmp(why, "unverifiable") == 0)
      tdm__error(&t->log, "%s: %s %s without a checksum at compressed offset "
                 "%llu: it cannot be verified; %s", q, tdm__comp_name(kind),
                 unit, (unsigned long long)tdm__dec_in(d), after);
    else
      tdm__error(&t->log, "%s: %s %s data at compressed offset %llu (a %s "
                 "%s): %s", q, rc == -EBADMSG ? "corrupt" : "truncated",
                 tdm__comp_name(kind), (unsigned long long)tdm__dec_in(d), unit,
                 rc == -EBADMSG ? "that fails its check" : "cut short", after);
  } else {
    tdm__warn(&t->log, "%s: read: %s", q, strerror(-rc));
  }
}

static void zerror(tdm_t *t, const char *path, tdm_comp_t kind,
                   const tdm_dec_t *d, int rc) {
  zerror_as(t, path, kind, d, rc, 0);
}

/* Up to `cap` uncompressed bytes from the start into `out`. */
static int zhead(int fd, tdm_comp_t kind, char *out, size_t cap, size_t *len,
                 tdm_dec_t **keep) {
  tdm_dec_t *d;
  int rc = tdm__dec_open(fd, kind, &d);

  *len = 0;
  if (rc != 0)
    return rc;
  tdm__dec_unverified(d); /* a fingerprint: nothing of it is delivered */
  while (*len < cap) {
    ssize_t n = tdm__dec_read(d, out + *len, cap - *len);
    if (n <= 0) {
      rc = (int)n;
      break;
    }
    *len += (size_t)n;
  }
  *keep = d;
  return rc;
}

/* Do the `mlen` uncompressed bytes before `pos` hash to `marker`? 1 yes,
   0 no, 2 the content ends before `pos` (its length in *ulen), negative on
   a read error. */
static int marker_at(int fd, tdm_comp_t kind, uint64_t pos, uint32_t mlen,
                     uint64_t marker, uint64_t *ulen) {
  char b[TDM_MARKER_LEN];
  size_t got = 0;
  tdm_dec_t *d;
  int rc;

  if (pos == 0 || mlen == 0)
    return 1;
  if (mlen > TDM_MARKER_LEN || mlen > pos)
    return 0;
  if ((rc = tdm__dec_open(fd, kind, &d)) != 0)
    return rc;
  tdm__dec_unverified(d); /* a marker: nothing of it is delivered */
  rc = tdm__dec_skip(d, pos - mlen);
  while (rc == 0 && got < mlen) {
    ssize_t n = tdm__dec_read(d, b + got, mlen - got);
    if (n <= 0)
      rc = n < 0 ? (int)n : -ENODATA;
    else
      got += (size_t)n;
  }
  *ulen = tdm__dec_pos(d);
  tdm__dec_close(d);
  if (rc == -ENODATA)
    return 2;
  if (rc == -EBADMSG || rc == -EPIPE)
    return 0;
  if (rc != 0)
    return rc;
  return XXH3_64bits(b, mlen) == marker;
}

/* Is the file `g` no longer anywhere we could read it from? */
static int gone(const tdm_file_t *g) {
  struct stat st;
  if (g->rec.state == TDM_FILE_GONE)
    return 1;
  if (lstat(g->path, &st) == 0 && (uint64_t)st.st_dev == g->rec.dev &&
      (uint64_t)st.st_ino == g->rec.ino)
    return 0;
  return g->fd < 0 || fstat(g->fd, &st) != 0 || st.st_nlink == 0;
}

/*
 * The tracked file (or ghost) this compressed content continues, or NULL.
 * A copy shorter than the bookmark with the same head (the writer went on
 * writing into the plain file after the compressor read it) continues too:
 * *short_len is then its length, and nothing of it is new.
 */
static tdm_file_t *find_origin(tdm_t *t, const tdm_file_t *self, int fd,
                               tdm_comp_t kind, const char *head, size_t hlen,
                               uint64_t *short_len) {
  tdm_file_t *cand[MAX_CANDIDATES], *best = NULL;
  size_t n = 0;

  *short_len = UINT64_MAX;
  /* Cold files (at rest) with that head are made hot first, to be
     candidates below (the last cold file is swapped into i). */
  for (size_t i = 0; i < t->files.n_cold;) {
    tdm_cold_t *c = &t->files.cold[i];
    if (c->fp_len == 0 || c->fp_len > hlen ||
        XXH3_64bits(head, c->fp_len) != c->fp_hash ||
        tdm__filetable_thaw(&t->files, c) == NULL)
      i++; /* one that cannot be made hot is no candidate */
  }
  for (size_t i = 0; i < t->files.n && n < MAX_CANDIDATES; i++) {
    tdm_file_t *g = t->files.all[i];
    if (g == self || g->rec.fp_len == 0 || g->rec.fp_len > hlen ||
        g->rec.state == TDM_FILE_FAILED ||
        XXH3_64bits(head, g->rec.fp_len) != g->rec.fp_hash)
      continue;
    cand[n++] = g;
  }
  for (size_t i = 0; i < n; i++) {
    tdm_file_t *g = cand[i];
    uint64_t ulen = 0;
    int m;
    if (best != NULL && g->pos <= best->pos)
      continue;
    m = marker_at(fd, kind, g->pos, g->marker_len, g->marker, &ulen);
    if (m == 1 || m == 2) {
      best = g;
      *short_len = m == 2 ? ulen : UINT64_MAX;
    }
  }
  return best;
}

/* Complete: renamed in, closed by a last writer, or held still long enough. */
static int complete(tdm_t *t, int fd, const struct stat *st, unsigned hints) {
  if (hints & TDM_HINT_COMPLETE)
    return 1;
  if (tdm__wall_ns() - mtime_ns(st) >= (int64_t)t->opts.settle_ms * 1000000)
    return 1;
  if (hints & TDM_HINT_CLOSED) {
    /* Nobody has it open for writing (see whole.c's no_writers). */
    if (fcntl(fd, F_SETSIG, SIGURG) != 0 || fcntl(fd, F_SETLEASE, F_RDLCK) != 0)
      return 0;
    (void)fcntl(fd, F_SETLEASE, F_UNLCK);
    return 1;
  }
  return 0;
}

/* A record for the compressed file at `path`, starting at `pos`. */
static tdm_file_t *track(tdm_t *t, const char *path, const struct stat *st,
                         uint64_t fp_hash, uint32_t fp_len) {
  tdm_file_rec_t rec;
  tdm_file_t *f;

  memset(&rec, 0, sizeof(rec));
  rec.state = TDM_FILE_ACTIVE;
  rec.fp_hash = fp_hash;
  rec.fp_len = fp_len;
  if ((f = tdm__track(t, path, st, &rec)) != NULL)
    f->seen = 1;
  return f;
}

/* The bookmark after `cut` more bytes at `buf`: keep the last
   TDM_MARKER_LEN bytes delivered in `tail`. */
static void advance_marker(tdm_file_t *f, char *tail, size_t *tail_len,
                           const char *buf, size_t cut) {
  if (cut >= TDM_MARKER_LEN) {
    memcpy(tail, buf + cut - TDM_MARKER_LEN, TDM_MARKER_LEN);
    *tail_len = TDM_MARKER_LEN;
  } else {
    size_t keep = *tail_len < TDM_MARKER_LEN - cut ? *tail_len
                                                   : TDM_MARKER_LEN - cut;
    memmove(tail, tail + *tail_len - keep, keep);
    memcpy(tail + keep, buf, cut);
    *tail_len = keep + cut;
  }
  f->marker_len = (uint32_t)*tail_len;
  f->marker = XXH3_64bits(tail, *tail_len);
}

/*
 * Read `f` from f->pos to the end of the stream. 1 when the bytes before
 * the bookmark are not what the marker says (the content changed), else as
 * tdm__read. The last record is delivered even without its newline: a
 * complete compressed file does not grow.
 */
/* Skip the stream `d` to `f`'s bookmark, reading the bytes before it into
   `tail` (*tail_len of them). Returns 0 when they match f's marker, 1 when
   they do not (or the stream is shorter), or a decoding error (said). */
static int zverify(tdm_t *t, tdm_file_t *f, tdm_dec_t *d, tdm_comp_t kind,
                   char *tail, size_t *tail_len) {
  int rc = tdm__dec_skip(d, f->pos - f->marker_len);

  while (rc == 0 && *tail_len < f->marker_len) {
    ssize_t n = tdm__dec_read(d, tail + *tail_len, f->marker_len - *tail_len);
    if (n <= 0)
      rc = n < 0 ? (int)n : -ENODATA;
    else
      *tail_len += (size_t)n;
  }
  if (rc == -ENODATA ||
      (rc == 0 && f->marker_len > 0 && XXH3_64bits(tail, *tail_len) != f->marker))
    return 1;
  if (rc != 0)
    zerror(t, f->path, kind, d, rc);
  return rc;
}

/* Hand the first `cut` bytes of t->buf (a piece of a record if `piece`) to
   the processors and move `f`'s bookmark and marker past them. Returns 0 or
   what tdm__deliver_checkpointing returns. */
static int zdeliver(tdm_t *t, tdm_file_t *f, size_t cut, int piece,
                    char *tail, size_t *tail_len) {
  tdm_chunk_t c;
  int rc;

  memset(&c, 0, sizeof(c));
  if (t->ml_on) {
    c.record_ends = t->ends.v;
    c.n_records = t->ends.n;
  }
  tdm__chunk_fill(t, f, cut, piece, &c);
  if ((rc = tdm__deliver_checkpointing(t, f, &c)) != 0)
    return rc;
  tdm__advance(t, f, cut, piece);
  advance_marker(f, tail, tail_len, t->buf, cut);
  return 0;
}

/* `f` (of stat `st`) was read to its end, or to the damage `err` (0:
   none): not again until it changes. */
static void zdone(tdm_t *t, tdm_file_t *f, tdm_dec_t *d, tdm_comp_t kind,
                  const struct stat *st, int err) {
  char q[PATH_MAX];

  f->rec.size = (uint64_t)st->st_size;
  f->rec.mtime_ns = mtime_ns(st);
  f->dirty = 1;
  t->need_checkpoint = 1;
  if (err != 0) {
    zerror(t, f->path, kind, d, err);
    tdm__file_set_error(f, err == -EBADMSG ? "corrupt compressed data"
                                           : "truncated compressed data");
  } else {
    t->stats.compressed_files++;
    if (f->error != NULL)
      tdm__file_set_error(f, NULL);
    tdm__debug(&t->log, "%s: %s, read to its end (%llu bytes uncompressed)",
               tdm__quote(f->path, q, sizeof(q)), tdm__comp_name(kind),
               (unsigned long long)f->pos);
  }
}

static int zread(tdm_t *t, tdm_file_t *f, int fd, tdm_comp_t kind,
                 const struct stat *st) {
  char tail[TDM_MARKER_LEN];
  size_t tail_len = 0, have = 0;
  int eof = 0, err = 0, rc;
  tdm_dec_t *d;

  if ((rc = tdm__dec_open(fd, kind, &d)) != 0)
    return rc;
  if ((rc = zverify(t, f, d, kind, tail, &tail_len)) != 0) {
    tdm__dec_close(d);
    return rc;
  }

  for (;;) {
    size_t cut;
    int piece;

    if (t->stop) {
      rc = TDM_ESTOPPED;
      break;
    }
    if (!eof && have < t->buf_cap) {
      ssize_t n = tdm__dec_read(d, t->buf + have, t->buf_cap - have);
      if (n < 0)
        err = (int)n;
      if (n <= 0)
        eof = 1;
      else
        have += (size_t)n;
    }
    if (have == 0)
      break;
    if (t->ml_on) {
      cut = tdm__frame_records(t->buf, have, t->buf_cap, t->opts.max_record,
                               &t->ml_re, eof && err == 0, &t->ends, &piece);
      if (cut == (size_t)-1) {
        rc = -ENOMEM;
        break;
      }
    } else {
      cut = tdm__frame(t->buf, have, t->buf_cap, t->opts.records,
                       t->opts.max_record, &piece);
    }
    if (cut == 0) {
      if (!eof)
        continue;
      if (err != 0)
        break; /* the bookmark stays at the last whole record */
      cut = have; /* the last record, without its newline */
      t->ends.n = 0;
      if (t->ml_on && t->ends.cap > 0) {
        t->ends.v[0] = (uint32_t)have;
        t->ends.n = 1;
      }
    }
    if ((rc = zdeliver(t, f, cut, piece, tail, &tail_len)) != 0)
      break;
    memmove(t->buf, t->buf + cut, have - cut);
    have -= cut;
    if ((rc = tdm__checkpoint_maybe(t)) != 0)
      break;
  }
  if (rc == 0)
    zdone(t, f, d, kind, st, err);
  tdm__dec_close(d);
  return rc;
}

/* The compressed file at `path` (`f`, if known) is still being written: a
   placeholder (no fingerprint yet) that the settle recheck looks at again.
   Returns 0 or -ENOMEM. */
static int zwait(tdm_t *t, tdm_file_t *f, const char *path,
                 const struct stat *st) {
  if (f == NULL) {
    if ((f = track(t, path, st, 0, 0)) == NULL)
      return -ENOMEM;
    f->rec.mtime_ns = -1;
  }
  f->settling = 1;
  tdm__set_waiting(t, f, 1);
  return 0;
}

/* The uncompressed head of the file at `fd` into `head` (*hlen bytes; a
   damaged stream gives what precedes the damage). Returns 0 or the error
   (said). */
static int zhead_of(tdm_t *t, const char *path, int fd, tdm_comp_t kind,
                    char *head, size_t cap, size_t *hlen) {
  tdm_dec_t *d = NULL;
  int rc = zhead(fd, kind, head, cap, hlen, &d);

  if (rc != 0 && rc != -EBADMSG && rc != -EPIPE) {
    if (d != NULL)
      zerror(t, path, kind, d, rc);
    tdm__dec_close(d);
    return rc;
  }
  tdm__dec_close(d);
  return 0;
}

int tdm__zlook(tdm_t *t, tdm_file_t *f, const char *path, int fd,
               const struct stat *st, tdm_comp_t kind, unsigned hints) {
  char head[TDM_FP_CAP], q[PATH_MAX];
  size_t hlen = 0;
  uint64_t fp, short_len = UINT64_MAX;
  tdm_file_t *o = NULL;
  int rc;

  if (!complete(t, fd, st, hints))
    return zwait(t, f, path, st);
  if (f != NULL) {
    f->settling = 0;
    tdm__set_waiting(t, f, 0);
  }
  if ((rc = zhead_of(t, path, fd, kind, head, sizeof(head), &hlen)) != 0)
    return rc;
  fp = XXH3_64bits(head, hlen);

  /* Known and fingerprinted: the same content, from its bookmark. While
     nothing of it is durable (its record goes to the store before its first
     chunk: a kill -9 may come before a checkpoint moved its bookmark), it
     may continue a file we followed, as when it was new. */
  if (f != NULL && f->rec.fp_len > 0) {
    if (f->rec.fp_len <= hlen && XXH3_64bits(head, f->rec.fp_len) == f->rec.fp_hash) {
      if (f->pos == 0 && f->rec.offset == 0)
        o = find_origin(t, f, fd, kind, head, hlen, &short_len);
      if (o == NULL && (rc = zread(t, f, fd, kind, st)) != 1)
        return rc;
    }
    if (o == NULL) {
      /* Not the content this record knew (changed, or an inode of a
         deleted file given to this one): the old record stays a ghost, so
         that a compressed copy of it still continues its bookmark. */
      tdm__info(&t->log, "%s: not the content its record knew: a new file",
                tdm__quote(path, q, sizeof(q)));
      t->stats.rewrites++;
      if ((rc = tdm__retire(t, f)) != 0)
        return rc;
      f = NULL;
    }
  }

  /* New: does it continue a file we followed? */
  if (o == NULL)
    o = find_origin(t, f, fd, kind, head, hlen, &short_len);
  if (f == NULL) {
    if ((f = track(t, path, st, fp, (uint32_t)hlen)) == NULL)
      return -ENOMEM;
  } else {
    f->rec.fp_hash = fp;
    f->rec.fp_len = (uint32_t)hlen;
    f->dirty = 1;
  }
  if (o != NULL && short_len != UINT64_MAX) {
    f->pos = short_len; /* all of it was delivered from the plain file */
    f->marker = 0;
    f->marker_len = 0;
  } else if (o != NULL) {
    f->pos = o->pos;
    f->marker = o->marker;
    f->marker_len = o->marker_len;
  }
  if (o != NULL) {
    /* What the store says of `o` is what the processors hold of this
       content now: this record starts there in the store (it goes there
       before its first chunk, and `o` may be a ghost never written, or
       forgotten just below), and a rollback comes back to it. */
    if (o->durable_offset < f->pos) {
      f->durable_offset = o->durable_offset;
      f->durable_marker = o->durable_marker;
      f->durable_marker_len = o->durable_marker_len;
    } else {
      f->durable_offset = f->pos;
      f->durable_marker = f->marker;
      f->durable_marker_len = f->marker_len;
    }
    t->stats.compressed_resumed++;
    tdm__info(&t->log, "%s: %s copy of %s: continues from its bookmark at "
              "%llu", tdm__quote(path, q, sizeof(q)), tdm__comp_name(kind),
              o->path, (unsigned long long)o->pos);
    if (gone(o) && (rc = tdm__forget(t, o)) != 0)
      return rc;
  } else {
    tdm__debug(&t->log, "%s: new %s file (id %llu)",
               tdm__quote(path, q, sizeof(q)), tdm__comp_name(kind),
               (unsigned long long)f->rec.id);
  }
  rc = zread(t, f, fd, kind, st);
  return rc == 1 ? 0 : rc;
}

int tdm__zstream(tdm_t *t, const char *path, int fd, tdm_comp_t kind,
                 int (*cb)(void *arg, const char *buf, size_t n), void *arg) {
  tdm_dec_t *d;
  int rc;

  if ((rc = tdm__dec_open(fd, kind, &d)) != 0)
    return rc;
  for (;;) {
    ssize_t n = tdm__dec_read(d, t->buf, t->buf_cap);
    if (n < 0) {
      zerror_as(t, path, kind, d, (int)n, 1);
      rc = (int)n;
      break;
    }
    if (n == 0)
      break;
    if ((rc = cb(arg, t->buf, (size_t)n)) != 0)
      break;
  }
  tdm__dec_close(d);
  return rc;
}
