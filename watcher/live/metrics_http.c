/*
 * metrics_http.c: GET /metrics over HTTP/1.x on the host's libuv loop (see
 * metrics_http.h). One connection is one request: read up to the end of the
 * headers, answer, close. Every connection is bounded:
 *   memory  TDM_HTTP_REQUEST_MAX bytes of request (more: 400), plus the
 *           answer while it is written;
 *   time    TDM_HTTP_TIMEOUT_MS from accept to close, whatever the client
 *           does (slowloris, half-open, never reading the answer);
 *   number  TDM_HTTP_CONNS_MAX at once: a new one closes the oldest.
 * Answers: 200 for GET or HEAD /metrics (query string ignored), 404 for
 * another path, 405 for another method, 400 for anything that is not an
 * HTTP/1.x request line.
 */
#include "live/metrics_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/listen.h"
#include "base/log.h"

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
};

static void srv_handle_closed(struct tdm_metrics_http *s) {
  if (--s->handles == 0 && s->closing) {
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
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


static void conn_close(conn_t *c) {
  struct tdm_metrics_http *s = c->srv;
  if (c->closing)
    return;
  c->closing = 1;
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
               code == 405 ? "Allow: GET, HEAD\r\n" : "");
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
    plain(c, 405, "Method Not Allowed", "only GET /metrics\n");
    return;
  }
  if (plen != strlen("/metrics") || memcmp(sp1 + 1, "/metrics", plen) != 0) {
    plain(c, 404, "Not Found", "not found: try /metrics\n");
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
  s->handles = 1;
  if ((rc = uv_tcp_open(&s->listener, fd)) != 0)
    close(fd); /* else the handle owns it */
  if (rc != 0 ||
      (rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection)) != 0) {
    tdm__error(log, "--metrics %s: cannot listen: %s", listen,
               uv_strerror(rc));
    s->closing = 1;
    close_socket(&s->listener, on_listener_closed);
    return rc;
  }
  tdm__info(log, "metrics: serving http://%s/metrics", listen);
  *out = s;
  return 0;
}

void tdm__metrics_http_close(tdm_metrics_http_t *s, void (*done)(void *arg),
                             void *arg) {
  s->closing = 1;
  s->done = done;
  s->done_arg = arg;
  while (s->head != NULL)
    conn_close(s->head);
  close_socket(&s->listener, on_listener_closed);
}
