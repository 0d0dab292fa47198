/*
 * test-decompress.c: watcher/core/decompress.c: gzip and zstd by their magic
 * bytes, streamed through pread (several members/frames in a row are one
 * stream), skipping to an uncompressed offset, and truncated or corrupt
 * input told apart.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "core/decompress.h"

/* `n` bytes of text that compress well but not to nothing. */
static char *sample(size_t n) {
  char *p = malloc(n);
  ASSERT_NOT_NULL(p);
  for (size_t i = 0; i < n; i++)
    p[i] = (i % 61 == 60) ? '\n' : (char)('a' + (i * 7 + i / 61) % 26);
  return p;
}

/* gzip(1)'s format of `src`, appended to `out` at *len. */
static void gzip_append(const char *src, size_t n, unsigned char *out,
                        size_t cap, size_t *len) {
  z_stream z;
  memset(&z, 0, sizeof(z));
  ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = (unsigned char *)src;
  z.avail_in = (uInt)n;
  z.next_out = out + *len;
  z.avail_out = (uInt)(cap - *len);
  ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  *len = cap - z.avail_out;
  deflateEnd(&z);
}

static int open_with(const char *name, const void *data, size_t len) {
  const char *p = tdm_test_path(name);
  int fd;
  tdm_test_write(p, data, len);
  fd = open(p, O_RDONLY);
  ASSERT(fd >= 0);
  return fd;
}

/* Read the whole stream of `fd` (kind `k`) into a malloc'd buffer. */
static char *read_all(int fd, tdm_comp_t k, size_t *len, ssize_t *last) {
  tdm_dec_t *d;
  size_t cap = 1 << 20, n = 0;
  char *buf = malloc(cap);
  ssize_t r;
  ASSERT_EQ(tdm__dec_open(fd, k, &d), 0);
  while ((r = tdm__dec_read(d, buf + n, 777)) > 0) /* odd sizes on purpose */
    n += (size_t)r;
  *last = r;
  ASSERT_EQ(tdm__dec_pos(d), n);
  tdm__dec_close(d);
  *len = n;
  return buf;
}

TEST(detect_by_magic_not_name) {
  static const unsigned char gz[] = {0x1f, 0x8b, 8, 0};
  static const unsigned char zs[] = {0x28, 0xb5, 0x2f, 0xfd};
  tdm_comp_t k;
  int fd;

  fd = open_with("a.gz", "plain text\n", 11); /* the name says gzip */
  ASSERT_EQ(tdm__comp_detect(fd, &k), 0);
  ASSERT_EQ(k, TDM_COMP_NONE);
  close(fd);
  fd = open_with("a.log", gz, sizeof(gz));
  ASSERT_EQ(tdm__comp_detect(fd, &k), 0);
  ASSERT_EQ(k, TDM_COMP_GZIP);
  ASSERT_EQ(tdm__zkind(TDM_DECOMPRESS_NEVER, fd, &k), 0);
  ASSERT_EQ(k, TDM_COMP_NONE);
  ASSERT_EQ(tdm__zkind(TDM_DECOMPRESS_AUTO, fd, &k), 0);
  ASSERT_EQ(k, TDM_COMP_GZIP);
  close(fd);
  fd = open_with("b", zs, sizeof(zs));
  ASSERT_EQ(tdm__comp_detect(fd, &k), 0);
  ASSERT_EQ(k, TDM_COMP_ZSTD);
  close(fd);
  fd = open_with("c", zs, 3); /* shorter than the magic */
  ASSERT_EQ(tdm__comp_detect(fd, &k), 0);
  ASSERT_EQ(k, TDM_COMP_NONE);
  close(fd);
  ASSERT_STR_EQ(tdm__comp_name(TDM_COMP_ZSTD), "zstd");
  ASSERT_EQ(tdm__dec_open(0, TDM_COMP_NONE, &(tdm_dec_t *){NULL}), -EINVAL);
}

/* Two gzip members in a row read as one stream, as gzip -dc reads them. */
TEST(gzip_members_in_a_row) {
  size_t n = 300000, cap = 2 * n, len = 0, got;
  char *a = sample(n), *out;
  unsigned char *z = malloc(cap);
  ssize_t last;
  int fd;

  gzip_append(a, n, z, cap, &len);
  gzip_append("tail\n", 5, z, cap, &len);
  fd = open_with("two.gz", z, len);
  out = read_all(fd, TDM_COMP_GZIP, &got, &last);
  ASSERT_EQ(last, 0);
  ASSERT_EQ(got, n + 5);
  ASSERT(memcmp(out, a, n) == 0);
  ASSERT(memcmp(out + n, "tail\n", 5) == 0);
  close(fd);
  free(out);
  free(a);
  free(z);
}

/* zstd frames in a row; a skip lands on the uncompressed offset. */
/* One zstd frame of `a` (n bytes) with a content checksum into z. */
static size_t zstd_checked(unsigned char *z, size_t cap, const char *a,
                           size_t n) {
  ZSTD_CCtx *cc = ZSTD_createCCtx();
  size_t len;
  ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
  len = ZSTD_compress2(cc, z, cap, a, n);
  ZSTD_freeCCtx(cc);
  return ZSTD_isError(len) ? 0 : len;
}

TEST(zstd_frames_and_skip) {
  size_t n = 200000, cap = ZSTD_compressBound(n) * 2 + 64, len;
  char *a = sample(n), buf[100];
  unsigned char *z = malloc(cap);
  tdm_dec_t *d;
  int fd;

  /* Frames with a content checksum: a frame without one cannot be
     verified and is not handed out (unverified_zstd_frame_is_refused). */
  len = zstd_checked(z, cap, a, n / 2);
  len += zstd_checked(z + len, cap - len, a + n / 2, n - n / 2);
  fd = open_with("f.zst", z, len);
  ASSERT_EQ(tdm__dec_open(fd, TDM_COMP_ZSTD, &d), 0);
  ASSERT_EQ(tdm__dec_skip(d, n / 2 - 10), 0); /* across the frame border */
  ASSERT_EQ(tdm__dec_pos(d), n / 2 - 10);
  /* A read may end at a frame's end (each is verified before it is
     handed out): read on until the buffer is full. */
  for (size_t got = 0; got < sizeof(buf);) {
    ssize_t r = tdm__dec_read(d, buf + got, sizeof(buf) - got);
    ASSERT(r > 0);
    got += (size_t)r;
  }
  ASSERT(memcmp(buf, a + n / 2 - 10, sizeof(buf)) == 0);
  ASSERT_EQ(tdm__dec_skip(d, 5), -EINVAL); /* behind the position */
  ASSERT_EQ(tdm__dec_skip(d, n + 1), -ENODATA);
  tdm__dec_close(d);
  close(fd);
  free(a);
  free(z);
}

/* Cut short: -EPIPE (perhaps still being written); damaged: -EBADMSG at
   the compressed offset where decoding stopped. Both stay. */
TEST(truncated_and_corrupt) {
  size_t n = 100000, cap = 2 * n, len = 0, got;
  char *a = sample(n), *out;
  unsigned char *z = malloc(cap);
  char buf[64];
  tdm_dec_t *d;
  ssize_t last;
  int fd;

  gzip_append(a, n, z, cap, &len);
  fd = open_with("cut.gz", z, len / 2);
  out = read_all(fd, TDM_COMP_GZIP, &got, &last);
  ASSERT_EQ(last, -EPIPE);
  ASSERT(got < n);
  ASSERT(memcmp(out, a, got) == 0); /* what came out is right */
  free(out);
  close(fd);

  memset(z + 20, 0xff, 64); /* inside the deflate data */
  fd = open_with("bad.gz", z, len);
  ASSERT_EQ(tdm__dec_open(fd, TDM_COMP_GZIP, &d), 0);
  while ((last = tdm__dec_read(d, buf, sizeof(buf))) > 0)
    ;
  ASSERT_EQ(last, -EBADMSG);
  ASSERT_EQ(tdm__dec_in(d), 0); /* where the damaged member starts */
  ASSERT_EQ(tdm__dec_read(d, buf, sizeof(buf)), -EBADMSG);
  tdm__dec_close(d);
  close(fd);
  free(a);
  free(z);
}

/* A zstd frame without a content checksum cannot be verified: nothing of
   it is handed out, and the reason says so. */
TEST(unverified_zstd_frame_is_refused) {
  size_t n = 10000, cap = ZSTD_compressBound(n) + 64, len;
  char *a = sample(n), buf[64];
  unsigned char *z = malloc(cap);
  tdm_dec_t *d;
  int fd;

  len = ZSTD_compress(z, cap, a, n, 3); /* no checksum by default */
  ASSERT(!ZSTD_isError(len));
  fd = open_with("plain.zst", z, len);
  ASSERT_EQ(tdm__dec_open(fd, TDM_COMP_ZSTD, &d), 0);
  ASSERT_EQ(tdm__dec_read(d, buf, sizeof(buf)), -EBADMSG);
  ASSERT(strstr(tdm__dec_why(d), "unverifiable") != NULL);
  ASSERT_EQ(tdm__dec_pos(d), 0);
  tdm__dec_close(d);
  close(fd);
  free(a);
  free(z);
}
