/*
 * test-status.c: watcher/status.c, the state store as `tidemark status`
 * shows it and `tidemark reset` changes it: its JSON strings, paths and
 * times (status and reset over a real store: test-config.c and test-api.c).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "status.h"

/* What `fn` writes into a FILE, as a malloc'd string. */
static char *json_of(const char *s) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ASSERT_NOT_NULL(f);
  tdm__status_json_string(f, s);
  fclose(f);
  return buf;
}

TEST(json_string_escapes) {
  char *s;
  s = json_of("plain /path/x.log");
  ASSERT_STR_EQ(s, "\"plain /path/x.log\"");
  free(s);
  s = json_of("q\"b\\s/");
  ASSERT_STR_EQ(s, "\"q\\\"b\\\\s/\"");
  free(s);
  s = json_of("n\nt\tr\rb\bf\f");
  ASSERT_STR_EQ(s, "\"n\\nt\\tr\\rb\\bf\\f\"");
  free(s);
  s = json_of("\x01\x1f\x7f");
  ASSERT_STR_EQ(s, "\"\\u0001\\u001f\\u007f\"");
  free(s);
  s = json_of("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  ASSERT_STR_EQ(s, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  free(s);
  /* Not UTF-8: spelled as tdm__quote does, so the JSON stays UTF-8. */
  s = json_of("caf\xc3\xa9 \xff\\n");
  ASSERT_STR_EQ(s, "\"caf\xc3\xa9 \\\\xff\\\\\\\\n\"");
  free(s);
  s = json_of("");
  ASSERT_STR_EQ(s, "\"\"");
  free(s);
  s = json_of(NULL);
  ASSERT_STR_EQ(s, "null");
  free(s);
}

TEST(abspath_normalises) {
  char cwd[4096];
  char want[4200];
  char *p;
  static const struct {
    const char *in, *want;
  } abs[] = {{"/", "/"},           {"/a/b", "/a/b"},     {"/a/b/", "/a/b"},
             {"//a//b", "/a/b"},   {"/a/./b/.", "/a/b"}, {"/a/../b", "/b"},
             {"/../..", "/"},      {"/a/b/../../..", "/"},
             {"/a b/c d", "/a b/c d"}, {"/a/..b/.c", "/a/..b/.c"}};
  for (size_t i = 0; i < sizeof(abs) / sizeof(abs[0]); i++) {
    p = tdm__status_abspath(abs[i].in);
    ASSERT_STR_EQ(p, abs[i].want);
    free(p);
  }
  ASSERT_EQ(chdir(tdm_test_dir), 0);
  ASSERT_NOT_NULL(getcwd(cwd, sizeof(cwd)));
  p = tdm__status_abspath("x/./y/../z");
  snprintf(want, sizeof(want), "%s/x/z", cwd);
  ASSERT_STR_EQ(p, want);
  free(p);
  p = tdm__status_abspath(".");
  ASSERT_STR_EQ(p, cwd);
  free(p);
  ASSERT(tdm__status_is_under("/a/b", "/a"));
  ASSERT(tdm__status_is_under("/a", "/a"));
  ASSERT(!tdm__status_is_under("/ab", "/a"));
  ASSERT(tdm__status_is_under("/x", "/"));
}

TEST(iso8601) {
  char buf[64];
  ASSERT_STR_EQ(tdm__status_iso8601(0, buf, sizeof(buf)),
                "1970-01-01T00:00:00Z");
  ASSERT_STR_EQ(tdm__status_iso8601(1795554000123456789LL, buf, sizeof(buf)),
                "2026-11-24T21:00:00Z");
  ASSERT_STR_EQ(tdm__status_iso8601(-1, buf, sizeof(buf)),
                "1969-12-31T23:59:59Z");
}
