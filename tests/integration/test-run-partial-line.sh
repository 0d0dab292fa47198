#!/usr/bin/env bash
# `tidemark run` in lines mode: a partial last line waits for its newline,
# while running and across a stop: the line is delivered once, whole, when it
# is completed (before or after a restart); --records bytes delivers at once.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D"
RD=$(realpath "$D")
printf 'line 1\n' > "$D/a.log"
run_bg "$T/run.out" -s "$S" -p stdout -p "file:path=$OUT" --checkpoint-ms 100 "$D"
wait_lines "$T/run.out" 1 15 "$RUN_PID"

say "a partial line is not delivered while it stays partial"
printf 'line 2 part one, ' >> "$D/a.log"
# the append is seen (its event handled) but held: wait for a later line of
# another file to come through, then check a.log's partial line did not
printf 'other\n' > "$D/b.log"
wait_lines "$T/run.out" 2 5 "$RUN_PID"
sleep 0.3
assert_not_contains "$T/run.out" "part one"

say "completed: delivered once, whole"
printf 'part two\n' >> "$D/a.log"
wait_lines "$T/run.out" 3 5 "$RUN_PID"
assert_contains "$T/run.out" "line 2 part one, part two"

say "a partial line at SIGTERM: the bookmark stops before it"
printf 'line 3 begun' >> "$D/a.log"
printf 'other 2\n' >> "$D/b.log"
wait_lines "$T/run.out" 4 5 "$RUN_PID"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
status_json "$S"
assert_eq "$(jfile bookmark "$RD/a.log")" $(( $(fsize "$D/a.log") - 12 )) "bookmark of a.log (before the partial line)"

say "completed while stopped: delivered whole after the restart, nothing repeated"
printf ' and ended\n' >> "$D/a.log"
run_bg "$T/run2.out" -s "$S" -p stdout -p "file:path=$OUT" --checkpoint-ms 100 "$D"
wait_lines "$T/run2.out" 1 15 "$RUN_PID"
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_eq "$(cat "$T/run2.out")" "line 3 begun and ended" "what the restart delivered"
cat "$D/a.log" "$D/b.log" > "$T/want"
assert_lines_once "$T/want" "$OUT"

say "--records bytes: a partial line goes out at once"
D2=$T/d2; S2=$T/state2
mkdir -p "$D2"
run_bg "$T/run3.out" -s "$S2" -p stdout --records bytes "$D2"
printf 'no newline here' > "$D2/c.log"
wait_for 5 grep -q 'no newline here' "$T/run3.out"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_no_sanitizer "$T/run.err"

pass
