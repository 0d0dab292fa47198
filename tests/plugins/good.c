/* good.c: the smallest valid plugin: a process() and nothing else. It counts
   the bytes it is given in a global, so a test can see it was called. */
#include "tidemark/processor.h"

size_t good_bytes;

static int process(void *state, const tdm_chunk_t *chunk, char *msg) {
  (void)state;
  (void)msg;
  good_bytes += chunk->len;
  return TDM_PROC_OK;
}

static const tdm_processor_t desc = {
    .abi_version = TDM_PROCESSOR_ABI_VERSION,
    .size = sizeof(tdm_processor_t),
    .name = "good",
    .summary = "accepts everything",
    .process = process,
};

const tdm_processor_t *tdm_processor_entry(void) { return &desc; }
