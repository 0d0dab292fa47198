/*
 * identity.h: is an open file still the one a record remembers? Fingerprint
 * of the head, marker of the bytes before the bookmark, both read through the
 * descriptor.
 */
#ifndef TDM_IDENTITY_H
#define TDM_IDENTITY_H

#include <stdint.h>

#include "core/filetable.h"

/* Bytes of a file's head its fingerprint covers at most. */
#define TDM_FP_CAP 4096u
/* Bytes before the bookmark its marker covers at most. */
#define TDM_MARKER_LEN 64u

/* XXH3-64 of `len` bytes at `off` of `fd`. -errno on a read error, -ENODATA
   when the file holds fewer bytes. */
int tdm__hash_range(int fd, uint64_t off, uint32_t len, uint64_t *out);
/* The fingerprint of fd's head: *len = min(size, TDM_FP_CAP). */
int tdm__fingerprint(int fd, uint64_t size, uint64_t *hash, uint32_t *len);
/* The marker for a bookmark at `pos`. */
int tdm__marker(int fd, uint64_t pos, uint64_t *hash, uint32_t *len);

typedef enum tdm_verdict {
  TDM_SAME = 0,           /* carry on from the bookmark */
  TDM_TRUNCATED = 1,      /* shorter than the bookmark: restart at 0 */
  TDM_REWRITTEN = 2       /* different content at the same inode: new file */
} tdm_verdict_t;

/* Compare the open file (size `size`) with what `f` remembers. */
int tdm__identify(int fd, uint64_t size, const tdm_file_t *f,
                  tdm_verdict_t *out);

#endif /* TDM_IDENTITY_H */
