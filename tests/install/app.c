/*
 * app.c: a program outside the tree, built by tests/integration/test-install.sh
 * against an installed tidemark with nothing but
 *
 *     cc app.c $(pkg-config --cflags --libs tidemark)
 *
 * Usage: app STATE_DIR DIR. Counts the lines tidemark hands it from the files
 * under DIR and prints "version V lines N bytes B files F".
 */
#include <stdio.h>
#include <string.h>

#include <tidemark.h>

typedef struct counts {
  unsigned long long lines, bytes;
} counts_t;

static int on_chunk(void *arg, const tdm_chunk_t *c) {
  counts_t *n = arg;
  const unsigned char *p = c->data;
  n->bytes += c->len;
  for (size_t i = 0; i < c->len; i++)
    n->lines += p[i] == '\n';
  return TDM_PROC_OK;
}

int main(int argc, char **argv) {
  tdm_options_t o;
  tdm_stats_t st;
  tdm_t *t = NULL;
  counts_t n = {0, 0};
  int rc;

  if (argc != 3) {
    fprintf(stderr, "usage: app STATE_DIR DIR\n");
    return 2;
  }
  tdm_options_init(&o);
  o.state_dir = argv[1];
  if ((rc = tdm_open(&o, &t)) != 0 || (rc = tdm_add_source(t, argv[2])) != 0 ||
      (rc = tdm_add_callback(t, "app", on_chunk, &n)) != 0 ||
      (rc = tdm_run_once(t)) != 0) {
    fprintf(stderr, "app: %s\n", tdm_strerror(rc));
    tdm_close(t);
    return 1;
  }
  tdm_stats_init(&st);
  tdm_get_stats(t, &st);
  printf("version %s lines %llu bytes %llu files %llu\n", tdm_version(),
         n.lines, n.bytes, (unsigned long long)st.files_tracked);
  tdm_close(t);
  return 0;
}
