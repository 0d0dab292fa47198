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
 * file name with a newline stays on one line): \n, \t, \\ for a backslash,
 * \xNN for other control bytes and for every byte that is not part of a valid
 * UTF-8 sequence; valid UTF-8 is copied. Cut short to fit `cap`. Returns buf.
 * tdm__unquote() reverses it.
 */
const char *tdm__quote(const char *s, char *buf, size_t cap);

/* Bytes tdm__quote needs for all of `s`, with its NUL. */
size_t tdm__quote_size(const char *s);

/*
 * The length (1 to 4) of the valid UTF-8 sequence at `s`, or 0 when the
 * byte at `s` does not start one (overlong forms, surrogates and code points
 * over U+10FFFF are not valid). `s` is NUL-terminated; *s is not NUL.
 */
size_t tdm__utf8_len(const char *s);

/* Whether all of `s` is valid UTF-8. */
int tdm__utf8_valid(const char *s);

/*
 * The bytes a tdm__quote()d string stands for, in a new string (the caller
 * frees it): \n, \t, \\ and \xNN (NN not 00) are decoded. NULL when `s`
 * holds no escape or a malformed one, or out of memory.
 */
char *tdm__unquote(const char *s);

#endif /* TDM_LOG_H */
