/*
 * registry.c: the processors tidemark knows, built-in and loaded from plugins
 * (see registry.h).
 *
 * Every descriptor, built-in or plugin, passes the same checks in
 * tdm_registry_add(), in this order, and each refusal is logged naming where
 * the descriptor came from (nginx's ngx_module.c refuses a module of the
 * wrong version loudly, naming it; we do the same):
 *
 *   1. abi_version == TDM_PROCESSOR_ABI_VERSION (found vs expected)
 *   2. size >= TDM_PROCESSOR_SIZE_V1
 *   3. a name of [a-z0-9_-]+, a process() method
 *   4. a name not already registered (naming who has it)
 *
 * Only the first 8 bytes (abi_version, size) are read before the version is
 * known to be ours, and nothing beyond `size` is ever read: the registry keeps
 * its own copy of the descriptor with every field past the plugin's `size`
 * zeroed. When methods are appended to tdm_processor_t in a later version, a
 * host holding a descriptor from the registry finds them NULL for an older
 * plugin instead of reading past the end of its struct (Fluent Bit copies a
 * plugin's struct without any such check; sqlite3_module's iVersion is the
 * model).
 *
 * A plugin is dlopen()ed with RTLD_NOW (a missing symbol is found now, not in
 * the middle of a run) and RTLD_LOCAL (plugins cannot see or clash with each
 * other's symbols). A refused plugin is dlclose()d at once; an accepted one
 * stays loaded until tdm_registry_close().
 */
#include "processors/registry.h"

#include "processors/builtin/builtin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct entry {
  tdm_processor_t desc; /* our copy; fields past the plugin's size are 0 */
  void *handle;         /* dlopen() handle, NULL for a built-in */
  char origin[];        /* "built-in" or the .so path */
} entry_t;

struct tdm_registry_s {
  const tdm__log_t *log;
  entry_t **v; /* pointers, so descriptors never move when v grows */
  size_t n;
  size_t cap;
  int in_dir;  /* loading --plugin-dir: a bad plugin is skipped, a warning */
  /* The default directories (load_default_dirs), resolved: their plugins
     are loaded when a spec names one (tdm_registry_need) or for a listing
     (tdm_registry_load_defaults), not at start: a process that uses none of
     them does not map their libraries (libnats, TLS: megabytes of RSS). */
  char *lazy[2];
  size_t n_lazy;
};

static int is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/*
 * Log "plugin "PATH" refused: REASON" (or "processor from "ORIGIN"
 * refused: ..." for a descriptor that was not loaded from a file) and return
 * TDM_EABI.
 */
static int refuse(const tdm_registry_t *r, const char *origin, int is_plugin,
                  const char *fmt, ...) TDM__PRINTF(4, 5);

static int refuse(const tdm_registry_t *r, const char *origin, int is_plugin,
                  const char *fmt, ...) {
  char reason[1024];
  char q[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(reason, sizeof(reason), fmt, ap);
  va_end(ap);
  if (r->in_dir)
    tdm__warn(r->log, "plugin \"%s\" skipped: %s",
              tdm__quote(origin, q, sizeof(q)), reason);
  else
    tdm__error(r->log, "%s \"%s\" refused: %s",
               is_plugin ? "plugin" : "processor from",
               tdm__quote(origin, q, sizeof(q)), reason);
  return TDM_EABI;
}

static const entry_t *find_entry(const tdm_registry_t *r, const char *name) {
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->v[i]->desc.name, name) == 0)
      return r->v[i];
  return NULL;
}

/*
 * Check `desc` and append a copy of it. `handle` (may be NULL) is owned by the
 * registry on success only: on failure the caller still owns it.
 * Returns 0, TDM_EABI (logged) or -ENOMEM (logged).
 */
static int add_entry(tdm_registry_t *r, const tdm_processor_t *desc,
                     const char *origin, void *handle, int is_plugin) {
  const entry_t *other;
  entry_t *e;
  size_t copy, olen;
  char q[256], q2[1024];

  if (origin == NULL)
    origin = "(unknown)";
  if (desc == NULL)
    return refuse(r, origin, is_plugin, "no descriptor (NULL)");

  /* Only abi_version and size may be read before these two checks pass. */
  if (desc->abi_version != TDM_PROCESSOR_ABI_VERSION)
    return refuse(r, origin, is_plugin,
                  "processor ABI version %u, expected %u (rebuild it "
                  "against this tidemark's tidemark/processor.h)",
                  (unsigned)desc->abi_version,
                  (unsigned)TDM_PROCESSOR_ABI_VERSION);
  if (desc->size < TDM_PROCESSOR_SIZE_V1)
    return refuse(r, origin, is_plugin,
                  "descriptor size %u is smaller than the version-1 layout "
                  "(%zu bytes)",
                  (unsigned)desc->size, (size_t)TDM_PROCESSOR_SIZE_V1);

  if (desc->name == NULL || desc->name[0] == '\0')
    return refuse(r, origin, is_plugin, "descriptor has no name");
  for (const char *c = desc->name; *c != '\0'; c++)
    if (!is_name_char(*c))
      return refuse(r, origin, is_plugin,
                    "name \"%s\" is not of [a-z0-9_-]+",
                    tdm__quote(desc->name, q, sizeof(q)));
  if (desc->process == NULL)
    return refuse(r, origin, is_plugin,
                  "processor \"%s\" has no process() method", desc->name);
  other = find_entry(r, desc->name);
  if (other != NULL)
    return refuse(r, origin, is_plugin,
                  "a processor named \"%s\" is already registered (from %s)",
                  desc->name, tdm__quote(other->origin, q2, sizeof(q2)));

  if (r->n == r->cap) {
    size_t cap = r->cap != 0 ? r->cap * 2 : 8;
    entry_t **v = realloc(r->v, cap * sizeof(*v));
    if (v == NULL)
      goto nomem;
    r->v = v;
    r->cap = cap;
  }
  olen = strlen(origin);
  e = calloc(1, sizeof(*e) + olen + 1);
  if (e == NULL)
    goto nomem;
  /* Copy what the plugin has, no more; the rest stays zero (NULL). */
  copy = desc->size < sizeof(e->desc) ? desc->size : sizeof(e->desc);
  memcpy(&e->desc, desc, copy);
  e->handle = handle;
  memcpy(e->origin, origin, olen + 1);
  r->v[r->n++] = e;
  return 0;

nomem:
  tdm__error(r->log, "processor \"%s\" from %s: out of memory", desc->name,
             tdm__quote(origin, q2, sizeof(q2)));
  return -ENOMEM;
}

/*
 * Check and register a descriptor that is not in a plugin file (built-ins,
 * an embedder's own). `origin` is copied. Returns 0, TDM_EABI (logged, naming
 * origin) or -ENOMEM.
 */
int tdm_registry_add(tdm_registry_t *r, const tdm_processor_t *desc,
                     const char *origin) {
  return add_entry(r, desc, origin, NULL, 0);
}

/*
 * Load one plugin file. Returns 0 when its descriptor was registered;
 * otherwise TDM_EABI (or -ENOMEM) after logging why, naming `so_path`, and the
 * file is unloaded again. The plugin's entry point runs in the calling thread.
 */
static int load_one(tdm_registry_t *r, const char *so_path, int lenient);

int tdm_registry_load(tdm_registry_t *r, const char *so_path) {
  return load_one(r, so_path, 0);
}

/* tdm_registry_load; `lenient` (the default directory): a processor whose
   name is registered already (from --plugin-dir) is skipped quietly. */
static int load_one(tdm_registry_t *r, const char *so_path, int lenient) {
  tdm_processor_entry_fn entry;
  const tdm_processor_t *desc;
  const char *err;
  char buf[4096];
  const char *path = so_path;
  void *handle, *sym;
  int rc;

  /* dlopen("x.so") searches the library path, not the current directory. */
  if (strchr(so_path, '/') == NULL) {
    snprintf(buf, sizeof(buf), "./%s", so_path);
    path = buf;
  }

  dlerror();
  handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    err = dlerror();
    return refuse(r, so_path, 1, "dlopen failed: %s",
                  err != NULL ? err : "unknown error");
  }

  dlerror();
  sym = dlsym(handle, TDM_PROCESSOR_ENTRY_SYMBOL);
  err = dlerror();
  if (sym == NULL) {
    rc = refuse(r, so_path, 1,
                "it does not export %s() (is it a tidemark processor?)%s%s",
                TDM_PROCESSOR_ENTRY_SYMBOL, err != NULL ? ": " : "",
                err != NULL ? err : "");
    dlclose(handle);
    return rc;
  }
  /* ISO C has no conversion from void * to a function pointer; POSIX
     guarantees the representation, so copy the bits. */
  memcpy(&entry, &sym, sizeof(entry));

  desc = entry();
  if (desc == NULL) {
    rc = refuse(r, so_path, 1, "%s() returned NULL",
                TDM_PROCESSOR_ENTRY_SYMBOL);
    dlclose(handle);
    return rc;
  }

  if (lenient && desc->abi_version == TDM_PROCESSOR_ABI_VERSION &&
      desc->size >= TDM_PROCESSOR_SIZE_V1 && desc->name != NULL &&
      find_entry(r, desc->name) != NULL) {
    tdm__debug(r->log, "plugin \"%s\": processor \"%s\" is loaded already "
               "(from --plugin-dir); skipped", so_path, desc->name);
    dlclose(handle);
    return 0;
  }
  rc = add_entry(r, desc, so_path, handle, 1);
  if (rc != 0) {
    dlclose(handle); /* after add_entry logged: the message used desc */
    return rc;
  }
  tdm__debug(r->log, "plugin \"%s\": loaded processor \"%s\"", so_path,
             desc->name);
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_plugin_name(const char *n) {
  size_t len = strlen(n);
  return n[0] != '.' && len > 3 && strcmp(n + len - 3, ".so") == 0;
}

/* "plugin directory "DIR": out of memory"; -ENOMEM. */
static int dir_nomem(tdm_registry_t *r, const char *dir) {
  char q[1024];
  tdm__error(r->log, "plugin directory \"%s\": out of memory",
             tdm__quote(dir, q, sizeof(q)));
  return -ENOMEM;
}

/* The plugin file names in `dp` (of `dir`), malloc'd, into *names / *n
   (which own them whatever the outcome). Returns 0, -ENOMEM or -errno (a
   readdir error); both are logged, naming dir. */
static int list_plugins(tdm_registry_t *r, DIR *dp, const char *dir,
                        char ***names, size_t *n) {
  size_t cap = 0;
  char q[1024];
  for (;;) {
    struct dirent *d;
    errno = 0;
    d = readdir(dp);
    if (d == NULL) {
      int rc = -errno;
      if (rc != 0)
        tdm__error(r->log, "plugin directory \"%s\": %s",
                   tdm__quote(dir, q, sizeof(q)), strerror(-rc));
      return rc;
    }
    if (!is_plugin_name(d->d_name))
      continue;
    if (*n == cap) {
      size_t ncap = cap != 0 ? cap * 2 : 16;
      char **v = realloc(*names, ncap * sizeof(*v));
      if (v == NULL)
        return dir_nomem(r, dir);
      *names = v;
      cap = ncap;
    }
    (*names)[*n] = strdup(d->d_name);
    if ((*names)[*n] == NULL)
      return dir_nomem(r, dir);
    (*n)++;
  }
}

/* Load dir/NAME for each of the n names, in order; a plugin refused is
   counted and summed up in one warning. Returns 0 or -ENOMEM. */
static int load_listed(tdm_registry_t *r, const char *dir, char **names,
                       size_t n, int lenient) {
  size_t refused = 0;
  char q[1024];
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(dir) + 1 + strlen(names[i]) + 1;
    char *path = malloc(len);
    int lrc;
    if (path == NULL)
      return dir_nomem(r, dir);
    snprintf(path, len, "%s/%s", dir, names[i]);
    r->in_dir = 1; /* a bad plugin is skipped with a warning */
    lrc = load_one(r, path, lenient);
    r->in_dir = 0;
    free(path);
    if (lrc == -ENOMEM)
      return lrc;
    if (lrc != 0)
      refused++;
  }
  if (refused > 0)
    tdm__warn(r->log, "plugin directory \"%s\": %zu of %zu plugins skipped%s",
              tdm__quote(dir, q, sizeof(q)), refused, n,
              lenient ? " (the default directory)" : "");
  return 0;
}

/*
 * Load every non-hidden `*.so` in `dir`, in name order so that a duplicate
 * name is always resolved the same way. Every plugin is tried; one that
 * cannot be loaded (a wrong ABI, not a shared object, a duplicate name) is
 * skipped with a warning naming it and why, so that one bad file does not
 * stop the built-ins and the good plugins from working (a spec naming the
 * skipped processor is then an unknown processor). Returns 0, -ENOMEM, or
 * -errno (logged, naming dir) if the directory cannot be read.
 */
static int load_dir(tdm_registry_t *r, const char *dir, int lenient) {
  char **names = NULL;
  size_t n = 0;
  char q[1024];
  DIR *dp;
  int rc;

  dp = opendir(dir);
  if (dp == NULL && lenient) /* the default directory need not exist */
    return 0;
  if (dp == NULL) {
    rc = -errno;
    tdm__error(r->log, "plugin directory \"%s\": %s",
               tdm__quote(dir, q, sizeof(q)), strerror(-rc));
    return rc;
  }
  rc = list_plugins(r, dp, dir, &names, &n);
  if (rc == 0) {
    if (n > 0)
      qsort(names, n, sizeof(*names), cmp_names);
    rc = load_listed(r, dir, names, n, lenient);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  closedir(dp);
  return rc;
}

#ifndef TDM_REL_PLUGIN_DIR
#define TDM_REL_PLUGIN_DIR "../lib/tidemark"
#endif

/*
 * The default plugin directory, always searched after --plugin-dir, found
 * from the running executable's directory EXE (/proc/self/exe):
 *   EXE/TDM_REL_PLUGIN_DIR   LIBDIR/tidemark of an installed tidemark (the
 *                            path from BINDIR to it, fixed at configure time)
 *   EXE/tidemark-plugins     the plugins a build tree made, beside the
 *                            build's tidemark binary
 * Missing directories are skipped; one that is --plugin-dir, or both the same
 * directory, is read once. A plugin there whose name is loaded already is
 * skipped; one refused is logged, and the others are loaded. Returns 0 or
 * -ENOMEM.
 */
static int load_default_dirs(tdm_registry_t *r, const char *plugin_dir) {
  static const char *const rel[] = {TDM_REL_PLUGIN_DIR, "tidemark-plugins"};
  char exe[4096], dir[4096 + 64], *seen[3] = {NULL, NULL, NULL};
  size_t n_seen = 0;
  ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  char *slash;
  int rc = 0;

  if (len <= 0)
    return 0;
  exe[len] = '\0';
  if ((slash = strrchr(exe, '/')) == NULL)
    return 0;
  *slash = '\0';
  if (plugin_dir != NULL && (seen[0] = realpath(plugin_dir, NULL)) != NULL)
    n_seen = 1;
  for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]) && rc == 0; i++) {
    char *real;
    int dup = 0;
    snprintf(dir, sizeof(dir), "%s/%s", exe, rel[i]);
    if ((real = realpath(dir, NULL)) == NULL)
      continue; /* missing: nothing installed or built there */
    for (size_t k = 0; k < n_seen; k++)
      dup |= strcmp(seen[k], real) == 0;
    if (dup) {
      free(real);
      continue;
    }
    seen[n_seen++] = real;
    if ((r->lazy[r->n_lazy] = strdup(real)) == NULL)
      rc = dir_nomem(r, real);
    else
      r->n_lazy++;
  }
  for (size_t k = 0; k < n_seen; k++)
    free(seen[k]);
  return rc;
}

/*
 * Create a registry with the built-ins, then the plugins of `plugin_dir`
 * (NULL: none), then those of the default directory (load_default_dirs, in
 * which nothing is an error). On success *out owns everything until tdm_registry_close().
 * On error *out is untouched, everything loaded is unloaded, and the error
 * was logged: -errno (plugin_dir unreadable), -ENOMEM. A plugin that cannot
 * be loaded is skipped with a warning (see load_dir).
 */
int tdm_registry_open(const char *plugin_dir, const tdm__log_t *log,
                      tdm_registry_t **out) {
  const tdm_processor_t *builtins[4];
  tdm_registry_t *r;
  int rc;

  r = calloc(1, sizeof(*r));
  if (r == NULL) {
    tdm__error(log, "processor registry: out of memory");
    return -ENOMEM;
  }
  r->log = log;

  builtins[0] = tdm__proc_stdout();
  builtins[1] = tdm__proc_count();
  builtins[2] = tdm__proc_file();
  builtins[3] = tdm__proc_exec();
  for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
    rc = tdm_registry_add(r, builtins[i], "built-in");
    if (rc != 0)
      goto err;
  }

  if (plugin_dir != NULL) {
    rc = load_dir(r, plugin_dir, 0);
    if (rc != 0)
      goto err;
  }
  rc = load_default_dirs(r, plugin_dir);
  if (rc != 0)
    goto err;
  *out = r;
  return 0;

err:
  tdm_registry_close(r);
  return rc;
}

/* Unload the plugins (in reverse order of loading) and free everything.
   Accepts NULL. */
void tdm_registry_close(tdm_registry_t *r) {
  if (r == NULL)
    return;
  for (size_t i = r->n; i-- > 0;) {
    if (r->v[i]->handle != NULL)
      dlclose(r->v[i]->handle);
    free(r->v[i]);
  }
  for (size_t i = 0; i < r->n_lazy; i++)
    free(r->lazy[i]);
  free(r->v);
  free(r);
}

/* The descriptor named `name` (the registry's copy, valid until
   tdm_registry_close()), or NULL. */
const tdm_processor_t *tdm_registry_find(const tdm_registry_t *r,
                                         const char *name) {
  const entry_t *e;
  if (r == NULL || name == NULL)
    return NULL;
  e = find_entry(r, name);
  return e != NULL ? &e->desc : NULL;
}

const tdm_processor_t *tdm_registry_need(tdm_registry_t *r, const char *name) {
  const tdm_processor_t *d = tdm_registry_find(r, name);
  size_t len = name != NULL ? strlen(name) : 0;
  char path[4096 + 256];

  /* A processor name ([a-z0-9_-]+) only: never a path. */
  for (size_t k = 0; k < len; k++)
    if (!is_name_char(name[k]))
      len = 0;
  for (size_t i = 0; d == NULL && len > 0 && r != NULL && i < r->n_lazy; i++) {
    if (snprintf(path, sizeof(path), "%s/%s.so", r->lazy[i], name) >=
            (int)sizeof(path) ||
        access(path, F_OK) != 0)
      continue;
    (void)load_one(r, path, 1); /* a refusal is logged, naming the file */
    d = tdm_registry_find(r, name);
  }
  return d;
}

int tdm_registry_load_defaults(tdm_registry_t *r) {
  int rc = 0;
  for (size_t i = 0; i < r->n_lazy; i++) {
    if (rc == 0)
      rc = load_dir(r, r->lazy[i], 1);
    free(r->lazy[i]);
  }
  r->n_lazy = 0;
  return rc;
}

size_t tdm_registry_count(const tdm_registry_t *r) {
  return r != NULL ? r->n : 0;
}

/* The i-th descriptor in registration order (built-ins first, then plugins
   by file name) and, if `origin` is not NULL, where it came from. Both stay
   valid until tdm_registry_close(). Out of range: NULL (and *origin NULL). */
const tdm_processor_t *tdm_registry_get(const tdm_registry_t *r, size_t i,
                                        const char **origin) {
  if (r == NULL || i >= r->n) {
    if (origin != NULL)
      *origin = NULL;
    return NULL;
  }
  if (origin != NULL)
    *origin = r->v[i]->origin;
  return &r->v[i]->desc;
}
