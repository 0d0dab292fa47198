/*
 * jsclient.c: tdm-jsclient, the tests' own JetStream client (libnats), to
 * set up streams and to read back what the `nats` processor published.
 *
 *   tdm-jsclient URL create STREAM SUBJECT [DUP_WINDOW_S [REPLICAS [MAX_MSG]]]
 *       create a file-backed stream capturing SUBJECT (duplicate window
 *       DUP_WINDOW_S seconds, default 120; REPLICAS copies on a cluster,
 *       default 1; MAX_MSG: the largest message in bytes, default none)
 *   tdm-jsclient URL count STREAM
 *       print the number of messages in STREAM
 *   tdm-jsclient URL dump STREAM
 *       print every message in sequence order, one per line:
 *       SEQ<TAB>Nats-Msg-Id<TAB>Tidemark-Path<TAB>Tidemark-Offset<TAB>PAYLOAD
 *       (a newline or tab in the payload is printed as \n or \t)
 *   tdm-jsclient URL payloads STREAM
 *       the payloads only, raw and back to back (records=chunk content)
 *
 * URL may be several, separated by commas (the servers of a cluster).
 * Exit 0, or 1 with a message on stderr.
 */
#include <nats/nats.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what, natsStatus s, jsErrCode jerr) {
  fprintf(stderr, "tdm-jsclient: %s: %s (js error %d): %s\n", what,
          natsStatus_GetText(s), (int)jerr, nats_GetLastError(NULL));
  return 1;
}

static const char *header(natsMsg *m, const char *key) {
  const char *v = NULL;
  if (natsMsgHeader_Get(m, key, &v) != NATS_OK || v == NULL)
    return "-";
  return v;
}

static void put_escaped(const char *p, int len) {
  for (int i = 0; i < len; i++) {
    if (p[i] == '\n')
      fputs("\\n", stdout);
    else if (p[i] == '\t')
      fputs("\\t", stdout);
    else if (p[i] == '\\')
      fputs("\\\\", stdout);
    else
      putchar(p[i]);
  }
}

int main(int argc, char **argv) {
  natsConnection *nc = NULL;
  jsCtx *js = NULL;
  jsErrCode jerr = 0;
  natsStatus s;
  int rc = 0;

  if (argc < 4) {
    fprintf(stderr, "usage: tdm-jsclient URL create|count|dump|payloads STREAM [...]\n");
    return 2;
  }
  {
    const char *urls[16];
    char *list = strdup(argv[1]), *save = NULL;
    int n = 0;
    natsOptions *o = NULL;
    for (char *u = strtok_r(list, ",", &save); u != NULL && n < 16;
         u = strtok_r(NULL, ",", &save))
      urls[n++] = u;
    s = natsOptions_Create(&o);
    if (s == NATS_OK)
      s = natsOptions_SetServers(o, urls, n);
    if (s == NATS_OK)
      s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    free(list);
    if (s != NATS_OK)
      return die(argv[1], s, 0);
  }
  s = natsConnection_JetStream(&js, nc, NULL);
  if (s != NATS_OK)
    return die("JetStream", s, 0);

  if (strcmp(argv[2], "create") == 0 && argc >= 5) {
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    const char *subj[1] = {argv[4]};
    jsStreamConfig_Init(&cfg);
    cfg.Name = argv[3];
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = (int64_t)(argc >= 6 ? atoll(argv[5]) : 120) * 1000000000LL;
    cfg.Replicas = argc >= 7 ? atoi(argv[6]) : 1;
    if (argc >= 8)
      cfg.MaxMsgSize = (int32_t)atoi(argv[7]);
    s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK)
      rc = die("create stream", s, jerr);
    jsStreamInfo_Destroy(si);
  } else if (strcmp(argv[2], "count") == 0 ||
             strcmp(argv[2], "dump") == 0 ||
             strcmp(argv[2], "payloads") == 0) {
    jsStreamInfo *si = NULL;
    uint64_t first, last;
    s = js_GetStreamInfo(&si, js, argv[3], NULL, &jerr);
    if (s != NATS_OK) {
      rc = die("stream info", s, jerr);
      goto out;
    }
    first = si->State.FirstSeq;
    last = si->State.LastSeq;
    if (strcmp(argv[2], "count") == 0) {
      printf("%" PRIu64 "\n", si->State.Msgs);
      jsStreamInfo_Destroy(si);
      goto out;
    }
    jsStreamInfo_Destroy(si);
    for (uint64_t seq = first; seq != 0 && seq <= last; seq++) {
      natsMsg *m = NULL;
      s = js_GetMsg(&m, js, argv[3], seq, NULL, &jerr);
      if (s == NATS_NOT_FOUND)
        continue; /* deleted */
      if (s != NATS_OK) {
        rc = die("get message", s, jerr);
        break;
      }
      if (strcmp(argv[2], "payloads") == 0) {
        fwrite(natsMsg_GetData(m), 1, (size_t)natsMsg_GetDataLength(m), stdout);
      } else {
        printf("%" PRIu64 "\t%s\t%s\t%s\t", seq, header(m, "Nats-Msg-Id"),
               header(m, "Tidemark-Path"), header(m, "Tidemark-Offset"));
        put_escaped(natsMsg_GetData(m), natsMsg_GetDataLength(m));
        putchar('\n');
      }
      natsMsg_Destroy(m);
    }
  } else {
    fprintf(stderr, "tdm-jsclient: unknown command %s\n", argv[2]);
    rc = 2;
  }
out:
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  if (fflush(stdout) != 0)
    rc = 1;
  return rc;
}
