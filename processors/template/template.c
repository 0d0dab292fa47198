/*
 * template.c: a tidemark processor plugin to copy when you write your own.
 *
 * It writes every line of every chunk to standard output with a prefix:
 *
 *     tidemark run -p 'template:prefix=[app] ' --plugin-dir DIR /var/log/app
 *
 * Build it on its own; all it needs is tidemark/processor.h and libc
 * (installed with tidemark, or in the source tree's watcher/include/):
 *
 *     cc -shared -fPIC -O2 $(pkg-config --cflags tidemark) \
 *        -o template.so template.c
 *
 * and drop the .so into the directory given with --plugin-dir. `tidemark
 * processors` lists it; a plugin built against another ABI version is refused
 * with a message naming its file.
 *
 * To start your own: copy this file, rename the processor (the `name` field
 * below: [a-z0-9_-]+, unique), and rewrite the four methods. Each method's
 * contract is in tidemark/processor.h; what matters most:
 *
 *   - process() owns nothing the chunk points to once it returns: copy what
 *     you keep.
 *   - process() takes a chunk whole (TDM_PROC_OK) or not at all
 *     (TDM_PROC_RETRY: offer it again later; TDM_PROC_FAIL: give up on it).
 *     Never keep half a chunk and return an error: the host will deliver the
 *     whole chunk again.
 *   - commit() is where your output becomes durable. If your output can be
 *     rolled back (a file you can truncate, a database transaction), return a
 *     restore blob describing it, and roll back to it in open(): that makes
 *     delivery exactly once. This template writes to a pipe or tty, which
 *     cannot be rolled back, so it returns no blob (at least once).
 *   - Messages (the `msg` buffers, TDM_MSG_MAX bytes) must say what failed
 *     and on what: name the key, the file, the output.
 *   - One instance's methods are never called concurrently, but may be called
 *     from different threads. Keep your state in the instance, not in
 *     globals, and two instances (`-p template -p template:prefix=x`) work.
 */
#include <tidemark/processor.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The instance: everything one `-p template:...` needs between calls. */
typedef struct template_state {
  char *prefix;     /* our copy of the prefix= parameter */
  size_t prefix_len;
  char *out;        /* output buffer, reused from chunk to chunk */
  size_t out_cap;
} template_state_t;

/*
 * open(): read the parameters, build the instance.
 *
 * args->params is the spec's key=value list, in order, valid only during this
 * call (hence the copy). Refuse what you do not know, naming the key: a
 * typo must not be silently ignored. args->restore would hold our last blob;
 * we never return one, so it is always empty here.
 */
static int template_open(void **state, const tdm_open_args_t *args) {
  const char *prefix = "> ";
  template_state_t *st;

  for (size_t i = 0; i < args->n_params; i++) {
    if (strcmp(args->params[i].key, "prefix") == 0) {
      prefix = args->params[i].value;
    } else {
      snprintf(args->msg, TDM_MSG_MAX,
               "template: unknown parameter \"%s\" (template takes "
               "prefix=STR)",
               args->params[i].key);
      return TDM_PROC_FAIL; /* close() will not be called */
    }
  }

  st = calloc(1, sizeof(*st));
  if (st != NULL) {
    st->prefix_len = strlen(prefix);
    st->prefix = malloc(st->prefix_len + 1);
  }
  if (st == NULL || st->prefix == NULL) {
    free(st);
    snprintf(args->msg, TDM_MSG_MAX, "template: out of memory");
    return TDM_PROC_FAIL;
  }
  memcpy(st->prefix, prefix, st->prefix_len + 1);
  *state = st;
  return TDM_PROC_OK;
}

/* Write all of p[0..n) to standard output. Returns 0 or an errno value. */
static int write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDOUT_FILENO, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/*
 * process(): one chunk, one or more lines (in --records lines mode every line
 * ends in '\n'; in bytes mode, or for a piece of an over-long line, the last
 * one may not, and it is written as it is, without a newline of ours).
 *
 * We build the prefixed text in our buffer and write it with one write loop,
 * so a chunk's lines stay together even beside other writers of stdout.
 * memchr finds each line end: it is vectorised by libc, far faster than a
 * loop over bytes.
 */
static int template_process(void *state, const tdm_chunk_t *chunk,
                            char *msg) {
  template_state_t *st = state;
  const char *p = chunk->data;
  const char *end = p + chunk->len;
  size_t lines = 0, need, o = 0;
  int err;

  /* Size the output: the chunk plus one prefix per line. */
  for (const char *q = p; q < end; lines++) {
    const char *nl = memchr(q, '\n', (size_t)(end - q));
    q = nl != NULL ? nl + 1 : end;
  }
  need = chunk->len + lines * st->prefix_len;
  if (need > st->out_cap) {
    char *out = realloc(st->out, need);
    if (out == NULL) {
      /* Nothing was written: the host may offer the chunk again. */
      snprintf(msg, TDM_MSG_MAX, "template: out of memory (%zu bytes)",
               need);
      return TDM_PROC_RETRY;
    }
    st->out = out;
    st->out_cap = need;
  }

  /* Copy each line behind its prefix. */
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl != NULL ? (size_t)(nl + 1 - p) : (size_t)(end - p);
    memcpy(st->out + o, st->prefix, st->prefix_len);
    o += st->prefix_len;
    memcpy(st->out + o, p, len);
    o += len;
    p += len;
  }

  err = write_all(st->out, o);
  if (err != 0) {
    /* Some of it may be out already and cannot be taken back: FAIL, not
       RETRY (a retry would write those lines twice). */
    snprintf(msg, TDM_MSG_MAX, "template: write to standard output: %s (%s)",
             strerror(err), chunk->path);
    return TDM_PROC_FAIL;
  }
  return TDM_PROC_OK;
}

/*
 * commit(): make what process() accepted durable, and describe it in a blob.
 * Our output went straight to a pipe or tty with write(2): nothing is
 * buffered, nothing can be synced or rolled back, so no blob. (A processor
 * writing a file would fsync here and return its length; see the built-in
 * `file` processor in processors/builtin/file.c.)
 */
static int template_commit(void *state, void *restore, size_t *restore_len,
                           char *msg) {
  (void)state;
  (void)restore;
  (void)msg;
  *restore_len = 0;
  return TDM_PROC_OK;
}

/* close(): free the instance. Called once, after the last commit. */
static void template_close(void *state) {
  template_state_t *st = state;
  if (st == NULL)
    return;
  free(st->prefix);
  free(st->out);
  free(st);
}

/*
 * The descriptor. abi_version and size let the host check that this plugin
 * was built against its ABI; they must be exactly these expressions.
 */
static const tdm_processor_t template_processor = {
    TDM_PROCESSOR_HEADER,
    .name = "template",
    .summary = "writes each line to stdout behind a prefix "
               "(template:prefix=STR, default \"> \")",
    .open = template_open,
    .process = template_process,
    .commit = template_commit,
    .close = template_close,
};

/*
 * The one symbol a plugin exports (TDM_PROCESSOR_ENTRY_SYMBOL). It returns a
 * pointer to a static descriptor, never a copy: the host reads it after this
 * call returns. Build with -fvisibility=hidden and mark only this function
 * visible if your plugin has other non-static functions.
 */
__attribute__((visibility("default"))) const tdm_processor_t *
tdm_processor_entry(void) {
  return &template_processor;
}
