#!/usr/bin/env bash
# Whole mode, crash safety: `run -m whole` over 200 files with a slowish exec
# handler (50 ms a file, jobs=2) is killed with -9 three times while it is
# handling them, and restarted each time; a final run goes until all are done.
# Kills 1 and 3 are a machine crash: the handlers running at that moment die
# too (a file whose handler never completed must be handled again); kill 2
# kills tidemark alone (its handlers finish as orphans).
# Every file is handled at least once and at most twice (counted from the
# handler's log of completed calls), always with its complete content, and
# status ends with all 200 "done" (none "duplicate" of itself, none failed).
#
# Kill k+1 comes only once every file whose handling had begun before kill k
# is recorded done (so no file can be caught by two kills) — or, should they
# not be recorded within a checkpoint interval + 2.5 s of the restart,
# anyway (they then count a third time) — then after a random number (5..25)
# of further handler starts and a random 0..150 ms.
# Runs alternate --checkpoint-ms 100 and the default 1000.
source "$(dirname "$0")/lib.sh"

N=${TDM_WHOLE_KILL9_FILES:-200}
KILLS=3
D=$T/drop; S=$T/state; LOG=$T/handled
mkdir -p "$D"
make_handler "$T/handler.sh" "$LOG" 0.05
P="exec:cmd=$T/handler.sh,jobs=2"

: > "$T/want"; : > "$T/map"
for i in $(seq 1 "$N"); do
  f=$D/f$(printf %03d "$i").dat
  { printf 'file %d\n' "$i"; head -c $((100 + (i * 331) % 20000)) /dev/urandom; } > "$f"
  want_entry "$f" >> "$T/want"
  printf '%s %s\n' "$f" "$(hexstr "$f")" >> "$T/map"
done
make_old "$D"/*.dat

# done_hex: the hex paths of the files status shows done (into $T/done.hex)
done_hex() {
  "$TIDEMARK" status -s "$S" --json 2>/dev/null | jq -r '.files[] | select(.state == "done") | .path' |
    awk 'NR == FNR { h[$1] = $2; next } { print h[$1] }' "$T/map" - | sort -u > "$T/done.hex"
}
# begun_done: every file whose handling had begun before the last kill is done
begun_done() { done_hex; [ -z "$(comm -23 "$T/begun.hex" "$T/done.hex")" ]; }
starts() { lines_in "$LOG.start"; }

: > "$T/begun.hex"
for k in $(seq 1 "$KILLS"); do
  opts=(--checkpoint-ms 100)
  [ $((k % 2)) -eq 0 ] && opts=()
  run_bg "$T/run.out" -m whole -s "$S" -p "$P" "${opts[@]}" "$D"
  t0=$(now_ms)
  if [ "$k" -gt 1 ]; then
    # at most a checkpoint interval + 2.5 s after the restart;
    # a product that does not checkpoint while handling is killed anyway
    limit=$(( ${opts[1]:-1000} + 2500 ))
    until begun_done; do
      is_running "$RUN_PID" || fail "run $k exited by itself"
      if [ $(( $(now_ms) - t0 )) -ge "$limit" ]; then
        echo "  NOTE: run $k: $(comm -23 "$T/begun.hex" "$T/done.hex" | wc -l) of the files begun before kill $((k - 1))" \
             "are not recorded done in status after $limit ms ($(wc -l < "$T/done.hex") done; checkpoint every ${opts[1]:-1000} ms): killing anyway"
        break
      fi
      sleep 0.05
    done
  fi
  s0=$(starts); more=$((5 + RANDOM % 21)); ms=$((RANDOM % 151))
  [ "$k" -eq 1 ] && more=$((1 + RANDOM % 30))
  end=$((SECONDS + 20))
  while [ "$(starts)" -lt $((s0 + more)) ]; do
    is_running "$RUN_PID" || fail "run $k exited by itself"
    [ "$SECONDS" -lt "$end" ] || fail "run $k: fewer than $more handler starts in 20 s"
    sleep 0.01
  done
  sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  is_running "$RUN_PID" || fail "run $k exited by itself before its kill"
  what="tidemark"
  if [ "$k" -ne 2 ]; then
    # a crash of the machine: the running handlers die too. Stopped first (so
    # tidemark cannot see them end), killed after tidemark.
    kids=$(cat /proc/"$RUN_PID"/task/*/children 2>/dev/null || true)
    for c in $kids; do kill -STOP "$c" 2>/dev/null || true; done
    kill9_bg "$RUN_PID"
    for c in $kids; do kill -9 "$c" 2>/dev/null || true; done
    what="tidemark + $(echo $kids | wc -w) handler(s)"
  else
    kill9_bg "$RUN_PID"
  fi
  sleep 0.3   # handlers that were not killed finish
  sort -u "$LOG.start" > "$T/begun.hex"
  done_hex
  printf '  kill %d of %-22s %-18s after %4d ms (%2d starts in this run + %3d ms): %3d of %d begun, %3d done in status\n' \
    "$k" "$what" "${opts[*]:-(checkpoint 1000)}" "$(( $(now_ms) - t0 - 300 ))" "$more" "$ms" \
    "$(wc -l < "$T/begun.hex")" "$N" "$(wc -l < "$T/done.hex")"
  [ "$(wc -l < "$T/done.hex")" -lt "$N" ] || fail "kill $k came after every file was done (the test's timing is off)"
done

say "a final run until all $N files are done"
run_bg "$T/run.out" -m whole -s "$S" -p "$P" --checkpoint-ms 100 "$D"
t0=$(now_ms)
wait_for 40 bash -c '"$1" status -s "$2" --json 2>/dev/null | jq -e --argjson n "$3" "[.files[] | select(.state == \"done\")] | length == \$n"' \
  _ "$TIDEMARK" "$S" "$N"
echo "  all done $(( $(now_ms) - t0 )) ms after the restart"
sleep 1
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "every file handled at least once and at most twice, with its complete content"
awk '{ print $1, $2, $5 }' "$LOG" | sort -u > "$T/seen"
sort "$T/want" > "$T/want.sorted"
if ! cmp -s "$T/seen" "$T/want.sorted"; then
  echo "never handled: $(comm -23 "$T/want.sorted" "$T/seen" | wc -l); handled with content that is not the file's: $(comm -13 "$T/want.sorted" "$T/seen" | wc -l)" >&2
  comm -3 "$T/want.sorted" "$T/seen" | sed -n 1,5p >&2
  fail "the handler did not see every file with its complete content"
fi
awk '{ n[$5]++ } END { for (h in n) print n[h] }' "$LOG" | sort -n | uniq -c |
  awk '{ printf "  %d files handled %d time(s)\n", $1, $2 }'
over=$(awk '{ n[$5]++ } END { for (h in n) if (n[h] > 2) m++; print m + 0 }' "$LOG")
assert_eq "$over" 0 "files handled more than twice after $KILLS kills"
bad=$(awk '$3 != $2 || length($4) != 32 || $6 != "env-ok"' "$LOG" | sed -n 1,3p)
assert_eq "$bad" "" "calls with a wrong TIDEMARK_SIZE/HASH/PATH"
echo "  handler calls: $(lines_in "$LOG") completed, $(lines_in "$LOG.start") started"

say "status: all $N done, none duplicate, failed or pending"
status_json "$S"
assert_eq "$(jcount)" "$N" "files in status"
assert_eq "$(jstate_count done)" "$N" "files done"
whole_hashes_match "$LOG"
assert_no_sanitizer "$T/run.err"

pass
