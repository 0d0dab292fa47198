/*
 * fuzz-spec.c: libFuzzer target for processor specs (processors/spec.c).
 *
 * The input, up to its first NUL, is a spec. On success every name and key
 * must be made of the characters the grammar allows, and printing the pairs
 * back as NAME:k=v,k=v must parse to the same pairs; on error the message
 * must be there. Anything else abort()s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "processors/registry.h"

static int name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

static int key_char(char c) { return (c >= 'A' && c <= 'Z') || name_char(c); }

static void check_chars(const char *s, int (*ok)(char)) {
  if (s == NULL || s[0] == '\0')
    abort();
  for (; *s != '\0'; s++)
    if (!ok(*s))
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *spec = malloc(size + 1);
  char err[256];
  tdm_proc_spec_t s, again;
  int rc;

  if (spec == NULL)
    return 0;
  memcpy(spec, data, size);
  spec[size] = '\0';

  rc = tdm_proc_spec_parse(spec, &s, err, sizeof(err));
  if (rc != 0) {
    if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
      abort();
    free(spec);
    return 0;
  }
  check_chars(s.name, name_char);
  if ((s.n_params > 0) != (s.params != NULL))
    abort();
  for (size_t i = 0; i < s.n_params; i++) {
    check_chars(s.params[i].key, key_char);
    if (s.params[i].value == NULL)
      abort();
  }

  /* Round trip: the pairs printed back parse to the same pairs. */
  {
    size_t cap = strlen(spec) + 2, len;
    char *text = malloc(cap);
    if (text == NULL)
      abort();
    len = (size_t)snprintf(text, cap, "%s", s.name);
    for (size_t i = 0; i < s.n_params; i++)
      len += (size_t)snprintf(text + len, cap - len, "%c%s=%s",
                              i == 0 ? ':' : ',', s.params[i].key,
                              s.params[i].value);
    if (len >= cap)
      abort();
    if (tdm_proc_spec_parse(text, &again, err, sizeof(err)) != 0)
      abort();
    if (strcmp(again.name, s.name) != 0 || again.n_params != s.n_params)
      abort();
    for (size_t i = 0; i < s.n_params; i++)
      if (strcmp(again.params[i].key, s.params[i].key) != 0 ||
          strcmp(again.params[i].value, s.params[i].value) != 0)
        abort();
    tdm_proc_spec_free(&again);
    free(text);
  }
  tdm_proc_spec_free(&s);
  tdm_proc_spec_free(&s); /* documented: accepts a freed spec */
  free(spec);
  return 0;
}
