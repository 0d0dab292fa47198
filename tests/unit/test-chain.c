/*
 * test-chain.c: engine/chain.c, the hand-over of a chunk to every processor:
 * RETRY gets the same chunk again (and the processors that took it are not
 * asked again), FAIL marks the file failed with a message naming the
 * processor and keeps its bookmark, tdm_stop() ends a retry loop. Two
 * processors: a callback (first) and the probe (probe.h).
 */
#include "probe.h"
#include "engine/chain.h"

/* The callback processor: counts what it accepts. */
typedef struct counter {
  char data[4096];
  size_t len;
  int calls;
} counter_t;

static int count_cb(void *arg, const tdm_chunk_t *c) {
  counter_t *k = arg;
  k->calls++;
  ASSERT_LE(k->len + c->len, sizeof(k->data));
  memcpy(k->data + k->len, c->data, c->len);
  k->len += c->len;
  return TDM_PROC_OK;
}

/* A pass with the callback first and the probe second. */
static int run2(counter_t *k, tdm_stats_t *st) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  int rc;
  ASSERT_EQ(tdm_open(&o, &t), 0);
  ASSERT_EQ(tdm_registry_add(t->registry, &probe_desc, "test"), 0);
  ASSERT_EQ(tdm_add_source(t, tdm_test_path("src")), 0);
  ASSERT_EQ(tdm_add_callback(t, "counter", count_cb, k), 0);
  ASSERT_EQ(tdm_add_processor(t, "probe"), 0);
  probe.t = t;
  rc = tdm_run_once(t);
  if (st != NULL) {
    tdm_stats_init(st);
    tdm_get_stats(t, st);
  }
  tdm_close(t);
  return rc;
}

TEST(retry_offers_the_same_chunk_again) {
  counter_t k = {0};
  tdm_stats_t st;
  stored_t s;

  tdm_test_write(src("a.log"), "hello\n", 6);
  probe.retry = 3;
  ASSERT_EQ(run2(&k, &st), 0);
  ASSERT_EQ(probe.calls, 4);      /* three RETRY, then OK */
  PROBE_EQ("hello\n");            /* accepted once */
  ASSERT_EQ(probe.offsets[0], 0);
  ASSERT_EQ(k.calls, 1);          /* the callback took it once, not 4 times */
  ASSERT_EQ(k.len, 6);
  ASSERT_EQ(st.proc_retries, 3);
  ASSERT_EQ(st.proc_failures, 0);
  stored_load(&s, NULL, 0);
  ASSERT_EQ(stored_find(&s, "a.log")->offset, 6);
  ASSERT_EQ(stored_find(&s, "a.log")->state, TDM_FILE_ACTIVE);
}

TEST(fail_keeps_the_bookmark_and_names_the_processor) {
  counter_t k = {0};
  tdm_stats_t st;
  stored_t s;
  const tdm_file_rec_t *r;

  tdm_test_write(src("a.log"), "first\n", 6);
  ASSERT_EQ(run2(&k, NULL), 0);
  tdm_test_append(src("a.log"), "second\n", 7);
  memset(&probe, 0, sizeof(probe));
  memset(&k, 0, sizeof(k));
  probe.fail = 1;
  ASSERT_EQ(run2(&k, &st), TDM_EPARTIAL);
  /* Rolled back and offered again, alone, max_tries (5) times; then the
     file stops before it (no dead-letter file). */
  ASSERT_EQ(st.proc_failures, 5);
  ASSERT_EQ(probe.calls, 5);
  ASSERT_EQ(probe.opens, 1 + 5); /* reopened after each failure */
  stored_load(&s, NULL, 0);
  r = stored_find(&s, "a.log");
  ASSERT_EQ(r->offset, 6);   /* the failed chunk did not move it */
  ASSERT_EQ(r->state, TDM_FILE_FAILED);
  ASSERT_NOT_NULL(r->error);
  ASSERT_NOT_NULL(strstr(r->error, "processor 'probe' failed"));
  ASSERT_NOT_NULL(strstr(r->error, "told to fail"));

  /* The next pass offers it again: the callback, which had taken it each
     time, gets it once more (at least once for a processor that cannot
     roll back); the file is active again, its error gone. */
  probe.fail = 0;
  probe_reset_seen();
  ASSERT_EQ(run2(&k, NULL), 0);
  PROBE_EQ("second\n");
  ASSERT_EQ(k.len, 7 * 6);
  stored_load(&s, NULL, 0);
  r = stored_find(&s, "a.log");
  ASSERT_EQ(r->offset, 13);
  ASSERT_EQ(r->state, TDM_FILE_ACTIVE);
  ASSERT_NULL(r->error);
}

/* A processor that keeps answering RETRY: tdm_stop() ends the pass with
   TDM_ESTOPPED and the bookmark stays before the chunk. */
TEST(stop_ends_a_retry_loop) {
  counter_t k = {0};
  stored_t s;
  const tdm_file_rec_t *r;

  tdm_test_write(src("a.log"), "stuck\n", 6);
  probe.retry = 1000000;
  probe.stop_after_calls = 3;
  ASSERT_EQ(run2(&k, NULL), TDM_ESTOPPED);
  ASSERT_EQ(probe.calls, 3);
  ASSERT_EQ(probe.len, 0);
  stored_load(&s, NULL, 0);
  r = stored_find(&s, "a.log");
  ASSERT(r == NULL || r->offset == 0);
}
