/*
 * record.c: the file record codec of the state store (format in record.h).
 */
#include "state/record.h"

#include <string.h>

#define REC_VERSION 2    /* the last fixed-width version (read only) */
#define REC_FIXED_V1 129 /* version byte + the fixed fields of version 1 */
#define REC_FIXED 137    /* ... and of version 2 (+ ctime_ns) */

void tdm__put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t tdm__get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

void tdm__put_be64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint64_t tdm__get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* ---- version 3 ------------------------------------------------------------ */

enum { F_FP = 1, F_MARKER = 2, F_HASH = 4, F_ERROR = 8, F_DIR = 16,
       F_ALL = 31 };

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* Read a shortest-form varint at `p` (before `end`) into *v; the byte
   after it, or NULL. */
static const uint8_t *get_varint(const uint8_t *p, const uint8_t *end,
                                 uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; p < end && shift < 64; shift += 7) {
    uint8_t b = *p++;
    if (shift == 63 && b > 1)
      return NULL; /* more than 64 bits */
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      if (b == 0 && shift > 0)
        return NULL; /* not the shortest form */
      *v = x;
      return p;
    }
  }
  return NULL;
}

static uint64_t zigzag(uint64_t d) { /* d: an int64 as its bits */
  return (d << 1) ^ (0 - (d >> 63));
}

static uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

static int is_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return 0;
  return 1;
}

/* The varint fields, in their order. */
#define N_VARS 16
static void vars_of(const tdm_file_rec_t *r, uint64_t v[N_VARS]) {
  v[0] = r->dev;
  v[1] = r->ino;
  v[2] = r->size;
  v[3] = r->offset;
  v[4] = r->fp_len;
  v[5] = r->marker_len;
  v[6] = r->state;
  v[7] = r->truncations;
  v[8] = r->pieces;
  v[9] = r->dup_of;
  v[10] = r->attempts;
  v[11] = zigzag((uint64_t)(int64_t)r->exit_status);
  v[12] = zigzag((uint64_t)r->mtime_ns);
  v[13] = zigzag((uint64_t)r->ctime_ns - (uint64_t)r->mtime_ns);
  v[14] = zigzag((uint64_t)r->first_seen_ns - (uint64_t)r->mtime_ns);
  v[15] = zigzag((uint64_t)r->updated_ns - (uint64_t)r->first_seen_ns);
}

static unsigned flags_of(const tdm_file_rec_t *r, uint64_t dir) {
  return (r->fp_hash != 0 ? F_FP : 0) | (r->marker != 0 ? F_MARKER : 0) |
         (!is_zero(r->content_hash, 16) ? F_HASH : 0) |
         (r->error != NULL && r->error[0] != '\0' ? F_ERROR : 0) |
         (dir != 0 ? F_DIR : 0);
}

size_t tdm__record_size(const tdm_file_rec_t *r, uint64_t dir,
                        const char *name) {
  unsigned flags = flags_of(r, dir);
  size_t nlen = name != NULL ? strlen(name) : 0, n = 2;
  uint64_t v[N_VARS];

  vars_of(r, v);
  for (int i = 0; i < N_VARS; i++)
    n += varint_len(v[i]);
  n += (flags & F_FP ? 8 : 0) + (flags & F_MARKER ? 8 : 0) +
       (flags & F_HASH ? 16 : 0) + (flags & F_DIR ? varint_len(dir) : 0);
  n += varint_len(nlen) + nlen + 1;
  if (flags & F_ERROR) {
    size_t elen = strlen(r->error);
    n += varint_len(elen) + elen + 1;
  }
  return n;
}

static uint8_t *put_string(uint8_t *p, const char *str) {
  size_t len = str != NULL ? strlen(str) : 0;
  p = put_varint(p, len);
  memcpy(p, str != NULL ? str : "", len + 1);
  return p + len + 1;
}

void tdm__record_write(const tdm_file_rec_t *r, uint64_t dir, const char *name,
                       void *buf) {
  unsigned flags = flags_of(r, dir);
  uint8_t *p = buf;
  uint64_t v[N_VARS];

  *p++ = 3;
  *p++ = (uint8_t)flags;
  vars_of(r, v);
  for (int i = 0; i < N_VARS; i++)
    p = put_varint(p, v[i]);
  if (flags & F_FP)
    tdm__put_le(p, r->fp_hash, 8), p += 8;
  if (flags & F_MARKER)
    tdm__put_le(p, r->marker, 8), p += 8;
  if (flags & F_HASH)
    memcpy(p, r->content_hash, 16), p += 16;
  if (flags & F_DIR)
    p = put_varint(p, dir);
  p = put_string(p, name);
  if (flags & F_ERROR)
    put_string(p, r->error);
}

size_t tdm__record_encode(const tdm_file_rec_t *r, uint64_t dir,
                          const char *name, void *buf, size_t cap) {
  size_t need = tdm__record_size(r, dir, name);
  if (need <= cap)
    tdm__record_write(r, dir, name, buf);
  return need;
}

/* A varint length, then that many bytes and a NUL, no other NUL inside:
   *str points at them. The byte after, or NULL. */
static const uint8_t *get_string(const uint8_t *p, const uint8_t *end,
                                 const char **str, uint64_t *len) {
  if ((p = get_varint(p, end, len)) == NULL || (uint64_t)(end - p) <= *len ||
      p[*len] != '\0' || memchr(p, '\0', (size_t)*len) != NULL)
    return NULL;
  *str = (const char *)p;
  return p + *len + 1;
}

static int decode_v3(const uint8_t *p, const uint8_t *end, tdm_file_rec_t *r,
                     uint64_t *dir) {
  unsigned flags;
  uint64_t v[N_VARS], len;

  if (end - p < 1)
    return -1;
  flags = *p++;
  if (flags & ~(unsigned)F_ALL)
    return -1;
  for (int i = 0; i < N_VARS; i++)
    if ((p = get_varint(p, end, &v[i])) == NULL)
      return -1;
  /* The fields that are 32 bits wide must fit them. */
  if (v[4] > UINT32_MAX || v[5] > UINT32_MAX || v[6] > UINT32_MAX ||
      v[7] > UINT32_MAX || v[10] > UINT32_MAX ||
      (int64_t)unzigzag(v[11]) != (int32_t)unzigzag(v[11]))
    return -1;
  r->dev = v[0];
  r->ino = v[1];
  r->size = v[2];
  r->offset = v[3];
  r->fp_len = (uint32_t)v[4];
  r->marker_len = (uint32_t)v[5];
  r->state = (uint32_t)v[6];
  r->truncations = (uint32_t)v[7];
  r->pieces = v[8];
  r->dup_of = v[9];
  r->attempts = (uint32_t)v[10];
  r->exit_status = (int32_t)unzigzag(v[11]);
  r->mtime_ns = (int64_t)unzigzag(v[12]);
  r->ctime_ns = (int64_t)((uint64_t)r->mtime_ns + unzigzag(v[13]));
  r->first_seen_ns = (int64_t)((uint64_t)r->mtime_ns + unzigzag(v[14]));
  r->updated_ns = (int64_t)((uint64_t)r->first_seen_ns + unzigzag(v[15]));
  if ((size_t)(end - p) < (flags & F_FP ? 8u : 0u) + (flags & F_MARKER ? 8u : 0u) +
                              (flags & F_HASH ? 16u : 0u))
    return -1;
  r->fp_hash = 0;
  r->marker = 0;
  memset(r->content_hash, 0, 16);
  if (flags & F_FP)
    r->fp_hash = tdm__get_le(p, 8), p += 8;
  if (flags & F_MARKER)
    r->marker = tdm__get_le(p, 8), p += 8;
  if (flags & F_HASH)
    memcpy(r->content_hash, p, 16), p += 16;
  /* A flag says the field is not zero: one spelling of each record. */
  if (((flags & F_FP) && r->fp_hash == 0) ||
      ((flags & F_MARKER) && r->marker == 0) ||
      ((flags & F_HASH) && is_zero(r->content_hash, 16)))
    return -1;
  *dir = 0;
  if ((flags & F_DIR) && ((p = get_varint(p, end, dir)) == NULL || *dir == 0))
    return -1;
  if ((p = get_string(p, end, &r->path, &len)) == NULL)
    return -1;
  r->error = NULL;
  if ((flags & F_ERROR) &&
      ((p = get_string(p, end, &r->error, &len)) == NULL || len == 0))
    return -1;
  return p == end ? 0 : -1;
}

/* ---- versions 1 and 2 (read only) ------------------------------------------ */

/*
 * Point *str at a length-prefixed, NUL-terminated string at `p` that must end
 * by `end` and hold no other NUL. Returns the byte after it, NULL if invalid.
 */
static const uint8_t *get_str(const uint8_t *p, const uint8_t *end,
                              const char **str, uint32_t *len) {
  if (end - p < 4)
    return NULL;
  *len = (uint32_t)tdm__get_le(p, 4);
  p += 4;
  if ((size_t)(end - p) <= *len || p[*len] != '\0' ||
      memchr(p, '\0', *len) != NULL)
    return NULL;
  *str = (const char *)p;
  return p + *len + 1;
}

int tdm__record_decode(const void *data, size_t len, tdm_file_rec_t *r,
                       uint64_t *dir) {
  const uint8_t *p = data, *end = p + len;
  uint32_t elen, plen;
  int version;

  *dir = 0;
  if (len >= 1 && p[0] == 3)
    return decode_v3(p + 1, end, r, dir);
  if (len < REC_FIXED_V1)
    return -1;
  version = *p++;
  if (version != 1 && (version != REC_VERSION || len < REC_FIXED))
    return -1;
  r->dev = tdm__get_le(p, 8), p += 8;
  r->ino = tdm__get_le(p, 8), p += 8;
  r->size = tdm__get_le(p, 8), p += 8;
  r->mtime_ns = (int64_t)tdm__get_le(p, 8), p += 8;
  r->offset = tdm__get_le(p, 8), p += 8;
  r->fp_hash = tdm__get_le(p, 8), p += 8;
  r->fp_len = (uint32_t)tdm__get_le(p, 4), p += 4;
  r->marker_len = (uint32_t)tdm__get_le(p, 4), p += 4;
  r->marker = tdm__get_le(p, 8), p += 8;
  r->state = (uint32_t)tdm__get_le(p, 4), p += 4;
  r->truncations = (uint32_t)tdm__get_le(p, 4), p += 4;
  r->pieces = tdm__get_le(p, 8), p += 8;
  r->first_seen_ns = (int64_t)tdm__get_le(p, 8), p += 8;
  r->updated_ns = (int64_t)tdm__get_le(p, 8), p += 8;
  memcpy(r->content_hash, p, 16), p += 16;
  r->dup_of = tdm__get_le(p, 8), p += 8;
  r->attempts = (uint32_t)tdm__get_le(p, 4), p += 4;
  r->exit_status = (int32_t)(uint32_t)tdm__get_le(p, 4), p += 4;
  r->ctime_ns = 0; /* version 1: unknown */
  if (version >= 2)
    r->ctime_ns = (int64_t)tdm__get_le(p, 8), p += 8;
  if ((p = get_str(p, end, &r->path, &plen)) == NULL ||
      (p = get_str(p, end, &r->error, &elen)) == NULL || p != end)
    return -1;
  if (elen == 0)
    r->error = NULL;
  return 0;
}
