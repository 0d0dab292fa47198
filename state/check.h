/*
 * check.h: the corruption check of a state store, run before this process
 * lets LMDB touch it, and the mark that lets it be skipped.
 *
 * LMDB has no checksums and follows whatever page numbers and sizes it finds:
 * a damaged data.mdb can make it read outside the map (SIGSEGV, SIGBUS), fail
 * an assertion (SIGABRT) or loop. A forked child walks the whole store with
 * LMDB's own code and decodes every record; whatever happens to it, this
 * process survives and says so.
 *
 * The walk reads all of data.mdb, so it runs only when the store may have
 * been damaged since it was last checked. DIR/checked says it was not:
 *   "tidemark-checked 1 closed DEV INO SIZE MTIME_S MTIME_NS CTIME_S CTIME_NS"
 *       written by a writer after it closed the store cleanly: data.mdb,
 *       untouched since, still has exactly this identity, size and times;
 *   "tidemark-checked 1 open PID START"
 *       written by a writer once it checked (or trusted) the store at open:
 *       while process PID (started at START, in clock ticks since boot) lives,
 *       only it writes the store.
 * Anything else (no file, a writer that died or was killed, a copy, a store
 * changed behind our back, a marker in another format) means the walk runs.
 */
#ifndef TDM_STATE_CHECK_H
#define TDM_STATE_CHECK_H

#include "base/log.h"

/*
 * Check the store in `dir` (`qdir`: its name quoted for log lines) unless
 * DIR/checked vouches for it. `lock_fd`: the writer lock's descriptor, or -1
 * (closed in the child, which must not keep the lock alive).
 * 0 (sound, not checked, or no check possible), or TDM_ESTATE (logged: what
 * is wrong and what to do).
 */
int tdm__check_store(const char *dir, const char *qdir, int lock_fd,
                     const tdm__log_t *log);

/* Writer, after the check: DIR/checked says "open" with this process. */
void tdm__check_mark_open(const char *dir, const tdm__log_t *log);

/* Writer, after the environment is closed: DIR/checked says "closed" with
   data.mdb as it is now when `clean`, and is removed otherwise. */
void tdm__check_mark_closed(const char *dir, int clean, const tdm__log_t *log);

#endif /* TDM_STATE_CHECK_H */
