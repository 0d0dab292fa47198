#!/usr/bin/env bash
# A hard descriptor cap far below the number of files (40 for 100 files, as
# the oracle's tail-file-fdcap scenario runs it): `run` must hold few enough
# descriptors that the process itself (the store, inotify, the loop, the
# file processor's OUT) still finds one to open the next file; every line
# appended to every file arrives, exactly once.
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/state; OUT=$T/out
mkdir -p "$D"
for i in $(seq -w 1 100); do echo "f$i line 0" > "$D/f$i.log"; done
( ulimit -n 40 && exec "$TIDEMARK" run -s "$S" --checkpoint-ms 100 -p "file:path=$OUT" "$D" ) \
  >/dev/null 2>>"$T/run.err" </dev/null &
RUN_PID=$!; TDM_BG_PIDS+=("$RUN_PID")
wait_lines "$OUT" 100 30 "$RUN_PID"
for round in 1 2 3; do
  for i in $(seq -w 1 100); do echo "f$i line $round" >> "$D/f$i.log"; done
  sleep 0.2
done
cat "$D"/*.log > "$T/want"
wait_lines "$OUT" 400 30 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run's exit status"
assert_lines_once "$T/want" "$OUT" "OUT under a hard cap of 40 descriptors"
assert_not_contains "$T/run.err" "Too many open files"
pass
