#!/usr/bin/env bash
# `tidemark run`: the inotify queue overflows. The daemon is SIGSTOPped while
# 20,000 files are created in a watched directory (each creation queues
# several events; the kernel holds 16,384 = fs.inotify.max_queued_events), then
# SIGCONTed: the overflow must trigger a reconcile scan, and every line must be
# delivered exactly once, well before the periodic safety-net sweep (60 s).
# tidemark runs under `ulimit -n 1024` (a common default): holding a
# descriptor per file it could not take 20,000 files, so this also checks
# that its descriptors are bounded (and no "Too many open files").
#
# Knob: TDM_OVERFLOW_FILES (20000).
source "$(dirname "$0")/lib.sh"
need_helper TDM_WRITER

N=${TDM_OVERFLOW_FILES:-20000}
D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D/sub"
printf 'ready\n' > "$D/ready.log"
q=$(cat /proc/sys/fs/inotify/max_queued_events 2>/dev/null || echo '?')
echo "fs.inotify.max_queued_events = $q"

RUN_NOFILE=1024 run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D"
wait_lines "$OUT" 1 15 "$RUN_PID"
assert_eq "$(awk '/^Max open files/ { print $4 }' "/proc/$RUN_PID/limits")" 1024 "tidemark's descriptor limit"

say "SIGSTOP; create $N files (plus 100 in a new subdirectory); SIGCONT"
kill -STOP "$RUN_PID"
t0=$(now_ms)
"$TDM_WRITER" mkfiles "$D" "$N" main || fail "tdm-writer mkfiles failed"
mkdir -p "$D/sub/new"
"$TDM_WRITER" mkfiles "$D/sub/new" 100 sub || fail "tdm-writer mkfiles failed"
echo "  created in $(( $(now_ms) - t0 )) ms"
kill -CONT "$RUN_PID"

t0=$(now_ms)
total=$((1 + N + 100))
maxfd=0
end=$((SECONDS + 30))
while [ "$(lines_in "$OUT")" -lt "$total" ]; do
  is_running "$RUN_PID" || fail "tidemark exited while catching up ($(lines_in "$OUT") of $total lines)"
  [ "$SECONDS" -lt "$end" ] || fail "timed out: $(lines_in "$OUT") of $total lines delivered after 30 s"
  fds=$(ls "/proc/$RUN_PID/fd" 2>/dev/null | wc -l)
  [ "$fds" -gt "$maxfd" ] && maxfd=$fds
  sleep 0.1
done
echo "  all $total lines delivered $(( $(now_ms) - t0 )) ms after SIGCONT; at most $maxfd descriptors open"
assert_not_contains "$T/run.err" "Too many open files"

say "a later append is still seen (the watch survived the overflow)"
printf 'after overflow\n' >> "$D/f0000007.log"
wait_lines "$OUT" $((total + 1)) 10 "$RUN_PID"

sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
echo "  SIGTERM to exit: $STOP_MS ms"
grep -i '^tidemark.*overflow' "$T/run.err" | head -n 3 ||
  echo "  NOTE: no overflow message on stderr: did the queue overflow at all?"
find "$D" -type f -exec cat {} + > "$T/want"
assert_lines_once "$T/want" "$OUT" "20,000 files after an overflow"
assert_no_sanitizer "$T/run.err"

pass
