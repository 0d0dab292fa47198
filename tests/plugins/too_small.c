/* too_small.c: a descriptor claiming to be 8 bytes long (abi_version and
   size only): smaller than the version-1 layout, so refused. */
#include "tidemark/processor.h"

static const tdm_processor_t desc = {
    .abi_version = TDM_PROCESSOR_ABI_VERSION,
    .size = 8,
    .name = "too_small",
};

const tdm_processor_t *tdm_processor_entry(void) { return &desc; }
