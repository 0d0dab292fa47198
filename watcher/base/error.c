/* error.c: names and messages of error codes (see tidemark.h). */
#include "tidemark.h"

#include <string.h>

const char *tdm_strerror(int err) {
  switch (err) {
#define XX(name, val, msg) \
  case TDM_##name:         \
    return msg;
    TDM_ERRNO_MAP(XX)
#undef XX
  case 0:
    return "success";
  default:
    return err < 0 ? strerror(-err) : "unknown error";
  }
}

const char *tdm_err_name(int err) {
  switch (err) {
#define XX(name, val, msg) \
  case TDM_##name:         \
    return #name;
    TDM_ERRNO_MAP(XX)
#undef XX
  case 0:
    return "OK";
  default:
    if (err < 0) {
      const char *n = strerrorname_np(-err);
      if (n != NULL)
        return n;
    }
    return "EUNKNOWN";
  }
}

const char *tdm_version(void) { return TDM_VERSION_STRING; }
