/*
 * spec.c: parsing of processor specs, `NAME` or `NAME:key=value,key=value`
 * (see registry.h).
 *
 * The one subtle rule: a comma ends a value only when what follows it looks
 * like the start of another pair, `key=` with key of [A-Za-z0-9_-]+. Any other
 * comma belongs to the value, so commands and globs need no quoting:
 *
 *     exec:cmd=sort -t, -k2,jobs=2    ->  cmd="sort -t, -k2"  jobs="2"
 *     file:path=a,b.log               ->  path="a,b.log"
 *
 * Nothing is trimmed: a space is part of whatever it is in, and a name or key
 * holding one is refused rather than guessed at.
 */
#include "processors/registry.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

static int is_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || is_name_char(c);
}

/* Length of the `key` in `key=` at s, or 0 when s does not start that way. */
static size_t key_prefix(const char *s) {
  size_t n = 0;
  while (is_key_char(s[n]))
    n++;
  return n > 0 && s[n] == '=' ? n : 0;
}

/* Does the comma at s[0] start a new pair? */
static int is_split(const char *s) {
  return s[0] == ',' && key_prefix(s + 1) > 0;
}

/* Write "processor spec "SPEC": <what>" into err. */
static void spec_error(char *err, size_t errcap, const char *spec,
                       const char *what) {
  char q[512];
  if (err == NULL || errcap == 0)
    return;
  snprintf(err, errcap, "processor spec \"%s\": %s",
           tdm__quote(spec, q, sizeof(q)), what);
}

/* The name, spec[0, name_len): 0, or TDM_EUSAGE with a message in err. */
static int check_name(const char *spec, size_t name_len, char *err,
                      size_t errcap) {
  char what[160];
  if (name_len == 0) {
    spec_error(err, errcap, spec, "empty processor name");
    return TDM_EUSAGE;
  }
  for (size_t i = 0; i < name_len; i++) {
    if (!is_name_char(spec[i])) {
      snprintf(what, sizeof(what),
               "bad character in processor name at position %zu "
               "(a name is [a-z0-9_-]+)",
               i + 1);
      spec_error(err, errcap, spec, what);
      return TDM_EUSAGE;
    }
  }
  return 0;
}

/* The key of the pair at p, up to the '=' at eq: 0, or TDM_EUSAGE with a
   message in err. */
static int check_key(const char *spec, const char *p, const char *eq, char *err,
                     size_t errcap) {
  size_t pos = (size_t)(p - spec) + 1;
  char what[160];
  if (*eq != '=') {
    snprintf(what, sizeof(what),
             "missing '=' in parameter at position %zu "
             "(expected key=value)",
             pos);
    spec_error(err, errcap, spec, what);
    return TDM_EUSAGE;
  }
  if (eq == p) {
    snprintf(what, sizeof(what), "empty key at position %zu", pos);
    spec_error(err, errcap, spec, what);
    return TDM_EUSAGE;
  }
  for (const char *k = p; k < eq; k++) {
    if (!is_key_char(*k)) {
      snprintf(what, sizeof(what),
               "bad character in key at position %zu "
               "(a key is [A-Za-z0-9_-]+)",
               (size_t)(k - spec) + 1);
      spec_error(err, errcap, spec, what);
      return TDM_EUSAGE;
    }
  }
  return 0;
}

/* Check every pair after the colon and count them into *n, before anything
   is allocated: 0, or TDM_EUSAGE with a message in err. */
static int count_params(const char *spec, const char *colon, size_t *n,
                        char *err, size_t errcap) {
  const char *p = colon + 1;
  *n = 0;
  for (;;) {
    const char *eq = p;
    int rc;
    while (*eq != '\0' && *eq != '=' && *eq != ',')
      eq++;
    rc = check_key(spec, p, eq, err, errcap);
    if (rc != 0)
      return rc;
    (*n)++;
    /* The value runs to the next comma that starts a pair, or the end. */
    p = eq + 1;
    while (*p != '\0' && !is_split(p))
      p++;
    if (*p == '\0')
      return 0;
    p++; /* the comma */
  }
}

/* Split the copied text's n pairs, after the colon at q, in place into
   params (the pairs were checked by count_params). */
static void split_params(char *q, tdm_kv_t *params, size_t n) {
  *q++ = '\0'; /* the colon */
  for (size_t i = 0; i < n; i++) {
    char *eq = strchr(q, '=');
    *eq = '\0';
    params[i].key = q;
    params[i].value = eq + 1;
    q = eq + 1;
    while (*q != '\0' && !is_split(q))
      q++;
    if (*q != '\0')
      *q++ = '\0';
  }
}

/*
 * Parse `spec` into *out. On success *out owns one allocation (params array
 * followed by a copy of the text, split in place) until tdm_proc_spec_free().
 * On error returns TDM_EUSAGE with a message naming the spec in `err`, or
 * -ENOMEM; *out is untouched either way.
 */
int tdm_proc_spec_parse(const char *spec, tdm_proc_spec_t *out, char *err,
                        size_t errcap) {
  const char *colon;
  size_t name_len, n_params = 0, len, head;
  char *mem, *text;
  tdm_kv_t *params;
  int rc;

  if (err != NULL && errcap > 0)
    err[0] = '\0';
  if (spec == NULL)
    spec = "";
  colon = strchr(spec, ':');
  name_len = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
  rc = check_name(spec, name_len, err, errcap);
  if (rc == 0 && colon != NULL)
    rc = count_params(spec, colon, &n_params, err, errcap);
  if (rc != 0)
    return rc;

  /* One allocation: the params array, then the text split in place. */
  len = strlen(spec);
  head = n_params * sizeof(tdm_kv_t);
  head = (head + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
  mem = malloc(head + len + 1);
  if (mem == NULL) {
    spec_error(err, errcap, spec, "out of memory");
    return -ENOMEM;
  }
  params = n_params > 0 ? (tdm_kv_t *)(void *)mem : NULL;
  text = mem + head;
  memcpy(text, spec, len + 1);
  if (colon != NULL)
    split_params(text + name_len, params, n_params);

  out->name = text;
  out->params = params;
  out->n_params = n_params;
  out->buf_ = mem;
  return 0;
}

/* Free what tdm_proc_spec_parse() allocated. Accepts NULL and a spec that was
   zeroed or already freed. */
void tdm_proc_spec_free(tdm_proc_spec_t *s) {
  if (s == NULL)
    return;
  free(s->buf_);
  s->name = NULL;
  s->params = NULL;
  s->n_params = 0;
  s->buf_ = NULL;
}
