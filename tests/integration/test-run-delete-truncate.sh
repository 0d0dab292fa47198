#!/usr/bin/env bash
# `tidemark run`: truncation and deletion while running.
#   - `: > f` is noticed (counted in status) and new content is delivered
#     from 0; a truncate-and-rewrite at once (copytruncate) too;
#   - a file appended to and deleted at once: the appended lines are delivered
#     (drained through the open descriptor);
#   - a file deleted while a writer keeps appending to it (and recreating it
#     at the same name): every line written before the delete and every line
#     of the new file, exactly once;
#   - a new file at a deleted file's name (maybe on the same inode): from 0.
source "$(dirname "$0")/lib.sh"
need_helper TDM_WRITER

D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D"
RD=$(realpath "$D")
f=$D/f.log
gen_lines 1 100 | sed 's/^/gen1 /' > "$f"
cp "$f" "$T/want"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D"
wait_lines "$OUT" 100 15 "$RUN_PID"

truncations_is() {
  status_quiet "$S" || return 1
  [ "$(jq -r --arg p "$RD/f.log" '.files[] | select(.path == $p and .present != false) | .truncations' "$T/st.json")" = "$1" ]
}

say "truncation: counted, then new content delivered from 0"
: > "$f"
wait_for 10 truncations_is 1
gen_lines 1 30 | sed 's/^/gen2 /' | tee -a "$T/want" > "$f"
wait_lines "$OUT" 130 5 "$RUN_PID"

say "truncate and rewrite at once (copytruncate): the new content from 0"
gen_lines 1 10 | sed 's/^/gen3 /' | tee -a "$T/want" > "$f"
wait_lines "$OUT" 140 5 "$RUN_PID"

say "append, then delete at once: the appended lines are drained"
gen_lines 1 20 | sed 's/^/gen4 /' | tee -a "$T/want" >> "$f"
rm "$f"
wait_lines "$OUT" 160 5 "$RUN_PID"

say "a new file at the deleted name: delivered from 0"
gen_lines 1 5 | sed 's/^/gen5 /' | tee -a "$T/want" > "$f"
echo "  (new f.log is inode $(stat -c %i "$f"))"
wait_lines "$OUT" 165 5 "$RUN_PID"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_lines_once "$T/want" "$OUT" "truncations and deletes of f.log"
assert_file_eq "$OUT" "$T/want" "f.log's generations, in order"

say "deleted while a writer appends (and recreates it): every line once"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D"
"$TDM_WRITER" append -r 2000 -c "$T/written" -t "$T/tee" g "$D/g.log" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
sleep 1
rm "$D/g.log"
sleep 0.5
rm "$D/g.log"
sleep 0.5
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
written=$(cat "$T/written")
echo "  writer wrote $written lines; g.log deleted twice meanwhile; $(lines_in "$D/g.log") in the last g.log"
cat "$T/tee" >> "$T/want"
wait_lines "$OUT" $((165 + written)) 10 "$RUN_PID"
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_lines_once "$T/want" "$OUT" "output with g.log deleted under a writer"
assert_no_sanitizer "$T/run.err"

pass
