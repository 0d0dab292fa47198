/*
 * decompress.h: streaming decompression of gzip and zstd files, read through
 * a descriptor with pread (the descriptor's offset is never used or moved).
 *
 *     tdm_comp_t kind;
 *     tdm_dec_t *d;
 *     if (tdm__comp_detect(fd, &kind) == 0 && kind != TDM_COMP_NONE &&
 *         tdm__dec_open(fd, kind, &d) == 0) {
 *       ssize_t n;
 *       while ((n = tdm__dec_read(d, buf, sizeof(buf))) > 0) use(buf, n);
 *       if (n < 0) say(tdm__dec_in(d));  corrupt/truncated at this offset
 *       tdm__dec_close(d);
 *     }
 *
 * A file is compressed by its magic bytes, never by its name: gzip
 * (1f 8b; several members in a row are one stream, as gzip(1) reads them)
 * or zstd (28 b5 2f fd, or a skippable frame 5? 2a 4d 18 first, as pzstd
 * writes; several frames in a row likewise, skippable ones skipped).
 * Bytes are handed out only from a member or frame whose checksum verified
 * (gzip: CRC-32 and length; zstd: the content checksum): a zstd frame
 * without one cannot be verified and ends the stream like corrupt data.
 * Positions are counted in uncompressed bytes; the compressed offset where
 * decoding stopped is there for error messages.
 */
#ifndef TDM_DECOMPRESS_H
#define TDM_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tidemark.h"

typedef enum tdm_comp {
  TDM_COMP_NONE = 0,
  TDM_COMP_GZIP = 1,
  TDM_COMP_ZSTD = 2
} tdm_comp_t;

/* What the first bytes of fd say (a file shorter than a magic is NONE).
   0 or -errno of the read. */
int tdm__comp_detect(int fd, tdm_comp_t *out);

/* Is the file at `fd` to be decompressed under `mode` (--decompress)?
   *kind is set (TDM_COMP_NONE: read it as it is). 0 or -errno of the
   read. */
int tdm__zkind(tdm_decompress_t mode, int fd, tdm_comp_t *kind);

/* "gzip", "zstd" or "plain". */
const char *tdm__comp_name(tdm_comp_t kind);

typedef struct tdm_dec tdm_dec_t;

/* A decoder over `fd` (not owned: the caller closes it after
   tdm__dec_close), at uncompressed offset 0. -ENOMEM, -EINVAL (kind). */
int tdm__dec_open(int fd, tdm_comp_t kind, tdm_dec_t **out);

/*
 * Up to `n` uncompressed bytes into buf. Returns the number of bytes (> 0),
 * 0 at the clean end of the stream, or:
 *   -EBADMSG  corrupt data: a member or frame whose check failed, or a
 *             zstd frame without a content checksum (not verifiable:
 *             tdm__dec_why() says "unverifiable"); tdm__dec_in() is where
 *             it starts, and nothing of it was handed out
 *   -EPIPE    the stream ends early: the compressed file is truncated (or
 *             still being written); nothing of the cut member handed out
 *   -errno    a read error; -ENOMEM.
 * After an error every later call returns the same error.
 */
ssize_t tdm__dec_read(tdm_dec_t *d, void *buf, size_t n);

/* Stream up to uncompressed offset `to` without handing the bytes out
   (from the current position; `to` before it is -EINVAL). Errors as
   tdm__dec_read; reaching the end first is -ENODATA. */
int tdm__dec_skip(tdm_dec_t *d, uint64_t to);

/* Hand out bytes as they decode, unverified: for reads that deliver
   nothing (a fingerprint of the head, a marker), which would otherwise
   decode a whole member twice first. Call right after tdm__dec_open. */
void tdm__dec_unverified(tdm_dec_t *d);

/* Uncompressed bytes handed out (or skipped) so far. */
uint64_t tdm__dec_pos(const tdm_dec_t *d);
/* Compressed bytes consumed so far; after an error, the compressed offset
   of the member or frame that could not be verified. */
uint64_t tdm__dec_in(const tdm_dec_t *d);

/* After an error: "corrupt", "truncated" or "unverifiable" (the reason,
   for a message); "" for a read error or none. */
const char *tdm__dec_why(const tdm_dec_t *d);

/* Accepts NULL. */
void tdm__dec_close(tdm_dec_t *d);

#endif /* TDM_DECOMPRESS_H */
