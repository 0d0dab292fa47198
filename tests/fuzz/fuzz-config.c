/*
 * fuzz-config.c: libFuzzer target for the command line and the INI file
 * (watcher/config.c, through tdm__config_parse).
 *
 * Input: ARGS [ '\x01' INI ]. ARGS is split on NUL and newline into argv[1..]
 * (argv[0] is "tidemark"). When a '\x01' is present, what follows it is the
 * text of an INI file, held in a memfd, and "-c /proc/self/fd/N" is appended
 * to argv (a "@" token is replaced by that path too, so "-c" can sit anywhere).
 *
 * Inputs whose tokens could name a file that blocks or never ends (a device,
 * a FIFO, /proc) are skipped: a token holding "dev", "proc", "sys", "fd" or
 * "run" is refused. $TIDEMARK_STATE is unset.
 *
 * Checked (abort() otherwise): the result is 0, TDM_EUSAGE or -ENOMEM; an
 * error leaves a one-line, NUL-terminated message and an empty config; a
 * success leaves a known command and, for run/once, at least one DIR and one
 * processor. Everything is freed (LeakSanitizer sees any leak).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/config.h"

#define CHECK(x)                                                              \
  do {                                                                        \
    if (!(x))                                                                 \
      abort();                                                                \
  } while (0)

#define MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  unsetenv("TIDEMARK_STATE");
  return 0;
}

static int risky(const char *t) {
  static const char *const bad[] = {"dev", "proc", "sys", "fd", "run"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (strstr(t, bad[i]) != NULL)
      return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *sep = memchr(data, '\x01', size);
  size_t alen = sep != NULL ? (size_t)(sep - data) : size;
  char *args = malloc(alen + 1);
  char *argv[MAX_ARGS + 4];
  char path[64] = "";
  char err[512];
  int argc = 0, fd = -1, rc;
  tdm_config_t c;

  CHECK(args != NULL);
  memcpy(args, data, alen);
  args[alen] = '\0';

  if (sep != NULL) {
    size_t ilen = size - alen - 1;
    fd = memfd_create("tdm-fuzz.ini", 0);
    CHECK(fd >= 0);
    CHECK(write(fd, sep + 1, ilen) == (ssize_t)ilen);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  }

  argv[argc++] = "tidemark";
  for (size_t i = 0; i < alen; i++)
    if (args[i] == '\n')
      args[i] = '\0';
  for (size_t i = 0; i <= alen; i += strlen(args + i) + 1) {
    char *tok = args + i;
    if (argc >= MAX_ARGS || risky(tok))
      goto out;
    argv[argc++] = strcmp(tok, "@") == 0 && fd >= 0 ? path : tok;
  }
  if (fd >= 0) {
    argv[argc++] = "-c";
    argv[argc++] = path;
  }
  argv[argc] = NULL;

  memset(err, 'x', sizeof(err));
  rc = tdm__config_parse(&c, argc, argv, err, sizeof(err));
  CHECK(rc == 0 || rc == TDM_EUSAGE || rc == -ENOMEM);
  if (rc != 0) {
    CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    CHECK(err[0] != '\0');
    CHECK(strchr(err, '\n') == NULL);
    CHECK(c.dirs == NULL && c.processors == NULL && c.paths == NULL &&
          c.include == NULL && c.exclude == NULL);
  } else {
    CHECK(c.command >= TDM_CMD_RUN && c.command <= TDM_CMD_VERSION);
    (void)tdm__config_command_name(c.command);
    if (c.command == TDM_CMD_RUN || c.command == TDM_CMD_ONCE) {
      CHECK(c.n_dirs >= 1 && c.dirs != NULL);
      CHECK(c.n_processors >= 1 && c.processors != NULL);
      for (size_t i = 0; i < c.n_processors; i++)
        CHECK(c.processors[i] != NULL);
    }
  }
  tdm__config_free(&c);
  tdm__config_free(&c); /* documented: accepts a zeroed config */
out:
  if (fd >= 0)
    close(fd);
  free(args);
  return 0;
}
