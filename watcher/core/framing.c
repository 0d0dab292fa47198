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
