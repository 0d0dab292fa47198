/*
 * store.c: the durable state of one state directory (see store.h).
 *
 * Everything LMDB returns is translated here, at the boundary, and logged once
 * naming the directory: positive errno -> -errno, a corrupt or foreign file ->
 * TDM_ESTATE, any other MDB_* -> TDM_ESTORE.
 *
 * File record encoding, format version 2 (all integers little-endian):
 *   u8  version (2)
 *   u64 dev, ino, size; i64 mtime_ns; u64 offset, fp_hash
 *   u32 fp_len, marker_len; u64 marker; u32 state, truncations; u64 pieces
 *   i64 first_seen_ns, updated_ns; u8[16] content_hash; u64 dup_of
 *   u32 attempts; i32 exit_status
 *   i64 ctime_ns                         (version 2 only)
 *   u32 path length, path bytes, NUL
 *   u32 error length, error bytes, NUL   (length 0: no error, NULL)
 * Version 1 records (no ctime_ns) are still read, with ctime_ns = 0
 * ("unknown"); every record is written as version 2.
 * The id is the key (u64 big-endian, so key order is id order). The NULs let
 * a decoded record point into the map instead of copying its strings.
 */
#include "state/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

enum { DB_META, DB_FILES, DB_PROCS, DB_HASHES, N_DBS };
static const char *const db_names[N_DBS] = {"meta", "files", "procs",
                                            "hashes"};

#define REC_VERSION 2
#define REC_FIXED_V1 129 /* version byte + the fixed fields of version 1 */
#define REC_FIXED 137    /* ... and of version 2 (+ ctime_ns) */
#define INSTANCE_BYTES 8 /* meta "instance": random, made once per store */

struct tdm_store_s {
  MDB_env *env;
  MDB_dbi dbi[N_DBS];
  char *dir;   /* as given */
  char *qdir;  /* quoted for log lines */
  const tdm__log_t *log;
  int rdonly;
  int lock_fd; /* DIR/writer.lock (writer), -1 */
  uint64_t next_id;
  int64_t checkpoint_ns;
  uint64_t lost_files;
  char instance[2 * INSTANCE_BYTES + 1]; /* hex; "" if none (old, reader) */
  /* Registry entry: which directory, opened by which process. */
  dev_t dev;
  ino_t ino;
  pid_t pid;
  tdm_store_t *next;
};

static size_t initial_map_size = (size_t)1 << 30;

void tdm__store_set_initial_map_size(size_t bytes) { initial_map_size = bytes; }

/*
 * The state directories open in this process. LMDB must never open one
 * environment twice in a process: closing either handle's descriptor of
 * lock.mdb drops the process's locks on it. Entries made by another pid were
 * inherited through fork() and do not count: the child holds no LMDB locks.
 */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static tdm_store_t *registry;

static int registry_add(tdm_store_t *s) {
  tdm_store_t *e;
  int rc = 0;

  s->pid = getpid();
  pthread_mutex_lock(&registry_mu);
  for (e = registry; e != NULL; e = e->next)
    if (e->dev == s->dev && e->ino == s->ino && e->pid == s->pid)
      break;
  if (e != NULL) {
    rc = TDM_ELOCKED;
  } else {
    s->next = registry;
    registry = s;
  }
  pthread_mutex_unlock(&registry_mu);
  if (rc != 0)
    tdm__error(s->log, "state directory %s is already open in this process",
               s->qdir);
  return rc;
}

/* Removes `s` if it is registered; a no-op otherwise. */
static void registry_remove(tdm_store_t *s) {
  tdm_store_t **p;

  pthread_mutex_lock(&registry_mu);
  for (p = &registry; *p != NULL; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      break;
    }
  pthread_mutex_unlock(&registry_mu);
}

/* Byte order helpers. */
static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/*
 * Translate an LMDB result (MDB_* code or positive errno) and log it once,
 * naming the directory and what failed.
 */
static int fail(const tdm_store_t *s, int rc, const char *what) {
  switch (rc) {
  case MDB_INVALID:
  case MDB_VERSION_MISMATCH:
  case MDB_CORRUPTED:
  case MDB_PAGE_NOTFOUND:
  case MDB_INCOMPATIBLE:
    tdm__error(s->log, "%s: not a tidemark state store or corrupt (lmdb: %s)",
               s->qdir, mdb_strerror(rc));
    return TDM_ESTATE;
  case EIO:
  case ENOSPC: {
    /* LMDB reports a short write on a full disk as EIO: say what it is. */
    struct statvfs v;
    if (statvfs(s->dir, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize < (1u << 20)) {
      tdm__error(s->log, "%s: %s failed: the filesystem holding it is full "
                 "(lmdb: %s)", s->qdir, what, mdb_strerror(rc));
      return -ENOSPC;
    }
  }
  /* fall through */
  default:
    tdm__error(s->log, "%s: %s failed: %s", s->qdir, what, mdb_strerror(rc));
    return rc > 0 ? -rc : TDM_ESTORE;
  }
}

/* Log a failed system call on `name` inside the directory; returns -errno. */
static int fail_errno(const tdm_store_t *s, const char *op, const char *name) {
  int err = errno;
  tdm__error(s->log, "%s: cannot %s %s: %s", s->qdir, op, name, strerror(err));
  return -err;
}

/* Encoded size of `r`: its fixed part and its two strings with their NULs. */
static size_t rec_size(const tdm_file_rec_t *r) {
  size_t plen = r->path != NULL ? strlen(r->path) : 0;
  size_t elen = r->error != NULL ? strlen(r->error) : 0;
  return REC_FIXED + 4 + plen + 1 + 4 + elen + 1;
}

static uint8_t *put_str(uint8_t *p, const char *str) {
  size_t len = str != NULL ? strlen(str) : 0;
  put_le(p, len, 4);
  memcpy(p + 4, str != NULL ? str : "", len + 1);
  return p + 4 + len + 1;
}

/* Encode `r` into `p`, which holds rec_size(r) bytes. A NULL path is "". */
static void rec_encode(const tdm_file_rec_t *r, uint8_t *p) {
  *p++ = REC_VERSION;
  put_le(p, r->dev, 8), p += 8;
  put_le(p, r->ino, 8), p += 8;
  put_le(p, r->size, 8), p += 8;
  put_le(p, (uint64_t)r->mtime_ns, 8), p += 8;
  put_le(p, r->offset, 8), p += 8;
  put_le(p, r->fp_hash, 8), p += 8;
  put_le(p, r->fp_len, 4), p += 4;
  put_le(p, r->marker_len, 4), p += 4;
  put_le(p, r->marker, 8), p += 8;
  put_le(p, r->state, 4), p += 4;
  put_le(p, r->truncations, 4), p += 4;
  put_le(p, r->pieces, 8), p += 8;
  put_le(p, (uint64_t)r->first_seen_ns, 8), p += 8;
  put_le(p, (uint64_t)r->updated_ns, 8), p += 8;
  memcpy(p, r->content_hash, 16), p += 16;
  put_le(p, r->dup_of, 8), p += 8;
  put_le(p, r->attempts, 4), p += 4;
  put_le(p, (uint32_t)r->exit_status, 4), p += 4;
  put_le(p, (uint64_t)r->ctime_ns, 8), p += 8;
  p = put_str(p, r->path);
  put_str(p, r->error);
}

/*
 * Point *str at a length-prefixed, NUL-terminated string at `p` that must end
 * by `end` and hold no other NUL. Returns the byte after it, NULL if invalid.
 */
static const uint8_t *get_str(const uint8_t *p, const uint8_t *end,
                              const char **str, uint32_t *len) {
  if (end - p < 4)
    return NULL;
  *len = (uint32_t)get_le(p, 4);
  p += 4;
  if ((size_t)(end - p) <= *len || p[*len] != '\0' ||
      memchr(p, '\0', *len) != NULL)
    return NULL;
  *str = (const char *)p;
  return p + *len + 1;
}

/*
 * Decode a record value into `r` (all but id). Its strings point into `v`.
 * Returns 0, or -1 if it is not a well-formed version-1 or -2 record.
 */
static int rec_decode(const MDB_val *v, tdm_file_rec_t *r) {
  const uint8_t *p = v->mv_data, *end = p + v->mv_size;
  uint32_t elen, plen;
  int version;

  if (v->mv_size < REC_FIXED_V1)
    return -1;
  version = *p++;
  if (version != 1 && (version != REC_VERSION || v->mv_size < REC_FIXED))
    return -1;
  r->dev = get_le(p, 8), p += 8;
  r->ino = get_le(p, 8), p += 8;
  r->size = get_le(p, 8), p += 8;
  r->mtime_ns = (int64_t)get_le(p, 8), p += 8;
  r->offset = get_le(p, 8), p += 8;
  r->fp_hash = get_le(p, 8), p += 8;
  r->fp_len = (uint32_t)get_le(p, 4), p += 4;
  r->marker_len = (uint32_t)get_le(p, 4), p += 4;
  r->marker = get_le(p, 8), p += 8;
  r->state = (uint32_t)get_le(p, 4), p += 4;
  r->truncations = (uint32_t)get_le(p, 4), p += 4;
  r->pieces = get_le(p, 8), p += 8;
  r->first_seen_ns = (int64_t)get_le(p, 8), p += 8;
  r->updated_ns = (int64_t)get_le(p, 8), p += 8;
  memcpy(r->content_hash, p, 16), p += 16;
  r->dup_of = get_le(p, 8), p += 8;
  r->attempts = (uint32_t)get_le(p, 4), p += 4;
  r->exit_status = (int32_t)(uint32_t)get_le(p, 4), p += 4;
  r->ctime_ns = 0; /* version 1: unknown */
  if (version >= 2)
    r->ctime_ns = (int64_t)get_le(p, 8), p += 8;
  if ((p = get_str(p, end, &r->path, &plen)) == NULL ||
      (p = get_str(p, end, &r->error, &elen)) == NULL || p != end)
    return -1;
  if (elen == 0)
    r->error = NULL;
  return 0;
}

int tdm__store_record_decode(const void *data, size_t len, tdm_file_rec_t *r) {
  MDB_val v = {len, (void *)data};
  return rec_decode(&v, r);
}

size_t tdm__store_record_encode(const tdm_file_rec_t *r, void *buf, size_t cap) {
  size_t need = rec_size(r);
  if (need <= cap)
    rec_encode(r, buf);
  return need;
}

/*
 * Begin a read transaction. A writer in another process may have grown the
 * map past ours (MDB_MAP_RESIZED): adopt its size and try again. Legal
 * because the store is used from one thread and has no other txn open.
 */
static int begin_read(MDB_env *env, const tdm_store_t *s, MDB_txn **txn) {
  size_t last = 0;
  int rc;

  while ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn)) ==
         MDB_MAP_RESIZED) {
    MDB_envinfo info;
    if (s != NULL)
      tdm__debug(s->log, "%s: the writer grew the map; following it", s->qdir);
    if ((rc = mdb_env_set_mapsize(env, 0)) != 0)
      break;
    /* A map that did not grow and is still too small for the data is not a
       writer at work but a damaged meta page: retrying would spin forever. */
    mdb_env_info(env, &info);
    if (info.me_mapsize == last)
      return MDB_CORRUPTED;
    last = info.me_mapsize;
  }
  return rc;
}

static int read_txn(tdm_store_t *s, MDB_txn **txn) {
  return begin_read(s->env, s, txn);
}

/*
 * Run `fn` in one write transaction and commit it. When the map is full the
 * transaction is aborted (nothing applied), the map doubled and `fn` replayed
 * from the start, so `fn` must depend on its arguments only. Resizing is
 * legal here because no transaction is open in this process (see read_txn).
 * Returns an untranslated LMDB result.
 */
static int write_txn(tdm_store_t *s,
                     int (*fn)(tdm_store_t *s, MDB_txn *txn, const void *arg),
                     const void *arg) {
  for (;;) {
    MDB_envinfo info;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

    if (rc != 0)
      return rc;
    rc = fn(s, txn, arg);
    if (rc == 0)
      rc = mdb_txn_commit(txn); /* frees txn, on failure too */
    else
      mdb_txn_abort(txn);
    if (rc != MDB_MAP_FULL)
      return rc;
    mdb_env_info(s->env, &info);
    if ((rc = mdb_env_set_mapsize(s->env, info.me_mapsize * 2)) != 0)
      return rc;
    tdm__debug(s->log, "%s: state store map grown to %zu KiB", s->qdir,
               info.me_mapsize * 2 / 1024);
  }
}

/*
 * Read meta `key`, a little-endian integer of `size` bytes, into *out.
 * Returns 0, MDB_NOTFOUND (*out untouched), TDM_ESTATE (logged) for a value
 * of the wrong size, or another LMDB code.
 */
static int meta_get(const tdm_store_t *s, MDB_txn *txn, const char *key,
                    int size, uint64_t *out) {
  MDB_val k = {strlen(key), (void *)key}, v;
  int rc = mdb_get(txn, s->dbi[DB_META], &k, &v);

  if (rc != 0)
    return rc;
  if (v.mv_size != (size_t)size) {
    tdm__error(s->log, "%s: state store meta record '%s' is corrupt", s->qdir,
               key);
    return TDM_ESTATE;
  }
  *out = get_le(v.mv_data, size);
  return 0;
}

static int meta_put(const tdm_store_t *s, MDB_txn *txn, const char *key,
                    uint64_t value, int size) {
  uint8_t buf[8];
  MDB_val k = {strlen(key), (void *)key}, v = {(size_t)size, buf};

  put_le(buf, value, size);
  return mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
}

/*
 * The store's instance id (meta "instance", INSTANCE_BYTES random bytes) into
 * s->instance as hex. A writer makes it when missing (a new store, or one
 * made before 0.2: the record is new, the schema unchanged); a reader of a
 * store without one leaves "". Returns 0, TDM_ESTATE (logged) for a record of
 * the wrong size, -errno when no random bytes could be had, or an LMDB code.
 */
static int instance_load(tdm_store_t *s, MDB_txn *txn) {
  static const char hex[] = "0123456789abcdef";
  MDB_val k = {8, (void *)"instance"}, v;
  uint8_t id[INSTANCE_BYTES];
  int rc = mdb_get(txn, s->dbi[DB_META], &k, &v);

  s->instance[0] = '\0';
  if (rc == MDB_NOTFOUND) {
    size_t got = 0;
    if (s->rdonly)
      return 0;
    while (got < sizeof(id)) {
      ssize_t n = getrandom(id + got, sizeof(id) - got, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        int err = errno;
        tdm__error(s->log, "%s: cannot make an instance id: getrandom: %s",
                   s->qdir, strerror(err));
        return -err;
      }
      got += (size_t)n;
    }
    v.mv_size = sizeof(id);
    v.mv_data = id;
    if ((rc = mdb_put(txn, s->dbi[DB_META], &k, &v, 0)) != 0)
      return rc;
  } else if (rc != 0) {
    return rc;
  } else if (v.mv_size != INSTANCE_BYTES) {
    tdm__error(s->log, "%s: state store meta record 'instance' is corrupt",
               s->qdir);
    return TDM_ESTATE;
  }
  for (size_t i = 0; i < INSTANCE_BYTES; i++) {
    s->instance[2 * i] = hex[((const uint8_t *)v.mv_data)[i] >> 4];
    s->instance[2 * i + 1] = hex[((const uint8_t *)v.mv_data)[i] & 15];
  }
  s->instance[2 * INSTANCE_BYTES] = '\0';
  return 0;
}

/* Open "meta" (creating it and the schema record in a `fresh` store) and
   check the schema. Returns 0, TDM_ESTATE (logged) or an LMDB code. */
static int open_schema(tdm_store_t *s, MDB_txn *txn, int fresh) {
  uint64_t schema = 0;
  int rc = mdb_dbi_open(txn, db_names[DB_META], fresh ? MDB_CREATE : 0,
                        &s->dbi[DB_META]);
  if (rc == 0 && fresh)
    rc = meta_put(s, txn, "schema", TDM_STORE_SCHEMA, 4);
  if (rc == 0)
    rc = meta_get(s, txn, "schema", 4, &schema);
  if (rc == MDB_NOTFOUND) {
    tdm__error(s->log, "%s: not a tidemark state store (no schema record)",
               s->qdir);
    return TDM_ESTATE;
  }
  if (rc == 0 && schema != TDM_STORE_SCHEMA) {
    tdm__error(s->log,
               "%s: state store has schema %" PRIu64
               ", this tidemark supports schema %u",
               s->qdir, schema, TDM_STORE_SCHEMA);
    return TDM_ESTATE;
  }
  return rc;
}

/* Open the databases after "meta" (`create`: MDB_CREATE or 0). Returns 0,
   TDM_ESTATE (logged: one is missing) or an LMDB code. */
static int open_tables(tdm_store_t *s, MDB_txn *txn, unsigned create) {
  int rc = 0;
  for (int i = DB_META + 1; rc == 0 && i < N_DBS; i++)
    if ((rc = mdb_dbi_open(txn, db_names[i], create, &s->dbi[i])) ==
        MDB_NOTFOUND) {
      tdm__error(s->log, "%s: state store is damaged: database '%s' is missing",
                 s->qdir, db_names[i]);
      rc = TDM_ESTATE;
    }
  return rc;
}

/* next_id, checkpoint_ns and lost_files (each left as it is when missing)
   and the instance id. Returns 0, TDM_ESTATE (logged), -errno or an LMDB
   code. */
static int load_meta(tdm_store_t *s, MDB_txn *txn, uint64_t *next_id,
                     uint64_t *ns, uint64_t *lost) {
  int rc = meta_get(s, txn, "next_id", 8, next_id);
  if (rc == MDB_NOTFOUND)
    rc = 0;
  if (rc == 0 &&
      (rc = meta_get(s, txn, "checkpoint_ns", 8, ns)) == MDB_NOTFOUND)
    rc = 0;
  if (rc == 0 && (rc = meta_get(s, txn, "lost_files", 8, lost)) == MDB_NOTFOUND)
    rc = 0;
  if (rc == 0)
    rc = instance_load(s, txn);
  return rc;
}

/*
 * Open the named databases once for the life of the environment: in a write
 * transaction for the writer (creating them, with the schema record, in an
 * empty environment), in a read transaction for a reader (handles opened in
 * a read txn last only if it is committed). Checks the schema and loads
 * next_id and checkpoint_ns. *fresh = whether the store was just created.
 * Returns a translated code, logged.
 */
static int open_dbs(tdm_store_t *s, int *fresh) {
  uint64_t next_id = 1, ns = 0, lost = 0;
  MDB_dbi main_dbi;
  MDB_stat st;
  MDB_txn *txn;
  int rc;

  rc = s->rdonly ? read_txn(s, &txn) : mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc != 0)
    return fail(s, rc, "opening the store");
  rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
  if (rc == 0)
    rc = mdb_stat(txn, main_dbi, &st);
  if (rc != 0)
    goto lmdb_err;
  *fresh = st.ms_entries == 0;
  if (*fresh && s->rdonly) {
    tdm__error(s->log, "%s: no tidemark state store here (empty environment)",
               s->qdir);
    rc = -ENOENT;
    goto out;
  }
  rc = open_schema(s, txn, *fresh);
  if (rc == 0)
    rc = open_tables(s, txn, *fresh ? MDB_CREATE : 0);
  if (rc == 0)
    rc = load_meta(s, txn, &next_id, &ns, &lost);
  if (rc == TDM_ESTATE)
    goto out;
  if (rc == 0) {
    rc = mdb_txn_commit(txn);
    txn = NULL;
  }
  if (rc == 0) {
    s->next_id = next_id;
    s->checkpoint_ns = (int64_t)ns;
    s->lost_files = lost;
    return 0;
  }
lmdb_err:
  rc = fail(s, rc, "opening the store");
out:
  if (txn != NULL)
    mdb_txn_abort(txn);
  return rc;
}

/*
 * Writer: take DIR/writer.lock (flock, so it goes with the descriptor, even on
 * kill -9) and write our pid into it for the next one to name.
 */
static int lock_writer(tdm_store_t *s) {
  char path[4096 + 16], buf[32];
  ssize_t n;
  long pid;

  snprintf(path, sizeof(path), "%s/writer.lock", s->dir);
  s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->lock_fd < 0)
    return fail_errno(s, "open", "writer.lock");
  if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK)
      return fail_errno(s, "lock", "writer.lock");
    /* The holder writes its pid right after locking: it may not be there. */
    n = pread(s->lock_fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    pid = strtol(buf, NULL, 10);
    if (pid > 0)
      tdm__error(s->log,
                 "state directory %s is in use by another tidemark (pid %ld)",
                 s->qdir, pid);
    else
      tdm__error(s->log,
                 "state directory %s is in use by another tidemark (pid "
                 "unknown)",
                 s->qdir);
    return TDM_ELOCKED;
  }
  n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
  if (ftruncate(s->lock_fd, 0) != 0 ||
      pwrite(s->lock_fd, buf, (size_t)n, 0) != n)
    return fail_errno(s, "write", "writer.lock");
  return 0;
}

/*
 * Make sure `dir` exists (the writer creates its last component) and is a
 * directory holding, for a reader, a data file; note its identity.
 */
static int check_dir(tdm_store_t *s) {
  char path[4096 + 16];
  struct stat st;

  if (!s->rdonly && mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
    int err = errno;
    tdm__error(s->log, "cannot create state directory %s: %s%s", s->qdir,
               strerror(err),
               err == ENOENT ? " (its parent directory does not exist)" : "");
    return -err;
  }
  if (stat(s->dir, &st) != 0) {
    int err = errno;
    if (err == ENOENT)
      tdm__error(s->log, "%s: no tidemark state store here", s->qdir);
    else
      tdm__error(s->log, "state directory %s: %s", s->qdir, strerror(err));
    return -err;
  }
  if (!S_ISDIR(st.st_mode)) {
    tdm__error(s->log, "state directory %s is not a directory", s->qdir);
    return -ENOTDIR;
  }
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  /* A reader must not leave a lock.mdb behind in a directory with no store. */
  snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
  if (s->rdonly && stat(path, &st) != 0) {
    int err = errno;
    tdm__error(s->log, "%s: no tidemark state store here (data.mdb: %s)",
               s->qdir, strerror(err));
    return -err;
  }
  return 0;
}

static int open_env(tdm_store_t *s) {
  int rc, fd, dead = 0;

  rc = mdb_env_create(&s->env);
  if (rc == 0)
    rc = mdb_env_set_maxdbs(s->env, N_DBS);
  /* MDB_NOTLS: read transactions may run on pool threads. No map size is
     set: a new environment starts small, an existing one at the size it
     grew to; the writer adjusts it once the databases are open. */
  if (rc == 0)
    rc = mdb_env_open(s->env, s->dir,
                      MDB_NOTLS | (s->rdonly ? MDB_RDONLY : 0), 0600);
  /* LMDB 0.9.24 opens every descriptor close-on-exec but the main data.mdb
     one: fix it, or each program the exec processor runs inherits it. */
  if (rc == 0 && mdb_env_get_fd(s->env, &fd) == 0 &&
      fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC) != 0)
    return fail_errno(s, "set close-on-exec on", "data.mdb");
  if (rc == EACCES && s->rdonly) {
    tdm__error(s->log,
               "%s: cannot open the store: %s (a reader needs read access "
               "to data.mdb and write access to lock.mdb)",
               s->qdir, strerror(rc));
    return -rc;
  }
  /* Free the slots of readers that died inside a transaction. */
  if (rc == 0)
    rc = mdb_reader_check(s->env, &dead);
  if (rc != 0)
    return fail(s, rc, "opening the store");
  if (dead > 0)
    tdm__debug(s->log, "%s: cleared %d stale reader slot(s)", s->qdir, dead);
  return 0;
}

/* ---- the check at open ------------------------------------------------------
 *
 * LMDB has no checksums and follows whatever page numbers and sizes it finds:
 * a damaged data.mdb can make it read outside the map (SIGSEGV, SIGBUS),
 * fail an assertion (SIGABRT) or loop. So before this process touches an
 * existing store, a forked child walks all of it - the free list, the main
 * database and every record of every named database, each decoded as the
 * store would - and reports back through its exit status. A child that dies
 * by a signal, does not finish, or finds a record that does not decode means
 * a corrupt store: reported naming the directory, TDM_ESTATE. An LMDB error
 * the child meets (a foreign file, a version mismatch, MDB_CORRUPTED) is left
 * to the open below, which has a clear message for each.
 *
 * The cost is one sequential read of the map, in a process that shares the
 * page cache with ours (the load that follows finds the pages in memory).
 */

#define CHECK_OK 0
#define CHECK_LMDB_ERROR 3   /* LMDB returned an error: the open reports it */
#define CHECK_BAD_RECORD 4   /* a record does not decode: why, on stderr */
#define CHECK_TIMEOUT_S 600  /* a walk that takes longer is stuck in a loop */

TDM__PRINTF(1, 2)
static void check_say(const char *fmt, ...) {
  char buf[256];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n > 0)
    (void)!write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Walk every entry of `dbi` (named `name`), checking it as database `which`
   (N_DBS: the main database, -1: the free list). */
static int check_db(MDB_env *env, MDB_txn *txn, MDB_dbi dbi, int which,
                    const char *name) {
  size_t maxkey = (size_t)mdb_env_get_maxkeysize(env);
  size_t last_pgno;
  volatile uint8_t sink = 0;
  MDB_envinfo info;
  MDB_cursor *cur;
  MDB_val k, v;
  int rc;

  if (mdb_cursor_open(txn, dbi, &cur) != 0)
    return CHECK_LMDB_ERROR;
  mdb_env_info(env, &info);
  last_pgno = info.me_last_pgno;
  while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
    const uint8_t *p = v.mv_data;
    tdm_file_rec_t r;
    int bad = 0;

    /* Touch every byte, as a reader of the record would. */
    for (size_t i = 0; i < v.mv_size; i += 512)
      sink ^= p[i];
    if (v.mv_size > 0)
      sink ^= p[v.mv_size - 1];
    switch (which) {
    case DB_FILES:
      bad = k.mv_size != 8 || rec_decode(&v, &r) != 0;
      break;
    case DB_PROCS:
      bad = k.mv_size == 0 || k.mv_size > maxkey || v.mv_size > TDM_RESTORE_MAX;
      break;
    case DB_HASHES:
      bad = k.mv_size != 16 || v.mv_size != 8;
      break;
    case DB_META:
      if (k.mv_size == 6 && memcmp(k.mv_data, "schema", 6) == 0)
        bad = v.mv_size != 4;
      else if ((k.mv_size == 7 && memcmp(k.mv_data, "next_id", 7) == 0) ||
               (k.mv_size == 13 && memcmp(k.mv_data, "checkpoint_ns", 13) == 0))
        bad = v.mv_size != 8;
      break;
    case -1: { /* the free list: a count of page numbers, then the numbers,
                  each a page of the file past the two meta pages, in
                  descending order (LMDB's IDL) */
      size_t n, prev = SIZE_MAX;
      if (v.mv_size < sizeof(size_t)) {
        bad = 1;
        break;
      }
      memcpy(&n, p, sizeof(n));
      bad = n > v.mv_size / sizeof(size_t) ||
            (n + 1) * sizeof(size_t) != v.mv_size;
      for (size_t i = 1; !bad && i <= n; i++) {
        size_t pg;
        memcpy(&pg, p + i * sizeof(size_t), sizeof(pg));
        bad = pg < 2 || pg > last_pgno || pg >= prev;
        prev = pg;
      }
      break;
    }
    default:
      break;
    }
    if (bad && which == DB_FILES && k.mv_size == 8) {
      check_say("file record %" PRIu64 " does not decode",
                get_be64(k.mv_data));
      mdb_cursor_close(cur);
      return CHECK_BAD_RECORD;
    }
    if (bad) {
      check_say("a record of database '%s' does not decode", name);
      mdb_cursor_close(cur);
      return CHECK_BAD_RECORD;
    }
  }
  mdb_cursor_close(cur);
  (void)sink;
  return rc == MDB_NOTFOUND ? CHECK_OK : CHECK_LMDB_ERROR;
}

/*
 * The structure of the B-trees, read with pread() (so it cannot fault) from
 * the snapshot of txn `txnid`: LMDB trusts page headers it never looks at on
 * a read (a write copies a page by its header's bounds), so a read walk alone
 * misses a damaged header. LMDB 0.9's on-disk format: a 16-byte page header
 * (pgno, pad, flags, lower/upper or an overflow page count), 16-bit node
 * offsets after it, 8-byte node headers; the meta pages 0 and 1 hold the
 * roots of the free and main databases, the main database's leaves those of
 * the named ones. Every page reached is checked: within the file, its own
 * number, its type, its bounds, each node inside the page, reached once.
 * Returns CHECK_OK (also when the snapshot's meta page is not found: a
 * writer moved on, nothing is claimed), or CHECK_BAD_RECORD with why.
 */
enum {
  P_BRANCH = 0x01, P_LEAF = 0x02, P_OVERFLOW = 0x04, P_LEAF2 = 0x20,
  F_BIGDATA = 0x01, F_SUBDATA = 0x02, F_DUPDATA = 0x04,
  PAGEHDR = 16, NODEHDR = 8, DBREC = 48, MAX_DEPTH = 32
};

typedef struct pagewalk {
  int fd;
  size_t psize;
  uint64_t last_pg;
  uint8_t *seen;   /* bit per page */
  uint8_t *buf;    /* psize bytes */
} pagewalk_t;

static int pw_bad(uint64_t pg, const char *why) {
  check_say("page %" PRIu64 ": %s", pg, why);
  return CHECK_BAD_RECORD;
}

/* Mark page `pg` seen; a page reached twice makes a cycle or a shared page. */
static int pw_visit(pagewalk_t *w, uint64_t pg) {
  if (pg < 2 || pg > w->last_pg)
    return pw_bad(pg, "a page number outside the file");
  if (w->seen[pg / 8] & (1u << (pg % 8)))
    return pw_bad(pg, "reached twice");
  w->seen[pg / 8] |= (uint8_t)(1u << (pg % 8));
  return CHECK_OK;
}

static int pw_read(pagewalk_t *w, uint64_t pg) {
  ssize_t n = pread(w->fd, w->buf, w->psize, (off_t)(pg * w->psize));
  if (n != (ssize_t)w->psize)
    return pw_bad(pg, "cannot be read");
  if (get_le(w->buf, 8) != pg)
    return pw_bad(pg, "its header holds another page number");
  return CHECK_OK;
}

static int pw_tree(pagewalk_t *w, uint64_t pg, int depth);

/* The overflow pages at `ov` holding a value of `dsize` bytes: each visited
   once, their header sound. Returns CHECK_OK or the verdict. */
static int pw_overflow(pagewalk_t *w, uint64_t ov, uint64_t dsize) {
  uint64_t pages;
  int rc;

  if ((rc = pw_visit(w, ov)) != CHECK_OK || (rc = pw_read(w, ov)) != CHECK_OK)
    return rc;
  pages = get_le(w->buf + 12, 4);
  if (!(get_le(w->buf + 10, 2) & P_OVERFLOW) || pages == 0 ||
      pages > w->last_pg - ov + 1 || dsize > pages * w->psize - PAGEHDR)
    return pw_bad(ov, "a damaged overflow page");
  for (uint64_t k = 1; k < pages && rc == CHECK_OK; k++)
    rc = pw_visit(w, ov + k);
  return rc;
}

/* Node `i` of page `pg` (a copy in `page`, its header's `flags` and
   `upper`, at `depth`): within the page, and what it points to walked (a
   child page, overflow pages, a named database's tree). Returns CHECK_OK or
   the verdict. */
static int pw_node(pagewalk_t *w, uint64_t pg, const uint8_t *page,
                   unsigned flags, unsigned upper, unsigned i, int depth) {
  size_t off = (size_t)get_le(page + PAGEHDR + 2 * i, 2);
  const uint8_t *node = page + off;
  uint64_t lo, hi, nflags, ksize, dsize, root;

  if (off < upper || off + NODEHDR > w->psize)
    return pw_bad(pg, "a node outside the page");
  lo = get_le(node, 2);
  hi = get_le(node + 2, 2);
  nflags = get_le(node + 4, 2);
  ksize = get_le(node + 6, 2);
  if (off + NODEHDR + ksize > w->psize)
    return pw_bad(pg, "a key beyond the page");
  if (flags & P_BRANCH)
    return pw_tree(w, lo | hi << 16 | nflags << 32, depth + 1);
  dsize = lo | hi << 16;
  if (nflags & F_BIGDATA) {
    if (off + NODEHDR + ksize + 8 > w->psize)
      return pw_bad(pg, "a node beyond the page");
    return pw_overflow(w, get_le(node + NODEHDR + ksize, 8), dsize);
  }
  if (off + NODEHDR + ksize + dsize > w->psize)
    return pw_bad(pg, "a value beyond the page");
  if (nflags & F_SUBDATA) {
    if (dsize != DBREC)
      return pw_bad(pg, "a database record of the wrong size");
    root = get_le(node + NODEHDR + ksize + 40, 8);
    if (root != UINT64_MAX)
      return pw_tree(w, root, 0);
  }
  /* F_DUPDATA, sorted duplicates: not used by the store; LMDB's own
     checks */
  return CHECK_OK;
}

static int pw_tree(pagewalk_t *w, uint64_t pg, int depth) {
  uint8_t *page;
  unsigned flags, lower, upper, n;
  int rc;

  if (depth > MAX_DEPTH)
    return pw_bad(pg, "a tree deeper than LMDB allows");
  if ((rc = pw_visit(w, pg)) != CHECK_OK || (rc = pw_read(w, pg)) != CHECK_OK)
    return rc;
  flags = (unsigned)get_le(w->buf + 10, 2);
  if (flags & P_LEAF2)
    return CHECK_OK; /* not used by the store: LMDB's own checks */
  if ((flags & (P_BRANCH | P_LEAF)) == 0 ||
      (flags & (P_BRANCH | P_LEAF)) == (P_BRANCH | P_LEAF))
    return pw_bad(pg, "neither a branch nor a leaf page where one belongs");
  lower = (unsigned)get_le(w->buf + 12, 2);
  upper = (unsigned)get_le(w->buf + 14, 2);
  if (lower < PAGEHDR || lower > upper || upper > w->psize || lower % 2 != 0)
    return pw_bad(pg, "its bounds are out of the page");
  n = (lower - PAGEHDR) / 2;
  if ((flags & P_BRANCH) && n == 0)
    return pw_bad(pg, "an empty branch page");
  /* Children are walked after this page's nodes are read: the buffer is
     reused, so keep this page. */
  page = malloc(w->psize);
  if (page == NULL)
    return CHECK_LMDB_ERROR;
  memcpy(page, w->buf, w->psize);
  rc = CHECK_OK;
  for (unsigned i = 0; i < n && rc == CHECK_OK; i++)
    rc = pw_node(w, pg, page, flags, upper, i, depth);
  free(page);
  return rc;
}

static int check_pages(int fd, uint64_t txnid) {
  uint8_t meta[2][PAGEHDR + 136];
  pagewalk_t w;
  struct stat st;
  int which = -1, rc;

  memset(&w, 0, sizeof(w));
  if (fstat(fd, &st) != 0 ||
      pread(fd, meta[0], sizeof(meta[0]), 0) != (ssize_t)sizeof(meta[0]))
    return CHECK_OK;
  w.psize = (size_t)get_le(meta[0] + PAGEHDR + 24, 4); /* free db's md_pad */
  if (w.psize < 512 || w.psize > 65536 || (w.psize & (w.psize - 1)) != 0 ||
      pread(fd, meta[1], sizeof(meta[1]), (off_t)w.psize) !=
          (ssize_t)sizeof(meta[1]))
    return CHECK_OK; /* LMDB's open judges the meta pages */
  for (int m = 0; m < 2; m++)
    if (get_le(meta[m] + PAGEHDR, 4) == 0xBEEFC0DEu &&
        get_le(meta[m] + PAGEHDR + 128, 8) == txnid)
      which = m;
  if (which < 0)
    return CHECK_OK;
  w.fd = fd;
  w.last_pg = get_le(meta[which] + PAGEHDR + 120, 8);
  if (w.last_pg < 1 || w.last_pg >= (uint64_t)st.st_size / w.psize)
    return pw_bad(w.last_pg, "the meta page counts pages the file does not "
                  "hold");
  w.seen = calloc((size_t)(w.last_pg / 8 + 1), 1);
  w.buf = malloc(w.psize);
  if (w.seen == NULL || w.buf == NULL) {
    free(w.seen);
    free(w.buf);
    return CHECK_OK;
  }
  rc = CHECK_OK;
  for (int db = 0; db < 2 && rc == CHECK_OK; db++) { /* free, main */
    uint64_t root = get_le(meta[which] + PAGEHDR + 24 + db * DBREC + 40, 8);
    if (root != UINT64_MAX)
      rc = pw_tree(&w, root, 0);
  }
  free(w.seen);
  free(w.buf);
  return rc == CHECK_LMDB_ERROR ? CHECK_OK : rc;
}

/* The child's walk of the store in `dir`. Returns its exit status. */
static int check_walk(const char *dir) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_dbi dbi;
  int rc = CHECK_LMDB_ERROR;

  if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, N_DBS) != 0 ||
      mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600) != 0)
    goto out;
  if ((rc = begin_read(env, NULL, &txn)) != 0) {
    txn = NULL;
    if (rc == MDB_CORRUPTED) { /* see begin_read */
      check_say("its meta page gives a map size smaller than its data");
      rc = CHECK_BAD_RECORD;
    } else {
      rc = CHECK_LMDB_ERROR;
    }
    goto out;
  }
  {
    int fd;
    if (mdb_env_get_fd(env, &fd) == 0 &&
        (rc = check_pages(fd, (uint64_t)mdb_txn_id(txn))) != CHECK_OK)
      goto out;
  }
  if ((rc = check_db(env, txn, 0, -1, "(free pages)")) != CHECK_OK)
    goto out;
  if (mdb_dbi_open(txn, NULL, 0, &dbi) != 0) {
    rc = CHECK_LMDB_ERROR;
    goto out;
  }
  if ((rc = check_db(env, txn, dbi, N_DBS, "(main)")) != CHECK_OK)
    goto out;
  /* A store of another schema is not decoded here: the open says so. */
  if (mdb_dbi_open(txn, db_names[DB_META], 0, &dbi) == 0) {
    MDB_val k = {6, (void *)"schema"}, v;
    if (mdb_get(txn, dbi, &k, &v) == 0 &&
        (v.mv_size != 4 || get_le(v.mv_data, 4) != TDM_STORE_SCHEMA)) {
      rc = CHECK_OK;
      goto out;
    }
  }
  for (int i = 0; i < N_DBS; i++) {
    int r = mdb_dbi_open(txn, db_names[i], 0, &dbi);
    if (r == MDB_NOTFOUND)
      continue; /* the open says which one is missing */
    if (r != 0) {
      rc = CHECK_LMDB_ERROR;
      goto out;
    }
    if ((rc = check_db(env, txn, dbi, i, db_names[i])) != CHECK_OK)
      goto out;
  }
out:
  if (txn != NULL)
    mdb_txn_abort(txn);
  if (env != NULL)
    mdb_env_close(env);
  return rc;
}

/* Run check_walk() in a child (see above). 0, or TDM_ESTATE (logged). */
static int check_store(tdm_store_t *s) {
  char path[4096 + 16], said[256], why[320];
  struct stat st;
  size_t got = 0;
  int fds[2], status = 0;
  pid_t pid, parent;

  snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
  if (stat(path, &st) != 0 || st.st_size == 0)
    return 0; /* nothing to check: the open creates it or says why not */
  if (pipe2(fds, O_CLOEXEC) != 0)
    return 0; /* no check possible: carry on as before */
  fflush(NULL); /* nothing buffered may be written twice */
  parent = getpid();
  pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return 0;
  }
  if (pid == 0) {
    /* The child must not keep the writer lock alive: if the parent is
       killed meanwhile, a restart would be refused until the walk ends.
       Closing this copy leaves the parent's lock in place (flock: released
       when every descriptor of the open file is closed); and the child dies
       with its parent. */
    if (s->lock_fd >= 0)
      close(s->lock_fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(CHECK_OK); /* the parent is already gone */
    /* LMDB's assertion messages, and ours, go to the parent. */
    dup2(fds[1], 2);
    signal(SIGALRM, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    alarm(CHECK_TIMEOUT_S);
    _exit(check_walk(s->dir));
  }
  close(fds[1]);
  for (;;) { /* read to EOF first: a child blocked on a full pipe never exits */
    char buf[512];
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (got < sizeof(said) - 1) {
      size_t take = (size_t)n < sizeof(said) - 1 - got ? (size_t)n
                                                        : sizeof(said) - 1 - got;
      memcpy(said + got, buf, take);
      got += take;
    }
  }
  close(fds[0]);
  said[got] = '\0';
  said[strcspn(said, "\n")] = '\0';
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) &&
      (WEXITSTATUS(status) == CHECK_OK ||
       WEXITSTATUS(status) == CHECK_LMDB_ERROR))
    return 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == CHECK_BAD_RECORD)
    snprintf(why, sizeof(why), "%s", said);
  else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
    snprintf(why, sizeof(why), "reading it did not finish in %d s",
             CHECK_TIMEOUT_S);
  else if (WIFSIGNALED(status))
    snprintf(why, sizeof(why), "reading it crashed a check process (signal "
             "%d, %s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(why, sizeof(why), "reading it failed a check process (exit "
             "status %d)", WEXITSTATUS(status));
  tdm__error(s->log, "state store %s is corrupt: %s; move it away (the files "
             "will be read again from the start) or restore a backup",
             s->qdir, why);
  return TDM_ESTATE;
}

int tdm_store_open(const char *dir, unsigned flags, const tdm__log_t *log,
                   tdm_store_t **out) {
  tdm_store_t *s;
  size_t qcap;
  int rc, fresh = 0;

  *out = NULL;
  s = calloc(1, sizeof(*s));
  if (s == NULL) {
    tdm__error(log, "state directory %s: out of memory", dir);
    return -ENOMEM;
  }
  s->log = log;
  s->lock_fd = -1;
  s->rdonly = (flags & TDM_STORE_RDONLY) != 0;
  qcap = strlen(dir) * 4 + 6; /* worst case of tdm__quote: \xNN per byte */
  s->dir = strdup(dir);
  s->qdir = malloc(qcap);
  if (s->dir == NULL || s->qdir == NULL) {
    tdm__error(log, "state directory %s: out of memory", dir);
    rc = -ENOMEM;
    goto err;
  }
  tdm__quote(dir, s->qdir, qcap);
  if (strlen(dir) > 4096) {
    tdm__error(log, "state directory %.64s...: path too long", s->qdir);
    rc = -ENAMETOOLONG;
    goto err;
  }

  if ((rc = check_dir(s)) != 0 || (rc = registry_add(s)) != 0)
    goto err;
  if (!s->rdonly && (rc = lock_writer(s)) != 0)
    goto err;
  if ((rc = check_store(s)) != 0)
    goto err;
  if ((rc = open_env(s)) != 0 || (rc = open_dbs(s, &fresh)) != 0)
    goto err;
  if (!s->rdonly) {
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    if ((fresh || info.me_mapsize < initial_map_size) &&
        (rc = mdb_env_set_mapsize(s->env, initial_map_size)) != 0) {
      rc = fail(s, rc, "sizing the map");
      goto err;
    }
  }
  *out = s;
  return 0;

err:
  tdm_store_close(s);
  return rc;
}

void tdm_store_close(tdm_store_t *s) {
  if (s == NULL)
    return;
  /* Environment first: until it is closed, nobody in this process may open
     the directory again (registry). */
  if (s->env != NULL)
    mdb_env_close(s->env);
  registry_remove(s);
  if (s->lock_fd >= 0)
    close(s->lock_fd);
  free(s->qdir);
  free(s->dir);
  free(s);
}

const char *tdm_store_dir(const tdm_store_t *s) { return s->dir; }

uint64_t tdm_store_next_id(const tdm_store_t *s) { return s->next_id; }

const char *tdm_store_instance(const tdm_store_t *s) { return s->instance; }

int64_t tdm_store_checkpoint_ns(const tdm_store_t *s) {
  return s->checkpoint_ns;
}

uint64_t tdm_store_lost_files(const tdm_store_t *s) { return s->lost_files; }
/*
 * Call `fn` for every entry of database `which`, in key order, inside one
 * read transaction. A non-zero return from `fn` stops the walk and is
 * returned; an LMDB error is logged with `what` ("reading ...").
 */
static int walk(tdm_store_t *s, int which, const char *what,
                int (*fn)(tdm_store_t *s, const MDB_val *k, const MDB_val *v,
                          void *arg),
                void *arg) {
  MDB_cursor *cur;
  MDB_txn *txn;
  MDB_val k, v;
  int rc;

  if ((rc = read_txn(s, &txn)) != 0)
    return fail(s, rc, what);
  if ((rc = mdb_cursor_open(txn, s->dbi[which], &cur)) != 0) {
    mdb_txn_abort(txn);
    return fail(s, rc, what);
  }
  for (;;) {
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    if (rc == MDB_NOTFOUND) {
      rc = 0;
      break;
    }
    if (rc != 0) {
      rc = fail(s, rc, what);
      break;
    }
    if ((rc = fn(s, &k, &v, arg)) != 0)
      break;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return rc;
}

typedef struct blob_walk {
  int (*cb)(void *arg, const char *key, size_t key_len, const void *blob,
            size_t len);
  void *arg;
} blob_walk_t;

static int blob_entry(tdm_store_t *s, const MDB_val *k, const MDB_val *v,
                      void *arg) {
  const blob_walk_t *w = arg;
  (void)s;
  return w->cb(w->arg, k->mv_data, k->mv_size, v->mv_data, v->mv_size);
}

int tdm_store_load_blobs(tdm_store_t *s,
                         int (*cb)(void *arg, const char *key, size_t key_len,
                                   const void *blob, size_t len),
                         void *arg) {
  blob_walk_t w = {cb, arg};
  return walk(s, DB_PROCS, "reading restore points", blob_entry, &w);
}

typedef struct file_walk {
  int (*cb)(void *arg, const tdm_file_rec_t *rec);
  void *arg;
} file_walk_t;

static int file_entry(tdm_store_t *s, const MDB_val *k, const MDB_val *v,
                      void *arg) {
  const file_walk_t *w = arg;
  tdm_file_rec_t r;

  if (k->mv_size != 8 || rec_decode(v, &r) != 0) {
    tdm__error(s->log,
               "%s: file record %" PRIu64 " does not decode (corrupt store)",
               s->qdir, k->mv_size == 8 ? get_be64(k->mv_data) : 0);
    return TDM_ESTATE;
  }
  r.id = get_be64(k->mv_data);
  return w->cb(w->arg, &r);
}

int tdm_store_load_files(tdm_store_t *s,
                         int (*cb)(void *arg, const tdm_file_rec_t *rec),
                         void *arg) {
  file_walk_t w = {cb, arg};
  return walk(s, DB_FILES, "reading file records", file_entry, &w);
}

/*
 * The "procs" key of processor spec `spec`: the spec itself when LMDB can
 * take it as a key (at most mdb_env_get_maxkeysize(), 511 bytes), else
 * "#xxh128:" and the XXH3-128 of the spec in hex, in `buf` (a spec never
 * starts with '#', so the two kinds cannot meet). An empty spec is refused
 * (logged, -EINVAL).
 */
#define SPEC_KEY_CAP 48
static int spec_key(const tdm_store_t *s, const char *spec,
                    char buf[SPEC_KEY_CAP], MDB_val *out) {
  static const char hexd[] = "0123456789abcdef";
  size_t len = strlen(spec), max = (size_t)mdb_env_get_maxkeysize(s->env);
  uint8_t h[16];
  XXH128_hash_t x;

  if (len == 0) {
    tdm__error(s->log, "%s: an empty processor spec cannot be stored", s->qdir);
    return -EINVAL;
  }
  if (len <= max) {
    out->mv_size = len;
    out->mv_data = (void *)spec;
    return 0;
  }
  x = XXH3_128bits(spec, len);
  put_be64(h, x.high64);
  put_be64(h + 8, x.low64);
  memcpy(buf, "#xxh128:", 8);
  for (int i = 0; i < 16; i++) {
    buf[8 + 2 * i] = hexd[h[i] >> 4];
    buf[9 + 2 * i] = hexd[h[i] & 15];
  }
  buf[40] = '\0';
  out->mv_size = 40;
  out->mv_data = buf;
  return 0;
}

int tdm_store_get_blob(tdm_store_t *s, const char *key, void *buf, size_t cap,
                       size_t *len) {
  char kb[SPEC_KEY_CAP];
  MDB_val k, v;
  MDB_txn *txn;
  int rc;

  *len = 0;
  if ((rc = spec_key(s, key, kb, &k)) != 0)
    return rc;
  if ((rc = read_txn(s, &txn)) != 0)
    return fail(s, rc, "reading a restore blob");
  rc = mdb_get(txn, s->dbi[DB_PROCS], &k, &v);
  if (rc == 0) {
    *len = v.mv_size;
    if (v.mv_size <= cap)
      memcpy(buf, v.mv_data, v.mv_size);
  }
  mdb_txn_abort(txn);
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc != 0)
    return fail(s, rc, "reading a restore blob");
  if (*len > cap) {
    char q[96];
    tdm__error(s->log,
               "%s: restore blob of processor '%s' is %zu bytes, more than "
               "the %zu expected",
               s->qdir, tdm__quote(key, q, sizeof(q)), *len, cap);
    return -ENOBUFS;
  }
  return 0;
}

int tdm_store_find_hash(tdm_store_t *s, const uint8_t hash[16],
                        uint64_t *file_id) {
  MDB_val k = {16, (void *)hash}, v;
  MDB_txn *txn;
  int rc;

  if ((rc = read_txn(s, &txn)) != 0)
    return fail(s, rc, "looking up a content hash");
  rc = mdb_get(txn, s->dbi[DB_HASHES], &k, &v);
  if (rc == 0 && v.mv_size == 8)
    *file_id = get_be64(v.mv_data);
  mdb_txn_abort(txn);
  if (rc == MDB_NOTFOUND)
    return -ENOENT;
  if (rc != 0)
    return fail(s, rc, "looking up a content hash");
  if (v.mv_size != 8) {
    tdm__error(s->log, "%s: a content hash record is corrupt", s->qdir);
    return TDM_ESTATE;
  }
  return 0;
}

typedef struct commit_arg {
  const tdm_store_batch_t *b;
  int64_t now;
} commit_arg_t;

/* The body of one checkpoint transaction (see write_txn). */
static int apply_batch(tdm_store_t *s, MDB_txn *txn, const void *arg) {
  const commit_arg_t *a = arg;
  const tdm_store_batch_t *b = a->b;
  uint8_t id[8];
  MDB_val k = {8, id}, v;
  size_t i;
  int rc;

  for (i = 0; i < b->n_del_files; i++) {
    put_be64(id, b->del_files[i]);
    rc = mdb_del(txn, s->dbi[DB_FILES], &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND)
      return rc;
  }
  for (i = 0; i < b->n_put_files; i++) {
    const tdm_file_rec_t *r = b->put_files[i];
    put_be64(id, r->id);
    v.mv_size = rec_size(r);
    /* MDB_RESERVE: encode straight into the page, no buffer. */
    if ((rc = mdb_put(txn, s->dbi[DB_FILES], &k, &v, MDB_RESERVE)) != 0)
      return rc;
    rec_encode(r, v.mv_data);
  }
  for (i = 0; i < b->n_blobs; i++) {
    char kb[SPEC_KEY_CAP];
    MDB_val bk;
    if ((rc = spec_key(s, b->blobs[i].key, kb, &bk)) != 0)
      return rc;
    MDB_val bv = {b->blobs[i].len, (void *)b->blobs[i].data};
    if ((rc = mdb_put(txn, s->dbi[DB_PROCS], &bk, &bv, 0)) != 0)
      return rc;
  }
  for (i = 0; i < b->n_del_hashes; i++) {
    MDB_val hk = {16, (void *)b->del_hashes[i]};
    rc = mdb_del(txn, s->dbi[DB_HASHES], &hk, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND)
      return rc;
  }
  for (i = 0; i < b->n_hashes; i++) {
    MDB_val hk = {16, (void *)b->hashes[i].hash}, hv = {8, id};
    put_be64(id, b->hashes[i].file_id);
    if ((rc = mdb_put(txn, s->dbi[DB_HASHES], &hk, &hv, 0)) != 0)
      return rc;
  }
  if (b->next_id > s->next_id &&
      (rc = meta_put(s, txn, "next_id", b->next_id, 8)) != 0)
    return rc;
  if (b->add_lost_files > 0 &&
      (rc = meta_put(s, txn, "lost_files", s->lost_files + b->add_lost_files,
                     8)) != 0)
    return rc;
  return meta_put(s, txn, "checkpoint_ns", (uint64_t)a->now, 8);
}

int tdm_store_commit(tdm_store_t *s, const tdm_store_batch_t *b) {
  commit_arg_t a = {b, 0};
  struct timespec ts;
  size_t i;
  int rc;

  /* Refuse what cannot be stored before anything is written. */
  for (i = 0; i < b->n_blobs; i++) {
    char kb[SPEC_KEY_CAP];
    MDB_val k;
    if ((rc = spec_key(s, b->blobs[i].key, kb, &k)) != 0)
      return rc;
    if (b->blobs[i].len > TDM_RESTORE_MAX) {
      char q[96];
      tdm__error(s->log,
                 "%s: checkpoint refused: restore blob of processor '%s' is "
                 "%zu bytes, over the limit of %d",
                 s->qdir, tdm__quote(b->blobs[i].key, q, sizeof(q)),
                 b->blobs[i].len, TDM_RESTORE_MAX);
      return -EINVAL;
    }
  }
  for (i = 0; i < b->n_put_files; i++)
    if (b->put_files[i]->id == 0) {
      tdm__error(s->log, "%s: checkpoint refused: a file record has id 0",
                 s->qdir);
      return -EINVAL;
    }

  clock_gettime(CLOCK_REALTIME, &ts);
  a.now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  if ((rc = write_txn(s, apply_batch, &a)) != 0)
    return fail(s, rc, "checkpoint");
  if (b->next_id > s->next_id)
    s->next_id = b->next_id;
  s->checkpoint_ns = a.now;
  s->lost_files += b->add_lost_files;
  return 0;
}

static int drop_files(tdm_store_t *s, MDB_txn *txn, const void *arg) {
  int rc;

  (void)arg;
  rc = mdb_drop(txn, s->dbi[DB_FILES], 0); /* 0: empty it, keep the handle */
  if (rc == 0)
    rc = mdb_drop(txn, s->dbi[DB_HASHES], 0);
  return rc;
}

int tdm_store_clear_files(tdm_store_t *s) {
  int rc = write_txn(s, drop_files, NULL);
  return rc != 0 ? fail(s, rc, "forgetting the file records") : 0;
}
