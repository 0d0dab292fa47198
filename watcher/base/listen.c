/*
 * listen.c: "ADDR:PORT" as --metrics takes it (see listen.h).
 */
#include "base/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int tdm__parse_listen(const char *s, char *addr, size_t cap, int *port) {
  const char *colon, *host = s;
  size_t hlen;
  char *end;
  long p;

  if (s == NULL || s[0] == '\0')
    return -EINVAL;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':')
      return -EINVAL;
    host = s + 1;
    hlen = (size_t)(close - host);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
      return -EINVAL; /* an IPv6 address needs its brackets */
    hlen = (size_t)(colon - s);
  }
  if (hlen == 0 || hlen >= 64 || colon[1] < '0' || colon[1] > '9')
    return -EINVAL;
  errno = 0;
  p = strtol(colon + 1, &end, 10);
  if (errno != 0 || *end != '\0' || p < 1 || p > 65535)
    return -EINVAL;
  {
    char h[64];
    unsigned char bin[16];
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    if (inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, h, bin) != 1)
      return -EINVAL;
    if (addr != NULL) {
      if (hlen >= cap)
        return -EINVAL;
      memcpy(addr, h, hlen + 1);
    }
  }
  if (port != NULL)
    *port = (int)p;
  return 0;
}
