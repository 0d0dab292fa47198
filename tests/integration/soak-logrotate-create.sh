#!/usr/bin/env bash
# soak: Debian's logrotate in `create` mode (rename app.log -> app.log.1 ...,
# a new app.log, then a postrotate SIGHUP that makes the writer reopen), run
# with -f every 300 ms while a writer that keeps its file open (tdm-writer
# hold) appends numbered lines, and `tidemark run -i 'app.log*' -p file` is
# killed with -9 and restarted several times. At the end: every written line
# in the output exactly once (0 lost, 0 duplicated).
#
# Knobs: TDM_SOAK_ROTS (rotations, 30; logrotate keeps 50), TDM_SOAK_RATE
# (lines/s, 3000), TDM_SOAK_KILL_EVERY (a kill -9 every N rotations, 6).
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
logrotate_conf "$T/rotate.conf" "$D/app.log" create "$WPID"

run_bg "$T/run.out" -s "$S" -i 'app.log*' -p "file:path=$OUT" --checkpoint-ms 100 "$D"
say "logrotate -f (create, postrotate SIGHUP) every 300 ms, $ROTS times; kill -9 every $KILL_EVERY"
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
    run_bg "$T/run.out" -s "$S" -i 'app.log*' -p "file:path=$OUT" --checkpoint-ms 100 "$D"
  fi
done
is_running "$RUN_PID" || fail "tidemark exited during the rotations"
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
written=$(cat "$T/written")
echo "writer wrote $written lines over $ROTS rotations ($(ls "$D" | wc -l) generations on disk), $kills kills -9"
[ "$(ls "$D" | wc -l)" -gt $((ROTS / 2)) ] || fail "logrotate rotated only $(ls "$D" | wc -l) times"

cat "$D"/app.log* > "$T/ondisk"
assert_lines_once "$T/tee" "$T/ondisk" "files on disk vs the writer's record"

say "every line delivered exactly once"
t0=$(now_ms)
wait_lines "$OUT" "$written" 60 "$RUN_PID"
echo "  caught up $(( $(now_ms) - t0 )) ms after the writer stopped"
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
sort "$OUT" | uniq -d > "$T/dups"
assert_eq "$(wc -l < "$T/dups")" 0 "duplicated lines"
assert_lines_once "$T/tee" "$OUT" "output after $ROTS rotations and $kills kills -9"
assert_no_sanitizer "$T/run.err"

pass
