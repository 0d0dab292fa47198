/*
 * live.h: live watching: what the loop thread shares with the worker.
 */
#ifndef TDM_LIVE_H
#define TDM_LIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "live/metrics_http.h"
#include "tidemark.h"

/* Live watching (live.c): what the loop thread shares with the worker. */
typedef struct tdm_live {
  uv_loop_t *loop;
  uv_async_t wake;        /* tdm_stop / tdm_rescan from anywhere */
  uv_timer_t tick;        /* every --checkpoint-ms: checkpoint, drain */
  uv_timer_t sweep;       /* reconcile: safety net, or --poll-ms */
  uv_work_t work;         /* the worker: one at a time */
  const struct tdm_watch_ops *watch; /* the backend (live/watch.h) */
  void *watch_state;      /* and its state */
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
  tdm_stopped_cb stopped_cb;
  void *stopped_arg;
  /* tdm_run_slice: the work runs on the loop thread (an idle handle), on a
     loop of tidemark's own that a timer stops after each slice. */
  int inline_work;
  uv_idle_t idle;
  uv_loop_t *own_loop;    /* owned; NULL once closed */
  uv_timer_t slice;
  int slice_done;         /* stopped_cb was called */
  int slice_status;
  /* Metrics and systemd (live/metrics_http.c, live/notify.c). The worker
     renders the metrics text and publishes it under mlock; the loop thread
     serves it. */
  tdm_metrics_http_t *http; /* --metrics, or NULL */
  uv_timer_t watchdog;    /* WATCHDOG=1 pings (notify, WatchdogSec=) */
  int watchdog_on;
  int ready_sent;         /* loop: READY=1 said */
  uint64_t status_ms;     /* loop: last STATUS= line */
  int first_pass_done;    /* worker: the first reconcile is over */
  uint64_t m_last_ms;     /* worker: last publication */
  atomic_int m_stale;     /* worker: a publication was skipped (too soon
                             after the last); the next tick runs one */
  pthread_mutex_t mlock;
  char *mtext;            /* the metrics text (mlock) */
  size_t mlen;
  uint64_t m_tracked, m_pending; /* for STATUS= (mlock) */
} tdm_live_t;

/* live.c: wake a started tdm_t's loop after tdm_stop (async-signal-safe),
   and free what tdm_start allocated (after it stopped). */
void tdm__live_wake(tdm_t *t);
void tdm__live_free(tdm_t *t);

/* Loop thread: queue the worker if there is work and none is queued or
   running (what a watch backend calls when events arrived). */
void tdm__live_kick(tdm_t *t);

/* Worker: tdm_scan_t.on_dir of live scans: the backend watches each
   directory before it is listed; one it cannot watch is swept at
   TDM_WATCH_FALLBACK_MS. */
int tdm__live_on_dir(void *arg, const char *path);

#endif /* TDM_LIVE_H */
