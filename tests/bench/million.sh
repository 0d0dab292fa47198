#!/usr/bin/env bash
# tests/bench/million.sh: tidemark over a million files (issue 20's figures).
# Not a test: prints one markdown table and exits 0 whatever the figures are.
#
#   TDM_BENCH_FILES=100000 tests/bench/million.sh
#
# A tree of TDM_BENCH_FILES (default 1,000,000) one-line files, 1,000 to a
# directory, is made under BENCH_DIR (default /tmp/tdm-bench; at a million
# it takes about 2 minutes and 4 GB) and removed at the end (BENCH_KEEP=1
# keeps it). Each figure is measured with its baseline in the same run, the
# page cache warm:
#   1. first `once -p count`            vs `find | xargs cat`  (<= 0.6x)
#   2. nothing-new `once`               vs `find -printf '%s %T@'` (<= 1.2x)
#      RssAnon (<= 96 MiB) and VmHWM (<= 256 MiB) of both
#   3. `run`: start to first append delivered (<= 2x the nothing-new pass),
#      then its RssAnon and VmHWM
#   4. `status` table and `--json`: time (<= 1.5x the nothing-new pass) and
#      VmHWM (<= 32 MiB); the JSON's size
#   5. `status --summary` (< 1 s), when this tidemark has it
#   6. the store: data.mdb bytes a tracked file (<= 120 B)
#   7. whole mode, when this tidemark has --forget-after: every file
#      processed and deleted (`--on-done delete --forget-after 1s`), then a
#      second pass after the duration: the store's size (<= 24 MB at a
#      million, scaled)
# The process figures come from /proc/PID/status, read every 50 ms (RssAnon:
# its largest reading; VmHWM: the last, just before it exits).
# Environment: TIDEMARK (build/tidemark), BENCH_DIR, BENCH_KEEP.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
TIDEMARK=${TIDEMARK:-$repo/build/tidemark}
BENCH_DIR=${BENCH_DIR:-/tmp/tdm-bench}
N=${TDM_BENCH_FILES:-1000000}
PER_DIR=1000
log() { echo "bench: $*" >&2; }

[ -x "$TIDEMARK" ] || { log "no tidemark at $TIDEMARK"; exit 0; }
WORK=$BENCH_DIR/million-work
TREE=$BENCH_DIR/million-$N
rm -rf "$WORK"; mkdir -p "$WORK"
cleanup() {
  [ -n "${RUN_PID:-}" ] && kill "$RUN_PID" 2>/dev/null && wait "$RUN_PID" 2>/dev/null
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$TREE" "$WORK"
}
trap cleanup EXIT

# ---- the tree ---------------------------------------------------------------
if [ ! -f "$TREE/.complete" ]; then
  log "making $N files in $TREE"
  rm -rf "$TREE"
  python3 - "$TREE" "$N" "$PER_DIR" <<'PY'
import os, sys
top, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(top, "d%04d" % (i // per))
    if i % per == 0:
        os.makedirs(d)
    with open(os.path.join(d, "f%04d.log" % (i % per)), "w") as f:
        f.write("line %d of a file that tidemark tracks\n" % i)
open(os.path.join(top, ".complete"), "w").close()
PY
fi

# ---- measuring ----------------------------------------------------------------
# measure OUT CMD...: run CMD (stdout into OUT), sampling /proc; sets SECS,
# HWM and ANON (KiB) and RC.
measure() {
  local out=$1; shift
  local t0 t1 k v _
  HWM=0; ANON=0
  t0=$(date +%s%N)
  "$@" > "$out" 2> "$WORK/err" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    while read -r k v _; do
      case $k in
      RssAnon:) [ "$v" -gt "$ANON" ] && ANON=$v ;;
      VmHWM:) HWM=$v ;;
      esac
    done < "/proc/$pid/status" 2>/dev/null || true
    sleep 0.05
  done
  RC=0; wait "$pid" || RC=$?
  t1=$(date +%s%N)
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  [ "$RC" = 0 ] || { log "exit $RC: $*"; tail -3 "$WORK/err" >&2; }
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
verdict() { awk -v v="$1" -v g="$2" 'BEGIN { print (v <= g ? "PASS" : "MISS") }'; }
ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }

S=$WORK/state
HELP=$("$TIDEMARK" --help 2>&1 || true)
has() { case $HELP in *"$1"*) return 0 ;; esac; return 1; }

# 1. first pass, warm, against reading every file
find "$TREE" -type f -name '*.log' -print0 | xargs -0 cat > /dev/null
measure /dev/null sh -c "find '$TREE' -type f -name '*.log' -print0 | xargs -0 cat > /dev/null"
B_CAT=$SECS
measure "$WORK/once1.out" "$TIDEMARK" once -q -s "$S" -p count "$TREE"
T1=$SECS
row "first \`once\`, warm" "$T1 s" "\`find | xargs cat\`: $B_CAT s" "$(ratio "$T1" "$B_CAT")" "≤ 0.6x" \
    "$(verdict "$(awk -v a="$T1" -v b="$B_CAT" 'BEGIN { print a / b }')" 0.6)"
row "first \`once\`: RssAnon / VmHWM" "$(mib "$ANON") / $(mib "$HWM")" "" "" "≤ 96 / 256 MiB" \
    "$(verdict "$ANON" 98304) / $(verdict "$HWM" 262144)"

# 2. nothing-new pass against find -printf
measure /dev/null find "$TREE" -type f -name '*.log' -printf '%s %T@\n'
B_FIND=$SECS
measure "$WORK/once2.out" "$TIDEMARK" once -q -s "$S" -p count "$TREE"
T2=$SECS
grep -q "bytes=0" "$WORK/once2.out" || log "WARNING: the nothing-new pass delivered: $(cat "$WORK/once2.out")"
row "nothing-new \`once\`" "$T2 s" "\`find -printf '%s %T@'\`: $B_FIND s" "$(ratio "$T2" "$B_FIND")" "≤ 1.2x" \
    "$(verdict "$(awk -v a="$T2" -v b="$B_FIND" 'BEGIN { print a / b }')" 1.2)"
row "nothing-new \`once\`: RssAnon / VmHWM" "$(mib "$ANON") / $(mib "$HWM")" "" "" "≤ 96 / 256 MiB" \
    "$(verdict "$ANON" 98304) / $(verdict "$HWM" 262144)"

# 3. run: from its start to a line appended at its start being delivered
OUT=$WORK/run.out
: > "$OUT"
F=$TREE/d0000/f0000.log
t0=$(date +%s%N)
"$TIDEMARK" run -q -s "$S" -p "file:path=$OUT" "$TREE" > /dev/null 2> "$WORK/run.err" &
RUN_PID=$!
echo "appended while run starts" >> "$F"
until [ -s "$OUT" ]; do
  kill -0 "$RUN_PID" 2>/dev/null || { log "run exited early"; cat "$WORK/run.err" >&2; break; }
  sleep 0.02
done
t1=$(date +%s%N)
T3=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
sleep 2 # its first checkpoint after the pass
ANON=$(awk '/^RssAnon:/ { print $2 }' "/proc/$RUN_PID/status" 2>/dev/null || echo 0)
HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$RUN_PID/status" 2>/dev/null || echo 0)
RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$RUN_PID/status" 2>/dev/null || echo 0)
kill -TERM "$RUN_PID"; wait "$RUN_PID" || true; RUN_PID=
row "\`run\`: start to first append delivered" "$T3 s" "nothing-new pass: $T2 s" "$(ratio "$T3" "$T2")" "≤ 2x" \
    "$(verdict "$(awk -v a="$T3" -v b="$T2" 'BEGIN { print a / b }')" 2)"
row "\`run\` after its first pass: RssAnon / VmHWM (VmRSS)" "$(mib "$ANON") / $(mib "$HWM") ($(mib "$RSS"))" \
    "" "$(awk -v k="$RSS" -v n="$N" 'BEGIN { printf "%.0f B a file", k * 1024 / n }')" "≤ 96 / 256 MiB" \
    "$(verdict "$ANON" 98304) / $(verdict "$HWM" 262144)"

# 4. status
measure "$WORK/status.txt" "$TIDEMARK" status -s "$S"
row "\`status\` (table)" "$SECS s, $(mib "$HWM")" "nothing-new pass: $T2 s" "$(ratio "$SECS" "$T2")" "≤ 1.5x, ≤ 32 MiB" \
    "$(verdict "$(awk -v a="$SECS" -v b="$T2" 'BEGIN { print a / b }')" 1.5) / $(verdict "$HWM" 32768)"
measure "$WORK/status.json" "$TIDEMARK" status -s "$S" --json
JSON_MB=$(stat -c %s "$WORK/status.json" | awk '{ printf "%.0f", $1 / 1e6 }')
row "\`status --json\`" "$SECS s, $(mib "$HWM"), $JSON_MB MB" "nothing-new pass: $T2 s" "$(ratio "$SECS" "$T2")" "≤ 1.5x, ≤ 32 MiB" \
    "$(verdict "$(awk -v a="$SECS" -v b="$T2" 'BEGIN { print a / b }')" 1.5) / $(verdict "$HWM" 32768)"
rm -f "$WORK/status.json" "$WORK/status.txt"
if has --summary; then
  measure "$WORK/summary.txt" "$TIDEMARK" status -s "$S" --summary
  row "\`status --summary\`" "$SECS s, $(mib "$HWM")" "" "" "< 1 s" "$(verdict "$SECS" 0.999)"
else
  row "\`status --summary\`" "n/a (no --summary)" "" "" "< 1 s" ""
fi

# 5. the store
BYTES=$(stat -c %s "$S/data.mdb")
PER=$(awk -v b="$BYTES" -v n="$N" 'BEGIN { printf "%.0f", b / n }')
row "state store" "$(awk -v b="$BYTES" 'BEGIN { printf "%.1f MB", b / 1e6 }')" "" "$PER B a file" "≤ 120 B a file" "$(verdict "$PER" 120)"

# 6. whole mode forgets
if has --forget-after; then
  W=$WORK/whole-state
  measure "$WORK/whole1.out" "$TIDEMARK" once -q -m whole --settle-ms 0 --on-done delete \
    --forget-after 1s -s "$W" -p count "$TREE"
  T6=$SECS
  sleep 1.1
  measure "$WORK/whole2.out" "$TIDEMARK" once -q -m whole --settle-ms 0 --on-done delete \
    --forget-after 1s -s "$W" -p count "$TREE"
  WB=$(stat -c %s "$W/data.mdb")
  GOAL=$(awk -v n="$N" 'BEGIN { printf "%.0f", 24e6 * n / 1e6 }')
  row "whole mode, all processed and deleted, forgotten: store" \
      "$(awk -v b="$WB" 'BEGIN { printf "%.1f MB", b / 1e6 }') (first pass $T6 s)" "" \
      "$(awk -v b="$WB" -v n="$N" 'BEGIN { printf "%.0f B a file", b / n }')" \
      "≤ $(awk -v g="$GOAL" 'BEGIN { printf "%.1f MB", g / 1e6 }')" "$(verdict "$WB" "$GOAL")"
  rm -f "$TREE/.complete" # the files are gone: make the tree again next time
else
  row "whole mode forgets" "n/a (no --forget-after)" "" "" "" ""
fi

echo "| measure ($N files, $((N / PER_DIR)) directories) | tidemark | baseline, same run | ratio | goal | verdict |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
