/*
 * test-watch_poll.c: watcher/live/watch_poll.c, the backend without events:
 * nothing to watch or dispatch, only its sweep interval (--poll-ms, else
 * the fallback); live watching with it finds appended bytes by the sweep.
 */
#include "probe.h"

#include "live/watch.h"

#include <time.h>

TEST(table) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  void *state = &state;

  src("");
  t = probe_open_tdm(&o);
  ASSERT_STR_EQ(tdm__watch_poll.name, "poll");
  ASSERT_EQ(tdm__watch_poll.open(t, NULL, NULL, &state), 0);
  ASSERT_NULL(state);
  ASSERT_NULL(tdm__watch_poll.add_dir);
  ASSERT_NULL(tdm__watch_poll.dispatch);
  ASSERT_NULL(tdm__watch_poll.pending);
  ASSERT_EQ(tdm__watch_poll.sweep_ms(t), TDM_WATCH_FALLBACK_MS);
  t->opts.poll_ms = 250;
  ASSERT_EQ(tdm__watch_poll.sweep_ms(t), 250);
  tdm_close(t);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --poll-ms: no inotify; a line appended after the start is delivered by
   the next sweep. */
TEST(sweep_finds_appends) {
  tdm_options_t o = probe_options();
  tdm_t *t;
  uint64_t until;
  int rc;

  tdm_test_write(src("a.log"), "one\n", 4);
  o.poll_ms = 50;
  t = probe_open_tdm(&o);
  until = now_ms() + 20000;
  while (probe.len < 4 && now_ms() < until)
    ASSERT_EQ(tdm_run_slice(t, 20), 1);
  PROBE_EQ("one\n");
  tdm_test_append(src("a.log"), "two\n", 4);
  while (probe.len < 8 && now_ms() < until)
    ASSERT_EQ(tdm_run_slice(t, 20), 1);
  PROBE_EQ("one\ntwo\n");
  {
    tdm_stats_t st;
    tdm_stats_init(&st);
    tdm_get_stats(t, &st);
    ASSERT_EQ(st.watches, 0); /* no inotify watch: the poll backend */
  }
  tdm_stop(t);
  while ((rc = tdm_run_slice(t, 20)) == 1)
    ;
  ASSERT_EQ(rc, 0);
  tdm_close(t);
}
