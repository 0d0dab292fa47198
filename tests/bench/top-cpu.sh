#!/usr/bin/env bash
# tests/bench/top-cpu.sh: what `tidemark top` costs over 100,000 tracked
# files at a 1 s refresh (issue 21: under 2% of a core). Not a test: prints
# the figures and exits 0.
#
#   TIDEMARK=build/tidemark tests/bench/top-cpu.sh [SECONDS]
#
# 100,000 one-line files are tracked (`once`), then `run -p count --metrics`
# follows them. `top --metrics` runs in tmux (120x40, interactive) for
# SECONDS (default 30) twice: idle (nothing is written: no commit, the store
# is not walked again) and busy (tdm-writer appends to 100 of the files at
# 2,000 lines/s: a commit every checkpoint, so every refresh walks all
# 100,000 records again). CPU is utime+stime of the top process from
# /proc/PID/stat. Baseline in the same run: one `status --json` over the
# same store (what an operator would run by hand instead), its CPU time.
set -euo pipefail
: "${TIDEMARK:?set TIDEMARK to the tidemark binary}"
SECS=${1:-30}
WRITER=${TDM_WRITER:-$(dirname "$TIDEMARK")/tests/integration/tdm-writer}
B=$(mktemp -d "${TMPDIR:-/tmp}/tdm-topcpu.XXXXXX")
TM="tmux -L tdm-topcpu-$$ -f /dev/null"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUN_PID= WRITER_PID=
cleanup() {
  $TM kill-server >/dev/null 2>&1 || true
  [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null || true
  [ -n "$RUN_PID" ] && kill "$RUN_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$B"
}
trap cleanup EXIT
HZ=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

mkdir -p "$B/d"
"$WRITER" mkfiles "$B/d" 100000 T > /dev/null
"$TIDEMARK" once -q -s "$B/s" -p count "$B/d" > /dev/null
"$TIDEMARK" run -q -s "$B/s" -p count --metrics "127.0.0.1:$PORT" "$B/d" > /dev/null &
RUN_PID=$!
sleep 3

read -r su ss < <(/usr/bin/time -f '%U %S' "$TIDEMARK" status -s "$B/s" --json 2>&1 >/dev/null | tail -n 1)
status_cpu=$(echo "$su + $ss" | bc -l)

$TM new-session -d -s top -x 120 -y 40 \
  "$TIDEMARK top -s $B/s --metrics 127.0.0.1:$PORT --interval-ms 1000"
sleep 1
TOP_PID=$($TM list-panes -t top -F '#{pane_pid}')
sleep 4

measure() {
  local t0 t1
  t0=$(ticks "$TOP_PID")
  sleep "$SECS"
  t1=$(ticks "$TOP_PID")
  echo "scale=4; ($t1 - $t0) / $HZ" | bc -l
}
idle=$(measure)
files=()
for i in $(seq 0 99); do files+=("$B/d/f$(printf '%07d' $((i * 1000))).log"); done
"$WRITER" append -r 2000 W "${files[@]}" > /dev/null &
WRITER_PID=$!
sleep 3
busy=$(measure)
$TM capture-pane -p -t top > "$B/screen"

pct() { echo "scale=2; 100 * $1 / $SECS" | bc -l; }
per() { echo "scale=4; $1 / $SECS" | bc -l; }
echo "## tidemark top over 100,000 tracked files, 1 s refresh, ${SECS} s each"
echo
echo "| | CPU s | % of a core | CPU per refresh | vs one status --json |"
echo "|---|---|---|---|---|"
echo "| status --json (baseline, one run) | $status_cpu | | | 1.00x |"
for row in "idle:$idle" "busy (a commit each refresh):$busy"; do
  name=${row%%:*} v=${row#*:}
  r=$(echo "scale=3; $(per "$v") / ($status_cpu + 0.0001)" | bc -l)
  echo "| top, $name | $v | $(pct "$v") | $(per "$v") s | ${r}x |"
done
echo
echo "Screen at the end of the busy run:"
echo '```'
cat "$B/screen"
echo '```'
