#!/usr/bin/env bash
# soak: the `file` processor's output on a filesystem that fills. OUT lives on
# a 2 MiB tmpfs mounted by the test (root; skipped where mounting is not
# permitted); about 5 MB of lines are fed. tidemark must report the error
# (naming OUT and "No space"), keep running and retrying, and its bookmark
# (status) must not pass what OUT durably holds. Then the tmpfs is remounted
# at 16 MiB: everything arrives, exactly once (OUT == the input, byte for
# byte), and SIGTERM exits 0.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state; FS=$T/outfs; OUT=$T/outfs/out
mkdir -p "$D"
mount_tmpfs "$FS" 2m || skip "cannot mount a tmpfs here (not root or no CAP_SYS_ADMIN)"
gen_lines 1 50000 > "$D/app.log"
RD=$(realpath "$D")
total=$(fsize "$D/app.log")
echo "input: $total bytes; output filesystem: 2 MiB"

run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D"
say "the error is reported, naming OUT"
wait_for 20 grep -q 'No space' "$T/run.err"
grep -m1 'No space' "$T/run.err"
assert_contains "$T/run.err" "$OUT"
is_running "$RUN_PID" || fail "tidemark exited on a full output disk"

say "it keeps running; the bookmark never passes what OUT holds"
for i in $(seq 1 10); do
  sleep 0.3
  is_running "$RUN_PID" || fail "tidemark exited on a full output disk"
  status_json "$S"
  bm=$(jfile bookmark "$RD/app.log"); have=$(fsize "$OUT")
  [ -n "$bm" ] || bm=0
  [ "$bm" -le "$have" ] || fail "bookmark $bm is past the $have bytes OUT holds"
  [ "$bm" -lt "$total" ] || fail "bookmark $bm at the end although OUT is full ($have bytes)"
done
echo "  bookmark $bm, OUT $have bytes of $total"
[ "$(grep -c 'No space' "$T/run.err")" -ge 1 ] || fail "no error message"

say "space returns: remount the tmpfs at 16 MiB"
mount -o remount,size=16m "$FS" || fail "remount of $FS failed"
t0=$(now_ms)
wait_for 30 bash -c '[ "$(stat -c %s "$1")" -ge "$2" ]' _ "$OUT" "$total"
echo "  caught up $(( $(now_ms) - t0 )) ms after the remount"
wait_for 10 bash -c '"$1" status -s "$2" --json | jq -e --arg p "$3" --argjson n "$4" \
  "[.files[] | select(.path == \$p)][0].bookmark == \$n"' _ "$TIDEMARK" "$S" "$RD/app.log" "$total"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_file_eq "$OUT" "$D/app.log" "OUT after the disk filled and emptied"
tries=$(grep -c 'No space' "$T/run.err")
echo "  'No space' reported $tries times"
assert_no_sanitizer "$T/run.err"

pass
