/* log.c: the log sink (see log.h). */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *level_names[] = {"error", "warning", "info", "debug"};

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
  /* One write(2) per line so concurrent writers do not interleave. */
  {
    char out[4200];
    int m = snprintf(out, sizeof(out), "tidemark: %s: %s\n",
                     level_names[level], line);
    if (m > (int)sizeof(out) - 1)
      m = (int)sizeof(out) - 1;
    if (m > 0 && write(STDERR_FILENO, out, (size_t)m) < 0) {
      /* Nowhere left to report it. */
    }
  }
}

const char *tdm__quote(const char *s, char *buf, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;

  if (cap == 0)
    return buf;
  for (; *s != '\0' && o + 5 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\n') {
      buf[o++] = '\\';
      buf[o++] = 'n';
    } else if (c == '\t') {
      buf[o++] = '\\';
      buf[o++] = 't';
    } else if (c == '\\') {
      buf[o++] = '\\';
      buf[o++] = '\\';
    } else if (c < 0x20 || c == 0x7f) {
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
