/* dup_name.c: a valid plugin whose name, "count", a built-in already has. */
#include "tidemark/processor.h"

static int process(void *state, const tdm_chunk_t *chunk, char *msg) {
  (void)state;
  (void)chunk;
  (void)msg;
  return TDM_PROC_OK;
}

static const tdm_processor_t desc = {
    .abi_version = TDM_PROCESSOR_ABI_VERSION,
    .size = sizeof(tdm_processor_t),
    .name = "count",
    .summary = "a second processor named count",
    .process = process,
};

const tdm_processor_t *tdm_processor_entry(void) { return &desc; }
