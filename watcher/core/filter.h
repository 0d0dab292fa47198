/*
 * filter.h: which files and directories a scan takes (include/exclude globs).
 */
#ifndef TDM_FILTER_H
#define TDM_FILTER_H

#include <stddef.h>

typedef struct tdm_filter {
  char **include;
  size_t n_include;
  char **exclude;
  size_t n_exclude;
  int hidden_dirs;        /* some include glob names a hidden component */
  const char *skip_dir;   /* absolute directory never entered (the state
                             directory, when it lies inside a source) */
} tdm_filter_t;

/* Copy the globs. -ENOMEM. */
int tdm__filter_init(tdm_filter_t *f, const char *const *inc, size_t n_inc,
                     const char *const *exc, size_t n_exc);
void tdm__filter_free(tdm_filter_t *f);
/* Does the file `rel` (path under its root; `name` its last component)
   pass? Globs with a '/' match `rel`, others `name`; a leading '.' is only
   matched by a glob that spells it. */
int tdm__filter_file(const tdm_filter_t *f, const char *rel, const char *name);
/* Should the scan descend into directory `name`? */
int tdm__filter_dir(const tdm_filter_t *f, const char *name);

/*
 * Is `glob` a well-formed pattern? fnmatch() takes anything and quietly
 * matches a malformed one literally or never, so it is checked first: a '['
 * must close its bracket expression (a ']' right after "[" or "[!" is a
 * member; "[:class:]" inside is one member), and a backslash must escape a
 * character. Returns NULL, or a static reason ("'[' without its ']'").
 */
const char *tdm__filter_check(const char *glob);

#endif /* TDM_FILTER_H */
