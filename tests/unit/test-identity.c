/* test-identity.c: fingerprints, markers, verdicts (watcher/core/identity.c),
   on real files. */
#include "test.h"
#include "core/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Remember `path` as the engine would after delivering up to `pos`. */
static void remember(const char *path, uint64_t pos, tdm_file_t *f) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  memset(f, 0, sizeof(*f));
  ASSERT_EQ(tdm__fingerprint(fd, (uint64_t)st.st_size, &f->rec.fp_hash,
                             &f->rec.fp_len), 0);
  f->pos = pos;
  ASSERT_EQ(tdm__marker(fd, pos, &f->marker, &f->marker_len), 0);
  close(fd);
}

static tdm_verdict_t judge(const char *path, const tdm_file_t *f) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  tdm_verdict_t v;
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  ASSERT_EQ(tdm__identify(fd, (uint64_t)st.st_size, f, &v), 0);
  close(fd);
  return v;
}

TEST(tiny_file_has_a_fingerprint) {
  const char *p = tdm_test_path("tiny");
  tdm_file_t f;
  tdm_test_write(p, "ab\n", 3);
  remember(p, 3, &f);
  ASSERT_EQ(f.rec.fp_len, 3);
  ASSERT_EQ(judge(p, &f), TDM_SAME);
}

TEST(append_is_same) {
  const char *p = tdm_test_path("log");
  tdm_file_t f;
  tdm_test_write(p, "line one\nline two\n", 18);
  remember(p, 18, &f);
  tdm_test_append(p, "line three\n", 11);
  ASSERT_EQ(judge(p, &f), TDM_SAME);
}

TEST(shorter_than_bookmark_is_truncated) {
  const char *p = tdm_test_path("log");
  tdm_file_t f;
  tdm_test_write(p, "line one\nline two\n", 18);
  remember(p, 18, &f);
  tdm_test_write(p, "new\n", 4);
  ASSERT_EQ(judge(p, &f), TDM_TRUNCATED);
}

TEST(new_head_is_rewritten) {
  const char *p = tdm_test_path("log");
  tdm_file_t f;
  tdm_test_write(p, "aaaa\nbbbb\n", 10);
  remember(p, 10, &f);
  tdm_test_write(p, "cccc\ndddd\neeee\n", 15); /* same inode, longer */
  ASSERT_EQ(judge(p, &f), TDM_REWRITTEN);
}

TEST(same_head_changed_before_bookmark_is_rewritten) {
  const char *p = tdm_test_path("log");
  char big[TDM_FP_CAP * 3];
  tdm_file_t f;
  memset(big, 'h', sizeof(big));
  big[sizeof(big) - 1] = '\n';
  tdm_test_write(p, big, sizeof(big));
  remember(p, sizeof(big), &f);
  big[sizeof(big) - 10] = 'X'; /* past the fingerprint, before the bookmark */
  tdm_test_write(p, big, sizeof(big));
  ASSERT_EQ(judge(p, &f), TDM_REWRITTEN);
}

TEST(hash_range_past_end_is_nodata) {
  const char *p = tdm_test_path("f");
  uint64_t h;
  int fd;
  tdm_test_write(p, "abc", 3);
  fd = open(p, O_RDONLY);
  ASSERT_EQ(tdm__hash_range(fd, 0, 3, &h), 0);
  ASSERT_EQ(tdm__hash_range(fd, 1, 3, &h), -ENODATA);
  close(fd);
}
