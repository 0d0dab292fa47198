/*
 * filter.c: which files a source takes (--include / --exclude).
 *
 * A glob without '/' matches the file's name, one with '/' its path under the
 * source directory (fnmatch with FNM_PATHNAME). FNM_PERIOD everywhere: a
 * leading '.' (a hidden file) is matched only by a glob that spells it, so
 * hidden files stay out unless an include names them.
 */
#include "core/filter.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

static void free_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static int copy_list(char ***out, const char *const *in, size_t n) {
  char **v = calloc(n ? n : 1, sizeof(*v));
  if (v == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if ((v[i] = strdup(in[i])) == NULL) {
      free_list(v, i);
      return -ENOMEM;
    }
  }
  *out = v;
  return 0;
}

int tdm__filter_init(tdm_filter_t *f, const char *const *inc, size_t n_inc,
                     const char *const *exc, size_t n_exc) {
  memset(f, 0, sizeof(*f));
  if (copy_list(&f->include, inc, n_inc) != 0)
    return -ENOMEM;
  if (copy_list(&f->exclude, exc, n_exc) != 0) {
    free_list(f->include, n_inc);
    return -ENOMEM;
  }
  f->n_include = n_inc;
  f->n_exclude = n_exc;
  for (size_t i = 0; i < n_inc; i++)
    if (inc[i][0] == '.' || strstr(inc[i], "/.") != NULL)
      f->hidden_dirs = 1;
  return 0;
}

void tdm__filter_free(tdm_filter_t *f) {
  free_list(f->include, f->n_include);
  free_list(f->exclude, f->n_exclude);
  memset(f, 0, sizeof(*f));
}

static int match_any(char *const *globs, size_t n, const char *rel,
                     const char *name) {
  for (size_t i = 0; i < n; i++) {
    int path_glob = strchr(globs[i], '/') != NULL;
    if (fnmatch(globs[i], path_glob ? rel : name,
                path_glob ? FNM_PATHNAME | FNM_PERIOD : FNM_PERIOD) == 0)
      return 1;
  }
  return 0;
}

int tdm__filter_file(const tdm_filter_t *f, const char *rel, const char *name) {
  if (f->n_include > 0) {
    if (!match_any(f->include, f->n_include, rel, name))
      return 0;
  } else if (name[0] == '.') {
    return 0;
  }
  return !match_any(f->exclude, f->n_exclude, rel, name);
}

int tdm__filter_dir(const tdm_filter_t *f, const char *name) {
  return name[0] != '.' || f->hidden_dirs;
}

const char *tdm__filter_check(const char *g) {
  for (const char *p = g; *p != '\0'; p++) {
    if (*p == '\\') {
      if (p[1] == '\0')
        return "a '\\' at the end escapes nothing";
      p++;
      continue;
    }
    if (*p != '[')
      continue;
    const char *b = p + 1;
    if (*b == '!' || *b == '^')
      b++;
    if (*b == ']')
      b++; /* a leading ']' is a member */
    for (;; b++) {
      if (*b == '\0')
        return "'[' without its ']'";
      if (b[0] == '[' && (b[1] == ':' || b[1] == '.' || b[1] == '=')) {
        const char *end = b + 2;
        while (*end != '\0' && !(end[0] == b[1] && end[1] == ']'))
          end++;
        if (*end == '\0')
          return "'[' without its ']'";
        b = end + 1;
        continue;
      }
      if (*b == ']')
        break;
    }
    p = b;
  }
  return NULL;
}
