/*
 * config.c: the command line and the INI file of the `tidemark` command
 * (config.h says the rules: precedence, the INI syntax, what is an error).
 *
 * Both sources are parsed into a `layer` (what was given, and a bit per option
 * saying it was given); the command line's layer is then laid over the file's,
 * over the defaults, into the tdm_config_t. Every message names the option or
 * FILE:LINE and key it concerns, and quotes the value.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>


/* Every option, the index of `opts` below. */
enum {
  OPT_STATE,
  OPT_MODE,
  OPT_PROCESSOR,
  OPT_INCLUDE,
  OPT_EXCLUDE,
  OPT_NO_RECURSIVE,
  OPT_FROM_END,
  OPT_RECORDS,
  OPT_MAX_RECORD,
  OPT_SETTLE_MS,
  OPT_CHECKPOINT_MS,
  OPT_POLL_MS,
  OPT_PLUGIN_DIR,
  OPT_RETRY_TIMEOUT_MS,
  OPT_DECOMPRESS,
  OPT_MULTILINE_START,
  OPT_MULTILINE_TIMEOUT_MS,
  OPT_ON_DONE,
  OPT_ON_FAILED,
  OPT_DEAD_LETTER,
  OPT_MAX_TRIES,
  OPT_FORGET_AFTER,
  OPT_VERBOSE,
  OPT_QUIET,
  OPT_JSON,
  OPT_SUMMARY,
  OPT_CONFIG,
  OPT_DIR,
  OPT_METRICS,
  OPT_METRICS_FILE,
  OPT_PROGRESS,
  OPT_NO_PROGRESS,
  OPT_INTERVAL_MS,
  OPT_ONCE,
  OPT_HELP,
  OPT_VERSION,
  OPT_COUNT_
};

/* Which commands an option applies to (bit per tdm_command_t). */
#define CMD_BIT(c) (1u << (c))
#define FOR_WATCH (CMD_BIT(TDM_CMD_RUN) | CMD_BIT(TDM_CMD_ONCE))
#define FOR_ALL                                                         \
  (FOR_WATCH | CMD_BIT(TDM_CMD_STATUS) | CMD_BIT(TDM_CMD_RESET) |       \
   CMD_BIT(TDM_CMD_PROCESSORS) | CMD_BIT(TDM_CMD_TOP))

typedef struct optdef {
  const char *name;   /* long option, and the INI key */
  int short_name;     /* 0: long only */
  int has_arg;        /* on the command line: no_argument / required_argument */
  unsigned commands;  /* FOR_* */
  int ini;            /* may be set in the INI file */
} optdef;

static const optdef opts[OPT_COUNT_] = {
  [OPT_STATE] = {"state", 's', required_argument,
                 FOR_WATCH | CMD_BIT(TDM_CMD_STATUS) | CMD_BIT(TDM_CMD_RESET) |
                     CMD_BIT(TDM_CMD_TOP),
                 1},
  [OPT_MODE] = {"mode", 'm', required_argument, FOR_WATCH, 1},
  [OPT_PROCESSOR] = {"processor", 'p', required_argument, FOR_WATCH, 1},
  [OPT_INCLUDE] = {"include", 'i', required_argument, FOR_WATCH, 1},
  [OPT_EXCLUDE] = {"exclude", 'x', required_argument, FOR_WATCH, 1},
  [OPT_NO_RECURSIVE] = {"no-recursive", 0, no_argument, FOR_WATCH, 1},
  [OPT_FROM_END] = {"from-end", 0, no_argument, FOR_WATCH, 1},
  [OPT_RECORDS] = {"records", 0, required_argument, FOR_WATCH, 1},
  [OPT_MAX_RECORD] = {"max-record", 0, required_argument, FOR_WATCH, 1},
  [OPT_SETTLE_MS] = {"settle-ms", 0, required_argument, FOR_WATCH, 1},
  [OPT_CHECKPOINT_MS] = {"checkpoint-ms", 0, required_argument, FOR_WATCH, 1},
  [OPT_POLL_MS] = {"poll-ms", 0, required_argument, FOR_WATCH, 1},
  [OPT_PLUGIN_DIR] = {"plugin-dir", 0, required_argument,
                      FOR_WATCH | CMD_BIT(TDM_CMD_PROCESSORS), 1},
  [OPT_RETRY_TIMEOUT_MS] = {"retry-timeout-ms", 0, required_argument,
                            FOR_WATCH, 1},
  [OPT_DECOMPRESS] = {"decompress", 0, required_argument, FOR_WATCH, 1},
  [OPT_MULTILINE_START] = {"multiline-start", 0, required_argument, FOR_WATCH, 1},
  [OPT_MULTILINE_TIMEOUT_MS] = {"multiline-timeout-ms", 0, required_argument,
                                FOR_WATCH, 1},
  [OPT_ON_DONE] = {"on-done", 0, required_argument, FOR_WATCH, 1},
  [OPT_ON_FAILED] = {"on-failed", 0, required_argument, FOR_WATCH, 1},
  [OPT_DEAD_LETTER] = {"dead-letter", 0, required_argument, FOR_WATCH, 1},
  [OPT_MAX_TRIES] = {"max-tries", 0, required_argument, FOR_WATCH, 1},
  [OPT_FORGET_AFTER] = {"forget-after", 0, required_argument, FOR_WATCH, 1},
  [OPT_VERBOSE] = {"verbose", 'v', no_argument, FOR_ALL, 1},
  [OPT_QUIET] = {"quiet", 'q', no_argument, FOR_ALL, 1},
  [OPT_JSON] = {"json", 0, no_argument, CMD_BIT(TDM_CMD_STATUS), 0},
  [OPT_SUMMARY] = {"summary", 0, no_argument, CMD_BIT(TDM_CMD_STATUS), 0},
  [OPT_CONFIG] = {"config", 'c', required_argument, FOR_ALL, 0},
  [OPT_HELP] = {"help", 'h', no_argument, FOR_ALL, 0},
  [OPT_VERSION] = {"version", 'V', no_argument, FOR_ALL, 0},
  /* INI only: the DIR operands of run/once. */
  [OPT_DIR] = {"dir", 0, -1, FOR_WATCH, 1},
  [OPT_METRICS] = {"metrics", 0, required_argument,
                   CMD_BIT(TDM_CMD_RUN) | CMD_BIT(TDM_CMD_TOP), 1},
  [OPT_METRICS_FILE] = {"metrics-file", 0, required_argument, FOR_WATCH, 1},
  [OPT_PROGRESS] = {"progress", 0, no_argument, FOR_WATCH, 1},
  [OPT_NO_PROGRESS] = {"no-progress", 0, no_argument, FOR_WATCH, 0},
  [OPT_INTERVAL_MS] = {"interval-ms", 0, required_argument,
                       CMD_BIT(TDM_CMD_TOP), 0},
  [OPT_ONCE] = {"once", 0, no_argument, CMD_BIT(TDM_CMD_TOP), 0},
};

/* getopt_long's `val` for a long-only option. */
#define LONG_ONLY_BASE 256

static const char *const command_names[] = {
  [TDM_CMD_NONE] = "",         [TDM_CMD_RUN] = "run",
  [TDM_CMD_ONCE] = "once",     [TDM_CMD_STATUS] = "status",
  [TDM_CMD_RESET] = "reset",   [TDM_CMD_PROCESSORS] = "processors",
  [TDM_CMD_TOP] = "top",
  [TDM_CMD_HELP] = "",         [TDM_CMD_VERSION] = "",
};

/* A growable array of owned strings. */
typedef struct strlist {
  char **v;
  size_t n;
} strlist;

/* What one source (command line or INI file) said. */
typedef struct layer {
  unsigned long set; /* 1ul << OPT_x for each option given; -q sets VERBOSE */
  char *state_dir;
  char *plugin_dir;
  tdm_mode_t mode;
  tdm_records_t records;
  int no_recursive;
  int from_end;
  int verbosity;
  int json;
  int summary;
  int progress;      /* --progress 1, --no-progress 0 */
  uint32_t interval_ms;
  int once;
  char *metrics;
  char *metrics_file;
  uint64_t max_record;
  uint32_t settle_ms;
  uint32_t checkpoint_ms;
  uint32_t poll_ms;
  uint32_t retry_timeout_ms;
  strlist processors;
  strlist processor_origins; /* parallel: "FILE:LINE", or "" (command line) */
  strlist include;
  strlist exclude;
  strlist dirs;      /* INI `dir` keys */
  tdm_decompress_t decompress;
  char *multiline_start;
  uint32_t multiline_timeout_ms;
  char *on_done;
  char *on_failed;
  char *dead_letter;
  uint32_t max_tries;
  uint64_t forget_after_ms;
  /* INI only: where each value tdm_open checks was written (parallel:
     "FILE:LINE: key", the option id as text, the value). */
  strlist lib_where;
  strlist lib_id;
  strlist lib_value;
  int line[OPT_COUNT_]; /* INI: the line that set each key (0: not there) */
} layer;

#define IS_SET(l, id) (((l)->set & (1ul << (id))) != 0)

/* ---- small helpers ------------------------------------------------------ */

/* Write a message into err (always NUL-terminated). Returns `rc`. */
__attribute__((format(printf, 4, 5)))
static int fail(int rc, char *err, size_t cap, const char *fmt, ...) {
  va_list ap;
  if (cap == 0)
    return rc;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
  return rc;
}

/* `s` quoted for a message (control bytes escaped), in `buf`. */
static const char *q(const char *s, char *buf, size_t cap) {
  return tdm_quote(s, buf, cap);
}

/* Append a copy of `s`. 0 or -ENOMEM. */
static int strlist_push(strlist *l, const char *s) {
  char **v;
  char *copy = strdup(s);
  if (copy == NULL)
    return -ENOMEM;
  v = realloc(l->v, (l->n + 1) * sizeof(*v));
  if (v == NULL) {
    free(copy);
    return -ENOMEM;
  }
  v[l->n++] = copy;
  l->v = v;
  return 0;
}

static void strlist_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static void layer_free(layer *l) {
  free(l->state_dir);
  free(l->plugin_dir);
  free(l->multiline_start);
  free(l->on_done);
  free(l->on_failed);
  free(l->dead_letter);
  strlist_free(&l->processors);
  strlist_free(&l->processor_origins);
  strlist_free(&l->include);
  strlist_free(&l->exclude);
  strlist_free(&l->dirs);
  strlist_free(&l->lib_where);
  strlist_free(&l->lib_id);
  strlist_free(&l->lib_value);
  free(l->metrics);
  free(l->metrics_file);
  memset(l, 0, sizeof(*l));
}

/* Replace *dst by a copy of `s`. 0 or -ENOMEM. */
static int set_string(char **dst, const char *s) {
  char *copy = strdup(s);
  if (copy == NULL)
    return -ENOMEM;
  free(*dst);
  *dst = copy;
  return 0;
}

/*
 * Parse a decimal unsigned number, the whole of `s`: no sign, no spaces. With
 * `sizes`, one suffix K, M or G (either case, optionally followed by "iB")
 * multiplies by 1024, 1024^2 or 1024^3. Cannot fail otherwise.
 */
num_result tdm__parse_u64(const char *s, int sizes, uint64_t *out) {
  unsigned long long v;
  uint64_t mult = 1;
  char *end;

  if (s[0] == '-')
    return NUM_NEGATIVE;
  if (s[0] < '0' || s[0] > '9')
    return NUM_SYNTAX;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno == ERANGE)
    return NUM_RANGE;
  if (sizes && *end != '\0') {
    switch (*end) {
    case 'k': case 'K': mult = 1ull << 10; break;
    case 'm': case 'M': mult = 1ull << 20; break;
    case 'g': case 'G': mult = 1ull << 30; break;
    default: return NUM_SYNTAX;
    }
    end++;
    if (strcmp(end, "iB") == 0)
      end += 2;
  }
  if (*end != '\0')
    return NUM_SYNTAX;
  if (v > UINT64_MAX / mult)
    return NUM_RANGE;
  *out = (uint64_t)v * mult;
  return NUM_OK;
}

/* Parse a boolean of the INI file. 0 and *out set, or -1. */
static int parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -1;
}

/*
 * The message for parse_u64's verdict `r` on `value` of option `who` (`max`:
 * the largest value allowed). Returns 0 for NUM_OK, else TDM_EUSAGE.
 */
static int number_error(num_result r, const char *who, const char *value,
                        uint64_t max, char *err, size_t cap) {
  char qb[256];
  switch (r) {
  case NUM_OK:
    return 0;
  case NUM_NEGATIVE:
    return fail(TDM_EUSAGE, err, cap, "%s: '%s' is negative", who,
                q(value, qb, sizeof(qb)));
  case NUM_RANGE:
    return fail(TDM_EUSAGE, err, cap, "%s: '%s' is too large (at most %llu)",
                who, q(value, qb, sizeof(qb)), (unsigned long long)max);
  case NUM_SYNTAX:
  default:
    return fail(TDM_EUSAGE, err, cap, "%s: '%s' is not a number", who,
                q(value, qb, sizeof(qb)));
  }
}

/* Parse a millisecond option into a uint32_t. 0 or TDM_EUSAGE. */
static int parse_ms(const char *who, const char *value, uint32_t *out,
                    char *err, size_t cap) {
  uint64_t v = 0;
  num_result r = tdm__parse_u64(value, 0, &v);
  if (r == NUM_OK && v > UINT32_MAX)
    r = NUM_RANGE;
  if (r != NUM_OK)
    return number_error(r, who, value, UINT32_MAX, err, cap);
  *out = (uint32_t)v;
  return 0;
}

/*
 * Parse a duration: a number and a unit (ms, s, m, h, d or w: milliseconds
 * to weeks), 0, or `never` (TDM_FORGET_NEVER), into milliseconds.
 * 0 or TDM_EUSAGE.
 */
static int parse_duration(const char *who, const char *value, uint64_t *out,
                          char *err, size_t cap) {
  static const struct { const char *unit; uint64_t ms; } units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
    {"d", 86400000}, {"w", 604800000},
  };
  unsigned long long v;
  char qb[256], *end;

  if (strcmp(value, "never") == 0) {
    *out = TDM_FORGET_NEVER;
    return 0;
  }
  if (value[0] == '-')
    return fail(TDM_EUSAGE, err, cap, "%s: '%s' is negative", who,
                q(value, qb, sizeof(qb)));
  if (value[0] < '0' || value[0] > '9')
    goto bad;
  errno = 0;
  v = strtoull(value, &end, 10);
  if (errno == ERANGE)
    goto range;
  if (*end == '\0' && v == 0) {
    *out = 0;
    return 0;
  }
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (strcmp(end, units[i].unit) == 0) {
      if (v > (TDM_FORGET_NEVER - 1) / units[i].ms)
        goto range;
      *out = (uint64_t)v * units[i].ms;
      return 0;
    }
bad:
  return fail(TDM_EUSAGE, err, cap, "%s: '%s' is not a duration (a number "
              "and a unit: ms, s, m, h, d or w, e.g. 30d; or 0, or never)",
              who, q(value, qb, sizeof(qb)));
range:
  return fail(TDM_EUSAGE, err, cap, "%s: '%s' is too long (or use never)",
              who, q(value, qb, sizeof(qb)));
}

/*
 * Set option `id` in layer `l` from `value` (NULL for a flag given on the
 * command line). `who` names the option in messages: "option --mode" or
 * "FILE:LINE: mode". `from_ini` selects the INI syntax of flags (booleans)
 * and of verbose (a level). Returns 0, TDM_EUSAGE or -ENOMEM, with the
 * message in err.
 */
static int layer_set(layer *l, int id, const char *value, const char *who,
                     int from_ini, char *err, size_t cap) {
  char qb[256];
  uint64_t v = 0;
  int b = 0;
  int rc = 0;

  if (from_ini && value != NULL &&
      (id == OPT_ON_DONE || id == OPT_ON_FAILED || id == OPT_INCLUDE ||
       id == OPT_EXCLUDE || id == OPT_METRICS || id == OPT_METRICS_FILE)) {
    char idtext[16];
    snprintf(idtext, sizeof(idtext), "%d", id);
    if (strlist_push(&l->lib_where, who) != 0 ||
        strlist_push(&l->lib_id, idtext) != 0 ||
        strlist_push(&l->lib_value, value) != 0)
      return fail(-ENOMEM, err, cap, "out of memory");
  }

  if (value != NULL && value[0] == '\0')
    return fail(TDM_EUSAGE, err, cap, "%s: the value is empty", who);
  if (from_ini &&
      (id == OPT_NO_RECURSIVE || id == OPT_FROM_END || id == OPT_QUIET ||
       id == OPT_PROGRESS) &&
      parse_bool(value, &b) != 0)
    return fail(TDM_EUSAGE, err, cap, "%s: '%s' is not true or false", who,
                q(value, qb, sizeof(qb)));

  switch (id) {
  case OPT_STATE:
    rc = set_string(&l->state_dir, value);
    break;
  case OPT_PLUGIN_DIR:
    rc = set_string(&l->plugin_dir, value);
    break;
  case OPT_MODE:
    if (strcmp(value, "tail") == 0)
      l->mode = TDM_MODE_TAIL;
    else if (strcmp(value, "whole") == 0)
      l->mode = TDM_MODE_WHOLE;
    else
      return fail(TDM_EUSAGE, err, cap, "%s: '%s' is not tail or whole", who,
                  q(value, qb, sizeof(qb)));
    break;
  case OPT_RECORDS:
    if (strcmp(value, "lines") == 0)
      l->records = TDM_RECORDS_LINES;
    else if (strcmp(value, "bytes") == 0)
      l->records = TDM_RECORDS_BYTES;
    else
      return fail(TDM_EUSAGE, err, cap, "%s: '%s' is not lines or bytes", who,
                  q(value, qb, sizeof(qb)));
    break;
  case OPT_PROCESSOR: {
    /* Where it came from, for a refusal found later (unknown name, bad
       parameter): "FILE:LINE" of "FILE:LINE: processor". */
    char origin[512] = "";
    const char *colon = from_ini ? strrchr(who, ':') : NULL;
    if (colon != NULL)
      snprintf(origin, sizeof(origin), "%.*s", (int)(colon - who), who);
    rc = strlist_push(&l->processors, value);
    if (rc == 0 && (rc = strlist_push(&l->processor_origins, origin)) != 0)
      free(l->processors.v[--l->processors.n]);
    break;
  }
  case OPT_DECOMPRESS:
    if (strcmp(value, "auto") == 0)
      l->decompress = TDM_DECOMPRESS_AUTO;
    else if (strcmp(value, "never") == 0)
      l->decompress = TDM_DECOMPRESS_NEVER;
    else
      return fail(TDM_EUSAGE, err, cap, "%s: '%s' is not auto or never", who,
                  q(value, qb, sizeof(qb)));
    break;
  case OPT_MULTILINE_START: {
    regex_t re;
    char msg[128];
    int e = regcomp(&re, value, REG_EXTENDED | REG_NOSUB);
    if (e != 0) {
      regerror(e, &re, msg, sizeof(msg));
      return fail(TDM_EUSAGE, err, cap, "%s: '%s' is not a valid extended "
                  "regular expression: %s", who, q(value, qb, sizeof(qb)), msg);
    }
    regfree(&re);
    rc = set_string(&l->multiline_start, value);
    break;
  }
  case OPT_MULTILINE_TIMEOUT_MS:
    rc = parse_ms(who, value, &l->multiline_timeout_ms, err, cap);
    break;
  /* --on-done, --on-failed, the globs and --metrics are checked by
     tdm_open, once, naming the option; from the INI file, where each was
     written is kept, so a refused one can be found (tdm_config_t). */
  case OPT_ON_DONE:
    rc = set_string(&l->on_done, value);
    break;
  case OPT_ON_FAILED:
    rc = set_string(&l->on_failed, value);
    break;
  case OPT_INCLUDE:
  case OPT_EXCLUDE:
    rc = strlist_push(id == OPT_INCLUDE ? &l->include : &l->exclude, value);
    break;
  case OPT_NO_RECURSIVE:
    l->no_recursive = from_ini ? b : 1;
    break;
  case OPT_FROM_END:
    l->from_end = from_ini ? b : 1;
    break;
  case OPT_MAX_RECORD: {
    num_result r = tdm__parse_u64(value, 1, &v);
    if (r != NUM_OK)
      return number_error(r, who, value, TDM_MAX_RECORD_MAX, err, cap);
    if (v < TDM_MAX_RECORD_MIN || v > TDM_MAX_RECORD_MAX)
      return fail(TDM_EUSAGE, err, cap,
                  "%s: '%s' is out of range (%u to %uM bytes)", who,
                  q(value, qb, sizeof(qb)), TDM_MAX_RECORD_MIN,
                  TDM_MAX_RECORD_MAX >> 20);
    l->max_record = v;
    break;
  }
  case OPT_SETTLE_MS:
    rc = parse_ms(who, value, &l->settle_ms, err, cap);
    break;
  case OPT_CHECKPOINT_MS:
    rc = parse_ms(who, value, &l->checkpoint_ms, err, cap);
    break;
  case OPT_POLL_MS:
    rc = parse_ms(who, value, &l->poll_ms, err, cap);
    break;
  case OPT_RETRY_TIMEOUT_MS:
    rc = parse_ms(who, value, &l->retry_timeout_ms, err, cap);
    break;
  case OPT_DEAD_LETTER:
    rc = set_string(&l->dead_letter, value);
    break;
  case OPT_MAX_TRIES: {
    num_result r = tdm__parse_u64(value, 0, &v);
    if (r != NUM_OK || v < 1 || v > 1000000)
      return fail(TDM_EUSAGE, err, cap, "%s: '%s' is not a number of tries "
                  "from 1 to 1000000", who, q(value, qb, sizeof(qb)));
    l->max_tries = (uint32_t)v;
    break;
  }
  case OPT_FORGET_AFTER:
    rc = parse_duration(who, value, &l->forget_after_ms, err, cap);
    break;
  case OPT_VERBOSE:
    if (from_ini) {
      num_result r = tdm__parse_u64(value, 0, &v);
      if (r != NUM_OK || v > 2)
        return fail(TDM_EUSAGE, err, cap, "%s: '%s' is not 0, 1 or 2", who,
                    q(value, qb, sizeof(qb)));
      l->verbosity = (int)v;
    } else {
      l->verbosity = (l->verbosity < 0 ? 0 : l->verbosity) + 1;
    }
    l->set |= 1ul << OPT_VERBOSE;
    return 0;
  case OPT_QUIET:
    if (from_ini && !b)
      l->verbosity = l->verbosity < 0 ? 0 : l->verbosity;
    else
      l->verbosity = -1;
    l->set |= 1ul << OPT_VERBOSE; /* one setting: how much to log */
    return 0;
  case OPT_JSON:
    l->json = 1;
    break;
  case OPT_SUMMARY:
    l->summary = 1;
    break;
  case OPT_DIR:
    rc = strlist_push(&l->dirs, value);
    break;
  case OPT_METRICS:
    rc = set_string(&l->metrics, value);
    break;
  case OPT_METRICS_FILE:
    rc = set_string(&l->metrics_file, value);
    break;
  case OPT_PROGRESS:
    l->progress = from_ini ? b : 1;
    break;
  case OPT_NO_PROGRESS:
    l->progress = 0;
    l->set |= 1ul << OPT_PROGRESS; /* one setting */
    return 0;
  case OPT_INTERVAL_MS:
    rc = parse_ms(who, value, &l->interval_ms, err, cap);
    if (rc == 0 && (l->interval_ms < 100 || l->interval_ms > 3600000))
      return fail(TDM_EUSAGE, err, cap,
                  "%s: '%s' is out of range (100 to 3600000 ms)", who,
                  q(value, qb, sizeof(qb)));
    break;
  case OPT_ONCE:
    l->once = 1;
    break;
  default:
    return fail(TDM_EUSAGE, err, cap, "%s: not settable here", who);
  }
  if (rc == -ENOMEM)
    return fail(rc, err, cap, "out of memory");
  if (rc != 0)
    return rc;
  l->set |= 1ul << id;
  return 0;
}

/* ---- INI file ------------------------------------------------------------ */

/*
 * The INI file is read here, line by line with getline(), so a line may be of
 * any length (Debian's inih is built with a fixed 200-byte line buffer, and
 * a long exec:cmd= must fit). The grammar is inih's defaults, which the
 * documentation describes:
 *  - a UTF-8 byte order mark at the start is skipped; blanks around a line,
 *    a key and a value are not part of them; "\r\n" ends a line as well;
 *  - an empty line, or one starting with ';' or '#', is a comment;
 *  - "[name]" starts a section: only [tidemark] is known (and the part
 *    before any section);
 *  - "key = value" (or "key: value"); " ;" after blank starts a comment;
 *  - anything else is a syntax error. An indented line is a key, never a
 *    continuation of the value before it.
 * Every message names FILE:LINE. A scalar key given twice is an error naming
 * both lines; processor, include, exclude and dir accumulate.
 */

typedef struct ini_ctx {
  const char *file;          /* as given with -c */
  int line;
  int first[OPT_COUNT_];     /* line where each key was first given, or 0 */
  layer *l;
  char *err;
  size_t cap;
} ini_ctx;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Trim blanks (and a line's \r\n) from both ends of [*s, *e). */
static void trim(char **s, char **e) {
  while (*s < *e && is_blank(**s))
    (*s)++;
  while (*e > *s && (is_blank((*e)[-1]) || (*e)[-1] == '\n' || (*e)[-1] == '\r'))
    (*e)--;
}

/* One `key = value` (both NUL-terminated, trimmed). 0 or the error. */
static int ini_key(ini_ctx *x, const char *name, const char *value) {
  char qb[256];
  char who[512];
  int id;

  for (id = 0; id < OPT_COUNT_; id++)
    if (opts[id].ini && strcmp(opts[id].name, name) == 0)
      break;
  if (id == OPT_COUNT_)
    return fail(TDM_EUSAGE, x->err, x->cap, "%s:%d: unknown key '%s'", x->file,
                x->line, q(name, qb, sizeof(qb)));
  if (id != OPT_PROCESSOR && id != OPT_INCLUDE && id != OPT_EXCLUDE &&
      id != OPT_DIR) {
    if (x->first[id] != 0)
      return fail(TDM_EUSAGE, x->err, x->cap,
                  "%s:%d: '%s' is given a second time (first at %s:%d); only "
                  "processor, include, exclude and dir may repeat",
                  x->file, x->line, name, x->file, x->first[id]);
    x->first[id] = x->line;
  }
  snprintf(who, sizeof(who), "%s:%d: %s", x->file, x->line, name);
  x->l->line[id] = x->line;
  return layer_set(x->l, id, value, who, 1, x->err, x->cap);
}

/* One line (`s`, `n` bytes with its newline if any). 0 or the error. */
static int ini_line(ini_ctx *x, char *s, size_t n) {
  char qb[256];
  char *e = s + n, *sep, *v, *ve;

  if (x->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
    s += 3;
  trim(&s, &e);
  if (s == e || *s == ';' || *s == '#')
    return 0;
  *e = '\0';
  if (*s == '[') {
    char *close = strchr(s, ']');
    if (close == NULL)
      return fail(TDM_EUSAGE, x->err, x->cap,
                  "%s:%d: syntax error (expected 'key = value' or "
                  "'[tidemark]')",
                  x->file, x->line);
    *close = '\0';
    if (strcmp(s + 1, "tidemark") != 0)
      return fail(TDM_EUSAGE, x->err, x->cap,
                  "%s:%d: unknown section [%s] (options go before any "
                  "section or in [tidemark])",
                  x->file, x->line, q(s + 1, qb, sizeof(qb)));
    return 0;
  }
  sep = strpbrk(s, "=:");
  if (sep == NULL)
    return fail(TDM_EUSAGE, x->err, x->cap,
                "%s:%d: syntax error (expected 'key = value' or '[tidemark]')",
                x->file, x->line);
  /* The value ends at an inline comment: ';' after a blank. */
  v = sep + 1;
  for (ve = v; *ve != '\0'; ve++)
    if (*ve == ';' && ve > v && is_blank(ve[-1]))
      break;
  trim(&v, &ve);
  *ve = '\0';
  e = sep;
  trim(&s, &e);
  *e = '\0';
  return ini_key(x, s, v);
}

/* Read the INI file `file` into `l`. 0, TDM_EUSAGE or -ENOMEM. */
static int read_ini(const char *file, layer *l, char *err, size_t cap) {
  ini_ctx x;
  char *buf = NULL;
  size_t bufcap = 0;
  ssize_t n;
  FILE *f;
  int rc = 0;

  memset(&x, 0, sizeof(x));
  x.file = file;
  x.l = l;
  x.err = err;
  x.cap = cap;
  f = fopen(file, "r");
  if (f == NULL)
    return fail(TDM_EUSAGE, err, cap, "cannot read config file '%s': %s",
                file, strerror(errno));
  while (rc == 0 && (n = getline(&buf, &bufcap, f)) >= 0) {
    x.line++;
    if ((size_t)n != strlen(buf))
      rc = fail(TDM_EUSAGE, err, cap, "%s:%d: NUL byte in the line", file,
                x.line);
    else
      rc = ini_line(&x, buf, (size_t)n);
  }
  if (rc == 0 && ferror(f))
    rc = fail(errno == ENOMEM ? -ENOMEM : TDM_EUSAGE, err, cap,
              "%s:%d: cannot read config file: %s", file, x.line + 1,
              strerror(errno));
  free(buf);
  fclose(f);
  return rc;
}

/* ---- command line ------------------------------------------------------- */

/* Option id of getopt_long's `val`, or -1. */
static int opt_of_val(int val) {
  if (val >= LONG_ONLY_BASE && val < LONG_ONLY_BASE + OPT_COUNT_)
    return val - LONG_ONLY_BASE;
  for (int id = 0; id < OPT_COUNT_; id++)
    if (opts[id].short_name != 0 && opts[id].short_name == val)
      return id;
  return -1;
}

/*
 * How the user spelled the option whose token is `tok` (an argv element) and
 * whose short letter is `short_name`: "--name" for a long option (without
 * "=value"), "-x" for a short one.
 */
static void spelled(const char *tok, int short_name, char *buf, size_t cap) {
  if (tok != NULL && strncmp(tok, "--", 2) == 0) {
    size_t n = strcspn(tok, "=");
    if (n >= cap)
      n = cap - 1;
    memcpy(buf, tok, n);
    buf[n] = '\0';
  } else {
    snprintf(buf, cap, "-%c", short_name);
  }
}

/*
 * Parse the options and operands of one command line (argv[0] is the
 * command, or the program when no command came first) into `l`, `operands`,
 * and c->command / c->config_file. Every option is looked at even after an
 * error, so that --help or --version anywhere wins; otherwise the first error
 * is returned.
 */
/* getopt_long's tables from opts[]: a long option for each (INI-only ones
   under a name getopt never matches) and the short letters. */
static void getopt_tables(struct option longopts[OPT_COUNT_ + 1],
                          char shortopts[2 * OPT_COUNT_ + 2]) {
  size_t k = 0;

  shortopts[k++] = ':';
  for (int id = 0; id < OPT_COUNT_; id++) {
    if (opts[id].has_arg < 0) { /* INI only: a name getopt never matches */
      longopts[id].name = "\x01";
      longopts[id].has_arg = no_argument;
      longopts[id].flag = NULL;
      longopts[id].val = LONG_ONLY_BASE + id;
      continue;
    }
    longopts[id].name = opts[id].name;
    longopts[id].has_arg = opts[id].has_arg;
    longopts[id].flag = NULL;
    longopts[id].val = opts[id].short_name != 0 ? opts[id].short_name
                                                : LONG_ONLY_BASE + id;
    if (opts[id].short_name != 0) {
      shortopts[k++] = (char)opts[id].short_name;
      if (opts[id].has_arg == required_argument)
        shortopts[k++] = ':';
    }
  }
  memset(&longopts[OPT_COUNT_], 0, sizeof(longopts[0]));
  shortopts[k] = '\0';
}

/* getopt_long answered `val` ('?' or ':') at token `tok`: say what is
   wrong. Returns TDM_EUSAGE. */
static int getopt_error(int val, const char *tok, char *err, size_t cap) {
  int known = opt_of_val(optopt);
  char name[128];
  char qb[256];

  if (val == ':') {
    spelled(tok, optopt, name, sizeof(name));
    return fail(TDM_EUSAGE, err, cap, "option '%s' requires an argument",
                name);
  }
  if (known >= 0 && opts[known].has_arg == no_argument && tok != NULL &&
      strncmp(tok, "--", 2) == 0) {
    spelled(tok, optopt, name, sizeof(name));
    return fail(TDM_EUSAGE, err, cap, "option '%s' does not take a value",
                name);
  }
  if (optopt != 0)
    return fail(TDM_EUSAGE, err, cap, "unknown option '-%c'", optopt);
  spelled(tok, 0, name, sizeof(name));
  return fail(TDM_EUSAGE, err, cap, "unknown or ambiguous option '%s'",
              q(name, qb, sizeof(qb)));
}

/* Option `id` (spelled long when longindex >= 0), its value in optarg, met
   on the command line of command `cmd`: into layer `l` (or c->config_file).
   Returns 0 or the error (message in err). */
static int argv_option(tdm_config_t *c, layer *l, tdm_command_t cmd, int id,
                       int longindex, char *err, size_t cap) {
  char name[128];
  char who[160];
  int r;

  if (longindex >= 0)
    snprintf(name, sizeof(name), "--%s", opts[id].name);
  else
    snprintf(name, sizeof(name), "-%c", opts[id].short_name);
  if (cmd == TDM_CMD_NONE)
    return 0; /* an error in parse_argv, unless --help/--version follows */
  if (!(opts[id].commands & CMD_BIT(cmd)))
    return fail(TDM_EUSAGE, err, cap, "option '%s' does not apply to '%s'",
                name, command_names[cmd]);
  if (id == OPT_CONFIG) {
    if (optarg[0] == '\0')
      return fail(TDM_EUSAGE, err, cap, "option '%s': the value is empty",
                  name);
    if ((r = set_string(&c->config_file, optarg)) != 0)
      return fail(r, err, cap, "out of memory");
    return 0;
  }
  snprintf(who, sizeof(who), "option '%s'", name);
  return layer_set(l, id, opts[id].has_arg == no_argument ? NULL : optarg, who,
                   0, err, cap);
}

static int parse_argv(tdm_config_t *c, layer *l, strlist *operands, int argc,
                      char **argv, char *err, size_t cap) {
  struct option longopts[OPT_COUNT_ + 1];
  char shortopts[2 * OPT_COUNT_ + 2];
  int rc = 0;
  tdm_command_t cmd = c->command;
  tdm_command_t action = TDM_CMD_NONE; /* help or version, if met */

  getopt_tables(longopts, shortopts);
  optind = 0; /* GNU: reinitialise fully */
  opterr = 0;
  for (;;) {
    int longindex = -1;
    int val = getopt_long(argc, argv, shortopts, longopts, &longindex);
    int id;

    if (val == -1)
      break;
    if (val == '?' || val == ':') {
      if (rc == 0) /* the token getopt just looked at, for the message */
        rc = getopt_error(val, optind - 1 < argc ? argv[optind - 1] : NULL,
                          err, cap);
      continue;
    }
    id = opt_of_val(val);
    if (id == OPT_HELP || id == OPT_VERSION) {
      if (action == TDM_CMD_NONE)
        action = id == OPT_HELP ? TDM_CMD_HELP : TDM_CMD_VERSION;
      continue;
    }
    if (rc != 0 || action != TDM_CMD_NONE)
      continue;
    rc = argv_option(c, l, cmd, id, longindex, err, cap);
  }

  if (action != TDM_CMD_NONE) {
    c->command = action;
    return 0;
  }
  if (rc != 0)
    return rc;
  if (cmd == TDM_CMD_NONE)
    return fail(TDM_EUSAGE, err, cap,
                "no command given (run, once, status, reset, processors or "
                "top comes first)");
  for (int i = optind; i < argc; i++)
    if ((rc = strlist_push(operands, argv[i])) != 0)
      return fail(rc, err, cap, "out of memory");
  return 0;
}

/* ---- putting it together ------------------------------------------------ */

/* Move list `from` into (*v, *n). */
static void take_list(strlist *from, char ***v, size_t *n) {
  *v = from->v;
  *n = from->n;
  from->v = NULL;
  from->n = 0;
}

/*
 * Lay the command line `cli` over the file's `file` over the defaults, into
 * `c`. Takes what it uses from the layers. 0 or -ENOMEM.
 */
/* The single values: the command line's where it set them, else the
   file's, else the defaults (c->options initialised). Strings are taken from
   the layer. Returns 0 or -ENOMEM. */
static int merge_values(tdm_config_t *c, layer *cli, layer *file) {
  tdm_options_t *o = &c->options;
  layer *top;
  const char *env;

#define PICK(id) (IS_SET(cli, id) ? cli : IS_SET(file, id) ? file : NULL)

  if ((top = PICK(OPT_STATE)) != NULL) {
    c->state_dir = top->state_dir;
    top->state_dir = NULL;
  } else {
    env = getenv("TIDEMARK_STATE");
    c->state_dir = strdup(env != NULL && env[0] != '\0' ? env : "./.tidemark");
    if (c->state_dir == NULL)
      return -ENOMEM;
  }
  if ((top = PICK(OPT_PLUGIN_DIR)) != NULL) {
    c->plugin_dir = top->plugin_dir;
    top->plugin_dir = NULL;
  }
  if ((top = PICK(OPT_MODE)) != NULL)
    o->mode = top->mode;
  if ((top = PICK(OPT_RECORDS)) != NULL)
    o->records = top->records;
  if ((top = PICK(OPT_NO_RECURSIVE)) != NULL)
    o->recursive = !top->no_recursive;
  if ((top = PICK(OPT_FROM_END)) != NULL)
    o->from_end = top->from_end;
  if ((top = PICK(OPT_MAX_RECORD)) != NULL)
    o->max_record = top->max_record;
  if ((top = PICK(OPT_SETTLE_MS)) != NULL)
    o->settle_ms = top->settle_ms;
  if ((top = PICK(OPT_CHECKPOINT_MS)) != NULL)
    o->checkpoint_ms = top->checkpoint_ms;
  if ((top = PICK(OPT_POLL_MS)) != NULL)
    o->poll_ms = top->poll_ms;
  if ((top = PICK(OPT_RETRY_TIMEOUT_MS)) != NULL)
    o->retry_timeout_ms = top->retry_timeout_ms;
  if ((top = PICK(OPT_DECOMPRESS)) != NULL)
    o->decompress = top->decompress;
  if ((top = PICK(OPT_MULTILINE_TIMEOUT_MS)) != NULL)
    o->multiline_timeout_ms = top->multiline_timeout_ms;
  if ((top = PICK(OPT_MULTILINE_START)) != NULL) {
    c->multiline_start = top->multiline_start;
    top->multiline_start = NULL;
  }
  if ((top = PICK(OPT_ON_DONE)) != NULL) {
    c->on_done = top->on_done;
    top->on_done = NULL;
  }
  if ((top = PICK(OPT_ON_FAILED)) != NULL) {
    c->on_failed = top->on_failed;
    top->on_failed = NULL;
  }
  if ((top = PICK(OPT_DEAD_LETTER)) != NULL) {
    c->dead_letter = top->dead_letter;
    top->dead_letter = NULL;
  }
  if ((top = PICK(OPT_MAX_TRIES)) != NULL)
    o->max_tries = top->max_tries;
  if ((top = PICK(OPT_FORGET_AFTER)) != NULL)
    o->forget_after_ms = top->forget_after_ms;
  if ((top = PICK(OPT_VERBOSE)) != NULL)
    c->verbosity = top->verbosity;
  c->progress = (top = PICK(OPT_PROGRESS)) != NULL ? top->progress : -1;
  c->interval_ms = IS_SET(cli, OPT_INTERVAL_MS) ? cli->interval_ms : 1000;
  c->top_once = cli->once;
  if ((top = PICK(OPT_METRICS)) != NULL &&
      (c->command == TDM_CMD_RUN || c->command == TDM_CMD_TOP)) {
    c->metrics = top->metrics;
    top->metrics = NULL;
  }
  if ((top = PICK(OPT_METRICS_FILE)) != NULL) {
    c->metrics_file = top->metrics_file;
    top->metrics_file = NULL;
  }
  c->json = cli->json;
  c->summary = cli->summary;
#undef PICK
  return 0;
}

/* The lists: the command line's, if it gave any, replaces the file's; run
   and once without processors get stdout. Returns 0 or -ENOMEM. */
static int merge_lists(tdm_config_t *c, layer *cli, layer *file) {
  layer *from = cli->processors.n > 0 ? cli : file;
  size_t n_origins;

  take_list(&from->processors, &c->processors, &c->n_processors);
  take_list(&from->processor_origins, &c->processor_origins, &n_origins);
  take_list(cli->include.n > 0 ? &cli->include : &file->include, &c->include,
            &c->n_include);
  take_list(cli->exclude.n > 0 ? &cli->exclude : &file->exclude, &c->exclude,
            &c->n_exclude);
  if (c->n_processors == 0 &&
      (c->command == TDM_CMD_RUN || c->command == TDM_CMD_ONCE)) {
    strlist def = {NULL, 0}, org = {NULL, 0};
    if (strlist_push(&def, "stdout") != 0 || strlist_push(&org, "") != 0) {
      strlist_free(&def);
      return -ENOMEM;
    }
    free(c->processor_origins);
    take_list(&def, &c->processors, &c->n_processors);
    take_list(&org, &c->processor_origins, &n_origins);
  }
  return 0;
}

/* Where the INI file's values that tdm_open checks were written, for those
   the command line did not replace. Returns 0 or -ENOMEM. */
static int merge_lib_origins(tdm_config_t *c, const layer *cli,
                             const layer *file) {
  size_t n = file->lib_where.n;

  if (n == 0)
    return 0;
  if ((c->lib_origins = calloc(n, sizeof(*c->lib_origins))) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int id = atoi(file->lib_id.v[i]);
    tdm_config_origin_t *x = &c->lib_origins[c->n_lib_origins];
    if ((id == OPT_INCLUDE && cli->include.n > 0) ||
        (id == OPT_EXCLUDE && cli->exclude.n > 0) || IS_SET(cli, id))
      continue; /* the command line's replaced it */
    x->where = strdup(file->lib_where.v[i]);
    x->value = strdup(file->lib_value.v[i]);
    x->option = opts[id].name;
    c->n_lib_origins++;
    if (x->where == NULL || x->value == NULL)
      return -ENOMEM;
  }
  return 0;
}

/* How a message names option `id` as set in the layer that won: "--NAME" on
   the command line, "FILE:LINE: NAME" in the config file. */
static const char *origin(const tdm_config_t *c, const layer *cli,
                          const layer *file, int id, char *buf, size_t cap) {
  if (!IS_SET(cli, id) && IS_SET(file, id) && c->config_file != NULL)
    snprintf(buf, cap, "%s:%d: %s", c->config_file, file->line[id],
             opts[id].name);
  else
    snprintf(buf, cap, "--%s", opts[id].name);
  return buf;
}

/* Options that mean nothing together, refused (exit 2) rather than
   accepted and ignored. 0 or TDM_EUSAGE with the message in err. */
static int check_together(const tdm_config_t *c, const layer *cli,
                          const layer *file, char *err, size_t cap) {
  const tdm_options_t *o = &c->options;
  char who[600];

  if (c->command != TDM_CMD_RUN && c->command != TDM_CMD_ONCE)
    return 0;
  if (c->multiline_start != NULL && o->mode == TDM_MODE_WHOLE)
    return fail(TDM_EUSAGE, err, cap,
                "%s: only in tail mode (whole mode hands each file over "
                "whole, in chunks of whole lines)",
                origin(c, cli, file, OPT_MULTILINE_START, who, sizeof(who)));
  if (c->multiline_start == NULL &&
      (IS_SET(cli, OPT_MULTILINE_TIMEOUT_MS) ||
       IS_SET(file, OPT_MULTILINE_TIMEOUT_MS)))
    return fail(TDM_EUSAGE, err, cap,
                "%s: only with --multiline-start (it ends a multiline record "
                "that waits for its next start line)",
                origin(c, cli, file, OPT_MULTILINE_TIMEOUT_MS, who,
                       sizeof(who)));
  return 0;
}

static int merge(tdm_config_t *c, layer *cli, layer *file) {
  tdm_options_t *o = &c->options;
  int rc;

  tdm_options_init(o);
  if ((rc = merge_values(c, cli, file)) != 0 ||
      (rc = merge_lists(c, cli, file)) != 0 ||
      (rc = merge_lib_origins(c, cli, file)) != 0)
    return rc;
  o->state_dir = c->state_dir;
  o->plugin_dir = c->plugin_dir;
  o->multiline_start = c->multiline_start;
  o->on_done = c->on_done;
  o->on_failed = c->on_failed;
  o->dead_letter = c->dead_letter;
  o->include = (const char *const *)c->include;
  o->n_include = c->n_include;
  o->exclude = (const char *const *)c->exclude;
  o->n_exclude = c->n_exclude;
  o->log_level = c->verbosity < 0    ? TDM_LOG_ERROR
                 : c->verbosity == 0 ? TDM_LOG_WARN
                 : c->verbosity == 1 ? TDM_LOG_INFO
                                     : TDM_LOG_DEBUG;
  o->log_cb = NULL;
  o->log_arg = NULL;
  o->metrics_listen = c->metrics;
  o->metrics_file = c->metrics_file;
  return 0;
}

/* Check the operands of c->command; move them into `c`. */
static int take_operands(tdm_config_t *c, strlist *operands, layer *file,
                         char *err, size_t cap) {
  const char *name = command_names[c->command];
  char qb[256];

  for (size_t i = 0; i < operands->n; i++)
    if (operands->v[i][0] == '\0')
      return fail(TDM_EUSAGE, err, cap, "'%s': argument %zu is empty", name,
                  i + 1);
  switch (c->command) {
  case TDM_CMD_RUN:
  case TDM_CMD_ONCE:
    if (operands->n == 0)
      operands = &file->dirs; /* the file's `dir` keys, if any */
    if (operands->n == 0)
      return fail(TDM_EUSAGE, err, cap,
                  "'%s' needs at least one DIR to watch", name);
    take_list(operands, &c->dirs, &c->n_dirs);
    return 0;
  case TDM_CMD_RESET:
    take_list(operands, &c->paths, &c->n_paths);
    return 0;
  case TDM_CMD_STATUS:
  case TDM_CMD_TOP:
    if (operands->n > 0)
      return fail(TDM_EUSAGE, err, cap,
                  "'%s' takes no DIR or other argument (got '%s'); the "
                  "state directory is given with --state",
                  name, q(operands->v[0], qb, sizeof(qb)));
    return 0;
  default:
    if (operands->n > 0)
      return fail(TDM_EUSAGE, err, cap, "'%s' takes no argument (got '%s')",
                  name, q(operands->v[0], qb, sizeof(qb)));
    return 0;
  }
}

int tdm__config_parse(tdm_config_t *c, int argc, char **argv, char *err,
                      size_t errcap) {
  layer cli, file;
  strlist operands = {NULL, 0};
  char qb[256];
  int sub_argc = argc;
  char **sub_argv = argv;
  int rc;

  memset(c, 0, sizeof(*c));
  memset(&cli, 0, sizeof(cli));
  memset(&file, 0, sizeof(file));
  if (errcap > 0)
    err[0] = '\0';

  if (argc < 2)
    return fail(TDM_EUSAGE, err, errcap,
                "no command given (run, once, status, reset, processors or top)");
  for (int i = TDM_CMD_RUN; i <= TDM_CMD_TOP; i++)
    if (strcmp(argv[1], command_names[i]) == 0)
      c->command = (tdm_command_t)i;
  if (c->command != TDM_CMD_NONE) {
    sub_argc = argc - 1;
    sub_argv = argv + 1;
  } else if (argv[1][0] != '-') {
    return fail(TDM_EUSAGE, err, errcap,
                "unknown command '%s' (expected run, once, status, reset, "
                "processors or top)",
                q(argv[1], qb, sizeof(qb)));
  }

  rc = parse_argv(c, &cli, &operands, sub_argc, sub_argv, err, errcap);
  if (rc != 0)
    goto err;
  if (c->command == TDM_CMD_HELP || c->command == TDM_CMD_VERSION)
    goto out;
  if (c->config_file != NULL &&
      (rc = read_ini(c->config_file, &file, err, errcap)) != 0)
    goto err;
  if ((rc = take_operands(c, &operands, &file, err, errcap)) != 0)
    goto err;
  if ((rc = merge(c, &cli, &file)) != 0) {
    fail(rc, err, errcap, "out of memory");
    goto err;
  }
  if ((rc = check_together(c, &cli, &file, err, errcap)) != 0)
    goto err;

out:
  layer_free(&cli);
  layer_free(&file);
  strlist_free(&operands);
  return 0;

err:
  layer_free(&cli);
  layer_free(&file);
  strlist_free(&operands);
  tdm__config_free(c);
  return rc;
}

int tdm__config_check_dirs(const tdm_config_t *c, char *err, size_t errcap) {
  char qb[1024];
  struct stat st;

  for (size_t i = 0; i < c->n_dirs; i++) {
    const char *d = c->dirs[i];
    if (stat(d, &st) != 0)
      return fail(TDM_EUSAGE, err, errcap, "DIR '%s': %s", q(d, qb, sizeof(qb)),
                  strerror(errno));
    if (!S_ISDIR(st.st_mode))
      return fail(TDM_EUSAGE, err, errcap, "DIR '%s' is not a directory",
                  q(d, qb, sizeof(qb)));
  }
  return 0;
}

/* Free an array of owned strings. */
static void free_strv(char **v, size_t n) {
  strlist l = {v, n};
  strlist_free(&l);
}

void tdm__config_free(tdm_config_t *c) {
  for (size_t i = 0; i < c->n_lib_origins; i++) {
    free(c->lib_origins[i].where);
    free(c->lib_origins[i].value);
  }
  free(c->lib_origins);
  free_strv(c->dirs, c->n_dirs);
  free_strv(c->processors, c->n_processors);
  free_strv(c->processor_origins, c->processor_origins ? c->n_processors : 0);
  free_strv(c->paths, c->n_paths);
  free_strv(c->include, c->n_include);
  free_strv(c->exclude, c->n_exclude);
  free(c->config_file);
  free(c->state_dir);
  free(c->plugin_dir);
  free(c->metrics);
  free(c->metrics_file);
  free(c->multiline_start);
  free(c->on_done);
  free(c->on_failed);
  free(c->dead_letter);
  memset(c, 0, sizeof(*c));
}

const char *tdm__config_command_name(tdm_command_t cmd) {
  if ((unsigned)cmd >= sizeof(command_names) / sizeof(command_names[0]))
    return "";
  return command_names[cmd];
}

const char *tdm__config_usage(void) {
  return
"Usage:\n"
"  tidemark run    [OPTIONS] DIR...   watch DIRs; process new bytes until\n"
"                                     SIGINT/SIGTERM\n"
"  tidemark once   [OPTIONS] DIR...   process everything new since the last\n"
"                                     run, then exit\n"
"  tidemark status [--state DIR] [--json] [--summary]\n"
"                                     what is tracked, how far, what is\n"
"                                     pending\n"
"  tidemark reset  [--state DIR] [PATH...]  forget bookmarks (all, or for\n"
"                                           PATHs and what lies under them)\n"
"  tidemark processors [--plugin-dir DIR]   list built-in and plugin\n"
"                                           processors\n"
"  tidemark top [--state DIR] [--metrics ADDR:PORT] [--interval-ms N] [--once]\n"
"                                     live view of a running instance: files\n"
"                                     most behind, rates, processors\n"
"  tidemark --help | --version\n"
"\n"
"Options of run and once (--state also for status and reset, --plugin-dir\n"
"also for processors):\n"
"  -c, --config FILE      read options from an INI file; the command line\n"
"                         wins (every command)\n"
"  -s, --state DIR        state directory, an LMDB environment\n"
"                         (default: $TIDEMARK_STATE, else ./.tidemark)\n"
"  -m, --mode tail|whole  tail: deliver appended bytes of growing files;\n"
"                         whole: deliver each complete file once (default: tail)\n"
"  -p, --processor SPEC   NAME or NAME:key=value,key=value; repeatable: every\n"
"                         processor gets every chunk (default: stdout); e.g.\n"
"                         file:path=OUT, nats:url=URL,subject=S, or\n"
"                         postgres:conninfo=URI,table=T (rows in a\n"
"                         PostgreSQL table, exactly once; see `tidemark\n"
"                         processors`)\n"
"  -i, --include GLOB     only files matching GLOB, matched on the name (on\n"
"                         the path under DIR if GLOB has a '/'); repeatable\n"
"  -x, --exclude GLOB     skip files matching GLOB; repeatable\n"
"                         (default: every file but hidden ones)\n"
"      --no-recursive     only the top of each DIR (default: recursive)\n"
"      --from-end         tail mode: files first seen start at their current\n"
"                         end, like tail -f (default: from the start)\n"
"      --records lines|bytes\n"
"                         lines: a chunk holds whole lines only, a partial\n"
"                         last line waits for its newline; bytes: raw\n"
"                         (default: lines)\n"
"      --max-record BYTES longer lines are delivered in pieces and counted;\n"
"                         64 to 256M, suffixes K, M, G (default: 1M)\n"
"      --settle-ms N      whole mode: a file is complete once its size and\n"
"                         mtime held still N ms, or at once when renamed into\n"
"                         the tree (default: 1000)\n"
"      --checkpoint-ms N  longest time between durable checkpoints\n"
"                         (default: 1000)\n"
"      --poll-ms N        find changes by stat polling every N ms instead of\n"
"                         inotify, for network filesystems (default: off)\n"
"      --plugin-dir DIR   where .so processors are looked up (default: none)\n"
"      --retry-timeout-ms N\n"
"                         once: give up when a processor keeps asking to\n"
"                         retry (e.g. a full disk) for N ms; the bookmark is\n"
"                         kept, the exit status is 1; 0: never; run always\n"
"                         retries (default: 60000)\n"
"      --dead-letter FILE write each record a processor keeps refusing (or\n"
"                         rejects) to FILE as one JSON line and go on after\n"
"                         it, exactly once; without it the file stops there,\n"
"                         marked failed (default: off)\n"
"      --max-tries N      refusals of a record, offered alone, before it is\n"
"                         set aside (default: 5)\n"
"      --metrics ADDR:PORT\n"
"                         run: serve Prometheus metrics, GET /metrics over\n"
"                         HTTP, e.g. 127.0.0.1:9464, with a status page\n"
"                         (GET /) and GET /status.json (default: off);\n"
"                         top: read live rates from that endpoint\n"
"      --metrics-file PATH\n"
"                         write the same metrics to PATH atomically at each\n"
"                         checkpoint, for node_exporter (default: off)\n"
"      --progress, --no-progress\n"
"                         once: show a progress line on stderr, or never\n"
"                         (default: only when stderr is a terminal)\n"
"      --decompress auto|never\n"
"                         auto: gzip and zstd files (by their magic bytes)\n"
"                         are read uncompressed (default: auto)\n"
"      --multiline-start REGEX\n"
"                         a record starts at a line matching REGEX (POSIX\n"
"                         extended); the lines after it that do not match\n"
"                         belong to it (default: a record is a line)\n"
"      --multiline-timeout-ms N\n"
"                         a last record is complete after N ms without a new\n"
"                         line (default: 1000)\n"
"      --on-done delete|move:DIR\n"
"                         whole mode: once a file's outcome is durable,\n"
"                         delete it or move it into DIR (never overwriting)\n"
"      --on-failed move:DIR\n"
"                         whole mode: move a failed file into DIR\n"
"      --forget-after DURATION\n"
"                         whole mode: drop the record of a file done and\n"
"                         gone (deleted, moved) that long, keeping its hash\n"
"                         so its content stays a duplicate; e.g. 12h, 30d,\n"
"                         0 (at once) or never (default: 30d)\n"
"      --json             status: print one JSON object\n"
"      --summary          status: only the counts by state, the bytes\n"
"                         pending and the oldest pending file, from the\n"
"                         records alone (quick over millions of files)\n"
"      --interval-ms N    top: refresh every N ms, 100 to 3600000\n"
"                         (default: 1000)\n"
"      --once             top: print one plain snapshot and exit (also when\n"
"                         stdin or stdout is not a terminal); keys of the\n"
"                         live view: s sort, / filter, Esc clear, q quit\n"
"  -v, --verbose          more logging on stderr (-vv: debug)\n"
"  -q, --quiet            errors only: no start/stop line, no warnings\n"
"  -h, --help             print this help and exit\n"
"  -V, --version          print the version and exit\n"
"\n"
"Processors: stdout, count, file:path=OUT, exec:cmd=PROGRAM ARGS and plugins;\n"
"'tidemark processors' lists those of this build. nats (a plugin):\n"
"  nats:url=URL[|URL...],subject=S[,stream=NAME][,records=line|chunk]\n"
"  several URLs: the seed servers of a cluster; a server away at start:\n"
"  run waits for it, once gives up after --retry-timeout-ms.\n"
"\n"
"Config file (-c FILE): 'key = value' lines, before any section or under\n"
"[tidemark]; keys are the long options without dashes, e.g.\n"
"  state = /var/lib/tidemark\n"
"  mode = whole\n"
"  processor = file:path=/srv/out.log   ; repeatable, as are include, exclude\n"
"  no-recursive = true\n"
"  verbose = 1\n"
"  dir = /var/log/app   ; repeatable: the DIRs, when none are given\n"
"Comments: lines starting with ';' or '#', or ' ; ...' after a value. A list\n"
"given on the command line replaces the file's list.\n"
"\n"
"Exit status: 0 done, or stopped by a signal after a clean checkpoint;\n"
"1 a runtime failure; 2 bad usage or configuration.\n";
}
