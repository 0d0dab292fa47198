/* odd_summary.c: a valid plugin whose summary holds a newline and a
   terminal escape sequence: `tidemark processors` must print them escaped. */
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
    .name = "odd_summary",
    .summary = "line one\nFORGED  built-in  \x1b[31mred\x1b[0m",
    .process = process,
};

const tdm_processor_t *tdm_processor_entry(void) { return &desc; }
