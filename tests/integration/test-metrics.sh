#!/usr/bin/env bash
# Metrics: `run --metrics 127.0.0.1:PORT` serves GET /metrics in the
# Prometheus text format while files grow: the counters rise, promtool finds
# nothing to say, the names are tidemark_*, counters end in _total, bytes and
# records are labelled by processor. Another path is 404, a request that is
# not HTTP 400, another method 405, a client that stops mid-request is closed
# after the timeout. --metrics-file holds the same text, written atomically
# (no temporary file left), for `run` and `once`. Bad addresses are refused.
source "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || fail "promtool is required (Debian: prometheus)"
command -v python3 >/dev/null || fail "python3 is required"
MC="python3 $(dirname "$0")/metrics_client.py"

say "bad --metrics addresses are usage errors naming the option"
for a in 9464 localhost:9464 127.0.0.1:0 127.0.0.1:70000 '::1:9464' 127.0.0.1:x; do
  assert_exit 2 "$TIDEMARK" run -s "$T/s" --metrics "$a" "$T"
  assert_contains "$STDERR" "--metrics"
done
printf 'metrics = 1.2.3:4\n' > "$T/bad.conf"
assert_exit 2 "$TIDEMARK" run -c "$T/bad.conf" -s "$T/s" "$T"
assert_contains "$STDERR" "bad.conf:1: metrics"
assert_exit 2 "$TIDEMARK" once --metrics 127.0.0.1:9464 -s "$T/s" "$T"
assert_contains "$STDERR" "does not apply to 'once'"

D=$T/d
mkdir -p "$D"
gen_lines 1 1000 > "$D/a.log"
gen_lines 1 500 > "$D/b.log"
PORT=$($MC port)
MF=$T/m/tidemark.prom
mkdir -p "$T/m"

run_bg "$T/out" -s "$T/s" -p "file:path=$T/copy" -p count --checkpoint-ms 200 \
  --metrics "127.0.0.1:$PORT" --metrics-file "$MF" "$D"
scrape() { $MC get "$PORT" /metrics > "$1"; }
metric() { awk -v m="$2" '$1 == m { print $2 }' "$1"; }
delivered() {
  scrape "$T/scr"
  [ "$(head -n 1 "$T/scr")" = 200 ] &&
    [ "$(metric "$T/scr" "tidemark_records_delivered_total{processor=\"count\"}")" = "$1" ]
}

say "scrape after the first pass: 200, every line counted"
wait_for 30 delivered 1500
scrape "$T/m1"
tail -n +2 "$T/m1" > "$T/m1.txt"
promtool check metrics < "$T/m1.txt" > "$T/promtool.out" 2>&1 || { cat "$T/promtool.out" >&2; fail "promtool check metrics complains"; }
[ ! -s "$T/promtool.out" ] || { cat "$T/promtool.out" >&2; fail "promtool has remarks"; }
assert_eq "$(metric "$T/m1" tidemark_files_tracked)" 2 "files tracked"
want_bytes=$(( $(fsize "$D/a.log") + $(fsize "$D/b.log") ))
assert_eq "$(metric "$T/m1" "tidemark_bytes_delivered_total{processor=\"count\"}")" "$want_bytes" "bytes delivered to count"
assert_eq "$(metric "$T/m1" "tidemark_bytes_delivered_total{processor=\"file:path=$T/copy\"}")" "$want_bytes" "bytes delivered to file"
for m in tidemark_bytes_pending tidemark_oldest_pending_seconds tidemark_checkpoints_total \
         tidemark_checkpoint_duration_seconds_sum tidemark_rescans_total tidemark_overflows_total \
         tidemark_truncations_total tidemark_duplicates_total tidemark_files_done_total \
         tidemark_files_failed_total tidemark_files_forgotten_total tidemark_watches tidemark_polled_directories tidemark_open_fds; do
  [ -n "$(metric "$T/m1" "$m")" ] || fail "no $m in the scrape"
done
grep -q '^tidemark_processor_retries_total{processor="count"} 0' "$T/m1" || fail "no per-processor retries"
grep -q '^tidemark_processor_failures_total{processor="count"} 0' "$T/m1" || fail "no per-processor failures"
# Every counter ends in _total, every name starts with tidemark_.
grep '^# TYPE' "$T/m1" | awk '$4 == "counter" && $3 !~ /_total$/ { print; bad = 1 } END { exit bad }' ||
  fail "a counter without _total"
grep -v '^#' "$T/m1.txt" | grep -v '^tidemark_' && fail "a metric not named tidemark_*"
[ "$(metric "$T/m1" tidemark_watches)" -ge 1 ] || fail "no watch counted"

say "files grow: the counters rise"
c1=$(metric "$T/m1" tidemark_checkpoints_total)
gen_lines 1001 3000 >> "$D/a.log"
gen_lines 1 100 > "$D/c.log"
wait_for 30 delivered 3600
scrape "$T/m2"
assert_eq "$(metric "$T/m2" tidemark_files_tracked)" 3 "files tracked after growth"
c2=$(metric "$T/m2" tidemark_checkpoints_total)
[ "$c2" -gt "$c1" ] || fail "checkpoints did not rise ($c1 -> $c2)"
want_bytes=$(( $(fsize "$D/a.log") + $(fsize "$D/b.log") + $(fsize "$D/c.log") ))
assert_eq "$(metric "$T/m2" "tidemark_bytes_delivered_total{processor=\"count\"}")" "$want_bytes" "bytes after growth"

say "--metrics-file: the same text, no temporary file left"
wait_for 10 bash -c 'grep -q "^tidemark_records_delivered_total{processor=\"count\"} 3600$" "$1"' _ "$MF"
sleep 0.5 # a quiet moment: nothing new, no checkpoint to rewrite it
volatile='^tidemark_(open_fds|oldest_pending_seconds|checkpoint|held_files)'
scrape "$T/m3"
diff <(tail -n +2 "$T/m3" | grep -Ev "$volatile") <(grep -Ev "$volatile" "$MF") > "$T/diff" ||
  { cat "$T/diff" >&2; fail "--metrics-file differs from the scrape"; }
promtool check metrics < "$MF" > "$T/promtool.out" 2>&1 || { cat "$T/promtool.out" >&2; fail "promtool on the file"; }
[ "$(find "$T/m" -type f | wc -l)" -eq 1 ] || { ls -la "$T/m" >&2; fail "temporary files left beside the metrics file"; }

say "other paths 404, garbage 400, other methods 405, HEAD has no body"
[ "$($MC get "$PORT" /nope | head -n 1)" = 404 ] || fail "/nope is not 404"
[ "$($MC get "$PORT" /metricsx | head -n 1)" = 404 ] || fail "/metricsx is not 404"
[ "$($MC get "$PORT" '/metrics?x=1' | head -n 1)" = 200 ] || fail "a query string is not ignored"
$MC raw "$PORT" 'hello there\r\n\r\n' > "$T/r"; assert_contains "$T/r" "HTTP/1.1 400"
$MC raw "$PORT" '\x00\xff\x01\n\n' > "$T/r"; assert_contains "$T/r" "HTTP/1.1 400"
$MC raw "$PORT" 'GET /metrics SMTP/1.0\r\n\r\n' > "$T/r"; assert_contains "$T/r" "HTTP/1.1 400"
$MC raw "$PORT" 'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n' > "$T/r"; assert_contains "$T/r" "HTTP/1.1 405"
$MC raw "$PORT" 'HEAD /metrics HTTP/1.0\r\n\r\n' > "$T/r"
assert_contains "$T/r" "HTTP/1.1 200"
assert_not_contains "$T/r" "tidemark_files_tracked"
python3 -c 'print("GET /metrics HTTP/1.1\\r\\nX: " + "a" * 9000 + "\\r\\n\\r\\n", end="")' > "$T/big"
$MC raw "$PORT" "$(cat "$T/big")" > "$T/r"; assert_contains "$T/r" "HTTP/1.1 400"

say "a client that stops mid-request is closed after the timeout"
$MC idle "$PORT" 20 > "$T/idle"
assert_contains "$T/idle" "closed after"

is_running "$RUN_PID" || fail "run died"
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run's exit status"
assert_no_sanitizer "$T/run.err"
[ "$(lines_in "$T/copy")" -eq 3600 ] || fail "file processor got $(lines_in "$T/copy") lines"

say "once --metrics-file writes the file at its checkpoint"
gen_lines 1 10 > "$D/d.log"
tdm once -s "$T/s" -p count --metrics-file "$T/once.prom" "$D"
assert_contains "$T/once.prom" 'tidemark_records_delivered_total{processor="count"} 10'
promtool check metrics < "$T/once.prom" || fail "promtool on once's file"

say "a metrics file that cannot be written is a warning, not a failure"
gen_lines 11 20 >> "$D/d.log"
tdm once -s "$T/s" -p count --metrics-file "$T/no/such/dir/m.prom" "$D"
assert_contains "$STDERR" "--metrics-file $T/no/such/dir/m.prom"

say "a label value that is not UTF-8 (a processor spec holding \\xff) is escaped: promtool accepts it"
OUTX="$T/$(printf 'o\xff\xc3"q\\x')"
tdm once -s "$T/s8" -p count -p "file:path=$OUTX" --metrics-file "$T/u8.prom" "$D"
promtool check metrics < "$T/u8.prom" > "$T/promtool.out" 2>&1 || { cat "$T/promtool.out" >&2; fail "promtool on a label with a non-UTF-8 byte"; }
LC_ALL=C.UTF-8 iconv -f UTF-8 -t UTF-8 "$T/u8.prom" >/dev/null || fail "the metrics file is not UTF-8"
assert_contains "$T/u8.prom" 'o\\xff\\xc3\"q\\x"'

pass

