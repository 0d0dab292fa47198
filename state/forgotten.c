/*
 * forgotten.c: the set of forgotten content hashes (see forgotten.h).
 */
#include "state/forgotten.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp16(const void *a, const void *b) { return memcmp(a, b, 16); }

/* Put the cursor on the bucket whose range holds `h`: *k and *v are its key
   and hashes. MDB_NOTFOUND when the set is empty. */
static int find_bucket(MDB_cursor *cur, const uint8_t h[16], MDB_val *k,
                       MDB_val *v) {
  int rc;

  k->mv_size = 16;
  k->mv_data = (void *)h;
  rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
  if (rc == 0 && k->mv_size == 16 && memcmp(k->mv_data, h, 16) == 0)
    return 0;
  if (rc == 0)
    rc = mdb_cursor_get(cur, k, v, MDB_PREV);
  else if (rc == MDB_NOTFOUND)
    rc = mdb_cursor_get(cur, k, v, MDB_LAST);
  if (rc == 0 && (k->mv_size != 16 || v->mv_size % 16 != 0))
    return MDB_CORRUPTED;
  return rc;
}

int tdm__forgotten_has(MDB_txn *txn, MDB_dbi dbi, const uint8_t h[16],
                       int *found) {
  MDB_cursor *cur;
  MDB_val k, v;
  int rc;

  *found = 0;
  if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
    return rc;
  rc = find_bucket(cur, h, &k, &v);
  if (rc == 0) {
    size_t lo = 0, hi = v.mv_size / 16;
    const uint8_t *p = v.mv_data;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = memcmp(p + mid * 16, h, 16);
      if (c == 0) {
        *found = 1;
        break;
      }
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  }
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_bucket(MDB_txn *txn, MDB_dbi dbi, const uint8_t key[16],
                      const uint8_t *hashes, size_t n) {
  MDB_val k = {16, (void *)key}, v = {n * 16, NULL};
  int rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
  if (rc == 0)
    memcpy(v.mv_data, hashes, n * 16);
  return rc;
}

int tdm__forgotten_add(MDB_txn *txn, MDB_dbi dbi, uint8_t (*h)[16], size_t n,
                       size_t psize, uint64_t *added) {
  size_t cap = psize > 32 ? (psize - 16) / 16 : 1, i = 0, u = 0, mcap = 0;
  uint8_t *m = NULL; /* the bucket's hashes merged with the new ones */
  int rc = 0;

  *added = 0;
  if (n == 0)
    return 0;
  qsort(h, n, 16, cmp16);
  for (size_t j = 1; j < n; j++)
    if (memcmp(h[j], h[u], 16) != 0)
      memcpy(h[++u], h[j], 16);
  n = u + 1;

  while (i < n && rc == 0) {
    static const uint8_t zero[16];
    uint8_t bk[16], nk[16];
    const uint8_t *e = NULL;
    size_t ne = 0, j = i, mlen = 0, a = 0, tlen;
    int has_next = 0;
    MDB_cursor *cur;
    MDB_val k, v;

    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
      break;
    rc = find_bucket(cur, h[i], &k, &v);
    if (rc == 0) {
      memcpy(bk, k.mv_data, 16);
      e = v.mv_data;
      ne = v.mv_size / 16;
      if ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (k.mv_size != 16)
          rc = MDB_CORRUPTED;
        else
          memcpy(nk, k.mv_data, 16), has_next = 1;
      }
      if (rc == MDB_NOTFOUND)
        rc = 0;
    } else if (rc == MDB_NOTFOUND) {
      memcpy(bk, zero, 16);
      rc = 0;
    }
    while (j < n && (!has_next || memcmp(h[j], nk, 16) < 0))
      j++;
    /* Room for the bucket, the new hashes and a right neighbour. */
    if (rc == 0 && (ne + (j - i) + cap) * 16 > mcap) {
      size_t want = (ne + (j - i) + cap) * 16 * 2;
      uint8_t *p = realloc(m, want);
      if (p == NULL)
        rc = ENOMEM;
      else
        m = p, mcap = want;
    }
    if (rc == 0) { /* merge, leaving out what the set has */
      size_t x = 0, y = i;
      while (x < ne || y < j) {
        int c = x == ne ? 1 : y == j ? -1 : memcmp(e + x * 16, h[y], 16);
        if (c <= 0) {
          memcpy(m + mlen++ * 16, e + x++ * 16, 16);
          y += c == 0;
        } else {
          memcpy(m + mlen++ * 16, h[y++], 16);
          a++;
        }
      }
    }
    tlen = mlen;
    if (rc == 0 && mlen > cap && has_next) {
      /* Too many: share them with the right neighbour. */
      MDB_val nkv = {16, nk}, nv;
      if ((rc = mdb_get(txn, dbi, &nkv, &nv)) == 0 && nv.mv_size % 16 != 0)
        rc = MDB_CORRUPTED;
      if (rc == 0) {
        memcpy(m + tlen * 16, nv.mv_data, nv.mv_size);
        tlen += nv.mv_size / 16;
        rc = mdb_del(txn, dbi, &nkv, NULL);
      }
    }
    mdb_cursor_close(cur);
    if (rc == 0 && (a > 0 || tlen != mlen)) {
      /* Into as few buckets as hold them, evenly: the first keeps its key,
         the others are keyed by their first hash. */
      size_t nb = (tlen + cap - 1) / cap;
      for (size_t b = 0; b < nb && rc == 0; b++) {
        size_t from = b * tlen / nb, to = (b + 1) * tlen / nb;
        rc = put_bucket(txn, dbi, b == 0 ? bk : m + from * 16, m + from * 16,
                        to - from);
      }
    }
    *added += a;
    i = j;
  }
  free(m);
  return rc;
}

int tdm__forgotten_bad(const MDB_val *k, const MDB_val *v) {
  const uint8_t *p = v->mv_data;
  if (k->mv_size != 16 || v->mv_size == 0 || v->mv_size % 16 != 0 ||
      memcmp(p, k->mv_data, 16) < 0)
    return 1;
  for (size_t i = 16; i < v->mv_size; i += 16)
    if (memcmp(p + i - 16, p + i, 16) >= 0)
      return 1;
  return 0;
}
