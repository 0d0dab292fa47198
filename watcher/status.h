/*
 * status.h: the state store as `tidemark status` shows it and as `tidemark
 * reset` changes it, without the engine (status.c). The library's
 * tdm_status_json, tdm_status_write, tdm_reset and tdm_reset_paths are made
 * of these; the command uses those public ones. Messages go through the log
 * sink given (NULL: stderr at TDM_LOG_INFO), naming the directory or PATH.
 */
#ifndef TDM_STATUS_H
#define TDM_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h"
#include "tidemark.h"

/*
 * Print the state of `dir` on `out`: a table, or with `json` one JSON object
 * on one line (status.c says its fields), each file written as the store's
 * walk reaches it (memory does not grow with the number of files). The
 * store is opened read-only, so this works while a writer runs. 0, or a negative code after a message:
 * -ENOENT (no state there), -ENOTDIR, TDM_ESTATE (corrupt), TDM_ESTORE.
 */
int tdm__status_print(const char *dir, int json, const tdm__log_t *log,
                      FILE *out);

/*
 * Print a summary of `dir` on `out`, from the records alone (no file is
 * looked at): the files by state, the bytes pending at the last look and
 * in how many files, the oldest of them (since when its bookmark has not
 * moved), the last checkpoint; with `json`, as one JSON object. 0, or a
 * negative code after a message, as tdm__status_print.
 */
int tdm__status_summary(const char *dir, int json, const tdm__log_t *log,
                        FILE *out);

/*
 * Open `dir` as the writer and forget every file (no PATHs), or every file
 * at or under each PATH, in one transaction. *forgotten: how many. 0 or a
 * negative code after a message (TDM_ELOCKED: another tidemark holds it);
 * *untracked counts the PATHs that matched nothing (the others are still
 * reset).
 */
int tdm__status_reset_paths(const char *dir, const char *const *paths,
                            size_t n_paths, const tdm__log_t *log,
                            size_t *forgotten, size_t *untracked);

/* Is `path` `top` itself or inside it (lexically)? */
int tdm__status_is_under(const char *path, const char *top);

/*
 * Write `s` to `out` as a JSON string, with its quotes: '"' and '\\'
 * escaped, \n \t \r \b \f by name, other control bytes and DEL as \u00XX;
 * valid UTF-8 is written as it is. NULL writes `null`. A string that is not
 * all valid UTF-8 is first spelled by tdm__quote (\xNN for each bad byte,
 * a backslash doubled), so the output is always valid JSON; returns 1 then,
 * else 0.
 */
int tdm__status_json_string(FILE *out, const char *s);

/*
 * Make `path` absolute (against the current directory) and normalise it
 * lexically: "." and empty components dropped, ".." removes the previous one
 * (never above "/"), no trailing slash. The path need not exist. Returns a
 * malloc'd string, or NULL on out of memory or when the current directory
 * cannot be found (errno set).
 */
char *tdm__status_abspath(const char *path);

/*
 * Format `ns` (since the epoch) as ISO-8601 UTC to the second,
 * "2026-11-24T21:00:00Z", into `buf` (at least 21 bytes). Returns buf.
 */
const char *tdm__status_iso8601(int64_t ns, char *buf, size_t cap);

#endif /* TDM_STATUS_H */
