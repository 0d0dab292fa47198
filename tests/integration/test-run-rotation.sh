#!/usr/bin/env bash
# `tidemark run` under rename rotation: a writer appends ~5,000 numbered lines
# a second to app.log (reopening it by path every 10 ms, as a logger does after
# logrotate's `create`), while the test rotates every second for 6 s
# (app.log.N -> app.log.N+1, ..., app.log -> app.log.1). tidemark runs with
# -i 'app.log*' -p file. At the end: 0 lost, 0 duplicated lines, bookmarks at
# the end of every generation.
#
# Knobs: TDM_ROT_RATE (lines/s, 5000), TDM_ROT_COUNT (rotations, 6).
source "$(dirname "$0")/lib.sh"
need_helper TDM_WRITER

RATE=${TDM_ROT_RATE:-5000}
ROTS=${TDM_ROT_COUNT:-6}
D=$T/logs; S=$T/state; OUT=$T/out
mkdir -p "$D"
RD=$(realpath "$D")
printf 'ready\n' > "$D/app.log"
printf 'not matched\n' > "$D/other.txt"
run_bg "$T/run.out" -s "$S" -i 'app.log*' -p "file:path=$OUT" --checkpoint-ms 100 "$D"
wait_lines "$OUT" 1 15 "$RUN_PID"

say "writer at $RATE lines/s; rotating every second, $ROTS times"
"$TDM_WRITER" append -r "$RATE" -c "$T/written" -t "$T/tee" w "$D/app.log" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
for r in $(seq 1 "$ROTS"); do
  sleep 1
  for ((k = r - 1; k >= 1; k--)); do mv "$D/app.log.$k" "$D/app.log.$((k + 1))"; done
  mv "$D/app.log" "$D/app.log.1"
  is_running "$RUN_PID" || fail "tidemark exited during rotation $r"
  printf '  rotation %d: %s lines written so far, %s delivered (checkpointed)\n' "$r" \
    "$(lines_in "$T/tee")" "$(lines_in "$OUT")"
done
sleep 0.5
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
written=$(cat "$T/written")
echo "writer wrote $written lines ($((written / (ROTS + 1))) per generation on average)"
[ "$written" -ge $((RATE * ROTS / 2)) ] || fail "the writer only wrote $written lines"

# What is on disk is what was written (the test's own sanity).
printf 'ready\n' > "$T/want"; cat "$T/tee" >> "$T/want"
cat "$D"/app.log* > "$T/ondisk"
assert_lines_once "$T/want" "$T/ondisk" "files on disk vs the writer's record"

say "every line delivered"
t0=$(now_ms)
wait_lines "$OUT" $((written + 1)) 30 "$RUN_PID"
echo "  the last lines arrived $(( $(now_ms) - t0 )) ms after the writer stopped"
# Anything delivered twice would show up in the next checkpoints: give them a
# moment, then stop (the final checkpoint flushes the rest).
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
echo "  SIGTERM to exit: $STOP_MS ms"
assert_lines_once "$T/want" "$OUT" "rotated logs in the file output"
assert_eq "$(fsize "$OUT")" "$(cat "$D"/app.log* | wc -c)" "output size"
assert_not_contains "$OUT" "not matched"

say "status: every generation's bookmark at its end"
status_json "$S"
for f in "$D"/app.log*; do
  assert_eq "$(jfile bookmark "$RD/$(basename "$f")")" "$(fsize "$f")" "bookmark of $(basename "$f")"
done
assert_no_sanitizer "$T/run.err"

pass
