#!/usr/bin/env bash
# Whole mode: an outcome is the most expensive thing tidemark learns, so it is
# made durable promptly after the loader exits (outcomes that arrive together
# share one commit). 200 files, an `exec` loader of a few ms, `run` killed
# with kill -9 three times 0.3-0.8 s after each start, then left to finish:
# a crash repeats at most the loaders running at that moment, so no file is
# handled more than twice (at most once more, if it was running at a kill).
source "$(dirname "$0")/lib.sh"

D=$T/drop; S=$T/state; LOG=$T/loads
N=200
mkdir -p "$D"
cat > "$T/load.sh" <<LOADER
#!/bin/sh
printf '%s\n' "\$1" >> '$LOG'
sleep 0.005
LOADER
chmod +x "$T/load.sh"
for i in $(seq 1 $N); do printf 'file %d\n' "$i" > "$D/f$i.csv"; done
make_old "$D"/*.csv
RUN=(-m whole --settle-ms 100 -s "$S" -p "exec:cmd=$T/load.sh" "$D")

for k in 1 2 3; do
  run_bg "$T/run.out" "${RUN[@]}"
  sleep "0.$((3 + RANDOM % 6))"
  kill9_bg "$RUN_PID"
  say "kill -9 #$k: $(sort -u "$LOG" 2>/dev/null | wc -l) of $N files handled, $(lines_in "$LOG") loader runs"
done
run_bg "$T/run.out" "${RUN[@]}"
distinct() { [ "$(sort -u "$LOG" | wc -l)" -ge "$N" ]; }
wait_for 120 distinct
sleep 1.5 # the final outcomes' checkpoint
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit of the last run"

runs=$(lines_in "$LOG")
max=$(sort "$LOG" | uniq -c | awk '$1 > m { m = $1 } END { print m + 0 }')
more=$(sort "$LOG" | uniq -c | awk '$1 > 1 { n++ } END { print n + 0 }')
say "$runs loader runs for $N files; $more files handled more than once; at most $max runs per file"
[ "$max" -le 2 ] || fail "a file was handled $max times across 3 kills (files handled more than once: $more)"
status_json "$S"
assert_eq "$(jstate_count done)" "$N" "files done in status"
pass
