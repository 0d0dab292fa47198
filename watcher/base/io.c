/*
 * io.c: reading a descriptor at an offset, whole (see io.h).
 */
#include "base/io.h"

#include <errno.h>
#include <unistd.h>

ssize_t tdm__pread_full(int fd, void *buf, size_t len, uint64_t off) {
  size_t got = 0;

  while (got < len) {
    ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}
