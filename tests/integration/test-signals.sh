#!/usr/bin/env bash
# SIGTERM / SIGINT during `once`: a final checkpoint, exit 0. What was handed
# over is exactly what the bookmark says (the file output holds exactly the
# bookmarked bytes, count's totals match), and the next run resumes there.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D"
gen_lines 1 1000000 > "$D/app.log"
RF=$(realpath "$D")/app.log
SIZE=$(fsize "$RF")
echo "log: $SIZE bytes"

mid=0
before=0
for k in 1 2 3 4 5 6; do
  sig=TERM; [ $((k % 2)) -eq 0 ] && sig=INT
  "$TIDEMARK" once -s "$S" -p "file:path=$OUT" -p count "$D" >"$T/run.out" 2>"$T/run.err" &
  pid=$!; TDM_BG_PIDS+=("$pid")
  # Signal once the run is delivering (its output has grown past where it was),
  # so that the signal handlers are surely installed.
  end=$((SECONDS + 20))
  until [ "$(fsize "$OUT" 2>/dev/null || echo 0)" -gt "$before" ] || ! kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$end" ] || fail "run $k never started writing"
  done
  kill -s "$sig" "$pid" 2>/dev/null || true
  rc=0; { wait "$pid"; } 2>/dev/null || rc=$?
  [ "$rc" -eq 0 ] || { cat "$T/run.err" >&2; fail "run $k: exit $rc after SIG$sig (expected 0)"; }
  after=$(bookmark_of "$S" "$RF")
  got=$(fsize "$OUT")
  printf '  SIG%-4s run %d: bookmark %d -> %d of %d%s\n' "$sig" "$k" "$before" "$after" "$SIZE" \
    "$([ "$after" -lt "$SIZE" ] && echo ' (stopped mid-file)' || echo ' (had finished)')"
  [ "$after" -lt "$SIZE" ] && mid=$((mid + 1))
  assert_eq "$got" "$after" "run $k: file output size vs the bookmark after SIG$sig"
  cmp -n "$got" "$OUT" "$D/app.log" >/dev/null || fail "run $k: output is not a prefix of the log"
  grep -q "^count: " "$T/run.out" || fail "run $k: count printed no totals after SIG$sig: $(cat "$T/run.out")"
  assert_contains "$T/run.out" "bytes=$((after - before))"
  before=$after
  [ "$after" -lt "$SIZE" ] || break
done
echo "$mid signalled runs stopped mid-file"

say "the run after the signals completes the file; output byte-identical"
tdm once -s "$S" -p "file:path=$OUT" "$D"
assert_file_eq "$OUT" "$D/app.log"

pass
