/*
 * clock.h: the clocks the engine reads, and stat times in nanoseconds.
 */
#ifndef TDM_CLOCK_H
#define TDM_CLOCK_H

#include <stdint.h>
#include <sys/stat.h>

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t tdm__now_ms(void);
/* Nanoseconds of CLOCK_REALTIME. */
int64_t tdm__wall_ns(void);

/* A stat's mtime in nanoseconds. */
static inline int64_t mtime_ns(const struct stat *st) {
  return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* A stat's ctime in nanoseconds. Any write, and any put-back of the mtime
   (touch -d, cp -p, rsync -t), moves it: size, mtime and ctime unchanged
   is what "unchanged" means. */
static inline int64_t ctime_ns(const struct stat *st) {
  return (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

#endif /* TDM_CLOCK_H */
