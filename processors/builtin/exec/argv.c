/*
 * builtin/exec/argv.c: exec's cmd into words, the way a shell splits them and
 * nothing else (no expansion of any kind; the rules are at the top of exec.c).
 */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

/*
 * Split `cmd` into x->argv / x->words (see the top of the file). Returns 0,
 * or -1 with a message naming cmd in `msg`.
 */
int tdm__exec_split_cmd(exec_t *x, const char *cmd, char *msg) {
  size_t len = strlen(cmd), n = 0;
  const char *p = cmd, *what = NULL;
  char *o, q[160];

  /* The words never take more room than the text (each word's NUL takes the
     place of the separator or NUL after it); at most len/2 + 1 words. */
  x->words = malloc(len + 1);
  x->argv = malloc((len / 2 + 3) * sizeof(*x->argv));
  if (x->words == NULL || x->argv == NULL) {
    snprintf(msg, TDM_MSG_MAX, "exec: out of memory");
    return -1;
  }
  o = x->words;
  for (;;) {
    while (is_space(*p))
      p++;
    if (*p == '\0')
      break;
    x->argv[n++] = o;
    while (*p != '\0' && !is_space(*p)) {
      if (*p == '\'') {
        for (p++; *p != '\0' && *p != '\''; p++)
          *o++ = *p;
        if (*p == '\0') {
          what = "unterminated single quote";
          goto bad;
        }
        p++;
      } else if (*p == '"') {
        for (p++; *p != '\0' && *p != '"'; p++) {
          if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
          *o++ = *p;
        }
        if (*p == '\0') {
          what = "unterminated double quote";
          goto bad;
        }
        p++;
      } else if (*p == '\\') {
        if (p[1] == '\0') {
          what = "ends with a lone backslash";
          goto bad;
        }
        *o++ = p[1];
        p += 2;
      } else {
        *o++ = *p++;
      }
    }
    *o++ = '\0';
  }
  if (n == 0) {
    what = "no program (use exec:cmd=PROGRAM ARGS)";
    goto bad;
  }
  x->argc = n;
  tdm__quote(x->argv[0], x->prog, sizeof(x->prog));
  x->argv[n] = NULL;
  x->argv[n + 1] = NULL;
  return 0;

bad:
  snprintf(msg, TDM_MSG_MAX, "exec: cmd \"%s\": %s",
           tdm__quote(cmd, q, sizeof(q)), what);
  return -1;
}
