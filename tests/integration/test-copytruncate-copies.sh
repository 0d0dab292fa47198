#!/usr/bin/env bash
# copytruncate with the copies included (-i 'app.log*', as the README advises
# for rotation): a copy (app.log.1, a new inode with the same head) continues
# from the bookmark of the file it copies, so only what was unread at the
# copy arrives from it; the truncated app.log restarts at 0. Every line once:
# with `once` between the steps, and under `run` with cp + truncate done five
# times while lines are appended (the copy met while cp is still writing it,
# and before or after the truncation).
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/state; OUT=$T/out
mkdir -p "$D"

say "once: read, more lines, cp + truncate, new lines: each line once"
seq -f 'a %g' 100 > "$D/app.log"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
seq -f 'b %g' 10 >> "$D/app.log"
cp "$D/app.log" "$D/app.log.1"; : > "$D/app.log"
seq -f 'c %g' 5 >> "$D/app.log"
tdm once -v -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
{ seq -f 'a %g' 100; seq -f 'b %g' 10; seq -f 'c %g' 5; } > "$T/want1"
assert_lines_once "$T/want1" "$OUT" "OUT after copytruncate"
assert_contains "$STDERR" "app.log.1: a copy of"

say "run: five copytruncates while lines are appended"
D2=$T/logs2; OUT2=$T/out2; mkdir -p "$D2"
run_bg "$T/run.out" -s "$T/state2" --checkpoint-ms 50 -i 'app.log*' -p "file:path=$OUT2" "$D2"
n=0
for r in 1 2 3 4 5; do
  for i in $(seq 1 200); do n=$((n + 1)); echo "line $n of round $r" >> "$D2/app.log"; done
  sleep 0.$((RANDOM % 5))
  cp "$D2/app.log" "$D2/app.log.$r"; : > "$D2/app.log"
done
for i in $(seq 1 20); do n=$((n + 1)); echo "line $n at the end" >> "$D2/app.log"; done
cat "$D2"/app.log.[0-9] "$D2/app.log" > "$T/want2"
wait_lines "$OUT2" "$n" 30 "$RUN_PID"
sleep 1
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run's exit status"
assert_lines_once "$T/want2" "$OUT2" "OUT after five copytruncates under run"
pass
