/*
 * decompress.c: gzip (zlib) and zstd (libzstd) streams read with pread.
 *
 * Verify, then deliver. A gzip member ends in a CRC-32 and a length, a zstd
 * frame (usually) in a checksum of its content; corrupt data can decode
 * into plausible bytes long before the check fails. So each decoder is two
 * streams over the same file: `ahead` decodes whole members or frames into
 * a scratch buffer, throwing the bytes away, and moves `verified` past each
 * one whose check passed; `main` hands out bytes only up to `verified`. A
 * member that fails its check, a frame without a checksum (nothing to
 * verify) and a member cut short end the stream at the start of that
 * member, with the error and where it is. The price is decoding twice.
 *
 * Each stream has one input buffer of IN_CAP bytes refilled from its
 * compressed offset `in_off`; the main decoder writes straight into the
 * caller's buffer. A skip decodes into a scratch buffer and throws it away:
 * compressed formats have no random access, so resuming at a bookmark costs
 * a pass over what came before it (never delivered).
 */
#include "core/decompress.h"

#include "base/io.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader, ZSTD_frameHeader */
#include <zstd.h>

#define IN_CAP (128u << 10)
#define SKIP_CAP (128u << 10)

typedef struct strm {
  int fd;
  tdm_comp_t kind;
  int eof;            /* the file gave no more bytes */
  int ended;          /* the stream ended cleanly */
  int in_frame;       /* a member or frame is started and not finished */
  int frame_done;     /* the last read ended a member or frame */
  uint64_t in_off;    /* compressed offset of the next pread */
  uint64_t pos;       /* uncompressed bytes out */
  uint64_t start_in;  /* compressed offset where the current member began */
  unsigned char *in;  /* IN_CAP */
  size_t in_len, in_at;
  z_stream z;
  int z_init;
  ZSTD_DCtx *zs;
} strm_t;

struct tdm_dec {
  strm_t main, ahead;
  unsigned char *scratch; /* SKIP_CAP, for `ahead` and skips */
  uint64_t verified;      /* uncompressed bytes of verified members */
  int ahead_err;          /* what stopped `ahead` (0: not stopped) */
  int ahead_done;         /* `ahead` reached the clean end */
  uint64_t err_in;        /* compressed offset of the member that failed */
  const char *why;        /* the reason, for messages */
  int err;                /* sticky error of the decoder, 0 if none */
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
  else if (got == 4 && (m[0] & 0xf0) == 0x50 && m[1] == 0x2a && m[2] == 0x4d &&
           m[3] == 0x18)
    *out = TDM_COMP_ZSTD; /* a skippable frame first (pzstd, seekable zstd) */
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

static void strm_free(strm_t *s) {
  if (s->z_init)
    inflateEnd(&s->z);
  s->z_init = 0;
  ZSTD_freeDCtx(s->zs);
  s->zs = NULL;
  free(s->in);
  s->in = NULL;
}

static int strm_init(strm_t *s, int fd, tdm_comp_t kind) {
  memset(s, 0, sizeof(*s));
  s->fd = fd;
  s->kind = kind;
  if ((s->in = malloc(IN_CAP)) == NULL)
    return -ENOMEM;
  if (kind == TDM_COMP_GZIP) {
    if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
      return -ENOMEM;
    s->z_init = 1;
  } else if ((s->zs = ZSTD_createDCtx()) == NULL) {
    return -ENOMEM;
  }
  return 0;
}

int tdm__dec_open(int fd, tdm_comp_t kind, tdm_dec_t **out) {
  tdm_dec_t *d;

  *out = NULL;
  if (kind != TDM_COMP_GZIP && kind != TDM_COMP_ZSTD)
    return -EINVAL;
  if ((d = calloc(1, sizeof(*d))) == NULL)
    return -ENOMEM;
  if (strm_init(&d->main, fd, kind) != 0 || strm_init(&d->ahead, fd, kind) != 0 ||
      (d->scratch = malloc(SKIP_CAP)) == NULL) {
    tdm__dec_close(d);
    return -ENOMEM;
  }
  *out = d;
  return 0;
}

void tdm__dec_close(tdm_dec_t *d) {
  if (d == NULL)
    return;
  strm_free(&d->main);
  strm_free(&d->ahead);
  free(d->scratch);
  free(d);
}

uint64_t tdm__dec_pos(const tdm_dec_t *d) { return d->main.pos; }

void tdm__dec_unverified(tdm_dec_t *d) {
  d->verified = UINT64_MAX;
  d->ahead_done = 1;
}

static uint64_t strm_in(const strm_t *s) {
  return s->in_off - (s->in_len - s->in_at);
}

uint64_t tdm__dec_in(const tdm_dec_t *d) {
  return d->err != 0 && d->ahead_err != 0 ? d->err_in : strm_in(&d->main);
}

const char *tdm__dec_why(const tdm_dec_t *d) {
  return d->why != NULL ? d->why : "";
}

/* At least `need` unread compressed bytes in the buffer, unless the file
   ends first: what is left is moved to the front and the rest filled.
   0, or -errno. */
static int refill_min(strm_t *s, size_t need) {
  if (s->in_len - s->in_at >= need || s->eof)
    return 0;
  memmove(s->in, s->in + s->in_at, s->in_len - s->in_at);
  s->in_len -= s->in_at;
  s->in_at = 0;
  while (s->in_len < need && !s->eof) {
    ssize_t n = tdm__pread_full(s->fd, s->in + s->in_len, IN_CAP - s->in_len,
                                s->in_off);
    if (n < 0)
      return (int)n;
    if (n == 0)
      s->eof = 1;
    s->in_len += (size_t)n;
    s->in_off += (uint64_t)n;
  }
  return 0;
}

/* More compressed bytes when the buffer is used up. 0, or -errno. */
static int refill(strm_t *s) {
  ssize_t n;

  if (s->in_at < s->in_len || s->eof)
    return 0;
  if ((n = tdm__pread_full(s->fd, s->in, IN_CAP, s->in_off)) < 0)
    return (int)n;
  s->in_len = (size_t)n;
  s->in_at = 0;
  s->in_off += (uint64_t)n;
  if (n == 0)
    s->eof = 1;
  return 0;
}

/* Up to `n` bytes; with `one`, stop at the end of a member (frame_done). */
static ssize_t gz_read(strm_t *s, unsigned char *buf, size_t n, int one) {
  size_t out = 0;

  s->frame_done = 0;
  while (out < n) {
    int zr, rc;
    if ((rc = refill(s)) != 0)
      return rc;
    if (s->in_at == s->in_len) { /* the file has no more */
      if (s->in_frame)
        return -EPIPE;
      s->ended = 1;
      break;
    }
    if (!s->in_frame) {
      /* A new member must start with the magic; anything else after a
         complete member is trailing garbage, ignored as gzip(1) does. */
      if (s->in[s->in_at] != 0x1f) {
        s->ended = 1;
        break;
      }
      s->in_frame = 1;
      s->start_in = strm_in(s);
    }
    s->z.next_in = s->in + s->in_at;
    s->z.avail_in = (uInt)(s->in_len - s->in_at);
    s->z.next_out = buf + out;
    s->z.avail_out = (uInt)(n - out > UINT32_MAX ? UINT32_MAX : n - out);
    zr = inflate(&s->z, Z_NO_FLUSH);
    s->in_at = s->in_len - s->z.avail_in;
    out = (size_t)(s->z.next_out - buf);
    if (zr == Z_STREAM_END) { /* the CRC-32 and the length matched */
      s->in_frame = 0;
      if (inflateReset(&s->z) != Z_OK)
        return -ENOMEM;
      if (one) {
        s->frame_done = 1;
        break;
      }
    } else if (zr == Z_BUF_ERROR) {
      /* No progress possible: input used up (refilled above) or output
         full (the loop ends). */
      if (s->z.avail_in != 0 && out < n)
        return -EBADMSG;
    } else if (zr == Z_MEM_ERROR) {
      return -ENOMEM;
    } else if (zr != Z_OK) {
      return -EBADMSG;
    }
  }
  return (ssize_t)out;
}

/* Up to `n` bytes; with `one`, stop at the end of a frame (frame_done).
   With `checked`, a data frame without a content checksum is -ENOMSG. */
static ssize_t zs_read(strm_t *s, unsigned char *buf, size_t n, int one,
                       int checked) {
  ZSTD_outBuffer ob = {buf, n, 0};

  s->frame_done = 0;
  while (ob.pos < ob.size) {
    ZSTD_inBuffer ib;
    size_t zr;
    int rc;
    if ((rc = refill(s)) != 0)
      return rc;
    if (s->in_at == s->in_len) {
      if (s->in_frame) {
        /* Flush what the decoder still holds before calling it short. */
        ib.src = s->in;
        ib.size = ib.pos = 0;
        zr = ZSTD_decompressStream(s->zs, &ob, &ib);
        if (ZSTD_isError(zr))
          return -EBADMSG;
        if (zr == 0) {
          s->in_frame = 0;
          if (one) {
            s->frame_done = 1;
            break;
          }
          continue;
        }
        if (ob.pos > 0)
          break;
        return -EPIPE;
      }
      s->ended = 1;
      break;
    }
    if (!s->in_frame) {
      ZSTD_frameHeader h;
      size_t hr;
      if ((rc = refill_min(s, ZSTD_FRAMEHEADERSIZE_MAX)) != 0)
        return rc;
      s->start_in = strm_in(s);
      hr = ZSTD_getFrameHeader(&h, s->in + s->in_at, s->in_len - s->in_at);
      if (ZSTD_isError(hr))
        return -EBADMSG;
      if (hr > 0) /* the file ends inside a frame header */
        return -EPIPE;
      if (checked && h.frameType == ZSTD_frame && !h.checksumFlag)
        return -ENOMSG;
    }
    ib.src = s->in;
    ib.size = s->in_len;
    ib.pos = s->in_at;
    zr = ZSTD_decompressStream(s->zs, &ob, &ib);
    s->in_at = ib.pos;
    if (ZSTD_isError(zr))
      return -EBADMSG;
    s->in_frame = zr != 0;
    if (zr == 0 && one) {
      s->frame_done = 1;
      break;
    }
  }
  return (ssize_t)ob.pos;
}

static ssize_t strm_read(strm_t *s, unsigned char *buf, size_t n, int one,
                         int checked) {
  ssize_t r = s->kind == TDM_COMP_GZIP ? gz_read(s, buf, n, one)
                                       : zs_read(s, buf, n, one, checked);
  if (r > 0)
    s->pos += (uint64_t)r;
  return r;
}

/* Decode ahead over one more whole member or frame; on its verified end,
   move `verified` past it. Returns 1 when it moved, 0 when nothing is left
   to verify (the clean end, or a stop recorded in ahead_err). */
static int verify_more(tdm_dec_t *d) {
  strm_t *a = &d->ahead;

  if (d->ahead_err != 0 || d->ahead_done)
    return 0;
  for (;;) {
    ssize_t r = strm_read(a, d->scratch, SKIP_CAP, 1, 1);
    if (r < 0) {
      /* Not verifiable is corrupt to every caller; tdm__dec_why() tells. */
      d->ahead_err = r == -ENOMSG ? -EBADMSG : (int)r;
      d->err_in = a->start_in;
      d->why = r == -EBADMSG  ? "corrupt"
               : r == -EPIPE  ? "truncated"
               : r == -ENOMSG ? "unverifiable"
                              : NULL;
      return 0;
    }
    if (a->frame_done) {
      d->verified = a->pos;
      return 1;
    }
    if (r == 0 && a->ended) {
      d->verified = a->pos;
      d->ahead_done = 1;
      return 0;
    }
  }
}

ssize_t tdm__dec_read(tdm_dec_t *d, void *buf, size_t n) {
  ssize_t r;

  if (d->err != 0)
    return d->err;
  if (n == 0 || d->main.ended)
    return 0;
  while (d->main.pos >= d->verified && verify_more(d))
    ;
  if (d->main.pos >= d->verified) {
    if (d->ahead_err == 0)
      return 0; /* the clean end */
    d->err = d->ahead_err;
    return d->err;
  }
  if (n > d->verified - d->main.pos)
    n = (size_t)(d->verified - d->main.pos);
  r = strm_read(&d->main, buf, n, 0, 0);
  if (r == 0 && d->main.pos < d->verified)
    r = -EBADMSG; /* the same bytes decoded differently: the file changed */
  if (r < 0)
    d->err = (int)r;
  return r;
}

int tdm__dec_skip(tdm_dec_t *d, uint64_t to) {
  int rc = 0;

  if (to < d->main.pos)
    return -EINVAL;
  while (d->main.pos < to) {
    uint64_t left = to - d->main.pos;
    ssize_t r = tdm__dec_read(d, d->scratch, left < SKIP_CAP ? (size_t)left : SKIP_CAP);
    if (r <= 0) {
      rc = r < 0 ? (int)r : -ENODATA;
      break;
    }
  }
  return rc;
}
