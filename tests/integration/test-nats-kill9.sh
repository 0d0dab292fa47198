#!/usr/bin/env bash
# nats: a writer appends ~15,000 lines/s to three files while `tidemark run`
# publishing to JetStream is killed with -9 five times at random moments and
# restarted. Each replay re-sends what came after the last checkpoint with
# the same ids, which the stream drops: after a last run catches up, the
# stream holds every line exactly once (and the ids are unique).
source "$(dirname "$0")/lib.sh"
need_nats
need_helper TDM_WRITER
nats_start
js create LOGS 'logs.>' 120

KILLS=${TDM_KILL9_KILLS:-5}
D=$T/d; S=$T/state
mkdir -p "$D"
FILES=("$D/a.log" "$D/b.log" "$D/c.log")
SPEC="nats:url=$NATS_URL,subject=logs.k9,stream=LOGS"

"$TDM_WRITER" append -r 15000 -c "$T/written" -t "$T/tee" k "${FILES[@]}" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/c.log"

for k in $(seq 1 "$KILLS"); do
  if [ "$k" -eq 1 ]; then ms=$((50 + RANDOM % 150)); else ms=$((200 + RANDOM % 1300)); fi
  opts=(--checkpoint-ms 200)
  [ $((k % 2)) -eq 0 ] && opts=()
  run_bg "$T/run.out" -s "$S" -p "$SPEC" "${opts[@]}" "$D"
  sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  is_running "$RUN_PID" || fail "run $k exited by itself before its kill"
  kill9_bg "$RUN_PID"
  printf '  kill %d after %4d ms: stream at %7s messages, %7d written\n' \
    "$k" "$ms" "$("$TDM_JSCLIENT" "$NATS_URL" count LOGS)" "$(lines_in "$T/tee")"
done

say "stop the writer; a last run catches up"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
sleep 0.5
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
written=$(cat "$T/written")
echo "writer wrote $written lines"
wait_count LOGS "$written" 60 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "every line exactly once, ids unique"
js_dump LOGS "$T/dump"
cut -f5 "$T/dump" > "$T/got"
assert_lines_once "$T/tee" "$T/got" "stream after $KILLS kills -9"
assert_eq "$(cut -f2 "$T/dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"
for f in "${FILES[@]}"; do
  awk -F'\t' -v p="$(realpath "$f")" '$3 == p { print $5 }' "$T/dump" > "$T/order.got"
  assert_file_eq "$T/order.got" "$f" "order of $(basename "$f")'s lines in the stream"
done
assert_no_sanitizer "$T/run.err"
nats_stop
pass
