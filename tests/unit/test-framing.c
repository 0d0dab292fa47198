/* test-framing.c: where reads are cut into chunks (watcher/core/framing.c). */
#include "test.h"
#include "core/framing.h"

static size_t frame(const char *s, size_t cap, tdm_records_t r, size_t max,
                    int *piece) {
  return tdm__frame(s, strlen(s), cap, r, max, piece);
}

TEST(lines_cut_after_last_newline) {
  int piece;
  ASSERT_EQ(frame("a\nbb\nccc", 1024, TDM_RECORDS_LINES, 1024, &piece), 5);
  ASSERT_EQ(piece, 0);
  ASSERT_EQ(frame("a\nbb\n", 1024, TDM_RECORDS_LINES, 1024, &piece), 5);
}

TEST(partial_line_waits) {
  int piece;
  ASSERT_EQ(frame("no newline yet", 1024, TDM_RECORDS_LINES, 1024, &piece), 0);
  ASSERT_EQ(piece, 0);
}

TEST(full_buffer_without_newline_is_a_piece) {
  int piece;
  ASSERT_EQ(frame("0123456789", 10, TDM_RECORDS_LINES, 10, &piece), 10);
  ASSERT_EQ(piece, 1);
}

TEST(bytes_mode_takes_everything) {
  int piece;
  ASSERT_EQ(frame("ab\ncd", 1024, TDM_RECORDS_BYTES, 1024, &piece), 5);
  ASSERT_EQ(piece, 0);
}

TEST(small_max_record_stops_before_long_line) {
  int piece;
  /* "abc\n" fits in 5; the next line (10 bytes + \n) does not. */
  ASSERT_EQ(frame("abc\n0123456789\nx\n", 1024, TDM_RECORDS_LINES, 5, &piece), 4);
  ASSERT_EQ(piece, 0);
  ASSERT_EQ(frame("0123456789\nx\n", 1024, TDM_RECORDS_LINES, 5, &piece), 5);
  ASSERT_EQ(piece, 1);
  /* A line of exactly max_record bytes, newline included, is whole. */
  ASSERT_EQ(frame("0123\nab", 1024, TDM_RECORDS_LINES, 5, &piece), 5);
  ASSERT_EQ(piece, 0);
}

/* Drive the framer over a whole "file" the way reader.c does and check the
   invariants on random data: nothing lost or repeated up to the last newline,
   whole lines within max_record, pieces of exactly max_record bytes. */
static void simulate(unsigned seed, size_t len, size_t cap, size_t max) {
  char *data = malloc(len), *out = malloc(len);
  size_t pos = 0, olen = 0;
  size_t last_nl = 0;

  srand(seed);
  for (size_t i = 0; i < len; i++) {
    int r = rand() % 100;
    data[i] = r < 3 ? '\n' : (char)('a' + r % 26);
    if (data[i] == '\n')
      last_nl = i + 1;
  }
  if (rand() % 2 && len > 0) { /* sometimes a long run without newlines */
    size_t at = (size_t)rand() % len, n = max * 3;
    for (size_t i = at; i < len && i < at + n; i++)
      data[i] = 'z';
    last_nl = 0;
    for (size_t i = 0; i < len; i++)
      if (data[i] == '\n')
        last_nl = i + 1;
  }
  for (;;) {
    size_t n = len - pos < cap ? len - pos : cap;
    int piece;
    size_t cut = tdm__frame(data + pos, n, cap, TDM_RECORDS_LINES, max, &piece);
    if (cut == 0)
      break;
    ASSERT_LE(cut, n);
    if (piece) {
      ASSERT_EQ(cut, max);
      ASSERT_NULL(memchr(data + pos, '\n', cut));
    } else {
      const char *p = data + pos, *end = data + pos + cut, *nl;
      ASSERT_EQ(end[-1], '\n');
      while (p < end) { /* each line within max (after a piece, the tail) */
        nl = memchr(p, '\n', (size_t)(end - p));
        ASSERT_LE((size_t)(nl - p) + 1, max);
        p = nl + 1;
      }
    }
    memcpy(out + olen, data + pos, cut);
    olen += cut;
    pos += cut;
  }
  /* Everything up to the last newline went out, in order, once; what is
     left is a partial line shorter than max. */
  ASSERT_GE(olen, last_nl);
  ASSERT_EQ(memcmp(out, data, olen), 0);
  ASSERT_LT(len - olen, max);
  ASSERT_NULL(memchr(data + olen, '\n', len - olen));
  free(data);
  free(out);
}

TEST(random_streams_keep_invariants) {
  for (unsigned s = 1; s <= 300; s++) {
    size_t max = 8 + s % 97;
    simulate(s, 2000 + s * 7, max, max);         /* fast path */
    simulate(s + 1000, 2000 + s * 7, 512, max);  /* line walk */
  }
}

/* ---- multiline records ---------------------------------------------------- */

static size_t mframe(const char *s, size_t cap, size_t max, int flush,
                     tdm_ends_t *e, int *piece) {
  regex_t re;
  size_t cut;
  ASSERT_EQ(regcomp(&re, "^E ", REG_EXTENDED | REG_NOSUB), 0);
  cut = tdm__frame_records(s, strlen(s), cap, max, &re, flush, e, piece);
  regfree(&re);
  return cut;
}

TEST(multiline_whole_records_only) {
  tdm_ends_t e = {0};
  int piece;
  /* E 1 with two frames, E 2 alone, E 3 still open */
  const char *s = "E 1\n at a\n at b\nE 2\nE 3\n at c\n";
  ASSERT_EQ(mframe(s, 1024, 1024, 0, &e, &piece), 20);
  ASSERT_EQ(piece, 0);
  ASSERT_EQ(e.n, 2);
  ASSERT_EQ(e.v[0], 16);
  ASSERT_EQ(e.v[1], 20);
  free(e.v);
  free(e.line);
}

TEST(multiline_flush_completes_the_last_record) {
  tdm_ends_t e = {0};
  int piece;
  const char *s = "E 1\n at a\nE 2\n at b\npartial";
  ASSERT_EQ(mframe(s, 1024, 1024, 1, &e, &piece), 20);
  ASSERT_EQ(e.n, 2);
  ASSERT_EQ(e.v[1], 20); /* the partial line is no part of it */
  ASSERT_EQ(mframe("E 1\n at a\n", 1024, 1024, 0, &e, &piece), 0);
  free(e.v);
  free(e.line);
}

TEST(multiline_long_record_in_pieces_after_whole_ones) {
  tdm_ends_t e = {0};
  int piece;
  /* E 1 fits; E 2 is 4 + 6 * 6 = 40 bytes, over 16 */
  const char *s = "E 1\nE 2\n at 1\n at 2\n at 3\n at 4\n at 5\n at 6\nE 3\n";
  ASSERT_EQ(mframe(s, 1024, 16, 0, &e, &piece), 4); /* E 1 first */
  ASSERT_EQ(piece, 0);
  ASSERT_EQ(e.n, 1);
  ASSERT_EQ(mframe(s + 4, 1024, 16, 0, &e, &piece), 16); /* "E 2" + 2 frames: cut at a newline */
  ASSERT_EQ(piece, 1);
  ASSERT_EQ(e.n, 0);
  free(e.v);
  free(e.line);
}

TEST(multiline_first_lines_without_start_are_one_record) {
  tdm_ends_t e = {0};
  int piece;
  ASSERT_EQ(mframe("x\ny\nE 1\n", 1024, 1024, 0, &e, &piece), 4);
  ASSERT_EQ(e.n, 1);
  ASSERT_EQ(e.v[0], 4);
  free(e.v);
  free(e.line);
}
