/*
 * io.h: reading a descriptor at an offset, whole.
 */
#ifndef TDM_IO_H
#define TDM_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * pread(2) `len` bytes of `fd` at `off` into `buf`, again after a signal
 * (EINTR) or a short read, until all are read or the file ends. Returns the
 * bytes read (fewer than `len` only at the end of the file, 0 at or past it)
 * or -errno.
 */
ssize_t tdm__pread_full(int fd, void *buf, size_t len, uint64_t off);

#endif /* TDM_IO_H */
