/*
 * whole.c: whole mode: each complete file once, never twice the same content.
 *
 * A file is complete when it was renamed into the tree or closed by its
 * writer (a hint from the event), or when its mtime is older than
 * --settle-ms; in every case it must not change while it is hashed. Its
 * content is hashed (XXH3-128, streamed in large reads); a hash already in
 * the store, or in the table of hashes not committed yet, makes it a
 * duplicate. Otherwise its bytes go to every processor's process(), then the
 * file to every processor's file(), and it is recorded done with its hash in
 * the same checkpoint transaction. A file() that is PENDING (exec's child is
 * running) leaves the file in flight: not recorded, so a crash makes it be
 * handled again, never skipped.
 *
 * A done (or duplicate) file that leaves the tree (deleted, moved away by
 * --on-done) is kept as gone (files.c, tdm__retire) until --forget-after
 * has passed; then its record is dropped and its hash joins the store's
 * forgotten set, both in one transaction, so a crash never loses the one
 * without the other. Content found there is a duplicate as well.
 */
#include "engine/whole.h"

#include "base/clock.h"
#include "core/framing.h"
#include "core/identity.h"
#include "engine/after.h"
#include "engine/checkpoint.h"
#include "engine/engine.h"
#include "engine/files.h"
#include "engine/reconcile.h"
#include "engine/zread.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

#define RETRY_WAIT_MS 100 /* poll()'s wait while a file() says RETRY */
/* With --on-done, a checkpoint at least every this many files done: a pass
   over a million drops then acts on them and forgets them (--forget-after)
   as it goes, and the store never holds more than a few batches of records
   at once (LMDB's file keeps its largest size). */
#define CHECKPOINT_FILES 1024

/* ---- the table of uncommitted hashes ------------------------------------ */

static uint64_t key(const uint8_t h[16]) {
  uint64_t k;
  memcpy(&k, h, sizeof(k));
  return k;
}

static tdm_hashset_entry_t *hs_find(const tdm_hashset_t *hs, const uint8_t h[16]) {
  for (tdm_hnode_t *n = tdm__hmap_first(&hs->map, key(h)); n;
       n = tdm__hmap_next(n)) {
    tdm_hashset_entry_t *e = tdm__container_of(n, tdm_hashset_entry_t, node);
    if (memcmp(e->hash, h, 16) == 0)
      return e;
  }
  return NULL;
}

static int hs_put(tdm_hashset_t *hs, const uint8_t h[16], uint64_t id) {
  tdm_hashset_entry_t *e;

  if ((e = hs_find(hs, h)) != NULL) {
    e->id = id;
    return 0;
  }
  if ((e = calloc(1, sizeof(*e))) == NULL)
    return -ENOMEM;
  memcpy(e->hash, h, 16);
  e->id = id;
  if (tdm__hmap_insert(&hs->map, &e->node, key(h)) != 0) {
    free(e);
    return -ENOMEM;
  }
  return 0;
}

static void hs_drop(tdm_hashset_t *hs, tdm_hashset_entry_t *e) {
  tdm__hmap_remove(&hs->map, &e->node);
  free(e);
}

static void hs_remove(tdm_hashset_t *hs, const uint8_t h[16], uint64_t id) {
  tdm_hashset_entry_t *e = hs_find(hs, h);
  if (e != NULL && e->id == id)
    hs_drop(hs, e);
}

static void drop_any(tdm_hnode_t *n, void *arg) {
  hs_drop(arg, tdm__container_of(n, tdm_hashset_entry_t, node));
}

void tdm__whole_free(tdm_t *t) {
  for (size_t i = t->first_held; i < t->n_held; i++)
    if (t->held[i].id != 0)
      close(t->held[i].fd);
  free(t->held);
  t->held = NULL;
  t->first_held = t->n_held = t->cap_held = 0;
  tdm__hmap_walk(&t->hashes.map, drop_any, &t->hashes);
  tdm__hmap_free(&t->hashes.map);
}

typedef struct batch {
  tdm_store_hash_t *out;  /* NULL: only count */
  size_t n;
} batch_t;

static void take_done(tdm_hnode_t *n, void *arg) {
  batch_t *b = arg;
  tdm_hashset_entry_t *e = tdm__container_of(n, tdm_hashset_entry_t, node);
  if (!e->done)
    return;
  if (b->out != NULL) {
    memcpy(b->out[b->n].hash, e->hash, 16);
    b->out[b->n].file_id = e->id;
  }
  b->n++;
}

size_t tdm__whole_batch(tdm_t *t, tdm_store_hash_t **out) {
  batch_t b = {NULL, 0};

  *out = NULL;
  tdm__hmap_walk(&t->hashes.map, take_done, &b);
  if (b.n == 0 || (b.out = malloc(b.n * sizeof(*b.out))) == NULL)
    return 0;
  b.n = 0;
  tdm__hmap_walk(&t->hashes.map, take_done, &b);
  *out = b.out;
  return b.n;
}

static void drop_done(tdm_hnode_t *n, void *arg) {
  tdm_hashset_entry_t *e = tdm__container_of(n, tdm_hashset_entry_t, node);
  if (e->done)
    hs_drop(arg, e);
}

/* Forgetting: at most this many records a transaction. Each hash rewrites
   one page of the forgotten set (copy on write), and the pages a
   transaction replaces are reused only by the next ones: small
   transactions keep the store small. */
#define FORGET_BATCH 128

/* Drop the records of files gone for --forget-after, their hashes kept
   (see the top). */
static void forget_due(tdm_t *t) {
  uint64_t ms = t->opts.forget_after_ms;
  int64_t now = tdm__wall_ns(), after, next = 0;
  tdm_store_hash_t *due = NULL;
  size_t n = 0, cap = 0;
  tdm_store_batch_t b;

  if (ms == TDM_FORGET_NEVER)
    return;
  after = ms > (uint64_t)INT64_MAX / 1000000 ? INT64_MAX : (int64_t)ms * 1000000;
  for (size_t i = 0; i < t->files.n; i++) {
    const tdm_file_t *f = t->files.all[i];
    int64_t at;
    if (f->rec.state != TDM_FILE_GONE)
      continue;
    at = f->rec.updated_ns > INT64_MAX - after ? INT64_MAX
                                               : f->rec.updated_ns + after;
    if (f->dirty || at > now) { /* not durable yet, or not yet due */
      if (next == 0 || at < next)
        next = at;
      continue;
    }
    if (n == cap) {
      size_t c = cap ? cap * 2 : 64;
      tdm_store_hash_t *v = realloc(due, c * sizeof(*v));
      if (v == NULL)
        break; /* the rest next time */
      due = v;
      cap = c;
    }
    memcpy(due[n].hash, f->rec.content_hash, 16);
    due[n++].file_id = f->rec.id;
  }
  t->forget_due_ns = next;
  for (size_t k = 0; k < n; k += FORGET_BATCH) {
    size_t m = n - k < FORGET_BATCH ? n - k : FORGET_BATCH;
    memset(&b, 0, sizeof(b));
    b.forget = due + k;
    b.n_forget = m;
    b.next_id = t->next_id;
    if (tdm_store_commit(t->store, &b) != 0) { /* logged: tried again later */
      t->forget_due_ns = now;
      break;
    }
    for (size_t j = k; j < k + m; j++) {
      tdm_file_t *f = tdm__filetable_get(&t->files, 0, due[j].file_id);
      if (f != NULL && f->rec.state == TDM_FILE_GONE)
        tdm__filetable_remove(&t->files, f);
    }
    t->stats.files_forgotten += m;
  }
  if (n > 0)
    tdm__debug(&t->log, "%zu gone file%s forgotten (their hashes kept)", n,
               n == 1 ? "" : "s");
  free(due);
}

void tdm__whole_resume(tdm_t *t) {
  tdm__after_durable(t); /* outcomes a kill -9 left unacted on */
  forget_due(t);
}

void tdm__whole_committed(tdm_t *t, int ok) {
  /* Committed: the store answers for them now. Rolled back: the files are
     looked at again (their processors' outputs were rolled back too). */
  tdm__hmap_walk(&t->hashes.map, drop_done, &t->hashes);
  if (ok) {
    tdm__after_durable(t); /* --on-done/--on-failed: the outcomes are durable */
    forget_due(t);
    return;
  }
  for (size_t i = 0; i < t->files.n; i++) {
    tdm_file_t *f = t->files.all[i];
    if (f->dirty && (f->rec.state == TDM_FILE_DONE ||
                     f->rec.state == TDM_FILE_DUPLICATE)) {
      f->rec.state = TDM_FILE_PENDING;
      f->rec.mtime_ns = -1;
    }
  }
}

/* ---- one file ----------------------------------------------------------- */

static void set_inflight(tdm_t *t, tdm_file_t *f, int on) {
  if (f->inflight != (unsigned)!!on) {
    f->inflight = !!on;
    t->n_inflight += on ? 1 : (size_t)-1;
  }
}

static int unhold(tdm_t *t, const tdm_file_t *f, int *fd, tdm_comp_t *kind,
                  int unclaim);

void tdm__whole_forget(tdm_t *t, tdm_file_t *f) {
  int fd;
  tdm_comp_t kind;

  if (unhold(t, f, &fd, &kind, 1))
    close(fd);
  tdm__set_waiting(t, f, 0);
  if (f->inflight)
    hs_remove(&t->hashes, f->rec.content_hash, f->rec.id);
  set_inflight(t, f, 0);
}

static int settled(const tdm_t *t, int64_t mtime) {
  return tdm__wall_ns() - mtime >= (int64_t)t->opts.settle_ms * 1000000;
}

static void mark(tdm_t *t, tdm_file_t *f, tdm_file_state_t state) {
  f->rec.state = state;
  f->rec.updated_ns = tdm__wall_ns();
  f->dirty = 1;
  t->need_checkpoint = 1;
}

static void fail(tdm_t *t, tdm_file_t *f, const char *msg, int32_t status) {
  char q[PATH_MAX];
  tdm__error(&t->log, "%s: %s", tdm__quote(f->path, q, sizeof(q)), msg);
  tdm__file_set_error(f, msg);
  f->rec.exit_status = status;
  hs_remove(&t->hashes, f->rec.content_hash, f->rec.id);
  set_inflight(t, f, 0);
  f->pending_mask = 0;
  t->stats.files_failed++;
  mark(t, f, TDM_FILE_FAILED);
  f->after = t->failed_dir != NULL;
}

static void done(tdm_t *t, tdm_file_t *f) {
  tdm_hashset_entry_t *e = hs_find(&t->hashes, f->rec.content_hash);
  char q[PATH_MAX];
  if (e != NULL && e->id == f->rec.id)
    e->done = 1;
  set_inflight(t, f, 0);
  f->rec.offset = f->pos = f->rec.size;
  tdm__file_set_error(f, NULL);
  f->rec.exit_status = 0;
  t->stats.files_done++;
  mark(t, f, TDM_FILE_DONE);
  f->after = t->after_delete || t->done_dir != NULL;
  tdm__debug(&t->log, "%s: done", tdm__quote(f->path, q, sizeof(q)));
}

static int hash_piece(void *arg, const char *buf, size_t n) {
  XXH3_128bits_update(arg, buf, n);
  return 0;
}

/* Stream the content of `fd` through XXH3-128 into canonical form; the
   uncompressed content of a compressed file. */
static int hash_file(tdm_t *t, const char *path, int fd, tdm_comp_t kind,
                     uint64_t size, uint8_t out[16]) {
  XXH3_state_t *st = XXH3_createState();
  XXH128_canonical_t c;
  uint64_t off = 0;
  int rc = 0;

  if (st == NULL)
    return -ENOMEM;
  XXH3_128bits_reset(st);
  if (kind != TDM_COMP_NONE) {
    rc = tdm__zstream(t, path, fd, kind, hash_piece, st);
    size = 0; /* done */
  }
  while (off < size) {
    ssize_t n = pread(fd, t->buf, t->buf_cap, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = n < 0 ? -errno : -ENODATA;
      break;
    }
    XXH3_128bits_update(st, t->buf, (size_t)n);
    off += (uint64_t)n;
  }
  XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
  memcpy(out, c.digest, 16);
  XXH3_freeState(st);
  return rc;
}

/*
 * The content of one file version cut into chunks: in `lines` mode each
 * chunk ends at a line end (a line longer than --max-record, or than the
 * buffer, goes out in pieces flagged TDM_CHUNK_PIECE), so a processor that
 * parses records (nats records=line, a Python loader) never sees one cut
 * in two; the file's last line counts as whole even without its '\n' (the
 * file is complete). Bytes pass through `b` (t->wbuf, t->buf_cap bytes):
 * the plain reader and the decompressor both read into t->buf.
 */
typedef struct wframe {
  tdm_t *t;
  tdm_file_t *f;
  char *b;
  size_t have;        /* bytes waiting in b */
  uint64_t off;       /* the file offset of b[0] */
} wframe_t;

static int wf_deliver(wframe_t *w, size_t cut, int piece) {
  tdm_chunk_t c;
  int rc;

  memset(&c, 0, sizeof(c));
  c.size = (uint32_t)sizeof(c);
  c.file_id = w->f->rec.id;
  c.path = w->f->path;
  c.offset = w->off;
  c.data = w->b;
  c.len = cut;
  c.flags = piece ? TDM_CHUNK_PIECE : 0;
  c.generation = w->f->rec.truncations;
  if ((rc = tdm__deliver_checkpointing(w->t, w->f, &c)) != 0)
    return rc;
  memmove(w->b, w->b + cut, w->have - cut);
  w->have -= cut;
  w->off += cut;
  w->t->stats.bytes += cut;
  w->t->stats.chunks++;
  return 0;
}

/* Deliver what in b is ready: whole lines (all of it in bytes mode, or
   with `last`). */
static int wf_drain(wframe_t *w, int last) {
  tdm_t *t = w->t;
  int rc;

  while (w->have > 0) {
    int piece = 0;
    size_t cut = t->opts.records == TDM_RECORDS_LINES
                     ? tdm__frame(w->b, w->have, t->buf_cap, t->opts.records,
                                  t->opts.max_record, &piece)
                     : w->have;
    if (cut == 0 && (last || w->have == t->buf_cap))
      cut = w->have, piece = !last; /* the last line, or a buffer of one */
    if (cut == 0)
      return 0;
    if ((rc = wf_deliver(w, cut, piece)) != 0)
      return rc;
  }
  return 0;
}

static int wf_push(void *arg, const char *buf, size_t n) {
  wframe_t *w = arg;
  int rc;

  while (n > 0) {
    size_t k = w->t->buf_cap - w->have;
    if (k > n)
      k = n;
    memcpy(w->b + w->have, buf, k);
    w->have += k;
    buf += k;
    n -= k;
    if ((rc = wf_drain(w, 0)) != 0)
      return rc;
  }
  return 0;
}

/* The file's bytes (uncompressed) to every processor's process(). */
static int deliver_content(tdm_t *t, tdm_file_t *f, int fd, tdm_comp_t kind) {
  wframe_t w = {t, f, NULL, 0, 0};
  struct stat b;
  uint64_t off = 0;
  int rc = 0;

  if (t->wbuf == NULL && (t->wbuf = malloc(t->buf_cap)) == NULL)
    return -ENOMEM;
  w.b = t->wbuf;
  if (kind != TDM_COMP_NONE)
    rc = tdm__zstream(t, f->path, fd, kind, wf_push, &w);
  while (kind == TDM_COMP_NONE && rc == 0 && off < f->rec.size) {
    ssize_t n = pread(fd, t->buf, t->buf_cap, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = n < 0 ? -errno : -ENODATA;
      break;
    }
    /* Written again in place since it was hashed (a new version begun
       while this one is delivered, slowly: a sink waiting for its server)?
       Then these bytes may be the new version's: not handed over. Any
       write or truncation sets ctime before it returns, so a byte read
       after one is seen here. */
    if (fstat(fd, &b) != 0 || !tdm__file_unchanged(f, &b)) {
      rc = -ESTALE;
      break;
    }
    off += (uint64_t)n;
    rc = wf_push(&w, t->buf, (size_t)n);
  }
  if (rc == 0)
    rc = wf_drain(&w, 1);
  return rc;
}

/* Find a file by id among those in flight. */
static tdm_file_t *inflight_file(tdm_t *t, uint64_t id) {
  for (size_t i = 0; i < t->files.n && t->n_inflight > 0; i++)
    if (t->files.all[i]->inflight && t->files.all[i]->rec.id == id)
      return t->files.all[i];
  return NULL;
}

static void apply(tdm_t *t, size_t proc, const tdm_outcome_t *o) {
  tdm_file_t *f = inflight_file(t, o->file_id);
  char msg[TDM_MSG_MAX + 64];

  if (f == NULL || !(f->pending_mask & (1ull << proc)))
    return; /* forgotten meanwhile */
  f->pending_mask &= ~(1ull << proc);
  f->rec.attempts = o->attempts;
  if (o->result != TDM_PROC_OK) {
    snprintf(msg, sizeof(msg), "processor '%s' failed: %.*s", t->procs[proc].key,
             TDM_MSG_MAX - 1, o->msg);
    fail(t, f, msg, o->exit_status);
    return;
  }
  f->rec.exit_status = o->exit_status;
  if (f->pending_mask == 0)
    done(t, f);
}

/* Collect outcomes (see tdm__whole_poll) without committing them. */
static void collect(tdm_t *t, int wait_ms) {
  tdm_outcome_t out[16];
  for (size_t i = 0; i < t->n_procs; i++) {
    tdm_proc_t *p = &t->procs[i];
    int n;
    if (p->desc == NULL || !TDM_PROCESSOR_HAS(p->desc, poll))
      continue;
    while ((n = p->desc->poll(p->state, out, 16, wait_ms)) > 0) {
      for (int k = 0; k < n; k++)
        apply(t, i, &out[k]);
      t->unsaved_outcomes += (size_t)n;
      wait_ms = 0; /* got some: take the rest without waiting */
    }
  }
}

/*
 * An outcome is the most expensive thing we learn (a loader ran): make it
 * durable now, not at the next --checkpoint-ms, so that a crash repeats at
 * most the loaders that were running. Every outcome collected since the last
 * checkpoint goes into this one transaction.
 */
static int save_outcomes(tdm_t *t) {
  if (t->unsaved_outcomes == 0 || !t->need_checkpoint)
    return 0;
  return tdm__checkpoint(t);
}

int tdm__whole_poll(tdm_t *t, int wait_ms) {
  int rc;
  collect(t, wait_ms);
  if ((rc = save_outcomes(t)) != 0)
    return rc;
  if (t->stop)
    return TDM_ESTOPPED;
  /* A long pass (hundreds of files through a few job slots) must not keep
     what is done out of the store until it ends. */
  return tdm__checkpoint_maybe(t);
}

/* Hand the complete file to every processor's file(). */
static int hand_over(tdm_t *t, tdm_file_t *f, const char *hex) {
  tdm_file_info_t info;

  memset(&info, 0, sizeof(info));
  info.size = sizeof(info);
  info.file_id = f->rec.id;
  info.path = f->path;
  info.length = f->rec.size;
  info.hash = f->rec.content_hash;
  info.hash_hex = hex;
  f->pending_mask = 0;
  if (f->fresh && tdm__register(t) != 0) /* info.file_id names it */
    return TDM_ESTOPPED; /* the pass ends (the failure was said) */
  for (size_t i = 0; i < t->n_procs; i++) {
    tdm_proc_t *p = &t->procs[i];
    char msg[TDM_MSG_MAX] = "", err[TDM_MSG_MAX + 64];
    int rc;

    if (p->desc == NULL || !TDM_PROCESSOR_HAS(p->desc, file))
      continue;
    uint64_t since_ms = tdm__now_ms();
    while ((rc = p->desc->file(p->state, &info, msg)) == TDM_PROC_RETRY) {
      t->stats.proc_retries++;
      size_t before = t->unsaved_outcomes;
      msg[sizeof(msg) - 1] = '\0';
      if (tdm__give_up(t, since_ms, f->path, UINT64_MAX, p->key, msg))
        return TDM_ESTOPPED; /* not recorded: handled again next time */
      /* Outcomes free slots: refill one before committing them, so that
         the loaders run during the commit and what they finish meanwhile
         shares the next one. */
      collect(t, RETRY_WAIT_MS);
      if (t->unsaved_outcomes != before)
        since_ms = tdm__now_ms(); /* the loaders are moving: not stuck */
      if (t->stop)
        return TDM_ESTOPPED; /* not recorded: handled again next time */
      if (f->rec.state == TDM_FILE_FAILED)
        return save_outcomes(t) != 0 ? TDM_ESTOPPED : 0;
    }
    if (save_outcomes(t) != 0 || tdm__checkpoint_maybe(t) != 0)
      return TDM_ESTOPPED; /* the pass ends (the failure was logged) */
    if (rc == TDM_PROC_PENDING) {
      f->pending_mask |= 1ull << i;
    } else if (rc != TDM_PROC_OK) {
      msg[sizeof(msg) - 1] = '\0';
      snprintf(err, sizeof(err), "processor '%s' failed%s%s", p->key,
               msg[0] ? ": " : "", msg);
      t->stats.proc_failures++;
      fail(t, f, err, 0);
      return 0;
    }
  }
  f->rec.attempts = 1;
  if (f->pending_mask != 0)
    set_inflight(t, f, 1);
  else
    done(t, f);
  return 0;
}

/*
 * Has nobody the file open for writing? A read lease is granted only then
 * (fcntl(2)); it is taken and dropped at once. Its break signal is set to
 * SIGURG, ignored by default, so a writer opening the file in that instant
 * cannot kill us. 0 when it cannot tell (not the owner without CAP_LEASE, a
 * filesystem without leases): the settle time decides then.
 */
static int no_writers(int fd) {
  if (fcntl(fd, F_SETSIG, SIGURG) != 0 || fcntl(fd, F_SETLEASE, F_RDLCK) != 0)
    return 0;
  (void)fcntl(fd, F_SETLEASE, F_UNLCK);
  return 1;
}

/* `f` looks complete: hash it and handle it. With `closed`, only if its
   writers are gone. */
/* Open `f` at `path` for complete(): still the same inode, and, when only a
   writer's close said it is done (`closed`), nobody else writing to it.
   Returns the descriptor (its fstat in *a), or -1 when there is nothing to
   do now (a failure said and counted, or the file set waiting). */
static int open_whole(tdm_t *t, tdm_file_t *f, const char *path, int closed,
                      struct stat *a) {
  char q[PATH_MAX];
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

  if (fd < 0) {
    if (errno != ENOENT && errno != ELOOP) {
      tdm__warn(&t->log, "%s: cannot open: %s", tdm__quote(path, q, sizeof(q)),
                strerror(errno));
      t->stats.file_errors++;
    }
    return -1;
  }
  t->stats.files_opened++;
  if (fstat(fd, a) != 0 || (uint64_t)a->st_dev != f->rec.dev ||
      (uint64_t)a->st_ino != f->rec.ino) {
    close(fd); /* swapped under us: the next look sees the new one */
    return -1;
  }
  if (closed && !no_writers(fd)) {
    tdm__set_waiting(t, f, 1); /* another writer still has it: let it settle */
    close(fd);
    return -1;
  }
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return fd;
}

/* Hash the content at `fd` (of fstat `a`) into `h` (its compression in
   *kind). Returns 1 when the file held still while hashed; 0 when it did not
   or could not be read (said and counted, `f` left to be looked at again or
   marked corrupt until it changes). Never closes `fd`. */
static int hash_still(tdm_t *t, tdm_file_t *f, const char *path, int fd,
                      const struct stat *a, uint8_t h[16], tdm_comp_t *kind) {
  struct stat b;
  char q[PATH_MAX];
  int rc;

  if ((rc = tdm__zkind(t->opts.decompress, fd, kind)) == 0)
    rc = hash_file(t, path, fd, *kind, (uint64_t)a->st_size, h);
  if (rc == -EBADMSG || rc == -EPIPE) { /* said and counted: until it changes */
    f->rec.size = (uint64_t)a->st_size;
    f->rec.mtime_ns = mtime_ns(a);
    tdm__file_set_error(f, rc == -EBADMSG ? "corrupt compressed data"
                                          : "truncated compressed data");
    f->dirty = 1;
    t->need_checkpoint = 1;
    return 0;
  }
  /* Still being written? Then it was not complete after all. */
  if (rc != 0 || fstat(fd, &b) != 0 || b.st_size != a->st_size ||
      mtime_ns(&b) != mtime_ns(a)) {
    if (rc != 0 && rc != -ENODATA) {
      tdm__warn(&t->log, "%s: read: %s", tdm__quote(path, q, sizeof(q)),
                strerror(-rc));
      t->stats.file_errors++;
    }
    f->rec.mtime_ns = -1; /* look again */
    tdm__set_waiting(t, f, 1);
    return 0;
  }
  return 1;
}

/* `f` (a handled file) hashed to `h` again: touched, or the same bytes
   written again, not a new version. Returns 1 when so (recorded, said unless
   `upgrade`), else 0 (`f` becomes pending: a new version). */
static int same_version(tdm_t *t, tdm_file_t *f, const char *path,
                        const uint8_t h[16], int upgrade) {
  char q[PATH_MAX];

  if ((f->rec.state == TDM_FILE_DONE || f->rec.state == TDM_FILE_DUPLICATE) &&
      memcmp(f->rec.content_hash, h, 16) == 0) {
    if (!upgrade) {
      tdm__warn(&t->log, "%s: same content as when it was handled: skipped "
                "(a duplicate)", tdm__quote(path, q, sizeof(q)));
      t->stats.duplicates++;
      f->rec.updated_ns = tdm__wall_ns();
    }
    f->dirty = 1;
    t->need_checkpoint = 1;
    return 1;
  }
  if (f->rec.state != TDM_FILE_PENDING) {
    tdm__info(&t->log, "%s: changed since it was handled: a new version",
              tdm__quote(path, q, sizeof(q)));
    f->rec.state = TDM_FILE_PENDING; /* until its outcome is known */
    f->dirty = 1;
    t->need_checkpoint = 1;
  }
  return 0;
}

/* The path of a record read from the store (into a PATH_MAX buffer). */
static int record_path(void *arg, const tdm_file_rec_t *rec) {
  snprintf(arg, PATH_MAX, "%s", rec->path != NULL ? rec->path : "");
  return 0;
}

/* `f` at `path` has the content of file `other`: record it as a duplicate. */
static void duplicate(tdm_t *t, tdm_file_t *f, const char *path,
                      uint64_t other) {
  tdm_file_t *o = NULL;
  char q[PATH_MAX], opath[PATH_MAX] = "";

  for (size_t i = 0; i < t->files.n && o == NULL; i++)
    if (t->files.all[i]->rec.id == other)
      o = t->files.all[i];
  /* Not in memory as a whole file: at rest (cold), or forgotten. */
  if (o == NULL &&
      tdm_store_get_file(t->store, other, record_path, opath) != 0)
    opath[0] = '\0';
  tdm__warn(&t->log, "%s: duplicate of %s: skipped",
            tdm__quote(path, q, sizeof(q)),
            o         ? o->path
            : opath[0] ? opath
            : other   ? "a file handled before"
                      : "a file handled before and forgotten");
  f->rec.dup_of = other;
  f->rec.offset = f->pos = f->rec.size;
  t->stats.duplicates++;
  mark(t, f, TDM_FILE_DUPLICATE);
  f->after = t->after_delete || t->done_dir != NULL;
}

/* Hand the content of `f` (at `fd`, compression `kind`, hash `h`) to the
   processors, its hash in flight meanwhile. Closes `fd`. Returns 0 (a
   file's own failure said and counted) or what ends the pass. */
static int deliver_new(tdm_t *t, tdm_file_t *f, const char *path, int fd,
                       tdm_comp_t kind, const uint8_t h[16]) {
  static const char hexd[] = "0123456789abcdef";
  char hex[33], q[PATH_MAX];
  int rc;

  for (int i = 0; i < 16; i++) {
    hex[2 * i] = hexd[h[i] >> 4];
    hex[2 * i + 1] = hexd[h[i] & 15];
  }
  hex[32] = '\0';
  if ((rc = hs_put(&t->hashes, h, f->rec.id)) != 0) {
    close(fd);
    return rc;
  }
  set_inflight(t, f, 1); /* so that a failure takes its hash back */
  rc = deliver_content(t, f, fd, kind);
  close(fd);
  if (rc == TDM_ESTOPPED) {
    tdm__whole_forget(t, f); /* not recorded: handled again next time */
    return rc;
  }
  if (rc == TDM_EPROC) { /* tdm__deliver marked it failed and said why */
    hs_remove(&t->hashes, h, f->rec.id);
    set_inflight(t, f, 0);
    f->rec.attempts = 1;
    t->stats.files_failed++;
    return 0;
  }
  if (rc != 0) {
    if (rc == -ESTALE) { /* the writer's doing, not an error */
      tdm__warn(&t->log, "%s: written again while it was delivered: the rest "
                "of that version was not delivered, the new content will be "
                "a new version", tdm__quote(path, q, sizeof(q)));
      t->stats.rewrites++;
    } else {
      tdm__warn(&t->log, "%s: read: %s", tdm__quote(path, q, sizeof(q)),
                strerror(-rc));
      t->stats.file_errors++;
    }
    tdm__whole_forget(t, f);
    f->rec.mtime_ns = -1;
    return 0;
  }
  set_inflight(t, f, 0);
  return hand_over(t, f, hex);
}

static int hash_is_zero(const uint8_t h[16]) {
  for (int i = 0; i < 16; i++)
    if (h[i] != 0)
      return 0;
  return 1;
}

/* ---- files put off until their records are durable --------------------- */

/* `f` (hashed, at `fd` of compression `kind`) waits for tdm__flush_fresh:
   keep the descriptor (not f->fd: the tail reader's) and claim its hash, so
   that a copy met meanwhile is its duplicate. Returns 0 (out of memory:
   the descriptor is closed, and the flush looks at the file again). */
static int hold(tdm_t *t, tdm_file_t *f, int fd, tdm_comp_t kind) {
  if (t->n_held == t->cap_held) {
    size_t cap = t->cap_held ? t->cap_held * 2 : 64;
    struct tdm_whole_held *v = realloc(t->held, cap * sizeof(*v));
    if (v == NULL) {
      close(fd);
      return 0;
    }
    t->held = v;
    t->cap_held = cap;
  }
  if (hs_put(&t->hashes, f->rec.content_hash, f->rec.id) != 0) {
    close(fd);
    return 0;
  }
  t->held[t->n_held].id = f->rec.id;
  t->held[t->n_held].fd = fd;
  t->held[t->n_held].kind = (int)kind;
  t->n_held++;
  return 0;
}

/* Take f's held descriptor back, and with `unclaim` its hash claim: 1 and
   *fd, *kind, or 0 when none is held. tdm__flush_fresh takes them back in
   the order they were put off: each is the first one left. */
static int unhold(tdm_t *t, const tdm_file_t *f, int *fd, tdm_comp_t *kind,
                  int unclaim) {
  for (size_t i = t->first_held; i < t->n_held; i++) {
    if (t->held[i].id != f->rec.id)
      continue;
    *fd = t->held[i].fd;
    *kind = (tdm_comp_t)t->held[i].kind;
    t->held[i].id = 0;
    while (t->first_held < t->n_held && t->held[t->first_held].id == 0)
      t->first_held++;
    if (t->first_held == t->n_held)
      t->first_held = t->n_held = 0;
    if (unclaim)
      hs_remove(&t->hashes, f->rec.content_hash, f->rec.id);
    return 1;
  }
  return 0;
}

static int complete(tdm_t *t, tdm_file_t *f, const char *path, int closed) {
  struct stat a;
  uint8_t h[16];
  uint64_t other = 0;
  tdm_hashset_entry_t *e;
  tdm_comp_t kind = TDM_COMP_NONE;
  int fd, rc, upgrade, forgotten = 0;

  if ((fd = open_whole(t, f, path, closed, &a)) < 0)
    return 0;
  if (!hash_still(t, f, path, fd, &a, h, &kind)) {
    close(fd);
    return 0;
  }
  /* A record of format 1 knows no ctime: checked once by its hash, quietly. */
  upgrade = f->rec.ctime_ns == 0 && f->rec.size == (uint64_t)a.st_size &&
            f->rec.mtime_ns == mtime_ns(&a);
  f->rec.size = (uint64_t)a.st_size;
  f->rec.mtime_ns = mtime_ns(&a);
  f->rec.ctime_ns = ctime_ns(&a);
  if (same_version(t, f, path, h, upgrade)) {
    close(fd);
    return 0;
  }
  e = hs_find(&t->hashes, h);
  if (e != NULL)
    other = e->id;
  else if ((rc = tdm_store_find_hash(t->store, h, &other)) != 0 && rc != -ENOENT) {
    close(fd);
    return rc;
  } else if (rc == -ENOENT &&
             (forgotten = tdm_store_hash_forgotten(t->store, h)) < 0) {
    close(fd);
    return forgotten;
  }
  /* Other content than the file id had before (rewritten in place, or a new
     file on the inode of a deleted one): a new generation, so that its
     records never share a name (FILE_ID, GEN, offset) with the old ones. It
     goes to the store with the new hash, so a replay after a crash finds
     both and names the records as the first try did. */
  if (!hash_is_zero(f->rec.content_hash) &&
      memcmp(f->rec.content_hash, h, 16) != 0)
    f->rec.truncations++;
  /* The generation and the content it names are durable before a record
     of it is handed over (tdm__register): a replay after a crash then
     finds other content under a new generation, never under this one. */
  if (memcmp(f->rec.content_hash, h, 16) != 0)
    tdm__set_fresh(t, f, 1);
  memcpy(f->rec.content_hash, h, 16);
  if ((other != 0 && other != f->rec.id) || forgotten) {
    duplicate(t, f, path, other); /* other 0: of a forgotten file */
    close(fd);
    return 0;
  }
  f->rec.dup_of = 0;
  if (tdm__defer(t, f)) /* handed over once its record is durable */
    return hold(t, f, fd, kind);
  return deliver_new(t, f, path, fd, kind, h);
}

int tdm__whole_look(tdm_t *t, const char *path, const struct stat *lst,
                    unsigned hints) {
  tdm_file_t *f;
  int rc;

  if (t->stop)
    return TDM_ESTOPPED;
  t->stats.files_seen++;
  f = tdm__filetable_get(&t->files, (uint64_t)lst->st_dev,
                         (uint64_t)lst->st_ino);
  if (f == NULL) {
    tdm_file_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.state = TDM_FILE_PENDING;
    rec.size = (uint64_t)lst->st_size;
    rec.mtime_ns = -1; /* never looked at completely */
    if ((f = tdm__track(t, path, lst, &rec)) == NULL)
      return -ENOMEM;
  } else {
    f->seen = 1;
    if (tdm__file_seen_at(t, f, path) != 0)
      return -ENOMEM;
    if (f->inflight)
      return 0; /* its outcome is awaited */
    if (f->deferred)
      return 0; /* tdm__flush_fresh hands it over, or looks again */
    if (tdm__file_unchanged(f, lst) && f->rec.state != TDM_FILE_PENDING)
      return 0; /* done, duplicate or failed, and unchanged */
    /* A handled file whose stat changed keeps its state until its content
       is hashed: only a new hash makes a new version (complete()). */
  }
  f->seen = 1;
  if (!(hints & (TDM_HINT_COMPLETE | TDM_HINT_CLOSED)) &&
      !settled(t, mtime_ns(lst))) {
    tdm__set_waiting(t, f, 1);
    return 0;
  }
  tdm__set_waiting(t, f, 0);
  rc = complete(t, f, path,
                !(hints & TDM_HINT_COMPLETE) && !settled(t, mtime_ns(lst)));
  if (rc == 0 && t->n_inflight > 0)
    return tdm__whole_poll(t, 0); /* outcomes that came meanwhile */
  if (rc == 0 && (t->after_delete || t->done_dir != NULL) &&
      t->hashes.map.n >= CHECKPOINT_FILES + t->n_inflight)
    return tdm__checkpoint(t); /* done files' hashes waiting: enough */
  return rc != 0 ? rc : tdm__checkpoint_maybe(t);
}

/* Whole mode's deferred(): deliver the content `f` was hashed to through the
   descriptor held since, if it is unchanged (its hash still claimed for it:
   deliver_new keeps the claim); else look at it again, as any file that
   changed: whether it is complete is decided anew (it may still be being
   written). */
static int whole_deferred(tdm_t *t, tdm_file_t *f) {
  char path[PATH_MAX]; /* a look may forget `f` */
  uint8_t h[16];
  tdm_comp_t kind;
  struct stat a;
  int fd, rc;

  snprintf(path, sizeof(path), "%s", f->path);
  if (!unhold(t, f, &fd, &kind, 0)) {
    if (lstat(path, &a) != 0 || !S_ISREG(a.st_mode))
      return 0; /* gone or renamed: the next scan or event finds it */
    return tdm__whole_look(t, path, &a, 0);
  }
  if (fstat(fd, &a) != 0 || f->inflight || f->rec.state != TDM_FILE_PENDING ||
      !tdm__file_unchanged(f, &a)) {
    close(fd); /* changed since it was hashed */
    if (!f->inflight)
      hs_remove(&t->hashes, f->rec.content_hash, f->rec.id);
    if (lstat(path, &a) != 0 || !S_ISREG(a.st_mode))
      return 0;
    return tdm__whole_look(t, path, &a, 0);
  }
  memcpy(h, f->rec.content_hash, 16);
  rc = deliver_new(t, f, path, fd, kind, h);
  if (rc == 0 && t->n_inflight > 0)
    return tdm__whole_poll(t, 0); /* outcomes that came meanwhile */
  return rc != 0 ? rc : tdm__checkpoint_maybe(t);
}

const tdm_mode_ops_t tdm__mode_whole = {
  .look = tdm__whole_look,
  .forget = tdm__whole_forget,
  .batch = tdm__whole_batch,
  .committed = tdm__whole_committed,
  .resume = tdm__whole_resume,
  .poll = tdm__whole_poll,
  .recheck = tdm__recheck_waiting,
  .deferred = whole_deferred,
  .next_settle_ms = tdm__next_settle_ms,
  .free = tdm__whole_free,
};
