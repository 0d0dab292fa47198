/*
 * status.c: the commands `tidemark status` and `tidemark reset`, over the
 * library's status.h: exit codes and the output stream.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "status.h"

/* Check `out` after writing to it. 0, or 1 after a message. */
static int flush_out(FILE *out) {
  if (fflush(out) != 0 || ferror(out)) {
    fprintf(stderr, "tidemark: error: writing the output: %s\n",
            strerror(errno));
    return 1;
  }
  return 0;
}

int tdm__status_run(const tdm_config_t *c, FILE *out) {
  int rc = c->summary ? tdm__status_summary(c->state_dir, c->json,
                                            c->options.log_level, out)
                      : tdm__status_print(c->state_dir, c->json,
                                          c->options.log_level, out);
  if (rc != 0)
    return 1;
  return flush_out(out);
}

int tdm__status_reset(const tdm_config_t *c, FILE *out) {
  size_t forgotten;
  int untracked;

  if (tdm__status_reset_paths(c->state_dir, (const char *const *)c->paths,
                              c->n_paths, c->options.log_level, &forgotten,
                              &untracked) != 0)
    return 1;
  fprintf(out, "reset: forgot %zu file%s\n", forgotten,
          forgotten == 1 ? "" : "s");
  return flush_out(out) != 0 || untracked;
}
