/*
 * forgotten.h: the content hashes of whole-mode files whose records were
 * dropped (--forget-after), kept so that the same content is still a
 * duplicate: the "forgotten" database of a store of schema 3.
 *
 * The set is cut into buckets of neighbouring hashes, each one LMDB value:
 *   key   16 bytes, the lowest hash the bucket may hold (the first bucket's
 *         is 16 zero bytes); the buckets' ranges follow each other
 *   value the bucket's hashes, 16 bytes each, in increasing byte order,
 *         each at least the key and below the next bucket's key
 * A bucket holds at most one page of hashes (255 on 4 KiB pages), so it
 * fills one overflow page exactly. A bucket that would hold more shares its
 * hashes with its right neighbour (two nearly full buckets), and when both
 * are full the two become three: buckets stay between two thirds full and
 * full, about 19 to 20 bytes of store a hash, where one LMDB entry a hash
 * costs 40 to 54 (measured: a million random hashes added 100 at a time).
 * A look-up reads one bucket.
 */
#ifndef TDM_STATE_FORGOTTEN_H
#define TDM_STATE_FORGOTTEN_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

/* Is `h` in the set? *found = 1 or 0. Returns 0 or an LMDB code. */
int tdm__forgotten_has(MDB_txn *txn, MDB_dbi dbi, const uint8_t h[16],
                       int *found);

/* Add the `n` hashes at `h` (sorted and made unique here, in place) in
   write transaction `txn`; `psize`: the environment's page size.
   *added = how many were not in the set yet. Returns 0 or an LMDB code
   (ENOMEM). */
int tdm__forgotten_add(MDB_txn *txn, MDB_dbi dbi, uint8_t (*h)[16], size_t n,
                       size_t psize, uint64_t *added);

/* Is `k` -> `v` a well-formed bucket (for the store check)? 1 when not. */
int tdm__forgotten_bad(const MDB_val *k, const MDB_val *v);

#endif /* TDM_STATE_FORGOTTEN_H */
