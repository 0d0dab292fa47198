/*
 * outputs.h: the files tidemark's own processors write (the `file`
 * processor's OUT, a plugin's outputs()). A source that holds one must never
 * read it back as input: it would deliver its own output again, without end.
 * Like the state directory they are skipped, but by identity (device and
 * inode), so another name for the same file (a hard link, a rename) is
 * skipped too, and a file that merely has the same name elsewhere is not.
 *
 * A file tidemark itself replaces by temp + rename (--metrics-file) gets a
 * new inode at every write, so it is skipped by its resolved path instead,
 * and so is its temporary ".NAME.XXXXXX" beside it.
 */
#ifndef TDM_OUTPUTS_H
#define TDM_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "tidemark.h"

typedef struct tdm_output {
  char *path;             /* as the processor reported it (owned copy) */
  const char *proc;       /* the processor's spec (owned by its tdm_proc_t),
                             or NULL for tidemark's own --metrics-file */
  int by_name;            /* matched by `path` (resolved), not by identity */
  uint64_t dev, ino;      /* its identity when `known` */
  int known;              /* it existed when last looked at */
  int said;               /* the skip was logged (once per output) */
} tdm_output_t;

typedef struct tdm_outputs {
  tdm_output_t *v;
  size_t n;
} tdm_outputs_t;

/*
 * Ask every open processor that has outputs() for its files, and add
 * --metrics-file (by name, its directory resolved), replacing what was known (an output already said keeps quiet). 0 or -ENOMEM (the list is
 * then left empty).
 */
int tdm__outputs_collect(tdm_t *t);

/* Free the list. */
void tdm__outputs_free(tdm_outputs_t *o);

/*
 * Is the file of stat `st`, met at `path`, one of the outputs? Compared with
 * the identities last seen; when none matches and `fresh` (a file not
 * tracked yet), the output paths are looked at again first, so an output
 * created after the scan started is recognised. The first match of each
 * output is logged once, naming the file and the processor.
 */
int tdm__outputs_skip(tdm_t *t, const char *path, const struct stat *st,
                      int fresh);

#endif /* TDM_OUTPUTS_H */
