/*
 * builtin/builtin.h: the built-in processors' descriptors, which the
 * registry (processors/registry.c) adds at open. A built-in is written like
 * any plugin, against tidemark/processor.h.
 */
#ifndef TDM_BUILTIN_H
#define TDM_BUILTIN_H

#include "tidemark/processor.h"

const tdm_processor_t *tdm__proc_stdout(void);
const tdm_processor_t *tdm__proc_count(void);
const tdm_processor_t *tdm__proc_file(void);
const tdm_processor_t *tdm__proc_exec(void);

#endif /* TDM_BUILTIN_H */
