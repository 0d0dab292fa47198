/*
 * metrics_http.h: GET /metrics over HTTP on the host's libuv loop (the loop
 * thread only). The text comes from engine/metrics.h, published by the
 * worker (live/live.c).
 */
#ifndef TDM_METRICS_HTTP_H
#define TDM_METRICS_HTTP_H

#include <stddef.h>

struct uv_loop_s;

typedef struct tdm_metrics_http tdm_metrics_http_t;

/* Limits of the endpoint. */
#define TDM_HTTP_REQUEST_MAX 8192u  /* bytes of one request, headers included */
#define TDM_HTTP_TIMEOUT_MS 5000u   /* a connection's whole life */
#define TDM_HTTP_CONNS_MAX 64u      /* at once; the oldest is dropped */

/*
 * Listen on `listen` ("ADDR:PORT") on `loop`. The text served is taken with
 * `get(arg, &len)`, a malloc'd copy the endpoint frees (NULL: 503). Errors
 * (logged through `log`, naming the address): -EINVAL, -EADDRINUSE, ...
 */
int tdm__metrics_http_start(struct uv_loop_s *loop, const char *listen,
                            const void *log,
                            char *(*get)(void *arg, size_t *len), void *arg,
                            tdm_metrics_http_t **out);

/* Close every handle; `done(arg)` is called once all are closed. */
void tdm__metrics_http_close(tdm_metrics_http_t *h, void (*done)(void *arg),
                             void *arg);

#endif /* TDM_METRICS_HTTP_H */
