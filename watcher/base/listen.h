/*
 * listen.h: the address a listening socket is given (--metrics ADDR:PORT),
 * checked by tdm_open and parsed again where the socket is bound
 * (live/metrics_http.c).
 */
#ifndef TDM_LISTEN_H
#define TDM_LISTEN_H

#include <stddef.h>

/*
 * Parse "ADDR:PORT" (IPv4 "127.0.0.1:9464", IPv6 "[::1]:9464"; PORT 1 to
 * 65535). Returns 0 and, when `addr` is not NULL, the address (without
 * brackets) in addr[cap] and the port in *port; -EINVAL when it is not that.
 */
int tdm__parse_listen(const char *s, char *addr, size_t cap, int *port);

#endif /* TDM_LISTEN_H */
