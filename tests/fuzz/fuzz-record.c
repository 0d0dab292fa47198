/*
 * fuzz-record.c: libFuzzer target for the file record decoder of the state
 * store (state/store.c, tdm__store_record_decode): the one parser of bytes
 * read back from disk (a corrupt or foreign data.mdb, a future version).
 *
 * Input: the bytes of one value of the "files" database. Checks:
 *  - decode never reads outside the input (ASan: libFuzzer hands it in a
 *    buffer of exactly its size) and never crashes;
 *  - when it accepts, the strings it returns lie inside the input and end
 *    at their NUL, `error` is NULL or non-empty;
 *  - encoding the decoded record gives back exactly the input, byte for
 *    byte (the format has one spelling of each record), and decoding that
 *    gives the same record.
 * abort() on any violation.
 *
 * Seeds (corpus/record/): values copied out of real stores written by
 * `tidemark once` (tail mode: active, truncated, pieces; whole mode: done,
 * duplicate, failed with an error message), plus a few near misses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define CHECK(x)                                                              \
  do {                                                                        \
    if (!(x))                                                                 \
      abort();                                                                \
  } while (0)

static int inside(const void *p, const uint8_t *data, size_t size) {
  const uint8_t *q = p;
  return q >= data && q < data + size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tdm_file_rec_t r, r2;
  uint8_t *buf;
  size_t need;

  memset(&r, 0, sizeof(r));
  if (tdm__store_record_decode(data, size, &r) != 0)
    return 0;

  CHECK(r.path != NULL && inside(r.path, data, size));
  CHECK(inside(r.path + strlen(r.path), data, size));
  if (r.error != NULL) {
    CHECK(inside(r.error, data, size) && r.error[0] != '\0');
    CHECK(inside(r.error + strlen(r.error), data, size));
  }

  need = tdm__store_record_encode(&r, NULL, 0);
  CHECK(need == size);
  buf = malloc(need);
  CHECK(buf != NULL);
  CHECK(tdm__store_record_encode(&r, buf, need) == need);
  CHECK(memcmp(buf, data, size) == 0);

  memset(&r2, 0, sizeof(r2));
  CHECK(tdm__store_record_decode(buf, need, &r2) == 0);
  CHECK(strcmp(r2.path, r.path) == 0);
  CHECK((r2.error == NULL) == (r.error == NULL));
  CHECK(r2.offset == r.offset && r2.marker == r.marker &&
        r2.mtime_ns == r.mtime_ns && r2.exit_status == r.exit_status &&
        memcmp(r2.content_hash, r.content_hash, 16) == 0);
  free(buf);
  return 0;
}
