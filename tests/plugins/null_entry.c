/* null_entry.c: exports the entry point, which returns no descriptor. */
#include "tidemark/processor.h"

const tdm_processor_t *tdm_processor_entry(void) { return NULL; }
