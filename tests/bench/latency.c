/*
 * latency: append-to-delivery latency of `tidemark run` (issue 3's figure).
 *
 *   cc -O2 -o latency tests/bench/latency.c
 *   ./latency [-f FILES] [-n SAMPLES] [-p PAUSE_US] [-w WORKDIR] [-o] TIDEMARK
 *
 * Creates FILES (200) files in WORKDIR/src (a fresh temporary directory by
 * default, removed at the end), each with one line, and starts
 *     TIDEMARK run -s WORKDIR/state -p stdout --checkpoint-ms 1000 WORKDIR/src
 * as a child with its stdout on a pipe. Ready when the start-up lines have
 * come through, then a warm-up line appended to every file has come through
 * too (so the watches are live). Then SAMPLES (1000) times: take
 * CLOCK_MONOTONIC, append one line holding a sequence number to a random file
 * (one write(2) on a descriptor opened with O_APPEND), read the pipe until
 * that line arrives, take the clock again; pause PAUSE_US (2000) between
 * samples. Prints
 *     latency: files=200 samples=1000 median_ms=... p99_ms=... max_ms=... timeouts=0 unexpected=0 exit=0
 * on stdout (one line, for tests/bench/run.sh) and a short histogram on
 * stderr. Exit 0 when every sample arrived and tidemark exited 0 after
 * SIGTERM; 1 otherwise.
 *
 * -o: through the `file` processor instead (issue 10's figure): tidemark runs
 * with `-p file:path=WORKDIR/out` (stdout to /dev/null) and a sample has
 * arrived when its line is in OUT, read as it grows (woken by inotify on
 * OUT). The output line then starts "latency: sink=file".
 */
#ifndef _GNU_SOURCE /* the build defines it for every file */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_TIMEOUT_MS 5000
#define READY_TIMEOUT_MS 30000

static int pipe_rd = -1;
/* -o: OUT read as it grows; inotify on it; the child, to notice its exit */
static int file_mode, ino_fd = -1;
static pid_t child;
static char rbuf[1 << 20];
static size_t rlen, rpos;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The next complete line from the pipe (NUL-terminated, without '\n'), or NULL
 * after timeout_ms or at end of file (*eof set).
 */
static char *next_line(int timeout_ms, int *eof) {
  uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
  *eof = 0;
  for (;;) {
    char *nl = memchr(rbuf + rpos, '\n', rlen - rpos);
    if (nl) {
      char *line = rbuf + rpos;
      *nl = '\0';
      rpos = (size_t)(nl - rbuf) + 1;
      return line;
    }
    if (rpos > 0) { /* compact */
      memmove(rbuf, rbuf + rpos, rlen - rpos);
      rlen -= rpos;
      rpos = 0;
    }
    if (rlen == sizeof rbuf) { /* a line longer than the buffer: drop it */
      rlen = 0;
      continue;
    }
    uint64_t now = now_ns();
    if (now >= deadline)
      return NULL;
    int left = (int)((deadline - now) / 1000000u) + 1;
    if (file_mode) {
      /* OUT is a regular file: read what is there, else wait for a change */
      ssize_t n = read(pipe_rd, rbuf + rlen, sizeof rbuf - rlen);
      if (n > 0) {
        rlen += (size_t)n;
        continue;
      }
      if (waitpid(child, NULL, WNOHANG) == child) {
        child = -1;
        *eof = 1;
        return NULL;
      }
      struct pollfd p = {.fd = ino_fd, .events = POLLIN};
      if (poll(&p, 1, left > 50 ? 50 : left) > 0) {
        char ev[4096];
        while (read(ino_fd, ev, sizeof ev) > 0) {
        }
      }
      continue;
    }
    struct pollfd p = {.fd = pipe_rd, .events = POLLIN};
    int r = poll(&p, 1, left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      continue; /* re-check the deadline */
    ssize_t n = read(pipe_rd, rbuf + rlen, sizeof rbuf - rlen);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0) {
      *eof = 1;
      return NULL;
    }
    rlen += (size_t)n;
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void write_line(int fd, const char *line) {
  size_t len = strlen(line);
  if (write(fd, line, len) != (ssize_t)len) {
    perror("latency: write");
    exit(1);
  }
}

static void rm_rf(const char *dir) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "latency: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
  int nfiles = 200, nsamples = 1000, pause_us = 2000, opt, eof;
  const char *workdir = NULL;
  char work[4096], src[4200], state[4200], errpath[4200], outpath[4200], spec[4300];
  int made_work = 0;
  while ((opt = getopt(argc, argv, "f:n:p:w:o")) != -1) {
    switch (opt) {
    case 'o': file_mode = 1; break;
    case 'f': nfiles = atoi(optarg); break;
    case 'n': nsamples = atoi(optarg); break;
    case 'p': pause_us = atoi(optarg); break;
    case 'w': workdir = optarg; break;
    default:
      fprintf(stderr, "usage: latency [-f FILES] [-n SAMPLES] [-p PAUSE_US] [-w WORKDIR] [-o] TIDEMARK\n");
      return 2;
    }
  }
  if (optind != argc - 1 || nfiles <= 0 || nsamples <= 0) {
    fprintf(stderr, "usage: latency [-f FILES] [-n SAMPLES] [-p PAUSE_US] [-w WORKDIR] [-o] TIDEMARK\n");
    return 2;
  }
  const char *tidemark = argv[optind];
  signal(SIGPIPE, SIG_IGN);

  if (workdir) {
    snprintf(work, sizeof work, "%s", workdir);
    mkdir(work, 0755);
  } else {
    const char *tmp = getenv("TMPDIR");
    snprintf(work, sizeof work, "%s/tdm-latency.XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(work)) {
      perror("latency: mkdtemp");
      return 1;
    }
    made_work = 1;
  }
  snprintf(src, sizeof src, "%s/src", work);
  snprintf(state, sizeof state, "%s/state", work);
  snprintf(errpath, sizeof errpath, "%s/tidemark.err", work);
  snprintf(outpath, sizeof outpath, "%s/out", work);
  snprintf(spec, sizeof spec, "file:path=%s", outpath);
  rm_rf(src);
  rm_rf(state);
  unlink(outpath);
  if (mkdir(src, 0755) != 0) {
    perror("latency: mkdir");
    return 1;
  }

  int *fds = calloc((size_t)nfiles, sizeof *fds);
  uint64_t *lat = calloc((size_t)nsamples, sizeof *lat);
  if (!fds || !lat)
    return 1;
  for (int i = 0; i < nfiles; i++) {
    char path[4400], line[64];
    snprintf(path, sizeof path, "%s/f%03d.log", src, i);
    fds[i] = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fds[i] < 0) {
      perror(path);
      return 1;
    }
    snprintf(line, sizeof line, "init %d\n", i);
    write_line(fds[i], line);
  }

  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) {
    perror("latency: pipe");
    return 1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("latency: fork");
    return 1;
  }
  if (pid == 0) {
    int efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (file_mode) {
      int nul = open("/dev/null", O_WRONLY);
      dup2(nul, 1);
    } else {
      dup2(pfd[1], 1);
    }
    if (efd >= 0)
      dup2(efd, 2);
    signal(SIGPIPE, SIG_DFL);
    execl(tidemark, tidemark, "run", "-s", state, "-p", file_mode ? spec : "stdout",
          "--checkpoint-ms", "1000", src, (char *)NULL);
    perror("latency: exec");
    _exit(127);
  }
  close(pfd[1]);
  pipe_rd = pfd[0];
  child = pid;
  if (file_mode) {
    /* OUT appears when tidemark opens its processor */
    uint64_t until = now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000u;
    int ofd;
    while ((ofd = open(outpath, O_RDONLY | O_CLOEXEC)) < 0) {
      struct timespec p = {0, 5000000};
      if (now_ns() > until || waitpid(pid, NULL, WNOHANG) == pid) {
        fprintf(stderr, "latency: %s never appeared; see %s\n", outpath, errpath);
        kill(pid, SIGKILL);
        return 1;
      }
      nanosleep(&p, NULL);
    }
    ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ino_fd < 0 || inotify_add_watch(ino_fd, outpath, IN_MODIFY) < 0) {
      perror("latency: inotify");
      kill(pid, SIGKILL);
      return 1;
    }
    close(pipe_rd);
    pipe_rd = ofd;
  }

  /* ready: the start-up lines, then a warm-up line per file */
  int seen = 0;
  while (seen < nfiles) {
    char *l = next_line(READY_TIMEOUT_MS, &eof);
    if (!l) {
      fprintf(stderr, "latency: tidemark delivered %d of %d start-up lines (%s); see %s\n", seen,
              nfiles, eof ? "it exited" : "timed out", errpath);
      kill(pid, SIGKILL);
      return 1;
    }
    if (strncmp(l, "init ", 5) == 0)
      seen++;
  }
  for (int i = 0; i < nfiles; i++) {
    char line[64];
    snprintf(line, sizeof line, "warm %d\n", i);
    write_line(fds[i], line);
  }
  seen = 0;
  while (seen < nfiles) {
    char *l = next_line(READY_TIMEOUT_MS, &eof);
    if (!l) {
      fprintf(stderr, "latency: tidemark delivered %d of %d warm-up lines (%s); see %s\n", seen,
              nfiles, eof ? "it exited" : "timed out", errpath);
      kill(pid, SIGKILL);
      return 1;
    }
    if (strncmp(l, "warm ", 5) == 0)
      seen++;
  }

  /* the samples */
  int timeouts = 0, unexpected = 0, n = 0;
  srand((unsigned)getpid());
  for (int s = 0; s < nsamples; s++) {
    char line[80], want[64];
    int f = rand() % nfiles;
    snprintf(want, sizeof want, "seq %06d file %03d", s, f);
    snprintf(line, sizeof line, "%s\n", want);
    uint64_t t0 = now_ns();
    write_line(fds[f], line);
    for (;;) {
      char *l = next_line(SAMPLE_TIMEOUT_MS, &eof);
      if (!l) {
        timeouts++;
        fprintf(stderr, "latency: sample %d (%s) %s\n", s, want,
                eof ? "never came: tidemark exited" : "timed out");
        if (eof)
          goto done;
        break;
      }
      if (strcmp(l, want) == 0) {
        lat[n++] = now_ns() - t0;
        break;
      }
      unexpected++; /* a duplicate or a line out of turn */
    }
    struct timespec p = {.tv_sec = pause_us / 1000000, .tv_nsec = (long)(pause_us % 1000000) * 1000};
    nanosleep(&p, NULL);
  }
done:;
  int status = 0, exit_code = -1;
  uint64_t t_stop = now_ns();
  kill(pid, SIGTERM);
  /* drain the pipe until tidemark closes it, so it never blocks on a write */
  while (!file_mode && (next_line(3000, &eof) != NULL || !eof)) {
    if (now_ns() - t_stop > 5000000000ull) {
      kill(pid, SIGKILL);
      break;
    }
  }
  if (file_mode) { /* nothing to drain: wait for the exit */
    while (child > 0 && waitpid(pid, &status, WNOHANG) == 0 && now_ns() - t_stop < 10000000000ull) {
      struct timespec p = {0, 1000000};
      nanosleep(&p, NULL);
    }
    if (child > 0 && now_ns() - t_stop >= 10000000000ull) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
  } else {
    waitpid(pid, &status, 0);
  }
  if (WIFEXITED(status))
    exit_code = WEXITSTATUS(status);
  double stop_ms = (double)(now_ns() - t_stop) / 1e6;

  qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
  double med = n ? (double)lat[n / 2] / 1e6 : -1;
  double p99 = n ? (double)lat[(size_t)((n - 1) * 99 / 100)] / 1e6 : -1;
  double max = n ? (double)lat[n - 1] / 1e6 : -1;
  double min = n ? (double)lat[0] / 1e6 : -1;
  int buckets[6] = {0}; /* <0.25, <0.5, <1, <2, <5, >=5 ms */
  for (int i = 0; i < n; i++) {
    double ms = (double)lat[i] / 1e6;
    buckets[ms < 0.25 ? 0 : ms < 0.5 ? 1 : ms < 1 ? 2 : ms < 2 ? 3 : ms < 5 ? 4 : 5]++;
  }
  fprintf(stderr,
          "latency: min %.3f ms; <0.25 ms %d, <0.5 %d, <1 %d, <2 %d, <5 %d, >=5 %d; "
          "SIGTERM to exit %.0f ms\n",
          min, buckets[0], buckets[1], buckets[2], buckets[3], buckets[4], buckets[5], stop_ms);
  printf("latency: %sfiles=%d samples=%d median_ms=%.3f p99_ms=%.3f max_ms=%.3f timeouts=%d "
         "unexpected=%d exit=%d\n",
         file_mode ? "sink=file " : "", nfiles, n, med, p99, max, timeouts, unexpected, exit_code);
  for (int i = 0; i < nfiles; i++)
    close(fds[i]);
  if (made_work)
    rm_rf(work);
  return (timeouts == 0 && n == nsamples && exit_code == 0) ? 0 : 1;
}
