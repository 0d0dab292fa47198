/*
 * nats/nats.c: the `nats` processor, a plugin. Publishes records to a NATS
 * JetStream stream, exactly once across crashes, restarts and hosts.
 *
 *   nats:url=nats://HOST:4222[|nats://HOST2:4222...],subject=SUBJECT
 *        [,stream=NAME][,records=line|chunk][,max-pending=N][,timeout-ms=N]
 *        [,creds=FILE]
 *
 * Several URLs are the seed servers of a cluster (natsOptions_SetServers);
 * the client also fails over to the servers the cluster advertises.
 *
 * How exactly-once works. Every message carries Nats-Msg-Id =
 * INSTANCE:FILE_ID:OFFSET (INSTANCE: the state directory's random id, so two
 * hosts never collide; OFFSET: the record's first byte), and the stream
 * drops a message whose id it has seen within its duplicate window (once
 * the same offsets may name other bytes, after a truncation or for a new
 * version of a whole file, FILE_ID is written FILE_ID.GEN:
 * tdm_chunk_t.generation). commit() answers OK only when JetStream
 * acknowledged every message published so far, so a bookmark never passes
 * an unacknowledged record; after a crash the records after the bookmark
 * are published again with the same ids and dropped. An ack that timed out
 * or failed is re-sent with the same id until it is acknowledged (a
 * Duplicate ack is success).
 *
 * records=line (default): one message per line, without its newline; a line
 * longer than a message may carry goes out in pieces, each with the id of
 * its first byte. Pieces are sized with their headers, under the smaller of
 * the server's max payload and the stream's max message size; a file whose
 * headers alone leave no room is answered TDM_PROC_REJECT (it can never be
 * published; the others go on). With --multiline-start the host says where
 * records end (tdm_chunk_t.record_ends): one message per record (a stack
 * trace is one message). records=chunk: one message per chunk (cut to what
 * a message may carry).
 *
 * A multiline record the timeout ended, and a chunk, are cut by how the file
 * was read, and a replay may cut them otherwise (it reads more at once; a
 * continuation line came while tidemark was down). Their ids carry no
 * length either; instead, until a file's first message the stream did not
 * have, its messages are published one at a time (fstate_t): a Duplicate
 * ack gives the sequence of the message an earlier run stored under that
 * offset, whose end (Tidemark-End, or its offset plus its length) says what
 * of ours is new; only that is published, under its own offset, checked the
 * same way. So each byte is published once however the replay cuts. A
 * partial last line (--records bytes) keeps INSTANCE:FILE_ID:OFFSET:LEN: a
 * replay that reads it whole publishes it again (at least once).
 *
 * Servers away at the start: the connection is made in the background
 * (natsOptions_SetRetryOnFailedConnect) and process() answers TDM_PROC_RETRY
 * until a server answers and the stream is found, looking again after a
 * backoff: `run` waits without limit, `once` gives up after the host's
 * --retry-timeout-ms. JetStream that does not answer (a cluster electing its
 * leader) is waited for the same way; a stream that JetStream says is not
 * there is an error at open() when a server answered then.
 *
 * Threads: acks arrive on a cnats thread. The ack handler only counts and,
 * for a failed or timed-out ack, keeps the message for re-sending, under
 * `mu`; every publish (first or re-send) happens on the host's thread, in
 * process() and commit(). The number of messages in flight is capped by our
 * own `max-pending` (cnats' own cap is set out of the way: publishing faster
 * than it from the thread that must read the acks stalls): process() waits
 * for acks while connected, and answers TDM_PROC_RETRY (reading pauses,
 * memory bounded) when the cap stays full or the server is away. Connection
 * events also come on a cnats thread; they are logged from the next method
 * call (a processor logs only on the host's thread): one warning per outage
 * naming the URL, reconnection forever.
 */
#include <nats/nats.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tidemark/processor.h"

#define DEFAULT_MAX_PENDING 4096
#define DEFAULT_TIMEOUT_MS 5000
#define MAX_PENDING_BYTES (64u << 20) /* in-flight payload bytes, at most */
#define ID_MAX 128
/* Waiting for a server or for JetStream (start of `run`): the first retry
   after this long, doubling up to WAIT_MAX_MS. */
#define WAIT_MIN_MS 250
#define WAIT_MAX_MS 2000
/* A window shorter than this many checkpoint intervals plus RESTART_MS may
   forget an id before a replay re-sends it. */
#define RESTART_MS 60000u

/* The open instances that started libnats (a mutex: hosts may open and
   close instances from several threads). The last one to close stops
   libnats's threads: see lib_release. */
static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned lib_users;

/*
 * Where the stream stands for one file whose messages are cut by how the
 * file was read (records=chunk; multiline records, which the timeout may
 * end). Until the first message the stream did not have (resolving), each
 * is published and acknowledged one at a time: a duplicate names the
 * message an earlier run stored under the same first byte, whose end
 * (`covered`) tells what of ours is new. After it (live), nothing from here
 * on was published before: publishing is asynchronous again.
 */
typedef struct fstate {
  uint64_t file_id;
  uint32_t gen;
  int used, live;
  uint64_t covered; /* resolving: the stream holds the bytes before it */
  uint64_t next;    /* live: where the next chunk must begin */
} fstate_t;

typedef struct nats_out {
  /* parameters */
  char *url, *subject, *stream, *creds; /* url: as given (URL|URL|...) */
  char **urls;                           /* url split at '|' */
  int n_urls;
  int chunk_records;
  int64_t max_pending;
  int64_t timeout_ms;
  char instance[40];
  uint64_t checkpoint_ms;
  void (*log)(void *, int, const char *);
  void *log_arg;

  natsOptions *opts;
  natsConnection *nc;
  jsCtx *js;
  int max_payload;        /* the server's, headers included */
  int64_t max_msg;        /* the stream's max message size (0: none) */
  int64_t dup_window_ns;
  char *hpath;            /* the chunk's path as a header value */
  size_t hpath_cap;

  /* Ready: connected once and the stream found. Until then process()
     answers RETRY (reading pauses) and looks again after a backoff. */
  int ready;
  int64_t next_try_ms, try_wait_ms;
  char why[TDM_MSG_MAX];  /* what is waited for */
  char why_said[TDM_MSG_MAX];

  /* Files whose cut varies (records=chunk, multiline records): where the
     stream stands for each, by (file_id, generation). */
  struct fstate *fs;
  size_t fs_cap, fs_n;

  /* shared with the cnats threads, under mu */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  int64_t inflight;       /* published, outcome not back yet */
  int64_t inflight_bytes;
  natsMsg **resend;       /* failed or timed out: ours to publish again */
  size_t n_resend, cap_resend;
  int broken;             /* could not keep a failed message: reopen */
  int connected;
  int closed;             /* the connection's closed callback came */
  int64_t progress_ms;    /* when an ack last came back */
  int outages;            /* disconnections seen (by the cnats thread) */
  int connects;           /* first connections made in the background */
  int reconnects;         /* reconnections seen */
  uint64_t duplicates;    /* acks that said Duplicate */
  char last_err[160];

  /* host thread only */
  int outages_said, reconnects_said, connects_said;
  int resend_warned;
  int lib_user; /* counted in lib_users: see lib_acquire */
} nats_out_t;

static void lib_release(nats_out_t *n);

static void say(nats_out_t *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(nats_out_t *n, int level, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n->log != NULL)
    n->log(n->log_arg, level, line);
  else
    fprintf(stderr, "tidemark: %s\n", line);
}

/* ---- cnats threads ------------------------------------------------------ */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                   void *closure) {
  nats_out_t *n = closure;
  int len = msg != NULL ? natsMsg_GetDataLength(msg) : 0;
  (void)js;
  pthread_mutex_lock(&n->mu);
  n->inflight--;
  n->inflight_bytes -= len;
  n->progress_ms = now_ms();
  if (pa != NULL || msg == NULL) {
    if (pa != NULL && pa->Duplicate)
      n->duplicates++;
    natsMsg_Destroy(msg);
  } else {
    if (pae != NULL)
      snprintf(n->last_err, sizeof(n->last_err), "%s%s%s",
               natsStatus_GetText(pae->Err), pae->ErrText ? ": " : "",
               pae->ErrText ? pae->ErrText : "");
    if (n->n_resend == n->cap_resend) {
      size_t cap = n->cap_resend ? n->cap_resend * 2 : 256;
      natsMsg **v = realloc(n->resend, cap * sizeof(*v));
      if (v == NULL) {
        n->broken = 1; /* commit fails: the host reopens and replays */
        natsMsg_Destroy(msg);
        goto out;
      }
      n->resend = v;
      n->cap_resend = cap;
    }
    n->resend[n->n_resend++] = msg; /* ours now: re-sent by the host thread */
  }
out:
  pthread_cond_broadcast(&n->cond);
  pthread_mutex_unlock(&n->mu);
}

static void on_disconnected(natsConnection *nc, void *closure) {
  nats_out_t *n = closure;
  (void)nc;
  pthread_mutex_lock(&n->mu);
  if (n->connected)
    n->outages++;
  n->connected = 0;
  pthread_cond_broadcast(&n->cond);
  pthread_mutex_unlock(&n->mu);
}

/* The last callback of a connection: after it, cnats calls none of ours. */
static void on_closed(natsConnection *nc, void *closure) {
  nats_out_t *n = closure;
  (void)nc;
  pthread_mutex_lock(&n->mu);
  n->closed = 1;
  n->connected = 0;
  pthread_cond_broadcast(&n->cond);
  pthread_mutex_unlock(&n->mu);
}

/* The first connection, made in the background (the servers were away when
   open() tried). */
static void on_connected(natsConnection *nc, void *closure) {
  nats_out_t *n = closure;
  (void)nc;
  pthread_mutex_lock(&n->mu);
  n->connected = 1;
  n->connects++;
  n->progress_ms = now_ms();
  pthread_cond_broadcast(&n->cond);
  pthread_mutex_unlock(&n->mu);
}

/* Between two rounds over every server: 250 ms, doubling up to 2 s. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure) {
  int64_t d = WAIT_MIN_MS;
  (void)nc;
  (void)closure;
  while (attempts-- > 1 && d < WAIT_MAX_MS)
    d *= 2;
  return d < WAIT_MAX_MS ? d : WAIT_MAX_MS;
}

static void on_reconnected(natsConnection *nc, void *closure) {
  nats_out_t *n = closure;
  (void)nc;
  pthread_mutex_lock(&n->mu);
  n->connected = 1;
  n->reconnects++;
  pthread_cond_broadcast(&n->cond);
  pthread_mutex_unlock(&n->mu);
}

/* ---- host thread ---------------------------------------------------------- */

/* Log the connection events the cnats threads saw: one warning per outage,
   one line when it is over. */
static void say_events(nats_out_t *n) {
  int outages, reconnects, connects;
  char at[256] = "";
  pthread_mutex_lock(&n->mu);
  outages = n->outages;
  reconnects = n->reconnects;
  connects = n->connects;
  pthread_mutex_unlock(&n->mu);
  if (connects != n->connects_said) {
    n->connects_said = connects;
    if (natsConnection_GetConnectedUrl(n->nc, at, sizeof(at)) != NATS_OK)
      at[0] = '\0';
    say(n, TDM_PROC_LOG_WARN, "nats: connected to %s", at[0] ? at : n->url);
  }
  if (outages != n->outages_said) {
    n->outages_said = outages;
    say(n, TDM_PROC_LOG_WARN,
        "nats: lost the connection to %s; reading pauses once %" PRId64
        " messages wait for acknowledgement, reconnecting (no limit)",
        n->url, n->max_pending);
  }
  if (reconnects != n->reconnects_said) {
    n->reconnects_said = reconnects;
    if (natsConnection_GetConnectedUrl(n->nc, at, sizeof(at)) != NATS_OK)
      at[0] = '\0';
    say(n, TDM_PROC_LOG_WARN, "nats: reconnected to %s; delivery resumes",
        at[0] ? at : n->url);
  }
}

/* Publish `m` (ownership passes to cnats on success). The in-flight counts
   go up first: the ack may come back before js_PublishMsgAsync returns. */
static natsStatus publish(nats_out_t *n, natsMsg **m) {
  int len = natsMsg_GetDataLength(*m);
  natsStatus s;

  pthread_mutex_lock(&n->mu);
  n->inflight++;
  n->inflight_bytes += len;
  pthread_mutex_unlock(&n->mu);
  /* No per-message MaxWait: cnats keeps a timer per message then, which
     halves the throughput; an ack overdue is found by reclaim() instead. */
  s = js_PublishMsgAsync(n->js, m, NULL);
  if (s != NATS_OK) {
    pthread_mutex_lock(&n->mu);
    n->inflight--;
    n->inflight_bytes -= len;
    snprintf(n->last_err, sizeof(n->last_err), "publish: %s",
             natsStatus_GetText(s));
    pthread_mutex_unlock(&n->mu);
  }
  return s;
}

/*
 * Take back every message still awaiting its ack (cnats forgets them: a late
 * ack is dropped) into the re-send list. Called when acks are overdue: the
 * server may have lost them (killed before it stored them); re-sending with
 * the same id is harmless (a Duplicate ack).
 */
static void reclaim(nats_out_t *n) {
  natsMsgList pending = {NULL, 0};
  int64_t out;
  pthread_mutex_lock(&n->mu);
  out = n->inflight;
  pthread_mutex_unlock(&n->mu);
  /* cnats 3.4 crashes here when nothing was ever published */
  if (out <= 0 || js_PublishAsyncGetPendingList(&pending, n->js) != NATS_OK)
    return; /* NATS_NOT_FOUND: none pending */
  pthread_mutex_lock(&n->mu);
  for (int i = 0; i < pending.Count; i++) {
    natsMsg *m = pending.Msgs[i];
    if (m == NULL)
      continue;
    if (n->n_resend == n->cap_resend) {
      size_t cap = n->cap_resend ? n->cap_resend * 2 : 256;
      natsMsg **v = realloc(n->resend, cap * sizeof(*v));
      if (v == NULL) {
        n->broken = 1;
        break;
      }
      n->resend = v;
      n->cap_resend = cap;
    }
    n->inflight--;
    n->inflight_bytes -= natsMsg_GetDataLength(m);
    n->resend[n->n_resend++] = m;
    pending.Msgs[i] = NULL;
  }
  if (n->last_err[0] == '\0')
    snprintf(n->last_err, sizeof(n->last_err), "acknowledgements overdue");
  n->progress_ms = now_ms();
  pthread_mutex_unlock(&n->mu);
  natsMsgList_Destroy(&pending); /* only what could not be kept */
}

/* Publish again what failed or timed out. Stops at the first that cannot be
   published (kept for later). */
static void resend(nats_out_t *n) {
  for (;;) {
    natsMsg *m;
    pthread_mutex_lock(&n->mu);
    if (n->n_resend == 0 || !n->connected) {
      pthread_mutex_unlock(&n->mu);
      return;
    }
    m = n->resend[--n->n_resend];
    pthread_mutex_unlock(&n->mu);
    if (!n->resend_warned) {
      n->resend_warned = 1;
      say(n, TDM_PROC_LOG_INFO,
          "nats: re-sending messages whose acknowledgement failed or timed "
          "out (%s), with the same ids", n->last_err);
    }
    if (publish(n, &m) != NATS_OK) {
      pthread_mutex_lock(&n->mu);
      n->resend[n->n_resend++] = m; /* room: we just took it from there */
      pthread_mutex_unlock(&n->mu);
      return;
    }
  }
}

/* Wait on the condition until `deadline_ms` (CLOCK_REALTIME ms), mu held. */
static void wait_until(nats_out_t *n, int64_t deadline_ms) {
  struct timespec ts = {(time_t)(deadline_ms / 1000),
                        (long)(deadline_ms % 1000) * 1000000L};
  pthread_cond_timedwait(&n->cond, &n->mu, &ts);
}


/* Headers carry text on one line: bytes below 0x20, 0x7f and '%' of a path
   are written %XX. Into n->hpath (grown as needed). 0 or -ENOMEM. */
static int header_path(nats_out_t *n, const char *path) {
  static const char hex[] = "0123456789ABCDEF";
  size_t need = 3 * strlen(path) + 1, o = 0;
  if (need > n->hpath_cap) {
    char *b = realloc(n->hpath, need);
    if (b == NULL)
      return -ENOMEM;
    n->hpath = b;
    n->hpath_cap = need;
  }
  for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
    if (*p < 0x20 || *p == 0x7f || *p == '%') {
      n->hpath[o++] = '%';
      n->hpath[o++] = hex[*p >> 4];
      n->hpath[o++] = hex[*p & 15];
    } else {
      n->hpath[o++] = (char)*p;
    }
  }
  n->hpath[o] = '\0';
  return 0;
}

/* Bytes of data a message of the chunk's file may carry: the smaller of the
   server's max payload and the stream's max message size, less the headers
   at their longest ("NATS/1.0\r\n", "Key: value\r\n" each, "\r\n"). */
static int64_t room(const nats_out_t *n, size_t hpath_len) {
  int64_t lim = n->max_payload, hdr;
  hdr = 10 + 2 + (int64_t)(sizeof("Nats-Msg-Id: \r\n") - 1 + ID_MAX) +
        (int64_t)(sizeof("Tidemark-Path: \r\n") - 1 + hpath_len) +
        (int64_t)(sizeof("Tidemark-Offset: \r\n") - 1 + 20) +
        (int64_t)(sizeof("Tidemark-End: \r\n") - 1 + 20);
  if (n->max_msg > 0 && n->max_msg < lim)
    lim = n->max_msg;
  return lim - hdr;
}

/* The per-file state of a file whose cut varies; NULL when out of memory. */
static fstate_t *fs_get(nats_out_t *n, uint64_t file_id, uint32_t gen) {
  size_t i;
  if (2 * (n->fs_n + 1) > n->fs_cap) {
    size_t cap = n->fs_cap ? n->fs_cap * 2 : 64;
    fstate_t *v = calloc(cap, sizeof(*v));
    if (v == NULL)
      return NULL;
    for (size_t k = 0; k < n->fs_cap; k++) {
      if (!n->fs[k].used)
        continue;
      i = (size_t)((n->fs[k].file_id * 0x9E3779B97F4A7C15ull) ^ n->fs[k].gen);
      while (v[i & (cap - 1)].used)
        i++;
      v[i & (cap - 1)] = n->fs[k];
    }
    free(n->fs);
    n->fs = v;
    n->fs_cap = cap;
  }
  i = (size_t)((file_id * 0x9E3779B97F4A7C15ull) ^ gen);
  for (;; i++) {
    fstate_t *e = &n->fs[i & (n->fs_cap - 1)];
    if (e->used && e->file_id == file_id && e->gen == gen)
      return e;
    if (!e->used) {
      memset(e, 0, sizeof(*e));
      e->used = 1;
      e->file_id = file_id;
      e->gen = gen;
      n->fs_n++;
      return e;
    }
  }
}

/* How a message is named. */
enum {
  ID_OFFSET = 0, /* INSTANCE:FILE:OFFSET: the bytes never change with how
                    the file was read (a line, a piece of a long line) */
  ID_LEN = 1     /* INSTANCE:FILE:OFFSET:LEN: a partial last line
                    (--records bytes), which a replay may read longer */
};

/* One message: data[0..len) at `offset` of the chunk's file; `end` is the
   file offset after the bytes it stands for (offset + len, or one more for a
   record's newline, which is not sent; written as Tidemark-End then). */
static natsStatus make_msg(nats_out_t *n, const tdm_chunk_t *c,
                           const char *data, size_t len, uint64_t offset,
                           uint64_t end, int idk, natsMsg **out) {
  uint32_t gen = TDM_CHUNK_HAS(c, generation) ? c->generation : 0;
  char id[ID_MAX], off[24], fid[40];
  natsMsg *m = NULL;
  natsStatus s;

  /* FILE_ID, or FILE_ID.GEN once the same offsets may name other bytes (a
     truncation, a new version of a whole file). */
  if (gen == 0)
    snprintf(fid, sizeof(fid), "%" PRIu64, c->file_id);
  else
    snprintf(fid, sizeof(fid), "%" PRIu64 ".%" PRIu32, c->file_id, gen);
  if (idk == ID_OFFSET)
    snprintf(id, sizeof(id), "%s:%s:%" PRIu64, n->instance, fid, offset);
  else
    snprintf(id, sizeof(id), "%s:%s:%" PRIu64 ":%zu", n->instance, fid,
             offset, len);
  snprintf(off, sizeof(off), "%" PRIu64, offset);
  s = natsMsg_Create(&m, n->subject, NULL, data, (int)len);
  if (s == NATS_OK)
    s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
  if (s == NATS_OK)
    s = natsMsgHeader_Set(m, "Tidemark-Path", n->hpath);
  if (s == NATS_OK)
    s = natsMsgHeader_Set(m, "Tidemark-Offset", off);
  if (s == NATS_OK && end != offset + len) {
    snprintf(off, sizeof(off), "%" PRIu64, end);
    s = natsMsgHeader_Set(m, "Tidemark-End", off);
  }
  if (s != NATS_OK) {
    natsMsg_Destroy(m);
    return s;
  }
  *out = m;
  return NATS_OK;
}

/* Publish a message asynchronously: its ack comes to on_ack. */
static natsStatus send_one(nats_out_t *n, const tdm_chunk_t *c,
                           const char *data, size_t len, uint64_t offset,
                           uint64_t end, int idk) {
  natsMsg *m = NULL;
  natsStatus s = make_msg(n, c, data, len, offset, end, idk, &m);

  if (s != NATS_OK)
    return s;
  if (publish(n, &m) != NATS_OK) {
    /* Not taken (e.g. the reconnect buffer is full): ours to send later. */
    pthread_mutex_lock(&n->mu);
    if (n->n_resend == n->cap_resend) {
      size_t cap = n->cap_resend ? n->cap_resend * 2 : 256;
      natsMsg **v = realloc(n->resend, cap * sizeof(*v));
      if (v == NULL) {
        pthread_mutex_unlock(&n->mu);
        natsMsg_Destroy(m);
        return NATS_NO_MEMORY;
      }
      n->resend = v;
      n->cap_resend = cap;
    }
    n->resend[n->n_resend++] = m;
    pthread_mutex_unlock(&n->mu);
  }
  return NATS_OK;
}

/* The end (file offset after its bytes) of the message stored as `seq`,
   which should begin at `offset`: Tidemark-End, or Tidemark-Offset plus its
   length. 0 when it is gone from the stream or names another offset. */
static natsStatus stored_end(nats_out_t *n, uint64_t seq, uint64_t offset,
                             uint64_t *end) {
  natsMsg *m = NULL;
  jsErrCode jerr = 0;
  const char *v = NULL;
  natsStatus s = js_GetMsg(&m, n->js, n->stream, seq, NULL, &jerr);

  *end = 0;
  if (s == NATS_NOT_FOUND)
    return NATS_OK;
  if (s != NATS_OK)
    return s;
  if (natsMsgHeader_Get(m, "Tidemark-Offset", &v) == NATS_OK &&
      strtoull(v, NULL, 10) == offset) {
    if (natsMsgHeader_Get(m, "Tidemark-End", &v) == NATS_OK)
      *end = strtoull(v, NULL, 10);
    else
      *end = offset + (uint64_t)natsMsg_GetDataLength(m);
  }
  natsMsg_Destroy(m);
  return NATS_OK;
}

/*
 * A message whose cut depends on how the file was read (see fstate_t):
 * data[0..len) at `offset`, standing for the file's bytes up to `end`.
 * Resolving: published and acknowledged on its own; a duplicate (the id of
 * a message an earlier run published) tells where that message ended, and
 * only what lies after it is published (under its own offset, checked the
 * same way). So a replay that reads a record longer, or a chunk cut
 * elsewhere, publishes each byte once.
 */
static natsStatus send_var(nats_out_t *n, const tdm_chunk_t *c, fstate_t *fs,
                           const char *data, size_t len, uint64_t offset,
                           uint64_t end) {
  if (fs->live)
    return send_one(n, c, data, len, offset, end, ID_OFFSET);
  while (len > 0 || end > offset) {
    jsPubOptions po;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsMsg *m = NULL;
    uint64_t seq, was;
    natsStatus s;
    int dup;

    if (end <= fs->covered)
      return NATS_OK; /* the stream has all of it */
    if (offset < fs->covered) {
      uint64_t skip = fs->covered - offset;
      if (skip >= len)
        return NATS_OK; /* only the newline, which is not sent */
      data += skip;
      len -= (size_t)skip;
      offset = fs->covered;
    }
    if ((s = make_msg(n, c, data, len, offset, end, ID_OFFSET, &m)) != NATS_OK)
      return s;
    jsPubOptions_Init(&po);
    po.MaxWait = n->timeout_ms;
    s = js_PublishMsg(&pa, n->js, m, &po, &jerr);
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
      pthread_mutex_lock(&n->mu);
      snprintf(n->last_err, sizeof(n->last_err), "publish: %s",
               natsStatus_GetText(s));
      pthread_mutex_unlock(&n->mu);
      return s;
    }
    dup = pa->Duplicate;
    seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    if (!dup) {
      fs->live = 1; /* nothing after this was published before */
      return NATS_OK;
    }
    pthread_mutex_lock(&n->mu);
    n->duplicates++;
    pthread_mutex_unlock(&n->mu);
    if ((s = stored_end(n, seq, offset, &was)) != NATS_OK)
      return s;
    /* Gone from the stream, or not ours: take it as covering this one. */
    fs->covered = was > offset ? was : end;
    if (fs->covered >= end)
      return NATS_OK;
  }
  return NATS_OK;
}

/* Room for one more chunk? Waits for acks while connected (up to the
   timeout); answers 0 when the cap stays full or the server is away. */
static int make_room(nats_out_t *n) {
  int64_t deadline = now_ms() + n->timeout_ms;
  int ok, stale = 0;
  pthread_mutex_lock(&n->mu);
  for (;;) {
    int64_t unacked = n->inflight + (int64_t)n->n_resend;
    ok = unacked < n->max_pending && n->inflight_bytes < MAX_PENDING_BYTES;
    stale = n->connected && now_ms() - n->progress_ms >= n->timeout_ms;
    if (ok || !n->connected || n->n_resend > 0 || stale ||
        now_ms() >= deadline)
      break;
    wait_until(n, deadline);
  }
  pthread_mutex_unlock(&n->mu);
  if (!ok && stale) { /* no ack for timeout-ms while connected */
    reclaim(n);
    resend(n);
  }
  return ok;
}

/* Multiline records (--multiline-start): one message per record, a stack
   trace whole, without its last newline (Tidemark-End says where it ends),
   in pieces of at most `max` bytes. Its extent can depend on when it was
   read (completed by the timeout, or by the next start line): send_var
   publishes a replay that reads it longer without publishing the first part
   twice. The bytes after the last end of a piece chunk are a piece of an
   over-long record. */
static natsStatus send_records(nats_out_t *n, const tdm_chunk_t *c,
                               fstate_t *fs, size_t max) {
  const char *base = c->data, *p = base, *end = base + c->len;
  natsStatus s = NATS_OK;

  for (size_t k = 0; k <= c->n_records && s == NATS_OK; k++) {
    const char *stop = k < c->n_records ? base + c->record_ends[k] : end;
    const char *rend = stop, *q = p;
    if (stop > end || stop < p)
      break; /* a record end outside the chunk: ignore the rest */
    if (k == c->n_records && p == end)
      break; /* the chunk ends with its last record */
    if (k < c->n_records && stop > p && stop[-1] == '\n')
      stop--;
    do { /* pieces of at most `max` (an empty line: empty) */
      size_t len = (size_t)(stop - q) > max ? max : (size_t)(stop - q);
      const char *e = q + len == stop ? rend : q + len;
      s = send_var(n, c, fs, q, len, c->offset + (uint64_t)(q - base),
                   c->offset + (uint64_t)(e - base));
      q += len;
    } while (q < stop && s == NATS_OK);
    p = rend;
  }
  return s;
}

/* records=chunk: the chunk as messages of at most `max` bytes. */
static natsStatus send_chunk(nats_out_t *n, const tdm_chunk_t *c,
                             fstate_t *fs, size_t max) {
  const char *base = c->data, *p = base, *end = p + c->len;
  natsStatus s = NATS_OK;

  while (p < end && s == NATS_OK) {
    size_t len = (size_t)(end - p) > max ? max : (size_t)(end - p);
    uint64_t off = c->offset + (uint64_t)(p - base);
    s = send_var(n, c, fs, p, len, off, off + len);
    p += len;
  }
  return s;
}

/* One message per line (pieces of at most `max` bytes). */
static natsStatus send_lines(nats_out_t *n, const tdm_chunk_t *c, size_t max) {
  const char *base = c->data, *p = base, *end = p + c->len;
  natsStatus s = NATS_OK;

  while (p < end && s == NATS_OK) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl != NULL ? nl : end;
    /* a line without its newline: complete only if the chunk ends a
       piece of a long record (then it is cut the same way every time) */
    int idk = nl != NULL || (c->flags & TDM_CHUNK_PIECE) ? ID_OFFSET : ID_LEN;
    const char *q = p;
    do { /* pieces of at most `max` */
      size_t len = (size_t)(stop - q) > max ? max : (size_t)(stop - q);
      uint64_t off = c->offset + (uint64_t)(q - base);
      s = send_one(n, c, q, len, off, off + len, idk);
      q += len;
    } while (q < stop && s == NATS_OK);
    p = nl != NULL ? nl + 1 : end;
  }
  return s;
}

static int get_ready(nats_out_t *n);

static int nats_process(void *state, const tdm_chunk_t *c, char *msg) {
  nats_out_t *n = state;
  uint32_t gen = TDM_CHUNK_HAS(c, generation) ? c->generation : 0;
  int multi = TDM_CHUNK_HAS(c, n_records) && c->record_ends != NULL;
  fstate_t *fs = NULL;
  int64_t max;
  natsStatus s;

  say_events(n);
  if (!n->ready && !get_ready(n)) {
    snprintf(msg, TDM_MSG_MAX, "nats: waiting for %.230s", n->why);
    return TDM_PROC_RETRY;
  }
  resend(n);
  if (n->broken) {
    snprintf(msg, TDM_MSG_MAX, "nats: %s: out of memory keeping a message "
             "to re-send; the processor must be reopened", n->url);
    return TDM_PROC_FAIL;
  }
  if (header_path(n, c->path) != 0) {
    snprintf(msg, TDM_MSG_MAX, "nats: out of memory");
    return TDM_PROC_RETRY;
  }
  if ((max = room(n, strlen(n->hpath))) <= 0) {
    /* Its headers alone are over the limit: no server takes any of it. */
    snprintf(msg, TDM_MSG_MAX, "nats: a message of this file at offset %"
             PRIu64 " cannot be published: its headers (its path is %zu "
             "bytes) leave no room under the %s of %" PRId64 " bytes",
             c->offset, strlen(n->hpath),
             n->max_msg > 0 && n->max_msg < n->max_payload
                 ? "stream's max message size" : "server's max payload",
             n->max_msg > 0 && n->max_msg < n->max_payload
                 ? n->max_msg : (int64_t)n->max_payload);
    return TDM_PROC_REJECT;
  }
  if (!make_room(n)) {
    pthread_mutex_lock(&n->mu);
    snprintf(msg, TDM_MSG_MAX, "nats: %s %s: %" PRId64 " messages await "
             "acknowledgement (max-pending %" PRId64 ")%s%s", n->url,
             n->connected ? "is slow" : "is unreachable",
             n->inflight + (int64_t)n->n_resend, n->max_pending,
             n->last_err[0] ? "; last error: " : "", n->last_err);
    pthread_mutex_unlock(&n->mu);
    return TDM_PROC_RETRY;
  }
  if (n->chunk_records || (multi && !n->chunk_records)) {
    if ((fs = fs_get(n, c->file_id, gen)) == NULL) {
      snprintf(msg, TDM_MSG_MAX, "nats: out of memory");
      return TDM_PROC_RETRY;
    }
    if (fs->live && fs->next != c->offset) {
      fs->live = 0; /* not where this run left off: check again */
      fs->covered = 0;
    }
  }

  /* From here the chunk is taken whole: what cannot be published now waits
     in the re-send list (bounded: one chunk over the cap at most). */
  if (n->chunk_records)
    s = send_chunk(n, c, fs, (size_t)max);
  else if (multi)
    s = send_records(n, c, fs, (size_t)max);
  else
    s = send_lines(n, c, (size_t)max);
  if (s != NATS_OK) {
    /* A message that could not be built (out of memory), or one checked
       on its own that was not acknowledged: offered again, the messages of
       this chunk already out are re-sent with the same ids. */
    pthread_mutex_lock(&n->mu);
    snprintf(msg, TDM_MSG_MAX, "nats: %s: %s%s%s", n->url,
             natsStatus_GetText(s), n->last_err[0] ? "; last error: " : "",
             n->last_err);
    pthread_mutex_unlock(&n->mu);
    return TDM_PROC_RETRY;
  }
  if (fs != NULL && fs->live)
    fs->next = c->offset + c->len;
  return TDM_PROC_OK;
}

static int nats_caught_up(void *state, char *msg) {
  nats_out_t *n = state;
  (void)msg;
  say_events(n);
  resend(n);
  return TDM_PROC_OK; /* publishing is asynchronous: cnats flushes now */
}

/* The restore blob: text for `tidemark status` (nothing needs restoring:
   the stream itself, with its duplicate window, is the state). */
static size_t blob_text(const nats_out_t *n, char *buf, size_t cap) {
  int w = n->stream == NULL
              ? snprintf(buf, cap, "nats %s, no stream found yet", n->url)
              : snprintf(buf, cap, "nats %s stream %s, duplicate window %"
                         PRId64 " s", n->url, n->stream,
                         n->dup_window_ns / 1000000000);
  return w < 0 ? 0 : (size_t)w >= cap ? cap - 1 : (size_t)w;
}

static int nats_commit(void *state, void *restore, size_t *restore_len,
                       char *msg) {
  nats_out_t *n = state;
  int64_t deadline = now_ms() + n->timeout_ms, unacked;
  int connected, reclaimed = 0;

  say_events(n);
  for (;;) {
    resend(n);
    pthread_mutex_lock(&n->mu);
    unacked = n->inflight + (int64_t)n->n_resend;
    connected = n->connected;
    if (unacked > 0 && connected && !n->broken && now_ms() >= deadline &&
        !reclaimed) {
      /* Waited timeout-ms: what is still out is overdue (lost by a server
         that was killed, say). Send it again, and wait once more. */
      pthread_mutex_unlock(&n->mu);
      reclaim(n);
      reclaimed = 1;
      deadline = now_ms() + n->timeout_ms;
      continue;
    }
    if (unacked > 0 && connected && !n->broken && now_ms() < deadline) {
      /* wake at least every 50 ms to re-send what timed out */
      int64_t until = now_ms() + 50;
      wait_until(n, until < deadline ? until : deadline);
      pthread_mutex_unlock(&n->mu);
      continue;
    }
    pthread_mutex_unlock(&n->mu);
    break;
  }
  if (n->broken) {
    *restore_len = 0;
    snprintf(msg, TDM_MSG_MAX, "nats: %s: out of memory keeping a message "
             "to re-send", n->url);
    return TDM_PROC_FAIL;
  }
  if (unacked > 0) {
    *restore_len = 0;
    pthread_mutex_lock(&n->mu);
    snprintf(msg, TDM_MSG_MAX, "nats: %s%s: %" PRId64 " messages not "
             "acknowledged yet by stream %s%s%s", n->url,
             connected ? "" : " is unreachable", unacked, n->stream,
             n->last_err[0] ? "; last error: " : "", n->last_err);
    pthread_mutex_unlock(&n->mu);
    return TDM_PROC_RETRY;
  }
  *restore_len = blob_text(n, restore, *restore_len);
  return TDM_PROC_OK;
}

static void nats_close(void *state) {
  nats_out_t *n = state;
  if (n == NULL)
    return;
  if (n->nc != NULL) {
    /* Nothing left in flight matters: the host committed first, and what
       was not committed is published again, with the same ids, next time.
       Take it back so no ack handler runs for it, then close and wait for
       the closed callback: the callbacks run on a cnats thread and must be
       over before `n` goes. */
    int64_t deadline = now_ms() + 5000;
    if (n->js != NULL)
      reclaim(n);
    natsConnection_Close(n->nc);
    pthread_mutex_lock(&n->mu);
    while (!n->closed && now_ms() < deadline)
      wait_until(n, deadline);
    pthread_mutex_unlock(&n->mu);
  }
  jsCtx_Destroy(n->js);
  natsConnection_Destroy(n->nc);
  natsOptions_Destroy(n->opts);
  for (size_t i = 0; i < n->n_resend; i++)
    natsMsg_Destroy(n->resend[i]);
  free(n->resend);
  pthread_mutex_destroy(&n->mu);
  pthread_cond_destroy(&n->cond);
  for (int i = 0; i < n->n_urls; i++)
    free(n->urls[i]);
  free(n->urls);
  free(n->hpath);
  free(n->fs);
  free(n->url);
  free(n->subject);
  free(n->stream);
  free(n->creds);
  lib_release(n);
  free(n);
}

/* ---- open ----------------------------------------------------------------- */

/* Does the literal subject `subj` match the stream subject `pat` ('*': one
   token, '>': one or more tokens to the end)? */
static int subject_matches(const char *pat, const char *subj) {
  while (*pat != '\0' && *subj != '\0') {
    const char *pe = strchr(pat, '.'), *se = strchr(subj, '.');
    size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
    size_t sl = se ? (size_t)(se - subj) : strlen(subj);
    if (pl == 1 && pat[0] == '>')
      return 1;
    if (!(pl == 1 && pat[0] == '*') && (pl != sl || memcmp(pat, subj, pl) != 0))
      return 0;
    if ((pe == NULL) != (se == NULL))
      return 0;
    if (pe == NULL)
      return 1;
    pat = pe + 1;
    subj = se + 1;
  }
  return *pat == '\0' && *subj == '\0';
}

static int stream_captures(const jsStreamInfo *si, const char *subj) {
  if (si == NULL || si->Config == NULL)
    return 0;
  for (int i = 0; i < si->Config->SubjectsLen; i++)
    if (subject_matches(si->Config->Subjects[i], subj))
      return 1;
  return 0;
}

static int parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out) {
  char *e;
  long long x;
  errno = 0;
  x = strtoll(v, &e, 10);
  if (errno != 0 || e == v || *e != '\0' || x < lo || x > hi)
    return -1;
  *out = x;
  return 0;
}

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
    return bad(a, "nats: parameter \"%s\" given twice", key);
  if (value[0] == '\0')
    return bad(a, "nats: parameter \"%s\" is empty", key);
  if ((*slot = strdup(value)) == NULL)
    return bad(a, "nats: out of memory");
  return TDM_PROC_OK;
}

/* The parameters into `n`. TDM_PROC_FAIL with a message naming the key. */
static int parse_params(nats_out_t *n, const tdm_open_args_t *a) {
  int rc;
  for (size_t i = 0; i < a->n_params; i++) {
    const char *k = a->params[i].key, *v = a->params[i].value;
    if (strcmp(k, "url") == 0)
      rc = dup_param(a, &n->url, k, v);
    else if (strcmp(k, "subject") == 0)
      rc = dup_param(a, &n->subject, k, v);
    else if (strcmp(k, "stream") == 0)
      rc = dup_param(a, &n->stream, k, v);
    else if (strcmp(k, "creds") == 0)
      rc = dup_param(a, &n->creds, k, v);
    else if (strcmp(k, "records") == 0) {
      if (strcmp(v, "line") == 0)
        n->chunk_records = 0;
      else if (strcmp(v, "chunk") == 0)
        n->chunk_records = 1;
      else
        return bad(a, "nats: parameter \"records\": \"%s\" is neither line "
                   "nor chunk", v);
      rc = TDM_PROC_OK;
    } else if (strcmp(k, "max-pending") == 0) {
      if (parse_int(v, 1, 1000000, &n->max_pending) != 0)
        return bad(a, "nats: parameter \"max-pending\": \"%s\" is not a "
                   "number from 1 to 1000000", v);
      rc = TDM_PROC_OK;
    } else if (strcmp(k, "timeout-ms") == 0) {
      if (parse_int(v, 10, 3600000, &n->timeout_ms) != 0)
        return bad(a, "nats: parameter \"timeout-ms\": \"%s\" is not a "
                   "number from 10 to 3600000", v);
      rc = TDM_PROC_OK;
    } else {
      return bad(a, "nats: unknown parameter \"%s\" (nats takes url, "
                 "subject, stream, records, max-pending, timeout-ms, creds)",
                 k);
    }
    if (rc != TDM_PROC_OK)
      return rc;
  }
  if (n->url == NULL)
    return bad(a, "nats: missing parameter \"url\" (e.g. "
               "nats:url=nats://127.0.0.1:4222,subject=logs)");
  if (n->subject == NULL)
    return bad(a, "nats: missing parameter \"subject\" (e.g. "
               "nats:url=nats://127.0.0.1:4222,subject=logs)");
  if (strpbrk(n->subject, "*> \t") != NULL || n->subject[0] == '.' ||
      n->subject[strlen(n->subject) - 1] == '.' || strstr(n->subject, ".."))
    return bad(a, "nats: parameter \"subject\": \"%s\" is not a literal "
               "subject (no wildcards, spaces or empty tokens)", n->subject);
  if (n->creds != NULL && access(n->creds, R_OK) != 0)
    return bad(a, "nats: parameter \"creds\": %s: %s", n->creds,
               strerror(errno));
  return TDM_PROC_OK;
}

/* Split the url parameter at '|' into n->urls. TDM_PROC_FAIL naming an
   empty element. */
static int split_urls(nats_out_t *n, const tdm_open_args_t *a) {
  const char *p = n->url;
  int count = 1;
  for (const char *q = p; *q != '\0'; q++)
    count += *q == '|';
  if ((n->urls = calloc((size_t)count, sizeof(*n->urls))) == NULL)
    return bad(a, "nats: out of memory");
  for (int i = 0; i < count; i++) {
    const char *e = strchr(p, '|');
    size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
    while (len > 0 && (*p == ' ' || *p == '\t')) {
      p++;
      len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
      len--;
    if (len == 0)
      return bad(a, "nats: parameter \"url\": \"%s\" has an empty URL (URLs "
                 "are separated by '|': nats://a:4222|nats://b:4222)", n->url);
    if ((n->urls[i] = strndup(p, len)) == NULL)
      return bad(a, "nats: out of memory");
    n->n_urls++;
    p = e != NULL ? e + 1 : p + len;
  }
  return TDM_PROC_OK;
}

/* Is this a definite answer that the stream is not there (as opposed to a
   server or a JetStream cluster that does not answer yet)? */
static int stream_missing(natsStatus s, jsErrCode jerr) {
  return s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr;
}

/* Find the stream (named, or the one capturing the subject) and read its
   duplicate window and max message size. TDM_PROC_OK; TDM_PROC_UNAVAILABLE
   when JetStream answered that no such stream is there (a configuration to
   fix); TDM_PROC_RETRY when it did not answer (not enabled, a cluster
   electing its leader, a timeout). `msg` (TDM_MSG_MAX) says which. */
static int find_stream(nats_out_t *n, char *msg) {
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  natsStatus s;

  if (n->stream != NULL) {
    s = js_GetStreamInfo(&si, n->js, n->stream, NULL, &jerr);
    if (stream_missing(s, jerr)) {
      snprintf(msg, TDM_MSG_MAX, "nats: %s has no stream \"%s\" (for "
               "subject \"%s\"); create it first", n->url, n->stream,
               n->subject);
      return TDM_PROC_UNAVAILABLE;
    }
    if (s != NATS_OK) {
      snprintf(msg, TDM_MSG_MAX, "JetStream on %s to answer for stream "
               "\"%s\" (%s; is JetStream enabled?)", n->url, n->stream,
               natsStatus_GetText(s));
      return TDM_PROC_RETRY;
    }
    if (!stream_captures(si, n->subject)) {
      snprintf(msg, TDM_MSG_MAX, "nats: %s: stream \"%s\" does not "
               "capture subject \"%s\"", n->url, n->stream, n->subject);
      jsStreamInfo_Destroy(si);
      return TDM_PROC_UNAVAILABLE;
    }
  } else {
    jsStreamNamesList *names = NULL;
    s = js_StreamNames(&names, n->js, NULL, &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
      snprintf(msg, TDM_MSG_MAX, "JetStream on %s to list its streams (%s; "
               "is JetStream enabled?)", n->url, natsStatus_GetText(s));
      return TDM_PROC_RETRY;
    }
    for (int i = 0; names != NULL && i < names->Count && si == NULL; i++) {
      jsStreamInfo *x = NULL;
      s = js_GetStreamInfo(&x, n->js, names->List[i], NULL, &jerr);
      if (s == NATS_OK && stream_captures(x, n->subject)) {
        si = x;
      } else {
        jsStreamInfo_Destroy(x);
        if (s != NATS_OK && !stream_missing(s, jerr)) {
          snprintf(msg, TDM_MSG_MAX, "JetStream on %s to describe stream "
                   "\"%s\" (%s)", n->url, names->List[i],
                   natsStatus_GetText(s));
          jsStreamNamesList_Destroy(names);
          return TDM_PROC_RETRY;
        }
      }
    }
    jsStreamNamesList_Destroy(names);
    if (si == NULL) {
      snprintf(msg, TDM_MSG_MAX, "nats: %s: no stream captures subject "
               "\"%s\" (stream: none given); create one first", n->url,
               n->subject);
      return TDM_PROC_UNAVAILABLE;
    }
    if ((n->stream = strdup(si->Config->Name)) == NULL) {
      jsStreamInfo_Destroy(si);
      snprintf(msg, TDM_MSG_MAX, "nats: out of memory");
      return TDM_PROC_RETRY;
    }
  }
  n->dup_window_ns = si->Config->Duplicates;
  n->max_msg = si->Config->MaxMsgSize > 0 ? si->Config->MaxMsgSize : 0;
  jsStreamInfo_Destroy(si);
  return TDM_PROC_OK;
}

/* The connection's options: the servers, timeouts, reconnects for ever,
   callbacks, creds. A first connection that fails goes on in the
   background (on_connected). Returns TDM_PROC_OK, or TDM_PROC_FAIL with
   a->msg naming the parameter. */
static int set_options(nats_out_t *n, const tdm_open_args_t *a) {
  natsStatus s;

  s = natsOptions_Create(&n->opts);
  if (s == NATS_OK)
    s = natsOptions_SetServers(n->opts, (const char **)n->urls, n->n_urls);
  if (s == NATS_OK) /* what the server's monitoring shows (connz) */
    s = natsOptions_SetName(n->opts, "tidemark");
  if (s == NATS_OK)
    s = natsOptions_SetTimeout(n->opts, n->timeout_ms);
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(n->opts, -1);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectWait(n->opts, WAIT_MIN_MS);
  if (s == NATS_OK)
    s = natsOptions_SetCustomReconnectDelay(n->opts, reconnect_delay, n);
  if (s == NATS_OK) /* room for what max-pending lets through an outage */
    s = natsOptions_SetReconnectBufSize(n->opts, (int)MAX_PENDING_BYTES + (8 << 20));
  if (s == NATS_OK)
    s = natsOptions_SetDisconnectedCB(n->opts, on_disconnected, n);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectedCB(n->opts, on_reconnected, n);
  if (s == NATS_OK)
    s = natsOptions_SetClosedCB(n->opts, on_closed, n);
  if (s == NATS_OK && n->creds != NULL)
    s = natsOptions_SetUserCredentialsFromFiles(n->opts, n->creds, NULL);
  if (s != NATS_OK) {
    snprintf(a->msg, TDM_MSG_MAX, "nats: parameter \"url\" or \"creds\": "
             "%s: %s", n->url, nats_GetLastError(NULL));
    return TDM_PROC_FAIL;
  }
  return TDM_PROC_OK;
}

/* Connect and open the JetStream context. TDM_PROC_OK also when no server
   answers yet (cnats goes on trying in the background, n->connected stays
   0); TDM_PROC_UNAVAILABLE with a->msg naming the URLs when a server
   refused us (credentials): no retry makes that work. */
static int connect_js(nats_out_t *n, const tdm_open_args_t *a) {
  jsOptions jo;
  natsStatus s;

  /* One try first: what a server answers (a refusal) is final. */
  s = natsConnection_Connect(&n->nc, n->opts);
  if (s == NATS_NO_SERVER || s == NATS_TIMEOUT || s == NATS_IO_ERROR ||
      s == NATS_CONNECTION_CLOSED) {
    /* None answered: go on trying in the background. */
    natsConnection_Destroy(n->nc);
    n->nc = NULL;
    s = natsOptions_SetRetryOnFailedConnect(n->opts, true, on_connected, n);
    if (s == NATS_OK)
      s = natsConnection_Connect(&n->nc, n->opts);
  }
  if (s == NATS_OK) {
    n->connected = 1;
    n->progress_ms = now_ms();
  } else if (s == NATS_NOT_YET_CONNECTED) {
    snprintf(n->why, sizeof(n->why), "a server of %s to answer (none "
             "does)", n->url);
  } else {
    /* cnats' text, without its "(conn.c:123): " */
    const char *e = nats_GetLastError(NULL), *r;
    if (e != NULL && e[0] == '(' && (r = strstr(e, "): ")) != NULL)
      e = r + 3;
    snprintf(a->msg, TDM_MSG_MAX, "nats: %s refused the connection: %s",
             n->url, e != NULL && e[0] ? e : natsStatus_GetText(s));
    return TDM_PROC_UNAVAILABLE;
  }

  jsOptions_Init(&jo);
  jo.Wait = n->timeout_ms;
  jo.PublishAsync.AckHandler = on_ack;
  jo.PublishAsync.AckHandlerClosure = n;
  /* Our own cap (max-pending) bounds what is in flight; cnats' must never
     stall the host thread first: publishing past cnats' MaxPending from the
     thread that must also read the acks blocks it (a connection got stuck
     at 5,096 of 20,000 messages that way). */
  jo.PublishAsync.MaxPending = 1 << 30;
  s = natsConnection_JetStream(&n->js, n->nc, &jo);
  if (s != NATS_OK) {
    snprintf(a->msg, TDM_MSG_MAX, "nats: %s: JetStream: %s", n->url,
             natsStatus_GetText(s));
    return TDM_PROC_UNAVAILABLE;
  }
  return TDM_PROC_OK;
}

/* Say where records go, and warn when the stream's duplicate window is too
   short to catch what is re-sent after a crash. */
static void say_window(nats_out_t *n) {
  uint64_t need_ms = 2 * n->checkpoint_ms + RESTART_MS;
  int64_t win_ms = n->dup_window_ns / 1000000;

  say(n, TDM_PROC_LOG_INFO,
      "nats: %s, subject %s, stream %s, duplicate window %" PRId64
      " s, instance %s", n->url, n->subject, n->stream, win_ms / 1000,
      n->instance);
  if (win_ms < (int64_t)need_ms)
    say(n, TDM_PROC_LOG_WARN,
        "nats: stream %s on %s keeps ids for %" PRId64 " ms, less than "
        "twice the checkpoint interval plus a restart (%" PRIu64
        " ms): a record re-sent after a crash may be stored twice; raise "
        "the stream's duplicate window", n->stream, n->url, win_ms, need_ms);
}

/* Connected, with the stream found? Looks (again) once the backoff is over:
   a server and JetStream that were away at the start are waited for, and a
   stream found missing then is said once (an error: create it) and looked
   for again. Returns 1 when ready. */
static int get_ready(nats_out_t *n) {
  char why[TDM_MSG_MAX];
  int64_t now = now_ms();
  int connected, rc;

  if (n->ready)
    return 1;
  if (now < n->next_try_ms)
    return 0;
  n->try_wait_ms = n->try_wait_ms == 0 ? WAIT_MIN_MS
                   : n->try_wait_ms * 2 > WAIT_MAX_MS ? WAIT_MAX_MS
                                                      : n->try_wait_ms * 2;
  n->next_try_ms = now + n->try_wait_ms;
  pthread_mutex_lock(&n->mu);
  connected = n->connected;
  pthread_mutex_unlock(&n->mu);
  if (!connected)
    return 0; /* n->why says what is waited for */
  n->max_payload = (int)natsConnection_GetMaxPayload(n->nc);
  rc = find_stream(n, why);
  if (rc == TDM_PROC_OK) {
    n->ready = 1;
    say_window(n);
    if (n->why_said[0] != '\0')
      say(n, TDM_PROC_LOG_WARN, "nats: %s answers now; delivery starts",
          n->url);
    return 1;
  }
  snprintf(n->why, sizeof(n->why), "%s", why);
  if (rc == TDM_PROC_UNAVAILABLE && strcmp(n->why_said, why) != 0) {
    snprintf(n->why_said, sizeof(n->why_said), "%s", why);
    say(n, TDM_PROC_LOG_ERROR, "%s; reading pauses until it is there", why);
  }
  return 0;
}

/*
 * libnats starts threads of its own (timers, callbacks, a garbage
 * collector); they must be gone before the plugin is unloaded (dlclose()
 * would unmap the code they run) and before the process exits. The last
 * instance to close calls nats_CloseAndWait(), at close time, not from a
 * destructor: in a destructor, dlclose() unmapped libnats right after the
 * wait returned, while a thread that had let go of the library could still
 * be returning through its code (SIGSEGV in it.nats-hosts under
 * AddressSanitizer); and at exit, libnats may already be torn down when a
 * destructor of ours runs. (Pinning the plugin with RTLD_NODELETE instead
 * leaves OpenSSL's state, which libnats initialised, to LeakSanitizer.)
 */
static void lib_acquire(nats_out_t *n) {
  pthread_mutex_lock(&lib_mu);
  lib_users++;
  n->lib_user = 1;
  pthread_mutex_unlock(&lib_mu);
}

static void lib_release(nats_out_t *n) {
  if (!n->lib_user)
    return;
  pthread_mutex_lock(&lib_mu);
  if (--lib_users == 0)
    (void)nats_CloseAndWait(5000);
  pthread_mutex_unlock(&lib_mu);
}

static int nats_open(void **state, const tdm_open_args_t *a) {
  nats_out_t *n;
  int rc;

  if (!TDM_OPEN_ARGS_HAS(a, log_arg) || a->instance == NULL ||
      a->instance[0] == '\0') {
    snprintf(a->msg, TDM_MSG_MAX, "nats: this tidemark gives no instance id "
             "(the plugin needs tidemark 0.2 or later)");
    return TDM_PROC_FAIL;
  }
  if ((n = calloc(1, sizeof(*n))) == NULL) {
    snprintf(a->msg, TDM_MSG_MAX, "nats: out of memory");
    return TDM_PROC_FAIL;
  }
  pthread_mutex_init(&n->mu, NULL);
  pthread_cond_init(&n->cond, NULL);
  n->max_pending = DEFAULT_MAX_PENDING;
  n->timeout_ms = DEFAULT_TIMEOUT_MS;
  snprintf(n->instance, sizeof(n->instance), "%s", a->instance);
  n->checkpoint_ms = a->checkpoint_ms;
  n->log = a->log;
  n->log_arg = a->log_arg;
  if ((rc = parse_params(n, a)) != TDM_PROC_OK ||
      (rc = split_urls(n, a)) != TDM_PROC_OK)
    goto err;

  lib_acquire(n);
  if ((rc = set_options(n, a)) != TDM_PROC_OK ||
      (rc = connect_js(n, a)) != TDM_PROC_OK)
    goto err;
  if (n->connected) {
    /* Answered: a stream found missing is a configuration to fix now. */
    n->max_payload = (int)natsConnection_GetMaxPayload(n->nc);
    rc = find_stream(n, a->msg);
    if (rc == TDM_PROC_UNAVAILABLE)
      goto err;
    if (rc == TDM_PROC_OK) {
      n->ready = 1;
      say_window(n);
    } else {
      snprintf(n->why, sizeof(n->why), "%s", a->msg);
      a->msg[0] = '\0';
    }
  }
  if (!n->ready) {
    snprintf(n->why_said, sizeof(n->why_said), "%s", n->why);
    say(n, TDM_PROC_LOG_WARN, "nats: waiting for %s; reading pauses until "
        "then (run: retrying without limit; once: up to "
        "--retry-timeout-ms)", n->why);
  }
  *state = n;
  return TDM_PROC_OK;

err:
  nats_close(n);
  return rc;
}

static const tdm_processor_t nats_processor = {
    .abi_version = TDM_PROCESSOR_ABI_VERSION,
    .size = sizeof(tdm_processor_t),
    .name = "nats",
    .summary = "publishes each record to a NATS JetStream stream "
               "(nats:url=URL,subject=S); exactly once by message id",
    .open = nats_open,
    .process = nats_process,
    .commit = nats_commit,
    .close = nats_close,
    .caught_up = nats_caught_up,
};

__attribute__((visibility("default"))) const tdm_processor_t *
tdm_processor_entry(void) {
  return &nats_processor;
}
