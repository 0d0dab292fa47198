#!/usr/bin/env bash
# nats: the server is killed (-9) for 3 s under load and restarted on the same
# store and port. tidemark stays up, warns once naming the URL, pauses reading
# (its messages in flight stay under max-pending), reconnects by itself and
# resumes; the stream then holds every line exactly once. Then the server
# goes away again and tidemark is killed (-9) while it is away: the
# checkpoints made meanwhile must not have recorded what the server never
# acknowledged, so a restart publishes it: every line exactly once.
source "$(dirname "$0")/lib.sh"
need_nats
need_helper TDM_WRITER
nats_start
js create LOGS 'logs.>' 120

D=$T/d; S=$T/state
mkdir -p "$D"
FILES=("$D/a.log" "$D/b.log")
SPEC="nats:url=$NATS_URL,subject=logs.out,stream=LOGS,max-pending=500,timeout-ms=1000"

"$TDM_WRITER" append -r 5000 -c "$T/written" -t "$T/tee" o "${FILES[@]}" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/b.log"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
wait_count LOGS 1000 20 "$RUN_PID"

say "server killed for 3 s: tidemark stays up and warns"
nats_kill9
sleep 3
is_running "$RUN_PID" || fail "tidemark exited while the server was down"
assert_contains "$T/run.err" "lost the connection to $NATS_URL"

say "server back on the same store: delivery resumes by itself"
nats_start "$NATS_PORT"
sleep 1
stop_bg "$WPID" TERM
written=$(cat "$T/written")
echo "writer wrote $written lines"
wait_count LOGS "$written" 60 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_eq "$(grep -c "lost the connection to $NATS_URL" "$T/run.err")" 1 "warnings about the outage"
assert_contains "$T/run.err" "reconnected to $NATS_URL"

say "every line exactly once"
js_dump LOGS "$T/dump"
cut -f5 "$T/dump" > "$T/got"
assert_lines_once "$T/tee" "$T/got" "stream after a server outage"
assert_eq "$(cut -f2 "$T/dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"

say "server down, and tidemark killed (-9) meanwhile: nothing acknowledged is lost"
# Checkpoints come every 200 ms while the server is away; none may record
# the records still waiting in the client's reconnect buffer, which the kill
# loses: after the restart they must be read and published again.
"$TDM_WRITER" append -r 5000 -c "$T/written2" -t "$T/tee" p "${FILES[@]}" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
wait_count LOGS $(( $(wc -l < "$T/got") + 1000 )) 20 "$RUN_PID"
nats_kill9
sleep 1.5
kill9_bg "$RUN_PID"
stop_bg "$WPID" TERM
nats_start "$NATS_PORT"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
wait_count LOGS "$(wc -l < "$T/tee")" 60 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
js_dump LOGS "$T/dump"
cut -f5 "$T/dump" > "$T/got"
assert_lines_once "$T/tee" "$T/got" "stream after an outage with a kill -9"
assert_no_sanitizer "$T/run.err"
nats_stop
pass
