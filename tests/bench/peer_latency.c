/*
 * peer_latency: append-to-delivery latency of a peer tailer that writes what
 * it reads into a file (rsyslog imfile -> omfile in tests/bench/run.sh).
 *
 *   cc -O2 -o peer_latency tests/bench/peer_latency.c
 *   ./peer_latency -d SRCDIR -o OUTFILE [-f FILES] [-n SAMPLES] [-p PAUSE_US] [-t READY_MS]
 *
 * SRCDIR holds FILES (200) files f0.log .. f{FILES-1}.log, already watched by
 * the peer, whose output file is OUTFILE (one line per line read, the message
 * only). Ready when a warm-up line appended to every file has appeared in
 * OUTFILE (so every watch is live; up to READY_MS, 30000). Then SAMPLES (300)
 * times: take CLOCK_MONOTONIC, append one line holding a sequence number to a
 * random file (one write(2), O_APPEND), wait (inotify on OUTFILE, IN_MODIFY)
 * until that line is in OUTFILE, take the clock again; pause PAUSE_US (2000)
 * between samples. Prints
 *     latency: files=200 samples=300 median_ms=... p99_ms=... max_ms=... timeouts=0
 * on stdout. Exit 0 when every sample arrived, 1 otherwise.
 */
#ifndef _GNU_SOURCE /* the build defines it for every file */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_TIMEOUT_MS 5000

static int out_fd = -1, ino_fd = -1;
static char rbuf[1 << 20];
static size_t rlen, rpos;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The next complete line of OUTFILE (without '\n'), or NULL after deadline. */
static char *next_line(uint64_t deadline, const char *outpath) {
  for (;;) {
    char *nl = memchr(rbuf + rpos, '\n', rlen - rpos);
    if (nl) {
      char *line = rbuf + rpos;
      *nl = '\0';
      rpos = (size_t)(nl - rbuf) + 1;
      return line;
    }
    if (rpos > 0) {
      memmove(rbuf, rbuf + rpos, rlen - rpos);
      rlen -= rpos;
      rpos = 0;
    }
    if (rlen == sizeof rbuf)
      rlen = 0;
    if (out_fd < 0) { /* the peer creates it on its first write */
      out_fd = open(outpath, O_RDONLY);
      if (out_fd >= 0 && inotify_add_watch(ino_fd, outpath, IN_MODIFY) < 0) {
        perror("peer_latency: inotify_add_watch");
        exit(1);
      }
    }
    if (out_fd >= 0) {
      ssize_t n = read(out_fd, rbuf + rlen, sizeof rbuf - rlen);
      if (n > 0) {
        rlen += (size_t)n;
        continue;
      }
    }
    uint64_t now = now_ns();
    if (now >= deadline)
      return NULL;
    int left = (int)((deadline - now) / 1000000u) + 1;
    if (out_fd < 0) {
      usleep(1000);
      continue;
    }
    struct pollfd p = {.fd = ino_fd, .events = POLLIN};
    int r = poll(&p, 1, left);
    if (r > 0) {
      char ev[4096];
      if (read(ino_fd, ev, sizeof ev) < 0 && errno != EAGAIN && errno != EINTR) {
        perror("peer_latency: read inotify");
        exit(1);
      }
    }
  }
}

int main(int argc, char **argv) {
  int nfiles = 200, nsamples = 300, pause_us = 2000, ready_ms = 30000, opt;
  const char *src = NULL, *outpath = NULL;
  while ((opt = getopt(argc, argv, "d:o:f:n:p:t:")) != -1) {
    switch (opt) {
    case 'd': src = optarg; break;
    case 'o': outpath = optarg; break;
    case 'f': nfiles = atoi(optarg); break;
    case 'n': nsamples = atoi(optarg); break;
    case 'p': pause_us = atoi(optarg); break;
    case 't': ready_ms = atoi(optarg); break;
    default:
      fprintf(stderr, "usage: %s -d SRCDIR -o OUTFILE [-f FILES] [-n SAMPLES] [-p PAUSE_US] [-t READY_MS]\n", argv[0]);
      return 2;
    }
  }
  if (!src || !outpath || nfiles < 1 || nsamples < 1) {
    fprintf(stderr, "peer_latency: -d and -o are required\n");
    return 2;
  }
  ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ino_fd < 0) {
    perror("peer_latency: inotify_init1");
    return 1;
  }
  int *fds = calloc((size_t)nfiles, sizeof *fds);
  uint64_t *lat = calloc((size_t)nsamples, sizeof *lat);
  char path[4200], line[256];
  for (int i = 0; i < nfiles; i++) {
    snprintf(path, sizeof path, "%s/f%d.log", src, i);
    fds[i] = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fds[i] < 0) {
      perror(path);
      return 1;
    }
  }
  /* warm-up: one line per file, wait for all of them */
  for (int i = 0; i < nfiles; i++) {
    int n = snprintf(line, sizeof line, "warm-%d\n", i);
    if (write(fds[i], line, (size_t)n) != n) {
      perror("peer_latency: write");
      return 1;
    }
  }
  uint64_t ready_deadline = now_ns() + (uint64_t)ready_ms * 1000000u;
  int seen = 0;
  while (seen < nfiles) {
    char *l = next_line(ready_deadline, outpath);
    if (!l) {
      printf("latency: files=%d samples=0 median_ms=0 p99_ms=0 max_ms=0 timeouts=0 (not ready: %d of %d warm-up lines)\n",
             nfiles, seen, nfiles);
      return 1;
    }
    if (strncmp(l, "warm-", 5) == 0)
      seen++;
  }
  srand(12345);
  int timeouts = 0, got = 0;
  for (int s = 0; s < nsamples; s++) {
    int f = rand() % nfiles;
    int n = snprintf(line, sizeof line, "sample-%d\n", s);
    char want[64];
    snprintf(want, sizeof want, "sample-%d", s);
    uint64_t t0 = now_ns();
    if (write(fds[f], line, (size_t)n) != n) {
      perror("peer_latency: write");
      return 1;
    }
    uint64_t deadline = t0 + (uint64_t)SAMPLE_TIMEOUT_MS * 1000000u;
    char *l;
    while ((l = next_line(deadline, outpath)) && strcmp(l, want) != 0)
      ;
    if (!l) {
      timeouts++;
      continue;
    }
    lat[got++] = now_ns() - t0;
    usleep((useconds_t)pause_us);
  }
  if (got == 0) {
    printf("latency: files=%d samples=0 median_ms=0 p99_ms=0 max_ms=0 timeouts=%d\n", nfiles, timeouts);
    return 1;
  }
  qsort(lat, (size_t)got, sizeof *lat, cmp_u64);
  size_t p99 = (size_t)((got * 99 + 99) / 100);
  if (p99 > 0)
    p99--;
  printf("latency: files=%d samples=%d median_ms=%.3f p99_ms=%.3f max_ms=%.3f timeouts=%d\n", nfiles, got,
         lat[got / 2] / 1e6, lat[p99] / 1e6, lat[got - 1] / 1e6, timeouts);
  return timeouts ? 1 : 0;
}
