#!/usr/bin/env bash
# nats: pieces are sized with their headers, and a message no server takes
# fails that one file, named, while the others go on (in `once` and `run`).
# - A 2 MB line under a ~1,850-byte path (the server's 1 MiB max payload):
#   every byte is published, in pieces, the connection never dropped.
# - A stream whose max message size (2,048 bytes) the headers of a file
#   under a ~1,900-byte path alone exceed: the processor answers REJECT for
#   it; that file is failed and named; the lines of the other files,
#   including a 1,000-byte line under a ~1,400-byte path (pieces of the room
#   its headers leave), are all in the stream; `run` goes on checkpointing
#   them.
source "$(dirname "$0")/lib.sh"
need_nats
nats_start
js create BIG 'big.>' 120
js create SMALL 'small.>' 120 1 2048

# a directory path of about N bytes under $1
deep() {
  local d=$1 n=$2 seg
  seg=$(printf 'd%.0s' $(seq 200))
  while [ ${#d} -lt $((n - 201)) ]; do d=$d/$seg; done
  echo "$d"
}

say "a 2 MB line under a long path: all of it, in pieces with their headers"
A=$T/a; mkdir -p "$A"
LONG=$(deep "$A" 1850); mkdir -p "$LONG"
python3 -c "import sys; sys.stdout.write('small\n' + 'x'*2000000 + '\nafter\n')" > "$LONG/big.log"
tdm once --max-record 4M -s "$T/sa" -p "nats:url=$NATS_URL,subject=big.x,stream=BIG" "$A"
assert_not_contains "$T/nats.log" "Maximum Payload"
assert_not_contains "$STDERR" "lost the connection"
js_dump BIG "$T/big.dump"
assert_eq "$(awk -F'\t' '$5 ~ /^x/ { s += length($5) } END { print s + 0 }' "$T/big.dump")" 2000000 "x bytes in the stream"
assert_eq "$(cut -f5 "$T/big.dump" | grep -c -x -e small -e after)" 2 "the short lines"
n=$(wc -l < "$T/big.dump")
[ "$n" -ge 4 ] || fail "the 2 MB line in $((n - 2)) message(s): not in pieces"

D=$T/d; S=$T/state
mkdir -p "$D"
NOROOM=$(deep "$D/n" 1900); mkdir -p "$NOROOM"
TIGHT=$(deep "$D/t" 1400); mkdir -p "$TIGHT"
seq -f 'ok %g' 3 > "$D/ok.log"
printf 'never\npublished\n' > "$NOROOM/noroom.log"
python3 -c "import sys; sys.stdout.write('y'*1000 + '\n')" > "$TIGHT/tight.log"
SPEC="nats:url=$NATS_URL,subject=small.x,stream=SMALL"

say "once: the file whose headers leave no room fails, named; the rest goes"
assert_exit 1 "$TIDEMARK" once -s "$S" -p "$SPEC" "$D"
assert_contains "$STDERR" "$NOROOM/noroom.log at offset 0"
assert_contains "$STDERR" "cannot be published: its headers"
assert_contains "$STDERR" "stream's max message size of 2048 bytes"
js_dump SMALL "$T/small.dump"
assert_eq "$(cut -f5 "$T/small.dump" | grep -c '^ok ')" 3 "ok.log's lines"
assert_eq "$(awk -F'\t' '$5 ~ /^y/ { s += length($5) } END { print s + 0 }' "$T/small.dump")" 1000 "tight.log's line, in pieces"
[ "$(grep -c 'tight.log' "$T/small.dump")" -ge 2 ] || fail "tight.log's 1,000-byte line was not cut into pieces"
assert_not_contains "$T/small.dump" "never"
status_json "$S"
assert_eq "$(jq -r --arg p "$NOROOM/noroom.log" '.files[] | select(.path == $p) | .state' "$T/status.json")" failed "noroom.log's state"

say "run: the others keep being published and checkpointed"
S2=$T/state2
run_bg "$T/run.out" -s "$S2" --checkpoint-ms 200 -p "$SPEC" "$D"
wait_count SMALL 6 20 "$RUN_PID" # ok.log's 3 lines again (new state: new ids)
seq -f 'more %g' 5 >> "$D/ok.log"
echo 'still not' >> "$NOROOM/noroom.log"
has_more() { grep -q 'more 5' <<<"$("$TDM_JSCLIENT" "$NATS_URL" dump SMALL)"; }
wait_for 20 has_more
want=$(fsize "$D/ok.log")
end=$((SECONDS + 20))
until status_quiet "$S2" && [ "$(jq -r --arg p "$D/ok.log" '.files[] | select(.path == $p) | .bookmark' "$T/st.json")" = "$want" ]; do
  [ "$SECONDS" -lt "$end" ] || fail "ok.log's bookmark did not reach $want: $(jq -c '.files[] | {path: .path[-20:], bookmark, state}' "$T/st.json")"
  is_running "$RUN_PID" || fail "run exited"
  sleep 0.2
done
assert_contains "$T/run.err" "$NOROOM/noroom.log at offset 0"
is_running "$RUN_PID" || fail "run exited"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "run's exit status after SIGTERM"
assert_not_contains "$T/small.dump" "still not"
assert_no_sanitizer "$T/run.err"
nats_stop
pass
