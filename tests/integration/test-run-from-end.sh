#!/usr/bin/env bash
# `tidemark run --from-end`: files that exist at the start begin at their end
# (like `tail -f`): only what is appended after the start is delivered. Files
# created later begin at 0. A restart without --from-end repeats nothing.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D/sub"
gen_lines 1 100 > "$D/old.log"
gen_lines 101 150 > "$D/sub/old2.log"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --from-end --checkpoint-ms 100 "$D"
# ready once the start-up scan has bookmarked both files at their end
RD=$(realpath "$D")
at_end() {
  status_quiet "$S" || return 1
  jq -e --arg a "$RD/old.log" --arg b "$RD/sub/old2.log" --argjson sa "$(fsize "$D/old.log")" \
     --argjson sb "$(fsize "$D/sub/old2.log")" \
     '[.files[] | select((.path == $a and .bookmark == $sa) or (.path == $b and .bookmark == $sb))] | length == 2' \
     "$T/st.json" >/dev/null
}
wait_for 15 at_end

say "a file created after the start: from 0"
gen_lines 1001 1003 > "$D/new.log"
wait_lines "$OUT" 3 15 "$RUN_PID"

say "appends to files that existed at the start: only the appended lines"
gen_lines 201 210 >> "$D/old.log"
gen_lines 211 215 >> "$D/sub/old2.log"
wait_lines "$OUT" 18 5 "$RUN_PID"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
{ gen_lines 1001 1003; gen_lines 201 215; } > "$T/want"
assert_lines_once "$T/want" "$OUT" "--from-end output"

say "restart without --from-end: nothing old repeated, appends delivered"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D"
gen_lines 301 302 >> "$D/old.log"
wait_lines "$OUT" 20 10 "$RUN_PID"
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
gen_lines 301 302 >> "$T/want"
assert_lines_once "$T/want" "$OUT" "output after a restart"
assert_no_sanitizer "$T/run.err"

pass
