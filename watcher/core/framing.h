/*
 * framing.h: where a read is cut so that a chunk holds whole records.
 */
#ifndef TDM_FRAMING_H
#define TDM_FRAMING_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "tidemark.h"

/*
 * How many of the `n` bytes at `buf` (read from a record boundary, or from
 * inside an over-long record) to deliver now. `cap` is the read buffer's
 * size. lines: whole lines, each at most `max_record` bytes counting its
 * '\n'; a longer one goes out in pieces of `max_record` bytes (*piece = 1);
 * a partial last line waits (0). bytes: all of it.
 */
size_t tdm__frame(const char *buf, size_t n, size_t cap, tdm_records_t records,
                  size_t max_record, int *piece);

/* Where the records of one multiline cut end (end offsets in the buffer,
   exclusive, ascending), and a scratch copy of the line being matched
   (regexec wants a C string). Owned by the caller (free v and line);
   tdm__frame_records grows them. */
typedef struct tdm_ends {
  uint32_t *v;
  size_t n, cap;
  char *line;
  size_t line_cap;
} tdm_ends_t;

/*
 * Multiline records (--multiline-start): a record starts at a line that
 * `re` matches and takes the lines after it that do not match. `buf` holds
 * `n` bytes read from a record boundary (or from inside an over-long record
 * delivered in pieces). Returns how many bytes to deliver now, and in
 * `ends` where each record among them ends:
 *   - whole records only: the last record is complete when a start line
 *     follows it, or with `flush` (no new line for --multiline-timeout-ms,
 *     or the file will not grow): then it ends at the last '\n';
 *   - a record longer than `max_record` (or one filling the whole buffer of
 *     `cap` bytes) goes out in pieces (*piece = 1, no end; cut at its last
 *     '\n' within max_record, else at max_record), after the records before
 *     it;
 *   - 0: nothing complete yet.
 * A partial last line (no '\n') never belongs to a cut, except in a piece.
 * -ENOMEM (as (size_t)-1) when `ends` cannot grow.
 */
size_t tdm__frame_records(const char *buf, size_t n, size_t cap,
                          size_t max_record, const regex_t *re, int flush,
                          tdm_ends_t *ends, int *piece);

#endif /* TDM_FRAMING_H */
