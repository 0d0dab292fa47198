/*
 * zread.h: compressed files in tail mode, and the uncompressed stream whole
 * mode hashes and delivers (decoding itself: core/decompress.h).
 */
#ifndef TDM_ZREAD_H
#define TDM_ZREAD_H

#include <stddef.h>
#include <sys/stat.h>

#include "core/decompress.h"
#include "core/filetable.h"
#include "tidemark.h"

/*
 * Tail mode's look at a compressed file `f` (NULL: not tracked yet), open at
 * `fd` (the caller closes it) with fstat `st`. Until it is complete (hint
 * COMPLETE, hint CLOSED with no writer left, or --settle-ms old) it only
 * waits (tdm__set_waiting). Then it is fingerprinted on its uncompressed
 * head, matched against the files tracked before (a rotated log that
 * logrotate compressed continues from its bookmark; the plain file's record,
 * when that file is gone, is forgotten in the same checkpoint) and read to
 * its end. Returns as tdm__read; corrupt or truncated data is logged with
 * its offset, counted, and ends the file's read at its last whole record
 * (0: the file's own failure).
 */
int tdm__zlook(tdm_t *t, tdm_file_t *f, const char *path, int fd,
               const struct stat *st, tdm_comp_t kind, unsigned hints);

/*
 * Stream the whole uncompressed content of `fd` through `cb` in pieces of at
 * most t->buf_cap bytes (in t->buf, valid during the call). Returns 0, cb's
 * non-zero return, or a decoder error (-EBADMSG, -EPIPE: logged naming
 * `path` and the offset, counted; -errno, -ENOMEM).
 */
int tdm__zstream(tdm_t *t, const char *path, int fd, tdm_comp_t kind,
                 int (*cb)(void *arg, const char *buf, size_t n), void *arg);

#endif /* TDM_ZREAD_H */
