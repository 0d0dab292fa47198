#!/usr/bin/env bash
# nats: what is wrong is said at start, naming it. Bad parameters: exit 2
# naming the key. A missing stream, a subject no stream captures, a stream
# that does not capture the subject: exit 1 naming URL, subject and stream;
# credentials a server refuses: exit 1 naming the URL. A duplicate window
# shorter than twice the checkpoint interval plus a minute: a warning
# naming the stream. No server answers: `once` waits --retry-timeout-ms,
# then exits 1 naming the URLs.
source "$(dirname "$0")/lib.sh"
need_nats
nats_start
js create LOGS 'logs.>' 120
js create SHORT 'short.>' 10

D=$T/d; S=$T/state
mkdir -p "$D"
echo "one line" > "$D/a.log"
U=$NATS_URL

say "bad parameters: exit 2 naming the key"
assert_exit 2 "$TIDEMARK" once -s "$S" -p "nats:url=$U,subject=logs.x,colour=red" "$D"
assert_contains "$STDERR" 'unknown parameter "colour"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "nats:subject=logs.x" "$D"
assert_contains "$STDERR" 'missing parameter "url"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "nats:url=$U" "$D"
assert_contains "$STDERR" 'missing parameter "subject"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "nats:url=$U,subject=logs.x,records=lines" "$D"
assert_contains "$STDERR" 'parameter "records"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "nats:url=$U,subject=logs.x,max-pending=0" "$D"
assert_contains "$STDERR" 'parameter "max-pending"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "nats:url=$U,subject=logs.x,timeout-ms=soon" "$D"
assert_contains "$STDERR" 'parameter "timeout-ms"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "nats:url=$U,subject=logs.*" "$D"
assert_contains "$STDERR" 'parameter "subject"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "nats:url=$U,subject=logs.x,creds=$T/none.creds" "$D"
assert_contains "$STDERR" "parameter \"creds\": $T/none.creds"

say "a missing stream: exit 1 naming URL, subject and stream"
assert_exit 1 "$TIDEMARK" once -s "$S" -p "nats:url=$U,subject=logs.x,stream=NOPE" "$D"
assert_contains "$STDERR" "$U has no stream \"NOPE\" (for subject \"logs.x\")"

say "a stream that does not capture the subject"
assert_exit 1 "$TIDEMARK" once -s "$S" -p "nats:url=$U,subject=other.x,stream=LOGS" "$D"
assert_contains "$STDERR" "stream \"LOGS\" does not capture subject \"other.x\""

say "no stream captures the subject (no stream given)"
assert_exit 1 "$TIDEMARK" once -s "$S" -p "nats:url=$U,subject=other.x" "$D"
assert_contains "$STDERR" "no stream captures subject \"other.x\""

say "nothing was published, nothing recorded"
assert_eq "$(js_count LOGS)" 0 "messages in LOGS"

say "a short duplicate window is warned about, naming the stream"
tdm once -s "$S" -p "nats:url=$U,subject=short.x" --checkpoint-ms 1000 "$D"
assert_contains "$STDERR" "stream SHORT on $U keeps ids for 10000 ms"
assert_eq "$(js_count SHORT)" 1 "messages in SHORT"

say "credentials a server refuses: exit 1 at once, naming the URL"
"$NATS_SERVER" -a 127.0.0.1 -p -1 --user u --pass right > "$T/auth.log" 2>&1 </dev/null &
APID=$!; TDM_BG_PIDS+=("$APID")
end=$((SECONDS + 20))
until aport=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/auth.log") && [ -n "$aport" ]; do
  [ "$SECONDS" -lt "$end" ] || fail "the second nats-server did not listen: $(tail -n 3 "$T/auth.log")"
  sleep 0.05
done
t0=$(now_ms)
assert_exit 1 "$TIDEMARK" once -s "$T/state3" -p "nats:url=nats://u:wrong@127.0.0.1:$aport,subject=logs.x" "$D"
assert_contains "$STDERR" "nats://u:wrong@127.0.0.1:$aport refused the connection: Authorization Violation"
[ $(( $(now_ms) - t0 )) -lt 10000 ] || fail "a refused connection took $(( $(now_ms) - t0 )) ms to say so"
kill "$APID"; { wait "$APID"; } 2>/dev/null || true

say "the server down: once waits --retry-timeout-ms, then exits 1 naming the URLs"
nats_stop
t0=$(now_ms)
assert_exit 1 "$TIDEMARK" once -s "$T/state2" --retry-timeout-ms 1500 -p "nats:url=$U|nats://127.0.0.1:1,subject=logs.x,timeout-ms=500" "$D"
waited=$(( $(now_ms) - t0 ))
assert_contains "$STDERR" "waiting for a server of $U|nats://127.0.0.1:1 to answer"
assert_contains "$STDERR" "giving up on $D/a.log"
[ "$waited" -ge 1500 ] || fail "once gave up after $waited ms, before --retry-timeout-ms 1500"
[ "$waited" -lt 15000 ] || fail "once gave up only after $waited ms (--retry-timeout-ms 1500)"

say "an empty URL in the list: exit 2 naming the parameter"
assert_exit 2 "$TIDEMARK" once -s "$S" -p "nats:url=$U||nats://b:4222,subject=logs.x" "$D"
assert_contains "$STDERR" 'parameter "url"'
pass
