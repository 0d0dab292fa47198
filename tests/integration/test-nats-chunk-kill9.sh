#!/usr/bin/env bash
# nats records=chunk: a writer appends ~15,000 lines/s to three files while
# `tidemark run` is killed with -9 again and again at random moments. A
# replay reads more (or less) at once than the run that crashed, so its
# chunks are cut elsewhere; the messages an earlier run stored are found by
# their ids (the first byte's offset) and only what follows them is
# published. Counted from the stream: each file's bytes exactly once, in
# messages back to back (no overlap, no gap).
source "$(dirname "$0")/lib.sh"
need_nats
need_helper TDM_WRITER
nats_start
js create LOGS 'logs.>' 120

KILLS=${TDM_KILL9_KILLS:-10}
D=$T/d; S=$T/state
mkdir -p "$D"
FILES=("$D/a.log" "$D/b.log" "$D/c.log")
SPEC="nats:url=$NATS_URL,subject=logs.ch,stream=LOGS,records=chunk"

"$TDM_WRITER" append -r 15000 -c "$T/written" k "${FILES[@]}" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/c.log"

for k in $(seq 1 "$KILLS"); do
  ms=$((100 + RANDOM % 900))
  opts=(--checkpoint-ms $((100 + RANDOM % 400)))
  [ $((k % 3)) -eq 0 ] && opts=()
  run_bg "$T/run.out" -s "$S" -p "$SPEC" "${opts[@]}" "$D"
  sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  is_running "$RUN_PID" || fail "run $k exited by itself before its kill"
  kill9_bg "$RUN_PID"
  printf '  kill %2d after %4d ms: stream at %6s messages\n' "$k" "$ms" \
    "$("$TDM_JSCLIENT" "$NATS_URL" count LOGS)"
done

say "stop the writer; a last run catches up"
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
total=$(cat "${FILES[@]}" | wc -c)
echo "writer wrote $(cat "$T/written") lines, $total bytes"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
caught_up() { [ "$("$TDM_JSCLIENT" "$NATS_URL" payloads LOGS | wc -c)" -ge "$total" ]; }
wait_for 60 caught_up
sleep 1
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "each file's bytes exactly once"
js_dump LOGS "$T/dump"
python3 "$(dirname "$0")/check-chunks.py" "$T/dump" "${FILES[@]}" > "$T/check.out" || fail "$(cat "$T/check.out")"
cat "$T/check.out"
assert_eq "$(cut -f2 "$T/dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"
assert_no_sanitizer "$T/run.err"
nats_stop
pass
