/*
 * metrics_http.h: GET /metrics over HTTP on the host's libuv loop (the loop
 * thread only). The text comes from engine/metrics.h, published by the
 * worker (live/live.c).
 */
#ifndef TDM_METRICS_HTTP_H
#define TDM_METRICS_HTTP_H

#include <stddef.h>
#include <stdio.h>

#include "tidemark.h"

struct uv_loop_s;
struct tdm__log;

typedef struct tdm_metrics_http tdm_metrics_http_t;

/* Limits of the endpoint. */
#define TDM_HTTP_REQUEST_MAX 8192u  /* bytes of one request, headers included */
#define TDM_HTTP_TIMEOUT_MS 5000u   /* a connection's whole life */
#define TDM_HTTP_CONNS_MAX 64u      /* at once; the oldest is dropped */
#define TDM_HTTP_PAGE_TIMEOUT_MS 60000u /* GET / or /status.json: the life of
                                           the connection and of its child */

/*
 * Listen on `listen` ("ADDR:PORT") on `loop`. The text served is taken with
 * `get(arg, &len)`, a malloc'd copy the endpoint frees (NULL: 503). Errors
 * (logged through `log`, naming the address): -EINVAL, -EADDRINUSE, ...
 */
int tdm__metrics_http_start(struct uv_loop_s *loop, const char *listen,
                            const void *log,
                            char *(*get)(void *arg, size_t *len), void *arg,
                            tdm_metrics_http_t **out);

/*
 * Serve the pages of the state directory `state_dir` too: GET / (a status
 * page: the header of `tidemark top` and the files most behind) and GET
 * /status.json (`status_print(dir, 1, ...)` onto the socket, the document of
 * `status --json`), each from a child process (metrics_http.c says why).
 * 0 or -ENOMEM.
 */
int tdm__metrics_http_pages(tdm_metrics_http_t *h, const char *state_dir,
                            int (*status_print)(const char *dir, int json,
                                                const struct tdm__log *log,
                                                FILE *out));

/* Close every handle; `done(arg)` is called once all are closed. */
void tdm__metrics_http_close(tdm_metrics_http_t *h, void (*done)(void *arg),
                             void *arg);

#endif /* TDM_METRICS_HTTP_H */
