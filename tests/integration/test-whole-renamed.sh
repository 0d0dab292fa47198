#!/usr/bin/env bash
# Whole mode, `run`: 300 files written elsewhere on the same filesystem and
# renamed into the watched directory (the way a careful producer drops files)
# are each handed to the exec handler exactly once, with their complete
# content (the handler's sha256 of what it read equals the source's).
#
# --settle-ms is 30 s: a file renamed into the tree is complete at once
# (IN_MOVED_TO), so all 300 must be handled long before any of them could
# have settled. After a restart, files moved within the tree (the loader
# archiving them into a subdirectory, or renaming them) are not handled again. Files of 1 byte to 1 MiB, every content different (equal
# contents would be duplicates).
source "$(dirname "$0")/lib.sh"

N=${TDM_WHOLE_RENAMED_FILES:-300}
D=$T/drop; S=$T/state; STAGE=$T/stage; LOG=$T/handled
mkdir -p "$D" "$STAGE"
make_handler "$T/handler.sh" "$LOG"

say "stage $N files of varied size outside the watched directory"
for i in $(seq 1 "$N"); do
  n=$(( (i * 7919) % 4096 ))
  [ $((i % 50)) -eq 0 ] && n=$((1048576 - i))          # a few of ~1 MiB
  { printf 'file %04d\n' "$i"; head -c "$n" /dev/urandom; } > "$STAGE/f$(printf %04d "$i").dat"
done
: > "$T/want"
for f in "$STAGE"/*.dat; do want_entry "$f" "$D/$(basename "$f")" >> "$T/want"; done

# a file already there (old: complete at once) tells when tidemark is up
printf 'ready\n' > "$D/ready.txt"; make_old "$D/ready.txt"
want_entry "$D/ready.txt" >> "$T/want"
run_bg "$T/run.out" -m whole --settle-ms 30000 -s "$S" -p "exec:cmd=$T/handler.sh" "$D"
wait_for 20 grep -q "$(hexstr "$D/ready.txt")" "$LOG"

say "rename the $N files into the watched directory"
t0=$(now_ms)
mv "$STAGE"/*.dat "$D"/
wait_lines "$LOG" $((N + 1)) 20 "$RUN_PID"
echo "  all $N handled $(( $(now_ms) - t0 )) ms after the renames"
sleep 1.5   # anything handled twice would show up now
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "each file handled exactly once, with its complete content"
assert_handled_once "$LOG" "$T/want" "renamed files"

say "status: every file done, with the hash the handler was given"
status_json "$S"
assert_eq "$(jcount)" $((N + 1)) "files in status"
assert_eq "$(jstate_count done)" $((N + 1)) "files done"
whole_hashes_match "$LOG"
bad=$(jq -r '.files[] | select((.content_hash | tostring | test("^[0-9a-f]{32}$")) | not) | .path' "$T/status.json" | sed -n 1,3p)
assert_eq "$bad" "" "files whose content_hash is not 32 hex digits"

say "a restart handles none of them again"
run_bg "$T/run.out" -m whole --settle-ms 300 -s "$S" -p "exec:cmd=$T/handler.sh" "$D"
printf 'after restart\n' > "$T/late.txt"; mv "$T/late.txt" "$D/"
want_entry "$D/late.txt" >> "$T/want"
wait_lines "$LOG" $((N + 2)) 20 "$RUN_PID"
say "handled files moved within the tree (into archive/, or renamed) are not handled again"
mkdir "$D/archive"
mv "$D"/f000[1-9].dat "$D/archive/"
for f in "$D"/f001[0-4].dat; do mv "$f" "$f.done"; done
sleep 1.5
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_handled_once "$LOG" "$T/want" "after a restart"
assert_no_sanitizer "$T/run.err"

pass
