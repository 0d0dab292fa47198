/*
 * metrics_http.c: GET /metrics over HTTP/1.x on the host's libuv loop (see
 * metrics_http.h). One connection is one request: read up to the end of the
 * headers, answer, close. Every connection is bounded:
 *   memory  TDM_HTTP_REQUEST_MAX bytes of request (more: 400), plus the
 *           answer while it is written;
 *   time    TDM_HTTP_TIMEOUT_MS from accept to close, whatever the client
 *           does (slowloris, half-open, never reading the answer);
 *   number  TDM_HTTP_CONNS_MAX at once: a new one closes the oldest.
 * Answers: 200 for GET or HEAD /metrics, / and /status.json (query string
 * ignored), 404 for another path, 405 for another method, 400 for anything
 * that is not an HTTP/1.x request line.
 *
 * GET / (the status page) and GET /status.json (`status --json`) read the
 * state store, and neither thread of the instance may do that for a client:
 * the worker owns the engine and its store handle (a store is used from one
 * thread at a time), and a read transaction on the loop thread would pin
 * the map while the worker may have to grow it (mdb_env_set_mapsize wants
 * no transaction open in the process), besides blocking the loop for as
 * long as a slow client reads. So each is answered by a child process,
 * forked from the loop thread: it opens the store read-only as `status`
 * does from another process (the durable state, one consistent read
 * transaction), writes the answer straight into the client's socket as it
 * is made (a 64 KiB stdio buffer: no document is built in memory on either
 * side), and exits. One child at a time (another asks: 503, Retry-After);
 * it is killed when its connection is closed for any reason (the
 * TDM_HTTP_PAGE_TIMEOUT_MS deadline, the cap on connections, the
 * endpoint's close), it dies with the instance (PR_SET_PDEATHSIG), and it
 * holds nothing of the instance open but the one socket. The page's live
 * numbers (rates, processor states) come from the metrics text, sampled
 * every second by the loop thread while the page is in use.
 */
#include "live/metrics_http.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "base/clock.h"
#include "base/listen.h"
#include "base/log.h"
#include "live/view.h"

#define PAGE_FILES 50        /* files on the status page */
#define PAGE_REFRESH_S 2     /* its meta refresh */
#define CHILD_POLL_MS 20     /* how often a child's exit is looked for */
#define SAMPLE_MS 1000       /* the page's metrics samples */
#define SAMPLE_IDLE_MS 300000 /* sampling stops this long after a page */

enum { PAGE_HTML = 1, PAGE_JSON = 2 };

typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wr;
  struct tdm_metrics_http *srv;
  struct conn *prev, *next; /* oldest first */
  char *answer;             /* being written */
  size_t len;
  int closing;
  int handles;              /* open among tcp and timer */
  pid_t child;              /* answering this connection, 0: none */
  uint64_t deadline_ms;     /* the child's */
  char req[TDM_HTTP_REQUEST_MAX];
} conn_t;

struct tdm_metrics_http {
  uv_tcp_t listener;
  const tdm__log_t *log;
  char *(*get)(void *arg, size_t *len);
  void *arg;
  conn_t *head, *tail;
  unsigned n;
  int closing;
  int handles;              /* listener + every connection's */
  void (*done)(void *arg);
  void *done_arg;
  /* The pages (tdm__metrics_http_pages); NULL state_dir: 404. */
  char *state_dir;
  int (*status_print)(const char *dir, int json, const tdm__log_t *log,
                      FILE *out);
  conn_t *child_conn;       /* the one a child answers, NULL: none */
  uv_timer_t sampler;       /* metrics samples for the page's rates */
  int sampler_on;
  uint64_t page_ms;         /* the last page asked for */
  tdm_view_metrics_t m;
};

static void srv_handle_closed(struct tdm_metrics_http *s) {
  if (--s->handles == 0 && s->closing) {
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    free(s->state_dir);
    free(s);
    if (done != NULL)
      done(arg);
  }
}

static void on_conn_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  struct tdm_metrics_http *s = c->srv;
  if (--c->handles > 0)
    return;
  free(c->answer);
  free(c);
  srv_handle_closed(s);
}

#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer (TDM_TSAN) does not see libuv close a descriptor: libuv
   uses syscall(SYS_close), which TSan does not intercept. Told nothing, it
   takes the next descriptor of the same number (a file the worker opens)
   for this one, and libuv's last epoll_ctl, accept4 or read on it for a
   race with the worker. This hook (libtsan's, for code that makes raw
   system calls) says it is closed. */
void __sanitizer_syscall_pre_impl_close(long fd);
#define SAY_CLOSED(fd) __sanitizer_syscall_pre_impl_close((long)(fd))
#else
#define SAY_CLOSED(fd) ((void)(fd))
#endif

/* uv_close on a socket handle: libuv closes its descriptor before it
   returns (the callback comes later). */
static void close_socket(uv_tcp_t *h, uv_close_cb cb) {
  uv_os_fd_t fd = -1;
  int have = uv_fileno((uv_handle_t *)h, &fd) == 0;
  uv_close((uv_handle_t *)h, cb);
  if (have)
    SAY_CLOSED(fd);
}

/* Kill and reap the child answering `c`, if any. */
static void child_end(conn_t *c) {
  if (c->child <= 0)
    return;
  kill(c->child, SIGKILL);
  while (waitpid(c->child, NULL, 0) < 0 && errno == EINTR)
    ;
  c->child = 0;
  if (c->srv->child_conn == c)
    c->srv->child_conn = NULL;
}

static void conn_close(conn_t *c) {
  struct tdm_metrics_http *s = c->srv;
  if (c->closing)
    return;
  c->closing = 1;
  child_end(c);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    s->head = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  else
    s->tail = c->prev;
  s->n--;
  close_socket(&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timeout(uv_timer_t *h) {
  conn_close(h->data);
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  conn_close(w->data); /* Connection: close */
}

static void respond(conn_t *c, int code, const char *reason,
                    const char *type, const char *body, size_t blen,
                    int head_only) {
  char hdr[256];
  uv_buf_t b;
  int n;

  uv_read_stop((uv_stream_t *)&c->tcp);
  n = snprintf(hdr, sizeof(hdr),
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "%sConnection: close\r\n\r\n",
               code, reason, type, blen,
               code == 405   ? "Allow: GET, HEAD\r\n"
               : code == 503 ? "Retry-After: 1\r\n"
                             : "");
  c->len = (size_t)n + (head_only ? 0 : blen);
  if ((c->answer = malloc(c->len)) == NULL) {
    conn_close(c);
    return;
  }
  memcpy(c->answer, hdr, (size_t)n);
  if (!head_only && blen > 0)
    memcpy(c->answer + n, body, blen);
  b = uv_buf_init(c->answer, (unsigned)c->len);
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
    conn_close(c);
}

static void plain(conn_t *c, int code, const char *reason, const char *msg) {
  respond(c, code, reason, "text/plain; charset=utf-8", msg, strlen(msg), 0);
}

/* ---- the pages, made by a child process ---------------------------------- */

/* The page's metrics sample (loop thread). */
static void sample(struct tdm_metrics_http *s) {
  size_t len = 0;
  char *text = s->get(s->arg, &len);
  if (text != NULL) {
    tdm__view_metrics_add(&s->m, text, len, tdm__now_ms());
    free(text);
  }
}

static void on_sample(uv_timer_t *h) {
  struct tdm_metrics_http *s = h->data;
  if (tdm__now_ms() - s->page_ms > SAMPLE_IDLE_MS) {
    uv_timer_stop(&s->sampler);
    s->sampler_on = 0;
    memset(&s->m, 0, sizeof(s->m)); /* old samples would give old rates */
    return;
  }
  sample(s);
}

/* The child's end of the socket: writes as stdio flushes, waiting for room
   up to the deadline, the response head first. */
typedef struct sink {
  int fd;
  int head_only;
  int started;       /* the head is out */
  const char *type;
  uint64_t deadline;
} sink_t;

static int sink_put(sink_t *k, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(k->fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
      return -1;
    } else {
      struct pollfd pf = {k->fd, POLLOUT, 0};
      uint64_t now = tdm__now_ms();
      if (now >= k->deadline || poll(&pf, 1, (int)(k->deadline - now)) < 0)
        return -1;
    }
  }
  return 0;
}

static int sink_start(sink_t *k, int code, const char *reason,
                      const char *type) {
  char hdr[256];
  int n = snprintf(hdr, sizeof(hdr),
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nCache-Control: "
                   "no-store\r\nConnection: close\r\n\r\n", code, reason, type);
  k->started = 1;
  return sink_put(k, hdr, (size_t)n);
}

/* The client went away, or its deadline passed, or HEAD has its head:
   nothing more to do in the child. */
static ssize_t sink_write(void *cookie, const char *buf, size_t n) {
  sink_t *k = cookie;
  if (!k->started && sink_start(k, 200, "OK", k->type) != 0)
    _exit(0);
  if (k->head_only)
    _exit(0);
  if (sink_put(k, buf, n) != 0)
    _exit(0);
  return (ssize_t)n;
}

/* In the child: the answer, then _exit. `fd` is the client's socket. */
static void child_main(struct tdm_metrics_http *s, int what, int head,
                       int fd) {
  cookie_io_functions_t io = {NULL, sink_write, NULL, NULL};
  sink_t k = {3, head, 0,
              what == PAGE_HTML ? "text/html; charset=utf-8"
                                : "application/json",
              tdm__now_ms() + TDM_HTTP_PAGE_TIMEOUT_MS};
  char errbuf[1024];
  FILE *out;
  int err, rc = 0;

  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* Nothing of the instance stays open here but the socket (as fd 3) and
     stdin/stdout; stderr catches the messages of a failed open for the
     answer. The instance's signal handlers are not ours. */
  if (fd != 3 && dup2(fd, 3) < 0)
    _exit(1);
  close_range(4, ~0u, 0);
  err = memfd_create("tidemark-page-errors", MFD_CLOEXEC);
  if (err >= 0)
    dup2(err, 2);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, SIG_DFL);
  alarm(TDM_HTTP_PAGE_TIMEOUT_MS / 1000 + 1);
  if (head) { /* the head is all HEAD wants: nothing to read */
    sink_start(&k, 200, "OK", k.type);
    _exit(0);
  }
  if ((out = fopencookie(&k, "w", io)) == NULL)
    _exit(1);
  setvbuf(out, NULL, _IOFBF, 65536);
  if (what == PAGE_JSON) {
    tdm__log_t log = {TDM_LOG_ERROR, NULL, NULL};
    rc = s->status_print(s->state_dir, 1, &log, out);
  } else {
    tdm_view_t *v = NULL;
    tdm__log_t log = {TDM_LOG_ERROR, NULL, NULL};
    if ((rc = tdm__view_open(s->state_dir, &log, &v)) == 0)
      tdm__view_html(out, v, s->m.have ? &s->m : NULL, "live: this instance",
                     PAGE_FILES, PAGE_REFRESH_S);
    tdm__view_close(v);
  }
  fflush(out);
  if (rc != 0 && !k.started) {
    /* Nothing went out yet: say why instead, as the store said it. */
    ssize_t n = err >= 0 ? pread(err, errbuf, sizeof(errbuf) - 1, 0) : -1;
    errbuf[n > 0 ? n : 0] = '\0';
    if (n <= 0)
      snprintf(errbuf, sizeof(errbuf), "cannot read the state store\n");
    k.type = "text/plain; charset=utf-8";
    if (sink_start(&k, 503, "Service Unavailable", k.type) == 0 && !head)
      sink_put(&k, errbuf, strlen(errbuf));
  }
  _exit(0);
}

/* Loop thread: look for the child's end, or its deadline. */
static void on_child_tick(uv_timer_t *h) {
  conn_t *c = h->data;
  pid_t r = waitpid(c->child, NULL, WNOHANG);
  if (r == c->child || (r < 0 && errno == ECHILD)) {
    c->child = 0;
    c->srv->child_conn = NULL;
    conn_close(c); /* the child wrote the answer; ours is the last copy */
  } else if (tdm__now_ms() >= c->deadline_ms) {
    conn_close(c); /* kills it */
  }
}

static void page(conn_t *c, int what, int head) {
  struct tdm_metrics_http *s = c->srv;
  uv_os_fd_t fd;
  pid_t pid;

  uv_read_stop((uv_stream_t *)&c->tcp);
  if (what == PAGE_HTML) {
    s->page_ms = tdm__now_ms();
    if (!s->sampler_on) {
      sample(s);
      s->sampler_on = 1;
      uv_timer_start(&s->sampler, on_sample, SAMPLE_MS, SAMPLE_MS);
    }
  }
  if (s->child_conn != NULL &&
      waitpid(s->child_conn->child, NULL, WNOHANG) == s->child_conn->child) {
    conn_t *done = s->child_conn; /* it has just finished: close it now */
    done->child = 0;
    s->child_conn = NULL;
    conn_close(done);
  }
  if (s->child_conn != NULL) {
    plain(c, 503, "Service Unavailable",
          "busy with another page: try again in a second\n");
    return;
  }
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
    conn_close(c);
    return;
  }
  fflush(NULL); /* nothing buffered may be written twice */
  pid = fork();
  if (pid < 0) {
    plain(c, 503, "Service Unavailable", "cannot start a process\n");
    return;
  }
  if (pid == 0)
    child_main(s, what, head, fd);
  c->child = pid;
  c->deadline_ms = tdm__now_ms() + TDM_HTTP_PAGE_TIMEOUT_MS;
  s->child_conn = c;
  uv_timer_start(&c->timer, on_child_tick, CHILD_POLL_MS, CHILD_POLL_MS);
}

/* A complete request head is in c->req[0..len): answer it. */
static void answer(conn_t *c, size_t len) {
  char *line = c->req, *sp1, *sp2, *eol;
  size_t plen;
  int head = 0;

  eol = memchr(line, '\n', len);
  if (eol == NULL) {
    plain(c, 400, "Bad Request", "bad request\n");
    return;
  }
  if (eol > line && eol[-1] == '\r')
    eol--;
  *eol = '\0';
  sp1 = strchr(line, ' ');
  sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
  if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 ||
      strchr(sp2 + 1, ' ') != NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
      sp1[1] != '/') {
    plain(c, 400, "Bad Request", "bad request\n");
    return;
  }
  for (char *p = line; p < sp1; p++)
    if (*p < 'A' || *p > 'Z') {
      plain(c, 400, "Bad Request", "bad request\n");
      return;
    }
  *sp1 = '\0';
  plen = strcspn(sp1 + 1, "? ");
  if (strcmp(line, "HEAD") == 0)
    head = 1;
  else if (strcmp(line, "GET") != 0) {
    plain(c, 405, "Method Not Allowed", "only GET and HEAD\n");
    return;
  }
  if (plen == 1 && c->srv->state_dir != NULL) {
    page(c, PAGE_HTML, head);
    return;
  }
  if (plen == strlen("/status.json") &&
      memcmp(sp1 + 1, "/status.json", plen) == 0 && c->srv->state_dir != NULL) {
    page(c, PAGE_JSON, head);
    return;
  }
  if (plen != strlen("/metrics") || memcmp(sp1 + 1, "/metrics", plen) != 0) {
    plain(c, 404, "Not Found", c->srv->state_dir != NULL
                                   ? "not found: try /, /status.json or "
                                     "/metrics\n"
                                   : "not found: try /metrics\n");
    return;
  }
  {
    size_t tlen = 0;
    char *text = c->srv->get(c->srv->arg, &tlen);
    if (text == NULL) {
      plain(c, 503, "Service Unavailable", "no metrics yet\n");
      return;
    }
    respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text,
            tlen, head);
    free(text);
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn_t *c = h->data;
  (void)hint;
  /* Room left in the request buffer; the read callback's `nread` tells how
     much of it is filled (the length so far is kept in c->len). */
  *b = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - c->len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  conn_t *c = st->data;
  size_t old = c->len;
  (void)b;
  if (n < 0) { /* EOF or error: the client went away before asking */
    conn_close(c);
    return;
  }
  if (n == 0)
    return;
  c->len += (size_t)n;
  /* The end of the head: a blank line (\r\n\r\n, or a bare \n\n). */
  for (size_t i = old > 3 ? old - 3 : 0; i < c->len; i++) {
    if (c->req[i] == '\n' &&
        ((i >= 1 && c->req[i - 1] == '\n') ||
         (i >= 2 && c->req[i - 1] == '\r' && c->req[i - 2] == '\n'))) {
      size_t len = c->len;
      c->len = 0; /* c->len now counts the answer */
      answer(c, len);
      return;
    }
  }
  if (c->len == sizeof(c->req)) {
    c->len = 0;
    plain(c, 400, "Bad Request", "request too large\n");
  }
}

static void on_connection(uv_stream_t *l, int status) {
  struct tdm_metrics_http *s = l->data;
  conn_t *c;

  if (status < 0 || s->closing)
    return;
  if ((c = calloc(1, sizeof(*c))) == NULL)
    return; /* out of memory: libuv stops accepting until one closes */
  c->srv = s;
  uv_tcp_init(l->loop, &c->tcp);
  uv_timer_init(l->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  s->handles++;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    c->closing = 1;
    close_socket(&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    return;
  }
  /* Append; over the cap, the oldest goes. */
  c->prev = s->tail;
  if (s->tail != NULL)
    s->tail->next = c;
  else
    s->head = c;
  s->tail = c;
  s->n++;
  while (s->n > TDM_HTTP_CONNS_MAX)
    conn_close(s->head);
  uv_timer_start(&c->timer, on_timeout, TDM_HTTP_TIMEOUT_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c);
}

static void on_listener_closed(uv_handle_t *h) {
  srv_handle_closed(h->data);
}

/* A listening TCP socket on `sa`, bound synchronously: a failure leaves no
   handle on the loop. -errno. */
static int listen_fd(const struct sockaddr *sa, socklen_t len) {
  int one = 1, fd, rc;
  fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, sa, len) != 0 || listen(fd, 128) != 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

int tdm__metrics_http_start(uv_loop_t *loop, const char *listen,
                            const void *log,
                            char *(*get)(void *arg, size_t *len), void *arg,
                            tdm_metrics_http_t **out) {
  struct tdm_metrics_http *s;
  union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } addr;
  char host[64];
  int port, rc, fd;

  if (tdm__parse_listen(listen, host, sizeof(host), &port) != 0) {
    tdm__error(log, "--metrics: '%s' is not ADDR:PORT", listen);
    return -EINVAL;
  }
  memset(&addr, 0, sizeof(addr));
  if (strchr(host, ':') != NULL)
    rc = uv_ip6_addr(host, port, &addr.in6);
  else
    rc = uv_ip4_addr(host, port, &addr.in);
  if (rc != 0) {
    tdm__error(log, "--metrics %s: %s", listen, uv_strerror(rc));
    return rc;
  }
  fd = listen_fd(&addr.sa, addr.sa.sa_family == AF_INET6 ? sizeof(addr.in6)
                                                         : sizeof(addr.in));
  if (fd < 0) {
    tdm__error(log, "--metrics %s: cannot listen: %s", listen, strerror(-fd));
    return fd;
  }
  if ((s = calloc(1, sizeof(*s))) == NULL) {
    close(fd);
    return -ENOMEM;
  }
  s->log = log;
  s->get = get;
  s->arg = arg;
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  uv_timer_init(loop, &s->sampler);
  s->sampler.data = s;
  s->handles = 2;
  if ((rc = uv_tcp_open(&s->listener, fd)) != 0)
    close(fd); /* else the handle owns it */
  if (rc != 0 ||
      (rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection)) != 0) {
    tdm__error(log, "--metrics %s: cannot listen: %s", listen,
               uv_strerror(rc));
    s->closing = 1;
    uv_close((uv_handle_t *)&s->sampler, on_listener_closed);
    close_socket(&s->listener, on_listener_closed);
    return rc;
  }
  tdm__info(log, "metrics: serving http://%s/metrics", listen);
  *out = s;
  return 0;
}

int tdm__metrics_http_pages(tdm_metrics_http_t *s, const char *state_dir,
                            int (*status_print)(const char *dir, int json,
                                                const tdm__log_t *log,
                                                FILE *out)) {
  char *d = strdup(state_dir);
  if (d == NULL)
    return -ENOMEM;
  free(s->state_dir);
  s->state_dir = d;
  s->status_print = status_print;
  return 0;
}

void tdm__metrics_http_close(tdm_metrics_http_t *s, void (*done)(void *arg),
                             void *arg) {
  s->closing = 1;
  s->done = done;
  s->done_arg = arg;
  while (s->head != NULL)
    conn_close(s->head);
  uv_close((uv_handle_t *)&s->sampler, on_listener_closed);
  close_socket(&s->listener, on_listener_closed);
}
