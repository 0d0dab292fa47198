/*
 * top.c: `tidemark top`, a live terminal view of a running instance: its
 * store (read-only, beside the writer, as `status` reads it) and, with
 * --metrics ADDR:PORT, its metrics endpoint for live rates and the state of
 * each processor (live/view.h has what is shown and where it comes from).
 *
 * The screen is drawn with a handful of ANSI/VT100 sequences (alternate
 * screen, cursor position, erase to the end of the line, reverse video,
 * cursor hidden), which every terminal emulator, tmux and screen know; only
 * the lines that changed since the last frame are written. The terminal is
 * put back (main screen, cursor, line discipline) on every way out: q, the
 * end of input, SIGINT, SIGTERM, SIGHUP, SIGQUIT and a crash (SIGSEGV,
 * SIGBUS, SIGABRT, SIGFPE: put back, then the default action); SIGTSTP
 * (Ctrl-Z) puts it back before stopping and takes it again on SIGCONT.
 *
 * Not a terminal (or --once, or TERM=dumb): one plain snapshot, then exit;
 * it is taken over one --interval-ms so that rates can be shown.
 *
 * Cost: per refresh one read transaction of the store (its last commit id),
 * the files walked again only when a commit happened, one pass over them to
 * pick the screenful, one scrape of the metrics; an unchanged line is not
 * written.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "base/clock.h"
#include "engine/metrics.h"
#include "live/view.h"

#define SCRAPE_TIMEOUT_MS 1000
#define SCRAPE_MAX (4u << 20) /* bytes of an answer */
#define FILTER_MAX 128
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

/* ---- the state of the program ------------------------------------------- */

typedef struct top {
  const tdm_config_t *c;
  tdm_view_t *v;
  tdm_view_metrics_t m;
  char source[256];    /* where the live numbers come from, or why not */
  int metrics_ok;
  tdm_view_sort_t by;
  char filter[FILTER_MAX + 1];
  char edit[FILTER_MAX + 1];
  int editing;
  int rows, cols;
  char **prev;         /* the lines on screen, [rows] */
  int prev_rows;
  const tdm_view_file_t **pick;
  size_t pick_cap;
  size_t shown;        /* pick[0..shown) are on screen */
  char store_err[256];
  char metrics_err[256]; /* why the last scrape failed, "" when it did not */
} top_t;

/* One look at both sources. */
static void refresh(top_t *t) {
  int changed, rc;

  /* The files on screen are looked at every time (the pointers are good
     until the refresh walks the store again). */
  tdm__view_look(t->v, t->pick, t->shown);
  rc = tdm__view_refresh(t->v, &changed);
  t->shown = 0; /* until the next draw picks them again */

  if (rc != 0)
    snprintf(t->store_err, sizeof(t->store_err), "store: %s",
             tdm_strerror(rc));
  else
    t->store_err[0] = '\0';
  if (t->c->metrics != NULL) {
    char *body, err[160];
    size_t len = 0;
    t->metrics_err[0] = '\0';
    if (scrape(t->c->metrics, &body, &len, err, sizeof(err)) != 0) {
      t->metrics_ok = 0;
      snprintf(t->metrics_err, sizeof(t->metrics_err), "%s: not answering: %s",
               t->c->metrics, err);
      snprintf(t->source, sizeof(t->source),
               "store; metrics %s: not answering: %s", t->c->metrics, err);
    } else {
      if (tdm__view_metrics_add(&t->m, body, len, tdm__now_ms()) != 0) {
        t->metrics_ok = 0;
        snprintf(t->metrics_err, sizeof(t->metrics_err),
                 "%s: not the metrics of tidemark", t->c->metrics);
        snprintf(t->source, sizeof(t->source),
                 "store; metrics %s: not tidemark metrics", t->c->metrics);
      } else {
        t->metrics_ok = 1;
        snprintf(t->source, sizeof(t->source), "live: %s", t->c->metrics);
      }
      free(body);
    }
  } else {
    snprintf(t->source, sizeof(t->source), "store only; --metrics for live");
  }
}

static size_t header(top_t *t, char (*lines)[512], size_t max) {
  return tdm__view_header(t->v, t->metrics_ok ? &t->m : NULL, t->source,
                          lines, max);
}

/* ---- the snapshot ------------------------------------------------------- */

static int snapshot(top_t *t) {
  char lines[HEADER_MAX][512], row[4096];
  const tdm_view_file_t **pick;
  int width = 0;
  size_t n;

  if (isatty(STDOUT_FILENO)) {
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
      width = ws.ws_col;
  }
  /* Two looks, one interval apart, for rates. */
  refresh(t);
  {
    struct timespec ts = {(time_t)(t->c->interval_ms / 1000),
                          (long)(t->c->interval_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
      ;
  }
  refresh(t);
  n = header(t, lines, HEADER_MAX);
  for (size_t i = 0; i < n; i++) {
    if (width > 0)
      tdm__view_cut(lines[i], (size_t)width);
    printf("%s\n", lines[i]);
  }
  if (t->store_err[0] != '\0')
    printf("%s\n", t->store_err);
  printf("%s\n", tdm__view_titles(width > 0 ? width : 100000, row, sizeof(row)));
  if ((pick = calloc(t->v->n + 1, sizeof(*pick))) == NULL) {
    fprintf(stderr, "tidemark: error: out of memory\n");
    return 1;
  }
  /* Every file's size now, as `status` has it, then the order. */
  n = tdm__view_pick(t->v, TDM_VIEW_BY_PENDING, NULL, t->v->n, pick, NULL);
  tdm__view_look(t->v, pick, n);
  n = tdm__view_pick(t->v, TDM_VIEW_BY_PENDING, NULL, t->v->n, pick, NULL);
  for (size_t i = 0; i < n; i++)
    printf("%s\n", tdm__view_row(t->v, pick[i], width > 0 ? width : 100000,
                                 row, sizeof(row)));
  free(pick);
  if (t->c->metrics != NULL && !t->metrics_ok) {
    fprintf(stderr, "tidemark: error: --metrics %s (the snapshot above is "
                    "the store's alone)\n", t->metrics_err);
    return 1;
  }
  return 0;
}

/* ---- the terminal ------------------------------------------------------- */

static struct termios saved_tio;
static volatile sig_atomic_t tio_saved, screen_on;
static volatile sig_atomic_t got_stop, got_winch, got_cont;

/* Put the terminal back (async-signal-safe: write and tcsetattr only). */
static void restore_terminal(void) {
  static const char seq[] = "\033[?25h\033[m\033[?1049l";
  if (screen_on) {
    ssize_t n = write(STDOUT_FILENO, seq, sizeof(seq) - 1);
    (void)n;
    screen_on = 0;
  }
  if (tio_saved)
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
}

static int take_terminal(void) {
  static const char seq[] = "\033[?1049h\033[?25l\033[H\033[2J";
  struct termios tio;
  ssize_t n;
  if (!tio_saved) {
    if (tcgetattr(STDIN_FILENO, &saved_tio) != 0)
      return -errno;
    tio_saved = 1;
  }
  tio = saved_tio;
  tio.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
  tio.c_cc[VMIN] = 0;
  tio.c_cc[VTIME] = 0;
  if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) != 0)
    return -errno;
  n = write(STDOUT_FILENO, seq, sizeof(seq) - 1);
  (void)n;
  screen_on = 1;
  return 0;
}

static void on_stop(int sig) {
  (void)sig;
  got_stop = 1;
}

static void on_winch(int sig) {
  (void)sig;
  got_winch = 1;
}

static void on_tstp(int sig) {
  int saved = errno;
  (void)sig;
  restore_terminal();
  signal(SIGTSTP, SIG_DFL);
  raise(SIGTSTP); /* stops here; goes on at SIGCONT */
  errno = saved;
}

static void on_cont(int sig) {
  (void)sig;
  got_cont = 1;
}

static void on_crash(int sig) {
  restore_terminal();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void set_signal(int sig, void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = fn;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void term_size(top_t *t) {
  struct winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
      ws.ws_col > 0) {
    t->rows = ws.ws_row;
    t->cols = ws.ws_col;
  } else {
    t->rows = 24;
    t->cols = 80;
  }
}

/* A growable output buffer, written in one go. */
typedef struct obuf {
  char *p;
  size_t len, cap;
} obuf_t;

static void out_add(obuf_t *o, const char *s, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = (o->len + n) * 2 + 4096;
    char *p = realloc(o->p, cap);
    if (p == NULL)
      return;
    o->p = p;
    o->cap = cap;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

static void out_flush(obuf_t *o) {
  size_t off = 0;
  while (off < o->len) {
    ssize_t n = write(STDOUT_FILENO, o->p + off, o->len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    off += (size_t)n;
  }
  o->len = 0;
}

static void forget_screen(top_t *t) {
  for (int i = 0; i < t->prev_rows; i++)
    free(t->prev[i]);
  free(t->prev);
  t->prev = NULL;
  t->prev_rows = 0;
}

/* Put `line` on screen row `r` (0-based) if it is not there already.
   `attr`: an SGR sequence for the line ("" none). */
static void put_line(top_t *t, obuf_t *o, int r, const char *line,
                     const char *attr) {
  char pos[32];
  size_t n;
  if (r < t->prev_rows && t->prev[r] != NULL && strcmp(t->prev[r], line) == 0)
    return;
  n = (size_t)snprintf(pos, sizeof(pos), "\033[%d;1H%s", r + 1, attr);
  out_add(o, pos, n);
  out_add(o, line, strlen(line));
  out_add(o, attr[0] ? "\033[m\033[K" : "\033[K", attr[0] ? 6 : 3);
  if (r < t->prev_rows) {
    free(t->prev[r]);
    t->prev[r] = strdup(line);
  }
}

static void draw(top_t *t) {
  char lines[HEADER_MAX][512], buf[4096];
  obuf_t o = {NULL, 0, 0};
  size_t nh, k, matched = 0;
  int r = 0, rows_for_files;

  if (t->prev_rows != t->rows) {
    forget_screen(t);
    t->prev = calloc((size_t)t->rows, sizeof(*t->prev));
    t->prev_rows = t->prev != NULL ? t->rows : 0;
    out_add(&o, "\033[H\033[2J", 7);
  }
  if (t->rows < 4 || t->cols < 12) {
    snprintf(buf, sizeof(buf), "tidemark top: terminal too small (%dx%d)",
             t->cols, t->rows);
    tdm__view_cut(buf, (size_t)t->cols);
    put_line(t, &o, 0, buf, "");
    for (r = 1; r < t->rows; r++)
      put_line(t, &o, r, "", "");
    out_flush(&o);
    free(o.p);
    return;
  }
  /* The header keeps at least three rows for titles, one file and keys. */
  nh = header(t, lines, HEADER_MAX);
  if (t->store_err[0] != '\0' && nh < HEADER_MAX)
    snprintf(lines[nh++], sizeof(lines[0]), "%s", t->store_err);
  if ((int)nh > t->rows - 3)
    nh = (size_t)(t->rows - 3);
  for (size_t i = 0; i < nh; i++) {
    tdm__view_cut(lines[i], (size_t)t->cols);
    put_line(t, &o, r++, lines[i], "");
  }
  put_line(t, &o, r++, tdm__view_titles(t->cols, buf, sizeof(buf)), "\033[7m");
  rows_for_files = t->rows - r - 1;
  if ((size_t)rows_for_files > t->pick_cap) {
    const tdm_view_file_t **p = realloc(t->pick, (size_t)rows_for_files *
                                                     sizeof(*p));
    if (p != NULL) {
      t->pick = p;
      t->pick_cap = (size_t)rows_for_files;
    }
  }
  k = tdm__view_pick(t->v, t->by, t->editing ? t->edit : t->filter,
                     (size_t)rows_for_files < t->pick_cap
                         ? (size_t)rows_for_files : t->pick_cap,
                     t->pick, &matched);
  t->shown = k;
  for (size_t i = 0; i < k; i++)
    put_line(t, &o, r++,
             tdm__view_row(t->v, t->pick[i], t->cols, buf, sizeof(buf)), "");
  while (r < t->rows - 1)
    put_line(t, &o, r++, "", "");
  /* The last row: keys, or the filter being typed. */
  if (t->editing) {
    char q[512];
    snprintf(buf, sizeof(buf), "filter: %s_  (Enter: keep, Esc: clear)",
             tdm__view_escape(t->edit, q, sizeof(q)));
  } else {
    char q[512];
    int n = snprintf(buf, sizeof(buf), "%zu of %zu files  sort: %s (s)  ",
                     matched, t->v->n, tdm__view_sort_name(t->by));
    if (t->filter[0] != '\0')
      snprintf(buf + n, sizeof(buf) - (size_t)n, "filter: %s (/, Esc)  quit (q)",
               tdm__view_escape(t->filter, q, sizeof(q)));
    else
      snprintf(buf + n, sizeof(buf) - (size_t)n, "filter (/)  quit (q)");
  }
  tdm__view_cut(buf, (size_t)t->cols);
  put_line(t, &o, r, buf, "\033[7m");
  out_flush(&o);
  free(o.p);
}

/* Handle the bytes typed. Returns 1 to quit. */
static int keys(top_t *t, const char *in, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)in[i];
    if (ch == 0x1b) {
      /* A lone Esc clears; an escape sequence (arrows...) is skipped. */
      if (i + 1 < n && (in[i + 1] == '[' || in[i + 1] == 'O')) {
        i += 2;
        while (i < n && !((unsigned char)in[i] >= 0x40 &&
                          (unsigned char)in[i] <= 0x7e))
          i++;
        continue;
      }
      if (t->editing)
        t->editing = 0;
      t->filter[0] = '\0';
      continue;
    }
    if (t->editing) {
      size_t l = strlen(t->edit);
      if (ch == '\r' || ch == '\n') {
        memcpy(t->filter, t->edit, l + 1);
        t->editing = 0;
      } else if (ch == 0x7f || ch == 0x08) {
        while (l > 0 && ((unsigned char)t->edit[l - 1] & 0xc0) == 0x80)
          l--; /* a UTF-8 continuation: the whole character goes */
        if (l > 0)
          t->edit[l - 1] = '\0';
        else
          t->edit[0] = '\0';
      } else if (ch >= 0x20 && l < FILTER_MAX) {
        t->edit[l] = (char)ch;
        t->edit[l + 1] = '\0';
      }
      continue;
    }
    switch (ch) {
    case 'q':
    case 'Q':
    case 0x04: /* Ctrl-D */
      return 1;
    case 's':
      t->by = (tdm_view_sort_t)((t->by + 1) % TDM_VIEW_SORTS_);
      break;
    case 'p': t->by = TDM_VIEW_BY_PENDING; break;
    case 'b': t->by = TDM_VIEW_BY_BEHIND; break;
    case 'r': t->by = TDM_VIEW_BY_RATE; break;
    case 'n': t->by = TDM_VIEW_BY_PATH; break;
    case '/':
      memcpy(t->edit, t->filter, sizeof(t->edit));
      t->editing = 1;
      break;
    case 0x0c: /* Ctrl-L: draw everything again */
      forget_screen(t);
      break;
    default:
      break;
    }
  }
  return 0;
}

static int interactive(top_t *t) {
  uint64_t next;
  int quit = 0, rc;

  set_signal(SIGINT, on_stop, 0);
  set_signal(SIGTERM, on_stop, 0);
  set_signal(SIGHUP, on_stop, 0);
  set_signal(SIGQUIT, on_stop, 0);
  set_signal(SIGWINCH, on_winch, SA_RESTART);
  set_signal(SIGTSTP, on_tstp, SA_RESTART);
  set_signal(SIGCONT, on_cont, SA_RESTART);
  set_signal(SIGSEGV, on_crash, SA_RESETHAND);
  set_signal(SIGBUS, on_crash, SA_RESETHAND);
  set_signal(SIGABRT, on_crash, SA_RESETHAND);
  set_signal(SIGFPE, on_crash, SA_RESETHAND);
  atexit(restore_terminal);
  if ((rc = take_terminal()) != 0) {
    fprintf(stderr, "tidemark: error: top: cannot set up the terminal: %s\n",
            strerror(-rc));
    return 1;
  }
  term_size(t);
  refresh(t);
  next = tdm__now_ms() + t->c->interval_ms;
  draw(t);
  while (!quit && !got_stop) {
    uint64_t now = tdm__now_ms();
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    int redraw = 0, n;

    if (now >= next) {
      refresh(t);
      next = now + t->c->interval_ms;
      redraw = 1;
    } else {
      n = poll(&p, 1, (int)(next - now));
      if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        char in[256];
        ssize_t got = read(STDIN_FILENO, in, sizeof(in));
        if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
          quit = 1; /* the terminal went away */
        else if (got > 0) {
          quit = keys(t, in, (size_t)got);
          redraw = 1;
        }
      }
    }
    if (got_cont) {
      got_cont = 0;
      set_signal(SIGTSTP, on_tstp, SA_RESTART);
      take_terminal();
      forget_screen(t);
      redraw = 1;
    }
    if (got_winch) {
      got_winch = 0;
      term_size(t);
      forget_screen(t);
      redraw = 1;
    }
    if (redraw && !quit && !got_stop)
      draw(t);
  }
  restore_terminal();
  return 0;
}

int tdm__top_run(const tdm_config_t *c) {
  top_t t;
  const char *term = getenv("TERM");
  int rc, status;

  memset(&t, 0, sizeof(t));
  t.c = c;
  rc = tdm__view_open(c->state_dir, c->options.log_level, &t.v);
  if (rc != 0)
    return 1; /* said, naming the directory */
  signal(SIGPIPE, SIG_IGN);
  if (c->top_once || !isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) ||
      term == NULL || strcmp(term, "dumb") == 0)
    status = snapshot(&t);
  else
    status = interactive(&t);
  forget_screen(&t);
  free(t.pick);
  tdm__view_close(t.v);
  return status;
}
