#!/usr/bin/env bash
# tests/bench/nats.sh: the nats processor's figures (issue 10). Not a test:
# prints a markdown table and exits 0 whatever the figures are.
#
#   n1. `once` of BENCH_NATS_LINES (400,000) lines of ~165 bytes in one file
#       into a JetStream stream, records=line, vs the limit: a raw cnats
#       asynchronous publisher of the same lines with the same ids and
#       headers (tests/bench/nats_bench.c, built here), in the same run,
#       best of BENCH_RUNS (3), each into a fresh stream      (goal <= 1.5x)
#   n2. the same with records=chunk, against the same limit, and its
#       throughput over n1's                                  (goal >= 10x)
#   n3. append-to-stream latency with `run`: a line appended to a watched
#       file until a subscriber on the subject gets it, BENCH_NATS_SAMPLES
#       (300) samples: median and p99
#
# A nats-server (Debian nats-server) is started here on a free loopback port
# (-p -1), its store under the work directory, and stopped by pid.
# Environment: TIDEMARK (build/tidemark), TDM_JSCLIENT (beside it), BENCH_DIR.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
TIDEMARK=${TIDEMARK:-$repo/build/tidemark}
JSC=${TDM_JSCLIENT:-$(dirname "$TIDEMARK")/tests/integration/tdm-jsclient}
BENCH_DIR=${BENCH_DIR:-/tmp/tdm-bench}
LINES=${BENCH_NATS_LINES:-400000}
RUNS=${BENCH_RUNS:-3}
SAMPLES=${BENCH_NATS_SAMPLES:-300}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
log() { echo "bench: $*" >&2; }

[ -x "$NATS_SERVER" ] || { log "nats-server not found: nats figures n/a"; exit 0; }
[ -x "$JSC" ] || { log "no tdm-jsclient at $JSC (built without libnats?): nats figures n/a"; exit 0; }
WORK=$BENCH_DIR/nats-work
rm -rf "$WORK"; mkdir -p "$WORK/src"
cc -O2 -o "$WORK/nats_bench" "$here/nats_bench.c" $(pkg-config --cflags --libs libnats) -lpthread

"$NATS_SERVER" -js -sd "$WORK/store" -a 127.0.0.1 -p -1 > "$WORK/nats.log" 2>&1 &
NPID=$!
trap 'kill "$NPID" 2>/dev/null || true; wait "$NPID" 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/nats.log" | tail -n 1)
  [ -n "$port" ] && break; sleep 0.05
done
[ -n "$port" ] || { log "nats-server did not start"; exit 0; }
URL=nats://127.0.0.1:$port
until { "$JSC" "$URL" count __none__ 2>&1 || true; } | grep -q "Not Found"; do sleep 0.05; done

# ~165-byte lines
awk -v n="$LINES" 'BEGIN { s = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  s = s s s; for (i = 1; i <= n; i++) printf "%09d %s %s\n", i, "INFO request served", substr(s, 1, 125 + (i * 7919) % 30) }' \
  > "$WORK/src/app.log"
log "n: $(wc -l < "$WORK/src/app.log") lines, $(stat -c %s "$WORK/src/app.log") bytes"

# fresh_stream: a new stream (and subject) for one timed run: $SUBJ, $STREAM
fresh_stream() { local k; k=$(date +%s%N); STREAM=B$k; SUBJ=b$k.x; "$JSC" "$URL" create "$STREAM" "b$k.>" 120 >/dev/null; }
elapsed() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>> "$WORK/err" || log "failed: $*"; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'; }
best_of() { # best_of KIND: min seconds over RUNS
  local best="" s
  for _ in $(seq 1 "$RUNS"); do
    fresh_stream
    case "$1" in
      raw) s=$(elapsed "$WORK/nats_bench" pub "$URL" "$SUBJ" "$WORK/src/app.log") ;;
      line|chunk) rm -rf "$WORK/state"
        s=$(elapsed "$TIDEMARK" once -q -s "$WORK/state" -p "nats:url=$URL,subject=$SUBJ,stream=$STREAM,records=$1" "$WORK/src") ;;
    esac
    c=$("$JSC" "$URL" count "$STREAM")
    if [ "$1" != chunk ] && [ "$c" != "$LINES" ]; then log "$1: stream $STREAM holds $c messages, not $LINES"; fi
    log "  $1: $s s ($c messages)"
    best=$(awk -v a="${best:-1e9}" -v b="$s" 'BEGIN { print (b < a ? b : a) }')
  done
  echo "$best"
}
log "n1/n2: best of $RUNS"
raw=$(best_of raw)
line=$(best_of line)
chunk=$(best_of chunk)

log "n3: append-to-stream latency with run, $SAMPLES samples"
fresh_stream
rm -rf "$WORK/state" "$WORK/lat"; mkdir -p "$WORK/lat"; : > "$WORK/lat/live.log"
"$TIDEMARK" run -q -s "$WORK/state" -p "nats:url=$URL,subject=$SUBJ,stream=$STREAM" "$WORK/lat" 2>>"$WORK/err" &
RPID=$!
sleep 1
l=$("$WORK/nats_bench" lat "$URL" "$SUBJ" "$WORK/lat/live.log" "$SAMPLES" || true)
kill -TERM "$RPID"; wait "$RPID" || true
log "$l"
med=$(echo "$l" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
p99=$(echo "$l" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')

r_line=$(awk -v a="$line" -v b="$raw" 'BEGIN { printf "%.2fx", a / b }')
r_chunk=$(awk -v a="$chunk" -v b="$raw" 'BEGIN { printf "%.2fx", a / b }')
x_chunk=$(awk -v a="$line" -v b="$chunk" 'BEGIN { printf "%.1fx", a / b }')
v_chunk=$(awk -v a="$line" -v b="$chunk" 'BEGIN { print (a / b >= 10 ? "PASS" : "MISS") }')
v_line=$(awk -v a="$line" -v b="$raw" 'BEGIN { print (a / b <= 1.5 ? "PASS" : "MISS") }')
echo
echo "| workload | tidemark | baseline | ratio | target | result |"
echo "|---|---|---|---|---|---|"
echo "| n1. \`once\` $LINES lines (~165 B) into JetStream, records=line | $line s | $raw s (raw cnats async publisher, same ids) | $r_line | ≤ 1.5x | $v_line |"
echo "| n2. the same, records=chunk | $chunk s | $raw s | $r_chunk | | |"
echo "| n2. records=chunk throughput over records=line | $chunk s | $line s (n1) | $x_chunk | ≥ 10x | $v_chunk |"
echo "| n3. \`run\` append-to-stream latency, median ($SAMPLES samples) | ${med:-failed} ms | | | | |"
echo "| n3. \`run\` append-to-stream latency, p99 | ${p99:-failed} ms | | | | |"
