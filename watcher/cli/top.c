/*
 * top.c: the command `tidemark top`: the library's view of a running
 * instance (tdm_top_*: its store, read-only, and with --metrics its metrics
 * endpoint) drawn on a terminal, with keys to sort, filter and quit.
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
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define FILTER_MAX 128

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A growable output buffer, written in one go. */
typedef struct obuf {
  char *p;
  size_t len, cap;
} obuf_t;

typedef struct top {
  const tdm_config_t *c;
  tdm_top_t *v;
  tdm_top_sort_t by;
  char filter[FILTER_MAX + 1];
  char edit[FILTER_MAX + 1];
  int editing;
  int rows, cols;
  char **prev;         /* the lines on screen, [prev_rows] */
  int prev_rows;
  obuf_t o;            /* what the frame being drawn writes */
} top_t;

/* ---- the snapshot --------------------------------------------------------- */

static void print_line(void *arg, int row, const char *text, int reverse) {
  (void)arg;
  (void)row;
  (void)reverse;
  printf("%s\n", text);
}

static int snapshot(top_t *t) {
  tdm_top_frame_t f = {0, 0, TDM_TOP_BY_PENDING, NULL, 0};
  struct timespec ts = {(time_t)(t->c->interval_ms / 1000),
                        (long)(t->c->interval_ms % 1000) * 1000000L};
  const char *err;

  if (isatty(STDOUT_FILENO)) {
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
      f.width = ws.ws_col;
  }
  /* A second look one interval after the first, for rates. */
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
  tdm_top_refresh(t->v);
  tdm_top_render(t->v, &f, print_line, NULL);
  if ((err = tdm_top_metrics_error(t->v)) != NULL) {
    char line[512];
    snprintf(line, sizeof(line), "tidemark: error: --metrics %s (the "
             "snapshot above is the store's alone)", err);
    tdm_log_line(TDM_LOG_ERROR, line);
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

static void draw_line(void *arg, int row, const char *text, int reverse) {
  top_t *t = arg;
  put_line(t, &t->o, row, text, reverse ? "\033[7m" : "");
}

static void draw(top_t *t) {
  tdm_top_frame_t f = {t->cols, t->rows, t->by,
                       t->editing ? t->edit : t->filter, t->editing};
  if (t->prev_rows != t->rows) {
    forget_screen(t);
    t->prev = calloc((size_t)t->rows, sizeof(*t->prev));
    t->prev_rows = t->prev != NULL ? t->rows : 0;
    out_add(&t->o, "\033[H\033[2J", 7);
  }
  tdm_top_render(t->v, &f, draw_line, t);
  out_flush(&t->o);
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
      t->by = (tdm_top_sort_t)((t->by + 1) % TDM_TOP_SORTS);
      break;
    case 'p': t->by = TDM_TOP_BY_PENDING; break;
    case 'b': t->by = TDM_TOP_BY_BEHIND; break;
    case 'r': t->by = TDM_TOP_BY_RATE; break;
    case 'n': t->by = TDM_TOP_BY_PATH; break;
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
  next = now_ms() + t->c->interval_ms;
  draw(t);
  while (!quit && !got_stop) {
    uint64_t now = now_ms();
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    int redraw = 0, n;

    if (now >= next) {
      tdm_top_refresh(t->v);
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
  rc = tdm_top_open(&c->options, &t.v);
  if (rc != 0) /* said, naming the directory or the option */
    return rc == TDM_EUSAGE ? 2 : 1;
  signal(SIGPIPE, SIG_IGN);
  if (c->top_once || !isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) ||
      term == NULL || strcmp(term, "dumb") == 0)
    status = snapshot(&t);
  else
    status = interactive(&t);
  forget_screen(&t);
  free(t.o.p);
  tdm_top_close(t.v);
  return status;
}
