/*
 * decompress.c: gzip (zlib) and zstd (libzstd) streams read with pread.
 *
 * One input buffer of IN_CAP bytes is refilled from the compressed offset
 * `in_off`; the decoder writes straight into the caller's buffer. A skip
 * decodes into a scratch buffer and throws it away: compressed formats have
 * no random access, so resuming at a bookmark costs a pass over what came
 * before it (never delivered).
 */
#include "core/decompress.h"

#include "base/io.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define IN_CAP (128u << 10)
#define SKIP_CAP (128u << 10)

struct tdm_dec {
  int fd;
  tdm_comp_t kind;
  int err;            /* sticky error, 0 if none */
  int eof;            /* the file gave no more bytes */
  int ended;          /* the stream ended cleanly */
  int in_frame;       /* zstd: a frame is started and not finished;
                         gzip: a member is started and not finished */
  uint64_t in_off;    /* compressed offset of the next pread */
  uint64_t pos;       /* uncompressed bytes out */
  unsigned char *in;  /* IN_CAP */
  size_t in_len, in_at;
  z_stream z;
  int z_init;
  ZSTD_DCtx *zs;
};

int tdm__comp_detect(int fd, tdm_comp_t *out) {
  unsigned char m[4];
  ssize_t got;

  *out = TDM_COMP_NONE;
  if ((got = tdm__pread_full(fd, m, sizeof(m), 0)) < 0)
    return (int)got;
  if (got >= 2 && m[0] == 0x1f && m[1] == 0x8b)
    *out = TDM_COMP_GZIP;
  else if (got == 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f &&
           m[3] == 0xfd)
    *out = TDM_COMP_ZSTD;
  return 0;
}

int tdm__zkind(tdm_decompress_t mode, int fd, tdm_comp_t *kind) {
  *kind = TDM_COMP_NONE;
  if (mode != TDM_DECOMPRESS_AUTO)
    return 0;
  return tdm__comp_detect(fd, kind);
}

const char *tdm__comp_name(tdm_comp_t kind) {
  return kind == TDM_COMP_GZIP ? "gzip" : kind == TDM_COMP_ZSTD ? "zstd" : "plain";
}

int tdm__dec_open(int fd, tdm_comp_t kind, tdm_dec_t **out) {
  tdm_dec_t *d;

  *out = NULL;
  if (kind != TDM_COMP_GZIP && kind != TDM_COMP_ZSTD)
    return -EINVAL;
  if ((d = calloc(1, sizeof(*d))) == NULL)
    return -ENOMEM;
  d->fd = fd;
  d->kind = kind;
  if ((d->in = malloc(IN_CAP)) == NULL)
    goto err;
  if (kind == TDM_COMP_GZIP) {
    if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK)
      goto err;
    d->z_init = 1;
  } else if ((d->zs = ZSTD_createDCtx()) == NULL) {
    goto err;
  }
  *out = d;
  return 0;
err:
  tdm__dec_close(d);
  return -ENOMEM;
}

void tdm__dec_close(tdm_dec_t *d) {
  if (d == NULL)
    return;
  if (d->z_init)
    inflateEnd(&d->z);
  ZSTD_freeDCtx(d->zs);
  free(d->in);
  free(d);
}

uint64_t tdm__dec_pos(const tdm_dec_t *d) { return d->pos; }

uint64_t tdm__dec_in(const tdm_dec_t *d) {
  return d->in_off - (d->in_len - d->in_at);
}

/* More compressed bytes when the buffer is used up. 0, or -errno. */
static int refill(tdm_dec_t *d) {
  ssize_t n;

  if (d->in_at < d->in_len || d->eof)
    return 0;
  if ((n = tdm__pread_full(d->fd, d->in, IN_CAP, d->in_off)) < 0)
    return (int)n;
  d->in_len = (size_t)n;
  d->in_at = 0;
  d->in_off += (uint64_t)n;
  if (n == 0)
    d->eof = 1;
  return 0;
}

static ssize_t gz_read(tdm_dec_t *d, unsigned char *buf, size_t n) {
  size_t out = 0;

  while (out < n) {
    int zr, rc;
    if ((rc = refill(d)) != 0)
      return rc;
    if (d->in_at == d->in_len) { /* the file has no more */
      if (d->in_frame)
        return -EPIPE;
      d->ended = 1;
      break;
    }
    if (!d->in_frame) {
      /* A new member must start with the magic; anything else after a
         complete member is trailing garbage, ignored as gzip(1) does. */
      if (d->in[d->in_at] != 0x1f) {
        d->ended = 1;
        break;
      }
      d->in_frame = 1;
    }
    d->z.next_in = d->in + d->in_at;
    d->z.avail_in = (uInt)(d->in_len - d->in_at);
    d->z.next_out = buf + out;
    d->z.avail_out = (uInt)(n - out > UINT32_MAX ? UINT32_MAX : n - out);
    zr = inflate(&d->z, Z_NO_FLUSH);
    d->in_at = d->in_len - d->z.avail_in;
    out = (size_t)(d->z.next_out - buf);
    if (zr == Z_STREAM_END) {
      d->in_frame = 0;
      if (inflateReset(&d->z) != Z_OK)
        return -ENOMEM;
    } else if (zr == Z_BUF_ERROR) {
      /* No progress possible: input used up (refilled above) or output
         full (the loop ends). */
      if (d->z.avail_in != 0 && out < n)
        return -EBADMSG;
    } else if (zr == Z_MEM_ERROR) {
      return -ENOMEM;
    } else if (zr != Z_OK) {
      return -EBADMSG;
    }
  }
  return (ssize_t)out;
}

static ssize_t zs_read(tdm_dec_t *d, unsigned char *buf, size_t n) {
  ZSTD_outBuffer ob = {buf, n, 0};

  while (ob.pos < ob.size) {
    ZSTD_inBuffer ib;
    size_t zr;
    int rc;
    if ((rc = refill(d)) != 0)
      return rc;
    if (d->in_at == d->in_len) {
      if (d->in_frame) {
        /* Flush what the decoder still holds before calling it short. */
        ib.src = d->in;
        ib.size = ib.pos = 0;
        zr = ZSTD_decompressStream(d->zs, &ob, &ib);
        if (ZSTD_isError(zr))
          return -EBADMSG;
        if (zr == 0) {
          d->in_frame = 0;
          continue;
        }
        if (ob.pos > 0)
          break;
        return -EPIPE;
      }
      d->ended = 1;
      break;
    }
    ib.src = d->in;
    ib.size = d->in_len;
    ib.pos = d->in_at;
    zr = ZSTD_decompressStream(d->zs, &ob, &ib);
    d->in_at = ib.pos;
    if (ZSTD_isError(zr))
      return -EBADMSG;
    d->in_frame = zr != 0;
  }
  return (ssize_t)ob.pos;
}

ssize_t tdm__dec_read(tdm_dec_t *d, void *buf, size_t n) {
  ssize_t r;

  if (d->err != 0)
    return d->err;
  if (n == 0 || d->ended)
    return 0;
  r = d->kind == TDM_COMP_GZIP ? gz_read(d, buf, n) : zs_read(d, buf, n);
  if (r < 0) {
    d->err = (int)r;
    return r;
  }
  d->pos += (uint64_t)r;
  return r;
}

int tdm__dec_skip(tdm_dec_t *d, uint64_t to) {
  unsigned char *scratch;
  int rc = 0;

  if (to < d->pos)
    return -EINVAL;
  if (to == d->pos)
    return 0;
  if ((scratch = malloc(SKIP_CAP)) == NULL)
    return -ENOMEM;
  while (d->pos < to) {
    uint64_t left = to - d->pos;
    ssize_t r = tdm__dec_read(d, scratch, left < SKIP_CAP ? (size_t)left : SKIP_CAP);
    if (r <= 0) {
      rc = r < 0 ? (int)r : -ENODATA;
      break;
    }
  }
  free(scratch);
  return rc;
}
