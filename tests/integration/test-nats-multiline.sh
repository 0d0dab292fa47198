#!/usr/bin/env bash
# nats records=line with --multiline-start: Java-style stack traces of 1 to 7
# lines (stacktraces.py) written at a high rate while `tidemark run`
# publishing to JetStream is killed with -9 again and again. The host tells
# the processor where records end (tdm_chunk_t.record_ends), so every record
# is exactly ONE message, whole (its start line and all its frames), none
# twice, none lost, ids unique.
source "$(dirname "$0")/lib.sh"
need_nats
command -v python3 >/dev/null || fail "python3 is required"
nats_start
js create TRACES 'traces.>' 120

KILLS=${TDM_ML_KILLS:-6}
D=$T/d; S=$T/state
mkdir -p "$D"
SPEC="nats:url=$NATS_URL,subject=traces.app,stream=TRACES,records=line"
ARGS=(-s "$S" --multiline-start '^R [0-9]+ ' --multiline-timeout-ms 300 -p "$SPEC" "$D")

python3 "$(dirname "$0")/stacktraces.py" "$D/app.log" "$T/tee" "$T/count" "${TDM_ML_RATE:-3000}" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/app.log"

say "stack traces at ${TDM_ML_RATE:-3000} records/s; tidemark run killed with -9 $KILLS times"
for k in $(seq 1 "$KILLS"); do
  opts=(--checkpoint-ms 150)
  [ $((k % 2)) -eq 0 ] && opts=()
  run_bg "$T/run.out" "${opts[@]}" "${ARGS[@]}"
  sleep "0.$((3 + RANDOM % 7))"
  is_running "$RUN_PID" || fail "run $k exited by itself before its kill"
  kill9_bg "$RUN_PID"
  printf '  kill -9 #%d: stream at %7s messages, %7d lines written\n' \
    "$k" "$("$TDM_JSCLIENT" "$NATS_URL" count TRACES)" "$(lines_in "$T/tee")"
done

say "stop the writer; a last run catches up (the last record after the timeout)"
run_bg "$T/run.out" --checkpoint-ms 150 "${ARGS[@]}"
sleep 0.5
stop_bg "$WPID" TERM
n=$(cat "$T/count")
echo "writer wrote $n records ($(lines_in "$T/tee") lines)"
wait_count TRACES "$n" 60 "$RUN_PID"
sleep 1
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "every record exactly one message, whole; ids unique"
js_dump TRACES "$T/dump"
# payloads: newlines and tabs come escaped (\n, \t); a record's newlines -> '|'
cut -f5- "$T/dump" | sed 's/\\n/|/g; s/\\t/\t/g' > "$T/messages"
python3 "$(dirname "$0")/check-records.py" messages "$T/messages" "$n" ||
  fail "the stream does not hold every record exactly once as one whole message"
assert_eq "$(cut -f2 "$T/dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"
assert_no_sanitizer "$T/run.err"
nats_stop
pass
