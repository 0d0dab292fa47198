/* test-spec.c: parsing of processor specs (processors/spec.c). */
#include "test.h"

#include "processors/registry.h"

/* Parse `spec`, which must succeed. */
static tdm_proc_spec_t parse_ok(const char *spec) {
  tdm_proc_spec_t s;
  char err[256] = "";
  int rc = tdm_proc_spec_parse(spec, &s, err, sizeof(err));
  if (rc != 0)
    TDM_FAIL_("parse \"%s\": rc %d: %s", spec, rc, err);
  ASSERT_STR_EQ(err, "");
  return s;
}

/* Parse `spec`, which must fail with TDM_EUSAGE, a message that names the
   spec and contains `what`, and leave the output untouched. */
static void parse_bad(const char *spec, const char *what) {
  tdm_proc_spec_t s;
  char err[512] = "";
  memset(&s, 0xa5, sizeof(s));
  ASSERT_EQ(tdm_proc_spec_parse(spec, &s, err, sizeof(err)), TDM_EUSAGE);
  if (strstr(err, spec) == NULL || strstr(err, what) == NULL)
    TDM_FAIL_("parse \"%s\": message \"%s\" lacks the spec or \"%s\"", spec,
              err, what);
  for (size_t i = 0; i < sizeof(s); i++)
    ASSERT_EQ(((unsigned char *)&s)[i], 0xa5);
}

TEST(name_only) {
  tdm_proc_spec_t s = parse_ok("stdout");
  ASSERT_STR_EQ(s.name, "stdout");
  ASSERT_EQ(s.n_params, 0);
  ASSERT_NULL(s.params);
  tdm_proc_spec_free(&s);
  ASSERT_NULL(s.name);

  s = parse_ok("my-proc_2");
  ASSERT_STR_EQ(s.name, "my-proc_2");
  tdm_proc_spec_free(&s);
}

TEST(one_param) {
  tdm_proc_spec_t s = parse_ok("file:path=/var/out/x.log");
  ASSERT_STR_EQ(s.name, "file");
  ASSERT_EQ(s.n_params, 1);
  ASSERT_STR_EQ(s.params[0].key, "path");
  ASSERT_STR_EQ(s.params[0].value, "/var/out/x.log");
  tdm_proc_spec_free(&s);
}

TEST(several_params_in_order) {
  tdm_proc_spec_t s = parse_ok("x:b=2,a=1,Key_9-z=three");
  ASSERT_STR_EQ(s.name, "x");
  ASSERT_EQ(s.n_params, 3);
  ASSERT_STR_EQ(s.params[0].key, "b");
  ASSERT_STR_EQ(s.params[0].value, "2");
  ASSERT_STR_EQ(s.params[1].key, "a");
  ASSERT_STR_EQ(s.params[1].value, "1");
  ASSERT_STR_EQ(s.params[2].key, "Key_9-z");
  ASSERT_STR_EQ(s.params[2].value, "three");
  tdm_proc_spec_free(&s);
}

TEST(commas_in_values) {
  tdm_proc_spec_t s = parse_ok("exec:cmd=sort -t, -k2,jobs=2");
  ASSERT_EQ(s.n_params, 2);
  ASSERT_STR_EQ(s.params[0].key, "cmd");
  ASSERT_STR_EQ(s.params[0].value, "sort -t, -k2");
  ASSERT_STR_EQ(s.params[1].key, "jobs");
  ASSERT_STR_EQ(s.params[1].value, "2");
  tdm_proc_spec_free(&s);

  /* A comma not followed by `key=` belongs to the value. */
  s = parse_ok("file:path=a,b.log");
  ASSERT_EQ(s.n_params, 1);
  ASSERT_STR_EQ(s.params[0].value, "a,b.log");
  tdm_proc_spec_free(&s);

  s = parse_ok("file:path=a,");
  ASSERT_EQ(s.n_params, 1);
  ASSERT_STR_EQ(s.params[0].value, "a,");
  tdm_proc_spec_free(&s);

  s = parse_ok("x:k=a,,b=c");
  ASSERT_EQ(s.n_params, 2);
  ASSERT_STR_EQ(s.params[0].value, "a,");
  ASSERT_STR_EQ(s.params[1].key, "b");
  ASSERT_STR_EQ(s.params[1].value, "c");
  tdm_proc_spec_free(&s);

  /* `,=x` and `, b=x` do not start a pair (empty key, space in key). */
  s = parse_ok("x:k=v,=x, b=y");
  ASSERT_EQ(s.n_params, 1);
  ASSERT_STR_EQ(s.params[0].value, "v,=x, b=y");
  tdm_proc_spec_free(&s);
}

TEST(odd_values) {
  tdm_proc_spec_t s = parse_ok("template:prefix=");
  ASSERT_EQ(s.n_params, 1);
  ASSERT_STR_EQ(s.params[0].key, "prefix");
  ASSERT_STR_EQ(s.params[0].value, "");
  tdm_proc_spec_free(&s);

  s = parse_ok("x:k=a=b:c d ,e");
  ASSERT_EQ(s.n_params, 1);
  ASSERT_STR_EQ(s.params[0].value, "a=b:c d ,e");
  tdm_proc_spec_free(&s);

  s = parse_ok("x:a=,b=");
  ASSERT_EQ(s.n_params, 2);
  ASSERT_STR_EQ(s.params[0].value, "");
  ASSERT_STR_EQ(s.params[1].value, "");
  tdm_proc_spec_free(&s);

  /* Keys may repeat; the processor sees them in order. */
  s = parse_ok("x:k=1,k=2");
  ASSERT_EQ(s.n_params, 2);
  ASSERT_STR_EQ(s.params[1].value, "2");
  tdm_proc_spec_free(&s);
}

TEST(errors) {
  parse_bad("", "empty processor name");
  parse_bad(":path=x", "empty processor name");
  parse_bad("File", "bad character in processor name at position 1");
  parse_bad("my proc", "bad character in processor name at position 3");
  parse_bad("file;path=x", "bad character in processor name");
  parse_bad("file:path", "missing '='");
  parse_bad("file:", "missing '='");
  parse_bad("file:=x", "empty key at position 6");
  parse_bad("x:a b=c", "bad character in key at position 4");
  parse_bad("x:k.1=c", "bad character in key");
}

TEST(trailing_comma_is_value) {
  /* Not an error: the comma is part of the value (see commas_in_values). */
  tdm_proc_spec_t s = parse_ok("file:path=x,");
  ASSERT_STR_EQ(s.params[0].value, "x,");
  tdm_proc_spec_free(&s);
}

TEST(message_quotes_control_bytes) {
  char err[256];
  tdm_proc_spec_t s;
  ASSERT_EQ(tdm_proc_spec_parse("a\nb", &s, err, sizeof(err)), TDM_EUSAGE);
  ASSERT_NULL(strchr(err, '\n'));
  ASSERT_NOT_NULL(strstr(err, "a\\nb"));
}

TEST(small_error_buffer) {
  char err[8];
  tdm_proc_spec_t s;
  ASSERT_EQ(tdm_proc_spec_parse("BAD", &s, err, sizeof(err)), TDM_EUSAGE);
  ASSERT_EQ(strlen(err), 7);
  ASSERT_EQ(tdm_proc_spec_parse("BAD", &s, NULL, 0), TDM_EUSAGE);
}

TEST(free_accepts_null_and_zeroed) {
  tdm_proc_spec_t s;
  memset(&s, 0, sizeof(s));
  tdm_proc_spec_free(NULL);
  tdm_proc_spec_free(&s);
  s = parse_ok("x:k=v");
  tdm_proc_spec_free(&s);
  tdm_proc_spec_free(&s); /* twice is harmless */
}

TEST(many_params) {
  char spec[8192];
  size_t o = 0;
  tdm_proc_spec_t s;
  o += (size_t)snprintf(spec + o, sizeof(spec) - o, "many:");
  for (int i = 0; i < 300; i++)
    o += (size_t)snprintf(spec + o, sizeof(spec) - o, "%sk%d=v,%d",
                          i ? "," : "", i, i);
  s = parse_ok(spec);
  ASSERT_EQ(s.n_params, 300);
  for (int i = 0; i < 300; i++) {
    char k[16], v[16];
    snprintf(k, sizeof(k), "k%d", i);
    snprintf(v, sizeof(v), "v,%d", i);
    ASSERT_STR_EQ(s.params[i].key, k);
    ASSERT_STR_EQ(s.params[i].value, v);
  }
  tdm_proc_spec_free(&s);
}
