/*
 * fuzz-framing.c: libFuzzer target for line framing (watcher/core/framing.c).
 *
 * Input: 5 bytes of parameters, then the "file". max_record = 1 + a 12-bit
 * number; cap = max_record + a 12-bit number (the engine never reads with a
 * buffer smaller than --max-record: engine.c sets buf_cap = max(max_record,
 * TDM_READ_MIN)); one bit picks lines or bytes.
 *
 * The file is then read the way reader.c does, window after window of at most
 * `cap` bytes, each window in a buffer of exactly its size (so ASan sees any
 * read past it), checking what tests/unit/test-framing.c checks:
 *  - cut <= n; bytes: cut == n and never a piece;
 *  - a piece is exactly max_record bytes and holds no newline;
 *  - otherwise the chunk ends in '\n' and each line in it is <= max_record;
 *  - at the end, everything up to the last newline went out, in order, once,
 *    and what is left is a partial line shorter than max_record.
 * abort() on any violation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/framing.h"

#define CHECK(x)                                                              \
  do {                                                                        \
    if (!(x))                                                                 \
      abort();                                                                \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t max, cap, len, pos = 0, last_nl = 0;
  tdm_records_t records;
  const char *file;

  if (size < 5)
    return 0;
  max = 1 + ((size_t)data[0] | ((size_t)(data[1] & 0x0f) << 8));
  cap = max + ((size_t)data[2] | ((size_t)(data[3] & 0x0f) << 8));
  records = (data[4] & 1) ? TDM_RECORDS_BYTES : TDM_RECORDS_LINES;
  file = (const char *)data + 5;
  len = size - 5;
  for (size_t i = 0; i < len; i++)
    if (file[i] == '\n')
      last_nl = i + 1;

  for (;;) {
    size_t n = len - pos < cap ? len - pos : cap;
    char *win = malloc(n ? n : 1);
    int piece = -1;
    size_t cut;

    CHECK(win != NULL);
    memcpy(win, file + pos, n);
    cut = tdm__frame(win, n, cap, records, max, &piece);
    CHECK(piece == 0 || piece == 1);
    CHECK(cut <= n);
    if (n == 0)
      CHECK(cut == 0);
    if (records == TDM_RECORDS_BYTES) {
      CHECK(cut == n && piece == 0);
    } else if (piece) {
      CHECK(cut == max);
      CHECK(memchr(win, '\n', cut) == NULL);
    } else if (cut > 0) {
      const char *p = win, *end = win + cut, *nl;
      CHECK(end[-1] == '\n');
      while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        CHECK(nl != NULL);
        CHECK((size_t)(nl - p) + 1 <= max);
        p = nl + 1;
      }
    }
    free(win);
    if (cut == 0)
      break;
    pos += cut;
  }
  if (records == TDM_RECORDS_BYTES) {
    CHECK(pos == len);
  } else {
    CHECK(pos >= last_nl);
    CHECK(len - pos < max);
    CHECK(memchr(file + pos, '\n', len - pos) == NULL);
  }
  return 0;
}
