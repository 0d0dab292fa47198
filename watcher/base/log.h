/*
 * log.h: the internal log sink every module writes its messages through.
 *
 * The layer that knows the file or option writes the message, naming it; the
 * sink adds nothing but the level. A NULL sink logs to stderr at TDM_LOG_INFO.
 */
#ifndef TDM_LOG_H
#define TDM_LOG_H

#include "tidemark.h"

typedef struct tdm__log {
  tdm_log_level_t level; /* messages above this are dropped */
  tdm_log_cb cb;         /* NULL: stderr */
  void *arg;
} tdm__log_t;

#if defined(__GNUC__)
#define TDM__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TDM__PRINTF(f, a)
#endif

/* Format and emit one line. Never fails; a line over 4 KiB is cut. */
void tdm__log(const tdm__log_t *log, tdm_log_level_t level, const char *fmt,
              ...) TDM__PRINTF(3, 4);

#define tdm__error(log, ...) tdm__log((log), TDM_LOG_ERROR, __VA_ARGS__)
#define tdm__warn(log, ...) tdm__log((log), TDM_LOG_WARN, __VA_ARGS__)
#define tdm__info(log, ...) tdm__log((log), TDM_LOG_INFO, __VA_ARGS__)
#define tdm__debug(log, ...) tdm__log((log), TDM_LOG_DEBUG, __VA_ARGS__)

/*
 * Write one line to stderr as the default sink does: "tidemark: LEVEL: line",
 * or, when stderr is the journal stream systemd set up (JOURNAL_STREAM names
 * stderr's device and inode), "<N>line" with N the syslog priority (3 error,
 * 4 warning, 6 info, 7 debug). One write(2).
 */
void tdm__log_stderr(tdm_log_level_t level, const char *line);
/* Is stderr the journal (see above)? Checked once. */
int tdm__log_journal(void);

/*
 * Quote `s` for a log line into `buf` (C-style escapes for control bytes, so a
 * file name with a newline stays on one line). Returns buf.
 */
const char *tdm__quote(const char *s, char *buf, size_t cap);

#endif /* TDM_LOG_H */
