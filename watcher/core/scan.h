/*
 * scan.h: the directory walk, filtered, calling back per regular file.
 */
#ifndef TDM_SCAN_H
#define TDM_SCAN_H

#include <stdint.h>
#include <sys/stat.h>

#include "base/log.h"
#include "core/filter.h"

/*
 * Called for each regular file that passes the filter. `path` is absolute
 * (root + rel), `rel` the part under the root; both valid only during the
 * call. `st` is its lstat. A negative return stops the scan and is returned.
 */
typedef int (*tdm_scan_cb)(void *arg, const char *path, const char *rel,
                           const struct stat *st);

typedef struct tdm_scan_stats {
  uint64_t special;       /* FIFOs, sockets, devices skipped */
  uint64_t errors;        /* directories that could not be read */
} tdm_scan_stats_t;

typedef struct tdm_scan {
  const tdm_filter_t *filter;
  int recursive;
  const tdm__log_t *log;
  tdm_scan_cb on_file;
  /* Called with each directory's absolute path before it is read (NULL:
     none); live watching adds its watch here so that nothing created
     between the watch and the listing is missed. Negative: stop. */
  int (*on_dir)(void *arg, const char *path);
  void *arg;
  tdm_scan_stats_t stats; /* added to */
} tdm_scan_t;

/*
 * Walk the directory `rel` under `root` ("" for the root itself; `root`
 * absolute). Unreadable subdirectories are logged, counted and skipped.
 * Returns 0, a callback's negative return, or -errno when the starting
 * directory itself cannot be opened (logged, naming it; -ENOENT silently
 * for a subdirectory that vanished).
 */
int tdm__scan(tdm_scan_t *s, const char *root, const char *rel);

#endif /* TDM_SCAN_H */
