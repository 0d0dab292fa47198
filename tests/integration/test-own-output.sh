#!/usr/bin/env bash
# `once` processes what is new since the last run, *then exits*. The sharpest
# case: the file processor writing into the tree it reads. If a run chased each
# file's moving end it would read its own output back and grow it without
# bound (the test stops it at 10x the input).
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state
mkdir -p "$D"
gen_lines 1 20000 > "$D/a.log"          # ~2 MB
A=$(fsize "$D/a.log")
LIMIT=$((A * 10))

say "file output inside the watched tree: once ends, the output stays bounded"
"$TIDEMARK" once -s "$S" -p "file:path=$D/out.log" "$D" >"$T/run.out" 2>"$T/run.err" &
pid=$!; TDM_BG_PIDS+=("$pid")
end=$((SECONDS + 30)); runaway=""
while kill -0 "$pid" 2>/dev/null; do
  if [ "$(fsize "$D/out.log" 2>/dev/null || echo 0)" -gt "$LIMIT" ]; then runaway=size; break; fi
  if [ "$SECONDS" -ge "$end" ]; then runaway=time; break; fi
  sleep 0.01
done
if [ -n "$runaway" ]; then
  kill -TERM "$pid" 2>/dev/null || true
  { wait "$pid"; } 2>/dev/null || true
  got=$(fsize "$D/out.log")
  rm -f "$D/out.log"
  fail "once -p file:path=DIR/out.log DIR did not finish: it read its own output back (out.log reached $got bytes from a $A-byte input; stopped by the test, $runaway limit)"
fi
rc=0; wait "$pid" || rc=$?
assert_eq "$rc" 0 "exit of once with its output inside the tree ($(tail -n 2 "$T/run.err"))"
got=$(fsize "$D/out.log")
echo "out.log: $got bytes for a $A-byte input"
[ "$got" -le $((2 * A)) ] || fail "out.log has $got bytes for a $A-byte input"
cmp -n "$A" "$D/out.log" "$D/a.log" >/dev/null || fail "out.log does not start with a.log's content"

pass
