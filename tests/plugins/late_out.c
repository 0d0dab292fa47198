/* late_out.c: a plugin that writes every chunk to `path=OUT`, creating OUT
   only when the first chunk arrives (after the host's first scan began), and
   reports OUT through outputs() so the host never reads it back. For
   tests/integration/test-own-output-skip.sh. */
#include "tidemark/processor.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct late {
  char *path;
  int fd;
} late_t;

static int late_open(void **state, const tdm_open_args_t *args) {
  late_t *l;
  if (args->n_params != 1 || strcmp(args->params[0].key, "path") != 0) {
    snprintf(args->msg, TDM_MSG_MAX, "late_out: takes path=OUT");
    return TDM_PROC_FAIL;
  }
  if ((l = calloc(1, sizeof(*l))) == NULL ||
      (l->path = strdup(args->params[0].value)) == NULL) {
    free(l);
    return TDM_PROC_FAIL;
  }
  l->fd = -1;
  *state = l;
  return TDM_PROC_OK;
}

static int late_process(void *state, const tdm_chunk_t *c, char *msg) {
  late_t *l = state;
  if (l->fd < 0 &&
      (l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
    snprintf(msg, TDM_MSG_MAX, "late_out: cannot open %s", l->path);
    return TDM_PROC_FAIL;
  }
  return write(l->fd, c->data, c->len) == (ssize_t)c->len ? TDM_PROC_OK
                                                          : TDM_PROC_FAIL;
}

static void late_close(void *state) {
  late_t *l = state;
  if (l->fd >= 0)
    close(l->fd);
  free(l->path);
  free(l);
}

static size_t late_outputs(void *state, const char **paths, size_t max) {
  late_t *l = state;
  if (max > 0)
    paths[0] = l->path;
  return 1;
}

static const tdm_processor_t desc = {
    .abi_version = TDM_PROCESSOR_ABI_VERSION,
    .size = sizeof(tdm_processor_t),
    .name = "late_out",
    .summary = "writes chunks to path=OUT, created at the first chunk",
    .open = late_open,
    .process = late_process,
    .close = late_close,
    .outputs = late_outputs,
};

const tdm_processor_t *tdm_processor_entry(void) { return &desc; }
