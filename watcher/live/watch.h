/*
 * watch.h: how the live engine learns what changed. One backend per file,
 * behind this table (as libuv's src/unix/linux.c and kqueue.c, or Fluent
 * Bit's tail_fs_inotify.c and tail_fs_stat.c):
 *
 *   watch_inotify.c  an inotify descriptor of tidemark's own, one watch per
 *                    directory, read on the loop thread through a uv_poll_t;
 *                    the worker turns the queued events into looks
 *   watch_poll.c     no events: a stat sweep of the whole tree every
 *                    --poll-ms (network filesystems), and the fallback when
 *                    the kernel gives no inotify instance
 *
 * Events are hints; a sweep compares the tree with the store whatever the
 * backend. Threads: open, stop, close and pending run on the loop thread;
 * add_dir and dispatch on the worker (one at a time, never with each other).
 * A backend may read and set the request flags of tdm_live_t (atomics) and
 * wake the loop with tdm__live_kick().
 */
#ifndef TDM_WATCH_H
#define TDM_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tidemark.h"

/* How often directories that could not be watched are swept, and the poll
   backend's interval without --poll-ms. */
#define TDM_WATCH_FALLBACK_MS 1000u

/* What the live engine gives a backend at open(): a backend calls the
   engine's live side only through this table, never live.c by name (so
   the calls between live.c and a backend run one way). */
typedef struct tdm_watch_host {
  /* Loop thread: queue the worker (events arrived): tdm__live_kick. */
  void (*kick)(tdm_t *t);
  /* Worker: tdm_scan_t.on_dir of the scans a backend starts (a new
     directory): tdm__live_on_dir. */
  int (*on_dir)(void *arg, const char *path);
} tdm_watch_host_t;

/* Every method but open and sweep_ms may be NULL: nothing to do. */
typedef struct tdm_watch_ops {
  const char *name;  /* "inotify", "poll": for messages */

  /*
   * Set up on `loop` and start taking events; *state is the backend's.
   * `host` (static, outlives the backend) is how it calls back.
   * Returns 0, or -errno when the backend cannot run here (the caller says
   * why and falls back to polling): -EMFILE/-ENFILE for inotify instances.
   */
  int (*open)(tdm_t *t, uv_loop_t *loop, const tdm_watch_host_t *host,
              void **state);

  /* Stop taking events: tidemark is stopping. */
  void (*stop)(void *state);

  /* Close every handle on the loop, `done` once per handle; returns how many
     handles it closes (0: none). */
  int (*close)(void *state, uv_close_cb done);

  /* Free the state, after every handle was closed. Accepts NULL. */
  void (*free)(void *state);

  /* Does dispatch() have something to do? */
  int (*pending)(void *state);

  /*
   * A scan is about to list the directory `path` (absolute) of source
   * `root`: watch it first, so that nothing created between the watch and
   * the listing is missed. Returns 0 (watched, or gone meanwhile), 1 when it
   * cannot be watched and must be polled (the backend said why), or a
   * negative code that ends the pass.
   */
  int (*add_dir)(tdm_t *t, void *state, const char *path, size_t root);

  /* Look at what the events gathered since the last call name. 0, or what
     ends the pass (see tdm__look). */
  int (*dispatch)(tdm_t *t, void *state);

  /* Directories watched now. */
  size_t (*count)(void *state);

  /* Milliseconds between sweeps of the whole tree when all is well. */
  uint32_t (*sweep_ms)(const tdm_t *t);
} tdm_watch_ops_t;

extern const tdm_watch_ops_t tdm__watch_inotify;
extern const tdm_watch_ops_t tdm__watch_poll;

#endif /* TDM_WATCH_H */
