/*
 * config.h: the `tidemark` command's configuration, from its command line and
 * an optional INI file (`-c FILE`).
 *
 *     tdm_config_t c;
 *     char err[512];
 *     if (tdm__config_parse(&c, argc, argv, err, sizeof(err)) != 0) {
 *       fprintf(stderr, "tidemark: error: %s\n", err);   exit 2
 *     }
 *     ... tdm_open(&c.options, &t) ...
 *     tdm__config_free(&c);
 *
 * Precedence, lowest first: built-in defaults (tdm_options_init, the
 * man page's table), $TIDEMARK_STATE (state only), the INI file, the command line. A
 * scalar given on the command line overrides the file's; a list (-p, -i, -x)
 * given on the command line at least once replaces the file's list.
 *
 * INI file: `key = value` lines, either before any section or in a
 * `[tidemark]` section; keys are the long option names without their dashes
 * (state, mode, processor, include, exclude, no-recursive, from-end, records,
 * max-record, settle-ms, checkpoint-ms, poll-ms, plugin-dir, retry-timeout-ms,
 * verbose, quiet, metrics, metrics-file, progress), plus `dir` (repeatable):
 * the DIRs of run/once when the command line gives none.
 * processor/include/exclude may repeat and accumulate; booleans take
 * true/false, yes/no, on/off, 1/0. Comments start a line with ';' or '#', or
 * follow a value as ` ; comment`. Lines may be of any length. A scalar key
 * given twice is an error naming both lines.
 * Keys that do not apply to the command at hand are ignored (one file serves
 * every command); unknown keys and sections are errors naming FILE:LINE.
 * Relative paths in the file, like those on the command line, are relative
 * to the current directory, not to the file.
 *
 * Nothing here keeps global state: getopt's cursor (optind) is reset on each
 * call, and everything else lives in the tdm_config_t.
 */
#ifndef TDM_CONFIG_H
#define TDM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tidemark.h"

typedef enum tdm_command {
  TDM_CMD_NONE = 0,
  TDM_CMD_RUN,        /* run [OPTIONS] DIR... */
  TDM_CMD_ONCE,       /* once [OPTIONS] DIR... */
  TDM_CMD_STATUS,     /* status [--state DIR] [--json] */
  TDM_CMD_RESET,      /* reset [--state DIR] [PATH...] */
  TDM_CMD_PROCESSORS, /* processors [--plugin-dir DIR] */
  TDM_CMD_TOP,        /* top [--state DIR] [--metrics ADDR:PORT] ... */
  TDM_CMD_HELP,       /* --help / -h anywhere: print tdm__config_usage() */
  TDM_CMD_VERSION     /* --version / -V anywhere */
} tdm_command_t;

/* A value from the INI file that tdm_open checks (a glob, --metrics,
   --metrics-file, --on-done, --on-failed): where it was written, so that the
   command can say so when tdm_open refuses it. */
typedef struct tdm_config_origin {
  char *where;        /* "FILE:LINE: key" */
  const char *option; /* the long option's name: "include", "metrics" */
  char *value;        /* as written */
} tdm_config_origin_t;

/*
 * The whole configuration. Every string and array is owned by the struct and
 * freed by tdm__config_free(); `options` points into them, so it is valid as
 * long as the struct is and must not be copied past its lifetime.
 */
typedef struct tdm_config {
  tdm_command_t command;
  /* Ready for tdm_open(): state_dir, mode, records, include/exclude,
     recursive, from_end, max_record, settle_ms, checkpoint_ms, poll_ms,
     retry_timeout_ms, plugin_dir, log_level, metrics_listen and metrics_file
     are filled; log_cb/log_arg and progress_cb/progress_arg are left NULL. */
  tdm_options_t options;
  int verbosity;            /* -1: -q; 0: default; 1: -v; 2 or more: -vv */
  int json;                 /* status --json */
  int summary;              /* status --summary */
  int progress;             /* once: -1 auto (stderr is a tty), 0 never, 1 always */
  uint32_t interval_ms;     /* top: --interval-ms (default 1000) */
  int top_once;             /* top: --once */
  char *metrics;            /* run: --metrics ADDR:PORT to serve; top: to
                               read from; or NULL */
  char *metrics_file;       /* --metrics-file PATH, or NULL */
  char *config_file;        /* -c FILE as given, or NULL */
  char **dirs;              /* run/once: the DIRs, as given */
  size_t n_dirs;
  char **processors;        /* run/once: the specs; {"stdout"} if none */
  size_t n_processors;
  char **processor_origins; /* n_processors: "FILE:LINE" of a spec from the
                               INI file, "" for one from the command line */
  tdm_config_origin_t *lib_origins; /* the INI file's values tdm_open
                                       checks, unless the command line
                                       replaced them */
  size_t n_lib_origins;
  char **paths;             /* reset: the PATHs, as given (none: reset all) */
  size_t n_paths;
  /* Storage behind `options` (read them through `options`). */
  char *state_dir;
  char *plugin_dir;
  char **include;
  size_t n_include;
  char **exclude;
  size_t n_exclude;
  char *multiline_start;
  char *on_done;
  char *on_failed;
  char *dead_letter;
} tdm_config_t;

/*
 * Parse `argv` (argv[0] is the program name, argv[1] the command) and the INI
 * file named by `-c`, validate, and fill `c` (overwritten: it need not be
 * initialised). May permute argv's pointers (GNU getopt), nothing more.
 *
 * Returns 0 with `c` filled, or TDM_EUSAGE with a one-line message naming the
 * option, value, FILE:LINE or key concerned in `err` (`errcap` bytes, always
 * NUL-terminated) and `c` empty (tdm__config_free() is still allowed). Out of
 * memory: -ENOMEM with a message. When --help or --version is met, returns 0
 * at once with c->command set to TDM_CMD_HELP / TDM_CMD_VERSION and nothing
 * else filled.
 *
 * Does not look at the file system beyond reading the INI file (see
 * tdm__config_check_dirs).
 */
int tdm__config_parse(tdm_config_t *c, int argc, char **argv, char *err,
                      size_t errcap);

/*
 * run/once: check that every DIR exists and is a directory (following
 * symlinks). Returns 0, or TDM_EUSAGE with a message naming the first bad DIR
 * and why in `err`.
 */
int tdm__config_check_dirs(const tdm_config_t *c, char *err, size_t errcap);

/* Free everything `c` owns and zero it. Accepts a zeroed or failed config. */
void tdm__config_free(tdm_config_t *c);

/* The --help text (every command and option), static. */
const char *tdm__config_usage(void);

/* Verdicts of tdm__parse_u64. */
typedef enum num_result {
  NUM_OK = 0,
  NUM_SYNTAX,   /* not a number, or junk after it */
  NUM_NEGATIVE, /* starts with '-' */
  NUM_RANGE     /* over UINT64_MAX */
} num_result;

/*
 * Parse a decimal unsigned number, the whole of `s`: no sign, no spaces. With
 * `sizes`, one suffix K, M or G (either case, optionally followed by "iB")
 * multiplies by 1024, 1024^2 or 1024^3.
 */
num_result tdm__parse_u64(const char *s, int sizes, uint64_t *out);

/* "run", "once", ... for messages; "" for NONE/HELP/VERSION. */
const char *tdm__config_command_name(tdm_command_t cmd);

/* ---- status.c (the command's side; the work is watcher/status.h) ------- */

/*
 * `tidemark status`: open c->state_dir read-only (works while a writer runs),
 * print every tracked file as a table on `out`, or as one JSON object when
 * c->json. Messages go to stderr. Returns the exit status: 0, or 1 (no state
 * in the directory, corrupt store; the message names the directory).
 */
int tdm__status_run(const tdm_config_t *c, FILE *out);

/*
 * `tidemark reset`: open c->state_dir as the writer and forget every file
 * (no PATHs) or every file at or under each PATH, in one transaction. Prints
 * "reset: forgot N files" on `out`. Returns the exit status: 0; 1 when the
 * store cannot be opened (e.g. another tidemark holds it) or written, or a
 * PATH matched nothing (the others are still reset).
 */
int tdm__status_reset(const tdm_config_t *c, FILE *out);

/* ---- top.c ------------------------------------------------------------- */

/*
 * `tidemark top`: a live view of the instance whose state is c->state_dir
 * (read-only) and, with c->metrics, whose metrics endpoint that is; a plain
 * snapshot when stdout or stdin is not a terminal, or with --once. Returns
 * the exit status: 0; 1 when the store cannot be read (said, naming the
 * directory), or --once/a snapshot could not reach --metrics (said).
 */
int tdm__top_run(const tdm_config_t *c);

#endif /* TDM_CONFIG_H */
