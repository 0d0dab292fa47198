#!/usr/bin/env bash
# Whole mode: a file written slowly — 8 pieces 200 ms apart by a writer that
# keeps it open — with --settle-ms 500 is handled once, with its complete
# content, never half. Both under `run` (the file is still for at most 200 ms
# at a time, and its only IN_CLOSE_WRITE comes after the last piece) and under
# `once` started while the writer is still writing (it must wait for the file
# to settle). And under `run` with --settle-ms 20000: the writer's close
# makes the file complete, long before it could settle.
source "$(dirname "$0")/lib.sh"

D=$T/drop; S=$T/state; LOG=$T/handled
mkdir -p "$D"
make_handler "$T/handler.sh" "$LOG"

# slow_write FILE TAG: 8 pieces of ~3 KB, 200 ms apart, through one open
# descriptor; FILE is complete (closed) when the function returns
slow_write() {
  local i
  exec 3>"$1"
  for i in 1 2 3 4 5 6 7 8; do
    printf '%s piece %d %s\n' "$2" "$i" "$(head -c 1500 /dev/urandom | od -An -tx1 | tr -d ' \n')" >&3
    [ "$i" -lt 8 ] && sleep 0.2
  done
  exec 3>&-
}

printf 'ready\n' > "$D/ready.txt"; make_old "$D/ready.txt"
: > "$T/want"
want_entry "$D/ready.txt" >> "$T/want"

say "run: a file written in 8 pieces 200 ms apart, --settle-ms 500"
run_bg "$T/run.out" -m whole --settle-ms 500 -s "$S" -p "exec:cmd=$T/handler.sh" "$D"
wait_for 20 grep -q "$(hexstr "$D/ready.txt")" "$LOG"
t0=$(now_ms)
slow_write "$D/slow.dat" run
echo "  written in $(( $(now_ms) - t0 )) ms, $(fsize "$D/slow.dat") bytes"
want_entry "$D/slow.dat" >> "$T/want"
wait_lines "$LOG" 2 10 "$RUN_PID"
echo "  handled $(( $(now_ms) - t0 )) ms after the first piece"
sleep 1.5   # a second (or first, complete) version would show up now
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_handled_once "$LOG" "$T/want" "the slowly written file under run"
status_json "$S"
assert_eq "$(jfile state "$D/slow.dat")" done "state of slow.dat"

say "run, --settle-ms 20000: the same writer; complete when it closes the file (IN_CLOSE_WRITE)"
printf 'ready 2\n' > "$D/ready2.txt"; make_old "$D/ready2.txt"
want_entry "$D/ready2.txt" >> "$T/want"
run_bg "$T/run.out" -m whole --settle-ms 20000 -s "$S" -p "exec:cmd=$T/handler.sh" "$D"
wait_for 20 grep -q "$(hexstr "$D/ready2.txt")" "$LOG"
slow_write "$D/closed.dat" closed
t0=$(now_ms)
want_entry "$D/closed.dat" >> "$T/want"
wait_lines "$LOG" "$(lines_in "$T/want")" 10 "$RUN_PID"
echo "  handled $(( $(now_ms) - t0 )) ms after the writer closed it"
sleep 1
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_handled_once "$LOG" "$T/want" "the slowly written file, complete at its close"

say "once, started while a file is being written slowly, waits for it"
slow_write "$D/slow2.dat" once &
WPID=$!; TDM_BG_PIDS+=("$WPID")
sleep 0.3
t0=$(now_ms)
tdm once -m whole --settle-ms 500 -s "$S" -p "exec:cmd=$T/handler.sh" "$D"
took=$(( $(now_ms) - t0 ))
wait "$WPID" || fail "the writer failed"
echo "  once took $took ms"
want_entry "$D/slow2.dat" >> "$T/want"
assert_handled_once "$LOG" "$T/want" "the slowly written file under once"
[ "$took" -ge 1000 ] || fail "once returned after $took ms, before the writer (~1.1 s more) could have finished"
status_json "$S"
assert_eq "$(jfile state "$D/slow2.dat")" done "state of slow2.dat"
assert_no_sanitizer "$T/run.err"

pass
