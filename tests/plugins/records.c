/* records.c: a processor that writes one line per record, the record's own
   newlines shown as '|' — what a sink that sends one message per record
   (nats records=line) sees. It reads tdm_chunk_t.record_ends (multiline);
   without them each line is a record. Exactly once like `file`: its restore
   blob is the output's length, and open() cuts the output back to it.
   Spec: records:path=OUT[,hold=FILE]. hold: while FILE exists, commit()
   answers RETRY, so no checkpoint is made (a test holds the bookmarks back
   to replay what the other processors of the chain published). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tidemark/processor.h"

typedef struct st {
  int fd;
  char *hold;
  char *buf;
  size_t cap;
} st_t;

static int rec_open(void **state, const tdm_open_args_t *a) {
  const char *path = NULL, *hold = NULL;
  uint64_t keep = 0;
  st_t *s;

  for (size_t i = 0; i < a->n_params; i++)
    if (strcmp(a->params[i].key, "path") == 0)
      path = a->params[i].value;
    else if (strcmp(a->params[i].key, "hold") == 0)
      hold = a->params[i].value;
  if (path == NULL)
    return TDM_PROC_FAIL;
  if ((s = calloc(1, sizeof(*s))) == NULL)
    return TDM_PROC_FAIL;
  if (hold != NULL && (s->hold = strdup(hold)) == NULL) {
    free(s);
    return TDM_PROC_FAIL;
  }
  if ((s->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0) {
    free(s->hold);
    free(s);
    return TDM_PROC_FAIL;
  }
  if (a->restore_len == sizeof(keep))
    memcpy(&keep, a->restore, sizeof(keep));
  if (ftruncate(s->fd, (off_t)keep) != 0 || lseek(s->fd, 0, SEEK_END) < 0) {
    close(s->fd);
    free(s->hold);
    free(s);
    return TDM_PROC_FAIL;
  }
  *state = s;
  return TDM_PROC_OK;
}

static int rec_process(void *state, const tdm_chunk_t *c, char *msg) {
  st_t *s = state;
  const char *d = c->data;
  size_t k = 0, w = 0;

  (void)msg;
  if (c->len > s->cap) {
    char *b = realloc(s->buf, c->len);
    if (b == NULL)
      return TDM_PROC_RETRY;
    s->buf = b;
    s->cap = c->len;
  }
  if (TDM_CHUNK_HAS(c, n_records) && c->record_ends != NULL) {
    for (size_t i = 0; i < c->len; i++) {
      int end = k < c->n_records && i + 1 == c->record_ends[k];
      s->buf[i] = d[i] == '\n' && !end ? '|' : d[i];
      if (end) {
        if (d[i] != '\n')
          return TDM_PROC_FAIL; /* a record that does not end a line */
        k++;
      }
    }
  } else {
    memcpy(s->buf, d, c->len);
  }
  while (w < c->len) {
    ssize_t n = write(s->fd, s->buf + w, c->len - w);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return TDM_PROC_FAIL;
    w += (size_t)n;
  }
  return TDM_PROC_OK;
}

static int rec_commit(void *state, void *restore, size_t *len, char *msg) {
  st_t *s = state;
  off_t end = lseek(s->fd, 0, SEEK_CUR);
  uint64_t v = (uint64_t)end;
  if (s->hold != NULL && access(s->hold, F_OK) == 0) {
    strcpy(msg, "held (the hold file exists)");
    return TDM_PROC_RETRY;
  }
  if (end < 0 || fsync(s->fd) != 0)
    return TDM_PROC_FAIL;
  memcpy(restore, &v, sizeof(v));
  *len = sizeof(v);
  return TDM_PROC_OK;
}

static void rec_close(void *state) {
  st_t *s = state;
  if (s == NULL)
    return;
  close(s->fd);
  free(s->hold);
  free(s->buf);
  free(s);
}

static const tdm_processor_t desc = {
    .abi_version = TDM_PROCESSOR_ABI_VERSION,
    .size = sizeof(tdm_processor_t),
    .name = "records",
    .summary = "one line per record (tests: record_ends)",
    .open = rec_open,
    .process = rec_process,
    .commit = rec_commit,
    .close = rec_close,
};

const tdm_processor_t *tdm_processor_entry(void) { return &desc; }
