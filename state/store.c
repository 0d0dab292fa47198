/*
 * store.c: the durable state of one state directory (see store.h).
 *
 * Everything LMDB returns is translated here, at the boundary, and logged once
 * naming the directory: positive errno -> -errno, a corrupt or foreign file ->
 * TDM_ESTATE, any other MDB_* -> TDM_ESTORE.
 *
 * The parts: record.c encodes and decodes a file record, check.c checks a
 * store before it is used, env.c holds what they share; this file opens the
 * environment, takes the writer lock, reads and commits.
 */
#include "state/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>

#include "state/check.h"
#include "state/env.h"
#include "state/forgotten.h"
#include "state/record.h"

enum { DB_META = TDM__DB_META, DB_FILES = TDM__DB_FILES,
       DB_PROCS = TDM__DB_PROCS, DB_HASHES = TDM__DB_HASHES,
       DB_DIRS = TDM__DB_DIRS, DB_DIRKEYS = TDM__DB_DIRKEYS,
       DB_FORGOTTEN = TDM__DB_FORGOTTEN, N_DBS = TDM__N_DBS };

/* The directory a commit filed its last record under: the next record is
   most often in the same one. */
typedef struct dir_cache {
  char *path; /* malloc'd; NULL: none */
  uint64_t id;
} dir_cache_t;
#define INSTANCE_BYTES 8 /* meta "instance": random, made once per store */

struct tdm_store_s {
  MDB_env *env;
  MDB_dbi dbi[N_DBS];
  char *dir;   /* as given */
  char *qdir;  /* quoted for log lines */
  const tdm__log_t *log;
  int rdonly;
  int lock_fd; /* DIR/writer.lock (writer), -1 */
  int marked;  /* writer: DIR/checked says "open" with this process */
  int opened;  /* tdm_store_open() succeeded */
  int failed;  /* a write failed: the next open checks the store */
  uint64_t next_id;
  uint64_t next_dir; /* the next unused directory id */
  int has_dirs;      /* schema 2: the directory tables are open */
  int has_forgotten; /* schema 3: the forgotten hashes are open */
  uint64_t forgotten; /* how many hashes the forgotten set holds */
  dir_cache_t last_dir; /* writer: the last directory committed */
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

/* Begin a read transaction (following a writer that grew the map: legal
   because the store is used from one thread and has no other txn open). */
static int read_txn(tdm_store_t *s, MDB_txn **txn) {
  return tdm__env_begin_read(s->env, s->log, s->qdir, txn);
}

/*
 * Run `fn` in one write transaction and commit it. When the map is full the
 * transaction is aborted (nothing applied), the map doubled and `fn` replayed
 * from the start, so `fn` must depend on its arguments only. Resizing is
 * legal here because no transaction is open in this process (see read_txn).
 * Returns an untranslated LMDB result.
 */
static int write_txn(tdm_store_t *s,
                     int (*fn)(tdm_store_t *s, MDB_txn *txn, void *arg),
                     void *arg) {
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
  *out = tdm__get_le(v.mv_data, size);
  return 0;
}

static int meta_put(const tdm_store_t *s, MDB_txn *txn, const char *key,
                    uint64_t value, int size) {
  uint8_t buf[8];
  MDB_val k = {strlen(key), (void *)key}, v = {(size_t)size, buf};

  tdm__put_le(buf, value, size);
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
   check the schema: 1 to 3, a writer brings an older one to 3 (the tables it
   lacks are created by open_tables). *schema = the store's schema, as it is now.
   Returns 0, TDM_ESTATE (logged) or an LMDB code. */
static int open_schema(tdm_store_t *s, MDB_txn *txn, int fresh,
                       uint64_t *schema) {
  int rc = mdb_dbi_open(txn, tdm__db_names[DB_META], fresh ? MDB_CREATE : 0,
                        &s->dbi[DB_META]);
  *schema = 0;
  if (rc == 0 && fresh)
    rc = meta_put(s, txn, "schema", TDM_STORE_SCHEMA, 4);
  if (rc == 0)
    rc = meta_get(s, txn, "schema", 4, schema);
  if (rc == MDB_NOTFOUND) {
    tdm__error(s->log, "%s: not a tidemark state store (no schema record)",
               s->qdir);
    return TDM_ESTATE;
  }
  if (rc == 0 && (*schema < 1 || *schema > TDM_STORE_SCHEMA)) {
    tdm__error(s->log,
               "%s: state store has schema %" PRIu64
               ", this tidemark supports schema 1 to %u",
               s->qdir, *schema, TDM_STORE_SCHEMA);
    return TDM_ESTATE;
  }
  if (rc == 0 && *schema < TDM_STORE_SCHEMA && !s->rdonly) {
    tdm__info(s->log, "%s: state store brought from schema %" PRIu64
              " to %u (records are written compact from now on)", s->qdir,
              *schema, TDM_STORE_SCHEMA);
    rc = meta_put(s, txn, "schema", TDM_STORE_SCHEMA, 4);
    *schema = TDM_STORE_SCHEMA;
  }
  return rc;
}

/* Open the databases after "meta" (`create`: MDB_CREATE or 0) that a store
   of `schema` has. Returns 0, TDM_ESTATE (logged: one is missing) or an
   LMDB code. */
static int open_tables(tdm_store_t *s, MDB_txn *txn, unsigned create,
                       uint64_t schema) {
  int rc = 0, n = schema >= 3   ? N_DBS
                  : schema == 2 ? TDM__SCHEMA2_DBS
                                : TDM__SCHEMA1_DBS;
  for (int i = DB_META + 1; rc == 0 && i < n; i++) {
    unsigned flags = create;
    if (i >= TDM__SCHEMA1_DBS && !s->rdonly)
      flags = MDB_CREATE; /* new in schema 2 or 3: made when it is reached */
    if ((rc = mdb_dbi_open(txn, tdm__db_names[i], flags, &s->dbi[i])) ==
        MDB_NOTFOUND) {
      tdm__error(s->log, "%s: state store is damaged: database '%s' is missing",
                 s->qdir, tdm__db_names[i]);
      rc = TDM_ESTATE;
    }
  }
  s->has_dirs = rc == 0 && n >= TDM__SCHEMA2_DBS;
  s->has_forgotten = rc == 0 && n == N_DBS;
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
  s->forgotten = 0;
  if (rc == 0 && (rc = meta_get(s, txn, "forgotten", 8, &s->forgotten)) ==
                     MDB_NOTFOUND)
    rc = 0;
  s->next_dir = 1;
  if (rc == 0 &&
      (rc = meta_get(s, txn, "next_dir", 8, &s->next_dir)) == MDB_NOTFOUND)
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
  uint64_t next_id = 1, ns = 0, lost = 0, schema;
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
  rc = open_schema(s, txn, *fresh, &schema);
  if (rc == 0)
    rc = open_tables(s, txn, *fresh ? MDB_CREATE : 0, schema);
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
  if ((rc = tdm__check_store(s->dir, s->qdir, s->lock_fd, s->log)) != 0)
    goto err;
  if (!s->rdonly) { /* before the first write */
    tdm__check_mark_open(s->dir, s->log);
    s->marked = 1;
  }
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
  s->opened = 1;
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
  /* Every commit was synced: a store closed after no failed write is as
     sound as the check (or the mark) found it. A forked copy of a writer
     closing its inherited handle leaves the mark to the writer. */
  if (s->marked && s->pid == getpid())
    tdm__check_mark_closed(s->dir, s->opened && !s->failed, s->log);
  registry_remove(s);
  if (s->lock_fd >= 0)
    close(s->lock_fd);
  free(s->last_dir.path);
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

uint64_t tdm_store_forgotten(const tdm_store_t *s) { return s->forgotten; }

int tdm_store_refresh(tdm_store_t *s, uint64_t *txnid) {
  uint64_t next_id = s->next_id, ns = (uint64_t)s->checkpoint_ns,
           lost = s->lost_files;
  MDB_txn *txn;
  int rc;

  if (!s->rdonly) {
    *txnid = 0;
    return -EINVAL;
  }
  if ((rc = read_txn(s, &txn)) != 0)
    return fail(s, rc, "reading the store");
  *txnid = (uint64_t)mdb_txn_id(txn);
  rc = load_meta(s, txn, &next_id, &ns, &lost);
  mdb_txn_abort(txn);
  if (rc == TDM_ESTATE)
    return rc;
  if (rc != 0)
    return fail(s, rc, "reading the store");
  s->next_id = next_id;
  s->checkpoint_ns = (int64_t)ns;
  s->lost_files = lost;
  return 0;
}
/*
 * Let go of the pages of the map between `lo` and `hi` (addresses of values
 * a walk has read: LMDB does not say where its map starts, but a value read
 * in a read transaction lies in it, and the map is one mapping). The map is
 * a read-only shared mapping of data.mdb (LMDB writes with pwrite), so the
 * pages stay in the page cache and come back on the next access. Without
 * this a walk of the whole store keeps every page of it in this process's
 * RSS.
 */
#define WALK_DROP_EVERY 4096
static void drop_map_pages(uintptr_t lo, uintptr_t hi) {
  long page = sysconf(_SC_PAGESIZE);

  if (page <= 0 || lo == 0 || hi <= lo)
    return;
  lo &= ~((uintptr_t)page - 1);
  (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/*
 * Call `fn` for every entry of database `which`, in key order. A non-zero
 * return from `fn` stops the walk and is returned; an LMDB error is logged
 * with `what` ("reading ...").
 *
 * The writer (`once`, `run`) walks in one read transaction. A reader
 * (`status`) walking the file records takes a new one every
 * WALK_DROP_EVERY records, going on after the last key it saw: a read
 * transaction held for the whole walk (seconds over a million files, and
 * as long as the output is not consumed) keeps the writer from reusing
 * any page freed meanwhile, so every commit wrote new pages at the end of
 * data.mdb: a first pass over 100,000 files polled by `status --json` grew
 * the store to 40 MB and the daemon's resident map to 110 MiB. Each record
 * is then as of one snapshot; the list as a whole is not one instant.
 */
static int walk(tdm_store_t *s, int which, const char *what,
                int (*fn)(tdm_store_t *s, MDB_txn *txn, const MDB_val *k,
                          const MDB_val *v, void *arg),
                void *arg) {
  uintptr_t lo = 0, hi = 0; /* the values read since the last drop */
  int renew = s->rdonly && which == DB_FILES;
  unsigned char last[512]; /* the last key seen (LMDB's keys: <= 511 B) */
  size_t last_len = 0;
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
  for (size_t n = 1;; n++) {
    MDB_cursor_op op = MDB_NEXT;
    if (n % WALK_DROP_EVERY == 0) {
      drop_map_pages(lo, hi);
      lo = hi = 0;
      if (renew && last_len > 0) {
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        if ((rc = read_txn(s, &txn)) != 0)
          return fail(s, rc, what);
        if ((rc = mdb_cursor_open(txn, s->dbi[which], &cur)) != 0) {
          mdb_txn_abort(txn);
          return fail(s, rc, what);
        }
        k.mv_data = last;
        k.mv_size = last_len;
        op = MDB_SET_RANGE; /* the last key seen, or the first after it */
      }
    }
    rc = mdb_cursor_get(cur, &k, &v, op);
    if (rc == 0 && op == MDB_SET_RANGE && k.mv_size == last_len &&
        memcmp(k.mv_data, last, last_len) == 0)
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    if (rc == MDB_NOTFOUND) {
      rc = 0;
      break;
    }
    if (rc != 0) {
      rc = fail(s, rc, what);
      break;
    }
    if ((rc = fn(s, txn, &k, &v, arg)) != 0)
      break;
    if (renew && k.mv_size <= sizeof(last)) {
      memcpy(last, k.mv_data, k.mv_size);
      last_len = k.mv_size;
    }
    if (lo == 0 || (uintptr_t)v.mv_data < lo)
      lo = (uintptr_t)v.mv_data;
    if ((uintptr_t)v.mv_data + v.mv_size > hi)
      hi = (uintptr_t)v.mv_data + v.mv_size;
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

static int blob_entry(tdm_store_t *s, MDB_txn *txn, const MDB_val *k,
                      const MDB_val *v, void *arg) {
  const blob_walk_t *w = arg;
  (void)s;
  (void)txn;
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
  char *path;  /* the whole path of a record filed under a directory */
  size_t cap;
  uint64_t dir; /* the directory last looked up, and its path (in the map) */
  const char *dir_path;
  size_t dir_len;
} file_walk_t;

/* Record `v` of file `k` decoded, its path whole, into w->cb. */
static int file_entry(tdm_store_t *s, MDB_txn *txn, const MDB_val *k,
                      const MDB_val *v, void *arg) {
  file_walk_t *w = arg;
  tdm_file_rec_t r;
  uint64_t dir = 0;
  const char *why = "does not decode";

  if (k->mv_size != 8 ||
      tdm__record_decode(v->mv_data, v->mv_size, &r, &dir) != 0)
    goto bad;
  r.id = tdm__get_be64(k->mv_data);
  if (dir != 0) {
    size_t nlen = strlen(r.path);
    if (dir != w->dir) {
      uint8_t key[8];
      MDB_val dk = {8, key}, dv;
      tdm__put_be64(key, dir);
      why = "names a directory the store does not hold";
      if (!s->has_dirs || mdb_get(txn, s->dbi[DB_DIRS], &dk, &dv) != 0 ||
          dv.mv_size == 0 || ((const char *)dv.mv_data)[dv.mv_size - 1] != '\0')
        goto bad;
      w->dir = dir;
      w->dir_path = dv.mv_data;
      w->dir_len = dv.mv_size - 1;
    }
    if (w->dir_len + 1 + nlen + 1 > w->cap) {
      size_t cap = (w->dir_len + nlen + 2) * 2;
      char *p = realloc(w->path, cap);
      if (p == NULL)
        return -ENOMEM;
      w->path = p;
      w->cap = cap;
    }
    memcpy(w->path, w->dir_path, w->dir_len);
    w->path[w->dir_len] = '/';
    memcpy(w->path + w->dir_len + 1, r.path, nlen + 1);
    r.path = w->path;
  }
  return w->cb(w->arg, &r);
bad:
  tdm__error(s->log, "%s: file record %" PRIu64 " %s (corrupt store)",
             s->qdir, k->mv_size == 8 ? tdm__get_be64(k->mv_data) : 0, why);
  return TDM_ESTATE;
}

int tdm_store_get_file(tdm_store_t *s, uint64_t id,
                       int (*cb)(void *arg, const tdm_file_rec_t *rec),
                       void *arg) {
  uint8_t key[8];
  MDB_val k = {8, key}, v;
  MDB_txn *txn;
  file_walk_t w = {cb, arg, NULL, 0, 0, NULL, 0};
  int rc;

  tdm__put_be64(key, id);
  if ((rc = read_txn(s, &txn)) != 0)
    return fail(s, rc, "reading a file record");
  rc = mdb_get(txn, s->dbi[DB_FILES], &k, &v);
  if (rc == 0)
    rc = file_entry(s, txn, &k, &v, &w);
  else if (rc == MDB_NOTFOUND)
    rc = -ENOENT;
  else
    rc = fail(s, rc, "reading a file record");
  mdb_txn_abort(txn);
  free(w.path);
  return rc;
}

int tdm_store_load_files(tdm_store_t *s,
                         int (*cb)(void *arg, const tdm_file_rec_t *rec),
                         void *arg) {
  file_walk_t w = {cb, arg, NULL, 0, 0, NULL, 0};
  int rc = walk(s, DB_FILES, "reading file records", file_entry, &w);
  free(w.path);
  return rc;
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
  tdm__put_be64(h, x.high64);
  tdm__put_be64(h + 8, x.low64);
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
    *file_id = tdm__get_be64(v.mv_data);
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

int tdm_store_hash_forgotten(tdm_store_t *s, const uint8_t hash[16]) {
  MDB_txn *txn;
  int rc, found = 0;

  if (!s->has_forgotten || s->forgotten == 0)
    return 0;
  if ((rc = read_txn(s, &txn)) != 0)
    return fail(s, rc, "looking up a forgotten content hash");
  rc = tdm__forgotten_has(txn, s->dbi[DB_FORGOTTEN], hash, &found);
  mdb_txn_abort(txn);
  if (rc != 0)
    return fail(s, rc, "looking up a forgotten content hash");
  return found;
}

typedef struct commit_arg {
  const tdm_store_batch_t *b;
  int64_t now;
  uint64_t next_dir; /* as the transaction leaves it */
  dir_cache_t dir;   /* the transaction's last directory */
  uint64_t forgotten; /* the set's size, as the transaction leaves it */
} commit_arg_t;

/* Drop the records of b->forget, their hashes kept in the forgotten set
   (see tdm_store_batch_t.forget). */
static int forget_files(tdm_store_t *s, MDB_txn *txn, commit_arg_t *a) {
  const tdm_store_batch_t *b = a->b;
  static const uint8_t zero[16];
  uint8_t (*h)[16], id[8];
  MDB_val k = {8, id};
  size_t n = 0;
  uint64_t added = 0;
  MDB_stat st;
  int rc = 0;

  if (b->n_forget == 0)
    return 0;
  if (!s->has_forgotten)
    return EINVAL; /* a writer's store is always of the latest schema */
  if ((h = malloc(b->n_forget * sizeof(*h))) == NULL)
    return ENOMEM;
  for (size_t i = 0; i < b->n_forget && rc == 0; i++) {
    const tdm_store_hash_t *f = &b->forget[i];
    MDB_val hk = {16, (void *)f->hash}, hv;
    tdm__put_be64(id, f->file_id);
    if ((rc = mdb_del(txn, s->dbi[DB_FILES], &k, NULL)) == MDB_NOTFOUND)
      rc = 0;
    if (memcmp(f->hash, zero, 16) == 0)
      continue; /* no content hash: nothing to remember */
    /* The hash's entry goes with the file it names; one naming another
       file (still tracked) stays. */
    rc = mdb_get(txn, s->dbi[DB_HASHES], &hk, &hv);
    if (rc == 0 && hv.mv_size == 8 && tdm__get_be64(hv.mv_data) == f->file_id)
      rc = mdb_del(txn, s->dbi[DB_HASHES], &hk, NULL);
    else if (rc == MDB_NOTFOUND || rc == 0)
      rc = 0;
    memcpy(h[n++], f->hash, 16);
  }
  if (rc == 0 && (rc = mdb_stat(txn, s->dbi[DB_FORGOTTEN], &st)) == 0)
    rc = tdm__forgotten_add(txn, s->dbi[DB_FORGOTTEN], h, n, st.ms_psize,
                            &added);
  free(h);
  a->forgotten = s->forgotten + added;
  if (rc == 0 && added > 0)
    rc = meta_put(s, txn, "forgotten", a->forgotten, 8);
  return rc;
}

/*
 * File `path` under its directory (everything before its last '/'): *dir is
 * the directory's id and *name the rest; a new directory gets an id and its
 * entries in "dirs" and "dirkeys". *dir = 0 and *name = path when the path
 * is stored whole: a store of schema 1 (read only, not written here), a path
 * with no '/' or ending in one, or a directory whose key is taken by another
 * path (two paths with one XXH3-128). Returns an LMDB code.
 */
static int file_under_dir(tdm_store_t *s, MDB_txn *txn, commit_arg_t *a,
                          const char *path, uint64_t *dir, const char **name) {
  const char *slash = path != NULL ? strrchr(path, '/') : NULL;
  uint8_t hk[16], idb[8];
  MDB_val k = {16, hk}, v;
  XXH128_hash_t x;
  size_t dlen;
  uint64_t id;
  char *copy;
  int rc;

  *dir = 0;
  *name = path;
  if (!s->has_dirs || slash == NULL || slash[1] == '\0')
    return 0;
  dlen = (size_t)(slash - path);
  if (a->dir.path != NULL && strlen(a->dir.path) == dlen &&
      memcmp(a->dir.path, path, dlen) == 0) {
    *dir = a->dir.id;
    *name = slash + 1;
    return 0;
  }
  x = XXH3_128bits(path, dlen);
  tdm__put_be64(hk, x.high64);
  tdm__put_be64(hk + 8, x.low64);
  rc = mdb_get(txn, s->dbi[DB_DIRKEYS], &k, &v);
  if (rc == 0) {
    MDB_val dk = {8, idb}, dv;
    if (v.mv_size != 8)
      return 0; /* damaged: the whole path is stored */
    id = tdm__get_be64(v.mv_data);
    tdm__put_be64(idb, id);
    if (mdb_get(txn, s->dbi[DB_DIRS], &dk, &dv) != 0 ||
        dv.mv_size != dlen + 1 || memcmp(dv.mv_data, path, dlen) != 0)
      return 0; /* another path has this key */
  } else if (rc == MDB_NOTFOUND) {
    MDB_val dk = {8, idb}, dv = {dlen + 1, NULL}, iv = {8, idb};
    id = a->next_dir++;
    tdm__put_be64(idb, id);
    if ((rc = mdb_put(txn, s->dbi[DB_DIRS], &dk, &dv, MDB_RESERVE)) != 0)
      return rc;
    memcpy(dv.mv_data, path, dlen);
    ((char *)dv.mv_data)[dlen] = '\0';
    if ((rc = mdb_put(txn, s->dbi[DB_DIRKEYS], &k, &iv, 0)) != 0)
      return rc;
  } else {
    return rc;
  }
  if ((copy = malloc(dlen + 1)) != NULL) {
    memcpy(copy, path, dlen);
    copy[dlen] = '\0';
    free(a->dir.path);
    a->dir.path = copy;
    a->dir.id = id;
  }
  *dir = id;
  *name = slash + 1;
  return 0;
}

/* The body of one checkpoint transaction (see write_txn). */
static int apply_batch(tdm_store_t *s, MDB_txn *txn, void *arg) {
  commit_arg_t *a = arg;
  const tdm_store_batch_t *b = a->b;
  uint8_t id[8];
  MDB_val k = {8, id}, v;
  size_t i;
  int rc;

  /* From the committed state: a replay (a grown map) starts again. */
  a->next_dir = s->next_dir;
  free(a->dir.path);
  a->dir.path = s->last_dir.path != NULL ? strdup(s->last_dir.path) : NULL;
  a->dir.id = s->last_dir.id;

  for (i = 0; i < b->n_del_files; i++) {
    tdm__put_be64(id, b->del_files[i]);
    rc = mdb_del(txn, s->dbi[DB_FILES], &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND)
      return rc;
  }
  for (i = 0; i < b->n_put_files; i++) {
    const tdm_file_rec_t *r = b->put_files[i];
    const char *name;
    uint64_t dir;
    if ((rc = file_under_dir(s, txn, a, r->path, &dir, &name)) != 0)
      return rc;
    tdm__put_be64(id, r->id);
    v.mv_size = tdm__record_size(r, dir, name);
    /* MDB_RESERVE: encode straight into the page, no buffer. */
    if ((rc = mdb_put(txn, s->dbi[DB_FILES], &k, &v, MDB_RESERVE)) != 0)
      return rc;
    tdm__record_write(r, dir, name, v.mv_data);
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
    tdm__put_be64(id, b->hashes[i].file_id);
    if ((rc = mdb_put(txn, s->dbi[DB_HASHES], &hk, &hv, 0)) != 0)
      return rc;
  }
  if ((rc = forget_files(s, txn, a)) != 0)
    return rc;
  if (b->next_id > s->next_id &&
      (rc = meta_put(s, txn, "next_id", b->next_id, 8)) != 0)
    return rc;
  if (a->next_dir > s->next_dir &&
      (rc = meta_put(s, txn, "next_dir", a->next_dir, 8)) != 0)
    return rc;
  if (b->add_lost_files > 0 &&
      (rc = meta_put(s, txn, "lost_files", s->lost_files + b->add_lost_files,
                     8)) != 0)
    return rc;
  return meta_put(s, txn, "checkpoint_ns", (uint64_t)a->now, 8);
}

int tdm_store_commit(tdm_store_t *s, const tdm_store_batch_t *b) {
  commit_arg_t a = {b, 0, 0, {NULL, 0}, 0};
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
  if ((rc = write_txn(s, apply_batch, &a)) != 0) {
    free(a.dir.path);
    s->failed = 1;
    return fail(s, rc, "checkpoint");
  }
  free(s->last_dir.path);
  s->last_dir = a.dir;
  s->next_dir = a.next_dir;
  if (b->next_id > s->next_id)
    s->next_id = b->next_id;
  s->checkpoint_ns = a.now;
  s->lost_files += b->add_lost_files;
  if (b->n_forget > 0)
    s->forgotten = a.forgotten;
  return 0;
}

static int drop_files(tdm_store_t *s, MDB_txn *txn, void *arg) {
  int rc;

  (void)arg;
  rc = mdb_drop(txn, s->dbi[DB_FILES], 0); /* 0: empty it, keep the handle */
  if (rc == 0)
    rc = mdb_drop(txn, s->dbi[DB_HASHES], 0);
  if (rc == 0 && s->has_dirs)
    rc = mdb_drop(txn, s->dbi[DB_DIRS], 0);
  if (rc == 0 && s->has_dirs)
    rc = mdb_drop(txn, s->dbi[DB_DIRKEYS], 0);
  if (rc == 0 && s->has_forgotten)
    rc = mdb_drop(txn, s->dbi[DB_FORGOTTEN], 0);
  if (rc == 0 && s->has_forgotten) {
    MDB_val k = {9, (void *)"forgotten"};
    if ((rc = mdb_del(txn, s->dbi[DB_META], &k, NULL)) == MDB_NOTFOUND)
      rc = 0;
  }
  return rc;
}

int tdm_store_clear_files(tdm_store_t *s) {
  int rc = write_txn(s, drop_files, NULL);
  if (rc != 0)
    s->failed = 1;
  free(s->last_dir.path); /* its entry is gone */
  s->last_dir.path = NULL;
  if (rc == 0)
    s->forgotten = 0;
  return rc != 0 ? fail(s, rc, "forgetting the file records") : 0;
}

void tdm_store_shed_map(tdm_store_t *s) {
  MDB_val k = {6, "schema"}, v;
  uintptr_t at = 0, lo, hi;
  char line[512];
  MDB_txn *txn;
  FILE *maps;

  /* LMDB does not say where its map is: a value read lies in it, and
     /proc/self/maps says which mapping holds that address. */
  if (read_txn(s, &txn) != 0)
    return;
  if (mdb_get(txn, s->dbi[DB_META], &k, &v) == 0)
    at = (uintptr_t)v.mv_data;
  mdb_txn_abort(txn);
  if (at == 0 || (maps = fopen("/proc/self/maps", "re")) == NULL)
    return;
  while (fgets(line, sizeof(line), maps) != NULL)
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2 && lo <= at &&
        at < hi) {
      (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
      break;
    }
  fclose(maps);
}
