#!/usr/bin/env bash
# A hostile metrics port: 1,000 connections of garbage, half-open requests,
# oversized heads and answers never read, against `run --metrics` on
# loopback, while a writer appends. `run` keeps delivering every line, its
# RSS stays flat (bounded connections: 8 KiB each, 64 at once, 5 s), its
# descriptors come back down, and it still answers a scrape.
source "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || fail "python3 is required"
MC="python3 $(dirname "$0")/metrics_client.py"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

D=$T/d
mkdir -p "$D"
gen_lines 1 2000 > "$D/a.log"
PORT=$($MC port)
# Under AddressSanitizer freed memory is quarantined, which would look like
# growth: no quarantine (the option means nothing to other builds).
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0
run_bg "$T/out" -s "$T/s" -p "file:path=$T/copy" --metrics "127.0.0.1:$PORT" "$D"
wait_for 30 bash -c '[ "$(wc -l < "$1" 2>/dev/null || echo 0)" -ge 2000 ]' _ "$T/copy"
# Warm up: a few honest scrapes, so the baseline holds the answer buffers.
for i in 1 2 3 4 5; do [ "$($MC get "$PORT" /metrics | head -n 1)" = 200 ] || fail "scrape $i"; done
rss0=$(rss_kb "$RUN_PID")
fd0=$(fds "$RUN_PID")

say "1,000 hostile connections while the file grows"
( for i in $(seq 2001 2400); do gen_lines "$i" "$i" >> "$D/a.log"; sleep 0.01; done ) &
WRITER=$!
for round in 1 2; do # twice: a leak would show as growth
  $MC flood "$PORT" 1000 "$RUN_PID" > "$T/flood"
  assert_contains "$T/flood" "flood done"
  max=$(awk '$1 == "max_fds" { print $2 }' "$T/flood")
  echo "round $round: at most $max descriptors (baseline $fd0)"
  # 200 connections open at once; the server holds 64 at most.
  [ "$max" -le $(( fd0 + 64 + 4 )) ] || fail "run held $max descriptors (cap: 64 connections)"
done
wait "$WRITER"

say "run delivered every line and still answers"
wait_for 30 bash -c '[ "$(wc -l < "$1")" -ge 2400 ]' _ "$T/copy"
is_running "$RUN_PID" || fail "run died under the flood"
[ "$($MC get "$PORT" /metrics | head -n 1)" = 200 ] || fail "no 200 after the flood"
gen_lines 1 2400 > "$T/want"
sort "$T/copy" > "$T/got"
sort "$T/want" > "$T/want.sorted"
assert_file_eq "$T/got" "$T/want.sorted" "delivered lines"

say "RSS flat, descriptors back (every connection closed within its timeout)"
wait_for 20 bash -c '[ "$(ls /proc/$1/fd | wc -l)" -le $(( $2 + 2 )) ]' _ "$RUN_PID" "$fd0"
rss1=$(rss_kb "$RUN_PID")
echo "RSS ${rss0} KiB -> ${rss1} KiB; fds $fd0 -> $(fds "$RUN_PID")"
# 64 connections of 8 KiB at most are held at once: 4 MiB is room to spare,
# a per-connection leak of 2,000 connections is far more.
[ "$rss1" -le $(( rss0 + 4096 )) ] || fail "RSS grew from $rss0 to $rss1 KiB"

stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run's exit status"
assert_no_sanitizer "$T/run.err"
pass
