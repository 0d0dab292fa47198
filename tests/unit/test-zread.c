/*
 * test-zread.c: watcher/engine/zread.c, tail mode over compressed files:
 * delivered decompressed with bookmarks in uncompressed bytes, and a file
 * rotated into a compressed copy (logrotate's compress) continued from its
 * bookmark, not read again.
 */
#include "probe.h"

#include "engine/mode.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* Write `text` gzip'd to src/NAME. */
static void write_gz(const char *name, const char *text) {
  unsigned char z[4096];
  z_stream s;
  memset(&s, 0, sizeof(s));
  ASSERT_EQ(deflateInit2(&s, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  s.next_in = (unsigned char *)text;
  s.avail_in = (uInt)strlen(text);
  s.next_out = z;
  s.avail_out = sizeof(z);
  ASSERT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  tdm_test_write(src(name), z, sizeof(z) - s.avail_out);
  deflateEnd(&s);
  {
    /* Written a minute ago: complete (a compressed file is read once it
       has stood still for --settle-ms). */
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= 60;
    ts[1] = ts[0];
    ASSERT_EQ(utimensat(AT_FDCWD, src(name), ts, 0), 0);
  }
}

TEST(delivered_decompressed) {
  stored_t s;
  const tdm_file_rec_t *r;

  write_gz("a.log.gz", "one\ntwo\nthree\n");
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("one\ntwo\nthree\n");
  stored_load(&s, NULL, 0);
  r = stored_find(&s, "a.log.gz");
  ASSERT_NOT_NULL(r);
  ASSERT_EQ(r->offset, 14); /* uncompressed bytes */
  probe_reset_seen();
  ASSERT_EQ(probe_run(0, NULL), 0); /* nothing new */
  ASSERT_EQ(probe.len, 0);
}

/* a.log read, then rotated and compressed with more written before the
   rotation: only what was not read yet is delivered. */
TEST(rotated_into_gzip_continues) {
  const char *head = "line 1 of the log, long enough to be known by\n"
                     "line 2 of the log, long enough to be known by\n";
  char all[512];

  tdm_test_write(src("a.log"), head, strlen(head));
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ(head);
  snprintf(all, sizeof(all), "%sline 3, written before the rotation\n", head);
  ASSERT_EQ(unlink(src("a.log")), 0);
  write_gz("a.log.1.gz", all);
  probe_reset_seen();
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("line 3, written before the rotation\n");
}

/* Still being written (changed just now): not read yet, waiting; read
   once it stands still. */
TEST(fresh_waits) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  struct timespec ts[2];

  write_gz("c.log.gz", "later\n");
  clock_gettime(CLOCK_REALTIME, &ts[0]);
  ts[1] = ts[0];
  ASSERT_EQ(utimensat(AT_FDCWD, src("c.log.gz"), ts, 0), 0);
  /* tdm_run_once waits for a fresh compressed file to hold still for
     --settle-ms, then reads it (it never ends a pass with bytes it knows
     are pending); `run` looks again through the mode's recheck. */
  o.settle_ms = 300;
  t = probe_open_tdm(&o);
  ASSERT_NOT_NULL(t->mode->recheck); /* tail mode looks again too */
  ASSERT_NOT_NULL(t->mode->next_settle_ms);
  ASSERT_EQ(tdm_run_once(t), 0);
  ASSERT_EQ(t->n_waiting, 0);
  PROBE_EQ("later\n");
  tdm_close(t);
}

/* --decompress never: the compressed bytes as they are. */
TEST(decompress_never_reads_bytes) {
  tdm_options_t o = probe_options();
  tdm_t *t;

  write_gz("b.gz", "hello\n");
  o.decompress = TDM_DECOMPRESS_NEVER;
  o.records = TDM_RECORDS_BYTES;
  t = probe_open_tdm(&o);
  ASSERT_EQ(tdm_run_once(t), 0);
  tdm_close(t);
  ASSERT_GT(probe.len, 2);
  ASSERT_EQ((unsigned char)probe.data[0], 0x1f);
  ASSERT_EQ((unsigned char)probe.data[1], 0x8b);
}
