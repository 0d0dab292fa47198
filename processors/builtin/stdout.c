/*
 * builtin/stdout.c: the `stdout` processor, the default. Writes every chunk's
 * bytes, unchanged, to file descriptor 1.
 *
 * It writes with write(2), never through stdio, so nothing waits in a user
 * space buffer: when process() returns TDM_PROC_OK the bytes are in the pipe,
 * tty or file. A pipe or tty holds nothing to make durable, so commit() does
 * nothing for them; when stdout is a regular file (`tidemark run > out`)
 * commit() fsyncs it, so the bookmark never gets ahead of the output.
 *
 * A chunk is written whole or the processor fails: bytes already in a pipe
 * cannot be taken back, so RETRY is never used. EAGAIN (a non-blocking stdout)
 * is waited out with poll(2). EPIPE (the reader went away) is a FAIL; the host
 * must ignore SIGPIPE, or it would die instead of reading EPIPE.
 *
 * No parameters, no state, no restore blob.
 */
#include "builtin.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int stdout_open(void **state, const tdm_open_args_t *args) {
  if (args->n_params > 0) {
    snprintf(args->msg, TDM_MSG_MAX,
             "stdout: unknown parameter \"%s\" (stdout takes none)",
             args->params[0].key);
    return TDM_PROC_FAIL;
  }
  *state = NULL;
  return TDM_PROC_OK;
}

/*
 * Write all of `len` bytes to fd 1, looping over partial writes and EINTR,
 * waiting out EAGAIN. Returns 0 or an errno value.
 */
static int write_all(const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDOUT_FILENO, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
          return errno;
        continue;
      }
      return errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int stdout_process(void *state, const tdm_chunk_t *chunk, char *msg) {
  int err;
  (void)state;
  err = write_all(chunk->data, chunk->len);
  if (err != 0) {
    snprintf(msg, TDM_MSG_MAX, "stdout: write: %s%s", strerror(err),
             err == EPIPE ? " (the reader of standard output went away)"
                          : "");
    return TDM_PROC_FAIL;
  }
  return TDM_PROC_OK;
}

static int stdout_commit(void *state, void *restore, size_t *restore_len,
                         char *msg) {
  struct stat st;
  (void)state;
  (void)restore;
  *restore_len = 0;
  if (fstat(STDOUT_FILENO, &st) != 0 || !S_ISREG(st.st_mode))
    return TDM_PROC_OK; /* pipe, tty, /dev/null, closed: nothing to sync */
  if (fsync(STDOUT_FILENO) != 0 && errno != EINVAL) {
    snprintf(msg, TDM_MSG_MAX, "stdout: fsync: %s", strerror(errno));
    return TDM_PROC_FAIL;
  }
  return TDM_PROC_OK;
}

static const tdm_processor_t stdout_processor = {
    TDM_PROCESSOR_HEADER,
    .name = "stdout",
    .summary = "writes the bytes to standard output",
    .open = stdout_open,
    .process = stdout_process,
    .commit = stdout_commit,
    .close = NULL,
};

const tdm_processor_t *tdm__proc_stdout(void) { return &stdout_processor; }
