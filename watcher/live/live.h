/*
 * live.h: live watching: what the loop thread shares with the worker.
 */
#ifndef TDM_LIVE_H
#define TDM_LIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "live/watch_inotify.h"
#include "tidemark.h"

/* Live watching (live.c): what the loop thread shares with the worker. */
typedef struct tdm_live {
  uv_loop_t *loop;
  uv_async_t wake;        /* tdm_stop / tdm_rescan from anywhere */
  uv_timer_t tick;        /* every --checkpoint-ms: checkpoint, drain */
  uv_timer_t sweep;       /* reconcile: safety net, or --poll-ms */
  uv_poll_t watch;        /* readable inotify descriptor */
  uv_work_t work;         /* the worker: one at a time */
  tdm_inotify_t in;       /* watch table: the worker's */
  int inotify;            /* watching with inotify (not polling) */
  /* Raw inotify events, appended by the loop thread, taken by the worker. */
  pthread_mutex_t lock;
  char *queue;
  size_t queue_len, queue_cap;
  int queue_overflow;     /* dropped events: the worker must rescan */
  /* Requests, set on the loop thread or by a signal handler while the
     worker may run: atomics (lock-free, so async-signal-safe). */
  atomic_int want_rescan;
  atomic_int want_checkpoint;
  atomic_int want_drain;
  atomic_int closing;     /* handles are being closed: no more wake-ups */
  /* Loop-thread state. */
  int busy;               /* a work item is queued or running */
  int stopping;
  int final_done;         /* the worker made its final checkpoint */
  int handles;            /* open handles, to know when all are closed */
  int status;
  int watch_failed;       /* a directory could not be watched: poll it */
  int limit_warned;
  tdm_stopped_cb stopped_cb;
  void *stopped_arg;
} tdm_live_t;

/* live.c: wake a started tdm_t's loop after tdm_stop (async-signal-safe),
   and free what tdm_start allocated (after it stopped). */
void tdm__live_wake(tdm_t *t);
void tdm__live_free(tdm_t *t);

#endif /* TDM_LIVE_H */
