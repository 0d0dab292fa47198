#!/usr/bin/env bash
# Whole mode, content-hash dedup: the same content under another name is not
# handled again — `status --json` says "duplicate" with duplicate_of = the id
# of the file it duplicates, and the log names that file; two files that
# differ in one byte are both handled; a handled file whose content changes is
# handled again (a new version). Under `once`, then under `run` (a duplicate
# renamed in, a file rewritten in place).
source "$(dirname "$0")/lib.sh"

D=$T/drop; S=$T/state; LOG=$T/handled
mkdir -p "$D/sub"
make_handler "$T/handler.sh" "$LOG"
ONCE=(once -m whole --settle-ms 100 -s "$S" -p "exec:cmd=$T/handler.sh")
: > "$T/want"

say "once: two files handled"
{ echo 'id,name'; seq 1 2000 | sed 's/.*/&,row &/'; } > "$D/a.csv"
{ echo 'id,name'; seq 1 2000 | sed 's/.*/&,line &/'; } > "$D/b.csv"
want_entry "$D/a.csv" >> "$T/want"; want_entry "$D/b.csv" >> "$T/want"
tdm "${ONCE[@]}" "$D"
assert_handled_once "$LOG" "$T/want" "first once"
status_json "$S"
a_id=$(jfile id "$D/a.csv"); a_hash=$(jfile content_hash "$D/a.csv")
b_id=$(jfile id "$D/b.csv")
assert_eq "$(jfile state "$D/a.csv")" done "state of a.csv"
[ -n "$a_id" ] && [ "$a_id" != null ] || fail "a.csv has no id in status"

say "the same content under another name (and in a subdirectory): not handled"
cp "$D/a.csv" "$D/copy of a.csv"
cp "$D/a.csv" "$D/sub/a-again.csv"
tdm "${ONCE[@]}" -v "$D"
assert_handled_once "$LOG" "$T/want" "after copies of a.csv"
assert_contains "$STDERR" "$D/a.csv" "the log does not name the file the copies duplicate"
status_json "$S"
for f in "copy of a.csv" "sub/a-again.csv"; do
  assert_eq "$(jfile state "$D/$f")" duplicate "state of $f"
  assert_eq "$(jfile duplicate_of "$D/$f")" "$a_id" "duplicate_of of $f (a.csv's id)"
  assert_eq "$(jfile content_hash "$D/$f")" "$a_hash" "content_hash of $f"
done
assert_eq "$(jfile state "$D/a.csv")" done "state of a.csv after its copies"

say "two new files with equal content: one handled, the other its duplicate"
seq 1 5000 > "$D/twin1.txt"; cp "$D/twin1.txt" "$D/twin2.txt"
# and two of the same size that differ in their last byte: both handled
{ seq 1 3000; printf 'x'; } > "$D/near1.txt"; { seq 1 3000; printf 'y'; } > "$D/near2.txt"
want_entry "$D/near1.txt" >> "$T/want"; want_entry "$D/near2.txt" >> "$T/want"
tdm "${ONCE[@]}" "$D"
got1=$(handled_times "$LOG" "$(hexstr "$D/twin1.txt")"); got2=$(handled_times "$LOG" "$(hexstr "$D/twin2.txt")")
assert_eq "$((got1 + got2))" 1 "handler calls for twin1 + twin2 (equal content)"
if [ "$got1" -eq 1 ]; then first=twin1.txt; second=twin2.txt; else first=twin2.txt; second=twin1.txt; fi
want_entry "$D/$first" >> "$T/want"
assert_handled_once "$LOG" "$T/want" "after the twins and the near-twins"
status_json "$S"
assert_eq "$(jfile state "$D/$first")" done "state of $first"
assert_eq "$(jfile state "$D/$second")" duplicate "state of $second"
assert_eq "$(jfile duplicate_of "$D/$second")" "$(jfile id "$D/$first")" "duplicate_of of $second"
assert_eq "$(jfile state "$D/near1.txt")/$(jfile state "$D/near2.txt")" done/done "states of near1/near2"

say "a handled file whose content changes: handled again; so is a duplicate that changes"
{ echo 'id,name'; seq 1 2500 | sed 's/.*/&,row &/'; } > "$D/a.csv.new" && mv "$D/a.csv.new" "$D/a.csv"
printf 'now something else entirely\n' > "$D/copy of a.csv"
want_entry "$D/a.csv" >> "$T/want"; want_entry "$D/copy of a.csv" >> "$T/want"
tdm "${ONCE[@]}" "$D"
assert_handled_once "$LOG" "$T/want" "after changing a.csv and its copy"
status_json "$S"
assert_eq "$(jfile state "$D/a.csv")" done "state of a.csv, changed"
[ "$(jfile content_hash "$D/a.csv")" != "$a_hash" ] || fail "a.csv's content_hash did not change with its content"
assert_eq "$(jfile state "$D/copy of a.csv")" done "state of the changed copy"
assert_eq "$(jfile state "$D/sub/a-again.csv")" duplicate "state of sub/a-again.csv (unchanged)"

say "once more: nothing handled"
tdm "${ONCE[@]}" "$D"
assert_handled_once "$LOG" "$T/want" "a further once"

say "run: a duplicate renamed in is not handled; a file rewritten in place is"
run_bg "$T/run.out" -m whole --settle-ms 300 -s "$S" -p "exec:cmd=$T/handler.sh" "$D"
cp "$D/b.csv" "$T/b-again.csv"; mv "$T/b-again.csv" "$D/b-again.csv"
wait_for 15 bash -c '"$1" status -s "$2" --json | jq -e --arg p "$3" "[.files[] | select(.path == \$p and .state == \"duplicate\")] | length == 1"' \
  _ "$TIDEMARK" "$S" "$D/b-again.csv"
printf 'b, version 2\n' > "$D/b.csv"        # rewritten in place (IN_CLOSE_WRITE)
want_entry "$D/b.csv" >> "$T/want"
wait_lines "$LOG" "$(lines_in "$T/want")" 15 "$RUN_PID"
sleep 1
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_handled_once "$LOG" "$T/want" "under run"
status_json "$S"
assert_eq "$(jfile state "$D/b-again.csv")" duplicate "state of b-again.csv"
assert_eq "$(jfile duplicate_of "$D/b-again.csv")" "$b_id" "duplicate_of of b-again.csv (b.csv's id)"
assert_eq "$(jfile state "$D/b.csv")" done "state of b.csv, rewritten"
for f in a.csv b.csv near1.txt "copy of a.csv"; do
  assert_eq "$(handled_hash "$LOG" "$(hexstr "$D/$f")")" "$(jfile content_hash "$D/$f")" "TIDEMARK_HASH given for $f vs its content_hash"
done
assert_no_sanitizer "$T/run.err"

pass
