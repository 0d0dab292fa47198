/* test-filter.c: include/exclude filters (watcher/core/filter.c). */
#include "test.h"
#include "core/filter.h"

static tdm_filter_t make(const char *const *inc, size_t ni,
                         const char *const *exc, size_t ne) {
  tdm_filter_t f;
  ASSERT_EQ(tdm__filter_init(&f, inc, ni, exc, ne), 0);
  return f;
}

TEST(default_takes_all_but_hidden) {
  tdm_filter_t f = make(NULL, 0, NULL, 0);
  ASSERT(tdm__filter_file(&f, "a.log", "a.log"));
  ASSERT(tdm__filter_file(&f, "sub/a.log", "a.log"));
  ASSERT(!tdm__filter_file(&f, ".hidden", ".hidden"));
  ASSERT(tdm__filter_dir(&f, "sub"));
  ASSERT(!tdm__filter_dir(&f, ".git"));
  tdm__filter_free(&f);
}

TEST(include_by_name_and_exclude) {
  const char *inc[] = {"*.log"};
  const char *exc[] = {"debug*"};
  tdm_filter_t f = make(inc, 1, exc, 1);
  ASSERT(tdm__filter_file(&f, "x/app.log", "app.log"));
  ASSERT(!tdm__filter_file(&f, "app.txt", "app.txt"));
  ASSERT(!tdm__filter_file(&f, "debug.log", "debug.log"));
  /* '*' does not swallow a leading dot. */
  ASSERT(!tdm__filter_file(&f, ".x.log", ".x.log"));
  tdm__filter_free(&f);
}

TEST(path_globs_match_the_path_under_the_root) {
  const char *inc[] = {"web/*.log"};
  tdm_filter_t f = make(inc, 1, NULL, 0);
  ASSERT(tdm__filter_file(&f, "web/a.log", "a.log"));
  ASSERT(!tdm__filter_file(&f, "db/a.log", "a.log"));
  ASSERT(!tdm__filter_file(&f, "web/deep/a.log", "a.log"));
  tdm__filter_free(&f);
}

TEST(hidden_files_only_when_named) {
  const char *inc[] = {".*.log", "*.log"};
  tdm_filter_t f = make(inc, 2, NULL, 0);
  ASSERT(tdm__filter_file(&f, ".x.log", ".x.log"));
  ASSERT(tdm__filter_dir(&f, ".cache"));
  tdm__filter_free(&f);
}

TEST(rotated_names) {
  const char *inc[] = {"app.log*"};
  tdm_filter_t f = make(inc, 1, NULL, 0);
  ASSERT(tdm__filter_file(&f, "app.log", "app.log"));
  ASSERT(tdm__filter_file(&f, "app.log.1", "app.log.1"));
  ASSERT(!tdm__filter_file(&f, "other.log", "other.log"));
  tdm__filter_free(&f);
}
