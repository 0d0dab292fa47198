#!/usr/bin/env bash
# exec in tail mode with a consumer that reads slowly but steadily is
# backpressure, not failure: `once` waits for it, checkpoints what it has
# read, exits 0, and every line reaches the consumer exactly once (a second
# `once` delivers nothing again). A consumer that stops reading fails the
# checkpoint only after stall-ms without progress, naming the program.
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/st; OUT=$T/consumed
mkdir -p "$D"
seq -f 'line %06g' 1 3000 > "$D/app.log"
# One line at a time, a millisecond each (and a process for each sleep).
CONSUMER="/bin/sh -c 'while read -r l; do echo \"\$l\" >> $OUT; sleep 0.001; done'"

say "a slow consumer: once exits 0 and every line is consumed once"
tdm once -s "$S" -p "exec:cmd=$CONSUMER" "$D"
assert_not_contains "$STDERR" "has not read"
assert_lines_once "$D/app.log" "$OUT" "lines the consumer wrote"
status_json "$S"
assert_eq "$(jfile pending "$(realpath "$D")/app.log")" 0 "pending after once"

say "a second once delivers nothing again"
tdm once -s "$S" -p "exec:cmd=$CONSUMER" "$D"
assert_lines_once "$D/app.log" "$OUT" "lines after a second once"

say "a consumer that never reads fails the checkpoint after stall-ms"
seq -f 'more %06g' 1 100 >> "$D/app.log"
assert_exit 1 "$TIDEMARK" once -s "$S" -p "exec:cmd=/bin/sleep 30,stall-ms=300" "$D"
assert_contains "$STDERR" "has not read"
assert_contains "$STDERR" "stall-ms"
status_json "$S"
[ "$(jfile pending "$(realpath "$D")/app.log")" -gt 0 ] || fail "the stalled bytes were checkpointed"

say "stall-ms is checked"
assert_exit 1,2 "$TIDEMARK" once -s "$S" -p "exec:cmd=/bin/cat,stall-ms=x" "$D"
assert_contains "$STDERR" "stall-ms"
