#!/usr/bin/env bash
# soak: Debian's logrotate in `copytruncate` mode (copy app.log to app.log.1,
# then truncate app.log in place) run with -f every 300 ms while a writer
# appends to app.log through one O_APPEND descriptor (tdm-writer hold) and
# `tidemark run -i app.log -p file` (the live file only) is killed with -9 and
# restarted several times. copytruncate loses by design the lines written
# between logrotate's copy and its truncate (and lines tidemark had not read
# yet when the truncation came: they are only in app.log.N, not tailed); the
# test counts and prints them. It fails on any duplicated line, on a line
# that was never written, and when tidemark logged no truncation.
#
# Knobs: TDM_SOAK_ROTS (rotations, 30), TDM_SOAK_RATE (lines/s, 3000),
# TDM_SOAK_KILL_EVERY (a kill -9 every N rotations, 6).
source "$(dirname "$0")/lib.sh"
need_helper TDM_WRITER
command -v logrotate >/dev/null || skip "logrotate is not installed (apt-get install logrotate)"

ROTS=${TDM_SOAK_ROTS:-30}
RATE=${TDM_SOAK_RATE:-3000}
KILL_EVERY=${TDM_SOAK_KILL_EVERY:-6}
D=$T/logs; S=$T/state; OUT=$T/out
mkdir -p "$D"

"$TDM_WRITER" hold -r "$RATE" -c "$T/written" -t "$T/tee" w "$D/app.log" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/app.log"
logrotate_conf "$T/rotate.conf" "$D/app.log" copytruncate

run_bg "$T/run.out" -s "$S" -i app.log -p "file:path=$OUT" --checkpoint-ms 100 "$D"
say "logrotate -f (copytruncate) every 300 ms, $ROTS times; kill -9 every $KILL_EVERY"
kills=0
for r in $(seq 1 "$ROTS"); do
  sleep 0.3
  logrotate_run "$T/rotate.conf" "$T/rotate.state"
  is_running "$WPID" || fail "the writer died at rotation $r: $(cat "$T/writer.err")"
  if [ $((r % KILL_EVERY)) -eq 0 ]; then
    is_running "$RUN_PID" || fail "tidemark exited by itself before kill $((kills + 1))"
    sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
    kill9_bg "$RUN_PID"
    kills=$((kills + 1))
    printf '  rotation %2d: kill -9 #%d; %7d lines written, output at %7d\n' "$r" "$kills" \
      "$(lines_in "$T/tee")" "$(lines_in "$OUT")"
    run_bg "$T/run.out" -s "$S" -i app.log -p "file:path=$OUT" --checkpoint-ms 100 "$D"
  fi
done
is_running "$RUN_PID" || fail "tidemark exited during the rotations"
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
written=$(cat "$T/written")
echo "writer wrote $written lines over $ROTS rotations, $kills kills -9"

say "the live app.log delivered to its end"
wait_for 30 bash -c '"$1" status -s "$2" --json | jq -e --arg p "$3" \
  "[.files[] | select(.path == \$p and .present)] | length == 1 and .[0].bookmark == .[0].size" ' \
  _ "$TIDEMARK" "$S" "$(realpath "$D")/app.log"
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "0 duplicated, nothing foreign; lost lines counted"
sort "$OUT" | uniq -d > "$T/dups"
ndups=$(wc -l < "$T/dups")
[ "$ndups" -eq 0 ] || { head -n 5 "$T/dups" >&2; fail "$ndups lines delivered more than once"; }
sort "$T/tee" > "$T/tee.sorted"
sort "$OUT" > "$T/out.sorted"
extra=$(comm -13 "$T/tee.sorted" "$T/out.sorted" | wc -l)
assert_eq "$extra" 0 "delivered lines the writer never wrote"
delivered=$(wc -l < "$T/out.sorted")
lost=$((written - delivered))
echo "  written $written, delivered $delivered distinct, lost $lost" \
     "($(awk -v l="$lost" -v w="$written" 'BEGIN { printf "%.3f", 100 * l / w }')%; copytruncate's copy-to-truncate window)"
# the lines of the last generation are all there (nothing lost after the last rotation)
assert_lines_once "$D/app.log" <(grep -F -x -f "$D/app.log" "$OUT") "lines of the live app.log"

logged=$(grep -c 'app.log: truncated' "$T/run.err" || true)
status_json "$S"
trunc=$(jq '[.files[].truncations] | add // 0' "$T/status.json")
echo "  truncations logged by tidemark: $logged; counted in status now: $trunc"
[ "$logged" -gt 0 ] || fail "tidemark logged no truncation after $ROTS copytruncate rotations"
# (status' counter is not checked: a truncated file that grows again becomes a
# new record and its count starts again at 0, so after the last rotation it
# is 0 or 1; a product bug reported with issue 5.)
assert_no_sanitizer "$T/run.err"

pass
