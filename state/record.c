/*
 * record.c: the file record codec of the state store (format in record.h).
 */
#include "record.h"

#include <string.h>

#define REC_VERSION 2
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

size_t tdm__record_size(const tdm_file_rec_t *r) {
  size_t plen = r->path != NULL ? strlen(r->path) : 0;
  size_t elen = r->error != NULL ? strlen(r->error) : 0;
  return REC_FIXED + 4 + plen + 1 + 4 + elen + 1;
}

static uint8_t *put_str(uint8_t *p, const char *str) {
  size_t len = str != NULL ? strlen(str) : 0;
  tdm__put_le(p, len, 4);
  memcpy(p + 4, str != NULL ? str : "", len + 1);
  return p + 4 + len + 1;
}

void tdm__record_write(const tdm_file_rec_t *r, void *buf) {
  uint8_t *p = buf;

  *p++ = REC_VERSION;
  tdm__put_le(p, r->dev, 8), p += 8;
  tdm__put_le(p, r->ino, 8), p += 8;
  tdm__put_le(p, r->size, 8), p += 8;
  tdm__put_le(p, (uint64_t)r->mtime_ns, 8), p += 8;
  tdm__put_le(p, r->offset, 8), p += 8;
  tdm__put_le(p, r->fp_hash, 8), p += 8;
  tdm__put_le(p, r->fp_len, 4), p += 4;
  tdm__put_le(p, r->marker_len, 4), p += 4;
  tdm__put_le(p, r->marker, 8), p += 8;
  tdm__put_le(p, r->state, 4), p += 4;
  tdm__put_le(p, r->truncations, 4), p += 4;
  tdm__put_le(p, r->pieces, 8), p += 8;
  tdm__put_le(p, (uint64_t)r->first_seen_ns, 8), p += 8;
  tdm__put_le(p, (uint64_t)r->updated_ns, 8), p += 8;
  memcpy(p, r->content_hash, 16), p += 16;
  tdm__put_le(p, r->dup_of, 8), p += 8;
  tdm__put_le(p, r->attempts, 4), p += 4;
  tdm__put_le(p, (uint32_t)r->exit_status, 4), p += 4;
  tdm__put_le(p, (uint64_t)r->ctime_ns, 8), p += 8;
  p = put_str(p, r->path);
  put_str(p, r->error);
}

size_t tdm__record_encode(const tdm_file_rec_t *r, void *buf, size_t cap) {
  size_t need = tdm__record_size(r);
  if (need <= cap)
    tdm__record_write(r, buf);
  return need;
}

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

int tdm__record_decode(const void *data, size_t len, tdm_file_rec_t *r) {
  const uint8_t *p = data, *end = p + len;
  uint32_t elen, plen;
  int version;

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
