#!/usr/bin/env bash
# Bad input gets a clear message, the right exit code (2 usage/config,
# 1 runtime), and never a crash (no death by a signal, no hang).
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state
mkdir -p "$D"
printf 'ok\n' > "$D/a.log"

say "--help and --version"
assert_exit 0 "$TIDEMARK" --help
assert_contains "$STDOUT" "once"
assert_contains "$STDOUT" "--checkpoint-ms"
assert_exit 0 "$TIDEMARK" --version
assert_contains "$STDOUT" "${TDM_VERSION:?run through ctest}"

say "processors lists the built-ins"
assert_exit 0 "$TIDEMARK" processors
for p in stdout count file; do grep -qw "$p" "$STDOUT" || fail "processors does not list $p: $(cat "$STDOUT")"; done

say "missing DIR: non-zero, message names it"
assert_exit nonzero "$TIDEMARK" once -s "$S" "$T/no-such-dir"
assert_contains "$STDERR" "no-such-dir"
say "a regular file as DIR: non-zero, message names it"
assert_exit nonzero "$TIDEMARK" once -s "$S" "$D/a.log"
assert_contains "$STDERR" "a.log"
say "one good DIR and one missing: still refused, names the missing one"
assert_exit nonzero "$TIDEMARK" once -s "$S" "$D" "$T/gone"
assert_contains "$STDERR" "gone"

say "unknown processor: exit 2 naming it"
assert_exit 2 "$TIDEMARK" once -s "$S" -p nope "$D"
assert_contains "$STDERR" "nope"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered by a refused run"
say "unknown processor beside a good one: exit 2, nothing delivered"
assert_exit 2 "$TIDEMARK" once -s "$S" -p stdout -p nope2 "$D"
assert_contains "$STDERR" "nope2"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered by a refused run"

say "the refused runs above did not move any bookmark"
tdm once -s "$S" "$D"
printf 'ok\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "bad options: exit 2 naming the option"
check_usage() {
  local needle=$1; shift
  assert_exit 2 "$TIDEMARK" "$@"
  assert_contains "$STDERR" "$needle"
}
check_usage "--bogus" once -s "$S" --bogus "$D"
check_usage "records" once -s "$S" --records words "$D"
check_usage "mode" once -s "$S" --mode sometimes "$D"
check_usage "max-record" once -s "$S" --max-record 1 "$D"
check_usage "max-record" once -s "$S" --max-record lots "$D"
check_usage "checkpoint-ms" once -s "$S" --checkpoint-ms abc "$D"
check_usage "checkpoint-ms" once -s "$S" --checkpoint-ms -5 "$D"
check_usage "frobnicate" frobnicate
assert_exit 2 "$TIDEMARK" once -s "$S"          # no DIR
assert_exit 2 "$TIDEMARK"                       # no command
check_usage "config.ini" once -c "$T/config.ini" "$D"   # missing config file

say "corrupt store: exit 1, message names the state directory"
S2=$T/corrupt-state
tdm once -s "$S2" "$D"
[ -f "$S2/data.mdb" ] || fail "no data.mdb in $S2"
size=$(fsize "$S2/data.mdb")
head -c "$size" /dev/urandom > "$S2/data.mdb"
assert_exit 1 "$TIDEMARK" once -s "$S2" "$D"
assert_contains "$STDERR" "corrupt-state"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered from a corrupt store"
assert_exit 1 "$TIDEMARK" status -s "$S2" --json
assert_contains "$STDERR" "corrupt-state"
assert_exit 1 "$TIDEMARK" reset -s "$S2"
assert_contains "$STDERR" "corrupt-state"

say "store of garbage text (not even an LMDB page): exit 1, names the directory"
S3=$T/garbage-state
tdm once -s "$S3" "$D"
head -c 100000 < <(yes 'this is not lmdb') > "$S3/data.mdb"
assert_exit 1 "$TIDEMARK" once -s "$S3" "$D"
assert_contains "$STDERR" "garbage-state"

say "a store of a newer schema: exit 1 naming the directory (needs lmdb-utils)"
if command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null; then
  S5=$T/newer-state
  tdm once -s "$S5" "$D"
  mdb_dump -s meta "$S5" > "$T/meta.txt"
  grep -qx ' 736368656d61' "$T/meta.txt" || fail "no schema record in the meta database: $(cat "$T/meta.txt")"
  # The value after the "schema" key: 1 -> 99 (little-endian u32).
  awk 'prev == " 736368656d61" { $0 = " 63000000" } { print; prev = $0 }' "$T/meta.txt" > "$T/meta2.txt"
  mdb_load -s meta -f "$T/meta2.txt" "$S5" 2>/dev/null
  assert_exit 1 "$TIDEMARK" once -s "$S5" "$D"
  assert_contains "$STDERR" "newer-state"
  assert_contains "$STDERR" "schema"
  assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered from a newer store"
  assert_exit 1 "$TIDEMARK" status -s "$S5" --json
  assert_contains "$STDERR" "newer-state"
else
  echo "note: mdb_dump/mdb_load not installed; newer-schema case not run"
fi

say "state path that is a regular file: non-zero, names it"
printf 'x' > "$T/state-is-a-file"
assert_exit 1,2 "$TIDEMARK" once -s "$T/state-is-a-file" "$D"
assert_contains "$STDERR" "state-is-a-file"

say "file processor output in a missing directory: non-zero, names it"
assert_exit 1,2 "$TIDEMARK" once -s "$T/state4" -p "file:path=$T/missing-dir/out" "$D"
assert_contains "$STDERR" "missing-dir"

say "plugin with the wrong ABI: skipped with a warning naming bad_abi.so, no crash"
if [ -n "$TDM_TEST_PLUGINS" ] && [ -f "$TDM_TEST_PLUGINS/bad_abi/bad_abi.so" ]; then
  assert_exit 0 "$TIDEMARK" once -s "$T/state5" --plugin-dir "$TDM_TEST_PLUGINS/bad_abi" -p count "$D"
  assert_contains "$STDERR" "bad_abi.so"
  assert_contains "$STDERR" "warning"
else
  fail "test plugin $TDM_TEST_PLUGINS/bad_abi/bad_abi.so is missing"
fi

# Last, so that a failure here does not hide the checks above.
say "bad processor parameters are bad configuration: exit 2 naming them"
say "file processor without path=: exit 2"
assert_exit 2 "$TIDEMARK" once -s "$T/state6" -p file "$D"
assert_contains "$STDERR" "path"
say "unknown processor parameter: exit 2 naming it"
assert_exit 2 "$TIDEMARK" once -s "$T/state6" -p "file:path=$T/o,colour=blue" "$D"
assert_contains "$STDERR" "colour"

pass
