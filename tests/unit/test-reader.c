/*
 * test-reader.c: engine/reader.c, tail mode's reading of a file from its
 * bookmark: chunks start at the bookmark, a partial last line waits for its
 * newline, a record longer than --max-record goes out in pieces (flagged,
 * counted in the file's record), raw bytes mode, a file larger than the read
 * buffer. Real files, a real store, the probe processor (probe.h).
 */
#include "probe.h"
#include "engine/reader.h"

TEST(reads_from_the_bookmark) {
  stored_t s;
  tdm_test_write(src("a.log"), "one\ntwo\n", 8);
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("one\ntwo\n");
  ASSERT_EQ(probe.offsets[0], 0);
  tdm_test_append(src("a.log"), "three\nfour\n", 11);
  memset(&probe, 0, sizeof(probe));
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("three\nfour\n");
  ASSERT_EQ(probe.chunks, 1);
  ASSERT_EQ(probe.offsets[0], 8); /* the chunk says where it starts */
  stored_load(&s, NULL, 0);
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 19);
  ASSERT_EQ(stored_find(&s, "a.log")->marker_len, 19); /* all it has, < 4 KiB */
}

TEST(partial_line_waits) {
  stored_t s;
  tdm_test_write(src("a.log"), "done\nhalf", 9);
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("done\n");
  stored_load(&s, NULL, 0);
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 5);
  memset(&probe, 0, sizeof(probe));
  ASSERT_EQ(probe_run(0, NULL), 0); /* still no newline: nothing */
  ASSERT_EQ(probe.len, 0);
  tdm_test_append(src("a.log"), " a line\n", 8);
  ASSERT_EQ(probe_run(0, NULL), 0);
  PROBE_EQ("half a line\n");
  ASSERT_EQ(probe.offsets[0], 5);
}

TEST(bytes_mode_takes_partial_lines) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  tdm_test_write(src("a.bin"), "no newline", 10);
  o.records = TDM_RECORDS_BYTES;
  t = probe_open_tdm(&o);
  memset(&probe, 0, sizeof(probe));
  probe.t = t;
  ASSERT_EQ(tdm_run_once(t), 0);
  tdm_close(t);
  PROBE_EQ("no newline");
}

/* --max-record 64: a 200-byte line goes out in pieces of at most 64 bytes,
   every one flagged but the last; it counts once in the record's pieces. */
TEST(over_long_records_in_pieces) {
  char line[201];
  tdm_stats_t st;
  stored_t s;
  memset(line, 'x', 199);
  line[199] = '\n';
  line[200] = '\0';
  tdm_test_write(src("a.log"), "short\n", 6);
  tdm_test_append(src("a.log"), line, 200);
  tdm_test_append(src("a.log"), "after\n", 6);
  ASSERT_EQ(probe_run(64, &st), 0);
  ASSERT_EQ(probe.len, 212);
  ASSERT_EQ(memcmp(probe.data, "short\n", 6), 0);
  ASSERT_EQ(memcmp(probe.data + 6, line, 200), 0);
  ASSERT_GE(probe.chunks, 4);
  {
    int pieces = 0;
    uint64_t off = 0;
    for (int i = 0; i < probe.chunks; i++) {
      ASSERT_EQ(probe.offsets[i], off); /* contiguous, nothing twice */
      ASSERT_LE(probe.lens[i], 64);
      off += probe.lens[i];
      if (probe.flags[i] & TDM_CHUNK_PIECE)
        pieces++;
      else /* a chunk that is not a piece ends at a line end */
        ASSERT_EQ(probe.data[off - 1], '\n');
    }
    ASSERT_EQ(off, 212);
    ASSERT_GE(pieces, 3); /* 199 bytes + '\n' in pieces of <= 64 */
    /* The last chunk ends the line: not a piece. */
    ASSERT_EQ(probe.flags[probe.chunks - 1] & TDM_CHUNK_PIECE, 0);
  }
  ASSERT_EQ(st.pieces, 1);
  stored_load(&s, NULL, 0);
  ASSERT_EQ(stored_find(&s, "a.log")->pieces, 1);
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 212);
}

/* A file larger than the read buffer (1 MiB) arrives whole, in order, in
   several chunks, each ending at a line end. */
TEST(larger_than_the_buffer) {
  enum { LINE = 100, LINES = 30000 };
  char *buf = malloc((size_t)LINE * LINES);
  char *got;
  size_t len;
  ASSERT_NOT_NULL(buf);
  for (int i = 0; i < LINES; i++) {
    memset(buf + (size_t)i * LINE, 'a' + i % 26, LINE - 1);
    buf[(size_t)i * LINE + LINE - 1] = '\n';
  }
  tdm_test_write(src("big.log"), buf, (size_t)LINE * LINES);
  /* The probe keeps 64 KiB: count through the file processor instead. */
  {
    tdm_options_t o = probe_options();
    tdm_t *t;
    char spec[8192];
    tdm_stats_t st;
    ASSERT_EQ(tdm_open(&o, &t), 0);
    ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
    snprintf(spec, sizeof(spec), "file:path=%s", tdm_test_path("out"));
    ASSERT_EQ(tdm_add_processor(t, spec), 0);
    ASSERT_EQ(tdm_run_once(t), 0);
    tdm_stats_init(&st);
    tdm_get_stats(t, &st);
    ASSERT_GE(st.chunks, 3);
    ASSERT_EQ(st.bytes, (uint64_t)LINE * LINES);
    tdm_close(t);
  }
  got = tdm_test_read(tdm_test_path("out"), &len);
  ASSERT_EQ(len, (size_t)LINE * LINES);
  ASSERT_EQ(memcmp(got, buf, len), 0);
  free(got);
  free(buf);
}
