#!/usr/bin/env bash
# Sinks deliver at once: with `run -p file:path=OUT --checkpoint-ms 60000`, a
# line appended to a watched file shows in OUT long before any checkpoint
# (the processor hands over its buffer when the reader has caught up). No
# timing assertion: with a 60 s checkpoint interval, the waits below (a few
# seconds) can only succeed if delivery does not wait for a checkpoint; the
# store still has the old bookmark when the line is in OUT. The checkpoint at
# the stop still makes everything durable, once.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D"
RD=$(realpath "$D")
for i in $(seq 1 20); do printf 'start %d\n' "$i" > "$D/f$i.log"; done
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 60000 "$D"

say "the start-up read reaches OUT without a checkpoint"
wait_lines "$OUT" 20 10 "$RUN_PID"

say "an appended line reaches OUT within seconds, the store still at the old bookmark"
for k in 1 2 3; do
  printf 'appended %d\n' "$k" >> "$D/f7.log"
  wait_lines "$OUT" $((20 + k)) 5 "$RUN_PID"
  assert_eq "$(tail -n 1 "$OUT")" "appended $k" "last line of OUT"
done
status_json "$S"
b=$(jfile bookmark "$RD/f7.log")
[ -z "$b" ] || [ "$b" = 0 ] || fail "f7.log has bookmark [$b] in the store: a checkpoint happened"

say "the stop checkpoints: every line once, bookmarks at the ends"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
cat "$D"/*.log > "$T/want"
assert_lines_once "$T/want" "$OUT"
status_json "$S"
assert_eq "$(jfile bookmark "$RD/f7.log")" "$(fsize "$D/f7.log")" "bookmark of f7.log after the stop"
assert_no_sanitizer "$T/run.err"
pass
