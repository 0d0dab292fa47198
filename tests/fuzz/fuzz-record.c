/*
 * fuzz-record.c: libFuzzer target for the file record decoder of the state
 * store (state/record.c, tdm__record_decode): the one parser of bytes
 * read back from disk (a corrupt or foreign data.mdb, a future version).
 *
 * Input: the bytes of one value of the "files" database. Checks:
 *  - decode never reads outside the input (ASan: libFuzzer hands it in a
 *    buffer of exactly its size) and never crashes;
 *  - when it accepts, the strings it returns lie inside the input and end
 *    at their NUL, `error` is NULL or non-empty;
 *  - encoding the decoded record (with the directory id it named) gives
 *    back exactly the input, byte for byte, for a record of the current
 *    version 3 (the format has one spelling of each record); a version-1
 *    or -2 record (still read, written as version 3) comes back as a
 *    version-3 record that decodes to every field again (ctime_ns 0 for
 *    version 1).
 * abort() on any violation.
 *
 * Seeds (corpus/record/): values copied out of real stores written by
 * `tidemark once` (tail mode: active, truncated, pieces; whole mode: done,
 * duplicate, failed with an error message), v1-* by tidemark 0.1 (format
 * version 1), v2-* by 0.2, v3-* by the current one; plus a few near misses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/record.h"

/* Bytes of the fixed part of a version-1 record (version byte included):
   ctime_ns goes right after it in version 2. */
#define V1_FIXED 129

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
  uint64_t dir = 0, dir2 = 0;
  uint8_t *buf;
  size_t need;

  memset(&r, 0, sizeof(r));
  if (tdm__record_decode(data, size, &r, &dir) != 0)
    return 0;

  CHECK(r.path != NULL && inside(r.path, data, size));
  CHECK(inside(r.path + strlen(r.path), data, size));
  if (r.error != NULL) {
    CHECK(inside(r.error, data, size) && r.error[0] != '\0');
    CHECK(inside(r.error + strlen(r.error), data, size));
  }
  CHECK(dir == 0 || data[0] == 3);

  /* Encoded again (always version 3): the same bytes for a record of
     version 3; for an older one, a record that decodes to the same fields. */
  need = tdm__record_encode(&r, dir, r.path, NULL, 0);
  buf = malloc(need);
  CHECK(buf != NULL);
  CHECK(tdm__record_encode(&r, dir, r.path, buf, need) == need);
  CHECK(buf[0] == 3);
  if (data[0] == 3) {
    CHECK(need == size);
    CHECK(memcmp(buf, data, size) == 0);
  } else {
    CHECK(data[0] == 1 || data[0] == 2);
    CHECK(data[0] == 2 || (size >= V1_FIXED && r.ctime_ns == 0));
  }

  memset(&r2, 0, sizeof(r2));
  CHECK(tdm__record_decode(buf, need, &r2, &dir2) == 0);
  CHECK(dir2 == dir);
  CHECK(strcmp(r2.path, r.path) == 0);
  CHECK((r2.error == NULL) == (r.error == NULL));
  CHECK(r.error == NULL || strcmp(r2.error, r.error) == 0);
  CHECK(r2.dev == r.dev && r2.ino == r.ino && r2.size == r.size &&
        r2.mtime_ns == r.mtime_ns && r2.offset == r.offset &&
        r2.fp_hash == r.fp_hash && r2.fp_len == r.fp_len &&
        r2.marker_len == r.marker_len && r2.marker == r.marker &&
        r2.state == r.state && r2.truncations == r.truncations &&
        r2.pieces == r.pieces && r2.first_seen_ns == r.first_seen_ns &&
        r2.updated_ns == r.updated_ns && r2.dup_of == r.dup_of &&
        r2.attempts == r.attempts && r2.exit_status == r.exit_status &&
        r2.ctime_ns == r.ctime_ns &&
        memcmp(r2.content_hash, r.content_hash, 16) == 0);
  free(buf);
  return 0;
}
