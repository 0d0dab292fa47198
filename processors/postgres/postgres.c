/*
 * postgres/postgres.c: the `postgres` processor, a plugin. Inserts every
 * record into a PostgreSQL table, exactly once across crashes of tidemark and
 * of the database.
 *
 *   postgres:conninfo=URI,table=NAME[,format=line|json][,create=yes]
 *            [,batch=N]
 *
 * The table (format=line, what create=yes makes):
 *
 *   line text, path text, "offset" bigint, record_id text UNIQUE,
 *   ingested_at timestamptz DEFAULT now()
 *
 * format=json has `doc jsonb` in place of `line`; a table without a `doc`
 * column gets each record's JSON keys mapped onto its columns by name.
 *
 * How exactly-once works. Every row carries record_id =
 * INSTANCE:FILE_ID:GEN:OFFSET (INSTANCE: the state directory's random id, so
 * two hosts never collide; GEN: how many times the file's offsets began again
 * at 0, a truncation; OFFSET: the record's first byte) under a unique
 * constraint, and every row a replay sends again is dropped by
 * `ON CONFLICT (record_id) DO NOTHING`. commit() answers OK only after the
 * database's COMMIT succeeded, so a bookmark never passes a row that is not
 * durable. A COMMIT whose outcome is unknown (the connection broke during
 * it) is harmless: the rows are sent again and the constraint drops those
 * that made it.
 *
 * Each chunk goes in one round trip inside the open transaction, under a
 * savepoint: `[BEGIN;] SAVEPOINT; COPY ... FROM STDIN; RELEASE`. COPY goes
 * straight into the table while no row conflicts (as fast as psql's \copy);
 * a chunk that conflicts (a replay after a crash) is rolled back to its
 * savepoint and sent through a temporary staging table instead, `INSERT ...
 * SELECT ... ON CONFLICT (record_id) DO NOTHING`, until a chunk goes in
 * without conflict. A record the table refuses (not JSON, a type, a
 * constraint) rolls the chunk back to its savepoint, so nothing of it is
 * kept, and process() answers TDM_PROC_REJECT.
 *
 * The transaction commits (durably: the server answers once its WAL is on
 * disk) when the reader has caught up, so a record appended to an idle file
 * is in the table within milliseconds; when `batch` rows wait; and at every
 * checkpoint, which commit() answers OK only after that COMMIT.
 *
 * Memory and outages. The rows of the open transaction are kept (as COPY
 * text): when the connection breaks, they are sent again on the next one,
 * through staging (those that made it are dropped). Once `batch` rows wait
 * and the server is away, process() answers TDM_PROC_RETRY: reading pauses,
 * memory stays bounded.
 * Reconnection is tried with a backoff (100 ms doubling to 2 s); one warning
 * per outage names the host and port, never the password (which the
 * conninfo may not hold at all: tidemark prints processor specs; libpq reads
 * it from PGPASSWORD or a password file).
 */
#include <libpq-fe.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tidemark/processor.h"

#define DEFAULT_BATCH 10000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define PENDING_BYTES_MAX (256u << 20) /* rows kept for a resend, at most */
#define ID_MAX 128

typedef struct buf {
  char *p;
  size_t len, cap;
} buf_t;

/* What an error means for the chunk (see classify). */
typedef enum err_kind {
  E_LOST,      /* the connection is gone: the server is away or restarting */
  E_CONFLICT,  /* a row's record_id is in the table already (a replay) */
  E_RECORD,    /* a record the table refuses: reject the chunk */
  E_TRANSIENT, /* a lock, a full disk, a server shutting down: retry */
  E_TABLE      /* the table or the statement is wrong: fail */
} err_kind_t;

/* A table column, read at connection time. */
typedef struct column {
  char *name;   /* as in the catalog */
  char *qname;  /* quoted for SQL */
  char *type;   /* format_type() */
  char *deflt;  /* its default expression, or NULL */
} column_t;

typedef struct pg {
  /* parameters */
  char *conninfo, *table;
  int json, create;
  long batch;
  char instance[40];
  void (*log)(void *, int, const char *);
  void *log_arg;
  char where[300]; /* "host H port P": for messages (never the password) */

  PGconn *conn;
  int ready;        /* connected, table checked, staging table made */
  int in_txn;       /* a transaction is open on conn, holding `pending` */
  int64_t next_try_ms;
  int backoff_ms;
  int outage;       /* said the server is away; say when it is back */
  int ever_connected;

  /* the table, as the catalog says */
  char *qtable;     /* quoted, schema-qualified as given */
  column_t *cols;
  size_t n_cols;
  char *data_col;   /* "line" or "doc", NULL in mapped json mode */
  int has_path, has_offset, mapped;
  char *unique_name;  /* the unique index on record_id */
  char *direct_sql;   /* SAVEPOINT; COPY straight into the table; RELEASE */
  char *stage_sql;    /* SAVEPOINT; COPY into staging; INSERT ...; RELEASE */
  int use_stage;      /* a recent chunk conflicted: go through staging */

  /* rows of the open transaction (COPY text), sent again after a broken
     connection, dropped at COMMIT */
  buf_t pending;
  long pending_rows;
  int on_server;    /* the pending rows are on this connection (in the open
                       transaction): none to resend */
  int broken;       /* pending rows could not be sent again: reopen */
  char broken_msg[TDM_MSG_MAX];

  /* the chunk being sent, and its statements */
  buf_t chunk, sql;
  uint64_t *row_off;
  size_t n_rows, cap_rows;

  uint64_t rows_committed;
} pg_t;

static void say(pg_t *g, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(pg_t *g, int level, const char *fmt, ...) {
  char line[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (g->log != NULL)
    g->log(g->log_arg, level, line);
  else
    fprintf(stderr, "tidemark: %s\n", line);
}

/* A message into a TDM_MSG_MAX buffer, cut when longer. */
static void set_msg(char *msg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_msg(char *msg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, TDM_MSG_MAX, fmt, ap);
  va_end(ap);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- buffers ------------------------------------------------------------ */

static int buf_reserve(buf_t *b, size_t more) {
  if (b->len + more + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *p;
    while (cap < b->len + more + 1)
      cap *= 2;
    if ((p = realloc(b->p, cap)) == NULL)
      return -ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  return 0;
}

static int buf_add(buf_t *b, const void *p, size_t n) {
  if (buf_reserve(b, n) != 0)
    return -ENOMEM;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int buf_printf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || buf_reserve(b, (size_t)n) != 0)
    return -ENOMEM;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

/* Bytes as one field of COPY's text format: backslash, newline, carriage
   return and tab escaped. Everything else goes as it is (the server checks
   the encoding: a line that is not UTF-8 is refused, a rejected record). */
static int buf_copy_field(buf_t *b, const char *p, size_t n) {
  const char *end = p + n, *run = p;
  if (buf_reserve(b, n + 16) != 0)
    return -ENOMEM;
  for (; p < end; p++) {
    char esc;
    switch (*p) {
    case '\\': esc = '\\'; break;
    case '\n': esc = 'n'; break;
    case '\r': esc = 'r'; break;
    case '\t': esc = 't'; break;
    default: continue;
    }
    if (buf_add(b, run, (size_t)(p - run)) != 0 || buf_add(b, "\\", 1) != 0 ||
        buf_add(b, &esc, 1) != 0)
      return -ENOMEM;
    run = p + 1;
  }
  return buf_add(b, run, (size_t)(end - run));
}

/* ---- messages ----------------------------------------------------------- */

/* A libpq message on one line: newlines and tabs become spaces, the
   trailing ones go. */
static void one_line(const char *in, char *out, size_t cap) {
  size_t o = 0;
  for (; in != NULL && *in != '\0' && o + 1 < cap; in++)
    out[o++] = (*in == '\n' || *in == '\t' || *in == '\r') ? ' ' : *in;
  while (o > 0 && out[o - 1] == ' ')
    o--;
  out[o] = '\0';
}

/* "host H port P" for the connection (tried or made), for messages. */
static void set_where(pg_t *g) {
  const char *h = g->conn != NULL ? PQhost(g->conn) : NULL;
  const char *p = g->conn != NULL ? PQport(g->conn) : NULL;
  if (h == NULL || h[0] == '\0')
    return; /* keep what open() found in the conninfo */
  snprintf(g->where, sizeof(g->where), "host %s port %s", h,
           p != NULL && p[0] != '\0' ? p : "5432");
}

/* ---- errors ------------------------------------------------------------- */

static err_kind_t classify(pg_t *g, const PGresult *r) {
  const char *st = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (g->conn == NULL || PQstatus(g->conn) != CONNECTION_OK || st == NULL)
    return E_LOST;
  if (strcmp(st, "23505") == 0 && g->unique_name != NULL) {
    const char *cn = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    if (cn != NULL && strcmp(cn, g->unique_name) == 0)
      return E_CONFLICT;
  }
  /* data exceptions (not JSON, not UTF-8, a bad number), constraint
     violations, a row too big for an index */
  if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 ||
      strncmp(st, "54", 2) == 0)
    return E_RECORD;
  /* connection, operator intervention (shutdown, starting up), resources
     (disk full, out of memory, too many connections), serialization and
     deadlocks, locks, I/O */
  if (strncmp(st, "08", 2) == 0 || strncmp(st, "57", 2) == 0 ||
      strncmp(st, "53", 2) == 0 || strncmp(st, "40", 2) == 0 ||
      strncmp(st, "55", 2) == 0 || strncmp(st, "58", 2) == 0)
    return E_TRANSIENT;
  return E_TABLE;
}

/* The server's error for `r`, with its detail, into msg (TDM_MSG_MAX). */
static void error_text(pg_t *g, const PGresult *r, const char *what,
                       char *msg) {
  char prim[200], det[160];
  const char *p = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                            : NULL;
  const char *d = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)
                            : NULL;
  one_line(p != NULL ? p : g->conn != NULL ? PQerrorMessage(g->conn)
                                           : "no connection",
           prim, sizeof(prim));
  one_line(d, det, sizeof(det));
  set_msg(msg, "postgres: %s %s: %s%s%s", g->table, what, prim,
           det[0] ? " (" : "", det[0] ? det : "");
  if (det[0]) {
    size_t n = strlen(msg);
    if (n + 1 < TDM_MSG_MAX)
      strcat(msg, ")");
  }
}

/* Run `sql` (no rows expected). 0, or -1 with *out the error result
   (the caller clears it) when out != NULL. */
static int exec_cmd(pg_t *g, const char *sql, PGresult **out) {
  PGresult *r = PQexec(g->conn, sql);
  ExecStatusType s = PQresultStatus(r);
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
    PQclear(r);
    return 0;
  }
  if (out != NULL)
    *out = r;
  else
    PQclear(r);
  return -1;
}

/* ---- the connection ------------------------------------------------------- */

static void drop_conn(pg_t *g) {
  if (g->conn != NULL)
    PQfinish(g->conn);
  g->conn = NULL;
  g->ready = 0;
  g->in_txn = 0; /* the server rolls back what was open: pending stays */
  g->on_server = 0;
}

/* Notices (CREATE TABLE IF NOT EXISTS's "already exists") are not ours to
   print. */
static void on_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static void free_cols(pg_t *g) {
  for (size_t i = 0; i < g->n_cols; i++) {
    free(g->cols[i].name);
    free(g->cols[i].qname);
    free(g->cols[i].type);
    free(g->cols[i].deflt);
  }
  free(g->cols);
  g->cols = NULL;
  g->n_cols = 0;
}

static const column_t *find_col(const pg_t *g, const char *name) {
  for (size_t i = 0; i < g->n_cols; i++)
    if (strcmp(g->cols[i].name, name) == 0)
      return &g->cols[i];
  return NULL;
}

/* Outcome of a step that needs the server. */
#define R_OK 0
#define R_RETRY 1  /* the server is away: try later */
#define R_FAIL 2   /* the table is wrong: msg says how */

/* Read the table's columns and its unique index on record_id. */
static int read_table(pg_t *g, char *msg) {
  const char *params[1] = {g->qtable};
  PGresult *r;
  int rc = R_OK;

  free_cols(g);
  free(g->unique_name);
  g->unique_name = NULL;
  r = PQexecParams(g->conn,
                   "SELECT a.attname, quote_ident(a.attname), "
                   "format_type(a.atttypid, a.atttypmod), "
                   "pg_get_expr(d.adbin, d.adrelid) "
                   "FROM pg_attribute a LEFT JOIN pg_attrdef d "
                   "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                   "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
                   "AND NOT a.attisdropped ORDER BY a.attnum",
                   1, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    rc = classify(g, r) == E_TABLE ? R_FAIL : R_RETRY;
    error_text(g, r, "(reading its columns)", msg);
    PQclear(r);
    return rc;
  }
  g->n_cols = (size_t)PQntuples(r);
  if (g->n_cols > 0 && (g->cols = calloc(g->n_cols, sizeof(column_t))) == NULL) {
    g->n_cols = 0;
    PQclear(r);
    set_msg(msg, "postgres: out of memory");
    return R_FAIL;
  }
  for (size_t i = 0; i < g->n_cols; i++) {
    column_t *c = &g->cols[i];
    c->name = strdup(PQgetvalue(r, (int)i, 0));
    c->qname = strdup(PQgetvalue(r, (int)i, 1));
    c->type = strdup(PQgetvalue(r, (int)i, 2));
    c->deflt = PQgetisnull(r, (int)i, 3) ? NULL : strdup(PQgetvalue(r, (int)i, 3));
    if (c->name == NULL || c->qname == NULL || c->type == NULL) {
      PQclear(r);
      set_msg(msg, "postgres: out of memory");
      return R_FAIL;
    }
  }
  PQclear(r);
  if (g->n_cols == 0)
    return R_OK; /* no such table: the caller says so */

  r = PQexecParams(g->conn,
                   "SELECT c.relname FROM pg_index i "
                   "JOIN pg_class c ON c.oid = i.indexrelid "
                   "JOIN pg_attribute a ON a.attrelid = i.indrelid "
                   "AND a.attnum = i.indkey[0] "
                   "WHERE i.indrelid = to_regclass($1) AND i.indisunique "
                   "AND i.indnkeyatts = 1 AND i.indpred IS NULL "
                   "AND i.indexprs IS NULL AND a.attname = 'record_id' "
                   "LIMIT 1",
                   1, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    rc = classify(g, r) == E_TABLE ? R_FAIL : R_RETRY;
    error_text(g, r, "(reading its indexes)", msg);
  } else if (PQntuples(r) == 1 &&
             (g->unique_name = strdup(PQgetvalue(r, 0, 0))) == NULL) {
    set_msg(msg, "postgres: out of memory");
    rc = R_FAIL;
  }
  PQclear(r);
  return rc;
}

/* CREATE TABLE IF NOT EXISTS, the layout of `format`. */
static int create_table(pg_t *g, char *msg) {
  buf_t b = {0};
  PGresult *r = NULL;
  int rc = R_OK;

  if (buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (%s NOT NULL, "
                 "path text NOT NULL, \"offset\" bigint NOT NULL, "
                 "record_id text NOT NULL UNIQUE, "
                 "ingested_at timestamptz NOT NULL DEFAULT now())",
                 g->qtable, g->json ? "doc jsonb" : "line text") != 0) {
    set_msg(msg, "postgres: out of memory");
    return R_FAIL;
  }
  if (exec_cmd(g, b.p, &r) != 0) {
    err_kind_t k = classify(g, r);
    /* two instances creating it at once: one wins, the other sees it */
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (st != NULL && (strcmp(st, "23505") == 0 || strcmp(st, "42P07") == 0))
      rc = R_OK;
    else {
      rc = k == E_LOST || k == E_TRANSIENT ? R_RETRY : R_FAIL;
      error_text(g, r, "(create=yes)", msg);
    }
    PQclear(r);
  }
  free(b.p);
  return rc;
}

/* The statements a chunk is sent with, from the columns the table has. */
static int build_sql(pg_t *g, char *msg) {
  buf_t d = {0}, s = {0}, ins = {0};
  const char *data_type = "text";
  int err = 0;

  g->mapped = 0;
  g->data_col = NULL;
  if (!g->json) {
    g->data_col = "line";
  } else if (find_col(g, "doc") != NULL) {
    g->data_col = "doc";
  } else {
    g->mapped = 1;
  }
  if (!find_col(g, "record_id")) {
    set_msg(msg, "postgres: table %s has no column "
             "\"record_id\" (text, unique: how a row replayed after a crash "
             "is recognised)", g->table);
    return R_FAIL;
  }
  if (g->data_col != NULL && !find_col(g, g->data_col)) {
    set_msg(msg, "postgres: table %s has no column \"%s\" "
             "(format=%s)", g->table, g->data_col, g->json ? "json" : "line");
    return R_FAIL;
  }
  if (g->unique_name == NULL) {
    set_msg(msg, "postgres: table %s has no unique index on "
             "record_id alone (ALTER TABLE %s ADD UNIQUE (record_id))",
             g->table, g->table);
    return R_FAIL;
  }
  g->has_path = find_col(g, "path") != NULL;
  g->has_offset = find_col(g, "offset") != NULL;
  if (g->data_col != NULL)
    data_type = find_col(g, g->data_col)->type;
  else
    data_type = "jsonb";

  /* The staging table: the row as tidemark makes it, with the table's type
     for the data column (a type error shows at COPY, with its line).
     Emptied by every commit. */
  err |= buf_printf(&s, "CREATE TEMP TABLE IF NOT EXISTS tdm_stage (data %s, "
                    "path text, \"offset\" bigint, record_id text) "
                    "ON COMMIT DELETE ROWS", data_type);
  if (err == 0 && exec_cmd(g, s.p, NULL) != 0) {
    PGresult *r = PQexec(g->conn, "SELECT 1");
    int lost = PQresultStatus(r) != PGRES_TUPLES_OK;
    PQclear(r);
    free(s.p);
    set_msg(msg, "postgres: %s: cannot create the temporary "
             "staging table: %s", g->where, PQerrorMessage(g->conn));
    return lost ? R_RETRY : R_FAIL;
  }
  s.len = 0;

  /* INSERT ... SELECT from staging, dropping rows already there. */
  err |= buf_printf(&ins, "INSERT INTO %s (", g->qtable);
  if (g->mapped) {
    int first = 1;
    for (size_t i = 0; i < g->n_cols; i++) {
      const char *n = g->cols[i].name;
      if (strcmp(n, "record_id") == 0 || (g->has_path && strcmp(n, "path") == 0) ||
          (g->has_offset && strcmp(n, "offset") == 0))
        continue;
      err |= buf_printf(&ins, "%s%s", first ? "" : ", ", g->cols[i].qname);
      first = 0;
    }
    err |= buf_printf(&ins, "%s", first ? "" : ", ");
  } else {
    err |= buf_printf(&ins, "%s, ", g->data_col);
  }
  if (g->has_path)
    err |= buf_printf(&ins, "path, ");
  if (g->has_offset)
    err |= buf_printf(&ins, "\"offset\", ");
  err |= buf_printf(&ins, "record_id) SELECT ");
  if (g->mapped) {
    for (size_t i = 0; i < g->n_cols; i++) {
      const column_t *c = &g->cols[i];
      char *lit;
      if (strcmp(c->name, "record_id") == 0 ||
          (g->has_path && strcmp(c->name, "path") == 0) ||
          (g->has_offset && strcmp(c->name, "offset") == 0))
        continue;
      /* a key the record lacks takes the column's default */
      lit = PQescapeLiteral(g->conn, c->name, strlen(c->name));
      if (lit == NULL) {
        err = -1;
        break;
      }
      err |= buf_printf(&ins, "CASE WHEN s.data ? %s THEN r.%s ELSE %s END, ",
                        lit, c->qname, c->deflt != NULL ? c->deflt : "NULL");
      PQfreemem(lit);
    }
  } else {
    err |= buf_printf(&ins, "s.data, ");
  }
  if (g->has_path)
    err |= buf_printf(&ins, "s.path, ");
  if (g->has_offset)
    err |= buf_printf(&ins, "s.\"offset\", ");
  err |= buf_printf(&ins, "s.record_id FROM pg_temp.tdm_stage s");
  if (g->mapped)
    err |= buf_printf(&ins, " CROSS JOIN LATERAL "
                      "jsonb_populate_record(NULL::%s, s.data) r", g->qtable);
  err |= buf_printf(&ins, " ON CONFLICT (record_id) DO NOTHING");

  err |= buf_printf(&s, "SAVEPOINT tdm; COPY pg_temp.tdm_stage FROM STDIN; "
                    "%s; DELETE FROM pg_temp.tdm_stage; RELEASE tdm", ins.p);
  if (!g->mapped && g->has_path && g->has_offset)
    err |= buf_printf(&d, "SAVEPOINT tdm; COPY %s (%s, path, \"offset\", "
                      "record_id) FROM STDIN; RELEASE tdm", g->qtable,
                      g->data_col);
  free(ins.p);
  if (err != 0) {
    free(d.p);
    free(s.p);
    set_msg(msg, "postgres: out of memory");
    return R_FAIL;
  }
  free(g->direct_sql);
  free(g->stage_sql);
  g->direct_sql = d.p; /* NULL: the table lacks path or offset, or mapped */
  g->stage_sql = s.p;
  return R_OK;
}

/* Connect (when the backoff allows), check the table, make the staging
   table. R_OK, R_RETRY (msg: why), or R_FAIL (msg: what is wrong). */
static int connect_db(pg_t *g, char *msg, int at_open) {
  const char *keys[] = {"connect_timeout", "application_name",
                        "client_encoding", "dbname", NULL};
  const char *vals[] = {"10", "tidemark", "UTF8", g->conninfo, NULL};
  char err[220];
  int rc;

  if (g->ready && g->conn != NULL && PQstatus(g->conn) == CONNECTION_OK)
    return R_OK;
  drop_conn(g);
  if (now_ms() < g->next_try_ms) {
    set_msg(msg, "postgres: %s is unreachable; reconnecting",
             g->where);
    return R_RETRY;
  }
  /* connect_timeout first: a conninfo that names one wins (later keys
     override earlier ones, and dbname expands into the conninfo's) */
  g->conn = PQconnectdbParams(keys, vals, 1);
  if (g->conn != NULL)
    set_where(g);
  if (g->conn == NULL || PQstatus(g->conn) != CONNECTION_OK) {
    const char *e = g->conn != NULL ? PQerrorMessage(g->conn) : "out of memory";
    one_line(e, err, sizeof(err));
    /* Wrong credentials or a database that does not exist: a wrong
       parameter, not an outage. */
    if (g->conn != NULL &&
        (PQconnectionNeedsPassword(g->conn) ||
         strstr(e, "authentication failed") != NULL ||
         strstr(e, "does not exist") != NULL ||
         strstr(e, "no password supplied") != NULL ||
         strstr(e, "no pg_hba.conf entry") != NULL)) {
      set_msg(msg, "postgres: parameter \"conninfo\": %s: %s",
               g->where, err);
      drop_conn(g);
      return R_FAIL;
    }
    set_msg(msg, "postgres: cannot connect to %s: %s", g->where,
             err);
    drop_conn(g);
    g->backoff_ms = g->backoff_ms == 0 ? BACKOFF_MIN_MS
                    : g->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                         : g->backoff_ms * 2;
    g->next_try_ms = now_ms() + g->backoff_ms;
    if (!g->outage) {
      g->outage = 1;
      if (at_open)
        say(g, TDM_PROC_LOG_WARN, "postgres: cannot connect to %s (%s); "
            "reading waits until it answers, reconnecting (no limit)",
            g->where, err);
      else
        say(g, TDM_PROC_LOG_WARN, "postgres: lost the connection to %s (%s); "
            "reading pauses once %ld rows wait, reconnecting (no limit)",
            g->where, err, g->batch);
    }
    return R_RETRY;
  }
  PQsetNoticeProcessor(g->conn, on_notice, NULL);
  g->backoff_ms = 0;

  if ((rc = read_table(g, msg)) != R_OK)
    goto out;
  if (g->n_cols == 0) {
    if (!g->create) {
      set_msg(msg, "postgres: %s: no table %s (create it, or "
               "add create=yes)", g->where, g->table);
      rc = R_FAIL;
      goto out;
    }
    if ((rc = create_table(g, msg)) != R_OK || (rc = read_table(g, msg)) != R_OK)
      goto out;
  }
  if ((rc = build_sql(g, msg)) != R_OK)
    goto out;
  g->ready = 1;
  if (g->outage && g->ever_connected)
    say(g, TDM_PROC_LOG_WARN, "postgres: reconnected to %s; delivery resumes",
        g->where);
  else if (g->outage)
    say(g, TDM_PROC_LOG_WARN, "postgres: connected to %s; delivery begins",
        g->where);
  g->outage = 0;
  g->ever_connected = 1;
out:
  if (rc != R_OK) {
    if (PQstatus(g->conn) != CONNECTION_OK)
      rc = R_RETRY;
    drop_conn(g);
  }
  return rc;
}

/* The connection broke (or a statement failed in a way that leaves the
   transaction unknown): say so once per outage, forget the connection. */
static void lost(pg_t *g) {
  char err[220];
  one_line(g->conn != NULL ? PQerrorMessage(g->conn) : "", err, sizeof(err));
  if (!g->outage) {
    g->outage = 1;
    say(g, TDM_PROC_LOG_WARN, "postgres: lost the connection to %s (%s); "
        "reading pauses once %ld rows wait, reconnecting (no limit)",
        g->where, err[0] ? err : "connection closed", g->batch);
  }
  drop_conn(g);
}

/* ---- sending -------------------------------------------------------------- */

/* Send `sql` (statements with one COPY FROM STDIN) with `data` as the COPY
   data. Returns 0, or -1 with *err the first error result (the caller
   clears it; NULL when the connection itself failed). *inserted: the rows
   the INSERT reported, when it ran (-1 otherwise). */
static int send_copy(pg_t *g, const char *sql, const char *data, size_t len,
                     PGresult **err, long *inserted) {
  PGresult *r;
  int failed = 0;

  *err = NULL;
  if (inserted != NULL)
    *inserted = -1;
  if (!PQsendQuery(g->conn, sql))
    return -1;
  while ((r = PQgetResult(g->conn)) != NULL) {
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COPY_IN) {
      size_t off = 0;
      int ok = 1;
      while (ok && off < len) { /* PQputCopyData takes an int length */
        size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
        ok = PQputCopyData(g->conn, data + off, (int)n) == 1;
        off += n;
      }
      if (PQputCopyEnd(g->conn, ok ? NULL : "tidemark: send failed") != 1)
        failed = 1;
      PQclear(r);
    } else if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
      if (inserted != NULL && strncmp(PQcmdStatus(r), "INSERT", 6) == 0)
        *inserted = atol(PQcmdTuples(r));
      PQclear(r);
    } else {
      if (*err == NULL)
        *err = r;
      else
        PQclear(r);
      failed = 1;
    }
    if (PQstatus(g->conn) != CONNECTION_OK)
      failed = 1;
  }
  return failed ? -1 : 0;
}

/* Undo the chunk: back to its savepoint (or the connection is dropped). */
static void rollback_chunk(pg_t *g) {
  if (PQtransactionStatus(g->conn) == PQTRANS_INERROR &&
      exec_cmd(g, "ROLLBACK TO SAVEPOINT tdm; RELEASE tdm", NULL) != 0)
    lost(g);
}

/* Open the transaction when none is. */
static int begin(pg_t *g) {
  if (g->in_txn)
    return 0;
  if (exec_cmd(g, "BEGIN", NULL) != 0)
    return -1;
  g->in_txn = 1;
  return 0;
}

/* The pending rows after a broken connection, again,
   through staging (some may have made it: an unknown COMMIT). R_OK or
   R_RETRY (and `broken` when the table refuses them now: the host reopens
   us and replays). */
static int resend_pending(pg_t *g, char *msg) {
  PGresult *err = NULL;
  if (g->pending.len == 0 || g->on_server)
    return R_OK;
  say(g, TDM_PROC_LOG_WARN, "postgres: sending again the %ld rows not durably "
      "committed when the connection was lost (those that made it are "
      "dropped by record_id)", g->pending_rows);
  if (begin(g) != 0 ||
      send_copy(g, g->stage_sql, g->pending.p, g->pending.len, &err, NULL) != 0) {
    err_kind_t k = classify(g, err);
    if (k == E_LOST || k == E_TRANSIENT) {
      set_msg(msg, "postgres: %s: sending %ld rows again: %s",
               g->where, g->pending_rows, PQerrorMessage(g->conn));
      PQclear(err);
      lost(g);
      return R_RETRY;
    }
    error_text(g, err, "refused rows it had taken before the connection "
               "broke", g->broken_msg);
    PQclear(err);
    g->broken = 1;
    set_msg(msg, "%s", g->broken_msg);
    drop_conn(g);
    return R_RETRY; /* commit() fails: the host reopens us and replays */
  }
  g->on_server = 1;
  return R_OK;
}

/* Connected, the table checked, the open transaction holding every
   pending row. While `broken`, R_RETRY: the next commit() fails, and the
   host reopens the processor and delivers again from its bookmarks. */
static int ready(pg_t *g, char *msg) {
  int rc;
  if (g->broken) {
    set_msg(msg, "%s", g->broken_msg);
    return R_RETRY;
  }
  if ((rc = connect_db(g, msg, 0)) != R_OK)
    return rc;
  return resend_pending(g, msg);
}

/*
 * COMMIT the open transaction, and wait for it: the server answers once the
 * WAL is on disk (synchronous_commit as the server has it, on by default).
 * The pending rows are dropped then. R_OK, or R_RETRY (msg: why; pending
 * kept: sent again on the next connection, the constraint drops what made
 * it). (A quicker commit when the reader catches up, synchronous_commit off
 * and a durable one later, does not work: a later transaction that writes
 * no rows of its own commits asynchronously too, whatever it asks.)
 */
static int commit_txn(pg_t *g, char *msg) {
  const char *sql = "COMMIT";
  PGresult *r;
  int rc;

  if ((rc = ready(g, msg)) != R_OK)
    return rc;
  if (!g->in_txn)
    return R_OK; /* ready() sent any pending rows again in a transaction */
  r = PQexec(g->conn, sql);
  if (PQresultStatus(r) == PGRES_COMMAND_OK &&
      strcmp(PQcmdStatus(r), "COMMIT") == 0) {
    PQclear(r);
    g->in_txn = 0;
    g->rows_committed += (uint64_t)g->pending_rows;
    g->pending.len = 0;
    g->pending_rows = 0;
    return R_OK;
  }
  /* The outcome is unknown (the connection broke during COMMIT) or the
     transaction was rolled back (a deferred constraint): the rows are sent
     again on a new connection. */
  if (classify(g, r) == E_LOST || PQresultStatus(r) == PGRES_COMMAND_OK) {
    set_msg(msg, "postgres: %s: COMMIT of %ld rows: %s",
             g->where, g->pending_rows,
             PQresultStatus(r) == PGRES_COMMAND_OK ? "rolled back"
                                                   : "connection lost");
    PQclear(r);
    lost(g);
    return R_RETRY;
  }
  error_text(g, r, "COMMIT", msg);
  PQclear(r);
  drop_conn(g);
  return R_RETRY;
}

/* ---- records -------------------------------------------------------------- */

/* One row of the chunk: data[0..len) at `offset`. `whole`: a record that is
   the same however the file was read (a line, a piece of a long line): its
   id is its offset; otherwise (a multiline record, whose extent can depend
   on when it was read; a partial line) its length too. */
static int add_row(pg_t *g, const tdm_chunk_t *c, const char *data, size_t len,
                   uint64_t offset, int whole) {
  uint32_t gen = TDM_CHUNK_HAS(c, generation) ? c->generation : 0;
  char id[ID_MAX];
  int n;

  if (g->n_rows == g->cap_rows) {
    size_t cap = g->cap_rows ? g->cap_rows * 2 : 1024;
    uint64_t *v = realloc(g->row_off, cap * sizeof(*v));
    if (v == NULL)
      return -ENOMEM;
    g->row_off = v;
    g->cap_rows = cap;
  }
  g->row_off[g->n_rows++] = offset;
  if (whole)
    n = snprintf(id, sizeof(id), "\t%" PRIu64 "\t%s:%" PRIu64 ":%" PRIu32
                 ":%" PRIu64 "\n", offset, g->instance, c->file_id, gen, offset);
  else
    n = snprintf(id, sizeof(id), "\t%" PRIu64 "\t%s:%" PRIu64 ":%" PRIu32
                 ":%" PRIu64 ":%zu\n", offset, g->instance, c->file_id, gen,
                 offset, len);
  if (buf_copy_field(&g->chunk, data, len) != 0 || buf_add(&g->chunk, "\t", 1) != 0 ||
      buf_copy_field(&g->chunk, c->path, strlen(c->path)) != 0 ||
      buf_add(&g->chunk, id, (size_t)n) != 0)
    return -ENOMEM;
  return 0;
}

/* The chunk's records as COPY rows into g->chunk. */
static int chunk_rows(pg_t *g, const tdm_chunk_t *c) {
  const char *base = c->data, *p = base, *end = base + c->len;

  g->chunk.len = 0;
  g->n_rows = 0;
  if (TDM_CHUNK_HAS(c, n_records) && c->record_ends != NULL) {
    /* multiline records: one row each, without the last newline; the bytes
       after the last end of a piece chunk are a piece of a long record */
    for (size_t k = 0; k <= c->n_records; k++) {
      const char *stop = k < c->n_records ? base + c->record_ends[k] : end;
      const char *q = stop;
      if (stop > end || stop < p)
        break;
      if (k == c->n_records && p == end)
        break;
      if (k < c->n_records && q > p && q[-1] == '\n')
        q--;
      if (add_row(g, c, p, (size_t)(q - p), c->offset + (uint64_t)(p - base), 0))
        return -ENOMEM;
      p = stop;
    }
    return 0;
  }
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl != NULL ? nl : end;
    /* a line without its newline is whole only as a piece of a long one */
    int whole = nl != NULL || (c->flags & TDM_CHUNK_PIECE);
    if (add_row(g, c, p, (size_t)(stop - p), c->offset + (uint64_t)(p - base),
                whole))
      return -ENOMEM;
    p = nl != NULL ? nl + 1 : end;
  }
  return 0;
}

/* Which record an error of COPY names ("COPY t, line N"), as " (the record
   at offset X)"; "" when it names none. */
static void which_record(pg_t *g, const PGresult *r, char *out, size_t cap) {
  const char *ctx = r != NULL ? PQresultErrorField(r, PG_DIAG_CONTEXT) : NULL;
  const char *copy = ctx != NULL ? strstr(ctx, "COPY ") : NULL;
  const char *l = copy != NULL ? strstr(copy, ", line ") : NULL;
  long n = l != NULL ? atol(l + 7) : 0;
  out[0] = '\0';
  if (n >= 1 && (size_t)n <= g->n_rows)
    snprintf(out, cap, " (the record at offset %" PRIu64 ")",
             g->row_off[n - 1]);
}

/* Send the chunk's rows in the open transaction. TDM_PROC_OK (the rows are
   in the transaction), TDM_PROC_REJECT (a record the table refuses; the
   chunk was rolled back), TDM_PROC_RETRY (the server is away), or
   TDM_PROC_FAIL (the table is wrong). */
static int send_chunk(pg_t *g, char *msg) {
  PGresult *err = NULL;
  long inserted;
  int rc;
  int direct = g->direct_sql != NULL && !g->use_stage;
  err_kind_t k;

  /* BEGIN goes in the same round trip when no transaction is open */
  g->sql.len = 0;
  if (buf_printf(&g->sql, "%s%s", g->in_txn ? "" : "BEGIN; ",
                 direct ? g->direct_sql : g->stage_sql) != 0) {
    set_msg(msg, "postgres: out of memory");
    return TDM_PROC_RETRY;
  }
  rc = send_copy(g, g->sql.p, g->chunk.p, g->chunk.len, &err, &inserted);
  g->in_txn = g->conn != NULL && PQtransactionStatus(g->conn) != PQTRANS_IDLE &&
              PQtransactionStatus(g->conn) != PQTRANS_UNKNOWN;
  if (rc == 0) {
    /* through staging until a chunk goes in without a conflict */
    if (!direct && inserted == (long)g->n_rows)
      g->use_stage = 0;
    return TDM_PROC_OK;
  }
  k = classify(g, err);
  if (k == E_CONFLICT && direct) {
    /* a replay: the rows already in the table are dropped through staging */
    PQclear(err);
    err = NULL;
    rollback_chunk(g);
    if (g->conn == NULL) {
      set_msg(msg, "postgres: %s is unreachable", g->where);
      return TDM_PROC_RETRY;
    }
    g->use_stage = 1;
    if (send_copy(g, g->stage_sql, g->chunk.p, g->chunk.len, &err,
                  &inserted) == 0) {
      if (inserted == (long)g->n_rows)
        g->use_stage = 0;
      return TDM_PROC_OK;
    }
    k = classify(g, err);
  }
  if (k == E_LOST) {
    PQclear(err);
    lost(g);
    set_msg(msg, "postgres: %s is unreachable", g->where);
    return TDM_PROC_RETRY;
  }
  if (k == E_RECORD || k == E_CONFLICT) {
    char rec[64];
    which_record(g, err, rec, sizeof(rec));
    error_text(g, err, "refused a record", msg);
    if (rec[0] && strlen(msg) + strlen(rec) < TDM_MSG_MAX)
      strcat(msg, rec);
    PQclear(err);
    rollback_chunk(g);
    return TDM_PROC_REJECT;
  }
  error_text(g, err, "", msg);
  PQclear(err);
  rollback_chunk(g);
  return k == E_TRANSIENT ? TDM_PROC_RETRY : TDM_PROC_FAIL;
}

static int pg_process(void *state, const tdm_chunk_t *c, char *msg) {
  pg_t *g = state;
  int rc;

  if ((rc = ready(g, msg)) != R_OK)
    return rc == R_RETRY ? TDM_PROC_RETRY : TDM_PROC_FAIL;
  if ((g->pending_rows >= g->batch || g->pending.len >= PENDING_BYTES_MAX) &&
      (rc = commit_txn(g, msg)) != R_OK)
    return rc == R_RETRY ? TDM_PROC_RETRY : TDM_PROC_FAIL;
  if (chunk_rows(g, c) != 0) {
    set_msg(msg, "postgres: out of memory");
    return TDM_PROC_RETRY;
  }
  if (g->n_rows == 0)
    return TDM_PROC_OK;
  rc = send_chunk(g, msg);
  if (rc != TDM_PROC_OK)
    return rc;
  /* kept until COMMIT: sent again if the connection breaks before */
  if (buf_add(&g->pending, g->chunk.p, g->chunk.len) != 0) {
    /* cannot keep it: undo the whole transaction (this chunk is not
       kept); commit() fails, the host reopens us and replays */
    g->broken = 1;
    set_msg(g->broken_msg, "postgres: out of memory "
             "keeping rows until COMMIT");
    drop_conn(g);
    set_msg(msg, "%s", g->broken_msg);
    return TDM_PROC_RETRY;
  }
  g->pending_rows += (long)g->n_rows;
  g->on_server = 1;
  return TDM_PROC_OK;
}

static int pg_caught_up(void *state, char *msg) {
  pg_t *g = state;
  if (!g->in_txn)
    return TDM_PROC_OK;
  return commit_txn(g, msg) == R_OK ? TDM_PROC_OK : TDM_PROC_RETRY;
}

/* The restore blob: text for `tidemark status` (nothing needs restoring:
   the table, with its unique record ids, is the state). */
static size_t blob_text(const pg_t *g, char *buf, size_t cap) {
  int w = snprintf(buf, cap, "postgres table %s on %s", g->table, g->where);
  return w < 0 ? 0 : (size_t)w >= cap ? cap - 1 : (size_t)w;
}

static int pg_commit(void *state, void *restore, size_t *restore_len,
                     char *msg) {
  pg_t *g = state;
  int rc;

  if (g->broken) {
    /* the host closes us, reopens, and delivers again from the bookmarks */
    *restore_len = 0;
    set_msg(msg, "%s", g->broken_msg);
    return TDM_PROC_FAIL;
  }
  if (g->pending_rows > 0 || g->in_txn) {
    rc = commit_txn(g, msg);
    if (rc != R_OK) {
      *restore_len = 0;
      if (rc == R_FAIL || g->broken)
        return TDM_PROC_FAIL;
      if (strlen(msg) + 40 < TDM_MSG_MAX)
        snprintf(msg + strlen(msg), TDM_MSG_MAX - strlen(msg),
                 " (%ld rows wait)", g->pending_rows);
      return TDM_PROC_RETRY;
    }
  }
  *restore_len = blob_text(g, restore, *restore_len);
  return TDM_PROC_OK;
}

static void pg_close(void *state) {
  pg_t *g = state;
  if (g == NULL)
    return;
  /* What is not committed is delivered again from the bookmarks. */
  drop_conn(g);
  free_cols(g);
  free(g->unique_name);
  free(g->direct_sql);
  free(g->stage_sql);
  free(g->pending.p);
  free(g->chunk.p);
  free(g->sql.p);
  free(g->row_off);
  free(g->qtable);
  free(g->conninfo);
  free(g->table);
  free(g);
}

/* ---- open ----------------------------------------------------------------- */

static int bad(const tdm_open_args_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bad(const tdm_open_args_t *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->msg, TDM_MSG_MAX, fmt, ap);
  va_end(ap);
  return TDM_PROC_FAIL;
}

static int dup_param(const tdm_open_args_t *a, char **slot, const char *key,
                     const char *value) {
  if (*slot != NULL)
    return bad(a, "postgres: parameter \"%s\" given twice", key);
  if (value[0] == '\0')
    return bad(a, "postgres: parameter \"%s\" is empty", key);
  if ((*slot = strdup(value)) == NULL)
    return bad(a, "postgres: out of memory");
  return TDM_PROC_OK;
}

/* "NAME" or "SCHEMA.NAME", each part quoted as given (case kept). */
static int quote_table(pg_t *g, const tdm_open_args_t *a) {
  buf_t b = {0};
  const char *p = g->table, *dot = strchr(p, '.');
  for (;;) {
    size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
    if (n == 0 || (dot != NULL && strchr(dot + 1, '.') != NULL))
      return bad(a, "postgres: parameter \"table\": \"%s\" is not NAME or "
                 "SCHEMA.NAME", g->table);
    buf_add(&b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
      if (p[i] == '"')
        buf_add(&b, "\"", 1);
      buf_add(&b, &p[i], 1);
    }
    buf_add(&b, "\"", 1);
    if (dot == NULL)
      break;
    buf_add(&b, ".", 1);
    p = dot + 1;
    dot = NULL;
  }
  if (b.p == NULL)
    return bad(a, "postgres: out of memory");
  g->qtable = b.p;
  return TDM_PROC_OK;
}

/* Check the conninfo with libpq's own parser, refuse a password in it, and
   find the host and port for messages. */
static int check_conninfo(pg_t *g, const tdm_open_args_t *a) {
  char *err = NULL, e[200];
  const char *host = NULL, *port = NULL, *hostaddr = NULL;
  PQconninfoOption *o = PQconninfoParse(g->conninfo, &err);

  if (o == NULL) {
    one_line(err != NULL ? err : "out of memory", e, sizeof(e));
    PQfreemem(err);
    return bad(a, "postgres: parameter \"conninfo\": %s (a libpq URI: "
               "postgresql://USER@HOST:PORT/DB?sslmode=...)", e);
  }
  for (PQconninfoOption *x = o; x->keyword != NULL; x++) {
    if (x->val == NULL || x->val[0] == '\0')
      continue;
    if (strcmp(x->keyword, "password") == 0) {
      PQconninfoFree(o);
      return bad(a, "postgres: parameter \"conninfo\" holds a password; "
                 "tidemark prints processor specs (logs, status, metrics), so "
                 "give it in PGPASSWORD or a password file (PGPASSFILE, "
                 "~/.pgpass, or passfile= in the conninfo)");
    }
    if (strcmp(x->keyword, "host") == 0)
      host = x->val;
    else if (strcmp(x->keyword, "hostaddr") == 0)
      hostaddr = x->val;
    else if (strcmp(x->keyword, "port") == 0)
      port = x->val;
  }
  if (host == NULL)
    host = hostaddr != NULL ? hostaddr : getenv("PGHOST");
  if (port == NULL)
    port = getenv("PGPORT");
  snprintf(g->where, sizeof(g->where), "host %s port %s",
           host != NULL && host[0] ? host : "(default socket)",
           port != NULL && port[0] ? port : "5432");
  PQconninfoFree(o);
  return TDM_PROC_OK;
}

static int parse_params(pg_t *g, const tdm_open_args_t *a) {
  int rc;
  for (size_t i = 0; i < a->n_params; i++) {
    const char *k = a->params[i].key, *v = a->params[i].value;
    if (strcmp(k, "conninfo") == 0)
      rc = dup_param(a, &g->conninfo, k, v);
    else if (strcmp(k, "table") == 0)
      rc = dup_param(a, &g->table, k, v);
    else if (strcmp(k, "format") == 0) {
      if (strcmp(v, "line") == 0)
        g->json = 0;
      else if (strcmp(v, "json") == 0)
        g->json = 1;
      else
        return bad(a, "postgres: parameter \"format\": \"%s\" is neither "
                   "line nor json", v);
      rc = TDM_PROC_OK;
    } else if (strcmp(k, "create") == 0) {
      if (strcmp(v, "yes") == 0)
        g->create = 1;
      else if (strcmp(v, "no") == 0)
        g->create = 0;
      else
        return bad(a, "postgres: parameter \"create\": \"%s\" is neither yes "
                   "nor no", v);
      rc = TDM_PROC_OK;
    } else if (strcmp(k, "batch") == 0) {
      char *e;
      long n;
      errno = 0;
      n = strtol(v, &e, 10);
      if (errno != 0 || e == v || *e != '\0' || n < 1 || n > 1000000)
        return bad(a, "postgres: parameter \"batch\": \"%s\" is not a number "
                   "from 1 to 1000000", v);
      g->batch = n;
      rc = TDM_PROC_OK;
    } else {
      return bad(a, "postgres: unknown parameter \"%s\" (postgres takes "
                 "conninfo, table, format, create, batch)", k);
    }
    if (rc != TDM_PROC_OK)
      return rc;
  }
  if (g->conninfo == NULL)
    return bad(a, "postgres: missing parameter \"conninfo\" (e.g. "
               "postgres:conninfo=postgresql://tidemark@db/logs,table=lines)");
  if (g->table == NULL)
    return bad(a, "postgres: missing parameter \"table\" (e.g. "
               "postgres:conninfo=postgresql://tidemark@db/logs,table=lines)");
  if ((rc = check_conninfo(g, a)) != TDM_PROC_OK)
    return rc;
  return quote_table(g, a);
}

static int pg_open(void **state, const tdm_open_args_t *a) {
  char msg[TDM_MSG_MAX] = "";
  pg_t *g;
  int rc;

  if (!TDM_OPEN_ARGS_HAS(a, log_arg) || a->instance == NULL ||
      a->instance[0] == '\0') {
    set_msg(a->msg, "postgres: this tidemark gives no instance "
             "id (the plugin needs tidemark 0.2 or later)");
    return TDM_PROC_FAIL;
  }
  if ((g = calloc(1, sizeof(*g))) == NULL) {
    set_msg(a->msg, "postgres: out of memory");
    return TDM_PROC_FAIL;
  }
  g->batch = DEFAULT_BATCH;
  snprintf(g->instance, sizeof(g->instance), "%s", a->instance);
  g->log = a->log;
  g->log_arg = a->log_arg;
  if ((rc = parse_params(g, a)) != TDM_PROC_OK) {
    pg_close(g);
    return rc;
  }
  /* A server that is away is waited for (process() answers RETRY); one that
     answers but refuses the credentials, or lacks the table: an error now. */
  rc = connect_db(g, msg, 1);
  if (rc == R_FAIL) {
    set_msg(a->msg, "%s", msg);
    pg_close(g);
    return TDM_PROC_FAIL;
  }
  if (rc == R_OK)
    say(g, TDM_PROC_LOG_INFO, "postgres: table %s on %s, format=%s, batch %ld, "
        "instance %s", g->table, g->where, g->json ? "json" : "line", g->batch,
        g->instance);
  *state = g;
  return TDM_PROC_OK;
}

static const tdm_processor_t pg_processor = {
    TDM_PROCESSOR_HEADER,
    .name = "postgres",
    .summary = "inserts each record into a PostgreSQL table "
               "(postgres:conninfo=URI,table=T); exactly once by record id",
    .open = pg_open,
    .process = pg_process,
    .commit = pg_commit,
    .close = pg_close,
    .caught_up = pg_caught_up,
};

__attribute__((visibility("default"))) const tdm_processor_t *
tdm_processor_entry(void) {
  return &pg_processor;
}
