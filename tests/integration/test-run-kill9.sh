#!/usr/bin/env bash
# `tidemark run` killed with -9 at random moments, five times, while a writer
# keeps appending to four files (two in a subdirectory); restarted each time.
# The `file` processor rolls its output back to the last checkpoint on
# restart: after the writer stops and a last run catches up, the output holds
# every line exactly once.
#
# The runs alternate --checkpoint-ms 100 and the default 1000: at ~20,000
# lines/s (~1.2 MB/s) the file processor's 256 KiB buffer then fills and is
# written to OUT several times between two checkpoints, so most kills leave
# bytes in OUT past the last checkpoint, which the restart must cut back.
#
# Knobs: TDM_KILL9_KILLS (5), TDM_KILL9_RATE (lines/s, 20000).
source "$(dirname "$0")/lib.sh"
need_helper TDM_WRITER

KILLS=${TDM_KILL9_KILLS:-5}
RATE=${TDM_KILL9_RATE:-20000}
D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D/sub"
FILES=("$D/a.log" "$D/b.log" "$D/sub/c.log" "$D/sub/d.log")

"$TDM_WRITER" append -r "$RATE" -c "$T/written" -t "$T/tee" k "${FILES[@]}" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/sub/d.log"

for k in $(seq 1 "$KILLS"); do
  # a random moment: 20..1500 ms after the start (the first kill early, in the
  # start-up scan; the others anywhere)
  if [ "$k" -eq 1 ]; then ms=$((20 + RANDOM % 100)); else ms=$((100 + RANDOM % 1400)); fi
  opts=(--checkpoint-ms 100)
  [ $((k % 2)) -eq 0 ] && opts=()
  run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" "${opts[@]}" "$D"
  sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  is_running "$RUN_PID" || fail "run $k exited by itself before its kill"
  kill9_bg "$RUN_PID"
  printf '  kill %d after %4d ms %-18s: output at %7d lines (uncommitted ones roll back), %7d written\n' \
    "$k" "$ms" "${opts[*]:-(checkpoint 1000)}" "$(lines_in "$OUT")" "$(lines_in "$T/tee")"
done

say "stop the writer; a last run catches up"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D"
sleep 0.5
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
written=$(cat "$T/written")
echo "writer wrote $written lines"
cat "${FILES[@]}" > "$T/ondisk"
assert_lines_once "$T/tee" "$T/ondisk" "files on disk vs the writer's record"
t0=$(now_ms)
wait_lines "$OUT" "$written" 30 "$RUN_PID"
echo "  caught up $(( $(now_ms) - t0 )) ms after the writer stopped"
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_lines_once "$T/tee" "$OUT" "output after $KILLS kills -9"
assert_eq "$(fsize "$OUT")" "$(fsize "$T/tee")" "output size"

say "per file, the lines are in the order they were written"
for f in "${FILES[@]}"; do
  cut -d' ' -f2 "$f" > "$T/order.want"
  grep -F -x -f "$f" "$OUT" | cut -d' ' -f2 > "$T/order.got"
  assert_file_eq "$T/order.got" "$T/order.want" "order of $(basename "$f")'s lines in the output"
done
assert_no_sanitizer "$T/run.err"

pass
