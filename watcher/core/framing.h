/*
 * framing.h: where a read is cut so that a chunk holds whole records.
 */
#ifndef TDM_FRAMING_H
#define TDM_FRAMING_H

#include <stddef.h>

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

#endif /* TDM_FRAMING_H */
