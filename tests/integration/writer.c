/*
 * tdm-writer: load generators for the `tidemark run` integration tests
 * (tests/integration/test-run-*.sh). Shell loops are far too slow for
 * thousands of lines or files per second.
 *
 *   tdm-writer append [-r LINES_PER_S] [-n MAX_LINES] [-c COUNT_FILE] [-t TEE]
 *                     TAG FILE...
 *       Appends numbered lines "TAG NNNNNNNNN <padding of varied length>\n"
 *       round-robin over the FILEs, in batches every 10 ms (default rate
 *       5000 lines/s). Each batch opens every FILE by its path
 *       (O_WRONLY|O_APPEND|O_CREAT), writes its lines with one write(2) and
 *       closes it, like a logger that reopens after rotation: a batch that
 *       races a rename lands in the renamed file, the next one creates the
 *       new file at the old name. Stops after MAX_LINES lines or on
 *       SIGTERM/SIGINT (after finishing its batch), then writes the number of
 *       lines written to COUNT_FILE (atomically: temp file + rename) and to
 *       stdout. Every line written is complete: a line is never cut. With
 *       -t, every line is also appended to TEE (the ground truth of what was
 *       written, whatever happens to the FILEs: rotated, deleted, truncated).
 *
 *   tdm-writer hold [-r LINES_PER_S] [-c COUNT_FILE] [-t TEE] TAG FILE
 *       Like append to one FILE, but as a logger that keeps its file open:
 *       FILE is opened once (O_WRONLY|O_APPEND|O_CREAT) and reopened by its
 *       path only on SIGHUP (logrotate's `create` + postrotate signal), so
 *       after a rename the lines keep landing in the renamed file until the
 *       signal comes. Stops on SIGTERM/SIGINT like append.
 *
 *   tdm-writer mkfiles [-s START] DIR N TAG
 *       Creates N files DIR/fNNNNNNN.log (numbered from START, default 0),
 *       each holding the one line "TAG NNNNNNN\n". Fails on an existing file.
 *
 * Exit 0 on success, 1 on an I/O error (named on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static int usage(void) {
  fprintf(stderr,
          "usage: tdm-writer append [-r LINES_PER_S] [-n MAX_LINES] [-c COUNT_FILE] [-t TEE] TAG FILE...\n"
          "       tdm-writer hold [-r LINES_PER_S] [-c COUNT_FILE] [-t TEE] TAG FILE\n"
          "       tdm-writer mkfiles [-s START] DIR N TAG\n");
  return 2;
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static int write_count(const char *path, unsigned long long n) {
  char tmp[4096];
  char buf[64];
  int fd, len;
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return -1;
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return -1;
  len = snprintf(buf, sizeof buf, "%llu\n", n);
  if (write_all(fd, buf, (size_t)len) != 0 || close(fd) != 0)
    return -1;
  return rename(tmp, path);
}

static int cmd_append(int argc, char **argv) {
  static const char pad[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned long rate = 5000;
  unsigned long long max = 0, seq = 0;
  const char *count_file = NULL, *tee_file = NULL;
  const char *tag;
  int tee_fd = -1;
  char **files;
  int nfiles, opt;
  size_t per_batch, cap;
  char **bufs;
  size_t *lens;
  struct timespec next;
  struct sigaction sa;

  optind = 1;
  while ((opt = getopt(argc, argv, "r:n:c:t:")) != -1) {
    switch (opt) {
    case 'r': rate = strtoul(optarg, NULL, 10); break;
    case 'n': max = strtoull(optarg, NULL, 10); break;
    case 'c': count_file = optarg; break;
    case 't': tee_file = optarg; break;
    default: return usage();
    }
  }
  if (argc - optind < 2 || rate == 0)
    return usage();
  tag = argv[optind];
  files = argv + optind + 1;
  nfiles = argc - optind - 1;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  if (tee_file &&
      (tee_fd = open(tee_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
    fprintf(stderr, "tdm-writer: %s: %s\n", tee_file, strerror(errno));
    return 1;
  }
  per_batch = (rate + 99) / 100; /* a batch every 10 ms */
  cap = per_batch * (strlen(tag) + 16 + sizeof pad) + 1;
  bufs = calloc((size_t)nfiles, sizeof *bufs);
  lens = calloc((size_t)nfiles, sizeof *lens);
  if (!bufs || !lens)
    return 1;
  for (int i = 0; i < nfiles; i++)
    if (!(bufs[i] = malloc(cap)))
      return 1;

  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!stop_flag && (max == 0 || seq < max)) {
    for (int i = 0; i < nfiles; i++)
      lens[i] = 0;
    for (size_t k = 0; k < per_batch && (max == 0 || seq < max); k++) {
      int f = (int)(seq % (unsigned long long)nfiles);
      size_t padlen = (size_t)((seq * 7919u) % 101u);
      seq++;
      lens[f] += (size_t)snprintf(bufs[f] + lens[f], cap - lens[f], "%s %09llu %.*s\n",
                                  tag, seq, (int)padlen, pad);
    }
    for (int i = 0; i < nfiles; i++) {
      int fd;
      if (lens[i] == 0)
        continue;
      do
        fd = open(files[i], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
      while (fd < 0 && errno == EINTR);
      if (fd < 0 || write_all(fd, bufs[i], lens[i]) != 0) {
        fprintf(stderr, "tdm-writer: %s: %s\n", files[i], strerror(errno));
        return 1;
      }
      close(fd);
      if (tee_fd >= 0 && write_all(tee_fd, bufs[i], lens[i]) != 0) {
        fprintf(stderr, "tdm-writer: %s: %s\n", tee_file, strerror(errno));
        return 1;
      }
    }
    next.tv_nsec += 10 * 1000 * 1000;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    while (!stop_flag && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
      ;
  }
  if (count_file && write_count(count_file, seq) != 0) {
    fprintf(stderr, "tdm-writer: %s: %s\n", count_file, strerror(errno));
    return 1;
  }
  printf("%llu\n", seq);
  for (int i = 0; i < nfiles; i++)
    free(bufs[i]);
  free(bufs);
  free(lens);
  if (tee_fd >= 0)
    close(tee_fd);
  return 0;
}

static volatile sig_atomic_t hup_flag;

static void on_hup(int sig) {
  (void)sig;
  hup_flag = 1;
}

static int cmd_hold(int argc, char **argv) {
  static const char pad[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned long rate = 5000;
  unsigned long long seq = 0;
  const char *count_file = NULL, *tee_file = NULL, *tag, *file;
  int tee_fd = -1, fd, opt;
  size_t per_batch, cap, len;
  char *buf;
  struct timespec next;
  struct sigaction sa;

  optind = 1;
  while ((opt = getopt(argc, argv, "r:c:t:")) != -1) {
    switch (opt) {
    case 'r': rate = strtoul(optarg, NULL, 10); break;
    case 'c': count_file = optarg; break;
    case 't': tee_file = optarg; break;
    default: return usage();
    }
  }
  if (argc - optind != 2 || rate == 0)
    return usage();
  tag = argv[optind];
  file = argv[optind + 1];

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_hup;
  sigaction(SIGHUP, &sa, NULL);

  if (tee_file &&
      (tee_fd = open(tee_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
    fprintf(stderr, "tdm-writer: %s: %s\n", tee_file, strerror(errno));
    return 1;
  }
  if ((fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
    fprintf(stderr, "tdm-writer: %s: %s\n", file, strerror(errno));
    return 1;
  }
  per_batch = (rate + 99) / 100; /* a batch every 10 ms */
  cap = per_batch * (strlen(tag) + 16 + sizeof pad) + 1;
  if (!(buf = malloc(cap)))
    return 1;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!stop_flag) {
    if (hup_flag) {
      int nfd;
      hup_flag = 0;
      do
        nfd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
      while (nfd < 0 && errno == EINTR);
      if (nfd < 0) {
        fprintf(stderr, "tdm-writer: reopen %s: %s\n", file, strerror(errno));
        return 1;
      }
      close(fd);
      fd = nfd;
    }
    len = 0;
    for (size_t k = 0; k < per_batch; k++) {
      size_t padlen = (size_t)((seq * 7919u) % 101u);
      seq++;
      len += (size_t)snprintf(buf + len, cap - len, "%s %09llu %.*s\n", tag, seq,
                              (int)padlen, pad);
    }
    if (write_all(fd, buf, len) != 0) {
      fprintf(stderr, "tdm-writer: %s: %s\n", file, strerror(errno));
      return 1;
    }
    if (tee_fd >= 0 && write_all(tee_fd, buf, len) != 0) {
      fprintf(stderr, "tdm-writer: %s: %s\n", tee_file, strerror(errno));
      return 1;
    }
    next.tv_nsec += 10 * 1000 * 1000;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    while (!stop_flag && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
      ;
  }
  close(fd);
  if (count_file && write_count(count_file, seq) != 0) {
    fprintf(stderr, "tdm-writer: %s: %s\n", count_file, strerror(errno));
    return 1;
  }
  printf("%llu\n", seq);
  free(buf);
  if (tee_fd >= 0)
    close(tee_fd);
  return 0;
}

static int cmd_mkfiles(int argc, char **argv) {
  unsigned long start = 0, n;
  const char *dir, *tag;
  int opt;
  optind = 1;
  while ((opt = getopt(argc, argv, "s:")) != -1) {
    if (opt == 's')
      start = strtoul(optarg, NULL, 10);
    else
      return usage();
  }
  if (argc - optind != 3)
    return usage();
  dir = argv[optind];
  n = strtoul(argv[optind + 1], NULL, 10);
  tag = argv[optind + 2];
  for (unsigned long i = start; i < start + n; i++) {
    char path[4096], line[256];
    int fd, len;
    snprintf(path, sizeof path, "%s/f%07lu.log", dir, i);
    len = snprintf(line, sizeof line, "%s %07lu\n", tag, i);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, line, (size_t)len) != 0 || close(fd) != 0) {
      fprintf(stderr, "tdm-writer: %s: %s\n", path, strerror(errno));
      return 1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  if (strcmp(argv[1], "append") == 0)
    return cmd_append(argc - 1, argv + 1);
  if (strcmp(argv[1], "hold") == 0)
    return cmd_hold(argc - 1, argv + 1);
  if (strcmp(argv[1], "mkfiles") == 0)
    return cmd_mkfiles(argc - 1, argv + 1);
  return usage();
}
