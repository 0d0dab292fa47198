/*
 * nats_bench: the baseline and the latency probe of tests/bench/nats.sh.
 *
 *   cc -O2 -o nats_bench tests/bench/nats_bench.c $(pkg-config --cflags --libs libnats)
 *
 *   nats_bench pub URL SUBJECT FILE [MAX_PENDING]
 *       The limit: a raw cnats asynchronous publisher. Reads FILE and
 *       publishes each line (without its newline) to SUBJECT with the same
 *       headers the nats processor sets (Nats-Msg-Id "bench:1:OFFSET",
 *       Tidemark-Path, Tidemark-Offset), at most MAX_PENDING (4096) in
 *       flight, then waits for every ack. Prints "pub: msgs=N acked=N
 *       failed=N seconds=S".
 *
 *   nats_bench lat URL SUBJECT FILE SAMPLES
 *       Append-to-stream latency: subscribes to SUBJECT (a core subscription
 *       sees what JetStream stores on it), then SAMPLES times appends one line
 *       "lat N" to FILE (watched by a `tidemark run -p nats:...` the script
 *       started) and waits for that message; pause 2 ms between samples.
 *       Prints "lat: samples=N median_ms=M p99_ms=P max_ms=X timeouts=T".
 */
#include <nats/nats.h>

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int64_t inflight, acked, failed;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                   void *closure) {
  (void)js;
  (void)pae;
  (void)closure;
  pthread_mutex_lock(&mu);
  inflight--;
  if (pa != NULL)
    acked++;
  else
    failed++;
  pthread_cond_signal(&cond);
  pthread_mutex_unlock(&mu);
  natsMsg_Destroy(msg);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int pub(const char *url, const char *subject, const char *path,
               int64_t max_pending) {
  natsConnection *nc = NULL;
  jsCtx *js = NULL;
  jsOptions jo;
  struct stat st;
  int fd = open(path, O_RDONLY);
  if (fd < 0 || fstat(fd, &st) != 0) {
    perror(path);
    return 1;
  }
  const char *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (data == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  if (natsConnection_ConnectTo(&nc, url) != NATS_OK) {
    fprintf(stderr, "pub: cannot connect to %s\n", url);
    return 1;
  }
  jsOptions_Init(&jo);
  jo.PublishAsync.AckHandler = on_ack;
  jo.PublishAsync.MaxPending = 1 << 30;
  if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
    return 1;
  double t0 = now_s();
  int64_t n = 0;
  const char *p = data, *end = data + st.st_size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    char id[64], off[24];
    natsMsg *m = NULL;
    uint64_t o = (uint64_t)(p - data);
    pthread_mutex_lock(&mu);
    while (inflight >= max_pending)
      pthread_cond_wait(&cond, &mu);
    inflight++;
    pthread_mutex_unlock(&mu);
    snprintf(id, sizeof id, "bench:1:%" PRIu64, o);
    snprintf(off, sizeof off, "%" PRIu64, o);
    natsMsg_Create(&m, subject, NULL, p, (int)(stop - p));
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    natsMsgHeader_Set(m, "Tidemark-Path", path);
    natsMsgHeader_Set(m, "Tidemark-Offset", off);
    if (js_PublishMsgAsync(js, &m, NULL) != NATS_OK) {
      natsMsg_Destroy(m);
      pthread_mutex_lock(&mu);
      inflight--;
      failed++;
      pthread_mutex_unlock(&mu);
    }
    n++;
    p = nl ? nl + 1 : end;
  }
  pthread_mutex_lock(&mu);
  while (inflight > 0)
    pthread_cond_wait(&cond, &mu);
  pthread_mutex_unlock(&mu);
  double secs = now_s() - t0;
  printf("pub: msgs=%" PRId64 " acked=%" PRId64 " failed=%" PRId64 " seconds=%.3f\n", n, acked,
         failed, secs);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return failed == 0 ? 0 : 1;
}

static int lat(const char *url, const char *subject, const char *path, int samples) {
  natsConnection *nc = NULL;
  natsSubscription *sub = NULL;
  double *v = calloc((size_t)samples, sizeof *v);
  int n = 0, timeouts = 0;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0 || v == NULL) {
    perror(path);
    return 1;
  }
  if (natsConnection_ConnectTo(&nc, url) != NATS_OK ||
      natsConnection_SubscribeSync(&sub, nc, subject) != NATS_OK ||
      natsConnection_Flush(nc) != NATS_OK) {
    fprintf(stderr, "lat: cannot subscribe on %s\n", url);
    return 1;
  }
  for (int s = 0; s < samples; s++) {
    char line[64];
    int len = snprintf(line, sizeof line, "lat %d\n", s);
    double t0 = now_s();
    if (write(fd, line, (size_t)len) != len) {
      perror("write");
      return 1;
    }
    for (;;) {
      natsMsg *m = NULL;
      if (natsSubscription_NextMsg(&m, sub, 5000) != NATS_OK) {
        timeouts++;
        break;
      }
      int got = natsMsg_GetDataLength(m) == len - 1 &&
                memcmp(natsMsg_GetData(m), line, (size_t)len - 1) == 0;
      natsMsg_Destroy(m);
      if (got) {
        v[n++] = (now_s() - t0) * 1000.0;
        break;
      }
    }
    struct timespec p = {0, 2000000};
    nanosleep(&p, NULL);
  }
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  printf("lat: samples=%d median_ms=%.3f p99_ms=%.3f max_ms=%.3f timeouts=%d\n", n,
         n ? v[n / 2] : -1.0, n ? v[(n - 1) * 99 / 100] : -1.0, n ? v[n - 1] : -1.0, timeouts);
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(nc);
  return timeouts == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 5 && strcmp(argv[1], "pub") == 0)
    return pub(argv[2], argv[3], argv[4], argc >= 6 ? atoll(argv[5]) : 4096);
  if (argc >= 6 && strcmp(argv[1], "lat") == 0)
    return lat(argv[2], argv[3], argv[4], atoi(argv[5]));
  fprintf(stderr, "usage: nats_bench pub URL SUBJECT FILE [MAX_PENDING]\n"
                  "       nats_bench lat URL SUBJECT FILE SAMPLES\n");
  return 2;
}
