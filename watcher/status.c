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
 *   {"state_dir":"/abs","schema":1,"instance":"16 hex"|null,
 *    "processors":[{"spec":"nats:...","note":"text"|null}, ...],
 *    "last_checkpoint":"...Z"|null, "lost_files":N,
 *    "files":[{"id":1,"path":"/abs/p","present":true,"dev":2049,
 *              "inode":1234,"size":100,"bookmark":100,"pending":0,
 *              "state":"active","truncations":0,"pieces":0,
 *              "first_seen":"...Z"|null,"updated":"...Z"|null,
 *              "content_hash":"32 hex"|null,"duplicate_of":ID|null,
 *              "attempts":0,"exit_status":0,"error":"msg"|null,
 *              "path_escaped":false}, ...]}
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

/* Fill present/size/pending of each row from what is at its path now. */
static void look_now(rows *r) {
  for (size_t i = 0; i < r->n; i++) {
    row *w = &r->v[i];
    struct stat st;
    if (lstat(w->path, &st) == 0 && (uint64_t)st.st_dev == w->rec.dev &&
        (uint64_t)st.st_ino == w->rec.ino) {
      w->present = 1;
      w->size = (uint64_t)st.st_size;
    } else {
      w->present = 0;
      w->size = w->rec.size;
    }
    w->pending = w->size > w->rec.offset ? w->size - w->rec.offset : 0;
  }
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
 * Open the store of `dir` (`flags` as tdm_store_open) and load every record
 * into `r`. Returns 0, or a negative code after a message (the store's own,
 * or ours).
 */
static int open_and_load(const char *dir, unsigned flags,
                         const tdm__log_t *log, tdm_store_t **s, rows *r) {
  char qb[1024];
  int rc;

  if ((rc = check_state(dir, log)) != 0)
    return rc;
  rc = tdm_store_open(dir, flags, log, s);
  if (rc != 0) {
    /* The store has logged its message, naming the directory. */
    if (rc == -ENOENT)
      tdm__error(log, "no tidemark state in %s",
              tdm__quote(dir, qb, sizeof(qb)));
    return rc;
  }
  rc = tdm_store_load_files(*s, collect, r);
  if (rc != 0) {
    tdm__error(log, "reading the state in %s: %s",
            tdm__quote(dir, qb, sizeof(qb)), tdm_strerror(rc));
    return rc;
  }
  return 0;
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

static void print_json(FILE *out, const char *state_abs, int64_t ckpt_ns,
                       uint64_t lost, const rows *r, tdm_store_t *s) {
  note_ctx nc = {out, 1, 0};
  fputs("{\"state_dir\":", out);
  tdm__status_json_string(out, state_abs);
  fprintf(out, ",\"schema\":%u,\"instance\":", TDM_STORE_SCHEMA);
  tdm__status_json_string(out, tdm_store_instance(s)[0] ? tdm_store_instance(s) : NULL);
  fputs(",\"processors\":[", out);
  tdm_store_load_blobs(s, print_note, &nc);
  fputs("],\"last_checkpoint\":", out);
  json_time(out, ckpt_ns);
  fprintf(out, ",\"lost_files\":%" PRIu64, lost);
  fputs(",\"files\":[", out);
  for (size_t i = 0; i < r->n; i++) {
    const row *w = &r->v[i];
    const tdm_file_rec_t *rec = &w->rec;
    int escaped;
    fprintf(out, "%s{\"id\":%" PRIu64 ",\"path\":", i > 0 ? "," : "",
            rec->id);
    escaped = tdm__status_json_string(out, w->path);
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
    tdm__status_json_string(out, w->error);
    fprintf(out, ",\"path_escaped\":%s}", escaped ? "true" : "false");
  }
  fputs("]}\n", out);
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

/* The row with id `id`, or NULL. */
static const row *find_row(const rows *r, uint64_t id) {
  for (size_t i = 0; i < r->n; i++)
    if (r->v[i].rec.id == id)
      return &r->v[i];
  return NULL;
}

static void print_text(FILE *out, int64_t ckpt_ns, uint64_t lost,
                       const rows *r, tdm_store_t *s) {
  note_ctx nc = {out, 0, 0};
  int ws = (int)strlen("STATE"), wb = (int)strlen("BOOKMARK");
  int wz = (int)strlen("SIZE"), wp = (int)strlen("PENDING");
  uint64_t pending = 0;
  size_t gone = 0;
  char qb[8192];
  char when[64];

  for (size_t i = 0; i < r->n; i++) {
    const row *w = &r->v[i];
    int n = (int)strlen(state_name(w->rec.state));
    ws = n > ws ? n : ws;
    n = width_of(w->rec.offset);
    wb = n > wb ? n : wb;
    n = width_of(w->size);
    wz = n > wz ? n : wz;
    n = width_of(w->pending);
    wp = n > wp ? n : wp;
  }
  if (r->n > 0)
    fprintf(out, "%-*s  %*s  %*s  %*s  %s\n", ws, "STATE", wb, "BOOKMARK", wz,
            "SIZE", wp, "PENDING", "PATH");
  for (size_t i = 0; i < r->n; i++) {
    const row *w = &r->v[i];
    fprintf(out, "%-*s  %*" PRIu64 "  %*" PRIu64 "  %*" PRIu64 "  %s", ws,
            state_name(w->rec.state), wb, w->rec.offset, wz, w->size, wp,
            w->pending, tdm__quote(w->path, qb, sizeof(qb)));
    if (!w->present) {
      fputs(" (gone)", out);
      gone++;
    }
    if (w->rec.state == TDM_FILE_DUPLICATE && w->rec.dup_of != 0) {
      const row *d = find_row(r, w->rec.dup_of);
      if (d != NULL)
        fprintf(out, " (duplicate of %s)", tdm__quote(d->path, qb, sizeof(qb)));
      else
        fprintf(out, " (duplicate of file #%" PRIu64 ")", w->rec.dup_of);
    }
    if (w->error != NULL)
      fprintf(out, " (error: %s)", tdm__quote(w->error, qb, sizeof(qb)));
    putc('\n', out);
    pending += w->pending;
  }
  fprintf(out, "%zu file%s", r->n, r->n == 1 ? "" : "s");
  if (gone > 0)
    fprintf(out, " (%zu gone)", gone);
  fprintf(out, ", %" PRIu64 " byte%s pending, last checkpoint %s\n", pending,
          pending == 1 ? "" : "s",
          ckpt_ns != 0 ? tdm__status_iso8601(ckpt_ns, when, sizeof(when))
                       : "never");
  if (lost > 0)
    fprintf(out, "%" PRIu64 " file%s renamed away or deleted before new bytes "
            "could be read (no descriptor was held; each named in the log "
            "when it happened)\n", lost, lost == 1 ? "" : "s");
  if (tdm_store_instance(s)[0] != '\0')
    fprintf(out, "instance %s\n", tdm_store_instance(s));
  tdm_store_load_blobs(s, print_note, &nc);
}

int tdm__status_print(const char *dir, int json, tdm_log_level_t level,
                      FILE *out) {
  tdm__log_t log = {level, NULL, NULL};
  tdm_store_t *s = NULL;
  rows r = {NULL, 0, 0};
  char *abs = NULL;
  int64_t ckpt_ns;
  int rc;

  if ((rc = open_and_load(dir, TDM_STORE_RDONLY, &log, &s, &r)) != 0)
    goto out;
  ckpt_ns = tdm_store_checkpoint_ns(s);
  look_now(&r);
  if (json) {
    abs = realpath(dir, NULL);
    if (abs == NULL)
      abs = tdm__status_abspath(dir);
    print_json(out, abs != NULL ? abs : dir, ckpt_ns, tdm_store_lost_files(s),
               &r, s);
  } else {
    print_text(out, ckpt_ns, tdm_store_lost_files(s), &r, s);
  }

out:
  free(abs);
  rows_free(&r);
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
  rc = tdm__status_print(state_dir, 1, TDM_LOG_INFO, out);
  if (fclose(out) != 0 && rc == 0)
    rc = -ENOMEM;
  if (rc != 0) {
    free(buf);
    return rc;
  }
  *json = buf;
  return 0;
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
                            size_t n_paths, tdm_log_level_t level,
                            size_t *forgotten, int *untracked) {
  tdm__log_t log = {level, NULL, NULL};
  tdm_store_t *s = NULL;
  rows r = {NULL, 0, 0};
  char qb[8192];
  int rc;

  *forgotten = 0;
  *untracked = 0;
  if ((rc = open_and_load(dir, 0, &log, &s, &r)) != 0)
    goto out;
  if (n_paths == 0) {
    rc = tdm_store_clear_files(s);
    if (rc != 0) {
      tdm__error(&log, "reset of %s failed: %s",
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
        tdm__error(&log, "reset: %s: %s",
                tdm__quote(paths[i], qb, sizeof(qb)), strerror(errno));
        goto out;
      }
      if (m == 0) {
        tdm__warn(&log, "reset: %s is not tracked",
                tdm__quote(paths[i], qb, sizeof(qb)));
        *untracked = 1;
      }
    }
    rc = forget_marked(s, &r, forgotten);
    if (rc != 0) {
      tdm__error(&log, "reset of %s failed: %s",
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
  size_t n;
  int untracked;
  int rc = tdm__status_reset_paths(state_dir, paths, n_paths, TDM_LOG_INFO,
                                   &n, &untracked);
  if (forgotten != NULL)
    *forgotten = rc == 0 ? n : 0;
  return rc;
}
