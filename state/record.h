/*
 * record.h: the byte format of one value of the "files" database, and the
 * byte-order helpers the store's other formats use.
 *
 * File record, format version 2 (all integers little-endian):
 *   u8  version (2)
 *   u64 dev, ino, size; i64 mtime_ns; u64 offset, fp_hash
 *   u32 fp_len, marker_len; u64 marker; u32 state, truncations; u64 pieces
 *   i64 first_seen_ns, updated_ns; u8[16] content_hash; u64 dup_of
 *   u32 attempts; i32 exit_status
 *   i64 ctime_ns                         (version 2 only)
 *   u32 path length, path bytes, NUL
 *   u32 error length, error bytes, NUL   (length 0: no error, NULL)
 * Version 1 records (no ctime_ns) are still read, with ctime_ns = 0
 * ("unknown"); every record is written as version 2. The id is not in the
 * value: it is the key (u64 big-endian, so key order is id order). The NULs
 * let a decoded record point into LMDB's map instead of copying its strings.
 *
 * The decoder is the one parser of bytes read back from disk that may come
 * from a damaged or foreign file: it is fuzzed (tests/fuzz/fuzz-record.c).
 */
#ifndef TDM_RECORD_H
#define TDM_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Byte order: n little-endian bytes (n <= 8), and 8 big-endian ones. */
void tdm__put_le(uint8_t *p, uint64_t v, int n);
uint64_t tdm__get_le(const uint8_t *p, int n);
void tdm__put_be64(uint8_t *p, uint64_t v);
uint64_t tdm__get_be64(const uint8_t *p);

/* The encoded size of `r` (a NULL path is stored as ""). */
size_t tdm__record_size(const tdm_file_rec_t *r);

/* Encode `r` into `buf`, which holds tdm__record_size(r) bytes. */
void tdm__record_write(const tdm_file_rec_t *r, void *buf);

/* The encoded size of `r`; writes it into `buf` when `cap` holds it. */
size_t tdm__record_encode(const tdm_file_rec_t *r, void *buf, size_t cap);

/* Parse `len` bytes into `r` (all but id; its strings point into `data`).
   0, or -1 when they are not a well-formed version-1 or -2 record. */
int tdm__record_decode(const void *data, size_t len, tdm_file_rec_t *r);

#endif /* TDM_RECORD_H */
