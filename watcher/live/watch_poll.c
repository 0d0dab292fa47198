/*
 * watch_poll.c: the backend without events (see watch.h). Every --poll-ms the
 * live engine sweeps the tree and compares each file's lstat with the store,
 * which does not reopen unchanged files; this is what works on network
 * filesystems, where inotify sees nothing, and when the kernel refuses an
 * inotify instance (fs.inotify.max_user_instances). There is nothing to
 * watch and nothing to dispatch: only the sweep's interval is its own.
 */
#include "live/watch.h"

#include "engine/engine.h"

static int poll_open(tdm_t *t, uv_loop_t *loop, const tdm_watch_host_t *host,
                     void **state) {
  (void)host;
  (void)t;
  (void)loop;
  *state = NULL;
  return 0;
}

static uint32_t poll_sweep_ms(const tdm_t *t) {
  return t->opts.poll_ms ? t->opts.poll_ms : TDM_WATCH_FALLBACK_MS;
}

const tdm_watch_ops_t tdm__watch_poll = {
    .name = "poll",
    .open = poll_open,
    .sweep_ms = poll_sweep_ms,
};
