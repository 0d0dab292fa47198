/* test-store.c: the LMDB state store (state/store.c, record.c, check.c), on
   real files. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "state/store.h"

/* Every message the store logs, one per line. */
static char logbuf[1 << 16];

static void capture(void *arg, tdm_log_level_t level, const char *msg) {
  size_t n = strlen(logbuf);
  (void)arg;
  (void)level;
  snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", msg);
}

static const tdm__log_t cap_log = {TDM_LOG_DEBUG, capture, NULL};

#define ASSERT_LOGGED(needle)                                          \
  do {                                                                 \
    if (strstr(logbuf, (needle)) == NULL)                              \
      TDM_FAIL_("log lacks \"%s\"; log:\n%s", (needle), logbuf);       \
  } while (0)

static tdm_store_t *open_ok(const char *dir, unsigned flags) {
  tdm_store_t *s = NULL;
  ASSERT_EQ(tdm_store_open(dir, flags, &cap_log, &s), 0);
  ASSERT_NOT_NULL(s);
  return s;
}

static int open_err(const char *dir, unsigned flags) {
  tdm_store_t *s = (tdm_store_t *)1;
  int rc = tdm_store_open(dir, flags, &cap_log, &s);
  ASSERT_NULL(s);
  return rc;
}

/* A record with every field set from `id`, so any mix-up shows. */
static tdm_file_rec_t make_rec(uint64_t id, const char *path,
                               const char *error) {
  tdm_file_rec_t r;
  memset(&r, 0, sizeof(r));
  r.id = id;
  r.dev = id * 3 + 0x100000000ull;
  r.ino = id * 7 + 1;
  r.size = 1000 + id;
  r.mtime_ns = -(int64_t)id - 1;
  r.ctime_ns = 1600000000000000000ll + (int64_t)id;
  r.offset = 900 + id;
  r.fp_hash = 0xdeadbeefcafef00dull ^ id;
  r.fp_len = 4096;
  r.marker_len = (uint32_t)(64 + id);
  r.marker = ~id;
  r.state = (uint32_t)(id % 5);
  r.truncations = (uint32_t)id;
  r.pieces = (1ull << 40) | id;
  r.first_seen_ns = 1700000000000000000ll + (int64_t)id;
  r.updated_ns = INT64_MAX - (int64_t)id;
  for (int i = 0; i < 16; i++)
    r.content_hash[i] = (uint8_t)(id + (uint64_t)i * 17);
  r.dup_of = id + 5;
  r.attempts = (uint32_t)(id % 4);
  r.exit_status = -(int32_t)(id % 300);
  r.path = path;
  r.error = error;
  return r;
}

static void assert_rec_eq(const tdm_file_rec_t *a, const tdm_file_rec_t *b) {
  ASSERT_EQ(a->id, b->id);
  ASSERT_EQ(a->dev, b->dev);
  ASSERT_EQ(a->ino, b->ino);
  ASSERT_EQ(a->size, b->size);
  ASSERT_EQ(a->mtime_ns, b->mtime_ns);
  ASSERT_EQ(a->ctime_ns, b->ctime_ns);
  ASSERT_EQ(a->offset, b->offset);
  ASSERT(a->fp_hash == b->fp_hash);
  ASSERT_EQ(a->fp_len, b->fp_len);
  ASSERT_EQ(a->marker_len, b->marker_len);
  ASSERT(a->marker == b->marker);
  ASSERT_EQ(a->state, b->state);
  ASSERT_EQ(a->truncations, b->truncations);
  ASSERT_EQ(a->pieces, b->pieces);
  ASSERT_EQ(a->first_seen_ns, b->first_seen_ns);
  ASSERT_EQ(a->updated_ns, b->updated_ns);
  ASSERT(memcmp(a->content_hash, b->content_hash, 16) == 0);
  ASSERT_EQ(a->dup_of, b->dup_of);
  ASSERT_EQ(a->attempts, b->attempts);
  ASSERT_EQ(a->exit_status, b->exit_status);
  ASSERT_STR_EQ(a->path, b->path);
  if (a->error == NULL || b->error == NULL)
    ASSERT(a->error == b->error);
  else
    ASSERT_STR_EQ(a->error, b->error);
}

/* Deep copies of loaded records (theirs are valid only in the callback). */
typedef struct loaded {
  size_t n;
  tdm_file_rec_t recs[16];
} loaded_t;

static int collect(void *arg, const tdm_file_rec_t *rec) {
  loaded_t *l = arg;
  ASSERT_LT(l->n, 16);
  l->recs[l->n] = *rec;
  l->recs[l->n].path = strdup(rec->path);
  l->recs[l->n].error = rec->error ? strdup(rec->error) : NULL;
  l->n++;
  return 0;
}

static void loaded_free(loaded_t *l) {
  for (size_t i = 0; i < l->n; i++) {
    free((char *)l->recs[i].path);
    free((char *)l->recs[i].error);
  }
  l->n = 0;
}

static size_t count_files(tdm_store_t *s) {
  loaded_t l = {0};
  size_t n;
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  n = l.n;
  loaded_free(&l);
  return n;
}

static void commit_recs(tdm_store_t *s, const tdm_file_rec_t *recs, size_t n) {
  const tdm_file_rec_t *ptrs[16];
  tdm_store_batch_t b = {0};
  ASSERT_LE(n, 16);
  for (size_t i = 0; i < n; i++)
    ptrs[i] = &recs[i];
  b.put_files = ptrs;
  b.n_put_files = n;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
}

static void hash_of(int i, uint8_t h[16]) {
  for (int k = 0; k < 16; k++)
    h[k] = (uint8_t)(i * 31 + k);
}

/* Raw LMDB access to a state dir, for planting what the store must refuse. */
static void raw_put(const char *dir, const char *db, const void *key,
                    size_t klen, const void *val, size_t vlen) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 8), 0);
  ASSERT_EQ(mdb_env_open(env, dir, 0, 0600), 0);
  ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
  ASSERT_EQ(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
  ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

/* Wait for a forked child; it reports by exiting 0. */
static void wait_child_ok(pid_t pid) {
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
}

TEST(roundtrip_all_fields) {
  const char *dir = tdm_test_path("state");
  /* Out of id order, ids chosen so little-endian keys would sort wrongly. */
  tdm_file_rec_t in[4] = {
      make_rec(65536, "/var/log/a b/c d.log", NULL),
      make_rec(1, "/x/new\nline.log", "read failed:\nInput/output error"),
      make_rec(256, "/tab\there/\xc3\xa9t\xc3\xa9.log", ""),
      make_rec(2, "", "x"),
  };
  loaded_t l = {0};
  tdm_store_t *s = open_ok(dir, 0);
  struct timespec t0, t1;

  ASSERT_EQ(tdm_store_next_id(s), 1);
  ASSERT_EQ(tdm_store_checkpoint_ns(s), 0);
  clock_gettime(CLOCK_REALTIME, &t0);
  commit_recs(s, in, 4);
  clock_gettime(CLOCK_REALTIME, &t1);
  tdm_store_close(s);

  s = open_ok(dir, 0);
  ASSERT_STR_EQ(tdm_store_dir(s), dir);
  ASSERT_GE(tdm_store_checkpoint_ns(s), t0.tv_sec * 1000000000ll + t0.tv_nsec);
  ASSERT_LE(tdm_store_checkpoint_ns(s), t1.tv_sec * 1000000000ll + t1.tv_nsec);
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  ASSERT_EQ(l.n, 4);
  assert_rec_eq(&l.recs[0], &in[1]); /* id 1 */
  assert_rec_eq(&l.recs[1], &in[3]); /* id 2 */
  in[2].error = NULL;                /* "" is stored as no error */
  assert_rec_eq(&l.recs[2], &in[2]); /* id 256 */
  assert_rec_eq(&l.recs[3], &in[0]); /* id 65536 */
  loaded_free(&l);
  tdm_store_close(s);
}

TEST(creates_dir_0700_and_writes_pid) {
  const char *dir = tdm_test_path("state");
  char want[32], *pid;
  struct stat st;
  tdm_store_t *s = open_ok(dir, 0);

  ASSERT_EQ(stat(dir, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0700);
  pid = tdm_test_read(tdm_test_path("state/writer.lock"), NULL);
  snprintf(want, sizeof(want), "%ld\n", (long)getpid());
  ASSERT_STR_EQ(pid, want);
  free(pid);
  ASSERT_EQ(stat(tdm_test_path("state/data.mdb"), &st), 0);
  ASSERT_EQ(stat(tdm_test_path("state/lock.mdb"), &st), 0);
  tdm_store_close(s);
}

TEST(missing_parent_names_dir) {
  const char *dir = tdm_test_path("no/such/state");
  ASSERT_EQ(open_err(dir, 0), -ENOENT);
  ASSERT_LOGGED(dir);
  ASSERT_LOGGED("parent directory does not exist");
}

TEST(reader_without_store_is_enoent) {
  const char *dir = tdm_test_path("state");
  struct stat st;

  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), -ENOENT); /* no dir */
  ASSERT_LOGGED(dir);
  ASSERT_EQ(mkdir(dir, 0700), 0);
  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), -ENOENT); /* empty dir */
  ASSERT_NE(stat(tdm_test_path("state/lock.mdb"), &st), 0); /* no litter */
}

TEST(put_replaces_and_delete_removes) {
  const char *dir = tdm_test_path("state");
  tdm_file_rec_t recs[5], upd;
  const tdm_file_rec_t *put[1] = {&upd};
  uint64_t del[3] = {2, 4, 999}; /* 999 was never there */
  tdm_store_batch_t b = {0};
  loaded_t l = {0};
  tdm_store_t *s = open_ok(dir, 0);

  for (int i = 0; i < 5; i++)
    recs[i] = make_rec((uint64_t)i + 1, "/f", NULL);
  commit_recs(s, recs, 5);
  upd = make_rec(3, "/f.renamed", "now failed");
  upd.offset = 123456;
  b.put_files = put;
  b.n_put_files = 1;
  b.del_files = del;
  b.n_del_files = 3;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  tdm_store_close(s);

  s = open_ok(dir, 0);
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  ASSERT_EQ(l.n, 3);
  assert_rec_eq(&l.recs[0], &recs[0]);
  assert_rec_eq(&l.recs[1], &upd);
  assert_rec_eq(&l.recs[2], &recs[4]);
  loaded_free(&l);
  tdm_store_close(s);
}

TEST(next_id_persists_and_never_goes_back) {
  const char *dir = tdm_test_path("state");
  tdm_store_batch_t b = {0};
  tdm_store_t *s = open_ok(dir, 0);

  b.next_id = 10;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  ASSERT_EQ(tdm_store_next_id(s), 10);
  b.next_id = 5;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  ASSERT_EQ(tdm_store_next_id(s), 10);
  tdm_store_close(s);
  s = open_ok(dir, 0);
  ASSERT_EQ(tdm_store_next_id(s), 10);
  tdm_store_close(s);
  s = open_ok(dir, TDM_STORE_RDONLY);
  ASSERT_EQ(tdm_store_next_id(s), 10);
  tdm_store_close(s);
}

TEST(blobs_and_hashes) {
  const char *dir = tdm_test_path("state");
  uint8_t h1[16], h2[16], h3[16], buf[TDM_RESTORE_MAX];
  uint8_t del[1][16];
  tdm_store_blob_t blob = {"file:path=/out put", "\x00\x01\x02\x03", 4};
  tdm_store_hash_t hashes[2];
  tdm_store_batch_t b = {0};
  uint64_t id = 0;
  size_t len = 99;
  tdm_store_t *s = open_ok(dir, 0);

  hash_of(1, h1);
  hash_of(2, h2);
  hash_of(3, h3);
  memcpy(hashes[0].hash, h1, 16);
  hashes[0].file_id = 11;
  memcpy(hashes[1].hash, h2, 16);
  hashes[1].file_id = (1ull << 63) + 7;
  b.blobs = &blob;
  b.n_blobs = 1;
  b.hashes = hashes;
  b.n_hashes = 2;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);

  ASSERT_EQ(tdm_store_find_hash(s, h1, &id), 0);
  ASSERT_EQ(id, 11);
  ASSERT_EQ(tdm_store_find_hash(s, h2, &id), 0);
  ASSERT(id == (1ull << 63) + 7);
  ASSERT_EQ(tdm_store_find_hash(s, h3, &id), -ENOENT);
  ASSERT_EQ(tdm_store_get_blob(s, blob.key, buf, sizeof(buf), &len), 0);
  ASSERT_EQ(len, 4);
  ASSERT(memcmp(buf, blob.data, 4) == 0);
  ASSERT_EQ(tdm_store_get_blob(s, "stdout", buf, sizeof(buf), &len), 0);
  ASSERT_EQ(len, 0);
  ASSERT_EQ(tdm_store_get_blob(s, blob.key, buf, 3, &len), -ENOBUFS);
  ASSERT_EQ(len, 4);

  /* Forget h1; delete-then-put leaves h2 put. */
  memset(&b, 0, sizeof(b));
  memcpy(del[0], h1, 16);
  b.del_hashes = (const uint8_t(*)[16])del;
  b.n_del_hashes = 1;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  ASSERT_EQ(tdm_store_find_hash(s, h1, &id), -ENOENT);
  ASSERT_EQ(tdm_store_find_hash(s, h2, &id), 0);
  tdm_store_close(s);
}

TEST(long_spec_keys_are_stored_by_hash) {
  const char *dir = tdm_test_path("state");
  char key[600], key2[600], buf[8];
  tdm_store_blob_t blobs[2] = {{key, "x", 1}, {key2, "yz", 2}};
  tdm_store_batch_t b = {0};
  size_t len;
  tdm_store_t *s = open_ok(dir, 0);

  /* Longer than LMDB's 511-byte keys; differing only at the end. */
  memset(key, 'k', sizeof(key) - 1);
  key[sizeof(key) - 1] = '\0';
  memcpy(key2, key, sizeof(key));
  key2[sizeof(key2) - 2] = 'j';
  b.blobs = blobs;
  b.n_blobs = 2;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  tdm_store_close(s);
  s = open_ok(dir, 0);
  ASSERT_EQ(tdm_store_get_blob(s, key, buf, sizeof(buf), &len), 0);
  ASSERT_EQ(len, 1);
  ASSERT_EQ(memcmp(buf, "x", 1), 0);
  ASSERT_EQ(tdm_store_get_blob(s, key2, buf, sizeof(buf), &len), 0);
  ASSERT_EQ(len, 2);
  ASSERT_EQ(memcmp(buf, "yz", 2), 0);
  ASSERT_EQ(tdm_store_get_blob(s, "", buf, sizeof(buf), &len), -EINVAL);
  tdm_store_close(s);
}

TEST(blob_too_big_applies_nothing) {
  const char *dir = tdm_test_path("state");
  static uint8_t big[TDM_RESTORE_MAX + 1];
  tdm_file_rec_t rec = make_rec(1, "/f", NULL);
  const tdm_file_rec_t *put[1] = {&rec};
  tdm_store_blob_t blobs[2] = {{"a", "x", 1}, {"b", big, sizeof(big)}};
  tdm_store_batch_t b = {0};
  uint8_t buf[TDM_RESTORE_MAX];
  size_t len;
  tdm_store_t *s = open_ok(dir, 0);

  b.put_files = put;
  b.n_put_files = 1;
  b.blobs = blobs;
  b.n_blobs = 2;
  b.next_id = 2;
  ASSERT_EQ(tdm_store_commit(s, &b), -EINVAL);
  ASSERT_LOGGED(dir);
  ASSERT_EQ(count_files(s), 0);
  ASSERT_EQ(tdm_store_get_blob(s, "a", buf, sizeof(buf), &len), 0);
  ASSERT_EQ(len, 0);
  ASSERT_EQ(tdm_store_next_id(s), 1);
  ASSERT_EQ(tdm_store_checkpoint_ns(s), 0);
  tdm_store_close(s);
}

/* A commit that fails half-way through writing (file size limit, as a full
   disk would) leaves the last checkpoint intact and the store usable. */
TEST(failed_write_applies_nothing) {
  const char *dir = tdm_test_path("state");
  static tdm_file_rec_t recs[2000];
  static const tdm_file_rec_t *ptrs[2000];
  static char paths[2000][64];
  tdm_file_rec_t first = make_rec(1, "/first", NULL);
  tdm_store_blob_t blob = {"p", "y", 1};
  tdm_store_batch_t b = {0};
  struct rlimit lim, old;
  struct stat st;
  loaded_t l = {0};
  uint8_t buf[8];
  size_t len;
  int rc;
  tdm_store_t *s = open_ok(dir, 0);

  commit_recs(s, &first, 1);
  for (int i = 0; i < 2000; i++) {
    snprintf(paths[i], sizeof(paths[i]), "/data/file-%d.log", i);
    recs[i] = make_rec((uint64_t)i + 1, paths[i], NULL); /* id 1 replaced */
    ptrs[i] = &recs[i];
  }
  b.put_files = ptrs;
  b.n_put_files = 2000;
  b.blobs = &blob;
  b.n_blobs = 1;
  b.next_id = 2001;

  ASSERT_EQ(stat(tdm_test_path("state/data.mdb"), &st), 0);
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = (rlim_t)st.st_size;
  signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  rc = tdm_store_commit(s, &b);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  /* EFBIG; EIO when LMDB's write straddled the limit (a short write). */
  ASSERT(rc == -EFBIG || rc == -EIO);
  ASSERT_LOGGED(dir);
  ASSERT_LOGGED("checkpoint failed");

  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  ASSERT_EQ(l.n, 1);
  assert_rec_eq(&l.recs[0], &first);
  loaded_free(&l);
  ASSERT_EQ(tdm_store_get_blob(s, "p", buf, sizeof(buf), &len), 0);
  ASSERT_EQ(len, 0);
  ASSERT_EQ(tdm_store_next_id(s), 1);

  ASSERT_EQ(tdm_store_commit(s, &b), 0); /* room again: it goes through */
  tdm_store_close(s);
  s = open_ok(dir, 0);
  ASSERT_EQ(tdm_store_next_id(s), 2001);
  tdm_store_close(s);
}

/* Checks records of the growth tests as they stream by. */
typedef struct check_many {
  uint64_t n;
  char path[64];
} check_many_t;

static const char *many_path(char *buf, uint64_t id) {
  snprintf(buf, 64, "/logs/%" PRIu64 "/some fairly long name.log", id);
  return buf;
}

static int check_many(void *arg, const tdm_file_rec_t *rec) {
  check_many_t *c = arg;
  tdm_file_rec_t want;
  c->n++;
  want = make_rec(c->n, many_path(c->path, c->n), "err");
  assert_rec_eq(rec, &want);
  return 0;
}

/* Commit ids [from, to) in batches of `per`. */
static void commit_many(tdm_store_t *s, uint64_t from, uint64_t to,
                        size_t per) {
  static tdm_file_rec_t recs[4096];
  static const tdm_file_rec_t *ptrs[4096];
  static char paths[4096][64];
  ASSERT_LE(per, 4096);
  while (from < to) {
    tdm_store_batch_t b = {0};
    size_t n = 0;
    for (; n < per && from < to; n++, from++) {
      recs[n] = make_rec(from, many_path(paths[n], from), "err");
      ptrs[n] = &recs[n];
    }
    b.put_files = ptrs;
    b.n_put_files = n;
    b.next_id = from;
    ASSERT_EQ(tdm_store_commit(s, &b), 0);
  }
}

TEST(map_grows_from_64k) {
  const char *dir = tdm_test_path("state");
  check_many_t c = {0};
  tdm_store_t *s;

  tdm__store_set_initial_map_size(64 << 10);
  s = open_ok(dir, 0);
  commit_many(s, 1, 5001, 4000); /* one batch far over 64 KiB */
  commit_many(s, 5001, 6001, 10);
  ASSERT_LOGGED("map grown");
  tdm_store_close(s);

  s = open_ok(dir, 0);
  ASSERT_EQ(tdm_store_next_id(s), 6001);
  ASSERT_EQ(tdm_store_load_files(s, check_many, &c), 0);
  ASSERT_EQ(c.n, 6000);
  tdm_store_close(s);
}

TEST(second_open_same_process_is_locked) {
  const char *dir = tdm_test_path("state");
  tdm_store_t *s = open_ok(dir, 0);

  ASSERT_EQ(open_err(dir, 0), TDM_ELOCKED);
  ASSERT_LOGGED("already open in this process");
  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), TDM_ELOCKED);
  ASSERT_EQ(symlink(dir, tdm_test_path("alias")), 0); /* by identity */
  ASSERT_EQ(open_err(tdm_test_path("alias"), TDM_STORE_RDONLY), TDM_ELOCKED);
  tdm_store_close(s);
  s = open_ok(tdm_test_path("alias"), TDM_STORE_RDONLY);
  tdm_store_close(s);
}

TEST(writer_lock_names_other_pid) {
  const char *dir = tdm_test_path("state");
  char want[64];
  tdm_store_t *s = open_ok(dir, 0);
  pid_t pid;

  snprintf(want, sizeof(want), "in use by another tidemark (pid %ld)",
           (long)getpid());
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    tdm_store_t *r;
    alarm(60);
    ASSERT_EQ(open_err(dir, 0), TDM_ELOCKED);
    ASSERT_LOGGED(want);
    ASSERT_LOGGED(dir);
    r = open_ok(dir, TDM_STORE_RDONLY); /* status beside run */
    tdm_store_close(r);
    _exit(0);
  }
  wait_child_ok(pid);

  tdm_store_close(s); /* the lock goes with it */
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    tdm_store_close(open_ok(dir, 0));
    _exit(0);
  }
  wait_child_ok(pid);
}

/* A reader in another process sees each commit of the writer, including
   after the writer grew the map past the reader's (MDB_MAP_RESIZED). */
TEST(reader_in_other_process_sees_commits) {
  const char *dir = tdm_test_path("state");
  int up[2], down[2];
  tdm_store_t *s;
  char c;
  pid_t pid;

  tdm__store_set_initial_map_size(64 << 10);
  s = open_ok(dir, 0);
  commit_many(s, 1, 11, 10);
  ASSERT_EQ(pipe(up), 0);
  ASSERT_EQ(pipe(down), 0);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    check_many_t cm = {0};
    tdm_store_t *r;
    /* Only the peer holds the other ends: a crash on either side is EOF. */
    close(up[0]);
    close(down[1]);
    alarm(60); /* the harness's alarm is not inherited */
    r = open_ok(dir, TDM_STORE_RDONLY);
    ASSERT_EQ(tdm_store_load_files(r, check_many, &cm), 0);
    ASSERT_EQ(cm.n, 10);
    ASSERT_EQ(write(up[1], "r", 1), 1);
    ASSERT_EQ(read(down[0], &c, 1), 1); /* the writer committed more */
    cm.n = 0;
    ASSERT_EQ(tdm_store_load_files(r, check_many, &cm), 0);
    ASSERT_EQ(cm.n, 8010);
    ASSERT_LOGGED("the writer grew the map");
    tdm_store_close(r);
    _exit(0);
  }
  close(up[1]);
  close(down[0]);
  ASSERT_EQ(read(up[0], &c, 1), 1);
  /* Over 1 MiB: past the reader's map (LMDB persists no size below it). */
  commit_many(s, 11, 8011, 4000);
  ASSERT_EQ(write(down[1], "w", 1), 1);
  wait_child_ok(pid);
  tdm_store_close(s);
}

/* tdm_store_refresh: a reader (another process) learns whether the writer
   committed since its last look, and the new checkpoint time; a writer may
   not call it. */
TEST(refresh_tells_a_reader_of_new_commits) {
  const char *dir = tdm_test_path("state");
  int up[2], down[2];
  uint64_t id;
  tdm_store_t *s;
  char c;
  pid_t pid;

  s = open_ok(dir, 0);
  commit_many(s, 1, 11, 10);
  ASSERT_EQ(tdm_store_refresh(s, &id), -EINVAL);
  ASSERT_EQ(pipe(up), 0);
  ASSERT_EQ(pipe(down), 0);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    uint64_t a, b, d;
    int64_t ns;
    tdm_store_t *r;
    close(up[0]);
    close(down[1]);
    alarm(60);
    r = open_ok(dir, TDM_STORE_RDONLY);
    ASSERT_EQ(tdm_store_refresh(r, &a), 0);
    ASSERT(a > 0);
    ns = tdm_store_checkpoint_ns(r);
    ASSERT(ns > 0);
    ASSERT_EQ(tdm_store_refresh(r, &b), 0);
    ASSERT_EQ(b, a); /* nothing committed in between */
    ASSERT_EQ(write(up[1], "r", 1), 1);
    ASSERT_EQ(read(down[0], &c, 1), 1); /* the writer committed again */
    ASSERT_EQ(tdm_store_refresh(r, &d), 0);
    ASSERT(d > a);
    ASSERT(tdm_store_checkpoint_ns(r) >= ns);
    tdm_store_close(r);
    _exit(0);
  }
  close(up[1]);
  close(down[0]);
  ASSERT_EQ(read(up[0], &c, 1), 1);
  commit_many(s, 11, 21, 10);
  ASSERT_EQ(write(down[1], "w", 1), 1);
  wait_child_ok(pid);
  tdm_store_close(s);
}

/* status run by a user who may read the store but not write lock.mdb. */
TEST(reader_without_lock_write_access) {
  const char *dir = tdm_test_path("state");
  pid_t pid;

  tdm_store_close(open_ok(dir, 0));
  ASSERT_EQ(chmod(tdm_test_dir, 0755), 0);
  ASSERT_EQ(chmod(dir, 0755), 0);
  ASSERT_EQ(chmod(tdm_test_path("state/data.mdb"), 0644), 0);
  ASSERT_EQ(chmod(tdm_test_path("state/lock.mdb"), 0444), 0);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (getuid() == 0) /* root writes anyway: be nobody */
      ASSERT(setgid(65534) == 0 && setuid(65534) == 0);
    ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), -EACCES);
    ASSERT_LOGGED("a reader needs read access to data.mdb and write access "
                  "to lock.mdb");
    ASSERT_LOGGED(dir);
    _exit(0);
  }
  wait_child_ok(pid);
}

TEST(corrupt_data_is_estate) {
  const char *dir = tdm_test_path("state");
  static char junk[16384];

  memset(junk, 0x5a, sizeof(junk));
  ASSERT_EQ(mkdir(dir, 0700), 0);
  tdm_test_write(tdm_test_path("state/data.mdb"), junk, sizeof(junk));
  ASSERT_EQ(open_err(dir, 0), TDM_ESTATE);
  ASSERT_LOGGED("not a tidemark state store or corrupt (lmdb: ");
  ASSERT_LOGGED(dir);
  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), TDM_ESTATE);
}

TEST(newer_schema_is_estate) {
  const char *dir = tdm_test_path("state");
  uint8_t v99[4] = {99, 0, 0, 0};

  tdm_store_close(open_ok(dir, 0));
  raw_put(dir, "meta", "schema", 6, v99, 4);
  ASSERT_EQ(open_err(dir, 0), TDM_ESTATE);
  ASSERT_LOGGED("schema 99, this tidemark supports schema 1 to 3");
  ASSERT_LOGGED(dir);
  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), TDM_ESTATE);
}

TEST(foreign_environment_is_estate) {
  const char *dir = tdm_test_path("state");

  ASSERT_EQ(mkdir(dir, 0700), 0);
  raw_put(dir, "other", "k", 1, "v", 1); /* an LMDB env, not ours */
  ASSERT_EQ(open_err(dir, 0), TDM_ESTATE);
  ASSERT_LOGGED("no schema record");
  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), TDM_ESTATE);
}

TEST(undecodable_record_is_estate) {
  const char *dir = tdm_test_path("state");
  uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 7};
  tdm_file_rec_t rec = make_rec(7, "/f", NULL);
  tdm_store_t *s = open_ok(dir, 0);

  commit_recs(s, &rec, 1);
  tdm_store_close(s);
  raw_put(dir, "files", key, 8, "\x01\x02\x03", 3);
  /* The check at open finds it, for the writer and for a reader. */
  ASSERT_EQ(open_err(dir, 0), TDM_ESTATE);
  ASSERT_LOGGED("file record 7 does not decode");
  ASSERT_LOGGED("is corrupt");
  ASSERT_LOGGED("move it away");
  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), TDM_ESTATE);
}

/* A record as format 1 wrote it (no ctime_ns): read with ctime_ns 0
   ("unknown"), everything else intact; written back as format 2. */
TEST(format1_record_reads_ctime_unknown) {
  const char *dir = tdm_test_path("state");
  uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 9}, v1[256], *p = v1;
  tdm_file_rec_t want = make_rec(9, "/old/a.log", "old error");
  loaded_t l = {0};
  tdm_store_t *s = open_ok(dir, 0);
  uint64_t f[] = {want.dev, want.ino, want.size, (uint64_t)want.mtime_ns,
                  want.offset, want.fp_hash};

  tdm_store_close(s);
  /* The version-1 layout, byte by byte (record.h's header comment). */
#define LE(v, n) \
  do { for (int i_ = 0; i_ < (n); i_++) *p++ = (uint8_t)((uint64_t)(v) >> (8 * i_)); } while (0)
  *p++ = 1;
  for (size_t i = 0; i < 6; i++)
    LE(f[i], 8);
  LE(want.fp_len, 4); LE(want.marker_len, 4); LE(want.marker, 8);
  LE(want.state, 4); LE(want.truncations, 4); LE(want.pieces, 8);
  LE(want.first_seen_ns, 8); LE(want.updated_ns, 8);
  memcpy(p, want.content_hash, 16), p += 16;
  LE(want.dup_of, 8); LE(want.attempts, 4); LE((uint32_t)want.exit_status, 4);
  LE(10, 4); memcpy(p, "/old/a.log", 11), p += 11;
  LE(9, 4); memcpy(p, "old error", 10), p += 10;
#undef LE
  raw_put(dir, "files", key, 8, v1, (size_t)(p - v1));
  s = open_ok(dir, 0);
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  ASSERT_EQ(l.n, 1);
  want.ctime_ns = 0;
  assert_rec_eq(&l.recs[0], &want);
  loaded_free(&l);
  /* Written again, it is format 2 with its ctime. */
  want.ctime_ns = 12345;
  commit_recs(s, &want, 1);
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  assert_rec_eq(&l.recs[0], &want);
  loaded_free(&l);
  tdm_store_close(s);
}

static int stop_at_second(void *arg, const tdm_file_rec_t *rec) {
  int *seen = arg;
  (void)rec;
  return ++*seen == 2 ? 42 : 0;
}

TEST(load_stops_on_callback_return) {
  const char *dir = tdm_test_path("state");
  tdm_file_rec_t recs[3] = {make_rec(1, "/a", NULL), make_rec(2, "/b", NULL),
                            make_rec(3, "/c", NULL)};
  int seen = 0;
  tdm_store_t *s = open_ok(dir, 0);

  commit_recs(s, recs, 3);
  ASSERT_EQ(tdm_store_load_files(s, stop_at_second, &seen), 42);
  ASSERT_EQ(seen, 2);
  tdm_store_close(s);
}

TEST(clear_files_keeps_blobs) {
  const char *dir = tdm_test_path("state");
  tdm_file_rec_t rec = make_rec(1, "/f", NULL);
  const tdm_file_rec_t *put[1] = {&rec};
  tdm_store_blob_t blob = {"file:path=/o", "keep", 4};
  tdm_store_hash_t hash = {{0}, 1};
  tdm_store_batch_t b = {0};
  uint8_t buf[8];
  uint64_t id;
  size_t len;
  tdm_store_t *s = open_ok(dir, 0);

  hash_of(5, hash.hash);
  b.put_files = put;
  b.n_put_files = 1;
  b.blobs = &blob;
  b.n_blobs = 1;
  b.hashes = &hash;
  b.n_hashes = 1;
  b.next_id = 2;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  ASSERT_EQ(tdm_store_clear_files(s), 0);
  tdm_store_close(s);

  s = open_ok(dir, 0);
  ASSERT_EQ(count_files(s), 0);
  ASSERT_EQ(tdm_store_find_hash(s, hash.hash, &id), -ENOENT);
  ASSERT_EQ(tdm_store_get_blob(s, blob.key, buf, sizeof(buf), &len), 0);
  ASSERT_EQ(len, 4);
  ASSERT(memcmp(buf, "keep", 4) == 0);
  ASSERT_EQ(tdm_store_next_id(s), 2); /* ids are never reused */
  tdm_store_close(s);
}

TEST(fds_are_cloexec) {
  const char *dir = tdm_test_path("state");
  char before[1024] = {0};
  int added = 0;
  tdm_store_t *s;

  for (int fd = 0; fd < 1024; fd++)
    before[fd] = fcntl(fd, F_GETFD) >= 0;
  s = open_ok(dir, 0);
  for (int fd = 0; fd < 1024; fd++) {
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || before[fd])
      continue;
    added++;
    if (!(fl & FD_CLOEXEC))
      TDM_FAIL_("fd %d is not close-on-exec", fd);
  }
  ASSERT_GE(added, 3); /* writer.lock, data.mdb, lock.mdb */
  tdm_store_close(s);
}

/* DIR/checked as a string ("" when there is none). */
static const char *read_mark(const char *dir) {
  static char buf[256];
  char path[4096];
  ssize_t n;
  int fd;

  snprintf(path, sizeof(path), "%s/checked", dir);
  buf[0] = '\0';
  if ((fd = open(path, O_RDONLY)) >= 0) {
    n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
  }
  return buf;
}

/* A writer that closed cleanly spares the next open the walk; a store
   changed behind its back, even at once, is walked again. */
TEST(clean_close_spares_the_check) {
  const char *dir = tdm_test_path("state");
  uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 7};
  tdm_file_rec_t rec = make_rec(7, "/f", NULL);
  tdm_store_t *s = open_ok(dir, 0);

  commit_recs(s, &rec, 1);
  ASSERT(strncmp(read_mark(dir), "tidemark-checked 1 open ", 24) == 0);
  tdm_store_close(s);
  ASSERT(strncmp(read_mark(dir), "tidemark-checked 1 closed ", 26) == 0);
  logbuf[0] = '\0';
  tdm_store_close(open_ok(dir, TDM_STORE_RDONLY));
  ASSERT_LOGGED("not checked again");
  /* Damage right after a clean close (the same clock tick): walked. */
  s = open_ok(dir, 0);
  tdm_store_close(s);
  raw_put(dir, "files", key, 8, "\x01\x02\x03", 3);
  logbuf[0] = '\0';
  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), TDM_ESTATE);
  ASSERT_LOGGED("file record 7 does not decode");
}

/* "open" vouches only while that writer lives: a mark left by a writer that
   was killed (here: a process that has exited) means a walk. */
TEST(mark_of_a_dead_writer_means_a_walk) {
  const char *dir = tdm_test_path("state");
  uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 7};
  char path[4096], text[128];
  int status;
  pid_t pid;

  tdm_store_close(open_ok(dir, 0));
  raw_put(dir, "files", key, 8, "\x01\x02\x03", 3);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0)
    _exit(0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  snprintf(path, sizeof(path), "%s/checked", dir);
  snprintf(text, sizeof(text), "tidemark-checked 1 open %ld 12345\n",
           (long)pid);
  tdm_test_write(path, text, strlen(text));
  logbuf[0] = '\0';
  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), TDM_ESTATE);
  ASSERT_LOGGED("file record 7 does not decode");
}

/*
 * The one corruption LMDB's own walk (a compacting copy) misses, which the
 * check reads itself: a damaged header of a free-list page. LMDB never
 * copies those pages in the walk, but the next commit copies the page by
 * its header's upper bound and crashes. Shown here with LMDB alone in a
 * child; then the check refuses the store naming the page.
 */
TEST(damaged_free_list_page_is_estate) {
  const char *dir = tdm_test_path("state");
  uint8_t meta[2][152], hi = 0xe7;
  char data[4096];
  uint64_t root = UINT64_MAX, txnid = 0;
  int fd, status;
  tdm_store_t *s = open_ok(dir, 0);
  pid_t pid;

  for (uint64_t i = 1; i <= 40; i++) { /* each commit frees pages */
    tdm_file_rec_t rec = make_rec(i, "/some/path/of/a/file.log", NULL);
    commit_recs(s, &rec, 1);
  }
  tdm_store_close(s);
  snprintf(data, sizeof(data), "%s/data.mdb", dir);
  ASSERT((fd = open(data, O_RDWR)) >= 0);
  ASSERT_EQ(pread(fd, meta[0], sizeof(meta[0]), 0), (ssize_t)sizeof(meta[0]));
  ASSERT_EQ(pread(fd, meta[1], sizeof(meta[1]), 4096),
            (ssize_t)sizeof(meta[1]));
  for (int m = 0; m < 2; m++) { /* the newer meta page: the free list root */
    uint64_t t, r;
    memcpy(&t, meta[m] + 16 + 128, 8);
    memcpy(&r, meta[m] + 16 + 24 + 40, 8);
    if (t > txnid)
      txnid = t, root = r;
  }
  ASSERT(root != UINT64_MAX); /* there is a free list */
  /* The page's upper bound (bytes 14-15) made larger than the page. */
  ASSERT_EQ(pwrite(fd, &hi, 1, (off_t)(root * 4096 + 15)), 1);
  close(fd);

  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) { /* LMDB alone: its walk passes, the next commit dies */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {8, "\0\0\0\0\0\0\0\x63"}, v = {3, "abc"};
    int devnull = open("/dev/null", O_WRONLY);
    if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 4) != 0 ||
        mdb_env_open(env, dir, 0, 0600) != 0)
      _exit(2);
    if (mdb_env_copyfd2(env, devnull, MDB_CP_COMPACT) != 0)
      _exit(3);
    for (int i = 0; i < 4; i++) {
      if (mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
          mdb_dbi_open(txn, "files", 0, &dbi) != 0 ||
          mdb_put(txn, dbi, &k, &v, 0) != 0 || mdb_txn_commit(txn) != 0)
        _exit(4);
    }
    _exit(0);
  }
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  /* Killed by a signal (SIGBUS, SIGSEGV), or, under AddressSanitizer, its
     report of the overflow and exit 1 (the child's own failures exit 2-4). */
  ASSERT(WIFSIGNALED(status) ||
         (WIFEXITED(status) && WEXITSTATUS(status) == 1));
  /* The child's commits died before writing: the damage is still there. */
  logbuf[0] = '\0';
  ASSERT_EQ(open_err(dir, 0), TDM_ESTATE);
  ASSERT_LOGGED("free list page ");
  ASSERT_LOGGED("its bounds are out of the page");
  ASSERT_EQ(open_err(dir, TDM_STORE_RDONLY), TDM_ESTATE);
}

/* Paths are filed under their directory (schema 2) and come back whole,
   whatever their shape: the root, no slash, a trailing slash, the same
   directory from several commits, a path not in UTF-8. */
TEST(paths_come_back_whole) {
  const char *dir = tdm_test_path("state");
  static const char *const paths[] = {
    "/var/log/app/a.log", "/var/log/app/b.log", "/f", "noslash",
    "/var/log/app/", "/var/log/other/a.log", "/var/log/\xff\xfe/x", ""};
  enum { N = sizeof(paths) / sizeof(paths[0]) };
  tdm_file_rec_t recs[N];
  loaded_t l = {0};
  tdm_store_t *s = open_ok(dir, 0);

  for (size_t i = 0; i < N; i++) {
    recs[i] = make_rec(i + 1, paths[i], i % 2 ? "an error" : NULL);
    commit_recs(s, &recs[i], 1);
  }
  commit_recs(s, recs, 2); /* again, the same directory */
  tdm_store_close(s);
  s = open_ok(dir, TDM_STORE_RDONLY);
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  ASSERT_EQ(l.n, N);
  for (size_t i = 0; i < N; i++)
    assert_rec_eq(&l.recs[i], &recs[i]);
  loaded_free(&l);
  tdm_store_close(s);
}

/* The store's size: 20,000 records of logs in 20 directories cost at most
   120 bytes each in data.mdb (tidemark 0.2: about 210), page fill, keys
   and the directory table included. */
TEST(records_are_compact) {
  const char *dir = tdm_test_path("state");
  enum { N = 20000, BATCH = 1000 };
  static tdm_file_rec_t recs[BATCH];
  static char paths[BATCH][96];
  const tdm_file_rec_t *ptrs[BATCH];
  char data[4096];
  struct stat st;
  tdm_store_t *s = open_ok(dir, 0);
  int64_t now = 1764700000000000000ll;

  for (int b = 0; b < N / BATCH; b++) {
    tdm_store_batch_t batch = {0};
    for (int i = 0; i < BATCH; i++) {
      uint64_t id = (uint64_t)(b * BATCH + i + 1);
      tdm_file_rec_t *r = &recs[i];
      snprintf(paths[i], sizeof(paths[i]),
               "/srv/containers/app-%02d/logs/service-%05d.log", b, i);
      memset(r, 0, sizeof(*r));
      r->id = id;
      r->dev = 2049;
      r->ino = 7000000 + id;
      r->size = r->offset = 1000 + id % 5000;
      r->mtime_ns = r->ctime_ns = now - 3600000000000ll + (int64_t)id * 1000;
      r->first_seen_ns = now + (int64_t)id * 1000;
      r->updated_ns = r->first_seen_ns + 2000000;
      r->fp_hash = 0x9e3779b97f4a7c15ull * id;
      r->fp_len = 1024;
      r->marker = 0xc2b2ae3d27d4eb4full * id;
      r->marker_len = 64;
      r->path = paths[i];
      ptrs[i] = r;
    }
    batch.put_files = ptrs;
    batch.n_put_files = BATCH;
    batch.next_id = (uint64_t)(b + 1) * BATCH + 1;
    ASSERT_EQ(tdm_store_commit(s, &batch), 0);
  }
  tdm_store_close(s);
  snprintf(data, sizeof(data), "%s/data.mdb", dir);
  ASSERT_EQ(stat(data, &st), 0);
  printf("# data.mdb: %lld bytes, %.1f a record\n", (long long)st.st_size,
         (double)st.st_size / N);
  ASSERT_LE((uint64_t)st.st_size, (uint64_t)N * 120);
}

/* Whole mode's forgetting: records dropped, their hashes kept in the
   forgotten set, in one commit; the set answers for thousands of hashes
   (cut into buckets), survives a reopen and the store check, and a damaged
   bucket makes the check refuse the store. */
TEST(forgotten_records_keep_their_hashes) {
  const char *dir = tdm_test_path("state");
  tdm_file_rec_t recs[3] = {make_rec(1, "/in/a", NULL), make_rec(2, "/in/b", NULL),
                            make_rec(3, "/in/c", NULL)};
  tdm_store_hash_t hashes[2], forget[2], *many;
  tdm_store_batch_t b = {0};
  uint8_t h1[16], h2[16], h3[16];
  char path[4200];
  loaded_t l = {0};
  uint64_t id = 0, x = 88172645463325252ull;
  tdm_store_t *s = open_ok(dir, 0);
  enum { MANY = 5000 };

  hash_of(1, h1);
  hash_of(2, h2);
  hash_of(3, h3);
  memcpy(recs[0].content_hash, h1, 16);
  memcpy(recs[1].content_hash, h2, 16);
  memcpy(recs[2].content_hash, h1, 16); /* 3 duplicates 1 */
  memcpy(hashes[0].hash, h1, 16), hashes[0].file_id = 1;
  memcpy(hashes[1].hash, h2, 16), hashes[1].file_id = 2;
  b.put_files = (const tdm_file_rec_t *[]){&recs[0], &recs[1], &recs[2]};
  b.n_put_files = 3;
  b.hashes = hashes;
  b.n_hashes = 2;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  ASSERT_EQ(tdm_store_forgotten(s), 0);
  ASSERT_EQ(tdm_store_hash_forgotten(s, h1), 0);

  /* The duplicate first: its hash entry names file 1 and stays. */
  memset(&b, 0, sizeof(b));
  memcpy(forget[0].hash, h1, 16), forget[0].file_id = 3;
  b.forget = forget;
  b.n_forget = 1;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  ASSERT_EQ(tdm_store_forgotten(s), 1);
  ASSERT_EQ(tdm_store_hash_forgotten(s, h1), 1);
  ASSERT_EQ(tdm_store_find_hash(s, h1, &id), 0);
  ASSERT_EQ(id, 1);
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  ASSERT_EQ(l.n, 2);
  loaded_free(&l);

  /* Then both others: their records and hash entries go. */
  memcpy(forget[1].hash, h2, 16), forget[1].file_id = 2;
  forget[0].file_id = 1;
  b.n_forget = 2;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  ASSERT_EQ(tdm_store_forgotten(s), 2); /* h1 was there already */
  ASSERT_EQ(tdm_store_find_hash(s, h1, &id), -ENOENT);
  ASSERT_EQ(tdm_store_find_hash(s, h2, &id), -ENOENT);
  ASSERT_EQ(tdm_store_hash_forgotten(s, h1), 1);
  ASSERT_EQ(tdm_store_hash_forgotten(s, h2), 1);
  ASSERT_EQ(tdm_store_hash_forgotten(s, h3), 0);
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  ASSERT_EQ(l.n, 0);
  loaded_free(&l);

  /* Many, in commits of 500 and one of 2,500: every bucket splits. */
  ASSERT_NOT_NULL(many = calloc(MANY, sizeof(*many)));
  for (size_t i = 0; i < MANY; i++) {
    for (int k = 0; k < 16; k += 8) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      memcpy(many[i].hash + k, &x, 8);
    }
    many[i].file_id = 1000 + i; /* no such records: fine */
  }
  for (size_t i = 0; i < MANY; i += i < 2500 ? 500 : 2500) {
    memset(&b, 0, sizeof(b));
    b.forget = many + i;
    b.n_forget = i < 2500 ? 500 : 2500;
    ASSERT_EQ(tdm_store_commit(s, &b), 0);
  }
  ASSERT_EQ(tdm_store_forgotten(s), MANY + 2);
  tdm_store_close(s);

  /* Checked at the next open (nothing vouches for it), then read. */
  snprintf(path, sizeof(path), "%s/checked", dir);
  unlink(path);
  s = open_ok(dir, TDM_STORE_RDONLY);
  ASSERT_EQ(tdm_store_forgotten(s), MANY + 2);
  for (size_t i = 0; i < MANY; i++)
    ASSERT_EQ(tdm_store_hash_forgotten(s, many[i].hash), 1);
  for (size_t i = 0; i < MANY; i++) {
    many[i].hash[15] ^= 1; /* neighbours of every one: not in the set */
    ASSERT_EQ(tdm_store_hash_forgotten(s, many[i].hash), 0);
  }
  ASSERT_EQ(tdm_store_hash_forgotten(s, h3), 0);
  tdm_store_close(s);
  free(many);

  /* A bucket whose hashes are not in order: the check refuses the store. */
  raw_put(dir, "forgotten", h3, 16, "BBBBBBBBBBBBBBBBAAAAAAAAAAAAAAAA", 32);
  unlink(path);
  logbuf[0] = '\0';
  ASSERT_EQ(open_err(dir, 0), TDM_ESTATE);
  ASSERT_LOGGED("database 'forgotten'");
}

/* A store of schema 2 (no forgotten set) is read as it is by a reader and
   brought to schema 3 by a writer, which can then forget. */
TEST(schema2_store_gets_a_forgotten_set) {
  const char *dir = tdm_test_path("state");
  uint8_t two[4] = {2, 0, 0, 0};
  /* A record of version 3, all zero but its name "a" (record.h). */
  static const uint8_t v3[] = {3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                               0, 0, 0, 0, 0, 1, 'a', 0};
  tdm_file_rec_t rec = make_rec(1, "/in/a", NULL);
  tdm_store_hash_t forget;
  tdm_store_batch_t b = {0};
  tdm_store_t *s;

  ASSERT_EQ(mkdir(dir, 0700), 0);
  raw_put(dir, "meta", "schema", 6, two, 4);
  raw_put(dir, "files", "\0\0\0\0\0\0\0\2", 8, v3, sizeof(v3));
  raw_put(dir, "procs", "x", 1, "y", 1);
  raw_put(dir, "hashes", "0123456789abcdef", 16, "\0\0\0\0\0\0\0\1", 8);
  raw_put(dir, "dirs", "\0\0\0\0\0\0\0\1", 8, "/in", 4);
  raw_put(dir, "dirkeys", "0123456789abcdef", 16, "\0\0\0\0\0\0\0\1", 8);
  s = open_ok(dir, TDM_STORE_RDONLY);
  ASSERT_EQ(tdm_store_forgotten(s), 0);
  ASSERT_EQ(tdm_store_hash_forgotten(s, (const uint8_t *)"0123456789abcdef"), 0);
  tdm_store_close(s);

  logbuf[0] = '\0';
  s = open_ok(dir, 0);
  ASSERT_LOGGED("brought from schema 2 to 3");
  commit_recs(s, &rec, 1);
  memcpy(forget.hash, "0123456789abcdef", 16);
  forget.file_id = 1;
  b.forget = &forget;
  b.n_forget = 1;
  ASSERT_EQ(tdm_store_commit(s, &b), 0);
  ASSERT_EQ(tdm_store_hash_forgotten(s, (const uint8_t *)"0123456789abcdef"), 1);
  tdm_store_close(s);
}

/* A store of schema 1 (tidemark 0.2: records of version 2, no directory
   table) is read as it is by a reader, and brought to schema 2 by a writer;
   its old records still read, new ones are written compact. */
TEST(schema1_store_is_read_and_upgraded) {
  const char *dir = tdm_test_path("state");
  uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 3}, v2[512], one[4] = {1, 0, 0, 0};
  tdm_file_rec_t old = make_rec(3, "/old/logs/a.log", NULL), fresh;
  loaded_t l = {0};
  uint8_t *p = v2;
  tdm_store_t *s;

  /* Version 2, byte by byte (record.h's header comment). */
#define LE(v, n) \
  do { for (int i_ = 0; i_ < (n); i_++) *p++ = (uint8_t)((uint64_t)(v) >> (8 * i_)); } while (0)
  *p++ = 2;
  LE(old.dev, 8); LE(old.ino, 8); LE(old.size, 8); LE(old.mtime_ns, 8);
  LE(old.offset, 8); LE(old.fp_hash, 8);
  LE(old.fp_len, 4); LE(old.marker_len, 4); LE(old.marker, 8);
  LE(old.state, 4); LE(old.truncations, 4); LE(old.pieces, 8);
  LE(old.first_seen_ns, 8); LE(old.updated_ns, 8);
  memcpy(p, old.content_hash, 16), p += 16;
  LE(old.dup_of, 8); LE(old.attempts, 4); LE((uint32_t)old.exit_status, 4);
  LE(old.ctime_ns, 8);
  LE(15, 4); memcpy(p, "/old/logs/a.log", 16), p += 16;
  LE(0, 4); *p++ = 0;
#undef LE
  ASSERT_EQ(mkdir(dir, 0700), 0);
  raw_put(dir, "meta", "schema", 6, one, 4);
  raw_put(dir, "files", key, 8, v2, (size_t)(p - v2));
  raw_put(dir, "procs", "x", 1, "y", 1);
  raw_put(dir, "hashes", "0123456789abcdef", 16, "\0\0\0\0\0\0\0\3", 8);

  s = open_ok(dir, TDM_STORE_RDONLY);
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  ASSERT_EQ(l.n, 1);
  assert_rec_eq(&l.recs[0], &old);
  loaded_free(&l);
  tdm_store_close(s);

  logbuf[0] = '\0';
  s = open_ok(dir, 0);
  ASSERT_LOGGED("brought from schema 1 to 3");
  fresh = make_rec(4, "/old/logs/b.log", "e");
  commit_recs(s, &fresh, 1);
  tdm_store_close(s);
  s = open_ok(dir, TDM_STORE_RDONLY);
  ASSERT_EQ(tdm_store_load_files(s, collect, &l), 0);
  ASSERT_EQ(l.n, 2);
  assert_rec_eq(&l.recs[0], &old);
  assert_rec_eq(&l.recs[1], &fresh);
  loaded_free(&l);
  tdm_store_close(s);
}
