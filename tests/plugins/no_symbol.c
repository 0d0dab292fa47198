/* no_symbol.c: a shared object that does not export tdm_processor_entry
   (here, a typo of it), so it is no tidemark processor. */
#include "tidemark/processor.h"

static const tdm_processor_t desc = {
    .abi_version = TDM_PROCESSOR_ABI_VERSION,
    .size = sizeof(tdm_processor_t),
    .name = "no_symbol",
};

const tdm_processor_t *tdm_processor_entrypoint(void) { return &desc; }
