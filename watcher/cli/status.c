/*
 * status.c: the commands `tidemark status` and `tidemark reset`, over the
 * library's tdm_status_write and tdm_reset_paths: exit codes and the output
 * stream. Messages go through c->options' log sink.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Check `out` after writing to it. 0, or 1 after a message. */
static int flush_out(FILE *out) {
  if (fflush(out) != 0 || ferror(out)) {
    char line[512];
    snprintf(line, sizeof(line), "tidemark: error: writing the output: %s",
             strerror(errno));
    tdm_log_line(TDM_LOG_ERROR, line);
    return 1;
  }
  return 0;
}

int tdm__status_run(const tdm_config_t *c, FILE *out) {
  tdm_status_format_t f =
      c->summary ? (c->json ? TDM_STATUS_SUMMARY_JSON : TDM_STATUS_SUMMARY)
                 : (c->json ? TDM_STATUS_JSON : TDM_STATUS_TABLE);
  if (tdm_status_write(&c->options, f, out) != 0)
    return 1;
  return flush_out(out);
}

int tdm__status_reset(const tdm_config_t *c, FILE *out) {
  size_t forgotten, untracked;

  if (tdm_reset_paths(&c->options, (const char *const *)c->paths, c->n_paths,
                      &forgotten, &untracked) != 0)
    return 1;
  fprintf(out, "reset: forgot %zu file%s\n", forgotten,
          forgotten == 1 ? "" : "s");
  return flush_out(out) != 0 || untracked > 0;
}
