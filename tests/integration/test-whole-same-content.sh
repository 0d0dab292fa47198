#!/usr/bin/env bash
# Whole mode: a version is new only when its content hash is new. `touch` on
# a handled file, or the same bytes written again under the same name (same
# inode, or a new inode at the same path), must not run the loader again: a
# duplicate, counted (logged), no processor run. Different bytes at the same
# name are a new version and are handled. Under `once`, then under `run`.
source "$(dirname "$0")/lib.sh"

D=$T/drop; S=$T/state; LOG=$T/handled
mkdir -p "$D"
make_handler "$T/handler.sh" "$LOG"
ONCE=(once -m whole --settle-ms 100 -s "$S" -p "exec:cmd=$T/handler.sh")
HF=$(hexstr "$D/f")

say "once: the first version is handled"
printf 'payload\n' > "$D/f"; make_old "$D/f"
tdm "${ONCE[@]}" "$D"
assert_eq "$(handled_times "$LOG" "$HF")" 1 "loader runs after the first once"

say "touch (content unchanged): not handled again, said as a duplicate"
touch "$D/f"; sleep 0.2
tdm "${ONCE[@]}" "$D"
assert_eq "$(handled_times "$LOG" "$HF")" 1 "loader runs after touch"
assert_contains "$STDERR" "$D/f" "touch: no message names the unchanged file"
assert_contains "$STDERR" "same content" "touch: not said to be the same content"

say "the same bytes written again under the same name (same inode)"
printf 'payload\n' > "$D/f"; sleep 0.2
tdm "${ONCE[@]}" "$D"
assert_eq "$(handled_times "$LOG" "$HF")" 1 "loader runs after rewriting the same bytes"
status_json "$S"
assert_eq "$(jfile state "$D/f")" done "state of f after the same bytes again"

say "the same bytes dropped again under the same name (a new inode)"
rm "$D/f"; tdm "${ONCE[@]}" "$D"
printf 'payload\n' > "$D/f.new"; mv "$D/f.new" "$D/f"; sleep 0.2
tdm "${ONCE[@]}" "$D"
assert_eq "$(handled_times "$LOG" "$HF")" 1 "loader runs after a new inode with the same bytes"

say "different bytes at the same name: a new version, handled"
printf 'payload v2\n' > "$D/f"; sleep 0.2
tdm "${ONCE[@]}" "$D"
assert_eq "$(handled_times "$LOG" "$HF")" 2 "loader runs after new content"

say "run: touch and the same bytes again are not handled; new bytes are"
run_bg "$T/run.out" -m whole --settle-ms 100 -s "$S" -p "exec:cmd=$T/handler.sh" "$D"
sleep 1
touch "$D/f"; sleep 0.5
printf 'payload v2\n' > "$D/f"; sleep 0.5
printf 'payload v3\n' > "$D/f"
handled_at_least() { [ "$(handled_times "$LOG" "$HF")" -ge "$1" ]; }
wait_for 20 handled_at_least 3
sleep 1.5
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit of run"
assert_eq "$(handled_times "$LOG" "$HF")" 3 "loader runs after run (touch, same bytes, v3)"
pass
