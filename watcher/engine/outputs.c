/* outputs.c: our own processors' output files, never read as input (see
   outputs.h). */
#include "engine/outputs.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

#define MAX_PER_PROC 16 /* outputs one processor may report */

void tdm__outputs_free(tdm_outputs_t *o) {
  for (size_t i = 0; i < o->n; i++)
    free(o->v[i].path);
  free(o->v);
  o->v = NULL;
  o->n = 0;
}

/* Was `path` said already in the list `old`? */
static int said_before(const tdm_outputs_t *old, const char *path) {
  for (size_t i = 0; i < old->n; i++)
    if (old->v[i].said && strcmp(old->v[i].path, path) == 0)
      return 1;
  return 0;
}

/* Look at output `o` on disk again. */
static void refresh(tdm_output_t *o) {
  struct stat st;
  o->known = stat(o->path, &st) == 0;
  if (o->known) {
    o->dev = (uint64_t)st.st_dev;
    o->ino = (uint64_t)st.st_ino;
  }
}

int tdm__outputs_collect(tdm_t *t) {
  tdm_outputs_t old = t->outputs, now = {NULL, 0};
  size_t cap = 0;

  /* One round per processor, and one more for the dead-letter file. */
  for (size_t i = 0; i <= t->n_procs; i++) {
    tdm_proc_t *p = i < t->n_procs ? &t->procs[i] : NULL;
    const char *paths[MAX_PER_PROC];
    size_t n;

    if (p == NULL) {
      if (t->dl.fd < 0)
        continue;
      paths[0] = t->dl.path;
      n = 1;
    } else if (p->desc == NULL || !p->open ||
               !TDM_PROCESSOR_HAS(p->desc, outputs)) {
      continue;
    } else {
      n = p->desc->outputs(p->state, paths, MAX_PER_PROC);
    }
    if (n > MAX_PER_PROC)
      n = MAX_PER_PROC;
    for (size_t k = 0; k < n; k++) {
      tdm_output_t *o;
      if (paths[k] == NULL || paths[k][0] == '\0')
        continue;
      if (now.n == cap) {
        size_t c = cap ? cap * 2 : 4;
        tdm_output_t *v = realloc(now.v, c * sizeof(*v));
        if (v == NULL)
          goto nomem;
        now.v = v;
        cap = c;
      }
      o = &now.v[now.n];
      memset(o, 0, sizeof(*o));
      if ((o->path = strdup(paths[k])) == NULL)
        goto nomem;
      now.n++;
      o->proc = p != NULL ? p->key : "--dead-letter";
      o->said = said_before(&old, o->path);
      refresh(o);
    }
  }
  tdm__outputs_free(&old);
  t->outputs = now;
  return 0;

nomem:
  tdm__outputs_free(&now);
  tdm__outputs_free(&old);
  t->outputs = now;
  return -ENOMEM;
}

/* The output whose identity is that of `st`, or NULL. */
static tdm_output_t *match(tdm_t *t, const struct stat *st) {
  for (size_t i = 0; i < t->outputs.n; i++) {
    tdm_output_t *o = &t->outputs.v[i];
    if (o->known && o->dev == (uint64_t)st->st_dev &&
        o->ino == (uint64_t)st->st_ino)
      return o;
  }
  return NULL;
}

int tdm__outputs_skip(tdm_t *t, const char *path, const struct stat *st,
                      int fresh) {
  tdm_output_t *o = match(t, st);
  char q[PATH_MAX];

  if (o == NULL && fresh && t->outputs.n > 0) {
    for (size_t i = 0; i < t->outputs.n; i++)
      refresh(&t->outputs.v[i]);
    o = match(t, st);
  }
  if (o == NULL)
    return 0;
  if (!o->said) {
    o->said = 1;
    if (o->proc[0] == '-') /* --dead-letter */
      tdm__warn(&t->log, "%s: the %s file: not read as input",
                tdm__quote(path, q, sizeof(q)), o->proc + 2);
    else
      tdm__warn(&t->log, "%s: output of processor '%s': not read as input",
                tdm__quote(path, q, sizeof(q)), o->proc);
  }
  return 1;
}
