/*
 * tdm-pgfeed: drives a processor plugin directly, for the postgres tests
 * (test-postgres-reject.sh): the contract a host setting rejected records
 * aside relies on, without such a host.
 *
 *   tdm-pgfeed PLUGIN.so INSTANCE KEY=VALUE... -- STEP...
 *
 * Opens the plugin's processor with the KEY=VALUE parameters (tail mode,
 * instance INSTANCE), then runs each STEP in order and prints one line per
 * step, "STEP\tRESULT\tMESSAGE" (RESULT: ok, retry, fail, reject):
 *   chunk:FILE_ID:OFFSET:TEXT   process() of TEXT ("\n" in TEXT: a newline)
 *   commit                      commit()
 *   reopen                      close(), then open() again
 * Exit 0 when every step ran (whatever it answered), 1 when open failed,
 * 2 on bad usage.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tidemark/processor.h"

static const char *result_name(int rc) {
  switch (rc) {
  case TDM_PROC_OK: return "ok";
  case TDM_PROC_RETRY: return "retry";
  case TDM_PROC_FAIL: return "fail";
  case TDM_PROC_REJECT: return "reject";
  default: return "other";
  }
}

static void logline(void *arg, int level, const char *line) {
  (void)arg;
  fprintf(stderr, "log %d: %s\n", level, line);
}

static int open_it(const tdm_processor_t *d, void **state, tdm_kv_t *kv,
                   size_t n, const char *instance) {
  char msg[TDM_MSG_MAX] = "";
  tdm_open_args_t a;
  int rc;
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.mode = TDM_MODE_TAIL;
  a.params = kv;
  a.n_params = n;
  a.msg = msg;
  a.instance = instance;
  a.checkpoint_ms = 1000;
  a.log = logline;
  rc = d->open(state, &a);
  if (rc != TDM_PROC_OK)
    fprintf(stderr, "open: %s: %s\n", result_name(rc), msg);
  return rc;
}

int main(int argc, char **argv) {
  const tdm_processor_t *d;
  tdm_processor_entry_fn entry;
  tdm_kv_t kv[16];
  size_t n = 0;
  void *h, *state = NULL;
  int i;

  if (argc < 4)
    return 2;
  if ((h = dlopen(argv[1], RTLD_NOW)) == NULL) {
    fprintf(stderr, "tdm-pgfeed: %s\n", dlerror());
    return 1;
  }
  entry = (tdm_processor_entry_fn)dlsym(h, TDM_PROCESSOR_ENTRY_SYMBOL);
  if (entry == NULL || (d = entry()) == NULL)
    return 1;
  for (i = 3; i < argc && strcmp(argv[i], "--") != 0 && n < 16; i++) {
    char *eq = strchr(argv[i], '=');
    if (eq == NULL)
      return 2;
    *eq = '\0';
    kv[n].key = argv[i];
    kv[n++].value = eq + 1;
  }
  if (i == argc)
    return 2;
  if (open_it(d, &state, kv, n, argv[2]) != TDM_PROC_OK)
    return 1;
  for (i++; i < argc; i++) {
    char msg[TDM_MSG_MAX] = "";
    int rc;
    if (strncmp(argv[i], "chunk:", 6) == 0) {
      char *p = argv[i] + 6, *q, *text, *o;
      tdm_chunk_t c;
      memset(&c, 0, sizeof(c));
      c.size = sizeof(c);
      c.file_id = strtoull(p, &q, 10);
      c.offset = strtoull(q + 1, &q, 10);
      c.path = "/feed/app.log";
      /* "\n" in the text: a newline */
      text = malloc(strlen(q + 1) + 1);
      for (p = q + 1, o = text; *p; p++)
        *o++ = (p[0] == '\\' && p[1] == 'n') ? (p++, '\n') : *p;
      c.data = text;
      c.len = (size_t)(o - text);
      rc = d->process(state, &c, msg);
      free(text);
    } else if (strcmp(argv[i], "commit") == 0) {
      unsigned char blob[TDM_RESTORE_MAX];
      size_t len = sizeof(blob);
      rc = d->commit(state, blob, &len, msg);
    } else if (strcmp(argv[i], "reopen") == 0) {
      d->close(state);
      state = NULL;
      rc = open_it(d, &state, kv, n, argv[2]);
      if (rc != TDM_PROC_OK)
        return 1;
    } else {
      return 2;
    }
    printf("%s\t%s\t%s\n", argv[i], result_name(rc), msg);
    fflush(stdout);
  }
  d->close(state);
  return 0;
}
