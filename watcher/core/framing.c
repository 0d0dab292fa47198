/*
 * framing.c: where to cut a read so that chunks hold whole records.
 *
 * The common case costs one memrchr per read: when the read buffer is exactly
 * --max-record bytes, every line that ends inside it is short enough, so the
 * only cuts are "after the last newline" and "a full buffer with no newline
 * is a piece". Only a --max-record smaller than the buffer needs a walk over
 * the lines.
 */
#include "core/framing.h"

#include <stdlib.h>
#include <string.h>

size_t tdm__frame(const char *buf, size_t n, size_t cap, tdm_records_t records,
                  size_t max_record, int *piece) {
  const char *nl;
  size_t cut = 0;

  *piece = 0;
  if (n == 0)
    return 0;
  if (records == TDM_RECORDS_BYTES)
    return n;

  if (max_record >= cap) {
    nl = memrchr(buf, '\n', n);
    if (nl != NULL)
      return (size_t)(nl - buf) + 1;
    if (n >= max_record || n >= cap) {
      *piece = 1;
      return n < max_record ? n : max_record;
    }
    return 0;
  }

  /* Whole lines of at most max_record bytes each, up to the first that is
     longer or unfinished. */
  while (cut < n) {
    size_t lim = n - cut < max_record ? n - cut : max_record;
    nl = memchr(buf + cut, '\n', lim);
    if (nl == NULL)
      break;
    cut = (size_t)(nl - buf) + 1;
  }
  if (cut > 0)
    return cut;
  if (n >= max_record) {
    *piece = 1;
    return max_record;
  }
  return 0;
}

/* ---- multiline records --------------------------------------------------- */

static int push_end(tdm_ends_t *e, size_t off) {
  if (e->n == e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 256;
    uint32_t *v = realloc(e->v, cap * sizeof(*v));
    if (v == NULL)
      return -1;
    e->v = v;
    e->cap = cap;
  }
  e->v[e->n++] = (uint32_t)off;
  return 0;
}

/* Does the line [p, p+len) (without its '\n') start a record? 1 yes, 0 no,
   -1 out of memory. Matched on a NUL-terminated copy (only as much of a
   long line as a start line can be told by: its first 4 KiB). */
static int starts(const regex_t *re, tdm_ends_t *e, const char *p, size_t len) {
  if (len > 4096)
    len = 4096;
  if (len + 1 > e->line_cap) {
    char *l = realloc(e->line, 4097);
    if (l == NULL)
      return -1;
    e->line = l;
    e->line_cap = 4097;
  }
  memcpy(e->line, p, len);
  e->line[len] = '\0';
  return regexec(re, e->line, 0, NULL, 0) == 0;
}

/* A piece of the over-long record at the start of buf. */
static size_t cut_piece(const char *buf, size_t n, size_t max_record, int *piece) {
  size_t lim = n < max_record ? n : max_record;
  const char *nl = memrchr(buf, '\n', lim);
  *piece = 1;
  return nl != NULL ? (size_t)(nl - buf) + 1 : lim;
}

size_t tdm__frame_records(const char *buf, size_t n, size_t cap,
                          size_t max_record, const regex_t *re, int flush,
                          tdm_ends_t *ends, int *piece) {
  size_t start = 0, pos = 0, cut = 0;

  *piece = 0;
  ends->n = 0;
  while (pos < n) {
    const char *nl = memchr(buf + pos, '\n', n - pos);
    size_t line_end;
    if (nl == NULL)
      break;
    line_end = (size_t)(nl - buf) + 1;
    if (pos > start) {
      int s = starts(re, ends, buf + pos, line_end - 1 - pos);
      if (s < 0 || (s == 1 && push_end(ends, pos) != 0))
        return (size_t)-1;
      if (s == 1)
        cut = start = pos;
    }
    if (line_end - start > max_record) { /* the current record is too long */
      if (cut > 0)
        return cut;       /* the whole records before it first */
      ends->n = 0;
      return cut_piece(buf, n, max_record, piece);
    }
    pos = line_end;
  }
  /* pos: the end of the last whole line. */
  if (flush && pos > start) {
    if (push_end(ends, pos) != 0)
      return (size_t)-1;
    return pos;
  }
  if (cut == 0 && (n >= cap || n - start > max_record)) {
    ends->n = 0;          /* a record that fills the buffer: a piece */
    return cut_piece(buf, n, max_record, piece);
  }
  return cut;
}
