#!/usr/bin/env bash
# Refused records: a processor that fails or rejects a record in the middle of
# a chunk is rolled back first (the test plugin `refuse` writes each record as
# it goes, so rows before the bad one would be there twice without it), the
# chunk is narrowed down to the record, and with --dead-letter FILE that record
# is written there once as a JSON line while its file goes on, exactly once,
# across kill -9. Without --dead-letter the file stops before it, named, and
# the other files go on. An unwritable dead-letter file is a usage error.
source "$(dirname "$0")/lib.sh"

P=$TDM_TEST_PLUGINS/refuse
[ -f "$P/refuse.so" ] || fail "the refuse test plugin is not built"
D=$T/logs; mkdir -p "$D"

# Every line of FILE exactly once in OUT, in order, but those matching PAT.
expect_out() { # OUT PATTERN FILE...
  local out=$1 pat=$2; shift 2
  local f
  for f in "$@"; do grep -v -- "$pat" "$f" || true; done | sort > "$T/want"
  sort "$out" > "$T/got"
  assert_file_eq "$T/want" "$T/got"
  [ -z "$(uniq -d "$T/got")" ] || fail "duplicates in $out"
}

# The dead letters of DL: each (path, offset) once, data as in the file.
check_dead() { # DL N
  local dl=$1 n=$2
  assert_eq "$(lines_in "$dl")" "$n" "dead letters in $dl"
  jq -e -s 'all(.[]; (.path|type)=="string" and (.offset|type)=="number"
            and (.length|type)=="number" and (.processor|type)=="string"
            and (.error|type)=="string" and (.data|type)=="string"
            and (.time|test("^20[0-9-]+T[0-9:.]+Z$")))' "$dl" >/dev/null ||
    fail "a dead letter lacks a field: $(head -c 600 "$dl")"
  assert_eq "$(jq -r '"\(.path) \(.offset)"' "$dl" | sort | uniq -d)" "" "a record set aside twice"
  # data is the record's bytes (read back with Python's surrogateescape).
  python3 - "$dl" <<'EOF' || fail "a dead letter's data is not the record"
import json, sys
for line in open(sys.argv[1], encoding="utf-8", errors="surrogateescape"):
    d = json.loads(line)
    data = d["data"].encode("utf-8", "surrogateescape")
    with open(d["path"], "rb") as f:
        f.seek(d["offset"])
        assert f.read(d["length"]) == data, (d["path"], d["offset"])
    assert len(data) == d["length"]
EOF
}

say "a processor that refuses every record: each once in FILE, the run goes on"
seq -f "rec %g" 1 20 > "$D/a.log"; seq -f "rec %g b" 1 15 > "$D/b.log"
S=$T/s1; OUT=$T/out1; DL=$T/dead1.jsonl
tdm once -s "$S" --plugin-dir "$P" --dead-letter "$DL" --max-tries 2 \
  -p "refuse:path=$OUT,pattern=rec" "$D"
check_dead "$DL" 35
assert_eq "$(lines_in "$OUT")" 0 "lines delivered"
assert_contains "$STDERR" "35 records set aside"
assert_eq "$(jq -r -s '.[0].processor' "$DL")" "refuse:path=$OUT,pattern=rec" "processor"
status_json "$S"
assert_eq "$(jq .dead_letters "$T/status.json")" 35 "status dead_letters"
assert_eq "$(jq '[.files[].pending] | add' "$T/status.json")" 0 "pending"
tdm status -s "$S"
assert_contains "$STDOUT" "35 records set aside"
say "a second once adds nothing; new lines are set aside after the old ones"
tdm once -s "$S" --plugin-dir "$P" --dead-letter "$DL" --max-tries 2 \
  -p "refuse:path=$OUT,pattern=rec" "$D"
check_dead "$DL" 35
seq -f "rec %g" 21 25 >> "$D/a.log"
run_bg "$T/run1.out" -s "$S" --plugin-dir "$P" --dead-letter "$DL" --max-tries 2 \
  --metrics-file "$T/m1.prom" -p "refuse:path=$OUT,pattern=rec" "$D"
wait_lines "$DL" 40 30 "$RUN_PID"
seq -f "rec %g" 26 30 >> "$D/a.log"
wait_lines "$DL" 45 30 "$RUN_PID"
stop_bg "$RUN_PID"
check_dead "$DL" 45
grep -q '^tidemark_dead_letter_records_total 10$' "$T/m1.prom" ||
  fail "metrics: $(grep dead_letter "$T/m1.prom")"
if command -v promtool >/dev/null; then
  promtool check metrics < "$T/m1.prom" || fail "promtool: $(promtool check metrics < "$T/m1.prom" 2>&1)"
fi

say "kill -9 during narrowing: every bad record once in FILE, the rest once in OUT"
rm -rf "$D"; mkdir -p "$D"
awk 'BEGIN { for (i = 1; i <= 3000; i++) printf (i % 97 == 0 ? "BAD %d\n" : "line %d\n"), i }' > "$D/k.log"
awk 'BEGIN { for (i = 1; i <= 1500; i++) printf (i % 211 == 0 ? "BAD m%d\n" : "more %d\n"), i }' > "$D/m.log"
S=$T/s2; OUT=$T/out2; DL=$T/dead2.jsonl
ARGS=(-s "$S" --plugin-dir "$P" --dead-letter "$DL" --max-tries 3 --checkpoint-ms 50
      -p "refuse:path=$OUT,pattern=BAD,slow_us=200" "$D")
for i in 1 2 3 4 5 6 7 8; do
  run_bg "$T/run2.out" "${ARGS[@]}"
  sleep "0.$((RANDOM % 5 + 2))"
  kill9_bg "$RUN_PID"
done
tdm once "${ARGS[@]}"
bad=$(grep -c BAD "$D/k.log" "$D/m.log" | awk -F: '{ s += $2 } END { print s }')
check_dead "$DL" "$bad"
expect_out "$OUT" BAD "$D/k.log" "$D/m.log"
status_json "$S"
assert_eq "$(jq .dead_letters "$T/status.json")" "$bad" "status dead_letters after kill -9"

say "kill -9 in a long run of rejected records (set aside, not yet checkpointed)"
rm -rf "$D"; mkdir -p "$D"
awk 'BEGIN { for (i = 1; i <= 3000; i++) printf (i > 50 && i <= 2550 ? "BAD %d\n" : "ok %d\n"), i }' > "$D/r.log"
S=$T/s2r; OUT=$T/out2r; DL=$T/dead2r.jsonl
ARGS=(-s "$S" --plugin-dir "$P" --dead-letter "$DL" --checkpoint-ms 200
      -p "refuse:path=$OUT,pattern=BAD,mode=reject,slow_us=1000" "$D")
for i in 1 2 3 4 5 6; do
  run_bg "$T/run2r.out" "${ARGS[@]}"
  sleep "0.$((RANDOM % 6 + 3))"
  kill9_bg "$RUN_PID"
done
tdm once "${ARGS[@]}"
check_dead "$DL" 2500
expect_out "$OUT" BAD "$D/r.log"

say "REJECT goes straight to FILE, without --max-tries retries"
rm -rf "$D"; mkdir -p "$D"
printf 'a\nb\nBAD 1\nc\nBAD 2\nd\n' > "$D/r.log"
printf 'x \xff\xfe BAD 3\ny\n' > "$D/s.log"
S=$T/s3; OUT=$T/out3; DL=$T/dead3.jsonl
# The `file` processor first in the chain takes each chunk before `refuse`
# rejects it: it is rolled back too, so its copy holds no record twice and
# none that was set aside.
tdm once -s "$S" --plugin-dir "$P" --dead-letter "$DL" --max-tries 50 \
  -p "file:path=$T/copy3" -p "refuse:path=$OUT,pattern=BAD,mode=reject,log=$T/offers3" "$D"
check_dead "$DL" 3
expect_out "$OUT" BAD "$D/r.log" "$D/s.log"
expect_out "$T/copy3" BAD "$D/r.log" "$D/s.log"
# Each rejected record is offered in its chunk, then alone: at most twice.
assert_eq "$(sort "$T/offers3" | uniq -c | awk '$1 > 2' | wc -l)" 0 "offers of a rejected record"
assert_contains "$DL" '"data":"x \udcff\udcfe BAD 3\n"'

say "a record is a multiline record (--multiline-start), or the chunk (--records bytes)"
rm -rf "$D"; mkdir -p "$D"
printf 'R 1 a\n  x\nR 2 BAD\n  trace1\n  trace2\nR 3 c\n  y\nR 4 d\n' > "$D/m.log"
tdm once -s "$T/s7" --plugin-dir "$P" --multiline-start '^R [0-9]+ ' \
  --multiline-timeout-ms 0 --dead-letter "$T/dead7.jsonl" --max-tries 2 \
  -p "refuse:path=$T/out7,pattern=BAD" "$D"
check_dead "$T/dead7.jsonl" 1
assert_eq "$(jq -c '[.offset, .length]' "$T/dead7.jsonl")" "[10,26]" "the multiline record"
printf 'R 1 a\n  x\nR 3 c\n  y\nR 4 d\n' > "$T/want7"
assert_file_eq "$T/want7" "$T/out7"
printf 'a\nBAD\nc\n' > "$D/m.log"
tdm once -s "$T/s8" --plugin-dir "$P" --records bytes --dead-letter "$T/dead8.jsonl" \
  -p "refuse:path=$T/out8,pattern=BAD" "$D"
check_dead "$T/dead8.jsonl" 1
assert_eq "$(lines_in "$T/out8")" 0 "bytes mode: the chunk set aside, a not written"

say "without --dead-letter: REJECT stops that one file (named), the others go on"
rm -rf "$D"; mkdir -p "$D"
printf 'a\nb\nBAD\nc\n' > "$D/bad.log"
seq -f "good %g" 1 50 > "$D/good.log"
S=$T/s4; OUT=$T/out4
assert_exit 1 "$TIDEMARK" once -s "$S" --plugin-dir "$P" \
  -p "refuse:path=$OUT,pattern=BAD,mode=reject" "$D"
assert_contains "$STDERR" "$D/bad.log"
assert_contains "$STDERR" "no --dead-letter"
printf 'a\nb\n' > "$T/want4"; cat "$D/good.log" >> "$T/want4"
sort "$T/want4" > "$T/want4s"; sort "$OUT" > "$T/got4"
assert_file_eq "$T/want4s" "$T/got4"
status_json "$S"
assert_eq "$(jfile state "$D/bad.log")" failed "state of bad.log"
jfile error "$D/bad.log" | grep -q "rejected the record at offset 4" ||
  fail "error of bad.log: $(jfile error "$D/bad.log")"
assert_eq "$(jfile bookmark "$D/bad.log")" 4 "bad.log stops before BAD"
assert_eq "$(jq .dead_letters "$T/status.json")" 0 "no dead letters"

say "run without --dead-letter: the file waits before the record, the others go on, no busy loop"
OUT=$T/out4r
run_bg "$T/run4.out" -s "$T/s4r" --plugin-dir "$P" -p "refuse:path=$OUT,pattern=BAD,log=$T/offers4r" "$D"
wait_lines "$OUT" 52 30 "$RUN_PID"
seq -f "later %g" 1 5 >> "$D/good.log"
echo "after" >> "$D/bad.log"
wait_lines "$OUT" 57 30 "$RUN_PID"
sleep 2
ticks=$(awk '{ print $14 + $15 }' "/proc/$RUN_PID/stat")
[ "$ticks" -lt 150 ] || fail "run used $ticks clock ticks of CPU while a record waits"
stop_bg "$RUN_PID"
assert_eq "$(lines_in "$OUT")" 57 "lines delivered by run"
! grep -qx -e c -e after "$OUT" || fail "bad.log went on past BAD"
grep -q "stops before it" "$T/run.err" || fail "run did not say the file stops"

say "an unwritable dead-letter file: a clear error at start, exit 2"
assert_exit 2 "$TIDEMARK" once -s "$T/s5" --dead-letter "$T/no/such/dir/dl.jsonl" "$D"
assert_contains "$STDERR" "--dead-letter $T/no/such/dir/dl.jsonl"
assert_exit 2 "$TIDEMARK" once -s "$T/s5" --dead-letter "$T" "$D"
assert_exit 2 "$TIDEMARK" once -s "$T/s5" --max-tries 0 "$D"
assert_contains "$STDERR" "--max-tries"

say "the config file takes dead-letter and max-tries"
printf 'dead-letter = %s\nmax-tries = 1\n' "$T/dead6.jsonl" > "$T/c6.ini"
printf 'BAD\nok\n' > "$D/bad.log"
tdm once -c "$T/c6.ini" -s "$T/s6" --plugin-dir "$P" \
  -p "refuse:path=$T/out6,pattern=BAD,log=$T/offers6" "$D"
check_dead "$T/dead6.jsonl" 1
# In its chunk once, then alone once (--max-tries 1).
assert_eq "$(grep -c '^0 4$' "$T/offers6")" 2 "offers of BAD with max-tries 1"

say "a dead-letter file with a long path: counted in status all the same"
LONG=$T/$(printf 'd%.0s' $(seq 1 200))/$(printf 'e%.0s' $(seq 1 200)); mkdir -p "$LONG"
tdm once -s "$T/s9" --plugin-dir "$P" --dead-letter "$LONG/dl.jsonl" \
  -p "refuse:path=$T/out9,pattern=BAD" "$D"
check_dead "$LONG/dl.jsonl" 1
status_json "$T/s9"
assert_eq "$(jq .dead_letters "$T/status.json")" 1 "status dead_letters (long path)"
assert_eq "$(jq '.processors | length' "$T/status.json")" 1 "processors in status"

say "--help names the options"
tdm --help
assert_contains "$STDOUT" "--dead-letter FILE"
assert_contains "$STDOUT" "--max-tries N"
