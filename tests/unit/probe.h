/*
 * probe.h: a test processor with every method, registered into a tdm_t's
 * registry as "probe" (a descriptor of the same kind as a built-in), and
 * helpers to read back what the store holds. For the engine module tests
 * (test-checkpoint.c, test-chain.c, test-reader.c, test-whole.c).
 *
 * Everything is static: each test program includes it once.
 */
#ifndef TDM_TEST_PROBE_H
#define TDM_TEST_PROBE_H

#include "test.h"
#include "engine/engine.h"
#include "processors/registry.h"
#include "state/store.h"
#include "tidemark.h"

#include <stdio.h>
#include <sys/stat.h>

/* What the probe received, and how it answers. One global: the descriptor
   has no per-instance argument beyond its spec. */
typedef struct probe {
  char data[1 << 16];      /* every accepted chunk's bytes, in order */
  size_t len;
  int chunks;              /* accepted */
  int calls;               /* process() calls, retries included */
  uint64_t offsets[256];   /* offset of each accepted chunk */
  uint32_t flags[256];     /* flags of each accepted chunk */
  size_t lens[256];        /* length of each accepted chunk */
  int retry;               /* answer RETRY this many times, then OK */
  int fail;                /* process(): answer FAIL */
  int commit_fail;         /* commit(): answer FAIL while it holds bytes
                              not committed yet (an output that cannot be
                              flushed) */
  size_t uncommitted;      /* bytes accepted since open or the last commit */
  int commits;             /* successful commit() calls */
  char last_blob[64];      /* the blob the last successful commit returned */
  int opens;               /* open() calls */
  char restore[64];        /* the blob the last open() was given */
  int stop_after_calls;    /* tdm_stop() after this many process() calls */
  tdm_t *t;
  /* whole mode */
  int files;               /* file() calls */
  char file_paths[16][512];
  int file_pending;        /* file(): answer PENDING, outcome from poll() */
  int outcome_fail;        /* that outcome is FAIL, "exit 3" */
  uint64_t pending[16];    /* ids awaiting their outcome */
  int n_pending;
} probe_t;

static probe_t probe;

static inline int probe_open(void **state, const tdm_open_args_t *a) {
  *state = &probe;
  probe.opens++;
  probe.uncommitted = 0; /* a reopen drops what was not committed */
  snprintf(probe.restore, sizeof(probe.restore), "%.*s", (int)a->restore_len,
           a->restore ? (const char *)a->restore : "");
  return TDM_PROC_OK;
}

static inline int probe_process(void *state, const tdm_chunk_t *c, char *msg) {
  probe_t *p = state;
  p->calls++;
  if (getenv("PROBE_DEBUG")) fprintf(stderr, "chunk %s @%llu len %zu\n", c->path, (unsigned long long)c->offset, c->len);
  if (p->stop_after_calls > 0 && p->calls >= p->stop_after_calls)
    tdm_stop(p->t);
  if (p->fail) {
    snprintf(msg, TDM_MSG_MAX, "told to fail");
    return TDM_PROC_FAIL;
  }
  if (p->retry > 0) {
    p->retry--;
    snprintf(msg, TDM_MSG_MAX, "not now");
    return TDM_PROC_RETRY;
  }
  ASSERT_LE(p->len + c->len, sizeof(p->data));
  ASSERT_LT(p->chunks, 256);
  memcpy(p->data + p->len, c->data, c->len);
  p->len += c->len;
  p->uncommitted += c->len;
  p->offsets[p->chunks] = c->offset;
  p->flags[p->chunks] = c->flags;
  p->lens[p->chunks] = c->len;
  p->chunks++;
  return TDM_PROC_OK;
}

/* The blob: "commit-N", N counting every successful commit of the
   program (never reset, so blobs of different runs differ). */
static int probe_seq;

static inline int probe_commit(void *state, void *restore, size_t *len, char *msg) {
  probe_t *p = state;
  if (p->commit_fail && p->uncommitted > 0) {
    snprintf(msg, TDM_MSG_MAX, "disk on fire");
    return TDM_PROC_FAIL;
  }
  p->commits++;
  p->uncommitted = 0;
  *len = (size_t)snprintf(restore, *len, "commit-%d", ++probe_seq);
  snprintf(p->last_blob, sizeof(p->last_blob), "commit-%d", probe_seq);
  return TDM_PROC_OK;
}

static inline void probe_close(void *state) { (void)state; }

static inline int probe_file(void *state, const tdm_file_info_t *info, char *msg) {
  probe_t *p = state;
  (void)msg;
  ASSERT_LT(p->files, 16);
  snprintf(p->file_paths[p->files++], sizeof(p->file_paths[0]), "%s",
           info->path);
  if (p->file_pending) {
    p->pending[p->n_pending++] = info->file_id;
    return TDM_PROC_PENDING;
  }
  return TDM_PROC_OK;
}

static inline int probe_poll(void *state, tdm_outcome_t *out, size_t max, int wait_ms) {
  probe_t *p = state;
  int n = 0;
  (void)wait_ms;
  while (p->n_pending > 0 && (size_t)n < max) {
    memset(&out[n], 0, sizeof(out[n]));
    out[n].file_id = p->pending[--p->n_pending];
    out[n].result = p->outcome_fail ? TDM_PROC_FAIL : TDM_PROC_OK;
    out[n].exit_status = p->outcome_fail ? 3 : 0;
    out[n].attempts = 2;
    snprintf(out[n].msg, sizeof(out[n].msg), "exit 3");
    n++;
  }
  return n;
}

static const tdm_processor_t probe_desc = {
    .abi_version = TDM_PROCESSOR_ABI_VERSION,
    .size = sizeof(tdm_processor_t),
    .name = "probe",
    .summary = "the unit tests' processor",
    .open = probe_open,
    .process = probe_process,
    .commit = probe_commit,
    .close = probe_close,
    .file = probe_file,
    .poll = probe_poll,
};

static inline void quiet(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  (void)level;
  (void)msg;
}

/* Options for a store in the test dir, quiet. */
static inline tdm_options_t probe_options(void) {
  static char state[4096];
  tdm_options_t o;
  tdm_options_init(&o);
  snprintf(state, sizeof(state), "%s", tdm_test_path("state"));
  o.state_dir = state; /* tdm_test_path's buffers rotate */
  o.log_cb = quiet;
  return o;
}

/* Open a tdm_t on the test dir's "src" with the probe as its processor. */
static inline tdm_t *probe_open_tdm(const tdm_options_t *o) {
  tdm_t *t;
  ASSERT_EQ(tdm_open(o, &t), 0);
  ASSERT_EQ(tdm_registry_add(t->registry, &probe_desc, "test"), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_processor(t, "probe"), 0);
  probe.t = t;
  return t;
}

/* One pass with default options (plus `max_record` if non-zero). */
static inline int probe_run(size_t max_record, tdm_stats_t *stats) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  int rc;
  if (max_record)
    o.max_record = max_record;
  t = probe_open_tdm(&o);
  rc = tdm_run_once(t);
  if (stats) {
    tdm_stats_init(stats);
    tdm_get_stats(t, stats);
  }
  tdm_close(t);
  return rc;
}

/* Forget what the probe received (keeping how it answers). */
static inline void probe_reset_seen(void) {
  probe.len = 0;
  probe.chunks = 0;
  probe.calls = 0;
  probe.files = 0;
}

/* The path of src/NAME (creating src/). */
static inline const char *src(const char *name) {
  static char buf[8][4096];
  static int k;
  char *b = buf[k++ % 8];
  mkdir(tdm_test_path("src"), 0755);
  snprintf(b, sizeof(buf[0]), "%s/%s", tdm_test_path("src"), name);
  return b;
}

#define PROBE_EQ(str)                                                      \
  do {                                                                     \
    ASSERT_EQ(probe.len, strlen(str));                                     \
    ASSERT_EQ(memcmp(probe.data, (str), probe.len), 0);                    \
  } while (0)

/* ---- the store, read back ---------------------------------------------- */

typedef struct stored {
  tdm_file_rec_t rec[32];
  char path[32][512];
  char error[32][512];
  int n;
} stored_t;

static inline int stored_cb(void *arg, const tdm_file_rec_t *r) {
  stored_t *s = arg;
  ASSERT_LT(s->n, 32);
  s->rec[s->n] = *r;
  snprintf(s->path[s->n], sizeof(s->path[0]), "%s", r->path);
  snprintf(s->error[s->n], sizeof(s->error[0]), "%s", r->error ? r->error : "");
  s->rec[s->n].path = s->path[s->n];
  s->rec[s->n].error = r->error ? s->error[s->n] : NULL;
  s->n++;
  return 0;
}

/* Every file record of the test's store (opened read-only, closed again),
   and the probe's blob into `blob` (NUL-terminated; "" if none). */
static inline void stored_load(stored_t *s, char *blob, size_t cap) {
  tdm__log_t log = {TDM_LOG_ERROR, quiet, NULL};
  tdm_store_t *st;
  size_t len = 0;
  memset(s, 0, sizeof(*s));
  ASSERT_EQ(tdm_store_open(tdm_test_path("state"), TDM_STORE_RDONLY, &log, &st),
            0);
  ASSERT_EQ(tdm_store_load_files(st, stored_cb, s), 0);
  if (blob != NULL) {
    ASSERT_EQ(tdm_store_get_blob(st, "probe", blob, cap - 1, &len), 0);
    blob[len] = '\0';
  }
  tdm_store_close(st);
}

/* The stored record of src/NAME, or NULL. */
static inline const tdm_file_rec_t *stored_find(const stored_t *s, const char *name) {
  const char *p = src(name);
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->rec[i].path, p) == 0)
      return &s->rec[i];
  return NULL;
}

#endif /* TDM_TEST_PROBE_H */
