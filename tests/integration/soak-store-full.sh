#!/usr/bin/env bash
# soak: the state store on a filesystem that fills. The state directory is a
# 256 KiB tmpfs mounted by the test (root; skipped where mounting is not
# permitted), and 8,000 files are tracked (far more records than fit).
# tidemark must fail the checkpoint with a clear message naming the state
# directory (and keep running or exit 1, never crash or hang); after the
# tmpfs is remounted at 64 MiB and tidemark restarted, every line arrives,
# exactly once, through the `file` processor.
#
# (A read-only state directory mid-run cannot be made: root ignores chmod,
# and `mount -o remount,ro` is refused with EBUSY while LMDB holds data.mdb
# open for writing.)
source "$(dirname "$0")/lib.sh"
need_helper TDM_WRITER

N=${TDM_SOAK_FILES:-8000}
D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D/a" "$D/b"
mount_tmpfs "$S" 256k || skip "cannot mount a tmpfs here (not root or no CAP_SYS_ADMIN)"
"$TDM_WRITER" mkfiles "$D/a" $((N / 2)) a
"$TDM_WRITER" mkfiles "$D/b" $((N / 2)) b
cat "$D"/a/* "$D"/b/* > "$T/want"

run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D"
say "the store fills: a clear error naming the state directory"
end=$((SECONDS + 30))
ERR_RE='^tidemark: .*(No space|checkpoint failed|MDB_MAP_FULL|store.*full)'
until grep -qE "$ERR_RE" "$T/run.err"; do
  is_running "$RUN_PID" || break
  [ "$SECONDS" -lt "$end" ] || fail "no error 30 s after the store filled ($(df -k "$S" | tail -1))"
  sleep 0.1
done
grep -m 3 -E "$ERR_RE" "$T/run.err" || true
echo "  $(grep -cE "$ERR_RE" "$T/run.err") error lines"
# (not grep -q: under pipefail, its early exit can kill the first grep with
# SIGPIPE and fail the pipe though a line matched)
grep -E "$ERR_RE" "$T/run.err" | grep -F "$S" >/dev/null ||
  fail "the store error does not name the state directory $S"
sleep 1
if is_running "$RUN_PID"; then
  echo "  tidemark keeps running with a full store"
  stop_bg "$RUN_PID" TERM
  echo "  exit status after SIGTERM with a full store: $STOP_RC"
else
  stop_bg "$RUN_PID" TERM
  echo "  tidemark exited $STOP_RC on a full store"
fi
[ "$STOP_RC" -eq 0 ] || [ "$STOP_RC" -eq 1 ] || fail "exit status $STOP_RC on a full store (0 or 1 expected)"
assert_no_sanitizer "$T/run.err"

say "space returns (remount at 64 MiB); a restart delivers everything exactly once"
mount -o remount,size=64m "$S" || fail "remount of $S failed"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D"
wait_lines "$OUT" "$N" 60 "$RUN_PID"
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_lines_once "$T/want" "$OUT" "lines of $N files after the store filled"
status_json "$S"
assert_eq "$(jcount)" "$N" "files tracked"
assert_no_sanitizer "$T/run.err"

pass
