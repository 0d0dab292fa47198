/* bad_abi.c: a plugin built against a future, incompatible ABI (999). The
   host must refuse it before reading anything past `size`. */
#include "tidemark/processor.h"

static int process(void *state, const tdm_chunk_t *chunk, char *msg) {
  (void)state;
  (void)chunk;
  (void)msg;
  return TDM_PROC_OK;
}

static const tdm_processor_t desc = {
    .abi_version = 999,
    .size = sizeof(tdm_processor_t),
    .name = "bad_abi",
    .summary = "built against ABI version 999",
    .process = process,
};

const tdm_processor_t *tdm_processor_entry(void) { return &desc; }
