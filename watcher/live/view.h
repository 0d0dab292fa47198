/*
 * view.h: a running instance as `tidemark top` and the status page on the
 * metrics port show it (view.c). Two sources, each optional to the other:
 *
 *   the store     what is durable: every tracked file with its bookmark and
 *                 the size the instance saw at its last look, the instance
 *                 id, the last checkpoint, lost files, dead letters. Opened
 *                 read-only (beside a running writer, as `status` is), and
 *                 walked again only when a commit happened since the last
 *                 walk (tdm_store_refresh's transaction id), so an idle
 *                 instance costs one read transaction per refresh; and no
 *                 more often than keeps the walks under 1% of the time (a
 *                 walk of 100,000 records costs some 25 ms here: then one
 *                 every 2.5 s or so under constant commits).
 *   the metrics   the text of GET /metrics (engine/metrics.c), parsed: the
 *                 processors with their counters; two samples give live
 *                 rates and each processor's state (ok, retrying, failing).
 *
 * A file's size now comes from a look at its path (lstat, the same device
 * and inode, as `status` does), TDM_VIEW_LOOKS files per refresh in turn
 * (every file at every refresh up to that many), and the files on screen
 * (tdm__view_look); between looks, the greater of the last look and what
 * the instance saw at its last look. Pending bytes are that size minus the
 * bookmark. Rates from the store: how fast the sizes grow (in) and how far
 * the bookmarks moved between the last two commits (out, per file and in
 * all: durable progress). Rates from the metrics are those of the
 * processors (out) and of what the instance saw arrive (in: bytes delivered
 * plus bytes pending). A file is "behind" while it has bytes pending; how
 * long counts from the first walk that saw it pending without a break (at
 * the first walk: from when its bookmark last moved).
 *
 * Nothing here is thread-safe: one thread uses a view.
 */
#ifndef TDM_VIEW_H
#define TDM_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h"
#include "state/store.h"

/* One tracked file. */
typedef struct tdm_view_file {
  uint64_t id;
  char *path;          /* owned; as recorded (any bytes) */
  char *error;         /* owned; NULL if none */
  uint64_t dev, ino;
  uint64_t seen;       /* its size at the instance's last look (durable) */
  uint64_t size;       /* its size now, as far as known: the view's last
                          look at the path (the same dev and inode), else
                          `seen` */
  int present;         /* that look found it (1), did not (0), none yet (-1) */
  int64_t updated_ns, first_seen_ns;
  uint64_t bookmark;
  uint64_t pending;    /* size - bookmark, never negative */
  uint32_t state;      /* tdm_file_state_t */
  int64_t behind_ns;   /* wall time since which it has been behind; 0: not */
  double rate;         /* bookmark bytes/s between the last two commits */
} tdm_view_file_t;

/* Files whose path is looked at per refresh, in turn. */
#define TDM_VIEW_LOOKS 1000u
/* Walks of the store take at most 1/this of the time (tdm__view_refresh). */
#define TDM_VIEW_WALK_SHARE 100

/* How files are ordered (tdm__view_pick). */
typedef enum tdm_view_sort {
  TDM_VIEW_BY_PENDING = 0, /* bytes pending, then longest behind */
  TDM_VIEW_BY_BEHIND,      /* longest behind, then bytes pending */
  TDM_VIEW_BY_RATE,        /* fastest bookmark */
  TDM_VIEW_BY_PATH,        /* path, bytewise */
  TDM_VIEW_SORTS_
} tdm_view_sort_t;

/* "pending", "behind", "rate", "path". */
const char *tdm__view_sort_name(tdm_view_sort_t by);

#define TDM_VIEW_PROCS_MAX 32

/* One processor, from the metrics (or only its spec, from the store). */
typedef struct tdm_view_proc {
  char spec[256];      /* as the label or the store key gives it, raw */
  uint64_t bytes, records, retries, failures;
  double bps, rps;     /* delivered per second, between two samples */
  uint64_t retry_ms;   /* monotonic ms of the last sample that saw the
                          retries (failures) grow; 0: never */
  uint64_t fail_ms;
} tdm_view_proc_t;

/* What the metrics say, kept between two samples. */
typedef struct tdm_view_metrics {
  int have;            /* a sample parsed */
  int have_rates;      /* two samples, rates valid */
  uint64_t at_ms;      /* monotonic ms of the last sample */
  uint64_t prev_ms;
  tdm_view_proc_t procs[TDM_VIEW_PROCS_MAX];
  size_t n_procs;
  uint64_t pending;    /* tidemark_bytes_pending */
  double oldest_s;     /* tidemark_oldest_pending_seconds */
  uint64_t tracked;    /* tidemark_files_tracked */
  int64_t dead_letters;/* tidemark_dead_letter_records_total, -1: absent */
  double in_bps;       /* (delivered + pending) growth, per second */
  double out_bps, out_rps; /* the slowest processor's */
  uint64_t prev_in, prev_out, prev_outr; /* the sums of the last sample */
} tdm_view_metrics_t;

/* The store, walked. */
typedef struct tdm_view {
  tdm_store_t *store;
  tdm__log_t log;
  char *dir;
  uint64_t txnid;      /* of the last walk; 0: none yet */
  tdm_view_file_t *files; /* in id order */
  size_t n, cap;
  int64_t checkpoint_ns;
  uint64_t lost_files;
  uint64_t dead_letters;  /* from the dead-letter files' blobs */
  char procs[TDM_VIEW_PROCS_MAX][256]; /* processors with a restore blob */
  size_t n_procs;
  uint64_t sum_size, sum_bookmark, pending;
  size_t n_behind, n_failed;
  double in_bps;           /* sizes' growth between two refreshes */
  int in_known;
  double out_bps;          /* bookmarks' between the last two commits */
  int64_t settle_ns;
  int settled;
  size_t cursor;           /* the next file to look at */
  int64_t walk_at_ns;      /* monotonic, the end of the last walk */
  int64_t walk_cost_ns;    /* its CPU time */
  int64_t walked_ckpt_ns;  /* the checkpoint time of the commit walked */
  int64_t rate_span_ns;    /* the time between those commits */
  int64_t writer_pid;      /* holding DIR/writer.lock, 0: none seen */
  int64_t writer_start_ns; /* its start (wall), 0: unknown */
} tdm_view_t;

/*
 * Open the store of `dir` read-only and walk it once. Errors are logged
 * through `log` (copied; NULL: stderr) naming the directory: -ENOENT (no
 * state there), -ENOTDIR, TDM_ESTATE (not a store, corrupt), TDM_ESTORE,
 * -ENOMEM.
 */
int tdm__view_open(const char *dir, const tdm__log_t *log, tdm_view_t **out);

/* Close the store, free everything. Accepts NULL. */
void tdm__view_close(tdm_view_t *v);

/*
 * Look at the store again: a new commit since the last walk makes a new walk
 * (*changed = 1), else only the writer's pid is looked at (*changed = 0).
 * 0 or an error as above (the old walk stays).
 */
int tdm__view_refresh(tdm_view_t *v, int *changed);

/*
 * The `k` first files in order `by` among those whose path holds `filter`
 * (NULL or "": all) into out[0..k); returns how many were put; *matched gets
 * how many matched in all (may be NULL). Pointers stay valid until the next
 * refresh.
 */
size_t tdm__view_pick(const tdm_view_t *v, tdm_view_sort_t by,
                      const char *filter, size_t k,
                      const tdm_view_file_t **out, size_t *matched);

/* Look at the paths of `files` (from tdm__view_pick) now, and count again. */
void tdm__view_look(tdm_view_t *v, const tdm_view_file_t *const *files,
                    size_t k);

/*
 * Parse the metrics text `text` (`len` bytes) taken at monotonic `now_ms`
 * into `m`, and when the sample before it is at least 200 ms older, the
 * rates between the two. 0, or -EINVAL when it is not our metrics text (m
 * unchanged).
 */
int tdm__view_metrics_add(tdm_view_metrics_t *m, const char *text, size_t len,
                          uint64_t now_ms);

/* "ok", "retrying", "failing" (each for 5 s after the last sample that saw
   the count grow), or "?" without two samples. */
const char *tdm__view_proc_state(const tdm_view_metrics_t *m,
                                 const tdm_view_proc_t *p);

/*
 * The header, as lines of plain text (UTF-8, control characters escaped):
 * instance, uptime, checkpoint age, files; rates in and out, dead letters,
 * lost files; one line per processor. `m` may be NULL (store only), `v` may
 * be NULL (metrics only); `source` says where the live numbers come from
 * (shown). Writes up to `max` lines of `cap` bytes into lines[]; returns how
 * many.
 */
size_t tdm__view_header(const tdm_view_t *v, const tdm_view_metrics_t *m,
                        const char *source, char (*lines)[512], size_t max);

/* The column titles and one file's row, `width` columns wide at most (the
   path is cut, an error follows it), in buf[cap]. */
const char *tdm__view_titles(int width, char *buf, size_t cap);
const char *tdm__view_row(const tdm_view_t *v, const tdm_view_file_t *f,
                          int width, char *buf, size_t cap);

/*
 * `s` for a screen: control bytes, bytes that are not UTF-8 and the C1
 * controls (U+0080 to U+009F) escaped (\n, \t, \\, \xNN, \u0080), so a file
 * name can neither break a line nor drive the terminal. Into buf[cap], cut.
 */
const char *tdm__view_escape(const char *s, char *buf, size_t cap);

/* Cut `s` in place to at most `cols` columns (a UTF-8 sequence counts one,
   cut at a character). */
void tdm__view_cut(char *s, size_t cols);

/* "12.3M", "512", "1.0G": a byte count in 5 columns or fewer. */
const char *tdm__view_bytes(double n, char *buf, size_t cap);
/* "45s", "12m", "3h05", "2d": a duration in 5 columns or fewer. */
const char *tdm__view_age(int64_t ns, char *buf, size_t cap);

/*
 * The status page (GET / on the metrics port): a small HTML document, no
 * script and no external asset, reloading itself every `refresh_s` seconds
 * (meta refresh): the header and the `n_files` files most behind. Written
 * to `out` as it is made.
 */
void tdm__view_html(FILE *out, const tdm_view_t *v, const tdm_view_metrics_t *m,
                    const char *source, size_t n_files, int refresh_s);

#endif /* TDM_VIEW_H */
