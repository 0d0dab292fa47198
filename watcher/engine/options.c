/*
 * options.c: the record options (--multiline-start, --on-done,
 * --on-failed), checked and taken at tdm_open.
 */
#include "engine/options.h"
#include "engine/engine.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "move:DIR" -> DIR resolved, an existing writable directory. */
static int move_dir(tdm_t *t, const char *opt, const char *value, char **out) {
  char q[PATH_MAX];
  struct stat st;
  const char *dir = value + 5;

  if (dir[0] == '\0') {
    tdm__error(&t->log, "%s: move: needs a directory (move:DIR)", opt);
    return TDM_EUSAGE;
  }
  if (stat(dir, &st) != 0) {
    tdm__error(&t->log, "%s: %s: %s", opt, tdm__quote(dir, q, sizeof(q)),
               strerror(errno));
    return TDM_EUSAGE;
  }
  if (!S_ISDIR(st.st_mode)) {
    tdm__error(&t->log, "%s: %s: not a directory", opt,
               tdm__quote(dir, q, sizeof(q)));
    return TDM_EUSAGE;
  }
  if (access(dir, W_OK | X_OK) != 0) {
    tdm__error(&t->log, "%s: %s: %s", opt, tdm__quote(dir, q, sizeof(q)),
               strerror(errno));
    return TDM_EUSAGE;
  }
  if ((*out = realpath(dir, NULL)) == NULL)
    return -ENOMEM;
  return 0;
}

int tdm__options_open(tdm_t *t, const tdm_options_t *o) {
  int rc;

  if (o->multiline_start != NULL) {
    char msg[256];
    if ((rc = regcomp(&t->ml_re, o->multiline_start, REG_EXTENDED | REG_NOSUB)) != 0) {
      regerror(rc, &t->ml_re, msg, sizeof(msg));
      tdm__error(&t->log, "--multiline-start: bad regular expression '%s': %s",
                 o->multiline_start, msg);
      return TDM_EUSAGE;
    }
    t->ml_on = 1;
    t->ends.cap = 256;
    if ((t->ends.v = malloc(t->ends.cap * sizeof(*t->ends.v))) == NULL)
      return -ENOMEM;
    if (o->records == TDM_RECORDS_BYTES) {
      tdm__error(&t->log, "--multiline-start: needs --records lines");
      return TDM_EUSAGE;
    }
    if (o->mode == TDM_MODE_WHOLE) {
      tdm__error(&t->log, "--multiline-start: only in tail mode (whole mode "
                 "hands each file over whole, in chunks of whole lines)");
      return TDM_EUSAGE;
    }
    if ((t->opts.multiline_start = strdup(o->multiline_start)) == NULL)
      return -ENOMEM;
  }
  if (o->on_done != NULL) {
    if (o->mode != TDM_MODE_WHOLE) {
      tdm__error(&t->log, "--on-done: only in whole mode (--mode whole)");
      return TDM_EUSAGE;
    }
    if (strcmp(o->on_done, "delete") == 0)
      t->after_delete = 1;
    else if (strncmp(o->on_done, "move:", 5) == 0) {
      if ((rc = move_dir(t, "--on-done", o->on_done, &t->done_dir)) != 0)
        return rc;
    } else {
      char q[PATH_MAX];
      tdm__error(&t->log, "--on-done: '%s' is neither delete nor move:DIR",
                 tdm__quote(o->on_done, q, sizeof(q)));
      return TDM_EUSAGE;
    }
  }
  if (o->on_failed != NULL) {
    if (o->mode != TDM_MODE_WHOLE) {
      tdm__error(&t->log, "--on-failed: only in whole mode (--mode whole)");
      return TDM_EUSAGE;
    }
    if (strncmp(o->on_failed, "move:", 5) != 0) {
      char q[PATH_MAX];
      tdm__error(&t->log, "--on-failed: '%s' is not move:DIR",
                 tdm__quote(o->on_failed, q, sizeof(q)));
      return TDM_EUSAGE;
    }
    if ((rc = move_dir(t, "--on-failed", o->on_failed, &t->failed_dir)) != 0)
      return rc;
  }
  return 0;
}

int tdm__options_check_source(tdm_t *t, const char *root) {
  const char *dirs[2] = {t->done_dir, t->failed_dir};
  const char *opts[2] = {"--on-done", "--on-failed"};
  size_t n = strlen(root);

  for (int i = 0; i < 2; i++) {
    const char *d = dirs[i];
    if (d != NULL && strncmp(d, root, n) == 0 &&
        (d[n] == '/' || d[n] == '\0' || (n == 1 && root[0] == '/'))) {
      char q[PATH_MAX];
      tdm__error(&t->log, "%s: %s lies inside the source %s: files moved "
                 "there would be found again", opts[i],
                 tdm__quote(d, q, sizeof(q)), root);
      return TDM_EUSAGE;
    }
  }
  return 0;
}

void tdm__options_free(tdm_t *t) {
  if (t->ml_on)
    regfree(&t->ml_re);
  t->ml_on = 0;
  free((char *)t->opts.multiline_start);
  t->opts.multiline_start = NULL;
  free(t->ends.v);
  free(t->ends.line);
  memset(&t->ends, 0, sizeof(t->ends));
  free(t->done_dir);
  free(t->failed_dir);
  t->done_dir = t->failed_dir = NULL;
}
