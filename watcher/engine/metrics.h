/*
 * metrics.h: the Prometheus metrics of a tdm_t, for --metrics (served over
 * HTTP) and --metrics-file (node_exporter's textfile collector).
 *
 * The counters belong to the engine, which the worker thread updates without
 * locks. So the worker (or tdm_run_once's caller) takes a snapshot itself,
 * formats it as text (format 0.0.4) and either writes it to --metrics-file
 * (at each checkpoint) or publishes it under a mutex for the loop thread,
 * which serves it over HTTP (live/metrics_http.c) without ever reading the
 * engine.
 *
 * Names start with tidemark_, counters end in _total; per processor, the
 * label processor="SPEC" (the spec as given, escaped).
 */
#ifndef TDM_METRICS_H
#define TDM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "tidemark.h"

/*
 * The metrics text of `t` now, in a malloc'd buffer (*out, *len; the caller
 * frees). Only on the thread that owns the engine (the worker, or the caller
 * of tdm_run_once). Also returns in *tracked and *pending (either may be NULL) the files
 * tracked and the bytes pending, for systemd's STATUS line. 0 or -ENOMEM.
 */
int tdm__metrics_render(tdm_t *t, char **out, size_t *len, uint64_t *tracked,
                        uint64_t *pending);

/*
 * Write `text` to `path` atomically: a temporary file beside it (".NAME.XXXXXX",
 * hidden), then rename(2). A failure is logged once per distinct errno,
 * naming the path, and returned (-errno); the old file stays.
 */
int tdm__metrics_write_file(tdm_t *t, const char *path, const char *text,
                            size_t len);

/*
 * The t->checkpointed hook when --metrics-file is given (tdm_open sets it,
 * so a checkpoint at tdm_close writes the file too): render the metrics and
 * write them (tdm__metrics_write_file; a failure is logged there).
 */
void tdm__metrics_checkpointed(tdm_t *t);

#endif /* TDM_METRICS_H */
