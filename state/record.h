/*
 * record.h: the byte format of one value of the "files" database, and the
 * byte-order helpers the store's other formats use.
 *
 * File record, format version 3 (written since 0.3; store schema 2):
 *   u8  version (3)
 *   u8  flags: 1 fp_hash, 2 marker, 4 content_hash, 8 error, 16 dir follow
 *       (each only when not zero or empty; no other bit)
 *   varint dev, ino, size, offset, fp_len, marker_len, state, truncations,
 *          pieces, dup_of, attempts; zigzag exit_status
 *   zigzag mtime_ns, then the differences ctime_ns - mtime_ns,
 *          first_seen_ns - mtime_ns, updated_ns - first_seen_ns (modulo 2^64)
 *   [u64 fp_hash] [u64 marker] [u8[16] content_hash]   (little-endian)
 *   [varint dir]   the path's directory, an id of the "dirs" database
 *   varint name length, name bytes, NUL   (with dir: the name in it; else
 *                                          the whole path)
 *   [varint error length (> 0), error bytes, NUL]
 * A varint is LEB128 (7 bits a byte, low first) in its shortest form; a
 * zigzag maps a signed value to an unsigned one (0, -1, 1, -2 ... to 0, 1,
 * 2, 3 ...). Every record has one spelling. A tracked log costs about 70
 * bytes instead of version 2's 150 and more (most numbers are small, the
 * times close to each other, the directory shared).
 *
 * Version 2 (0.1.x to 0.2; still read): all integers little-endian:
 *   u8  version (2)
 *   u64 dev, ino, size; i64 mtime_ns; u64 offset, fp_hash
 *   u32 fp_len, marker_len; u64 marker; u32 state, truncations; u64 pieces
 *   i64 first_seen_ns, updated_ns; u8[16] content_hash; u64 dup_of
 *   u32 attempts; i32 exit_status
 *   i64 ctime_ns                         (version 2 only)
 *   u32 path length, path bytes, NUL
 *   u32 error length, error bytes, NUL   (length 0: no error, NULL)
 * Version 1 is version 2 without ctime_ns (read with ctime_ns = 0,
 * "unknown"). The id is not in the value: it is the key (u64 big-endian, so
 * key order is id order). The NULs let a decoded record point into LMDB's
 * map instead of copying its strings.
 *
 * The decoder is the one parser of bytes read back from disk that may come
 * from a damaged or foreign file: it is fuzzed (tests/fuzz/fuzz-record.c).
 */
#ifndef TDM_RECORD_H
#define TDM_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "state/store.h"

/* Byte order: n little-endian bytes (n <= 8), and 8 big-endian ones. */
void tdm__put_le(uint8_t *p, uint64_t v, int n);
uint64_t tdm__get_le(const uint8_t *p, int n);
void tdm__put_be64(uint8_t *p, uint64_t v);
uint64_t tdm__get_be64(const uint8_t *p);

/*
 * The encoder takes the path as `dir` (an id of the "dirs" database, 0 for
 * none) and `name` (the rest of the path, or the whole path when `dir` is
 * 0; NULL is ""). Everything else comes from `r`.
 */

/* The encoded size of `r` (version 3). */
size_t tdm__record_size(const tdm_file_rec_t *r, uint64_t dir,
                        const char *name);

/* Encode `r` into `buf`, which holds tdm__record_size() bytes. */
void tdm__record_write(const tdm_file_rec_t *r, uint64_t dir, const char *name,
                       void *buf);

/* The encoded size of `r`; writes it into `buf` when `cap` holds it. */
size_t tdm__record_encode(const tdm_file_rec_t *r, uint64_t dir,
                          const char *name, void *buf, size_t cap);

/* Parse `len` bytes into `r` (all but id; its strings point into `data`)
   and *dir: 0 when r->path is the whole path, else the id of its directory
   (r->path is then the name in it). 0, or -1 when they are not a
   well-formed record of version 1, 2 or 3. */
int tdm__record_decode(const void *data, size_t len, tdm_file_rec_t *r,
                       uint64_t *dir);

#endif /* TDM_RECORD_H */
