/* log.c: the log sink (see log.h). */
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *level_names[] = {"error", "warning", "info", "debug"};
/* syslog priorities (sd-daemon.h's SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG). */
static const char *const journal_prefix[] = {"<3>", "<4>", "<6>", "<7>"};

static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static int journal; /* stderr is the journal stream systemd gave us */

/* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected; it only
   counts when it is still our stderr (not inherited through a redirect). */
static void journal_check(void) {
  const char *e = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  char tail;
  if (e != NULL && sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) == 2 &&
      fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
      (unsigned long long)st.st_ino == ino)
    journal = 1;
}

int tdm__log_journal(void) {
  pthread_once(&journal_once, journal_check);
  return journal;
}

/* One line on stderr: "<N>line" under journald, else "tidemark: LEVEL:
   line" (`own`: a line of the caller's own, complete: "line"). */
static void write_line(tdm_log_level_t level, const char *line, int own) {
  char out[4200];
  int m;
  if ((unsigned)level > TDM_LOG_DEBUG)
    level = TDM_LOG_DEBUG;
  if (tdm__log_journal())
    m = snprintf(out, sizeof(out), "%s%s\n", journal_prefix[level], line);
  else if (own)
    m = snprintf(out, sizeof(out), "%s\n", line);
  else
    m = snprintf(out, sizeof(out), "tidemark: %s: %s\n", level_names[level],
                 line);
  if (m > (int)sizeof(out) - 1) {
    m = (int)sizeof(out) - 1;
    out[m - 1] = '\n';
  }
  /* One write(2) per line so concurrent writers do not interleave. */
  if (m > 0 && write(STDERR_FILENO, out, (size_t)m) < 0) {
    /* Nowhere left to report it. */
  }
}

void tdm__log_stderr(tdm_log_level_t level, const char *line) {
  write_line(level, line, 0);
}

void tdm_log_stderr(void *arg, tdm_log_level_t level, const char *msg) {
  (void)arg;
  write_line(level, msg, 0);
}

void tdm_log_line(tdm_log_level_t level, const char *line) {
  write_line(level, line, 1);
}

const char *tdm_quote(const char *s, char *buf, size_t cap) {
  return tdm__quote(s, buf, cap);
}

void tdm__log(const tdm__log_t *log, tdm_log_level_t level, const char *fmt,
              ...) {
  tdm_log_level_t threshold = log != NULL ? log->level : TDM_LOG_INFO;
  char line[4096];
  va_list ap;
  int n;

  if (level > threshold)
    return;
  va_start(ap, fmt);
  n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if (log != NULL && log->cb != NULL) {
    log->cb(log->arg, level, line);
    return;
  }
  tdm__log_stderr(level, line);
}

size_t tdm__utf8_len(const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  size_t n;
  uint32_t cp;

  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    n = 2, cp = s[0] & 0x1f;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    n = 3, cp = s[0] & 0x0f;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    n = 4, cp = s[0] & 0x07;
  else
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
      return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

int tdm__utf8_valid(const char *s) {
  while (*s != '\0') {
    size_t n = tdm__utf8_len(s);
    if (n == 0)
      return 0;
    s += n;
  }
  return 1;
}

size_t tdm__quote_size(const char *s) {
  return strlen(s) * 4 + 1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

char *tdm__unquote(const char *s) {
  char *out, *o;

  if (strchr(s, '\\') == NULL || (out = malloc(strlen(s) + 1)) == NULL)
    return NULL;
  for (o = out; *s != '\0'; s++) {
    if (*s != '\\') {
      *o++ = *s;
      continue;
    }
    s++;
    if (*s == 'n') {
      *o++ = '\n';
    } else if (*s == 't') {
      *o++ = '\t';
    } else if (*s == '\\') {
      *o++ = '\\';
    } else if (*s == 'x' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0 &&
               (hexval(s[1]) | hexval(s[2])) != 0) {
      *o++ = (char)(hexval(s[1]) << 4 | hexval(s[2]));
      s += 2;
    } else {
      free(out);
      return NULL;
    }
  }
  *o = '\0';
  return out;
}

const char *tdm__quote(const char *s, char *buf, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;

  if (cap == 0)
    return buf;
  for (; *s != '\0' && o + 5 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    size_t n = c >= 0x80 ? tdm__utf8_len(s) : 1;
    if (n > 1) {
      if (o + n + 1 > cap)
        break;
      memcpy(buf + o, s, n);
      o += n;
      s += n - 1;
    } else if (c == '\n') {
      buf[o++] = '\\';
      buf[o++] = 'n';
    } else if (c == '\t') {
      buf[o++] = '\\';
      buf[o++] = 't';
    } else if (c == '\\') {
      buf[o++] = '\\';
      buf[o++] = '\\';
    } else if (c < 0x20 || c == 0x7f || n == 0) {
      buf[o++] = '\\';
      buf[o++] = 'x';
      buf[o++] = hex[c >> 4];
      buf[o++] = hex[c & 15];
    } else {
      buf[o++] = (char)c;
    }
  }
  buf[o] = '\0';
  return buf;
}
