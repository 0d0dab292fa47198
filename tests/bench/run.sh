#!/usr/bin/env bash
# tests/bench/run.sh: tidemark's benchmark (issue 2's figures). Not a test:
# it prints one markdown table and exits 0 whatever the figures are.
#
#   tests/bench/run.sh [--only LIST]
#
# LIST is a comma list of workloads (letters or names below), e.g.
# `--only latency,idle,rss` or `--only a,b`; default: all. BENCH_ONLY does the same.
#
# Workloads a-c, each timed best of 3 against a baseline timed in the same run:
#   a. `once` over a page-cached log into `-p count`   vs `wc -l`          (<= 1.5x)
#   b. `once` over it into `-p file:path=OUT`           vs `cat > out && sync out`
#                                                        (a durable copy)   (<= 1.5x)
#   c. a nothing-new `once` over 20,000 tracked files   vs `find -printf '%s %T@\n'`
#                                                                           (<= 2x)
#   d. peak RSS of a and b (GNU time %M)                                    (<= 64 MiB)
# Workloads e-g, `tidemark run` (issue 3's figures), one run each:
#   e. latency: append-to-delivery latency with 200 files watched, 1,000
#      samples (tests/bench/latency.c, built here with cc): median (<= 1 ms)
#      and p99 (<= 5 ms); rsyslog imfile measured in the same run is the peer column
#   f. idle: CPU (utime+stime of the process) over 5 s of idleness, once the
#      start-up read of 2,000 files in 200 directories is done     (<= 0.1 s)
#   g. rss: VmHWM / VmRSS once 100,000 small files (500 directories) are
#      tracked and delivered, `run -p count`                        (<= 64 MiB)
# Workload i (issue 10), `run` into the file processor, one run:
#   i. filelat: append-to-visible-in-OUT latency with 200 files watched,
#      1,000 samples (latency.c -o): median (<= 1 ms) and p99 (<= 5 ms)
# Workload h, whole mode (issue 4), best of 3 against a baseline timed in the
# same run:
#   h. whole: a first `once -m whole -p count` over 20,000 small files (each
#      hashed, looked up, recorded; a fresh state for every timed run) vs
#      `find DIR -type f | xargs cat > /dev/null`                    (<= 3x)
#
# Peer column, rsyslog's imfile (Debian package `rsyslog`), in the same run:
# rsyslogd is started by this script in the foreground (`rsyslogd -n -f CONF
# -i PIDFILE`, its own config and work directory under $BENCH_DIR/work, no
# system service, no /dev/log), output through omfile with a template that
# writes the message only, and stopped (SIGTERM) after each workload:
#   a'. catch-up of the same log: time from starting rsyslogd until omfile's
#       output holds every byte of the log (its size polled every 20 ms); one
#       run, a fresh work directory; shown beside rows a and b
#   e'. append-to-delivery latency through imfile (inotify mode) into omfile:
#       tests/bench/peer_latency.c appends a line to one of BENCH_LAT_FILES
#       watched files and waits (inotify) until it is in the output file;
#       BENCH_PEER_SAMPLES (300) samples; shown beside row e
# `--only rsyslog` runs the peer workloads alone; BENCH_PEER=0 skips them.
# Without rsyslogd the peer cells say "n/a: not installed".
#
# Environment:
#   TIDEMARK       the binary (default: build/tidemark beside this tree)
#   BENCH_DIR      where the inputs are generated once and kept (/tmp/tdm-bench)
#   BENCH_SIZE_MB  size of the log (1024)
#   BENCH_FILES    files for workload c (20000)
#   BENCH_RUNS     runs per timing, the best is kept (3)
#   BENCH_LAT_FILES, BENCH_LAT_SAMPLES   workload e (200, 1000)
#   BENCH_IDLE_FILES, BENCH_IDLE_DIRS    workload f (2000, 200)
#   BENCH_IDLE_SECS                      workload f's idle window (5)
#   BENCH_RSS_FILES                      workload g (100000, 200 per directory)
# Needs GNU time (/usr/bin/time, Debian package `time`) for the RSS figures of
# d, cc for e, jq for f and g.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
TIDEMARK=${TIDEMARK:-$repo/build/tidemark}
BENCH_DIR=${BENCH_DIR:-/tmp/tdm-bench}
SIZE_MB=${BENCH_SIZE_MB:-1024}
NFILES=${BENCH_FILES:-20000}
RUNS=${BENCH_RUNS:-3}
LAT_FILES=${BENCH_LAT_FILES:-200}
LAT_SAMPLES=${BENCH_LAT_SAMPLES:-1000}
IDLE_FILES=${BENCH_IDLE_FILES:-2000}
IDLE_DIRS=${BENCH_IDLE_DIRS:-200}
IDLE_SECS=${BENCH_IDLE_SECS:-5}
RSS_FILES=${BENCH_RSS_FILES:-100000}
GNU_TIME=/usr/bin/time

ONLY=${BENCH_ONLY:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "bench: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
ONLY=$(echo ",$ONLY," | sed 's/,latency,/,e,/g; s/,idle,/,f,/g; s/,rss,/,g,/g; s/,whole,/,h,/g; s/,rsyslog,/,p,/g; s/,filelat,/,i,/g')
# want X: workload X was asked for
want() { [ "$ONLY" = ",," ] || case "$ONLY" in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
PEER=${BENCH_PEER:-1}
PEER_SAMPLES=${BENCH_PEER_SAMPLES:-300}
RSYSLOGD=${RSYSLOGD:-$(command -v rsyslogd || ls /usr/sbin/rsyslogd 2>/dev/null || true)}
# want_peer X: the rsyslog peer of workload X (a or e) runs
want_peer() { [ "$PEER" != 0 ] && { want "$1" || want p; }; }

[ -x "$TIDEMARK" ] || { echo "bench: no tidemark binary at $TIDEMARK (build it, or set TIDEMARK)" >&2; exit 1; }
if ! "$GNU_TIME" -f %M true >/dev/null 2>&1; then
  echo "bench: GNU time not found at $GNU_TIME (apt-get install time); RSS will show n/a" >&2
  GNU_TIME=""
fi

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
LOGDIR=$BENCH_DIR/log-${SIZE_MB}M
LOG=$LOGDIR/big.log
TREE=$BENCH_DIR/tree-$NFILES
WORK=$BENCH_DIR/work
rm -rf "$WORK"
mkdir -p "$WORK"
RSYS_PID=""
trap 'type rsyslog_stop >/dev/null 2>&1 && rsyslog_stop; rm -rf "$WORK"' EXIT

log() { printf 'bench: %s\n' "$*" >&2; }

# ---- inputs (generated once, kept in BENCH_DIR) ------------------------------
if { want a || want b || want d || want_peer a; } && { [ ! -f "$LOG" ] || [ ! -f "$LOGDIR/.complete" ]; }; then
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
# gen_tree DIR N PER_DIR: N small files (two lines each), PER_DIR per
# directory d0, d1, ... (generated once, kept)
gen_tree() {
  local dir=$1 n=$2 per=$3 i
  [ -f "$dir/.complete" ] && return 0
  log "generating $n small files under $dir (once)"
  rm -rf "$dir"; mkdir -p "$dir"
  for ((i = 0; i < (n + per - 1) / per; i++)); do mkdir -p "$dir/d$i"; done
  awk -v n="$n" -v per="$per" -v root="$dir" 'BEGIN {
        for (i = 0; i < n; i++) {
          f = root "/d" int(i / per) "/f" i ".log"
          printf "line one of file %d\nline two of file %d\n", i, i > f
          close(f) } }'
  touch "$dir/.complete"
}
{ want c || want h; } && gen_tree "$TREE" "$NFILES" 200
log_bytes=$(stat -c %s "$LOG" 2>/dev/null || echo 0)

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
PEERS=() # the peer cells of a row (" rsyslog | ratio |"), by the row's index
# peer CELL RATIO: the peer cells of the last row
peer() { PEERS[$((${#ROWS[@]} - 1))]=" $1 | $2 |"; }

# ---- the rsyslog imfile peer ---------------------------------------------------------
# rsyslog_start NAME INPUT_GLOB OUTFILE: a foreground rsyslogd with its own
# config and work directory $WORK/rsyslog-NAME; reads INPUT_GLOB with imfile
# (inotify mode), writes the message of every line to OUTFILE with omfile.
rsyslog_start() {
  local d=$WORK/rsyslog-$1
  rm -rf "$d"; mkdir -p "$d/spool"
  cat > "$d/rsyslog.conf" <<EOF
global(workDirectory="$d/spool" maxMessageSize="64k"
       parser.escapeControlCharactersOnReceive="off")
module(load="imfile" mode="inotify")
template(name="raw" type="string" string="%msg%\\n")
ruleset(name="bench") {
  action(type="omfile" file="$3" template="raw")
}
input(type="imfile" File="$2" Tag="bench" ruleset="bench")
EOF
  "$RSYSLOGD" -n -f "$d/rsyslog.conf" -i "$d/rsyslogd.pid" > "$d/rsyslogd.out" 2>&1 &
  RSYS_PID=$!
}
# rsyslog_stop: SIGTERM the rsyslogd started here, wait for it
rsyslog_stop() {
  [ -n "${RSYS_PID:-}" ] || return 0
  kill -TERM "$RSYS_PID" 2>/dev/null || true
  wait "$RSYS_PID" 2>/dev/null || true
  RSYS_PID=""
}
# rsyslog_catchup: a'. sets RSYS_A (seconds, empty if it failed) and RSYS_A_NOTE
RSYS_A=""; RSYS_A_NOTE=""
rsyslog_catchup() {
  local out=$WORK/rsyslog-a.out t0 t1 size=0 end
  rm -f "$out"
  log "a': rsyslog imfile catch-up of the same log into omfile"
  warm_log
  t0=$(date +%s%N)
  rsyslog_start a "$LOG" "$out"
  end=$((SECONDS + 120))
  while :; do
    size=$(stat -c %s "$out" 2>/dev/null || echo 0)
    [ "$size" -ge "$log_bytes" ] && break
    kill -0 "$RSYS_PID" 2>/dev/null || { log "rsyslogd exited early: $(tail -n 3 "$WORK/rsyslog-a/rsyslogd.out")"; break; }
    [ "$SECONDS" -lt "$end" ] || { log "rsyslog: only $size of $log_bytes bytes after 120 s"; break; }
    sleep 0.02
  done
  t1=$(date +%s%N)
  rsyslog_stop
  if [ "$size" -ge "$log_bytes" ]; then
    RSYS_A=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    RSYS_A_NOTE=$(awk -v s="$RSYS_A" -v b="$log_bytes" 'BEGIN { printf "%.0f MiB/s", b / 1048576 / s }')
    if ! cmp -s "$out" "$LOG"; then
      # same size: count the lines not one after the previous (the log's
      # lines are numbered), e.g. batches written out of order
      local ooo
      ooo=$(awk 'NR > 1 && $1 + 0 != prev + 1 { c++ } { prev = $1 + 0 } END { print c + 0 }' "$out")
      log "WARNING: rsyslog's omfile output differs from the log ($ooo lines out of sequence)"
      [ "$ooo" -gt 0 ] && RSYS_A_NOTE="$RSYS_A_NOTE, $ooo lines out of order"
    fi
  else
    RSYS_A_NOTE="failed: $size of $log_bytes bytes"
  fi
  grep -v '^$' "$WORK/rsyslog-a/rsyslogd.out" | head -n 5 | sed 's/^/bench: rsyslogd: /' >&2 || true
  rm -f "$out"
}
# rsyslog_latency: e'. sets RSYS_MED, RSYS_P99, RSYS_MAX (ms; empty if it failed)
RSYS_MED=""; RSYS_P99=""; RSYS_MAX=""
rsyslog_latency() {
  local src=$WORK/rsyslog-lat-src out=$WORK/rsyslog-e.out i l
  log "e': rsyslog imfile append-to-delivery latency, $LAT_FILES files watched, $PEER_SAMPLES samples"
  if ! cc -O2 -o "$WORK/peer_latency" "$here/peer_latency.c" 2>"$WORK/cc-peer.err"; then
    cat "$WORK/cc-peer.err" >&2; log "could not build tests/bench/peer_latency.c"; return 0
  fi
  rm -rf "$src" "$out"; mkdir -p "$src"
  for ((i = 0; i < LAT_FILES; i++)); do : > "$src/f$i.log"; done
  rsyslog_start e "$src/*.log" "$out"
  "$WORK/peer_latency" -d "$src" -o "$out" -f "$LAT_FILES" -n "$PEER_SAMPLES" \
    > "$WORK/peer-lat.out" 2> "$WORK/peer-lat.err" || log "rsyslog latency: $(cat "$WORK/peer-lat.out" "$WORK/peer-lat.err" | tail -n 5)"
  rsyslog_stop
  grep -v '^$' "$WORK/rsyslog-e/rsyslogd.out" | head -n 5 | sed 's/^/bench: rsyslogd: /' >&2 || true
  l=$(grep '^latency:' "$WORK/peer-lat.out" || true)
  log "rsyslog $l"
  if [ -n "$l" ] && ! echo "$l" | grep -q 'samples=0 '; then
    RSYS_MED=$(echo "$l" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
    RSYS_P99=$(echo "$l" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
    RSYS_MAX=$(echo "$l" | sed -n 's/.*max_ms=\([0-9.]*\).*/\1/p')
  fi
  rm -rf "$src" "$out"
}
PEER_NA=""
if [ "$PEER" != 0 ] && [ -z "$RSYSLOGD" ]; then
  PEER_NA="n/a: not installed"
  log "rsyslogd not found (apt-get install rsyslog): the peer column shows n/a"
fi
# ratio_cell A B: "A/B x", or nothing
ratio_cell() {
  [ -n "$1" ] && [ -n "$2" ] || return 0
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b }'
}
rsys_a_cell() {
  if [ -n "$PEER_NA" ]; then echo "$PEER_NA"
  elif [ -n "$RSYS_A" ]; then printf '%.3f s (%s, omfile)\n' "$RSYS_A" "$RSYS_A_NOTE"
  else echo "${RSYS_A_NOTE:-not run}"; fi
}
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
rss_a=""; rss_b=""
if want a || want d; then
log "a: once -p count vs wc -l over $(awk -v b="$log_bytes" 'BEGIN { printf "%.0f MiB", b / 1048576 }')"
warm_log
best nothing wc -l "$LOG"; base_a=$BEST
best fresh_state "$TIDEMARK" once -q -s "$WORK/state" -p count "$LOGDIR"; tdm_a=$BEST; rss_a=$BEST_RSS
"$TIDEMARK" once -q -s "$WORK/state-check" -p count "$LOGDIR" 2>/dev/null > "$WORK/count.out" || true
grep -q "bytes=$log_bytes" "$WORK/count.out" || log "WARNING: count did not report $log_bytes bytes: $(cat "$WORK/count.out")"
rm -rf "$WORK/state-check"
row "a. \`once -p count\`, $SIZE_MB MiB log (page cache)" "$tdm_a" "$base_a" "\`wc -l\`" 1.5
fi
# ---- a'. the same log through rsyslog imfile into omfile ---------------------------
if want_peer a && [ -z "$PEER_NA" ]; then rsyslog_catchup; fi
if want_peer a; then
  if want a || want d; then
    peer "$(rsys_a_cell)" "$(ratio_cell "$tdm_a" "$RSYS_A")"
  else
    ROWS+=("| a'. rsyslog imfile catch-up, $SIZE_MB MiB log, into omfile | | | | | |")
    peer "$(rsys_a_cell)" ""
  fi
fi

# ---- b. once into file vs a durable copy ----------------------------------------
if want b || want d; then
log "b: once -p file vs cat > out && sync out"
best fresh_copy sh -c 'cat "$1" > "$2" && sync "$2"' _ "$LOG" "$WORK/copy"; base_b=$BEST
best fresh_copy "$TIDEMARK" once -q -s "$WORK/state" -p "file:path=$WORK/out" "$LOGDIR"; tdm_b=$BEST; rss_b=$BEST_RSS
cmp -s "$WORK/out" "$LOG" || log "WARNING: the file processor's output differs from the log"
fresh_copy
row "b. \`once -p file\`, $SIZE_MB MiB log" "$tdm_b" "$base_b" "\`cat > out && sync out\`" 1.5
want_peer a && peer "$(rsys_a_cell): same run as a, not synced" "$(ratio_cell "$tdm_b" "$RSYS_A")"
fi

# ---- c. nothing new over 20,000 tracked files ------------------------------------
if want c; then
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
fi

# ---- d. peak RSS -------------------------------------------------------------------
if want d; then
  rss_row "d. peak RSS of a (count)" "$rss_a"
  rss_row "d. peak RSS of b (file)" "$rss_b"
fi

# ---- e-g: `tidemark run` -----------------------------------------------------------
# ms_row NAME VALUE_MS BASE_MS BASE_DESC TARGET_MS
ms_row() {
  local ratio="" verdict base=""
  if [ -z "$2" ]; then ROWS+=("| $1 | failed | | | ≤ $5 ms | MISS |"); return; fi
  if [ -n "$3" ]; then
    ratio=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2fx", a / b }')
    base="$3 ms ($4)"
  fi
  verdict=$(awk -v v="$2" -v t="$5" 'BEGIN { print (v <= t ? "PASS" : "MISS") }')
  ROWS+=("| $1 | $2 ms | $base | $ratio | ≤ $5 ms | $verdict |")
}
# mib_row NAME KIB: a memory figure against 64 MiB
mib_row() {
  local mib verdict
  if [ -z "$2" ]; then ROWS+=("| $1 | failed | | | ≤ 64 MiB | MISS |"); return; fi
  mib=$(awk -v k="$2" 'BEGIN { printf "%.1f", k / 1024 }')
  verdict=$(awk -v m="$mib" 'BEGIN { print (m <= 64 ? "PASS" : "MISS") }')
  ROWS+=("| $1 | $mib MiB | | | ≤ 64 MiB | $verdict |")
}
info_row() { ROWS+=("| $1 | $2 | | | | |"); }

# all_delivered STATE N: status shows N files, each with its bookmark at its size
all_delivered() {
  "$TIDEMARK" status -s "$1" --json 2>/dev/null |
    jq -e --argjson n "$2" '(.files | length) == $n and ([.files[] | select(.bookmark != .size)] | length) == 0' \
    >/dev/null 2>&1
}
# wait_delivered PID STATE N SECS: poll all_delivered every second; 0 when
# done, 1 when PID died or SECS passed
wait_delivered() {
  local end=$((SECONDS + $4))
  until all_delivered "$2" "$3"; do
    kill -0 "$1" 2>/dev/null || { log "tidemark run exited early"; return 1; }
    [ "$SECONDS" -lt "$end" ] || { log "not all $3 files delivered after $4 s"; return 1; }
    sleep 1
  done
}
# stop_run PID: SIGTERM, wait; its exit status in $rc
stop_run() {
  rc=0
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" || rc=$?
}
# cpu_ns PID: CPU time of PID so far, in ns: the sum of its threads'
# schedstat run times (ns resolution), else utime + stime (clock ticks).
# Threads that ended meanwhile are only in the latter, so a run compares
# like with like: both readings come from the same source.
cpu_ns() {
  if [ -r "/proc/$1/schedstat" ]; then
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
  else
    sed 's/.*) //' "/proc/$1/stat" |
      awk -v t="$(getconf CLK_TCK)" '{ printf "%d\n", ($12 + $13) * 1e9 / t }'
  fi
}
# ctx_switches PID: voluntary + involuntary context switches of all its threads
ctx_switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}
if { want e || want f || want g; } && ! command -v jq >/dev/null; then
  log "jq not found: workloads f and g need it"
fi

# ---- e. append-to-delivery latency -------------------------------------------------
if want e; then
  log "e: append-to-delivery latency, $LAT_FILES files watched, $LAT_SAMPLES samples"
  med=""; p99=""; max=""
  if cc -O2 -o "$WORK/latency" "$here/latency.c" 2>"$WORK/cc.err"; then
    "$WORK/latency" -f "$LAT_FILES" -n "$LAT_SAMPLES" -w "$WORK/lat" "$TIDEMARK" \
      > "$WORK/lat.out" 2> "$WORK/lat.err" || log "latency: $(cat "$WORK/lat.out" "$WORK/lat.err" | tail -n 5)"
    cat "$WORK/lat.err" >&2
    l=$(grep '^latency:' "$WORK/lat.out" || true)
    if [ -n "$l" ] && ! echo "$l" | grep -q 'samples=0 '; then
      med=$(echo "$l" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
      p99=$(echo "$l" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
      max=$(echo "$l" | sed -n 's/.*max_ms=\([0-9.]*\).*/\1/p')
    fi
    log "$l"
  else
    cat "$WORK/cc.err" >&2; log "could not build tests/bench/latency.c"
  fi
fi
# ---- e'. the same latency through rsyslog imfile into omfile -----------------------
if want_peer e && [ -z "$PEER_NA" ]; then rsyslog_latency; fi
# peer_ms TDM RSYS: the peer cells of a latency row
peer_ms() {
  if [ -n "$PEER_NA" ]; then peer "$PEER_NA" ""
  elif [ -n "$2" ]; then peer "$2 ms" "$(ratio_cell "$1" "$2")"
  else peer "failed" ""; fi
}
if want e; then
  ms_row "e. \`run\` append-to-delivery latency, median ($LAT_FILES files, $LAT_SAMPLES samples)" "$med" "" "" 1
  want_peer e && peer_ms "$med" "$RSYS_MED"
  ms_row "e. \`run\` append-to-delivery latency, p99" "$p99" "" "" 5
  want_peer e && peer_ms "$p99" "$RSYS_P99"
  info_row "e. \`run\` append-to-delivery latency, max" "${max:-failed} ms"
  want_peer e && peer_ms "$max" "$RSYS_MAX"
elif want_peer e; then
  ROWS+=("| e'. rsyslog imfile append-to-delivery latency, median ($LAT_FILES files, $PEER_SAMPLES samples) | | | | | |")
  peer_ms "" "$RSYS_MED"
  ROWS+=("| e'. rsyslog imfile append-to-delivery latency, p99 | | | | | |")
  peer_ms "" "$RSYS_P99"
  ROWS+=("| e'. rsyslog imfile append-to-delivery latency, max | | | | | |")
  peer_ms "" "$RSYS_MAX"
fi

# ---- i. the same latency into the `file` processor (issue 10) ---------------------
# A line appended to a watched file until it is visible in OUT (not fsynced):
# `file` hands its buffer over when the reader has caught up.
if want i; then
  log "i: append-to-visible-in-OUT latency through -p file, $LAT_FILES files watched, $LAT_SAMPLES samples"
  fmed=""; fp99=""
  if [ -x "$WORK/latency" ] || cc -O2 -o "$WORK/latency" "$here/latency.c" 2>"$WORK/cc.err"; then
    "$WORK/latency" -o -f "$LAT_FILES" -n "$LAT_SAMPLES" -w "$WORK/flat" "$TIDEMARK" \
      > "$WORK/flat.out" 2> "$WORK/flat.err" || log "file latency: $(cat "$WORK/flat.out" "$WORK/flat.err" | tail -n 5)"
    l=$(grep '^latency:' "$WORK/flat.out" || true)
    if [ -n "$l" ] && ! echo "$l" | grep -q 'samples=0 '; then
      fmed=$(echo "$l" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
      fp99=$(echo "$l" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
    fi
    log "$l"
  else
    cat "$WORK/cc.err" >&2; log "could not build tests/bench/latency.c"
  fi
  ms_row "i. \`run -p file\` append-to-visible-in-OUT latency, median ($LAT_FILES files, $LAT_SAMPLES samples)" "$fmed" "" "" 1
  ms_row "i. \`run -p file\` append-to-visible-in-OUT latency, p99" "$fp99" "" "" 5
fi

# ---- f. CPU while idle ----------------------------------------------------------------
if want f; then
  IDLE_TREE=$BENCH_DIR/idle-$IDLE_FILES-in-$IDLE_DIRS
  gen_tree "$IDLE_TREE" "$IDLE_FILES" $(( (IDLE_FILES + IDLE_DIRS - 1) / IDLE_DIRS ))
  log "f: CPU of an idle \`run\` over $IDLE_FILES files in $IDLE_DIRS directories, ${IDLE_SECS} s"
  rm -rf "$WORK/idle-state"
  "$TIDEMARK" run -q -s "$WORK/idle-state" -p count "$IDLE_TREE" > "$WORK/idle.out" 2> "$WORK/idle.err" &
  pid=$!
  cpu=""; sw=""; hup=""
  t0=$(date +%s%N)
  if wait_delivered "$pid" "$WORK/idle-state" "$IDLE_FILES" 120; then
    log "start-up read done after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    c1=$(cpu_ns "$pid"); s1=$(ctx_switches "$pid")
    sleep "$IDLE_SECS"
    c2=$(cpu_ns "$pid"); s2=$(ctx_switches "$pid")
    cpu=$(awk -v a="$c1" -v b="$c2" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    sw=$((s2 - s1))
    # what one reconcile sweep costs (SIGHUP; the safety net does one a minute)
    kill -HUP "$pid"; sleep 1
    c3=$(cpu_ns "$pid")
    hup=$(awk -v a="$c2" -v b="$c3" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  fi
  stop_run "$pid"
  [ "$rc" = 0 ] || { cat "$WORK/idle.err" >&2; log "idle run exited $rc after SIGTERM"; }
  grep -q "files=$IDLE_FILES " "$WORK/idle.out" || log "WARNING: idle run: $(cat "$WORK/idle.out")"
  if [ -n "$cpu" ]; then
    verdict=$(awk -v c="$cpu" 'BEGIN { print (c <= 0.1 ? "PASS" : "MISS") }')
    ROWS+=("| f. \`run\` CPU while idle, $IDLE_FILES files in $IDLE_DIRS dirs, ${IDLE_SECS} s | $cpu s | | | ≤ 0.1 s | $verdict |")
    info_row "f. \`run\` context switches while idle, ${IDLE_SECS} s (all threads)" "$sw"
    info_row "f. \`run\` CPU of one reconcile sweep (SIGHUP) of the $IDLE_FILES files" "$hup s"
  else
    ROWS+=("| f. \`run\` CPU while idle, $IDLE_FILES files in $IDLE_DIRS dirs, ${IDLE_SECS} s | failed | | | ≤ 0.1 s | MISS |")
  fi
fi

# ---- g. RSS with 100,000 tracked files --------------------------------------------
if want g; then
  RSS_TREE=$BENCH_DIR/tree-$RSS_FILES
  gen_tree "$RSS_TREE" "$RSS_FILES" 200
  log "g: RSS of \`run -p count\` over $RSS_FILES files"
  rm -rf "$WORK/rss-state"
  t0=$(date +%s%N)
  "$TIDEMARK" run -q -s "$WORK/rss-state" -p count "$RSS_TREE" > "$WORK/rss.out" 2> "$WORK/rss.err" &
  pid=$!
  hwm=""; rss=""; catchup=""; anon=""; filerss=""; fds=""
  if wait_delivered "$pid" "$WORK/rss-state" "$RSS_FILES" 600; then
    catchup=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f s", (b - a) / 1e9 }')
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status")
    filerss=$(awk '/^RssFile:/ { print $2 }' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    log "all $RSS_FILES files delivered after $catchup; VmHWM $hwm KiB, VmRSS $rss KiB" \
        "(RssAnon $anon, RssFile $filerss: the LMDB map), $fds descriptors"
  fi
  stop_run "$pid"
  [ "$rc" = 0 ] || { cat "$WORK/rss.err" >&2; log "rss run exited $rc after SIGTERM"; }
  grep -q "files=$RSS_FILES " "$WORK/rss.out" || log "WARNING: rss run: $(cat "$WORK/rss.out")"
  mib_row "g. \`run\` peak RSS (VmHWM), $RSS_FILES tracked files" "$hwm"
  mib_row "g. \`run\` RSS (VmRSS) once all are delivered" "$rss"
  [ -n "$anon" ] && info_row "g. of which anonymous / file-backed (the LMDB map); descriptors held" \
    "$(awk -v a="$anon" -v f="$filerss" 'BEGIN { printf "%.1f / %.1f MiB", a / 1024, f / 1024 }'); $fds"
  info_row "g. \`run\` start-up read of $RSS_FILES files (status polled every 1 s)" "${catchup:-failed}"
fi

# ---- h. whole mode: a first once over 20,000 small files ------------------------
if want h; then
  log "h: first \`once -m whole -p count\` over $NFILES files vs find | xargs cat"
  # the files must be older than --settle-ms (default 1000), or once waits
  # for them: wait out a tree generated a moment ago
  if [ -n "$(find "$TREE" -type f -newermt '-2 seconds' -print -quit)" ]; then sleep 2; fi
  fresh_whole() { rm -rf "$WORK/state-whole"; }
  find "$TREE" -type f | xargs cat > /dev/null
  best nothing sh -c 'find "$1" -type f | xargs cat > /dev/null' _ "$TREE"; base_h=$BEST
  if best fresh_whole "$TIDEMARK" once -q -m whole -s "$WORK/state-whole" -p count "$TREE"; then
    tdm_h=$BEST
    "$TIDEMARK" once -q -m whole -s "$WORK/state-whole" -p count "$TREE" > "$WORK/whole2.out" 2>/dev/null || true
    grep -q "bytes=0" "$WORK/whole2.out" || log "WARNING: a second whole-mode once delivered bytes: $(cat "$WORK/whole2.out")"
    fresh_whole
    "$TIDEMARK" once -q -m whole -s "$WORK/state-whole" -p count "$TREE" > "$WORK/whole.out" 2>/dev/null || true
    tree_bytes=$(find "$TREE" -type f -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    grep -q "files=$NFILES .*bytes=$tree_bytes" "$WORK/whole.out" ||
      log "WARNING: whole-mode once over the tree: $(cat "$WORK/whole.out") (want files=$NFILES, bytes=$tree_bytes)"
    fresh_whole
    row "h. first \`once -m whole -p count\`, $NFILES small files" "$tdm_h" "$base_h" "\`find \\| xargs cat\`" 3
  else
    ROWS+=("| h. first \`once -m whole -p count\`, $NFILES small files | failed | $(printf '%.3f s' "$base_h") (\`find \\| xargs cat\`) | | ≤ 3x | MISS |")
  fi
fi

# ---- the table ---------------------------------------------------------------------
echo
echo "tidemark $("$TIDEMARK" --version 2>/dev/null | awk '{ print $NF }') · $(nproc) cores · $(uname -sr) · a–c, h best of $RUNS, e–g one run · $(date -u +%Y-%m-%dT%H:%MZ)"
echo
if [ "$PEER" != 0 ]; then
  echo "| workload | tidemark | baseline | ratio | target | result | rsyslog imfile (peer, same run) | tidemark / rsyslog |"
  echo "|---|---|---|---|---|---|---|---|"
  for i in "${!ROWS[@]}"; do printf '%s%s\n' "${ROWS[$i]}" "${PEERS[$i]:- | |}"; done
else
  echo "| workload | tidemark | baseline | ratio | target | result |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
fi
exit 0
