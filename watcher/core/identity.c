/*
 * identity.c: is the file behind this descriptor the one we remember?
 *
 * A file is known by (dev, ino), but inodes are reused and contents are
 * rewritten in place, so an offset is trusted only when the content agrees:
 *   - the fingerprint, XXH3-64 of the head (up to TDM_FP_CAP bytes, growing
 *     with the file, so a 3-byte file is tracked at once), and
 *   - the marker, XXH3-64 of the TDM_MARKER_LEN bytes before the bookmark
 *     (Fluent Bit's idea): it catches a rewrite that kept the head.
 * Everything is read through the descriptor with pread, never through the
 * path again: a rotation between stat(path) and open(path) must not swap the
 * file under us.
 */
#include "core/identity.h"

#include "base/io.h"

#include <errno.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

int tdm__hash_range(int fd, uint64_t off, uint32_t len, uint64_t *out) {
  char buf[TDM_FP_CAP];
  ssize_t got;

  if (len > sizeof(buf))
    return -EINVAL;
  if ((got = tdm__pread_full(fd, buf, len, off)) < 0)
    return (int)got;
  if ((size_t)got < len)
    return -ENODATA;
  *out = XXH3_64bits(buf, len);
  return 0;
}

int tdm__fingerprint(int fd, uint64_t size, uint64_t *hash, uint32_t *len) {
  *len = size < TDM_FP_CAP ? (uint32_t)size : TDM_FP_CAP;
  return tdm__hash_range(fd, 0, *len, hash);
}

int tdm__marker(int fd, uint64_t pos, uint64_t *hash, uint32_t *len) {
  *len = pos < TDM_MARKER_LEN ? (uint32_t)pos : TDM_MARKER_LEN;
  return tdm__hash_range(fd, pos - *len, *len, hash);
}

int tdm__identify(int fd, uint64_t size, const tdm_file_t *f,
                  tdm_verdict_t *out) {
  uint64_t h;
  int rc;

  /* Shorter than what we delivered, or than the head we fingerprinted. */
  if (size < f->pos || size < f->rec.fp_len) {
    *out = TDM_TRUNCATED;
    return 0;
  }
  rc = tdm__hash_range(fd, 0, f->rec.fp_len, &h);
  if (rc == -ENODATA) { /* shrank since fstat */
    *out = TDM_TRUNCATED;
    return 0;
  }
  if (rc != 0)
    return rc;
  if (h != f->rec.fp_hash) {
    *out = TDM_REWRITTEN;
    return 0;
  }
  if (f->pos > 0 && f->marker_len > 0) {
    rc = tdm__hash_range(fd, f->pos - f->marker_len, f->marker_len, &h);
    if (rc == -ENODATA) {
      *out = TDM_TRUNCATED;
      return 0;
    }
    if (rc != 0)
      return rc;
    if (h != f->marker) {
      *out = TDM_REWRITTEN;
      return 0;
    }
  }
  *out = TDM_SAME;
  return 0;
}
