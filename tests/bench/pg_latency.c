/*
 * pg_latency: append-to-row latency of `tidemark run -p postgres` (for
 * tests/bench/postgres.sh).
 *
 *   cc -O2 -o pg_latency pg_latency.c $(pkg-config --cflags --libs libpq)
 *   ./pg_latency CONNINFO CHANNEL FILE SAMPLES
 *
 * The table tidemark inserts into has a trigger that NOTIFYs CHANNEL with
 * each new row's line (delivered when the transaction commits). SAMPLES
 * times: take CLOCK_MONOTONIC, append the line "lat SEQ" to FILE (one
 * write(2), O_APPEND), wait until the notification "lat SEQ" arrives, take
 * the clock again; pause 2 ms between samples. Prints
 *     pg_latency: samples=N median_ms=... p99_ms=... max_ms=... timeouts=0
 * Exit 0 when every sample arrived (within 5 s each), 1 otherwise.
 */
#include <libpq-fe.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Wait for the notification `want` until `deadline` (ms). 1: came. */
static int wait_for(PGconn *c, const char *want, double deadline) {
  for (;;) {
    PGnotify *n;
    struct pollfd p = {PQsocket(c), POLLIN, 0};
    double left;
    while ((n = PQnotifies(c)) != NULL) {
      int hit = strcmp(n->extra, want) == 0;
      PQfreemem(n);
      if (hit)
        return 1;
    }
    left = deadline - now_ms();
    if (left <= 0)
      return 0;
    if (poll(&p, 1, (int)left + 1) < 0 && errno != EINTR)
      return 0;
    if (!PQconsumeInput(c))
      return 0;
  }
}

int main(int argc, char **argv) {
  PGconn *c;
  PGresult *r;
  char sql[256], line[64];
  double *lat;
  int n, fd, timeouts = 0;

  if (argc != 5 || (n = atoi(argv[4])) <= 0) {
    fprintf(stderr, "usage: pg_latency CONNINFO CHANNEL FILE SAMPLES\n");
    return 2;
  }
  c = PQconnectdb(argv[1]);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "pg_latency: %s", PQerrorMessage(c));
    return 1;
  }
  snprintf(sql, sizeof(sql), "LISTEN %s", argv[2]);
  r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    fprintf(stderr, "pg_latency: %s", PQerrorMessage(c));
    return 1;
  }
  PQclear(r);
  if ((fd = open(argv[3], O_WRONLY | O_APPEND | O_CREAT, 0644)) < 0 ||
      (lat = calloc((size_t)n, sizeof(*lat))) == NULL) {
    perror("pg_latency");
    return 1;
  }
  for (int i = 0; i < n; i++) {
    int len = snprintf(line, sizeof(line), "lat %d\n", i);
    double t0 = now_ms();
    if (write(fd, line, (size_t)len) != len) {
      perror("pg_latency: write");
      return 1;
    }
    line[len - 1] = '\0';
    if (!wait_for(c, line, t0 + 5000)) {
      timeouts++;
      lat[i] = 5000;
    } else {
      lat[i] = now_ms() - t0;
    }
    usleep(2000);
  }
  qsort(lat, (size_t)n, sizeof(*lat), cmp);
  printf("pg_latency: samples=%d median_ms=%.3f p99_ms=%.3f max_ms=%.3f "
         "timeouts=%d\n", n, lat[n / 2], lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1],
         lat[n - 1], timeouts);
  PQfinish(c);
  return timeouts ? 1 : 0;
}
