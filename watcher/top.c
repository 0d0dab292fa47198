/*
 * top.c: `tidemark top`'s view of a running instance (tidemark.h,
 * tdm_top_*): the store as live/view.h walks it, the metrics endpoint read
 * with a small HTTP GET of our own, and the screen made of both. The
 * command (cli/top.c) only draws the lines on a terminal and reads keys.
 */
#include "tidemark.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "base/clock.h"
#include "base/listen.h"
#include "base/log.h"
#include "live/view.h"

#define SCRAPE_TIMEOUT_MS 1000
#define SCRAPE_MAX (4u << 20) /* bytes of an answer */
#define HEADER_MAX (2 + TDM_VIEW_PROCS_MAX)

/* ---- the metrics endpoint: a small HTTP/1.0 GET of our own -------------- */

/* Wait for `ev` on `fd` until `deadline` (monotonic ms). 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short ev, uint64_t deadline) {
  for (;;) {
    uint64_t now = tdm__now_ms();
    struct pollfd p = {fd, ev, 0};
    int n;
    if (now >= deadline)
      return -ETIMEDOUT;
    n = poll(&p, 1, (int)(deadline - now));
    if (n > 0)
      return 0;
    if (n < 0 && errno != EINTR)
      return -errno;
  }
}

/*
 * GET /metrics from `addr` (ADDR:PORT) within SCRAPE_TIMEOUT_MS. Returns 0
 * with the body in *body (malloc'd, *len bytes), or -errno / -EPROTO (not a
 * 200 answer, or not ours) with a reason in err[cap].
 */
static int scrape(const char *addr, char **body, size_t *len, char *err,
                  size_t cap) {
  union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } sa;
  uint64_t deadline = tdm__now_ms() + SCRAPE_TIMEOUT_MS;
  char host[64], req[128], *buf = NULL;
  size_t got = 0, bcap = 0;
  socklen_t slen;
  int port, fd, rc = 0;

  *body = NULL;
  if (tdm__parse_listen(addr, host, sizeof(host), &port) != 0) {
    snprintf(err, cap, "not ADDR:PORT");
    return -EINVAL;
  }
  memset(&sa, 0, sizeof(sa));
  if (strchr(host, ':') != NULL) {
    sa.in6.sin6_family = AF_INET6;
    sa.in6.sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, host, &sa.in6.sin6_addr);
    slen = sizeof(sa.in6);
  } else {
    sa.in.sin_family = AF_INET;
    sa.in.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &sa.in.sin_addr);
    slen = sizeof(sa.in);
  }
  fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    rc = -errno;
    snprintf(err, cap, "socket: %s", strerror(errno));
    return rc;
  }
  if (connect(fd, &sa.sa, slen) != 0) {
    int e = 0;
    socklen_t el = sizeof(e);
    if (errno != EINPROGRESS) {
      rc = -errno;
      goto fail;
    }
    if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0)
      goto fail;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e != 0) {
      rc = -e;
      goto fail;
    }
  }
  snprintf(req, sizeof(req), "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr);
  {
    size_t off = 0, rlen = strlen(req);
    while (off < rlen) {
      ssize_t n = send(fd, req + off, rlen - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += (size_t)n;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        rc = -errno;
        goto fail;
      } else if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0) {
        goto fail;
      }
    }
  }
  for (;;) {
    ssize_t n;
    if (got + 4096 + 1 > bcap) {
      char *nb;
      bcap = bcap ? bcap * 2 : 16384;
      if (bcap > SCRAPE_MAX + 1 || (nb = realloc(buf, bcap)) == NULL) {
        rc = -EMSGSIZE;
        goto fail;
      }
      buf = nb;
    }
    n = recv(fd, buf + got, bcap - got - 1, 0);
    if (n > 0) {
      got += (size_t)n;
    } else if (n == 0) {
      break;
    } else if (errno != EAGAIN && errno != EINTR) {
      rc = -errno;
      goto fail;
    } else if ((rc = wait_fd(fd, POLLIN, deadline)) != 0) {
      goto fail;
    }
  }
  close(fd);
  fd = -1;
  buf[got] = '\0';
  {
    char *end = strstr(buf, "\r\n\r\n");
    if (got < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || end == NULL) {
      snprintf(err, cap, "not an HTTP answer");
      free(buf);
      return -EPROTO;
    }
    if (strncmp(buf + 8, " 200", 4) != 0) {
      snprintf(err, cap, "answered %.*s", (int)strcspn(buf + 9, "\r\n"),
               buf + 9);
      free(buf);
      return -EPROTO;
    }
    end += 4;
    *len = got - (size_t)(end - buf);
    memmove(buf, end, *len + 1);
  }
  *body = buf;
  return 0;

fail:
  if (rc == -ETIMEDOUT)
    snprintf(err, cap, "no answer in %d ms", SCRAPE_TIMEOUT_MS);
  else if (rc == -EMSGSIZE)
    snprintf(err, cap, "answer over %u bytes", SCRAPE_MAX);
  else
    snprintf(err, cap, "%s", strerror(-rc));
  if (fd >= 0)
    close(fd);
  free(buf);
  return rc;
}

/* ---- the view ------------------------------------------------------------ */

struct tdm_top_s {
  tdm__log_t log;
  tdm_view_t *v;
  tdm_view_metrics_t m;
  char *metrics;       /* ADDR:PORT, or NULL */
  int metrics_ok;
  char source[320];    /* where the live numbers come from, or why not */
  char metrics_err[256];
  char store_err[256];
  const tdm_view_file_t **pick;
  size_t pick_cap;
  size_t shown;        /* pick[0..shown) were rendered */
};

int tdm_top_open(const tdm_options_t *o, tdm_top_t **out) {
  tdm_top_t *v;
  char q[256];
  int rc;

  *out = NULL;
  if (o->metrics_listen != NULL &&
      tdm__parse_listen(o->metrics_listen, NULL, 0, NULL) != 0) {
    tdm__log_t log = {o->log_level, o->log_cb, o->log_arg};
    tdm__error(&log, "--metrics: '%s' is not ADDR:PORT (e.g. 127.0.0.1:9464 "
               "or [::1]:9464)", tdm__quote(o->metrics_listen, q, sizeof(q)));
    return TDM_EUSAGE;
  }
  if ((v = calloc(1, sizeof(*v))) == NULL)
    return -ENOMEM;
  v->log.level = o->log_level;
  v->log.cb = o->log_cb;
  v->log.arg = o->log_arg;
  if (o->metrics_listen != NULL &&
      (v->metrics = strdup(o->metrics_listen)) == NULL) {
    free(v);
    return -ENOMEM;
  }
  if ((rc = tdm__view_open(o->state_dir, &v->log, &v->v)) != 0) {
    tdm_top_close(v);
    return rc;
  }
  tdm_top_refresh(v);
  *out = v;
  return 0;
}

void tdm_top_close(tdm_top_t *v) {
  if (v == NULL)
    return;
  tdm__view_close(v->v);
  free(v->pick);
  free(v->metrics);
  free(v);
}

const char *tdm_top_metrics_error(const tdm_top_t *v) {
  return v->metrics_err[0] != '\0' ? v->metrics_err : NULL;
}

int tdm_top_refresh(tdm_top_t *v) {
  int changed, rc;

  /* The files rendered are looked at every time (the pointers are good
     until the refresh walks the store again). */
  tdm__view_look(v->v, v->pick, v->shown);
  rc = tdm__view_refresh(v->v, &changed);
  v->shown = 0;
  if (rc != 0) {
    if (v->store_err[0] == '\0')
      tdm__error(&v->log, "reading the state store: %s", tdm_strerror(rc));
    snprintf(v->store_err, sizeof(v->store_err), "store: %s (the view is "
             "the last one read)", tdm_strerror(rc));
  } else {
    v->store_err[0] = '\0';
  }
  v->metrics_err[0] = '\0';
  if (v->metrics != NULL) {
    char *body, err[160];
    size_t len = 0;
    v->metrics_ok = 0;
    if (scrape(v->metrics, &body, &len, err, sizeof(err)) != 0) {
      snprintf(v->metrics_err, sizeof(v->metrics_err),
               "%s: not answering: %s", v->metrics, err);
    } else {
      if (tdm__view_metrics_add(&v->m, body, len, tdm__now_ms()) != 0)
        snprintf(v->metrics_err, sizeof(v->metrics_err),
                 "%s: not the metrics of tidemark", v->metrics);
      else
        v->metrics_ok = 1;
      free(body);
    }
    if (v->metrics_ok)
      snprintf(v->source, sizeof(v->source), "live: %s", v->metrics);
    else
      snprintf(v->source, sizeof(v->source), "store; metrics %s",
               v->metrics_err);
  } else {
    snprintf(v->source, sizeof(v->source), "store only; --metrics for live");
  }
  return rc;
}

void tdm_top_render(tdm_top_t *v, const tdm_top_frame_t *f,
                    void (*line)(void *arg, int row, const char *text,
                                 int reverse),
                    void *arg) {
  char lines[HEADER_MAX + 1][512], buf[4096], q[512];
  size_t nh, k, matched = 0, want;
  const char *filter = f->filter != NULL ? f->filter : "";
  int width = f->width > 0 ? f->width : 100000;
  int r = 0;

  if (f->rows > 0 && (f->rows < 4 || width < 12)) {
    snprintf(buf, sizeof(buf), "tidemark top: terminal too small (%dx%d)",
             f->width, f->rows);
    tdm__view_cut(buf, (size_t)width);
    line(arg, r++, buf, 0);
    while (r < f->rows)
      line(arg, r++, "", 0);
    return;
  }
  nh = tdm__view_header(v->v, v->metrics_ok ? &v->m : NULL, v->source, lines,
                        HEADER_MAX);
  if (v->store_err[0] != '\0')
    snprintf(lines[nh++], sizeof(lines[0]), "%s", v->store_err);
  /* On a screen the header leaves rows for the titles, a file, the keys. */
  if (f->rows > 0 && (int)nh > f->rows - 3)
    nh = (size_t)(f->rows - 3);
  for (size_t i = 0; i < nh; i++) {
    tdm__view_cut(lines[i], (size_t)width);
    line(arg, r++, lines[i], 0);
  }
  line(arg, r++, tdm__view_titles(width, buf, sizeof(buf)), 1);
  want = f->rows > 0 ? (size_t)(f->rows - r - 1) : v->v->n;
  if (want > v->pick_cap) {
    const tdm_view_file_t **p = realloc(v->pick, (want + 1) * sizeof(*p));
    if (p == NULL)
      want = v->pick_cap;
    else {
      v->pick = p;
      v->pick_cap = want;
    }
  }
  if (f->rows == 0) {
    /* A snapshot: every file's size now, as `status` has it, first. */
    k = tdm__view_pick(v->v, (tdm_view_sort_t)f->sort, filter, want, v->pick,
                       NULL);
    tdm__view_look(v->v, v->pick, k);
  }
  k = tdm__view_pick(v->v, (tdm_view_sort_t)f->sort, filter, want, v->pick,
                     &matched);
  v->shown = k;
  for (size_t i = 0; i < k; i++)
    line(arg, r++, tdm__view_row(v->v, v->pick[i], width, buf, sizeof(buf)),
         0);
  if (f->rows == 0)
    return;
  while (r < f->rows - 1)
    line(arg, r++, "", 0);
  if (f->editing) {
    snprintf(buf, sizeof(buf), "filter: %s_  (Enter: keep, Esc: clear)",
             tdm__view_escape(filter, q, sizeof(q)));
  } else {
    int n = snprintf(buf, sizeof(buf), "%zu of %zu files  sort: %s (s)  ",
                     matched, v->v->n,
                     tdm__view_sort_name((tdm_view_sort_t)f->sort));
    if (filter[0] != '\0')
      snprintf(buf + n, sizeof(buf) - (size_t)n,
               "filter: %s (/, Esc)  quit (q)",
               tdm__view_escape(filter, q, sizeof(q)));
    else
      snprintf(buf + n, sizeof(buf) - (size_t)n, "filter (/)  quit (q)");
  }
  tdm__view_cut(buf, (size_t)width);
  line(arg, r, buf, 1);
}
