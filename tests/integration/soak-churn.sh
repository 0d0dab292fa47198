#!/usr/bin/env bash
# soak: churn under a running daemon. While a writer appends to active.log
# and to trunc.log: big files are deleted while being read, replaced (mv over
# them) and truncated (: >); a subdirectory is deleted and recreated with new
# files; a second watched root is deleted and comes back with new files.
# tidemark must keep running, log what it saw, deliver the content of every
# new file exactly once (the file processor), deliver every line the writer
# wrote to active.log, exit 0 on SIGTERM, with no sanitizer report.
#
# Knobs: TDM_SOAK_ROUNDS (churn rounds, 5).
source "$(dirname "$0")/lib.sh"
need_helper TDM_WRITER

ROUNDS=${TDM_SOAK_ROUNDS:-5}
D=$T/d; R2=$T/r2; S=$T/state; OUT=$T/out
mkdir -p "$D/sub" "$R2"
# a big file: N lines "TAG NNNNNNNNN payload"
big() { gen_lines 1 "$2" | sed "s/^/$1 /" > "$3.tmp" && mv "$3.tmp" "$3"; }
big init 20000 "$D/sub/old.log"
big init2 1000 "$R2/root.log"

run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" -x '*.tmp' --checkpoint-ms 100 "$D" "$R2"
wait_lines "$OUT" 21000 20 "$RUN_PID"
"$TDM_WRITER" append -r 5000 -c "$T/written" -t "$T/tee" act "$D/active.log" "$D/trunc.log" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")

lines_of() { grep -c "^$1 " "$OUT" || true; }
# wait_lines_of TAG N SECS: OUT holds >= N lines tagged TAG
wait_lines_of() {
  local end=$((SECONDS + $3))
  until [ "$(lines_of "$1")" -ge "$2" ]; do
    is_running "$RUN_PID" || fail "tidemark exited while waiting for the lines of $1"
    [ "$SECONDS" -lt "$end" ] || fail "after $3 s only $(lines_of "$1") of $2 lines of $1 arrived"
    sleep 0.05
  done
}
: > "$T/want"   # lines of new files that must arrive exactly once
for r in $(seq 1 "$ROUNDS"); do
  say "round $r"
  # deleted while being read: 5 MB, removed at once (no assertion on it)
  big "del$r" 50000 "$D/del$r.log"; sleep 0.05; rm -f "$D/del$r.log"
  # replaced: mv a new file over rep.log (the old one is gone)
  big "rep$r" 20000 "$T/rep.new"; mv "$T/rep.new" "$D/rep.log"
  # truncated while the writer appends to it
  : > "$D/trunc.log"
  # a directory deleted and recreated with new files
  rm -rf "$D/sub"; mkdir "$D/sub"; big "sub$r" 2000 "$D/sub/new$r.log"
  # a watched root that disappears and comes back (found again by polling:
  # wait until its new file is in, up to 15 s)
  rm -rf "$R2"; sleep 0.2; mkdir "$R2"; big "root$r" 500 "$R2/back$r.log"
  t0=$(now_ms)
  wait_lines_of "root$r" 500 15
  echo "  r2/back$r.log delivered $(( $(now_ms) - t0 )) ms after the root came back"
  is_running "$RUN_PID" || fail "tidemark exited in round $r"
  cat "$D/sub/new$r.log" "$R2/back$r.log" >> "$T/want"
done
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
cat "$D/rep.log" >> "$T/want"
grep '^act ' "$D/active.log" > "$T/want.active"
echo "writer wrote $(cat "$T/written") lines (active.log and trunc.log)"

say "the content of the new files and all of active.log arrive"
wait_ok() {
  local f
  for f in "$D/sub/new$ROUNDS.log" "$R2/back$ROUNDS.log" "$D/rep.log"; do
    [ "$(grep -cF -x -f "$f" "$OUT")" -eq "$(wc -l < "$f")" ] || return 1
  done
  [ "$(grep -cF -x -f "$T/want.active" "$OUT")" -ge "$(wc -l < "$T/want.active")" ]
}
end=$((SECONDS + 30))
until wait_ok; do
  is_running "$RUN_PID" || fail "tidemark exited while catching up"
  if [ "$SECONDS" -ge "$end" ]; then
    for f in "$D/sub/new$ROUNDS.log" "$R2/back$ROUNDS.log" "$D/rep.log" "$T/want.active"; do
      echo "  $f: $(wc -l < "$f") lines, $(grep -cF -x -f "$f" "$OUT" || true) delivered" >&2
    done
    fail "the new content did not arrive within 30 s"
  fi
  sleep 0.2
done
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
for r in $(seq 1 "$ROUNDS"); do
  printf '  round %d: sub/new%d.log %d/2000 lines, r2/back%d.log %d/500, rep%d %d, del%d %d\n' \
    "$r" "$r" "$(lines_of "sub$r")" "$r" "$(lines_of "root$r")" "$r" "$(lines_of "rep$r")" "$r" "$(lines_of "del$r")"
done
grep -E 'app|trunc|gone|delet|vanish|root|dir' "$T/run.err" | grep -v '^---' | sed 's/^/  log: /' | sort | uniq -c | sort -rn | head -n 12 || true

say "each new file's lines exactly once; active.log's lines exactly once"
grep -F -x -f "$T/want" "$OUT" > "$T/got" || true
assert_lines_once "$T/want" "$T/got" "lines of the recreated dirs, the returned root and the replacement"
grep '^act ' "$OUT" | grep -F -x -f "$T/want.active" > "$T/got.active" || true
assert_lines_once "$T/want.active" "$T/got.active" "lines of active.log"
status_json "$S"
assert_no_sanitizer "$T/run.err"

pass
