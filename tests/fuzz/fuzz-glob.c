/*
 * fuzz-glob.c: libFuzzer target for --include / --exclude (watcher/core/filter.c).
 *
 * Input: two bytes giving the number of include (0-3) and exclude (0-3)
 * globs, then newline-separated fields: the include globs, the exclude globs,
 * then any number of paths under a source root. Each path is tried as a file
 * (rel = the path, name = its last component) and its name as a directory.
 * Fields are capped (64 bytes a glob, 256 a path, at most 6 '*' a glob) so
 * that glibc's backtracking fnmatch stays fast enough for a bounded CI run;
 * the parsing under test is ours, not fnmatch's.
 *
 * Checked (abort() otherwise): verdicts are 0 or 1; a filter with no include
 * never takes a hidden file; a file matching an exclude glob is never taken;
 * a glob equal to the literal name (no special characters) includes it;
 * tdm__filter_dir takes every non-hidden directory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/filter.h"

#define CHECK(x)                                                              \
  do {                                                                        \
    if (!(x))                                                                 \
      abort();                                                                \
  } while (0)

#define MAX_GLOBS 3
#define MAX_FIELDS 32

static int literal(const char *g) { return strpbrk(g, "*?[\\") == NULL; }

static size_t count(const char *s, char c) {
  size_t n = 0;
  for (; *s != '\0'; s++)
    n += *s == c;
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text, *fields[MAX_FIELDS], *p;
  size_t n_fields = 0, n_inc, n_exc;
  tdm_filter_t f;

  if (size < 2)
    return 0;
  n_inc = data[0] % (MAX_GLOBS + 1);
  n_exc = data[1] % (MAX_GLOBS + 1);
  text = malloc(size - 1);
  CHECK(text != NULL);
  memcpy(text, data + 2, size - 2);
  text[size - 2] = '\0';
  for (p = text; n_fields < MAX_FIELDS;) {
    char *nl = strchr(p, '\n');
    fields[n_fields++] = p;
    if (nl == NULL)
      break;
    *nl = '\0';
    p = nl + 1;
  }
  if (n_fields < n_inc + n_exc)
    goto out;
  for (size_t i = 0; i < n_fields; i++) {
    size_t lim = i < n_inc + n_exc ? 64 : 256;
    if (strlen(fields[i]) > lim || (i < n_inc + n_exc && count(fields[i], '*') > 6))
      goto out;
  }

  CHECK(tdm__filter_init(&f, (const char *const *)fields, n_inc,
                         (const char *const *)fields + n_inc, n_exc) == 0);
  for (size_t i = n_inc + n_exc; i < n_fields; i++) {
    const char *rel = fields[i];
    const char *slash = strrchr(rel, '/');
    const char *name = slash != NULL ? slash + 1 : rel;
    int take = tdm__filter_file(&f, rel, name);
    int dir = tdm__filter_dir(&f, name);

    CHECK(take == 0 || take == 1);
    CHECK(dir == 0 || dir == 1);
    if (name[0] != '.')
      CHECK(dir == 1);
    if (n_inc == 0 && name[0] == '.')
      CHECK(take == 0);
    for (size_t e = 0; e < n_exc; e++) {
      const char *g = fields[n_inc + e];
      if (literal(g) && strchr(g, '/') == NULL && strcmp(g, name) == 0)
        CHECK(take == 0);
    }
    if (n_exc == 0)
      for (size_t k = 0; k < n_inc; k++) {
        const char *g = fields[k];
        if (literal(g) && strchr(g, '/') == NULL && strcmp(g, name) == 0)
          CHECK(take == 1);
      }
  }
  tdm__filter_free(&f);
out:
  free(text);
  return 0;
}
