/* refuse.c: a sink that refuses the records holding a pattern, for the
   dead-letter tests (tests/integration/test-dead-letter.sh).

   Spec: refuse:path=OUT,pattern=STR[,mode=fail|reject][,log=FILE][,slow_us=N]

   It writes each record to OUT as it goes, record by record, like a sink
   inserting rows, so a refusal in the middle of a chunk leaves the records
   before it written: only the host's rollback (open() with the last restore
   blob cuts OUT back to it) keeps them from being there twice. A record
   holding STR (a plain substring; "" matches every record) is answered
   TDM_PROC_FAIL (mode=fail, the default) or TDM_PROC_REJECT (mode=reject).
   Each refusal appends a line "OFFSET LEN" to FILE (log=; never rolled back:
   it counts the offers). slow_us=N sleeps N microseconds per record.
   Records are lines, or tdm_chunk_t.record_ends when given. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tidemark/processor.h"

typedef struct st {
  int fd, log;
  uint64_t written;
  int reject;
  long slow_us;
  char pattern[256];
  char path[1024];
} st_t;

static int write_all(int fd, const char *p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

static int ref_open(void **state, const tdm_open_args_t *a) {
  const char *path = NULL, *pattern = NULL, *log = NULL;
  uint64_t keep = 0;
  st_t *s;

  if ((s = calloc(1, sizeof(*s))) == NULL)
    return TDM_PROC_FAIL;
  s->log = -1;
  for (size_t i = 0; i < a->n_params; i++) {
    const char *k = a->params[i].key, *v = a->params[i].value;
    if (strcmp(k, "path") == 0)
      path = v;
    else if (strcmp(k, "pattern") == 0)
      pattern = v;
    else if (strcmp(k, "log") == 0)
      log = v;
    else if (strcmp(k, "mode") == 0 && strcmp(v, "reject") == 0)
      s->reject = 1;
    else if (strcmp(k, "mode") == 0 && strcmp(v, "fail") == 0)
      s->reject = 0;
    else if (strcmp(k, "slow_us") == 0)
      s->slow_us = atol(v);
    else {
      snprintf(a->msg, TDM_MSG_MAX, "unknown parameter '%s'", k);
      free(s);
      return TDM_PROC_FAIL;
    }
  }
  if (path == NULL || pattern == NULL) {
    snprintf(a->msg, TDM_MSG_MAX, "path= and pattern= are required");
    free(s);
    return TDM_PROC_FAIL;
  }
  snprintf(s->pattern, sizeof(s->pattern), "%s", pattern);
  snprintf(s->path, sizeof(s->path), "%s", path);
  if ((s->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0 ||
      (log != NULL &&
       (s->log = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) <
           0)) {
    snprintf(a->msg, TDM_MSG_MAX, "%.200s: %s", path, strerror(errno));
    free(s);
    return TDM_PROC_FAIL;
  }
  if (a->restore_len == sizeof(keep))
    memcpy(&keep, a->restore, sizeof(keep));
  else
    keep = (uint64_t)lseek(s->fd, 0, SEEK_END);
  if (ftruncate(s->fd, (off_t)keep) != 0) {
    snprintf(a->msg, TDM_MSG_MAX, "%.200s: %s", path, strerror(errno));
    close(s->fd);
    free(s);
    return TDM_PROC_FAIL;
  }
  s->written = keep;
  *state = s;
  return TDM_PROC_OK;
}

static int ref_process(void *state, const tdm_chunk_t *c, char *msg) {
  st_t *s = state;
  const char *d = c->data;
  size_t at = 0, k = 0;
  int ends = TDM_CHUNK_HAS(c, n_records) && c->record_ends != NULL;

  while (at < c->len) {
    size_t end;
    if (ends) {
      end = k < c->n_records ? c->record_ends[k++] : c->len;
    } else {
      const char *nl = memchr(d + at, '\n', c->len - at);
      end = nl != NULL ? (size_t)(nl - d) + 1 : c->len;
    }
    if (s->slow_us > 0) {
      struct timespec ts = {0, s->slow_us * 1000L};
      nanosleep(&ts, NULL);
    }
    if (memmem(d + at, end - at, s->pattern, strlen(s->pattern)) != NULL ||
        s->pattern[0] == '\0') {
      if (s->log >= 0) {
        char line[64];
        int n = snprintf(line, sizeof(line), "%llu %zu\n",
                         (unsigned long long)(c->offset + at), end - at);
        if (write(s->log, line, (size_t)n) != n)
          return TDM_PROC_FAIL;
      }
      snprintf(msg, TDM_MSG_MAX, "refused: holds \"%.200s\"", s->pattern);
      return s->reject ? TDM_PROC_REJECT : TDM_PROC_FAIL;
    }
    if (write_all(s->fd, d + at, end - at, s->written) != 0) {
      snprintf(msg, TDM_MSG_MAX, "%.200s: %s", s->path, strerror(errno));
      return TDM_PROC_FAIL;
    }
    s->written += end - at;
    at = end;
  }
  return TDM_PROC_OK;
}

static int ref_commit(void *state, void *restore, size_t *len, char *msg) {
  st_t *s = state;
  if (fdatasync(s->fd) != 0) {
    snprintf(msg, TDM_MSG_MAX, "%.200s: %s", s->path, strerror(errno));
    return TDM_PROC_FAIL;
  }
  memcpy(restore, &s->written, sizeof(s->written));
  *len = sizeof(s->written);
  return TDM_PROC_OK;
}

static void ref_close(void *state) {
  st_t *s = state;
  close(s->fd);
  if (s->log >= 0)
    close(s->log);
  free(s);
}

static const tdm_processor_t desc = {
    TDM_PROCESSOR_HEADER,
    .name = "refuse",
    .summary = "test: refuses records holding a pattern (FAIL or REJECT)",
    .open = ref_open,
    .process = ref_process,
    .commit = ref_commit,
    .close = ref_close,
};

const tdm_processor_t *tdm_processor_entry(void) { return &desc; }
