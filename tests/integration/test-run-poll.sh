#!/usr/bin/env bash
# `tidemark run --poll-ms 200` (stat polling, for network filesystems):
#   - no inotify watch is used;
#   - appends, a new file in a new directory, a rename rotation and a
#     truncation are found and delivered (content checked);
#   - SIGTERM exits 0 within 2 s;
#   - a restart on the same state duplicates nothing and goes on delivering.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D"
gen_lines 1 100 > "$D/a.log"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --poll-ms 200 --checkpoint-ms 100 "$D"
wait_lines "$OUT" 100 15 "$RUN_PID"
assert_file_eq "$OUT" "$D/a.log"

say "no inotify watch in poll mode"
watches=$(cat /proc/"$RUN_PID"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true)
assert_eq "$watches" 0 "inotify watches held by tidemark --poll-ms"

# poll_deliver N LABEL: wait (5 s) for N lines in OUT; print the delay.
poll_deliver() { wait_delivered "$OUT" "$1" 5 "$RUN_PID" "$2 (poll 200 ms, checkpoints 100 ms)"; }

say "appends are delivered"
gen_lines 101 200 >> "$D/a.log"
poll_deliver 200 "append"
assert_file_eq "$OUT" "$D/a.log"
printf 'one more\n' >> "$D/a.log"
poll_deliver 201 "one-line append"
assert_file_eq "$OUT" "$D/a.log"

say "a new file in a new directory"
mkdir -p "$D/x/y"
gen_lines 1001 1050 > "$D/x/y/b.log"
poll_deliver 251 "new x/y/b.log"

say "rename rotation: the renamed file's tail and the new file"
gen_lines 201 210 >> "$D/a.log"
mv "$D/a.log" "$D/a.log.1"
gen_lines 2001 2005 > "$D/a.log"
poll_deliver 266 "rotation"

say "truncation restarts at 0"
: > "$D/x/y/b.log"
sleep 0.5   # two poll intervals: let it see the empty file
gen_lines 3001 3003 > "$D/x/y/b.log"
poll_deliver 269 "after truncation"

say "SIGTERM: exit 0 within 2 s"
stop_bg "$RUN_PID" TERM
echo "  SIGTERM to exit: $STOP_MS ms"
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
[ "$STOP_MS" -le 2000 ] || fail "exit took $STOP_MS ms after SIGTERM (limit 2000)"
{ cat "$D/a.log.1" "$D/a.log"; gen_lines 1001 1050; cat "$D/x/y/b.log"; } > "$T/want"
assert_lines_once "$T/want" "$OUT" "poll mode output"

say "restart: nothing delivered again, new appends are"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --poll-ms 200 --checkpoint-ms 100 "$D"
gen_lines 5001 5010 >> "$D/a.log"
poll_deliver 279 "append after the restart"
sleep 0.5   # a few poll and checkpoint intervals for any duplicate to show
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
[ "$STOP_MS" -le 2000 ] || fail "exit took $STOP_MS ms after SIGTERM (limit 2000)"
gen_lines 5001 5010 >> "$T/want"
assert_lines_once "$T/want" "$OUT" "output after a restart"
assert_no_sanitizer "$T/run.err"

pass
