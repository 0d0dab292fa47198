/*
 * registry.h: the processors tidemark knows, built-in and loaded from plugins,
 * and the parsing of processor specs (`NAME:key=value,key=value`).
 */
#ifndef TDM_REGISTRY_H
#define TDM_REGISTRY_H

#include <stddef.h>

#include "base/log.h"
#include "tidemark/processor.h"

typedef struct tdm_registry_s tdm_registry_t;

/*
 * Create a registry holding the built-ins (stdout, count, file, exec), then
 * load every `*.so` in `plugin_dir` (NULL: none) with dlopen. Each plugin must
 * export TDM_PROCESSOR_ENTRY_SYMBOL returning a descriptor that passes
 * tdm_registry_add(). A plugin that fails is skipped with a warning naming
 * its file and why; the others and the built-ins are registered (one bad
 * file must not stop `once -p count`; a spec naming the skipped processor is
 * an unknown processor). A plugin_dir that does not exist or cannot be read:
 * -errno, logged naming it.
 * `log` must outlive the registry.
 */
int tdm_registry_open(const char *plugin_dir, const tdm__log_t *log,
                      tdm_registry_t **out);

/* Unloads the plugins. Accepts NULL. Descriptors found through the registry
   are invalid afterwards. */
void tdm_registry_close(tdm_registry_t *r);

/*
 * Check and register a descriptor. `origin` names where it came from
 * ("built-in" or the .so path) for messages and listings; it is copied.
 * Refused with TDM_EABI (logged, naming origin): NULL descriptor, wrong
 * abi_version, size < TDM_PROCESSOR_SIZE_V1, missing name or process(),
 * a name not of [a-z0-9_-]+, a name already registered.
 */
int tdm_registry_add(tdm_registry_t *r, const tdm_processor_t *desc,
                     const char *origin);

/* Load one plugin file (what tdm_registry_open does for each .so). */
int tdm_registry_load(tdm_registry_t *r, const char *so_path);

/* The descriptor named `name`, or NULL. */
const tdm_processor_t *tdm_registry_find(const tdm_registry_t *r,
                                         const char *name);

/*
 * tdm_registry_find, and when `name` is not registered, load NAME.so from
 * the default plugin directories (LIBDIR/tidemark from the executable, the
 * build tree's tidemark-plugins), which tdm_registry_open only notes: a
 * process that names none of their plugins never maps them. NULL when there
 * is none (a refused plugin is logged, naming its file).
 */
const tdm_processor_t *tdm_registry_need(tdm_registry_t *r, const char *name);

/* Load every plugin of the default directories now (for a listing). 0, or
   -ENOMEM; a refused plugin is skipped with a warning. */
int tdm_registry_load_defaults(tdm_registry_t *r);

/* For listings: the number of processors and the i-th (in registration
   order) with its origin. */
size_t tdm_registry_count(const tdm_registry_t *r);
const tdm_processor_t *tdm_registry_get(const tdm_registry_t *r, size_t i,
                                        const char **origin);

/*
 * A parsed spec. `name` and every key/value point into one allocation owned
 * by the spec; free with tdm_proc_spec_free().
 */
typedef struct tdm_proc_spec {
  char *name;
  tdm_kv_t *params;
  size_t n_params;
  char *buf_;          /* private */
} tdm_proc_spec_t;

/*
 * Parse `NAME` or `NAME:key=value,key=value,...`. A comma splits only when
 * what follows it looks like `key=` (key: [A-Za-z0-9_-]+), so values may hold
 * commas and spaces: `exec:cmd=sort -t, -k2,jobs=2`. On error returns
 * TDM_EUSAGE and writes a message naming the problem into `err` (`errcap`
 * bytes); *out is untouched.
 */
int tdm_proc_spec_parse(const char *spec, tdm_proc_spec_t *out, char *err,
                        size_t errcap);

void tdm_proc_spec_free(tdm_proc_spec_t *s);

#endif /* TDM_REGISTRY_H */
