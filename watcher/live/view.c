/*
 * view.c: the store and the metrics of a running instance as `tidemark top`
 * and the status page show them (see view.h).
 */
#include "live/view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

/* A processor's state sticks this long after its count last grew. */
#define STATE_HOLD_MS 5000u

/* The prefix of a dead-letter file's blob in the store, and its layout:
   committed length, count, device, inode (u64 little-endian each). */
#define DEAD_LETTER_KEY "@dead-letter:"
#define DEAD_LETTER_BLOB 32

static const char *const sort_names[TDM_VIEW_SORTS_] = {
  [TDM_VIEW_BY_PENDING] = "pending", [TDM_VIEW_BY_BEHIND] = "behind",
  [TDM_VIEW_BY_RATE] = "rate",       [TDM_VIEW_BY_PATH] = "path",
};

const char *tdm__view_sort_name(tdm_view_sort_t by) {
  return (unsigned)by < TDM_VIEW_SORTS_ ? sort_names[by] : "?";
}

static const char *state_name(uint32_t s) {
  static const char *const names[] = {"active", "done", "duplicate",
                                      "failed", "pending", "gone"};
  return s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

/* ---- the store ----------------------------------------------------------- */

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time of this thread: what a walk costs, whatever else runs. */
static int64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The walk in progress: the new array, merged by id with the old one. */
typedef struct walk {
  tdm_view_t *v;
  tdm_view_file_t *old;
  size_t n_old, j;
  tdm_view_file_t *nv;
  size_t n, cap;
  int64_t span_ns;     /* between the commit walked before and this one */
  int64_t now_ns;
  int first;           /* the first walk of this view */
} walk_t;

static int on_file(void *arg, const tdm_file_rec_t *rec) {
  walk_t *w = arg;
  tdm_view_file_t *f, *o = NULL;

  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 1024;
    tdm_view_file_t *nv = realloc(w->nv, cap * sizeof(*nv));
    if (nv == NULL)
      return -ENOMEM;
    w->nv = nv;
    w->cap = cap;
  }
  while (w->j < w->n_old && w->old[w->j].id < rec->id)
    w->j++;
  if (w->j < w->n_old && w->old[w->j].id == rec->id)
    o = &w->old[w->j];
  f = &w->nv[w->n];
  memset(f, 0, sizeof(*f));
  f->id = rec->id;
  /* An unchanged path is taken over rather than copied again. */
  if (o != NULL && o->path != NULL && rec->path != NULL &&
      strcmp(o->path, rec->path) == 0) {
    f->path = o->path;
    o->path = NULL;
  } else if ((f->path = strdup(rec->path != NULL ? rec->path : "")) == NULL) {
    return -ENOMEM;
  }
  if (rec->error != NULL && (f->error = strdup(rec->error)) == NULL) {
    free(f->path);
    return -ENOMEM;
  }
  f->dev = rec->dev;
  f->ino = rec->ino;
  f->seen = rec->size;
  f->size = rec->size;
  f->bookmark = rec->offset;
  f->state = rec->state;
  f->updated_ns = rec->updated_ns;
  f->first_seen_ns = rec->first_seen_ns;
  /* What a look at the path found stays, while it is the same file. */
  if (o != NULL && o->present >= 0 && o->dev == rec->dev &&
      o->ino == rec->ino) {
    f->present = o->present;
    if (o->present == 1 && o->size > f->size)
      f->size = o->size;
  } else {
    f->present = -1;
  }
  f->behind_ns = o != NULL ? o->behind_ns : 0;
  if (o != NULL && w->span_ns > 0 && f->bookmark > o->bookmark)
    f->rate = (double)(f->bookmark - o->bookmark) * 1e9 / (double)w->span_ns;
  w->n++;
  return 0;
}

static void free_files(tdm_view_file_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].path);
    free(v[i].error);
  }
  free(v);
}

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static int on_blob(void *arg, const char *key, size_t key_len,
                   const void *blob, size_t len) {
  tdm_view_t *v = arg;
  size_t dl = strlen(DEAD_LETTER_KEY);

  if (key_len > dl && memcmp(key, DEAD_LETTER_KEY, dl) == 0) {
    if (len == DEAD_LETTER_BLOB)
      v->dead_letters += le64((const unsigned char *)blob + 8);
    return 0;
  }
  if (v->n_procs < TDM_VIEW_PROCS_MAX) {
    size_t n = key_len < sizeof(v->procs[0]) - 1 ? key_len
                                                 : sizeof(v->procs[0]) - 1;
    memcpy(v->procs[v->n_procs], key, n);
    v->procs[v->n_procs][n] = '\0';
    v->n_procs++;
  }
  return 0;
}

/*
 * The process holding DIR/writer.lock (an flock) and when it started: read
 * from /proc/locks, which lists every lock with its holder, so nothing is
 * locked or written to find out. 0 each when there is none or it cannot be
 * told.
 */
static void find_writer(tdm_view_t *v) {
  char path[4200], line[256];
  struct stat st;
  FILE *f;
  int64_t pid = 0;

  v->writer_pid = 0;
  v->writer_start_ns = 0;
  snprintf(path, sizeof(path), "%s/writer.lock", v->dir);
  if (stat(path, &st) != 0 || (f = fopen("/proc/locks", "re")) == NULL)
    return;
  while (pid == 0 && fgets(line, sizeof(line), f) != NULL) {
    char type[16], dev[64];
    long long p;
    unsigned long long ino;
    char *c = strchr(line, ':');
    /* "1: FLOCK  ADVISORY  WRITE 1234 fe:01:5678 0 EOF"; a waiter has "->" */
    if (c == NULL || strstr(line, "->") != NULL)
      continue;
    if (sscanf(c + 1, "%15s %*s %*s %lld %63s", type, &p, dev) == 3 &&
        strcmp(type, "FLOCK") == 0) {
      char *last = strrchr(dev, ':');
      if (last != NULL && sscanf(last + 1, "%llu", &ino) == 1 &&
          ino == (unsigned long long)st.st_ino)
        pid = p;
    }
  }
  fclose(f);
  if (pid <= 0)
    return;
  v->writer_pid = pid;
  {
    /* Field 22 of /proc/PID/stat: start, in clock ticks after boot;
       /proc/stat's btime: the boot, in seconds since the epoch. */
    char buf[1024];
    unsigned long long start = 0, btime = 0;
    long hz = sysconf(_SC_CLK_TCK);
    size_t n;
    snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    if ((f = fopen(path, "re")) == NULL)
      return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    {
      char *p = strrchr(buf, ')');
      int field = 2;
      if (p == NULL)
        return;
      for (p++; *p != '\0' && field < 22; p++)
        if (*p == ' ')
          field++;
      if (field != 22 || sscanf(p, "%llu", &start) != 1)
        return;
    }
    if ((f = fopen("/proc/stat", "re")) == NULL)
      return;
    while (fgets(buf, sizeof(buf), f) != NULL)
      if (sscanf(buf, "btime %llu", &btime) == 1)
        break;
    fclose(f);
    if (btime == 0 || hz <= 0)
      return;
    v->writer_start_ns = (int64_t)btime * 1000000000 +
                         (int64_t)(start * 1000000000ull / (unsigned long long)hz);
  }
}

/* Walk the files and the blobs of the commit `txnid` (see view.h). */
static int walk_store(tdm_view_t *v, uint64_t txnid, int64_t prev_ckpt) {
  walk_t w;
  uint64_t old_bm = v->sum_bookmark;
  int rc;

  memset(&w, 0, sizeof(w));
  w.v = v;
  w.old = v->files;
  w.n_old = v->n;
  w.first = v->txnid == 0;
  w.now_ns = tdm__wall_ns();
  w.span_ns = !w.first && prev_ckpt != 0 && v->checkpoint_ns > prev_ckpt
                  ? v->checkpoint_ns - prev_ckpt
                  : 0;
  if ((rc = tdm_store_load_files(v->store, on_file, &w)) != 0) {
    free_files(w.nv, w.n);
    return rc;
  }
  free_files(v->files, v->n);
  v->files = w.nv;
  v->n = w.n;
  v->cap = w.cap;
  if (w.span_ns > 0) {
    uint64_t bm = 0;
    for (size_t i = 0; i < v->n; i++)
      bm += v->files[i].bookmark;
    v->out_bps = bm > old_bm ? (double)(bm - old_bm) * 1e9 / (double)w.span_ns
                             : 0;
    v->rate_span_ns = w.span_ns;
  }
  v->n_procs = 0;
  v->dead_letters = 0;
  tdm_store_load_blobs(v->store, on_blob, v);
  v->txnid = txnid;
  return 0;
}

/*
 * Pending bytes, time behind and the sums, from the sizes known now. A file
 * that turns out behind counts as behind since now, but at the first
 * settle since its bookmark last moved (the best there is). With `rates`
 * (a refresh), also how fast the sizes grew since the last refresh.
 */
static void settle(tdm_view_t *v, int rates) {
  int64_t now = tdm__wall_ns();
  uint64_t sum = 0;

  v->sum_bookmark = v->pending = 0;
  v->n_behind = v->n_failed = 0;
  for (size_t i = 0; i < v->n; i++) {
    tdm_view_file_t *f = &v->files[i];
    f->pending = f->size > f->bookmark ? f->size - f->bookmark : 0;
    if (f->state == TDM_FILE_DONE || f->state == TDM_FILE_DUPLICATE)
      f->pending = 0;
    if (f->pending == 0)
      f->behind_ns = 0;
    else if (f->behind_ns == 0)
      f->behind_ns = !v->settled ? (f->updated_ns != 0 ? f->updated_ns
                                    : f->first_seen_ns != 0 ? f->first_seen_ns
                                                            : now)
                                 : now;
    sum += f->size;
    v->sum_bookmark += f->bookmark;
    v->pending += f->pending;
    v->n_behind += f->pending > 0;
    v->n_failed += f->state == TDM_FILE_FAILED;
  }
  /* In: how fast the sizes grow, between two settles 200 ms apart or more. */
  if (rates && v->settle_ns != 0 && now - v->settle_ns >= 200000000) {
    v->in_bps = sum > v->sum_size ? (double)(sum - v->sum_size) * 1e9 /
                                        (double)(now - v->settle_ns)
                                  : 0;
    v->in_known = 1;
    v->sum_size = sum;
    v->settle_ns = now;
  } else if (v->settle_ns == 0) {
    v->sum_size = sum;
    v->settle_ns = now;
  }
  v->settled = 1;
}

/* Look at `f`'s path now: the same file there gives its size now. */
static void look_at(tdm_view_file_t *f) {
  struct stat st;
  if (f->state == TDM_FILE_GONE)
    return;
  if (lstat(f->path, &st) == 0 && S_ISREG(st.st_mode) &&
      (uint64_t)st.st_dev == f->dev && (uint64_t)st.st_ino == f->ino) {
    f->present = 1;
    f->size = (uint64_t)st.st_size;
  } else {
    f->present = 0;
    f->size = f->seen;
  }
}

void tdm__view_look(tdm_view_t *v, const tdm_view_file_t *const *files,
                    size_t k) {
  for (size_t i = 0; i < k; i++) {
    /* The pointers are into v->files, which the view owns. */
    tdm_view_file_t *f = (tdm_view_file_t *)files[i];
    look_at(f);
  }
  settle(v, 0);
}

/* The next TDM_VIEW_LOOKS files in turn. */
static void look_some(tdm_view_t *v) {
  size_t n = v->n < TDM_VIEW_LOOKS ? v->n : TDM_VIEW_LOOKS;
  for (size_t i = 0; i < n; i++) {
    if (v->cursor >= v->n)
      v->cursor = 0;
    look_at(&v->files[v->cursor++]);
  }
}

int tdm__view_refresh(tdm_view_t *v, int *changed) {
  uint64_t txnid;
  int rc;

  *changed = 0;
  if ((rc = tdm_store_refresh(v->store, &txnid)) != 0)
    return rc;
  find_writer(v);
  v->checkpoint_ns = tdm_store_checkpoint_ns(v->store);
  v->lost_files = tdm_store_lost_files(v->store);
  /* A new commit is walked, unless the last walk was so recent that
     walking again would take over 1/TDM_VIEW_WALK_SHARE of the time: a big
     store under constant commits is walked every few refreshes (the first
     walk after a quiet spell comes at once). */
  if (txnid != v->txnid &&
      (v->walk_at_ns == 0 ||
       mono_ns() - v->walk_at_ns >= v->walk_cost_ns * TDM_VIEW_WALK_SHARE)) {
    int64_t t0 = cpu_ns();
    if ((rc = walk_store(v, txnid, v->walked_ckpt_ns)) != 0)
      return rc;
    v->walked_ckpt_ns = v->checkpoint_ns;
    v->walk_cost_ns = cpu_ns() - t0;
    v->walk_at_ns = mono_ns();
    *changed = 1;
  }
  look_some(v);
  settle(v, 1);
  return 0;
}

int tdm__view_open(const char *dir, const tdm__log_t *log, tdm_view_t **out) {
  tdm_view_t *v;
  char qb[1024];
  struct stat st;
  int changed, rc;

  *out = NULL;
  tdm__quote(dir, qb, sizeof(qb));
  if ((v = calloc(1, sizeof(*v))) == NULL)
    return -ENOMEM;
  if (log != NULL)
    v->log = *log;
  else
    v->log.level = TDM_LOG_INFO;
  if ((v->dir = strdup(dir)) == NULL) {
    free(v);
    return -ENOMEM;
  }
  /* A reader would not create a store, but say plainly what is missing. */
  if (stat(dir, &st) != 0) {
    rc = errno == ENOENT || errno == ENOTDIR ? -ENOENT : -errno;
    if (rc == -ENOENT)
      tdm__error(&v->log, "no tidemark state in %s (no such directory)", qb);
    else
      tdm__error(&v->log, "state directory %s: %s", qb, strerror(-rc));
    goto err;
  }
  if (!S_ISDIR(st.st_mode)) {
    tdm__error(&v->log, "no tidemark state in %s (not a directory)", qb);
    rc = -ENOTDIR;
    goto err;
  }
  {
    char mdb[4200];
    snprintf(mdb, sizeof(mdb), "%s/data.mdb", dir);
    if (stat(mdb, &st) != 0) {
      tdm__error(&v->log, "no tidemark state in %s (no data.mdb)", qb);
      rc = -ENOENT;
      goto err;
    }
  }
  if ((rc = tdm_store_open(dir, TDM_STORE_RDONLY, &v->log, &v->store)) != 0)
    goto err;
  if ((rc = tdm__view_refresh(v, &changed)) != 0) {
    tdm__error(&v->log, "reading the state in %s: %s", qb, tdm_strerror(rc));
    goto err;
  }
  *out = v;
  return 0;
err:
  tdm__view_close(v);
  return rc;
}

void tdm__view_close(tdm_view_t *v) {
  if (v == NULL)
    return;
  tdm_store_close(v->store);
  free_files(v->files, v->n);
  free(v->dir);
  free(v);
}

/* ---- picking files ------------------------------------------------------- */

/* Does `a` come before `b` in order `by`? */
static int before(const tdm_view_file_t *a, const tdm_view_file_t *b,
                  tdm_view_sort_t by) {
  /* Behind longer means an earlier behind_ns; never behind sorts last. */
  int64_t ab = a->behind_ns != 0 ? a->behind_ns : INT64_MAX;
  int64_t bb = b->behind_ns != 0 ? b->behind_ns : INT64_MAX;
  switch (by) {
  case TDM_VIEW_BY_BEHIND:
    if (ab != bb)
      return ab < bb;
    if (a->pending != b->pending)
      return a->pending > b->pending;
    break;
  case TDM_VIEW_BY_RATE:
    if (a->rate != b->rate)
      return a->rate > b->rate;
    if (a->pending != b->pending)
      return a->pending > b->pending;
    break;
  case TDM_VIEW_BY_PATH: {
    int c = strcmp(a->path, b->path);
    if (c != 0)
      return c < 0;
    break;
  }
  default:
    if (a->pending != b->pending)
      return a->pending > b->pending;
    if (ab != bb)
      return ab < bb;
    break;
  }
  return a->id < b->id;
}

size_t tdm__view_pick(const tdm_view_t *v, tdm_view_sort_t by,
                      const char *filter, size_t k,
                      const tdm_view_file_t **out, size_t *matched) {
  size_t n = 0, m = 0;

  /* Keep the k first in out[], sorted: one comparison with the last for
     most files, so a screenful out of 100,000 costs one pass. */
  for (size_t i = 0; i < v->n; i++) {
    const tdm_view_file_t *f = &v->files[i];
    size_t at;
    if (filter != NULL && filter[0] != '\0' && strstr(f->path, filter) == NULL)
      continue;
    m++;
    if (k == 0 || (n == k && !before(f, out[n - 1], by)))
      continue;
    at = n < k ? n : k - 1;
    while (at > 0 && before(f, out[at - 1], by)) {
      out[at] = out[at - 1];
      at--;
    }
    out[at] = f;
    if (n < k)
      n++;
  }
  if (matched != NULL)
    *matched = m;
  return n;
}

/* ---- the metrics --------------------------------------------------------- */

/* A label value as the text format escapes it (\\, \", \n), decoded into
   out[cap]; *end after the closing quote. -1 when malformed. */
static int label_value(const char *p, const char *lim, char *out, size_t cap,
                       const char **end) {
  size_t o = 0;
  for (; p < lim && *p != '"'; p++) {
    char c = *p;
    if (c == '\\' && p + 1 < lim) {
      p++;
      c = *p == 'n' ? '\n' : *p;
    }
    if (o + 1 < cap)
      out[o++] = c;
  }
  if (p >= lim)
    return -1;
  out[o] = '\0';
  *end = p + 1;
  return 0;
}

static tdm_view_proc_t *proc_of(tdm_view_proc_t *procs, size_t *n,
                                const char *spec) {
  for (size_t i = 0; i < *n; i++)
    if (strcmp(procs[i].spec, spec) == 0)
      return &procs[i];
  if (*n == TDM_VIEW_PROCS_MAX)
    return NULL;
  memset(&procs[*n], 0, sizeof(procs[0]));
  snprintf(procs[*n].spec, sizeof(procs[0].spec), "%s", spec);
  return &procs[(*n)++];
}

int tdm__view_metrics_add(tdm_view_metrics_t *m, const char *text, size_t len,
                          uint64_t now_ms) {
  tdm_view_proc_t procs[TDM_VIEW_PROCS_MAX];
  size_t n_procs = 0;
  uint64_t pending = 0, tracked = 0;
  double oldest = 0;
  int64_t dead = -1;
  int ours = 0;
  const char *p = text, *lim = text + len;

  while (p < lim) {
    const char *eol = memchr(p, '\n', (size_t)(lim - p));
    const char *name = p, *q;
    char label[256] = "";
    size_t nlen;
    double val;
    char num[64];

    if (eol == NULL)
      eol = lim;
    if (*p == '#' || strncmp(p, "tidemark_", 9) != 0)
      goto next;
    for (q = p; q < eol && *q != '{' && *q != ' '; q++)
      ;
    nlen = (size_t)(q - name);
    if (q < eol && *q == '{') {
      /* Only the processor label is used. */
      if ((size_t)(eol - q) > 12 && memcmp(q, "{processor=\"", 12) == 0) {
        if (label_value(q + 12, eol, label, sizeof(label), &q) != 0)
          goto next;
      }
      while (q < eol && *q != '}')
        q++;
      if (q < eol)
        q++;
    }
    while (q < eol && *q == ' ')
      q++;
    {
      size_t l = (size_t)(eol - q) < sizeof(num) - 1 ? (size_t)(eol - q)
                                                      : sizeof(num) - 1;
      char *e;
      memcpy(num, q, l);
      num[l] = '\0';
      val = strtod(num, &e);
      if (e == num)
        goto next;
    }
#define IS(s) (nlen == sizeof("tidemark_" s) - 1 && \
               memcmp(name, "tidemark_" s, nlen) == 0)
    if (IS("files_tracked")) {
      tracked = (uint64_t)val;
      ours = 1;
    } else if (IS("bytes_pending")) {
      pending = (uint64_t)val;
    } else if (IS("oldest_pending_seconds")) {
      oldest = val;
    } else if (IS("dead_letter_records_total")) {
      dead = (int64_t)val;
    } else if (label[0] != '\0') {
      tdm_view_proc_t *pr = NULL;
      if (IS("bytes_delivered_total") || IS("records_delivered_total") ||
          IS("processor_retries_total") || IS("processor_failures_total"))
        pr = proc_of(procs, &n_procs, label);
      if (pr != NULL) {
        if (IS("bytes_delivered_total"))
          pr->bytes = (uint64_t)val;
        else if (IS("records_delivered_total"))
          pr->records = (uint64_t)val;
        else if (IS("processor_retries_total"))
          pr->retries = (uint64_t)val;
        else
          pr->failures = (uint64_t)val;
      }
    }
#undef IS
  next:
    p = eol + 1;
  }
  if (!ours)
    return -EINVAL;

  {
    uint64_t in = 0, out = UINT64_MAX, outr = UINT64_MAX;
    int rates = m->have && now_ms >= m->at_ms + 200;
    double span = rates ? (double)(now_ms - m->at_ms) / 1000.0 : 0;

    for (size_t i = 0; i < n_procs; i++) {
      tdm_view_proc_t *pr = &procs[i];
      const tdm_view_proc_t *old = NULL;
      for (size_t j = 0; j < m->n_procs; j++)
        if (strcmp(m->procs[j].spec, pr->spec) == 0)
          old = &m->procs[j];
      out = pr->bytes < out ? pr->bytes : out;
      outr = pr->records < outr ? pr->records : outr;
      if (old != NULL) {
        pr->retry_ms = old->retry_ms;
        pr->fail_ms = old->fail_ms;
        pr->bps = old->bps;
        pr->rps = old->rps;
      }
      if (!rates)
        continue;
      if (old != NULL) {
        pr->bps = pr->bytes >= old->bytes
                      ? (double)(pr->bytes - old->bytes) / span : 0;
        pr->rps = pr->records >= old->records
                      ? (double)(pr->records - old->records) / span : 0;
        if (pr->retries > old->retries)
          pr->retry_ms = now_ms;
        if (pr->failures > old->failures)
          pr->fail_ms = now_ms;
      }
    }
    if (n_procs == 0)
      out = outr = 0;
    in = out + pending;
    if (rates) {
      m->in_bps = in >= m->prev_in ? (double)(in - m->prev_in) / span : 0;
      m->out_bps = out >= m->prev_out ? (double)(out - m->prev_out) / span : 0;
      m->out_rps = outr >= m->prev_outr ? (double)(outr - m->prev_outr) / span
                                        : 0;
      m->have_rates = 1;
      m->prev_ms = m->at_ms;
    }
    if (!rates && m->have)
      return 0; /* too soon after the last: keep that one as the base */
    memcpy(m->procs, procs, n_procs * sizeof(procs[0]));
    m->n_procs = n_procs;
    m->pending = pending;
    m->oldest_s = oldest;
    m->tracked = tracked;
    m->dead_letters = dead;
    m->prev_in = in;
    m->prev_out = out;
    m->prev_outr = outr;
    m->at_ms = now_ms;
    m->have = 1;
  }
  return 0;
}

const char *tdm__view_proc_state(const tdm_view_metrics_t *m,
                                 const tdm_view_proc_t *p) {
  if (!m->have_rates)
    return "?";
  if (p->fail_ms != 0 && m->at_ms - p->fail_ms < STATE_HOLD_MS)
    return "failing";
  if (p->retry_ms != 0 && m->at_ms - p->retry_ms < STATE_HOLD_MS)
    return "retrying";
  return "ok";
}

/* ---- text ---------------------------------------------------------------- */

const char *tdm__view_escape(const char *s, char *buf, size_t cap) {
  char tmp[4096];
  size_t o = 0;

  if (cap == 0)
    return buf;
  tdm__quote(s, tmp, sizeof(tmp));
  for (const char *p = tmp; *p != '\0' && o + 7 < cap; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == 0xc2 && (unsigned char)p[1] >= 0x80 &&
        (unsigned char)p[1] <= 0x9f) {
      o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", (unsigned char)p[1]);
      p++;
    } else {
      buf[o++] = (char)c;
    }
  }
  buf[o] = '\0';
  return buf;
}

void tdm__view_cut(char *s, size_t cols) {
  size_t n = 0;
  for (char *p = s; *p != '\0'; p++) {
    if (((unsigned char)*p & 0xc0) != 0x80 && n++ == cols) {
      *p = '\0';
      return;
    }
  }
}

const char *tdm__view_bytes(double n, char *buf, size_t cap) {
  static const char units[] = "KMGTP";
  int u = -1;
  if (n < 1000) {
    snprintf(buf, cap, "%.0f", n < 0 ? 0 : n);
    return buf;
  }
  while (n >= 1000 && u < 4) {
    n /= 1024;
    u++;
  }
  snprintf(buf, cap, n < 10 ? "%.1f%c" : "%.0f%c", n, units[u]);
  return buf;
}

const char *tdm__view_age(int64_t ns, char *buf, size_t cap) {
  int64_t s = ns / 1000000000;
  if (ns < 0)
    s = 0;
  if (s < 60)
    snprintf(buf, cap, "%" PRId64 "s", s);
  else if (s < 3600)
    snprintf(buf, cap, "%" PRId64 "m%02" PRId64, s / 60, s % 60);
  else if (s < 86400)
    snprintf(buf, cap, "%" PRId64 "h%02" PRId64, s / 3600, s / 60 % 60);
  else
    snprintf(buf, cap, "%" PRId64 "d", s / 86400);
  return buf;
}

/* "20.2k": a count in 5 columns or fewer (powers of 1000). */
static const char *count(double n, char *buf, size_t cap) {
  static const char units[] = "kMGTP";
  int u = -1;
  if (n < 1000) {
    snprintf(buf, cap, "%.0f", n < 0 ? 0 : n);
    return buf;
  }
  while (n >= 1000 && u < 4) {
    n /= 1000;
    u++;
  }
  snprintf(buf, cap, n < 10 ? "%.1f%c" : "%.0f%c", n, units[u]);
  return buf;
}

/* "12.3M/s" or "-" */
static const char *per_s(double v, int known, char *buf, size_t cap) {
  char b[16];
  if (!known)
    snprintf(buf, cap, "-");
  else
    snprintf(buf, cap, "%s/s", tdm__view_bytes(v, b, sizeof(b)));
  return buf;
}

size_t tdm__view_header(const tdm_view_t *v, const tdm_view_metrics_t *m,
                        const char *source, char (*lines)[512], size_t max) {
  int64_t now = tdm__wall_ns();
  char a[32], b[32], c[32], d[80], e[16], q[1024];
  size_t n = 0;
  int live = m != NULL && m->have_rates;
  /* Store rates go stale when no commit came for a while (idle). */
  int store_rates = v != NULL && v->rate_span_ns > 0 &&
                    now - v->checkpoint_ns <
                        (v->rate_span_ns * 2 > 3000000000 ? v->rate_span_ns * 2
                                                          : 3000000000);

  if (max == 0)
    return 0;
  /* Line 1: who and how far. */
  {
    const char *inst = v != NULL && v->store != NULL &&
                               tdm_store_instance(v->store)[0] != '\0'
                           ? tdm_store_instance(v->store)
                           : "-";
    int o = snprintf(lines[n], 512, "tidemark  instance %s", inst);
    if (v != NULL && v->writer_pid > 0 && v->writer_start_ns > 0)
      o += snprintf(lines[n] + o, 512 - (size_t)o, "  up %s (pid %" PRId64 ")",
                    tdm__view_age(now - v->writer_start_ns, a, sizeof(a)),
                    v->writer_pid);
    else if (v != NULL)
      o += snprintf(lines[n] + o, 512 - (size_t)o, "  not running");
    if (v != NULL)
      o += snprintf(lines[n] + o, 512 - (size_t)o, "  checkpoint %s",
                    v->checkpoint_ns != 0
                        ? tdm__view_age(now - v->checkpoint_ns, b, sizeof(b))
                        : "never");
    if (v != NULL && v->checkpoint_ns != 0 && o < 500)
      o += snprintf(lines[n] + o, 512 - (size_t)o, " ago");
    if (v != NULL)
      snprintf(lines[n] + o, 512 - (size_t)o,
               "  files %zu, %zu behind, %s pending", v->n, v->n_behind,
               tdm__view_bytes((double)v->pending, c, sizeof(c)));
    else if (m != NULL)
      snprintf(lines[n] + o, 512 - (size_t)o, "  files %" PRIu64
               ", %s pending", m->tracked,
               tdm__view_bytes((double)m->pending, c, sizeof(c)));
    n++;
  }
  /* Line 2: rates, dead letters, lost files, where the numbers come from. */
  if (n < max) {
    uint64_t dead = v != NULL ? v->dead_letters : 0;
    char rin[32], rout[32];
    if (m != NULL && m->have && m->dead_letters >= 0)
      dead = (uint64_t)m->dead_letters;
    /* The store's rates: known after two commits; 0 once none came for a
       while. */
    int known = v != NULL && v->rate_span_ns > 0;
    char ck[32];
    per_s(known && store_rates ? v->out_bps : 0, known, ck, sizeof(ck));
    if (live) {
      /* The processors' rates, and what the last commits made durable. */
      per_s(m->in_bps, 1, rin, sizeof(rin));
      per_s(m->out_bps, 1, rout, sizeof(rout));
      snprintf(d, sizeof(d), ", %s rec/s  checkpointed %s",
               count(m->out_rps, e, sizeof(e)), ck);
    } else {
      per_s(v->in_bps, v->in_known, rin, sizeof(rin));
      snprintf(rout, sizeof(rout), "%s", ck);
      snprintf(d, sizeof(d), " (checkpointed)");
    }
    snprintf(lines[n], 512,
             "in %s  out %s%s  dead letters %" PRIu64
             "  lost files %" PRIu64 "  [%s]",
             rin, rout, d, dead, v != NULL ? v->lost_files : 0,
             source != NULL ? source : "store");
    n++;
  }
  /* One line per processor. */
  if (m != NULL && m->have) {
    for (size_t i = 0; i < m->n_procs && n < max; i++) {
      const tdm_view_proc_t *p = &m->procs[i];
      char r[16];
      snprintf(lines[n], 512, "  %-8s %8s %5s rec/s  %s retries  %s "
               "failures  %.300s", tdm__view_proc_state(m, p),
               per_s(p->bps, m->have_rates, a, sizeof(a)),
               count(p->rps, r, sizeof(r)),
               count((double)p->retries, b, sizeof(b)),
               count((double)p->failures, e, sizeof(e)),
               tdm__view_escape(p->spec, q, sizeof(q)));
      n++;
    }
  } else if (v != NULL && v->n_procs > 0) {
    /* Only the processors that keep a restore point are in the store. */
    int o = snprintf(lines[n], 512, "processors (state with --metrics):");
    for (size_t i = 0; i < v->n_procs && o > 0 && o < 400; i++)
      o += snprintf(lines[n] + o, 512 - (size_t)o, " %.100s",
                    tdm__view_escape(v->procs[i], q, sizeof(q)));
    n++;
  }
  return n;
}

/* The columns of a row, by width. */
#define WIDE 72

const char *tdm__view_titles(int width, char *buf, size_t cap) {
  if (width >= WIDE)
    snprintf(buf, cap, "%7s %6s %8s %-9s %s", "PENDING", "BEHIND", "READ/S",
             "STATE", "PATH");
  else
    snprintf(buf, cap, "%7s %-7s %s", "PENDING", "STATE", "PATH");
  if (width > 0)
    tdm__view_cut(buf, (size_t)width);
  return buf;
}

const char *tdm__view_row(const tdm_view_t *v, const tdm_view_file_t *f,
                          int width, char *buf, size_t cap) {
  char p[32], b[32], r[32], path[2048], err[1024];
  int64_t now = tdm__wall_ns();
  int o;

  (void)v;
  tdm__view_bytes((double)f->pending, p, sizeof(p));
  if (f->behind_ns != 0)
    tdm__view_age(now - f->behind_ns, b, sizeof(b));
  else
    snprintf(b, sizeof(b), "-");
  if (f->rate > 0)
    tdm__view_bytes(f->rate, r, sizeof(r));
  else
    snprintf(r, sizeof(r), "0");
  tdm__view_escape(f->path, path, sizeof(path));
  if (width >= WIDE)
    o = snprintf(buf, cap, "%7s %6s %8s %-9s %s", p, b, r,
                 state_name(f->state), path);
  else
    o = snprintf(buf, cap, "%7s %-7.7s %s", p, state_name(f->state), path);
  if (f->error != NULL && o > 0 && (size_t)o < cap)
    snprintf(buf + o, cap - (size_t)o, "  (error: %s)",
             tdm__view_escape(f->error, err, sizeof(err)));
  if (width > 0)
    tdm__view_cut(buf, (size_t)width);
  return buf;
}

/* ---- the page ------------------------------------------------------------ */

static void html_text(FILE *out, const char *s) {
  for (; *s != '\0'; s++) {
    switch (*s) {
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '&': fputs("&amp;", out); break;
    case '"': fputs("&quot;", out); break;
    default: putc(*s, out);
    }
  }
}

void tdm__view_html(FILE *out, const tdm_view_t *v, const tdm_view_metrics_t *m,
                    const char *source, size_t n_files, int refresh_s) {
  char lines[3 + TDM_VIEW_PROCS_MAX][512];
  const tdm_view_file_t **pick = NULL;
  size_t n, k = 0;

  fprintf(out,
          "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"refresh\" content=\"%d\">\n"
          "<title>tidemark</title>\n<style>body{font-family:monospace;"
          "margin:1em}table{border-collapse:collapse}td,th{padding:0 .6em;"
          "text-align:right;white-space:nowrap}td.p,th.p{text-align:left}"
          "pre{margin:0 0 1em 0}</style>\n</head><body>\n<pre id=\"header\">",
          refresh_s);
  n = tdm__view_header(v, m, source, lines, sizeof(lines) / sizeof(lines[0]));
  for (size_t i = 0; i < n; i++) {
    html_text(out, lines[i]);
    putc('\n', out);
  }
  fputs("</pre>\n", out);
  if (v != NULL && n_files > 0 && (pick = calloc(n_files, sizeof(*pick))) != NULL)
    k = tdm__view_pick(v, TDM_VIEW_BY_PENDING, NULL, n_files, pick, NULL);
  fprintf(out, "<table id=\"files\">\n<tr><th>pending</th><th>bookmark</th>"
               "<th>size</th><th>behind</th><th class=\"p\">"
               "state</th><th class=\"p\">path</th></tr>\n");
  for (size_t i = 0; i < k; i++) {
    const tdm_view_file_t *f = pick[i];
    char b[32], q[2048];
    int64_t now = tdm__wall_ns();
    fprintf(out, "<tr><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
                 "</td><td>%s</td><td class=\"p\">%s</td>"
                 "<td class=\"p\">",
            f->pending, f->bookmark, f->size,
            f->behind_ns != 0 ? tdm__view_age(now - f->behind_ns, b, sizeof(b))
                              : "-",
            state_name(f->state));
    html_text(out, tdm__view_escape(f->path, q, sizeof(q)));
    if (f->error != NULL) {
      fputs(" (error: ", out);
      html_text(out, tdm__view_escape(f->error, q, sizeof(q)));
      putc(')', out);
    }
    fputs("</td></tr>\n", out);
  }
  fprintf(out, "</table>\n<p>%zu of %zu files, most behind first; "
               "<a href=\"/status.json\">status.json</a>, "
               "<a href=\"/metrics\">metrics</a></p>\n</body></html>\n",
          k, v != NULL ? v->n : 0);
  free(pick);
}
