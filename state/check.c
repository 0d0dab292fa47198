/*
 * check.c: the corruption check of a state store and its mark (see check.h).
 *
 * The child opens the store read-only and
 *  1. has LMDB copy it, compacted, to /dev/null (mdb_env_copyfd2 with
 *     MDB_CP_COMPACT): LMDB's own walk of every branch, leaf and overflow
 *     page of every database, each page copied by its header's bounds the
 *     way a write would copy it;
 *  2. reads the pages of the free list with its own code (the one tree the
 *     copy does not walk, see check_free_pages);
 *  3. reads every entry of the free list, the main database and each named
 *     database through a cursor, touching every byte, and decodes it as the
 *     store would (a file record with the record codec, a free list entry as
 *     LMDB's list of page numbers, which a later write trusts).
 * It reports through its exit status. A child that dies by a signal, does not
 * finish in time, or finds something that does not decode means a corrupt
 * store: reported naming the directory, TDM_ESTATE. An LMDB error at open (a
 * foreign file, a version mismatch) is left to the store's own open, which
 * has a clear message for each.
 *
 * The cost is one sequential read of the map, in a process that shares the
 * page cache with ours; DIR/checked spares it after a clean close.
 */
#include "state/check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "state/env.h"
#include "state/forgotten.h"
#include "state/record.h"

#define CHECK_OK 0
#define CHECK_LMDB_ERROR 3   /* LMDB's open failed: the store's open says why */
#define CHECK_BAD_RECORD 4   /* something does not decode: why, on stderr */
#define CHECK_MIN_S 20       /* time limit: this, plus a second per ... */
#define CHECK_BYTES_PER_S (4u << 20) /* ... this much of data.mdb */
#define MARK_NAME "checked"
#define MARK_MAGIC "tidemark-checked 1"

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

/* Is entry `k` -> `v` of database `which` (TDM__N_DBS: the main database,
   -1: the free list) well formed? `last_pgno`: the last page of the map. */
static int entry_bad(int which, const MDB_val *k, const MDB_val *v,
                     size_t maxkey, size_t last_pgno) {
  const uint8_t *p = v->mv_data;
  tdm_file_rec_t r;
  uint64_t dir;

  switch (which) {
  case TDM__DB_FILES:
    return k->mv_size != 8 || tdm__record_decode(p, v->mv_size, &r, &dir) != 0;
  case TDM__DB_DIRS: /* a path, NUL-terminated, no other NUL */
    return k->mv_size != 8 || v->mv_size == 0 || p[v->mv_size - 1] != 0 ||
           memchr(p, 0, v->mv_size - 1) != NULL;
  case TDM__DB_DIRKEYS:
    return k->mv_size != 16 || v->mv_size != 8;
  case TDM__DB_PROCS:
    return k->mv_size == 0 || k->mv_size > maxkey ||
           v->mv_size > TDM_RESTORE_MAX;
  case TDM__DB_HASHES:
    return k->mv_size != 16 || v->mv_size != 8;
  case TDM__DB_FORGOTTEN:
    return tdm__forgotten_bad(k, v);
  case TDM__DB_META:
    if (k->mv_size == 6 && memcmp(k->mv_data, "schema", 6) == 0)
      return v->mv_size != 4;
    if ((k->mv_size == 7 && memcmp(k->mv_data, "next_id", 7) == 0) ||
        (k->mv_size == 8 && memcmp(k->mv_data, "next_dir", 8) == 0) ||
        (k->mv_size == 9 && memcmp(k->mv_data, "forgotten", 9) == 0) ||
        (k->mv_size == 13 && memcmp(k->mv_data, "checkpoint_ns", 13) == 0))
      return v->mv_size != 8;
    return 0;
  case -1: { /* the free list: a count of page numbers, then the numbers,
                each a page of the file past the two meta pages, in
                descending order (LMDB's list of ids) */
    size_t n, prev = SIZE_MAX;
    if (v->mv_size < sizeof(size_t))
      return 1;
    memcpy(&n, p, sizeof(n));
    if (n > v->mv_size / sizeof(size_t) ||
        (n + 1) * sizeof(size_t) != v->mv_size)
      return 1;
    for (size_t i = 1; i <= n; i++) {
      size_t pg;
      memcpy(&pg, p + i * sizeof(size_t), sizeof(pg));
      if (pg < 2 || pg > last_pgno || pg >= prev)
        return 1;
      prev = pg;
    }
    return 0;
  }
  default:
    return 0;
  }
}

/* Read every entry of `dbi` (named `name`) through a cursor, checking it as
   database `which` (see entry_bad). */
static int check_db(MDB_env *env, MDB_txn *txn, MDB_dbi dbi, int which,
                    const char *name) {
  size_t maxkey = (size_t)mdb_env_get_maxkeysize(env);
  volatile uint8_t sink = 0;
  MDB_envinfo info;
  MDB_cursor *cur;
  MDB_val k, v;
  int rc;

  if (mdb_cursor_open(txn, dbi, &cur) != 0)
    return CHECK_LMDB_ERROR;
  mdb_env_info(env, &info);
  while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
    const uint8_t *p = v.mv_data;

    /* Touch every page of the value, as a reader of it would. */
    for (size_t i = 0; i < v.mv_size; i += 512)
      sink ^= p[i];
    if (v.mv_size > 0)
      sink ^= p[v.mv_size - 1];
    if (!entry_bad(which, &k, &v, maxkey, info.me_last_pgno))
      continue;
    if (which == TDM__DB_FILES && k.mv_size == 8)
      check_say("file record %" PRIu64 " does not decode",
                tdm__get_be64(k.mv_data));
    else
      check_say("a record of database '%s' does not decode", name);
    mdb_cursor_close(cur);
    return CHECK_BAD_RECORD;
  }
  mdb_cursor_close(cur);
  (void)sink;
  if (rc == MDB_NOTFOUND)
    return CHECK_OK;
  check_say("reading database '%s' failed: %s", name, mdb_strerror(rc));
  return CHECK_BAD_RECORD;
}

/* LMDB's own walk of every page: a compacting copy into /dev/null. */
static int check_pages(MDB_env *env) {
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC), rc;

  if (fd < 0)
    return CHECK_OK; /* no walk possible: the cursors below still read */
  rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
  close(fd);
  if (rc == 0)
    return CHECK_OK;
  check_say("LMDB's walk of its pages failed: %s", mdb_strerror(rc));
  return CHECK_BAD_RECORD;
}

/*
 * The pages of the free list, read with pread() (so it cannot fault): the
 * one tree LMDB's compacting copy does not walk (it counts the free pages
 * through a cursor, which never looks at a page's upper bound), while the
 * next write copies its pages by their headers' bounds: a damaged header
 * there crashes a commit (tests/integration/test-corrupt-store.sh, seed 85).
 * LMDB 0.9's on-disk format: a 16-byte page header (pgno, pad, flags,
 * lower/upper or an overflow page count), 16-bit node offsets after it,
 * 8-byte node headers; meta pages 0 and 1 hold the root of the free list.
 * Every page reached is checked: within the file, its own number, its type,
 * its bounds, each node inside the page, reached once. The snapshot is that
 * of transaction `txnid`; CHECK_OK when its meta page is not found (a writer
 * moved on: nothing is claimed), else CHECK_OK or CHECK_BAD_RECORD with why.
 */
enum {
  P_BRANCH = 0x01, P_LEAF = 0x02, P_OVERFLOW = 0x04, P_LEAF2 = 0x20,
  F_BIGDATA = 0x01, PAGEHDR = 16, NODEHDR = 8, DBREC = 48, MAX_DEPTH = 32
};

typedef struct pagewalk {
  int fd;
  size_t psize;
  uint64_t last_pg;
  uint8_t *seen; /* bit per page */
} pagewalk_t;

static int pw_bad(uint64_t pg, const char *why) {
  check_say("free list page %" PRIu64 ": %s", pg, why);
  return CHECK_BAD_RECORD;
}

/* Mark page `pg` seen (a page reached twice makes a cycle or a shared page)
   and read it into `buf`. */
static int pw_read(pagewalk_t *w, uint64_t pg, uint8_t *buf) {
  if (pg < 2 || pg > w->last_pg)
    return pw_bad(pg, "a page number outside the file");
  if (w->seen[pg / 8] & (1u << (pg % 8)))
    return pw_bad(pg, "reached twice");
  w->seen[pg / 8] |= (uint8_t)(1u << (pg % 8));
  if (pread(w->fd, buf, w->psize, (off_t)(pg * w->psize)) !=
      (ssize_t)w->psize)
    return pw_bad(pg, "cannot be read");
  if (tdm__get_le(buf, 8) != pg)
    return pw_bad(pg, "its header holds another page number");
  return CHECK_OK;
}

static int pw_tree(pagewalk_t *w, uint64_t pg, int depth) {
  uint8_t *page = malloc(w->psize);
  unsigned flags, lower, upper, n;
  int rc;

  if (page == NULL)
    return CHECK_OK; /* no walk possible */
  if (depth > MAX_DEPTH) {
    rc = pw_bad(pg, "a tree deeper than LMDB allows");
    goto out;
  }
  if ((rc = pw_read(w, pg, page)) != CHECK_OK)
    goto out;
  flags = (unsigned)tdm__get_le(page + 10, 2);
  lower = (unsigned)tdm__get_le(page + 12, 2);
  upper = (unsigned)tdm__get_le(page + 14, 2);
  n = (lower - PAGEHDR) / 2;
  if ((flags & (P_BRANCH | P_LEAF)) == 0 || (flags & P_LEAF2) ||
      (flags & (P_BRANCH | P_LEAF)) == (P_BRANCH | P_LEAF))
    rc = pw_bad(pg, "neither a branch nor a leaf page where one belongs");
  else if (lower < PAGEHDR || lower > upper || upper > w->psize ||
           lower % 2 != 0)
    rc = pw_bad(pg, "its bounds are out of the page");
  else if ((flags & P_BRANCH) && n == 0)
    rc = pw_bad(pg, "an empty branch page");
  for (unsigned i = 0; i < n && rc == CHECK_OK; i++) {
    size_t off = (size_t)tdm__get_le(page + PAGEHDR + 2 * i, 2);
    const uint8_t *node = page + off;
    uint64_t lo, hi, nflags, ksize, ov, pages;
    uint8_t *opage;

    if (off < upper || off + NODEHDR > w->psize) {
      rc = pw_bad(pg, "a node outside the page");
      break;
    }
    lo = tdm__get_le(node, 2);
    hi = tdm__get_le(node + 2, 2);
    nflags = tdm__get_le(node + 4, 2);
    ksize = tdm__get_le(node + 6, 2);
    if (off + NODEHDR + ksize > w->psize) {
      rc = pw_bad(pg, "a key beyond the page");
    } else if (flags & P_BRANCH) {
      rc = pw_tree(w, lo | hi << 16 | nflags << 32, depth + 1);
    } else if (!(nflags & F_BIGDATA)) {
      if (off + NODEHDR + ksize + (lo | hi << 16) > w->psize)
        rc = pw_bad(pg, "a value beyond the page");
    } else if (off + NODEHDR + ksize + 8 > w->psize) {
      rc = pw_bad(pg, "a node beyond the page");
    } else if ((opage = malloc(w->psize)) != NULL) {
      /* A long list of free pages: overflow pages, each reached once. */
      ov = tdm__get_le(node + NODEHDR + ksize, 8);
      if ((rc = pw_read(w, ov, opage)) == CHECK_OK) {
        pages = tdm__get_le(opage + 12, 4);
        if (!(tdm__get_le(opage + 10, 2) & P_OVERFLOW) || pages == 0 ||
            pages > w->last_pg - ov + 1 ||
            (lo | hi << 16) > pages * w->psize - PAGEHDR)
          rc = pw_bad(ov, "a damaged overflow page");
        for (uint64_t k = 1; k < pages && rc == CHECK_OK; k++) {
          if (w->seen[(ov + k) / 8] & (1u << ((ov + k) % 8)))
            rc = pw_bad(ov + k, "reached twice");
          w->seen[(ov + k) / 8] |= (uint8_t)(1u << ((ov + k) % 8));
        }
      }
      free(opage);
    }
  }
out:
  free(page);
  return rc;
}

static int check_free_pages(int fd, uint64_t txnid) {
  uint8_t meta[2][PAGEHDR + 136];
  pagewalk_t w;
  struct stat st;
  uint64_t root;
  int which = -1, rc;

  memset(&w, 0, sizeof(w));
  if (fstat(fd, &st) != 0 ||
      pread(fd, meta[0], sizeof(meta[0]), 0) != (ssize_t)sizeof(meta[0]))
    return CHECK_OK;
  w.psize = (size_t)tdm__get_le(meta[0] + PAGEHDR + 24, 4); /* free md_pad */
  if (w.psize < 512 || w.psize > 65536 || (w.psize & (w.psize - 1)) != 0 ||
      pread(fd, meta[1], sizeof(meta[1]), (off_t)w.psize) !=
          (ssize_t)sizeof(meta[1]))
    return CHECK_OK; /* LMDB's open judges the meta pages */
  for (int m = 0; m < 2; m++)
    if (tdm__get_le(meta[m] + PAGEHDR, 4) == 0xBEEFC0DEu &&
        tdm__get_le(meta[m] + PAGEHDR + 128, 8) == txnid)
      which = m;
  if (which < 0)
    return CHECK_OK;
  w.fd = fd;
  w.last_pg = tdm__get_le(meta[which] + PAGEHDR + 120, 8);
  if (w.last_pg < 1 || w.last_pg >= (uint64_t)st.st_size / w.psize)
    return pw_bad(w.last_pg, "the meta page counts pages the file does not "
                  "hold");
  root = tdm__get_le(meta[which] + PAGEHDR + 24 + 40, 8);
  if (root == UINT64_MAX)
    return CHECK_OK; /* no free list */
  if ((w.seen = calloc((size_t)(w.last_pg / 8 + 1), 1)) == NULL)
    return CHECK_OK;
  rc = pw_tree(&w, root, 0);
  free(w.seen);
  return rc;
}

/* The child's walk of the store in `dir`. Returns its exit status. */
static int check_walk(const char *dir) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_dbi dbi;
  int rc = CHECK_LMDB_ERROR;

  if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, TDM__N_DBS) != 0 ||
      mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600) != 0)
    goto out;
  if ((rc = tdm__env_begin_read(env, NULL, NULL, &txn)) != 0) {
    txn = NULL;
    if (rc == MDB_CORRUPTED) {
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
        (rc = check_free_pages(fd, (uint64_t)mdb_txn_id(txn))) != CHECK_OK)
      goto out;
  }
  if ((rc = check_pages(env)) != CHECK_OK ||
      (rc = check_db(env, txn, 0, -1, "(free pages)")) != CHECK_OK)
    goto out;
  if (mdb_dbi_open(txn, NULL, 0, &dbi) != 0) {
    rc = CHECK_LMDB_ERROR;
    goto out;
  }
  if ((rc = check_db(env, txn, dbi, TDM__N_DBS, "(main)")) != CHECK_OK)
    goto out;
  /* A store of another schema is not decoded here: the open says so. */
  if (mdb_dbi_open(txn, tdm__db_names[TDM__DB_META], 0, &dbi) == 0) {
    MDB_val k = {6, (void *)"schema"}, v;
    if (mdb_get(txn, dbi, &k, &v) == 0 &&
        (v.mv_size != 4 || tdm__get_le(v.mv_data, 4) < 1 ||
         tdm__get_le(v.mv_data, 4) > TDM_STORE_SCHEMA)) {
      rc = CHECK_OK;
      goto out;
    }
  }
  for (int i = 0; i < TDM__N_DBS; i++) {
    int r = mdb_dbi_open(txn, tdm__db_names[i], 0, &dbi);
    if (r == MDB_NOTFOUND)
      continue; /* the open says which one is missing */
    if (r != 0) { /* e.g. a foreign store: the open says so */
      rc = CHECK_LMDB_ERROR;
      goto out;
    }
    if ((rc = check_db(env, txn, dbi, i, tdm__db_names[i])) != CHECK_OK)
      goto out;
  }
out:
  if (txn != NULL)
    mdb_txn_abort(txn);
  if (env != NULL)
    mdb_env_close(env);
  return rc;
}

/* ---- DIR/checked ---------------------------------------------------------*/

/* When process `pid` started, in clock ticks since boot; 0 if unknown. */
static unsigned long long proc_start(long pid) {
  char path[64], buf[1024], *p;
  unsigned long long start = 0;
  ssize_t n;
  int fd;

  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return 0;
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* Field 2 is the command in parentheses and may hold anything: skip to
     its end. Field 22 is the start time. */
  if ((p = strrchr(buf, ')')) == NULL)
    return 0;
  for (int field = 2; field < 22 && p != NULL; field++)
    p = strchr(p + 1, ' ');
  if (p == NULL || sscanf(p + 1, "%llu", &start) != 1)
    return 0;
  return start;
}

static int data_stat(const char *dir, struct stat *st) {
  char path[4096 + 16];
  snprintf(path, sizeof(path), "%s/data.mdb", dir);
  return stat(path, st);
}

/* Does DIR/checked vouch for the store? */
static int mark_vouches(const char *dir) {
  char path[4096 + 16], buf[256], kind[16];
  unsigned long long a[7];
  struct stat st;
  ssize_t n;
  int fd;

  snprintf(path, sizeof(path), "%s/" MARK_NAME, dir);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return 0;
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  if (strncmp(buf, MARK_MAGIC " ", sizeof(MARK_MAGIC)) != 0)
    return 0;
  n = sscanf(buf + sizeof(MARK_MAGIC), "%15s %llu %llu %llu %llu %llu %llu %llu",
             kind, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6]);
  if (n == 3 && strcmp(kind, "open") == 0)
    return a[0] > 0 && a[1] > 0 && proc_start((long)a[0]) == a[1];
  if (n == 8 && strcmp(kind, "closed") == 0 && data_stat(dir, &st) == 0)
    return a[0] == (unsigned long long)st.st_dev &&
           a[1] == (unsigned long long)st.st_ino &&
           a[2] == (unsigned long long)st.st_size &&
           a[3] == (unsigned long long)st.st_mtim.tv_sec &&
           a[4] == (unsigned long long)st.st_mtim.tv_nsec &&
           a[5] == (unsigned long long)st.st_ctim.tv_sec &&
           a[6] == (unsigned long long)st.st_ctim.tv_nsec;
  return 0;
}

/* Replace DIR/checked by `text` (a new file renamed over it), or remove it
   (`text` NULL). A failure only costs the next open a check. */
static void mark_write(const char *dir, const char *text,
                       const tdm__log_t *log) {
  char path[4096 + 16], tmp[4096 + 16];
  int fd, ok = 0;

  snprintf(path, sizeof(path), "%s/" MARK_NAME, dir);
  if (text == NULL) {
    if (unlink(path) != 0 && errno != ENOENT)
      tdm__debug(log, "cannot remove %s: %s", path, strerror(errno));
    return;
  }
  snprintf(tmp, sizeof(tmp), "%s/" MARK_NAME ".tmp", dir);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    size_t len = strlen(text);
    ok = write(fd, text, len) == (ssize_t)len;
    ok = close(fd) == 0 && ok;
  }
  if (!ok || rename(tmp, path) != 0) {
    tdm__debug(log, "cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
    unlink(path);
  }
}

void tdm__check_mark_open(const char *dir, const tdm__log_t *log) {
  unsigned long long start = proc_start((long)getpid());
  char text[128];

  if (start == 0) {
    mark_write(dir, NULL, log);
    return;
  }
  snprintf(text, sizeof(text), MARK_MAGIC " open %ld %llu\n", (long)getpid(),
           start);
  mark_write(dir, text, log);
}

void tdm__check_mark_closed(const char *dir, int clean, const tdm__log_t *log) {
  struct stat st;
  char text[256];

  char path[4096 + 16];
  struct timespec times[2];

  if (!clean || data_stat(dir, &st) != 0) {
    mark_write(dir, NULL, log);
    return;
  }
  /* A write within the same tick of the kernel's coarse clock would leave
     mtime and ctime as they are: move mtime a second back, to a time no
     later write can give it, and note the file as it is then. */
  snprintf(path, sizeof(path), "%s/data.mdb", dir);
  times[0].tv_nsec = UTIME_OMIT;
  times[1] = st.st_mtim;
  times[1].tv_sec -= 1;
  if (utimensat(AT_FDCWD, path, times, 0) != 0 || data_stat(dir, &st) != 0) {
    mark_write(dir, NULL, log);
    return;
  }
  snprintf(text, sizeof(text),
           MARK_MAGIC " closed %llu %llu %llu %llu %llu %llu %llu\n",
           (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
           (unsigned long long)st.st_size,
           (unsigned long long)st.st_mtim.tv_sec,
           (unsigned long long)st.st_mtim.tv_nsec,
           (unsigned long long)st.st_ctim.tv_sec,
           (unsigned long long)st.st_ctim.tv_nsec);
  mark_write(dir, text, log);
}

/* ---- the check -----------------------------------------------------------*/

int tdm__check_store(const char *dir, const char *qdir, int lock_fd,
                     const tdm__log_t *log) {
  char said[256], why[320];
  struct stat st;
  size_t got = 0;
  unsigned limit;
  int fds[2], status = 0;
  pid_t pid, parent;

  if (data_stat(dir, &st) != 0 || st.st_size == 0)
    return 0; /* nothing to check: the open creates it or says why not */
  if (mark_vouches(dir)) {
    tdm__debug(log, "%s: closed cleanly or in use by a writer that checked it: "
               "not checked again", qdir);
    return 0;
  }
  limit = CHECK_MIN_S + (unsigned)((uint64_t)st.st_size / CHECK_BYTES_PER_S);
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
    if (lock_fd >= 0)
      close(lock_fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(CHECK_OK); /* the parent is already gone */
    /* LMDB's assertion messages, and ours, go to the parent. */
    dup2(fds[1], 2);
    signal(SIGALRM, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    alarm(limit);
    _exit(check_walk(dir));
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
    snprintf(why, sizeof(why), "reading it did not finish in %u s", limit);
  else if (WIFSIGNALED(status))
    snprintf(why, sizeof(why), "reading it crashed a check process (signal "
             "%d, %s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(why, sizeof(why), "reading it failed a check process (exit "
             "status %d)", WEXITSTATUS(status));
  tdm__error(log, "state store %s is corrupt: %s; move it away (the files "
             "will be read again from the start) or restore a backup",
             qdir, why);
  return TDM_ESTATE;
}
