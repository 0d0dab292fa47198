/*
 * status.c: what `tidemark status` shows and what `tidemark reset` does,
 * straight over the state store (state/store.h), without the engine: the
 * library's tdm_status_json and tdm_reset, and the command's (cli/).
 *
 * status opens the store read-only, so it works while a `tidemark run` holds
 * the writer lock in another process. It compares each record with the file
 * at its path now: the same (dev, inode) there gives the current size; else
 * the file is reported gone with the size it had at the last look.
 *
 * JSON (`status --json`) is one object on one line:
 *   {"state_dir":"/abs","schema":3,"instance":"16 hex"|null,
 *    "processors":[{"spec":"nats:...","note":"text"|null}, ...],
 *    "last_checkpoint":"...Z"|null, "lost_files":N,
 *    "dead_letters":N (records set aside by --dead-letter, ever),
 *    "files":[{"id":1,"path":"/abs/p","present":true,"dev":2049,
 *              "inode":1234,"size":100,"bookmark":100,"pending":0,
 *              "state":"active","truncations":0,"pieces":0,
 *              "first_seen":"...Z"|null,"updated":"...Z"|null,
 *              "content_hash":"32 hex"|null,"duplicate_of":ID|null,
 *              "attempts":0,"exit_status":0,"error":"msg"|null,
 *              "path_escaped":false}, ...]}
 * A "gone" file with a "duplicate_of" is what file ID was before a
 * truncation (a copy of it made then continues from its bookmark).
 *
 * JSON text is UTF-8. A path (or message) that is not valid UTF-8 is given
 * the way the table and the log lines spell it (tdm__quote: \xNN for each
 * byte that is not part of valid UTF-8 and for control bytes, \n, \t, \\
 * for a backslash), and the file's "path_escaped" is true. `reset` accepts
 * that form: a PATH that matches nothing tracked is tried again unescaped.
 */
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state/store.h"
#include "base/log.h"
#include "engine/deadletter.h"

static const char *const state_names[] = {
  [TDM_FILE_ACTIVE] = "active",       [TDM_FILE_DONE] = "done",
  [TDM_FILE_DUPLICATE] = "duplicate", [TDM_FILE_FAILED] = "failed",
  [TDM_FILE_PENDING] = "pending",
  [TDM_FILE_GONE] = "gone",
};

static const char *state_name(uint32_t state) {
  if (state < sizeof(state_names) / sizeof(state_names[0]))
    return state_names[state];
  return "unknown";
}

/* One record, copied out of the store's read transaction. */
typedef struct row {
  tdm_file_rec_t rec; /* rec.path / rec.error point to path / error */
  char *path;
  char *error;        /* NULL if none */
  int present;        /* the same file is at `path` now */
  uint64_t size;      /* its size now, or at the last look if gone */
  uint64_t pending;   /* size - bookmark, never negative */
  int del;            /* reset: to forget */
} row;

typedef struct rows {
  row *v;
  size_t n;
  size_t cap;
} rows;

static void rows_free(rows *r) {
  for (size_t i = 0; i < r->n; i++) {
    free(r->v[i].path);
    free(r->v[i].error);
  }
  free(r->v);
  memset(r, 0, sizeof(*r));
}

/* tdm_store_load_files() callback: copy `rec` into the rows. -ENOMEM. */
static int collect(void *arg, const tdm_file_rec_t *rec) {
  rows *r = arg;
  row *w;

  if (r->n == r->cap) {
    size_t cap = r->cap != 0 ? r->cap * 2 : 64;
    row *v = realloc(r->v, cap * sizeof(*v));
    if (v == NULL)
      return -ENOMEM;
    r->v = v;
    r->cap = cap;
  }
  w = &r->v[r->n];
  memset(w, 0, sizeof(*w));
  w->rec = *rec;
  w->path = strdup(rec->path != NULL ? rec->path : "");
  w->error = rec->error != NULL ? strdup(rec->error) : NULL;
  if (w->path == NULL || (rec->error != NULL && w->error == NULL)) {
    free(w->path);
    free(w->error);
    return -ENOMEM;
  }
  w->rec.path = w->path;
  w->rec.error = w->error;
  r->n++;
  return 0;
}

/* Fill present/size/pending of row `w` from what is at its path now. */
static void look(row *w) {
  struct stat st;
  if (lstat(w->rec.path, &st) == 0 && (uint64_t)st.st_dev == w->rec.dev &&
      (uint64_t)st.st_ino == w->rec.ino) {
    w->present = 1;
    w->size = (uint64_t)st.st_size;
  } else {
    w->present = 0;
    w->size = w->rec.size;
  }
  w->pending = w->size > w->rec.offset ? w->size - w->rec.offset : 0;
}

/*
 * Check that `dir` holds a state store before opening it (opening a writer
 * would create one; a reader would fail with a less helpful message).
 * Returns 0, or after printing why not -ENOENT (no state there), -ENOTDIR,
 * -ENOMEM or the -errno of stat().
 */
static int check_state(const char *dir, const tdm__log_t *log) {
  char qb[1024];
  char *mdb;
  struct stat st;
  int rc = 0;

  tdm__quote(dir, qb, sizeof(qb));
  if (stat(dir, &st) != 0) {
    rc = errno == ENOTDIR ? -ENOENT : -errno;
    if (errno == ENOENT || errno == ENOTDIR)
      tdm__error(log, "no tidemark state in %s (no such "
                      "directory)", qb);
    else
      tdm__error(log, "state directory %s: %s", qb,
              strerror(errno));
    return rc;
  }
  if (!S_ISDIR(st.st_mode)) {
    tdm__error(log, "no tidemark state in %s (not a "
                    "directory)", qb);
    return -ENOTDIR;
  }
  if (asprintf(&mdb, "%s/data.mdb", dir) < 0) {
    tdm__error(log, "out of memory");
    return -ENOMEM;
  }
  if (stat(mdb, &st) != 0) {
    rc = -errno;
    if (errno == ENOENT)
      tdm__error(log, "no tidemark state in %s", qb);
    else
      tdm__error(log, "state directory %s: %s", qb,
              strerror(errno));
  }
  free(mdb);
  return rc;
}

/*
 * Open the store of `dir` (`flags` as tdm_store_open). Returns 0, or a
 * negative code after a message (the store's own, or ours).
 */
static int open_store(const char *dir, unsigned flags, const tdm__log_t *log,
                      tdm_store_t **s) {
  char qb[1024];
  int rc;

  if ((rc = check_state(dir, log)) != 0)
    return rc;
  rc = tdm_store_open(dir, flags, log, s);
  /* The store has logged its message, naming the directory. */
  if (rc == -ENOENT)
    tdm__error(log, "no tidemark state in %s", tdm__quote(dir, qb, sizeof(qb)));
  return rc;
}

/* Walk every file record of `s` into `cb`; a failure of the walk itself
   (not of `cb`) is said naming `dir`. */
static int walk_files(const char *dir, const tdm__log_t *log, tdm_store_t *s,
                      int (*cb)(void *arg, const tdm_file_rec_t *rec),
                      void *arg) {
  char qb[1024];
  int rc = tdm_store_load_files(s, cb, arg);
  if (rc != 0 && rc != -ENOMEM && rc != -EPIPE)
    tdm__error(log, "reading the state in %s: %s",
               tdm__quote(dir, qb, sizeof(qb)), tdm_strerror(rc));
  return rc;
}

/* Open the store of `dir` and load every record into `r` (reset). */
static int open_and_load(const char *dir, unsigned flags,
                         const tdm__log_t *log, tdm_store_t **s, rows *r) {
  int rc = open_store(dir, flags, log, s);
  if (rc == 0)
    rc = walk_files(dir, log, *s, collect, r);
  if (rc == -ENOMEM)
    tdm__error(log, "reading the state: out of memory");
  return rc;
}

/* ---- text and JSON ------------------------------------------------------- */

int tdm__status_json_string(FILE *out, const char *s) {
  static const char hex[] = "0123456789abcdef";
  char *quoted = NULL;
  int escaped = 0;

  if (s == NULL) {
    fputs("null", out);
    return 0;
  }
  /* JSON is UTF-8: bytes that are not go out as the log lines and the table
     spell them (tdm__quote), which tdm__unquote (reset) reads back. */
  if (!tdm__utf8_valid(s)) {
    size_t cap = tdm__quote_size(s);
    if ((quoted = malloc(cap)) != NULL) {
      s = tdm__quote(s, quoted, cap);
      escaped = 1;
    }
  }
  putc('"', out);
  for (; *s != '\0'; s++) {
    unsigned char ch = (unsigned char)*s;
    switch (ch) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    case '\r': fputs("\\r", out); break;
    case '\b': fputs("\\b", out); break;
    case '\f': fputs("\\f", out); break;
    default:
      if (ch < 0x20 || ch == 0x7f) {
        fputs("\\u00", out);
        putc(hex[ch >> 4], out);
        putc(hex[ch & 15], out);
      } else if (ch >= 0x80) {
        size_t n = tdm__utf8_len(s);
        if (n == 0) {
          fputs("\\ufffd", out); /* out of memory above: lossy, still JSON */
        } else {
          fwrite(s, 1, n, out);
          s += n - 1;
        }
      } else {
        putc(ch, out);
      }
    }
  }
  putc('"', out);
  free(quoted);
  return escaped;
}

const char *tdm__status_iso8601(int64_t ns, char *buf, size_t cap) {
  time_t secs = (time_t)(ns / 1000000000);
  struct tm tm;
  if (ns < 0 && ns % 1000000000 != 0)
    secs--; /* floor */
  if (cap == 0)
    return buf;
  if (gmtime_r(&secs, &tm) == NULL ||
      strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, cap, "?");
  return buf;
}

/* A timestamp as JSON: "...Z", or null for 0 (never). */
static void json_time(FILE *out, int64_t ns) {
  char buf[64];
  if (ns == 0)
    fputs("null", out);
  else
    fprintf(out, "\"%s\"", tdm__status_iso8601(ns, buf, sizeof(buf)));
}

static int hash_is_zero(const uint8_t h[16]) {
  for (int i = 0; i < 16; i++)
    if (h[i] != 0)
      return 0;
  return 1;
}

/* A processor's restore blob that is printable text is a note for status
   (the nats processor's stream and duplicate window); others are not. */
/* Records set aside in dead-letter files, as the store recorded them. */
static int sum_dead(void *arg, const char *key, size_t key_len,
                    const void *blob, size_t len) {
  uint64_t n;
  if (tdm__deadletter_blob_count(key, key_len, blob, len, &n))
    *(uint64_t *)arg += n;
  return 0;
}

static uint64_t dead_letters(tdm_store_t *s) {
  uint64_t n = 0;
  tdm_store_load_blobs(s, sum_dead, &n);
  return n;
}

typedef struct note_ctx {
  FILE *out;
  int json;
  int n;
} note_ctx;

static int print_note(void *arg, const char *key, size_t key_len,
                      const void *blob, size_t len) {
  note_ctx *c = arg;
  char k[1024], note[TDM_RESTORE_MAX + 1], q[2048];
  const unsigned char *b = blob;
  int text = len > 0 && len <= TDM_RESTORE_MAX;
  uint64_t dead;

  if (tdm__deadletter_blob_count(key, key_len, blob, len, &dead))
    return 0; /* a dead-letter file's, not a processor's */
  for (size_t i = 0; text && i < len; i++)
    text = b[i] >= 0x20 && b[i] < 0x7f;
  if (key_len >= sizeof(k))
    key_len = sizeof(k) - 1;
  memcpy(k, key, key_len);
  k[key_len] = '\0';
  if (text) {
    memcpy(note, blob, len);
    note[len] = '\0';
  }
  if (c->json) {
    fputs(c->n++ > 0 ? ",{\"spec\":" : "{\"spec\":", c->out);
    tdm__status_json_string(c->out, k);
    fputs(",\"note\":", c->out);
    tdm__status_json_string(c->out, text ? note : NULL);
    putc('}', c->out);
  } else if (text) {
    fprintf(c->out, "processor %s: %s\n", tdm__quote(k, q, sizeof(q)), note);
  }
  return 0;
}

/* ---- the streamed walk ----------------------------------------------------
 *
 * status writes each file as the store's walk reaches it: the records are
 * not held, so memory stays flat however many files are tracked (the store
 * also lets go of the map's pages behind the walk). The table sizes its
 * columns on its first HEAD_ROWS rows, held until then; a later, wider
 * value takes the room it needs on its own line.
 */
#define HEAD_ROWS 4096

typedef struct sweep {
  FILE *out;
  tdm_store_t *s;
  int json;
  size_t n, gone;
  uint64_t pending;
  rows head;  /* table: the rows held until the columns are sized */
  int sized;
  int ws, wb, wz, wp;
} sweep_t;

static void json_file(FILE *out, const row *w, int first) {
  const tdm_file_rec_t *rec = &w->rec;
  int escaped;

  fprintf(out, "%s{\"id\":%" PRIu64 ",\"path\":", first ? "" : ",", rec->id);
  escaped = tdm__status_json_string(out, rec->path);
  fprintf(out,
          ",\"present\":%s,\"dev\":%" PRIu64 ",\"inode\":%" PRIu64
          ",\"size\":%" PRIu64 ",\"bookmark\":%" PRIu64
          ",\"pending\":%" PRIu64 ",\"state\":\"%s\",\"truncations\":%" PRIu32
          ",\"pieces\":%" PRIu64 ",\"first_seen\":",
          w->present ? "true" : "false", rec->dev, rec->ino, w->size,
          rec->offset, w->pending, state_name(rec->state), rec->truncations,
          rec->pieces);
  json_time(out, rec->first_seen_ns);
  fputs(",\"updated\":", out);
  json_time(out, rec->updated_ns);
  fputs(",\"content_hash\":", out);
  if (hash_is_zero(rec->content_hash)) {
    fputs("null", out);
  } else {
    putc('"', out);
    for (int k = 0; k < 16; k++)
      fprintf(out, "%02x", rec->content_hash[k]);
    putc('"', out);
  }
  fputs(",\"duplicate_of\":", out);
  if (rec->dup_of != 0)
    fprintf(out, "%" PRIu64, rec->dup_of);
  else
    fputs("null", out);
  fprintf(out, ",\"attempts\":%" PRIu32 ",\"exit_status\":%" PRId32
               ",\"error\":",
          rec->attempts, rec->exit_status);
  tdm__status_json_string(out, rec->error);
  fprintf(out, ",\"path_escaped\":%s}", escaped ? "true" : "false");
}

/* Digits of v in decimal. */
static int width_of(uint64_t v) {
  int n = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

/* tdm_store_get_file() callback: the path of the file a duplicate names. */
static int copy_path(void *arg, const tdm_file_rec_t *rec) {
  char **path = arg;
  *path = strdup(rec->path != NULL ? rec->path : "");
  return 0;
}

static void text_row(sweep_t *sw, const row *w) {
  FILE *out = sw->out;
  char qb[8192];

  fprintf(out, "%-*s  %*" PRIu64 "  %*" PRIu64 "  %*" PRIu64 "  %s", sw->ws,
          state_name(w->rec.state), sw->wb, w->rec.offset, sw->wz, w->size,
          sw->wp, w->pending, tdm__quote(w->rec.path, qb, sizeof(qb)));
  if (w->rec.state == TDM_FILE_GONE && w->rec.dup_of != 0)
    fputs(" (as it was before a truncation)", out);
  else if (!w->present)
    fputs(" (gone)", out);
  if (w->rec.state == TDM_FILE_DUPLICATE && w->rec.dup_of != 0) {
    char *orig = NULL;
    if (tdm_store_get_file(sw->s, w->rec.dup_of, copy_path, &orig) == 0 &&
        orig != NULL)
      fprintf(out, " (duplicate of %s)", tdm__quote(orig, qb, sizeof(qb)));
    else
      fprintf(out, " (duplicate of file #%" PRIu64 ")", w->rec.dup_of);
    free(orig);
  }
  if (w->rec.error != NULL)
    fprintf(out, " (error: %s)", tdm__quote(w->rec.error, qb, sizeof(qb)));
  putc('\n', out);
}

/* Size the table's columns on the rows held, print its head and them. */
static void size_columns(sweep_t *sw) {
  sw->ws = (int)strlen("STATE");
  sw->wb = (int)strlen("BOOKMARK");
  sw->wz = (int)strlen("SIZE");
  sw->wp = (int)strlen("PENDING");
  for (size_t i = 0; i < sw->head.n; i++) {
    const row *w = &sw->head.v[i];
    int n = (int)strlen(state_name(w->rec.state));
    sw->ws = n > sw->ws ? n : sw->ws;
    n = width_of(w->rec.offset);
    sw->wb = n > sw->wb ? n : sw->wb;
    n = width_of(w->size);
    sw->wz = n > sw->wz ? n : sw->wz;
    n = width_of(w->pending);
    sw->wp = n > sw->wp ? n : sw->wp;
  }
  if (sw->head.n > 0)
    fprintf(sw->out, "%-*s  %*s  %*s  %*s  %s\n", sw->ws, "STATE", sw->wb,
            "BOOKMARK", sw->wz, "SIZE", sw->wp, "PENDING", "PATH");
  for (size_t i = 0; i < sw->head.n; i++)
    text_row(sw, &sw->head.v[i]);
  rows_free(&sw->head);
  sw->sized = 1;
}

/* tdm_store_load_files() callback: one file, looked at now and written. */
static int sweep_file(void *arg, const tdm_file_rec_t *rec) {
  sweep_t *sw = arg;
  row w;

  memset(&w, 0, sizeof(w));
  w.rec = *rec;
  look(&w);
  sw->gone += !w.present;
  sw->pending += w.pending;
  if (sw->json) {
    json_file(sw->out, &w, sw->n++ == 0);
  } else if (sw->sized) {
    sw->n++;
    text_row(sw, &w);
  } else {
    int rc = collect(&sw->head, rec);
    if (rc != 0)
      return rc;
    sw->head.v[sw->head.n - 1].present = w.present;
    sw->head.v[sw->head.n - 1].size = w.size;
    sw->head.v[sw->head.n - 1].pending = w.pending;
    if (++sw->n == HEAD_ROWS)
      size_columns(sw);
  }
  /* A closed pipe (status | head): stop walking. */
  return ferror(sw->out) ? -EPIPE : 0;
}

static void json_head(FILE *out, const char *state_abs, tdm_store_t *s) {
  note_ctx nc = {out, 1, 0};
  fputs("{\"state_dir\":", out);
  tdm__status_json_string(out, state_abs);
  fprintf(out, ",\"schema\":%u,\"instance\":", TDM_STORE_SCHEMA);
  tdm__status_json_string(out, tdm_store_instance(s)[0] ? tdm_store_instance(s) : NULL);
  fputs(",\"processors\":[", out);
  tdm_store_load_blobs(s, print_note, &nc);
  fputs("],\"last_checkpoint\":", out);
  json_time(out, tdm_store_checkpoint_ns(s));
  fprintf(out, ",\"lost_files\":%" PRIu64, tdm_store_lost_files(s));
  fprintf(out, ",\"dead_letters\":%" PRIu64, dead_letters(s));
}

static void text_tail(const sweep_t *sw) {
  FILE *out = sw->out;
  note_ctx nc = {out, 0, 0};
  int64_t ckpt_ns = tdm_store_checkpoint_ns(sw->s);
  uint64_t lost = tdm_store_lost_files(sw->s), dead;
  char when[64];

  fprintf(out, "%zu file%s", sw->n, sw->n == 1 ? "" : "s");
  if (sw->gone > 0)
    fprintf(out, " (%zu gone)", sw->gone);
  fprintf(out, ", %" PRIu64 " byte%s pending, last checkpoint %s\n",
          sw->pending, sw->pending == 1 ? "" : "s",
          ckpt_ns != 0 ? tdm__status_iso8601(ckpt_ns, when, sizeof(when))
                       : "never");
  if (lost > 0)
    fprintf(out, "%" PRIu64 " file%s renamed away or deleted before new bytes "
            "could be read (no descriptor was held; each named in the log "
            "when it happened)\n", lost, lost == 1 ? "" : "s");
  if ((dead = dead_letters(sw->s)) > 0)
    fprintf(out, "%" PRIu64 " record%s set aside in the dead-letter file "
            "(--dead-letter)\n", dead, dead == 1 ? "" : "s");
  if (tdm_store_instance(sw->s)[0] != '\0')
    fprintf(out, "instance %s\n", tdm_store_instance(sw->s));
  tdm_store_load_blobs(sw->s, print_note, &nc);
}

int tdm__status_print(const char *dir, int json, const tdm__log_t *log,
                      FILE *out) {
  sweep_t sw;
  char *abs = NULL;
  int rc;

  memset(&sw, 0, sizeof(sw));
  sw.out = out;
  sw.json = json;
  if ((rc = open_store(dir, TDM_STORE_RDONLY, log, &sw.s)) != 0)
    goto out;
  if (json) {
    abs = realpath(dir, NULL);
    if (abs == NULL)
      abs = tdm__status_abspath(dir);
    json_head(out, abs != NULL ? abs : dir, sw.s);
    fputs(",\"files\":[", out);
  }
  rc = walk_files(dir, log, sw.s, sweep_file, &sw);
  if (rc == -ENOMEM)
    tdm__error(log, "status: out of memory");
  if (rc != 0)
    goto out;
  if (json) {
    fputs("]}\n", out);
  } else {
    if (!sw.sized)
      size_columns(&sw);
    text_tail(&sw);
  }

out:
  free(abs);
  rows_free(&sw.head);
  tdm_store_close(sw.s);
  return rc == -EPIPE ? 0 : rc;
}

/* ---- the summary -------------------------------------------------------- */

typedef struct tally {
  uint64_t n;
  uint64_t by_state[TDM_FILE_GONE + 2]; /* the last: unknown */
  uint64_t pending, pending_files;
  int64_t oldest_ns;  /* when the oldest pending file's bookmark last moved */
  char *oldest_path;
} tally_t;

static int tally_file(void *arg, const tdm_file_rec_t *rec) {
  tally_t *t = arg;
  uint32_t st = rec->state <= TDM_FILE_GONE ? rec->state : TDM_FILE_GONE + 1;

  t->n++;
  t->by_state[st]++;
  if (rec->size > rec->offset && rec->state != TDM_FILE_DONE &&
      rec->state != TDM_FILE_DUPLICATE) {
    int64_t since = rec->updated_ns != 0 ? rec->updated_ns : rec->first_seen_ns;
    t->pending += rec->size - rec->offset;
    t->pending_files++;
    if (t->oldest_path == NULL || since < t->oldest_ns) {
      char *p = strdup(rec->path != NULL ? rec->path : "");
      if (p == NULL)
        return -ENOMEM;
      free(t->oldest_path);
      t->oldest_path = p;
      t->oldest_ns = since;
    }
  }
  return 0;
}

int tdm__status_summary(const char *dir, int json, const tdm__log_t *log,
                        FILE *out) {
  tdm_store_t *s = NULL;
  tally_t t;
  char when[64], qb[8192];
  char *abs = NULL;
  int rc, first = 1;

  memset(&t, 0, sizeof(t));
  if ((rc = open_store(dir, TDM_STORE_RDONLY, log, &s)) != 0 ||
      (rc = walk_files(dir, log, s, tally_file, &t)) != 0) {
    if (rc == -ENOMEM)
      tdm__error(log, "status: out of memory");
    goto out;
  }
  if (json) {
    abs = realpath(dir, NULL);
    if (abs == NULL)
      abs = tdm__status_abspath(dir);
    fputs("{\"state_dir\":", out);
    tdm__status_json_string(out, abs != NULL ? abs : dir);
    fprintf(out, ",\"files\":%" PRIu64 ",\"forgotten\":%" PRIu64
                 ",\"states\":{", t.n, tdm_store_forgotten(s));
    for (uint32_t i = 0; i <= TDM_FILE_GONE + 1; i++)
      if (t.by_state[i] > 0) {
        fprintf(out, "%s\"%s\":%" PRIu64, first ? "" : ",", state_name(i),
                t.by_state[i]);
        first = 0;
      }
    fprintf(out, "},\"pending_bytes\":%" PRIu64 ",\"pending_files\":%" PRIu64
                 ",\"oldest_pending\":", t.pending, t.pending_files);
    if (t.oldest_path != NULL) {
      fputs("{\"path\":", out);
      tdm__status_json_string(out, t.oldest_path);
      fputs(",\"since\":", out);
      json_time(out, t.oldest_ns);
      putc('}', out);
    } else {
      fputs("null", out);
    }
    fputs(",\"last_checkpoint\":", out);
    json_time(out, tdm_store_checkpoint_ns(s));
    fprintf(out, ",\"lost_files\":%" PRIu64 ",\"dead_letters\":%" PRIu64 "}\n",
            tdm_store_lost_files(s), dead_letters(s));
    goto out;
  }
  fprintf(out, "%" PRIu64 " file%s", t.n, t.n == 1 ? "" : "s");
  for (uint32_t i = 0; i <= TDM_FILE_GONE + 1; i++)
    if (t.by_state[i] > 0) {
      fprintf(out, "%s%" PRIu64 " %s", first ? ": " : ", ", t.by_state[i],
              state_name(i));
      first = 0;
    }
  if (tdm_store_forgotten(s) > 0)
    fprintf(out, "\n%" PRIu64 " file%s forgotten (gone longer than "
            "--forget-after): only the content hash kept",
            tdm_store_forgotten(s), tdm_store_forgotten(s) == 1 ? "" : "s");
  fprintf(out, "\n%" PRIu64 " byte%s pending in %" PRIu64 " file%s at the "
          "last look", t.pending, t.pending == 1 ? "" : "s", t.pending_files,
          t.pending_files == 1 ? "" : "s");
  if (t.oldest_path != NULL)
    fprintf(out, "; the oldest since %s: %s",
            t.oldest_ns != 0 ? tdm__status_iso8601(t.oldest_ns, when,
                                                   sizeof(when))
                             : "never",
            tdm__quote(t.oldest_path, qb, sizeof(qb)));
  fprintf(out, "\nlast checkpoint %s\n",
          tdm_store_checkpoint_ns(s) != 0
              ? tdm__status_iso8601(tdm_store_checkpoint_ns(s), when,
                                    sizeof(when))
              : "never");
  if (tdm_store_lost_files(s) > 0)
    fprintf(out, "%" PRIu64 " file%s renamed away or deleted before new bytes "
            "could be read\n", tdm_store_lost_files(s),
            tdm_store_lost_files(s) == 1 ? "" : "s");

out:
  free(abs);
  free(t.oldest_path);
  tdm_store_close(s);
  return rc;
}

int tdm_status_json(const char *state_dir, char **json) {
  char *buf = NULL;
  size_t len = 0;
  FILE *out;
  int rc;

  *json = NULL;
  if ((out = open_memstream(&buf, &len)) == NULL)
    return -ENOMEM;
  rc = tdm__status_print(state_dir, 1, NULL, out);
  if (fclose(out) != 0 && rc == 0)
    rc = -ENOMEM;
  if (rc != 0) {
    free(buf);
    return rc;
  }
  *json = buf;
  return 0;
}

/* The log sink of options `o` in *log: 0, or TDM_EUSAGE for options that
   were never initialised (a size below the oldest layout's) or no state
   directory (said through what sink there is). */
static int sink_of(const tdm_options_t *o, tdm__log_t *log) {
  log->level = TDM_LOG_INFO;
  log->cb = NULL;
  log->arg = NULL;
  if (o == NULL || o->size < TDM_OPTIONS_SIZE_V1) {
    tdm__error(log, "options of %u bytes, fewer than the %zu of the oldest "
               "layout (initialise them with tdm_options_init)",
               o != NULL ? (unsigned)o->size : 0u,
               (size_t)TDM_OPTIONS_SIZE_V1);
    return TDM_EUSAGE;
  }
  log->level = o->log_level;
  log->cb = o->log_cb;
  log->arg = o->log_arg;
  if (o->state_dir == NULL || o->state_dir[0] == '\0') {
    tdm__error(log, "no state directory given (--state)");
    return TDM_EUSAGE;
  }
  return 0;
}

int tdm_status_write(const tdm_options_t *o, tdm_status_format_t format,
                     FILE *out) {
  tdm__log_t log;
  int rc = sink_of(o, &log);
  if (rc != 0)
    return rc;
  switch (format) {
  case TDM_STATUS_TABLE:
  case TDM_STATUS_JSON:
    return tdm__status_print(o->state_dir, format == TDM_STATUS_JSON, &log,
                             out);
  case TDM_STATUS_SUMMARY:
  case TDM_STATUS_SUMMARY_JSON:
    return tdm__status_summary(o->state_dir,
                               format == TDM_STATUS_SUMMARY_JSON, &log, out);
  }
  tdm__error(&log, "status: unknown format %d", (int)format);
  return TDM_EUSAGE;
}

int tdm_status_write_fd(const tdm_options_t *o, tdm_status_format_t format,
                        int fd) {
  int dupfd = dup(fd), rc;
  FILE *out;

  if (dupfd < 0)
    return -errno;
  if ((out = fdopen(dupfd, "w")) == NULL) {
    rc = -errno;
    close(dupfd);
    return rc;
  }
  rc = tdm_status_write(o, format, out);
  if (fflush(out) != 0 && rc == 0 && errno != EPIPE)
    rc = -errno;
  fclose(out);
  return rc;
}

void tdm_free(void *p) {
  free(p);
}

/* ---- reset --------------------------------------------------------------- */

char *tdm__status_abspath(const char *path) {
  char *cwd = NULL;
  char *joined = NULL;
  char *norm;
  const char *p;
  size_t o = 0;

  if (path[0] != '/') {
    cwd = getcwd(NULL, 0);
    if (cwd == NULL)
      return NULL;
  }
  if (asprintf(&joined, "%s/%s", cwd != NULL ? cwd : "", path) < 0) {
    free(cwd);
    errno = ENOMEM;
    return NULL;
  }
  free(cwd);
  norm = malloc(strlen(joined) + 2);
  if (norm == NULL) {
    free(joined);
    return NULL;
  }
  /* Each kept component is written as "/name". */
  for (p = joined; *p != '\0';) {
    const char *e;
    size_t n;
    while (*p == '/')
      p++;
    if (*p == '\0')
      break;
    e = strchrnul(p, '/');
    n = (size_t)(e - p);
    if (n == 1 && p[0] == '.') {
      /* nothing */
    } else if (n == 2 && p[0] == '.' && p[1] == '.') {
      while (o > 0 && norm[o - 1] != '/')
        o--;
      if (o > 0)
        o--;
    } else {
      norm[o++] = '/';
      memcpy(norm + o, p, n);
      o += n;
    }
    p = e;
  }
  if (o == 0)
    norm[o++] = '/';
  norm[o] = '\0';
  free(joined);
  return norm;
}

/* `path` is `top` or lies under it (both absolute, normalised). */
int tdm__status_is_under(const char *path, const char *top) {
  size_t n = strlen(top);
  if (strcmp(top, "/") == 0)
    return path[0] == '/';
  return strncmp(path, top, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/*
 * Mark every row at or under `arg` (a PATH as given). Also tries the PATH
 * with its symlinks resolved, when it exists, since the engine records the
 * paths it walked. Returns the number of rows it matched, or -1 on out of
 * memory.
 */
static long mark_path(rows *r, const char *arg) {
  char *abs = tdm__status_abspath(arg);
  char *real = realpath(arg, NULL);
  long matched = 0;

  if (abs == NULL) {
    free(real);
    return -1;
  }
  for (size_t i = 0; i < r->n; i++) {
    row *w = &r->v[i];
    if (tdm__status_is_under(w->path, abs) || (real != NULL && tdm__status_is_under(w->path, real))) {
      w->del = 1;
      matched++;
    }
  }
  free(abs);
  free(real);
  return matched;
}

/*
 * Forget the marked rows in one transaction, with the content hashes that
 * point at them (a duplicate's hash points at the original, which stays).
 * Returns the store's result.
 */
static int forget_marked(tdm_store_t *s, const rows *r, size_t *forgotten) {
  tdm_store_batch_t b;
  uint64_t *ids = calloc(r->n + 1, sizeof(*ids));
  uint8_t (*hashes)[16] = calloc(r->n + 1, sizeof(*hashes));
  size_t n_ids = 0, n_hashes = 0;
  int rc;

  if (ids == NULL || hashes == NULL) {
    free(ids);
    free(hashes);
    return -ENOMEM;
  }
  for (size_t i = 0; i < r->n; i++) {
    const row *w = &r->v[i];
    uint64_t owner;
    if (!w->del)
      continue;
    ids[n_ids++] = w->rec.id;
    if (!hash_is_zero(w->rec.content_hash) &&
        tdm_store_find_hash(s, w->rec.content_hash, &owner) == 0 &&
        owner == w->rec.id)
      memcpy(hashes[n_hashes++], w->rec.content_hash, 16);
  }
  memset(&b, 0, sizeof(b));
  b.del_files = ids;
  b.n_del_files = n_ids;
  b.del_hashes = (const uint8_t(*)[16])hashes;
  b.n_del_hashes = n_hashes;
  rc = n_ids > 0 ? tdm_store_commit(s, &b) : 0;
  if (rc == 0)
    *forgotten = n_ids;
  free(ids);
  free(hashes);
  return rc;
}

int tdm__status_reset_paths(const char *dir, const char *const *paths,
                            size_t n_paths, const tdm__log_t *log,
                            size_t *forgotten, size_t *untracked) {
  tdm_store_t *s = NULL;
  rows r = {NULL, 0, 0};
  char qb[8192];
  int rc;

  *forgotten = 0;
  *untracked = 0;
  if ((rc = open_and_load(dir, 0, log, &s, &r)) != 0)
    goto out;
  if (n_paths == 0) {
    rc = tdm_store_clear_files(s);
    if (rc != 0) {
      tdm__error(log, "reset of %s failed: %s",
              tdm__quote(dir, qb, sizeof(qb)), tdm_strerror(rc));
      goto out;
    }
    *forgotten = r.n;
  } else {
    for (size_t i = 0; i < n_paths; i++) {
      long m = mark_path(&r, paths[i]);
      if (m == 0) { /* perhaps as status --json or the table spelled it */
        char *raw = tdm__unquote(paths[i]);
        if (raw != NULL)
          m = mark_path(&r, raw);
        free(raw);
      }
      if (m < 0) {
        rc = -errno;
        tdm__error(log, "reset: %s: %s",
                tdm__quote(paths[i], qb, sizeof(qb)), strerror(errno));
        goto out;
      }
      if (m == 0) {
        tdm__warn(log, "reset: %s is not tracked",
                tdm__quote(paths[i], qb, sizeof(qb)));
        (*untracked)++;
      }
    }
    rc = forget_marked(s, &r, forgotten);
    if (rc != 0) {
      tdm__error(log, "reset of %s failed: %s",
              tdm__quote(dir, qb, sizeof(qb)), tdm_strerror(rc));
      goto out;
    }
  }

out:
  rows_free(&r);
  tdm_store_close(s);
  return rc;
}

int tdm_reset(const char *state_dir, const char *const *paths, size_t n_paths,
              size_t *forgotten) {
  size_t n, untracked;
  int rc = tdm__status_reset_paths(state_dir, paths, n_paths, NULL, &n,
                                   &untracked);
  if (forgotten != NULL)
    *forgotten = rc == 0 ? n : 0;
  return rc;
}

int tdm_reset_paths(const tdm_options_t *o, const char *const *paths,
                    size_t n_paths, size_t *forgotten, size_t *untracked) {
  tdm__log_t log;
  size_t n = 0, u = 0;
  int rc = sink_of(o, &log);
  if (rc == 0)
    rc = tdm__status_reset_paths(o->state_dir, paths, n_paths, &log, &n, &u);
  if (forgotten != NULL)
    *forgotten = rc == 0 ? n : 0;
  if (untracked != NULL)
    *untracked = rc == 0 ? u : 0;
  return rc;
}
