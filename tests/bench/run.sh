#!/usr/bin/env bash
# tests/bench/run.sh: tidemark's benchmark (issue 2's figures). Not a test:
# it prints one markdown table and exits 0 whatever the figures are.
#
#   tests/bench/run.sh
#
# Workloads, each timed best of 3 against a baseline timed in the same run:
#   a. `once` over a page-cached log into `-p count`   vs `wc -l`          (<= 1.5x)
#   b. `once` over it into `-p file:path=OUT`           vs `cat > out && sync out`
#                                                        (a durable copy)   (<= 1.5x)
#   c. a nothing-new `once` over 20,000 tracked files   vs `find -printf '%s %T@\n'`
#                                                                           (<= 2x)
#   d. peak RSS of a and b (GNU time %M)                                    (<= 64 MiB)
#
# Environment:
#   TIDEMARK       the binary (default: build/tidemark beside this tree)
#   BENCH_DIR      where the inputs are generated once and kept (/tmp/tdm-bench)
#   BENCH_SIZE_MB  size of the log (1024)
#   BENCH_FILES    files for workload c (20000)
#   BENCH_RUNS     runs per timing, the best is kept (3)
# Needs GNU time (/usr/bin/time, Debian package `time`) for the RSS figures.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
TIDEMARK=${TIDEMARK:-$repo/build/tidemark}
BENCH_DIR=${BENCH_DIR:-/tmp/tdm-bench}
SIZE_MB=${BENCH_SIZE_MB:-1024}
NFILES=${BENCH_FILES:-20000}
RUNS=${BENCH_RUNS:-3}
GNU_TIME=/usr/bin/time

[ -x "$TIDEMARK" ] || { echo "bench: no tidemark binary at $TIDEMARK (build it, or set TIDEMARK)" >&2; exit 1; }
if ! "$GNU_TIME" -f %M true >/dev/null 2>&1; then
  echo "bench: GNU time not found at $GNU_TIME (apt-get install time); RSS will show n/a" >&2
  GNU_TIME=""
fi

mkdir -p "$BENCH_DIR"
LOGDIR=$BENCH_DIR/log-${SIZE_MB}M
LOG=$LOGDIR/big.log
TREE=$BENCH_DIR/tree-$NFILES
WORK=$BENCH_DIR/work
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

log() { printf 'bench: %s\n' "$*" >&2; }

# ---- inputs (generated once, kept in BENCH_DIR) ------------------------------
if [ ! -f "$LOG" ] || [ ! -f "$LOGDIR/.complete" ]; then
  log "generating a ${SIZE_MB} MiB log in $LOG (once)"
  rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"
  target=$((SIZE_MB * 1048576))
  # Lines of 11..191 bytes (~101 on average), numbered; cut at the last whole
  # line under the target size.
  seq 1 $((target / 101 + 1000)) |
    awk -v max="$target" 'BEGIN { s = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"; s = s s s }
         { l = sprintf("%09d %s\n", $1, substr(s, 1, ($1 * 7919) % 181));
           if (n + length(l) > max) exit; n += length(l); printf "%s", l }' > "$LOG" || true
  touch "$LOGDIR/.complete"
fi
if [ ! -f "$TREE/.complete" ]; then
  log "generating $NFILES small files under $TREE (once)"
  rm -rf "$TREE"; mkdir -p "$TREE"
  for ((i = 0; i < (NFILES + 199) / 200; i++)); do mkdir -p "$TREE/d$i"; done
  awk -v n="$NFILES" -v root="$TREE" 'BEGIN {
        for (i = 0; i < n; i++) {
          f = root "/d" int(i / 200) "/f" i ".log"
          printf "line one of file %d\nline two of file %d\n", i, i > f
          close(f) } }'
  touch "$TREE/.complete"
fi
log_bytes=$(stat -c %s "$LOG")

# ---- timing helpers ------------------------------------------------------------
# run_timed RSSFILE CMD...: runs CMD (output discarded) under GNU time; prints
# the wall time in seconds (microsecond clock) and leaves the peak RSS (KiB) in
# RSSFILE.
run_timed() {
  local rssf=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  if [ -n "$GNU_TIME" ]; then
    "$GNU_TIME" -f %M -o "$rssf" "$@" >/dev/null 2>"$WORK/last.err" ||
      { cat "$WORK/last.err" >&2; log "command failed: $*"; return 1; }
  else
    "$@" >/dev/null 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; log "command failed: $*"; return 1; }
    echo 0 > "$rssf"
  fi
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", (b - a) / 1e9 }'
}

# best PREP_FN CMD...: best (lowest) time of $RUNS runs, PREP_FN run untimed
# before each; BEST holds the time, BEST_RSS the largest peak RSS seen (KiB).
best() {
  local prep=$1; shift
  local i t
  BEST=""; BEST_RSS=0
  for ((i = 0; i < RUNS; i++)); do
    "$prep"
    t=$(run_timed "$WORK/rss" "$@") || return 1
    local r; r=$(tail -n 1 "$WORK/rss" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$BEST_RSS" ] && BEST_RSS=$r
    if [ -z "$BEST" ] || awk -v a="$t" -v b="$BEST" 'BEGIN { exit !(a < b) }'; then BEST=$t; fi
  done
}

nothing() { :; }
fresh_state() { rm -rf "$WORK/state"; }
fresh_copy() { rm -rf "$WORK/state" "$WORK/out" "$WORK/copy"; sync; }
warm_log() { cat "$LOG" > /dev/null; }

ROWS=()
# row NAME TDM_S BASE_S BASELINE_DESC TARGET_RATIO
row() {
  local ratio verdict
  ratio=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  verdict=$(awk -v r="$ratio" -v t="$5" 'BEGIN { print (r <= t ? "PASS" : "MISS") }')
  ROWS+=("| $1 | $(printf '%.3f s' "$2") | $(printf '%.3f s' "$3") ($4) | ${ratio}x | ≤ ${5}x | $verdict |")
}
rss_row() {
  local mib verdict
  if [ -z "$GNU_TIME" ]; then ROWS+=("| $1 | n/a | | | ≤ 64 MiB | n/a |"); return; fi
  mib=$(awk -v k="$2" 'BEGIN { printf "%.1f", k / 1024 }')
  verdict=$(awk -v m="$mib" 'BEGIN { print (m <= 64 ? "PASS" : "MISS") }')
  ROWS+=("| $1 | $mib MiB | | | ≤ 64 MiB | $verdict |")
}

# ---- a. once into count vs wc -l --------------------------------------------------
log "a: once -p count vs wc -l over $(awk -v b="$log_bytes" 'BEGIN { printf "%.0f MiB", b / 1048576 }')"
warm_log
best nothing wc -l "$LOG"; base_a=$BEST
best fresh_state "$TIDEMARK" once -q -s "$WORK/state" -p count "$LOGDIR"; tdm_a=$BEST; rss_a=$BEST_RSS
"$TIDEMARK" once -q -s "$WORK/state-check" -p count "$LOGDIR" 2>/dev/null > "$WORK/count.out" || true
grep -q "bytes=$log_bytes" "$WORK/count.out" || log "WARNING: count did not report $log_bytes bytes: $(cat "$WORK/count.out")"
rm -rf "$WORK/state-check"
row "a. \`once -p count\`, $SIZE_MB MiB log (page cache)" "$tdm_a" "$base_a" "\`wc -l\`" 1.5

# ---- b. once into file vs a durable copy ----------------------------------------
log "b: once -p file vs cat > out && sync out"
best fresh_copy sh -c 'cat "$1" > "$2" && sync "$2"' _ "$LOG" "$WORK/copy"; base_b=$BEST
best fresh_copy "$TIDEMARK" once -q -s "$WORK/state" -p "file:path=$WORK/out" "$LOGDIR"; tdm_b=$BEST; rss_b=$BEST_RSS
cmp -s "$WORK/out" "$LOG" || log "WARNING: the file processor's output differs from the log"
fresh_copy
row "b. \`once -p file\`, $SIZE_MB MiB log" "$tdm_b" "$base_b" "\`cat > out && sync out\`" 1.5

# ---- c. nothing new over 20,000 tracked files ------------------------------------
log "c: nothing-new once over $NFILES tracked files vs find -printf"
find "$TREE" -type f -printf '%s %T@\n' > /dev/null
rm -rf "$WORK/state-tree"
"$TIDEMARK" once -q -s "$WORK/state-tree" -p count "$TREE" > "$WORK/tree.out" 2>"$WORK/tree.err" ||
  { cat "$WORK/tree.err" >&2; log "first run over the tree failed"; }
grep -q "files=$NFILES " "$WORK/tree.out" || log "WARNING: first run over the tree: $(cat "$WORK/tree.out")"
best nothing find "$TREE" -type f -printf '%s %T@\n'; base_c=$BEST
best nothing "$TIDEMARK" once -q -s "$WORK/state-tree" -p count "$TREE"; tdm_c=$BEST
"$TIDEMARK" once -q -s "$WORK/state-tree" -p count "$TREE" > "$WORK/tree2.out" 2>/dev/null || true
grep -q "bytes=0" "$WORK/tree2.out" || log "WARNING: the nothing-new run delivered bytes: $(cat "$WORK/tree2.out")"
row "c. nothing-new \`once\`, $NFILES tracked files" "$tdm_c" "$base_c" "\`find -printf\`" 2

# ---- d. peak RSS -------------------------------------------------------------------
rss_row "d. peak RSS of a (count)" "$rss_a"
rss_row "d. peak RSS of b (file)" "$rss_b"

# ---- the table ---------------------------------------------------------------------
echo
echo "tidemark $("$TIDEMARK" --version 2>/dev/null | awk '{ print $NF }') · $(nproc) cores · $(uname -sr) · best of $RUNS · $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| workload | tidemark | baseline | ratio | target | result |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
exit 0
