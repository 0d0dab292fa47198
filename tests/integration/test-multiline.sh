#!/usr/bin/env bash
# Multiline records (--multiline-start): Java-style stack traces of 1 to 7
# lines, written at a high rate, while `tidemark run` is killed with -9 again
# and again. Two processors take every chunk: `file` (the bytes, exactly
# once) and the test plugin `records` (tests/plugins/records.c), which writes
# ONE line per record as tdm_chunk_t.record_ends tells it — what a sink that
# sends one message per record (nats records=line) sees. At the end every
# record is exactly one message, whole (its start line and all its frames),
# none twice, none lost; the file output holds every record once, untorn.
# Then, under `once`: a last record completes only once the file has been
# quiet for --multiline-timeout-ms; a bad REGEX is exit 2 naming the option
# (and FILE:LINE in a config file); a record over --max-record is delivered
# in pieces and counted.
source "$(dirname "$0")/lib.sh"
[ -f "$TDM_TEST_PLUGINS/records/records.so" ] || fail "the records test plugin is not built"
command -v python3 >/dev/null || fail "python3 is required"

D=$T/logs; S=$T/state; OUT=$T/out; MSG=$T/messages
mkdir -p "$D"

python3 "$(dirname "$0")/stacktraces.py" "$D/app.log" "$T/tee" "$T/count" "${TDM_ML_RATE:-3000}" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
ARGS=(-s "$S" --plugin-dir "$TDM_TEST_PLUGINS/records" --multiline-start '^R [0-9]+ '
      --multiline-timeout-ms 300 --checkpoint-ms 100
      -p "file:path=$OUT" -p "records:path=$MSG" "$D")
KILLS=${TDM_ML_KILLS:-8}
say "stack traces at ${TDM_ML_RATE:-3000} records/s; tidemark run killed with -9 $KILLS times"
for k in $(seq 1 "$KILLS"); do
  run_bg /dev/null "${ARGS[@]}"
  sleep "0.$((3 + RANDOM % 7))"
  kill9_bg "$RUN_PID"
  printf '  kill -9 #%d: %7d lines written, %6d messages\n' "$k" "$(lines_in "$T/tee")" "$(lines_in "$MSG")"
done
run_bg /dev/null "${ARGS[@]}"
sleep 0.5
stop_bg "$WPID" TERM
n=$(cat "$T/count")
say "the writer stopped after $n records: the last completes after the timeout"
wait_lines "$MSG" "$n" 60 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
python3 "$(dirname "$0")/check-records.py" messages "$MSG" "$n" || fail "messages are not one whole record each, exactly once"
python3 "$(dirname "$0")/check-records.py" bytes "$OUT" "$n" || fail "the file output is not every record once, whole"
assert_file_eq "$T/tee" "$OUT"
assert_no_sanitizer "$T/run.err"

say "once: a last record waits until the file has been quiet for the timeout"
D2=$T/logs2; S2=$T/state2; mkdir -p "$D2"
printf 'R 1 2 java.lang.IllegalStateException: boom 1\n\tat com.example.Frame1.m1(Frame.java:1)\nR 2 2 java.lang.IllegalStateException: boom 2\n' > "$D2/a.log"
O2=(-s "$S2" --plugin-dir "$TDM_TEST_PLUGINS/records" --multiline-start '^R [0-9]+ '
    --multiline-timeout-ms 5000 -p "records:path=$T/m2")
tdm once "${O2[@]}" "$D2"
assert_eq "$(lines_in "$T/m2")" 1 "messages while the file is fresh (record 2 is open)"
printf '\tat com.example.Frame2.m1(Frame.java:1)\n' >> "$D2/a.log"   # record 2 goes on
tdm once "${O2[@]}" "$D2"
assert_eq "$(lines_in "$T/m2")" 1 "messages while the file is still fresh"
touch -d '-10 sec' "$D2/a.log"
tdm once "${O2[@]}" "$D2"
assert_eq "$(lines_in "$T/m2")" 2 "messages once the file has been quiet"
python3 "$(dirname "$0")/check-records.py" messages "$T/m2" 2 || fail "once: messages are not whole records"

say "a record longer than --max-record: pieces, counted"
D3=$T/logs3; mkdir -p "$D3"
{ echo "R 1 1 java.lang.IllegalStateException: boom 1"; for i in $(seq 1 200); do echo "	at x$i"; done
  echo "R 2 1 java.lang.IllegalStateException: boom 2"; } > "$D3/big.log"
touch -d '-10 sec' "$D3/big.log"
tdm once -s "$T/state3" --multiline-start '^R ' --max-record 1024 -p "file:path=$T/o3" "$D3"
assert_file_eq "$D3/big.log" "$T/o3"
status_json "$T/state3"
[ "$(jfile pieces "$D3/big.log")" -ge 1 ] || fail "pieces of big.log: $(jfile pieces "$D3/big.log")"

say "a bad REGEX: exit 2 naming the option (FILE:LINE in a config file)"
assert_exit 2 "$TIDEMARK" once -s "$T/s4" --multiline-start '^R [' "$D3"
assert_contains "$STDERR" "--multiline-start"
printf '[tidemark]\nmultiline-start = (unclosed\n' > "$T/bad.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/bad.ini" -s "$T/s4" "$D3"
assert_contains "$STDERR" "$T/bad.ini:2: multiline-start"
assert_exit 2 "$TIDEMARK" once -s "$T/s4" --multiline-timeout-ms soon "$D3"
assert_contains "$STDERR" "multiline-timeout-ms"
pass
