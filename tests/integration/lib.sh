# lib.sh: sourced by every tests/integration/test-*.sh.
#
# Environment (set by ctest, see CMakeLists.txt; set them by hand to run a
# script alone):
#   TIDEMARK          the binary under test (required)
#   TDM_PLUGIN_DIR    where template.so lives
#   TDM_TEST_PLUGINS  bad_abi/, too_small/, no_symbol/, good/ test plugins
#   TDM_KEEP=1        keep the temporary directory even on success
#   TDM_TSAN=1        a ThreadSanitizer build (memory figures are not
#                     compared); TSAN_OPTIONS names tests/tsan.supp
#
# Each test gets its own directory $T (removed on success, kept and printed on
# failure). Helpers:
#   fail MSG                   stop the test with MSG
#   skip MSG                   stop the test as skipped (exit 77)
#   have_strace                strace is installed and may trace here
#   say MSG                    print what is being checked
#   assert_eq A B MSG          A and B are equal strings
#   assert_file_eq A B         files A and B are byte-identical (cmp)
#   assert_contains FILE STR   FILE contains the fixed string STR
#   assert_not_contains FILE STR
#   assert_exit CODE CMD...    run CMD (under a timeout) with stdout in
#                              $STDOUT and stderr in $STDERR; CODE is an exit
#                              status, a comma list ("1,2") or "nonzero". An
#                              exit >= 128 (death by a signal) or 124 (timed
#                              out) fails unless CODE names it.
#   tdm ARGS...                assert_exit 0 "$TIDEMARK" ARGS...
#   wait_for SECONDS CMD...    poll CMD until it succeeds; fail after SECONDS
#   status_json STATE          `tidemark status --json` into $T/status.json,
#                              checked to be valid JSON
#   jfile FIELD PATH           FIELD of the file entry whose path is PATH in
#                              $T/status.json ("" when absent; the file
#                              there before a ghost of it at the same path)
#   jcount                     number of file entries in $T/status.json
#   bookmark_of STATE PATH     the bookmark of PATH in `status --json` of
#                              STATE (status_json), 0 when absent or when
#                              STATE holds no store yet
#   status_quiet STATE         `tidemark status --json` into $T/st.json,
#                              without failing the test: returns non-zero
#                              when status fails (for wait_for predicates)
#   field_is STATE PATH FIELD VALUE
#                              status_quiet, then FIELD of the entry of PATH
#                              is VALUE (a wait_for predicate)
#   fsize FILE                 size in bytes
#   gen_lines FIRST LAST       lines "NNNNNNNNN payload" of varied length
#   hold_lock FILE             a background process holds flock(FILE)
#                              ($LOCK_PID) until release_lock
# Background processes (`tidemark run`, load generators):
#   now_ms                     a monotonic-enough clock in milliseconds
#   run_bg OUT ARGS...         start `$TIDEMARK run ARGS...` in the background,
#                              stdout to OUT, stderr appended to $T/run.err;
#                              its pid in $RUN_PID (with RUN_NOFILE=N set, under
#                              `ulimit -n N`)
#   is_running PID             PID exists and is not a zombie
#   stop_bg PID [SIG]          send SIG (TERM), wait for the exit: $STOP_RC
#                              (its exit status) and $STOP_MS (signal to exit);
#                              fails when it is still alive after
#                              $TDM_STOP_TIMEOUT s (then kills it with -9)
#   kill9_bg PID               kill -9 PID and reap it; fails unless it died
#                              of the signal (or had exited 0)
#   lines_in FILE              number of lines in FILE (0 when missing)
#   wait_delivered FILE N SECS PID LABEL
#                              wait_lines FILE N SECS PID, then print
#                              "  LABEL: delivered after MS ms"
#   wait_lines FILE N SECS [PID]
#                              poll until FILE holds >= N lines; fail after
#                              SECS, or at once when PID is no longer running
#   assert_lines_once WANT GOT [MSG]
#                              GOT holds exactly the lines of WANT, in any
#                              order: none missing, none duplicated, no others
#   assert_no_sanitizer FILE   FILE (a stderr log) holds no sanitizer report
#                              (ASan, LSan, UBSan, ThreadSanitizer; so does
#                              every assert_exit)
#   need_helper VAR            the helper program named by $VAR (TDM_WRITER,
#                              TDM_HOST: set by ctest) is executable, else fail

set -euo pipefail
export LC_ALL=C

: "${TIDEMARK:?set TIDEMARK to the tidemark binary}"
[ -x "$TIDEMARK" ] || { echo "FAIL: TIDEMARK=$TIDEMARK is not executable" >&2; exit 1; }
command -v jq >/dev/null || { echo "FAIL: jq is required" >&2; exit 1; }
TDM_PLUGIN_DIR=${TDM_PLUGIN_DIR:-}
TDM_TEST_PLUGINS=${TDM_TEST_PLUGINS:-}
# Longest any single command may run (a hang is a failure, not a stuck suite).
TDM_CMD_TIMEOUT=${TDM_CMD_TIMEOUT:-120}

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/tdm-${TEST_NAME}.XXXXXX")
T=$(realpath "$T")
STDOUT=$T/.stdout
STDERR=$T/.stderr
# Background processes a test starts (informational; the EXIT trap kills the
# shell's unreaped jobs by pid).
TDM_BG_PIDS=()

_tdm_exit() {
  local rc=$?
  local p
  # Only background jobs of this shell that are still unreaped (jobs -p), so
  # a pid that finished and was reused by someone else is never signalled.
  for p in $(jobs -p); do
    kill -9 "$p" 2>/dev/null || true
    { wait "$p"; } 2>/dev/null || true
  done
  if { [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; } && [ -z "${TDM_KEEP:-}" ]; then
    rm -rf "$T"
  else
    [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && echo "FAILED ($TEST_NAME, exit $rc); files kept in $T" >&2
    [ "$rc" -eq 0 ] && echo "files kept in $T" >&2
  fi
  exit "$rc"
}
trap _tdm_exit EXIT
trap 'exit 130' INT TERM

say() { printf '== %s\n' "$*"; }

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  if [ -s "$STDERR" ]; then
    echo "--- stderr of the last command (tail):" >&2
    tail -n 20 "$STDERR" >&2
  fi
  if [ -s "$T/run.err" ]; then
    echo "--- stderr of the background runs, \$T/run.err (tail):" >&2
    tail -n 30 "$T/run.err" >&2
  fi
  exit 1
}

skip() {
  printf 'SKIP: %s\n' "$*"
  exit 77
}

have_strace() {
  command -v strace >/dev/null 2>&1 && strace -f -o /dev/null true >/dev/null 2>&1
}

assert_eq() {
  [ "$1" == "$2" ] || fail "${3:-values differ}: expected [$2], got [$1]"
}

assert_file_eq() {
  [ -e "$1" ] || fail "missing file $1"
  [ -e "$2" ] || fail "missing file $2"
  if ! cmp "$1" "$2" >/dev/null 2>&1; then
    echo "--- cmp $1 $2:" >&2
    cmp "$1" "$2" >&2 || true
    echo "--- sizes: $(stat -c %s "$1") vs $(stat -c %s "$2")" >&2
    if [ "$(stat -c %s "$1")" -lt 4096 ] && [ "$(stat -c %s "$2")" -lt 4096 ]; then
      diff <(od -c "$1") <(od -c "$2") | head -n 40 >&2 || true
    fi
    fail "${3:-files differ}: $1 vs $2"
  fi
}

assert_contains() {
  grep -qF -- "$2" "$1" || { echo "--- $1:" >&2; head -c 2000 "$1" >&2; fail "${3:-$1 does not contain [$2]}"; }
}

assert_not_contains() {
  ! grep -qF -- "$2" "$1" || { echo "--- $1:" >&2; head -c 2000 "$1" >&2; fail "${3:-$1 contains [$2]}"; }
}

# What a sanitizer build writes on stderr when it finds something: ASan,
# LSan, UBSan (TDM_SANITIZE), a data race or other report of TSan (TDM_TSAN).
TDM_SANITIZER_RE='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |WARNING: ThreadSanitizer|(ERROR|FATAL): ThreadSanitizer'

# assert_exit CODE CMD...
LAST_EXIT=0
assert_exit() {
  local want=$1; shift
  local rc=0
  timeout -k 5 "$TDM_CMD_TIMEOUT" "$@" >"$STDOUT" 2>"$STDERR" </dev/null || rc=$?
  LAST_EXIT=$rc
  # A sanitizer build (.ci/run) reports memory errors, leaks and data races
  # on stderr; they fail the test whatever the exit status was expected to be.
  if grep -qE "$TDM_SANITIZER_RE" "$STDERR" 2>/dev/null; then
    fail "sanitizer report from: $(printf '%q ' "$@")"
  fi
  local ok=0
  case "$want" in
    nonzero) [ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] && ok=1 ;;
    *) local c
       IFS=, read -r -a _codes <<<"$want"
       for c in "${_codes[@]}"; do [ "$rc" -eq "$c" ] && ok=1; done ;;
  esac
  if [ "$ok" -eq 0 ]; then
    local why="exit $rc"
    [ "$rc" -eq 124 ] && why="timed out after ${TDM_CMD_TIMEOUT}s"
    [ "$rc" -gt 128 ] && why="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
    fail "expected exit $want, got $why: $(printf '%q ' "$@")"
  fi
}

tdm() { assert_exit 0 "$TIDEMARK" "$@"; }

wait_for() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${secs}s waiting for: $*"
    sleep 0.05
  done
}

status_json() {
  assert_exit 0 "$TIDEMARK" status -s "$1" --json
  cp "$STDOUT" "$T/status.json"
  jq -e 'type == "object"' "$T/status.json" >/dev/null ||
    fail "status --json is not one JSON object: $(head -c 500 "$T/status.json")"
}

# The entry of PATH: the file there now before any record of one that was
# there and is gone (the ghost of a truncation or a rewrite; a whole-mode
# file kept until --forget-after).
JQ_ENTRY='[.files[] | select(.path == $p)] | map(select(.state != "gone")) + map(select(.state == "gone"))'

jfile() {
  jq -r --arg p "$2" --arg f "$1" \
    "$JQ_ENTRY"' | if length == 0 then "" else (.[0][$f] | tostring) end' \
    "$T/status.json"
}

jcount() { jq '.files | length' "$T/status.json"; }

bookmark_of() {
  [ -f "$1/data.mdb" ] || { echo 0; return; }
  status_json "$1"
  local b; b=$(jfile bookmark "$2"); echo "${b:-0}"
}

status_quiet() { "$TIDEMARK" status -s "$1" --json > "$T/st.json" 2>/dev/null; }

field_is() {
  status_quiet "$1" || return 1
  [ "$(jq -r --arg p "$2" --arg f "$3" "$JQ_ENTRY"' | if length == 0 then empty else .[0][$f] end' "$T/st.json")" = "$4" ]
}

fsize() { stat -c %s "$1"; }

# Lines of varied length (10..~190 bytes), each starting with its number.
gen_lines() {
  seq "$1" "$2" | awk 'BEGIN { s = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                               s = s s s }
                       { printf "%09d %s\n", $1, substr(s, 1, ($1 * 7919) % 181) }'
}

hold_lock() {
  # The subshell takes the lock on fd 9, then becomes `sleep`, which keeps
  # fd 9 (and so the lock) until it is killed by its pid.
  ( flock -x 9 && exec sleep 60 ) 9>>"$1" >/dev/null 2>&1 &
  LOCK_PID=$!
  TDM_BG_PIDS+=("$LOCK_PID")
  wait_for 10 bash -c '! flock -n "$1" true' _ "$1"
}

release_lock() {
  kill "$LOCK_PID" 2>/dev/null || true
  wait "$LOCK_PID" 2>/dev/null || true
}

pass() { echo "PASS"; }

# ---- background processes ----------------------------------------------------
# Helper programs built beside the binary (tests/integration/CMakeLists.txt);
# ctest sets these, the defaults find them in a build tree.
TDM_WRITER=${TDM_WRITER:-$(dirname "$TIDEMARK")/tests/integration/tdm-writer}
TDM_HOST=${TDM_HOST:-$(dirname "$TIDEMARK")/tests/integration/tdm-host}
# Longest a stopped process may take to exit before the test fails.
TDM_STOP_TIMEOUT=${TDM_STOP_TIMEOUT:-10}

need_helper() {
  local v=$1
  [ -x "${!v}" ] || fail "$v=${!v} is not an executable (build the tests first)"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

run_bg() {
  local out=$1; shift
  echo "--- $(date +%T.%N | cut -c1-12) run $*" >> "$T/run.err"
  if [ -n "${RUN_NOFILE:-}" ]; then
    ( ulimit -n "$RUN_NOFILE" && exec "$TIDEMARK" run "$@" ) >"$out" 2>>"$T/run.err" </dev/null &
  else
    "$TIDEMARK" run "$@" >"$out" 2>>"$T/run.err" </dev/null &
  fi
  RUN_PID=$!
  TDM_BG_PIDS+=("$RUN_PID")
}

is_running() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

STOP_RC=0
STOP_MS=0
stop_bg() {
  local pid=$1 sig=${2:-TERM} t0 end
  t0=$(now_ms)
  kill -s "$sig" "$pid" 2>/dev/null || true
  end=$((t0 + TDM_STOP_TIMEOUT * 1000))
  while is_running "$pid"; do
    if [ "$(now_ms)" -ge "$end" ]; then
      kill -9 "$pid" 2>/dev/null || true
      { wait "$pid"; } 2>/dev/null || true
      fail "pid $pid still running ${TDM_STOP_TIMEOUT}s after SIG$sig"
    fi
    sleep 0.01
  done
  STOP_MS=$(( $(now_ms) - t0 ))
  STOP_RC=0
  { wait "$pid"; } 2>/dev/null || STOP_RC=$?
}

kill9_bg() {
  local rc=0
  kill -9 "$1" 2>/dev/null || true
  { wait "$1"; } 2>/dev/null || rc=$?
  [ "$rc" -eq 137 ] || [ "$rc" -eq 0 ] || fail "pid $1 exited $rc (neither killed by -9 nor successful)"
}

lines_in() {
  if [ -e "$1" ]; then wc -l < "$1"; else echo 0; fi
}

# kill9_on_trigger PROG: write PROG, an `exec` consumer (fed through its
# stdin) that appends each line to $T/seen and, when it reads the line
# TRIGGER while $T/arm exists, removes $T/arm and kills tidemark (its parent)
# with -9, leaving the lines after it unread in its pipe: a kill -9 placed at
# an exact record.
kill9_on_trigger() {
  cat > "$1" <<EOF
#!/usr/bin/env bash
while IFS= read -r l; do
  printf '%s\n' "\$l" >> "$T/seen"
  if [ "\$l" = TRIGGER ] && [ -e "$T/arm" ]; then
    rm -f "$T/arm"
    kill -9 "\$PPID"
    sleep 30
  fi
done
EOF
  chmod +x "$1"
}

wait_lines() {
  local file=$1 n=$2 secs=$3 pid=${4:-}
  local end=$((SECONDS + secs)) have
  while :; do
    have=$(lines_in "$file")
    [ "$have" -ge "$n" ] && return 0
    if [ -n "$pid" ] && ! is_running "$pid"; then
      fail "tidemark (pid $pid) exited while waiting for $n lines in $file (has $have)"
    fi
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${secs}s waiting for $n lines in $file (has $have)"
    sleep 0.05
  done
}

wait_delivered() {
  local t0; t0=$(now_ms)
  wait_lines "$1" "$2" "$3" "$4"
  echo "  $5: delivered after $(( $(now_ms) - t0 )) ms"
}

assert_lines_once() {
  local want=$1 got=$2 msg=${3:-lines}
  local ws=$T/.want.sorted gs=$T/.got.sorted dups missing extra
  sort "$want" > "$ws"
  sort "$got" > "$gs"
  cmp -s "$ws" "$gs" && return 0
  dups=$(uniq -d "$gs" | wc -l)
  missing=$(comm -23 "$ws" "$gs" | wc -l)
  extra=$(comm -13 "$ws" "$gs" | wc -l)
  {
    echo "--- $msg: expected $(wc -l < "$ws") lines, got $(wc -l < "$gs"):" \
         "$missing missing, $extra extra (of which $dups distinct lines duplicated)"
    echo "--- first missing:"; comm -23 "$ws" "$gs" | head -n 5 || true
    echo "--- first extra:"; comm -13 "$ws" "$gs" | head -n 5 || true
  } >&2
  fail "$msg: not every line exactly once ($missing missing, $extra extra)"
}

assert_no_sanitizer() {
  if [ -f "$1" ] && grep -qE "$TDM_SANITIZER_RE" "$1"; then
    grep -E -A 40 "$TDM_SANITIZER_RE" "$1" | head -n 80 >&2
    fail "sanitizer report in $1"
  fi
}

# ---- whole mode (-m whole, the exec processor) -------------------------------
# Handlers are /bin/sh scripts that tidemark runs directly (never through a
# shell); they log what they saw, and the tests compare that with the sources.
#   hexstr STR                 STR as lowercase hex on one line (how handlers
#                              log paths: names may hold newlines)
#   make_handler SCRIPT LOG [SLEEP_S]
#                              write an executable #!/bin/sh handler for
#                              `-p exec:cmd=SCRIPT`. Each call appends to LOG
#                              one line "SHA256 SIZE ENV_SIZE ENV_HASH HEXPATH
#                              ENVOK NARGS": SHA256 and SIZE of the file named
#                              by its last argument as it read it, the values
#                              of TIDEMARK_SIZE and TIDEMARK_HASH, HEXPATH that
#                              argument, ENVOK "env-ok" when TIDEMARK_PATH
#                              equals it, NARGS its argument count. It first
#                              appends "HEXPATH" to LOG.start, then sleeps
#                              SLEEP_S seconds (if given) before reading.
#   want_entry FILE [PATH]     the line "SHA256 SIZE HEXPATH" a handler logs
#                              for FILE (given to it as PATH, default FILE)
#   assert_handled_once LOG WANT [MSG]
#                              the handler log LOG holds exactly the entries
#                              of WANT (want_entry lines), each once, and every
#                              call saw TIDEMARK_PATH/_SIZE right and a 32-hex
#                              TIDEMARK_HASH
#   handled_times LOG HEXPATH  how many calls in LOG got HEXPATH
#   whole_hashes_match LOG     the TIDEMARK_HASH values of LOG are exactly the
#                              content_hash values of the done files in
#                              $T/status.json (call status_json first)
#   handled_hash LOG HEXPATH   the TIDEMARK_HASH of the last call in LOG that
#                              got HEXPATH
#   jstate_count STATE         number of files in $T/status.json in STATE
#   make_old FILE...           set mtimes a minute back (settled at once)
hexstr() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; echo; }

make_handler() {
  local script=$1 log=$2 sl=${3:-}
  cat > "$script" <<HANDLER
#!/bin/sh
# test handler (lib.sh make_handler): logs what it was given
eval "p=\\\${\$#}"
hp=\$(printf '%s' "\$p" | od -An -v -tx1 | tr -d ' \\n')
printf '%s\\n' "\$hp" >> '$log.start'
${sl:+sleep $sl}
sum=\$(sha256sum < "\$p" | cut -d' ' -f1)
size=\$(stat -c %s -- "\$p")
ok=env-bad
[ "\$TIDEMARK_PATH" = "\$p" ] && ok=env-ok
printf '%s %s %s %s %s %s %s\\n' "\$sum" "\$size" "\${TIDEMARK_SIZE:-unset}" "\${TIDEMARK_HASH:-unset}" "\$hp" "\$ok" "\$#" >> '$log'
HANDLER
  chmod +x "$script"
}

want_entry() {
  printf '%s %s %s\n' "$(sha256sum < "$1" | cut -d' ' -f1)" "$(stat -c %s -- "$1")" "$(hexstr "${2:-$1}")"
}

assert_handled_once() {
  local log=$1 want=$2 msg=${3:-handled files} bad
  [ -e "$log" ] || : > "$log"
  awk '{ print $1, $2, $5 }' "$log" > "$T/.handled.got"
  assert_lines_once "$want" "$T/.handled.got" "$msg (sha256 size path, each once)"
  bad=$(awk '$3 != $2 || length($4) != 32 || $4 ~ /[^0-9a-f]/ || $6 != "env-ok"' "$log" | sed -n 1,5p)
  assert_eq "$bad" "" "$msg: calls with a wrong TIDEMARK_SIZE, TIDEMARK_HASH or TIDEMARK_PATH"
}

handled_times() {
  [ -e "$1" ] || { echo 0; return; }
  awk -v h="$2" '$5 == h { n++ } END { print n + 0 }' "$1"
}

whole_hashes_match() {
  awk '{ print $4 }' "$1" | sort -u > "$T/.hash.got"
  jq -r '.files[] | select(.state == "done") | .content_hash' "$T/status.json" | sort -u > "$T/.hash.want"
  if ! cmp -s "$T/.hash.got" "$T/.hash.want"; then
    diff "$T/.hash.want" "$T/.hash.got" | head -n 10 >&2 || true
    fail "TIDEMARK_HASH values the handler got differ from status' content_hash of the done files"
  fi
}

handled_hash() {
  [ -e "$1" ] || return 0
  awk -v h="$2" '$5 == h { x = $4 } END { print x }' "$1"
}

jstate_count() { jq --arg s "$1" '[.files[] | select(.state == $s)] | length' "$T/status.json"; }

make_old() { touch -d '-1 minute' -- "$@"; }

# ---- soak tests (tests/integration/soak-*.sh) ---------------------------------
#   logrotate_conf CONF LOG MODE PID
#                              write a logrotate config CONF for LOG: MODE
#                              `create` (with a postrotate `kill -HUP PID`) or
#                              `copytruncate`; rotate 50, no compression
#   logrotate_run CONF STATE   one forced rotation (logrotate -f -s STATE);
#                              fails with logrotate's message when it fails
#   rss_kb PID                 VmRSS of PID in KiB (0 when gone)
#   mount_tmpfs DIR SIZE       mount a tmpfs of SIZE (e.g. 2m) on DIR; returns
#                              1 when mounting is not permitted. Unmounted by
#                              the EXIT trap (lazily)
TDM_MOUNTS=()
logrotate_conf() {
  local conf=$1 log=$2 mode=$3 pid=${4:-}
  {
    echo "$log {"
    echo "  rotate 50"
    echo "  missingok"
    echo "  nocompress"
    echo "  ifempty"
    if [ "$mode" = create ]; then
      echo "  create"
      echo "  postrotate"
      echo "    kill -HUP $pid"
      echo "  endscript"
    else
      echo "  copytruncate"
    fi
    echo "}"
  } > "$conf"
  chmod 644 "$conf"
}

logrotate_run() {
  logrotate -f -s "$2" "$1" > "$T/.logrotate.err" 2>&1 ||
    fail "logrotate -f -s $2 $1: $(cat "$T/.logrotate.err")"
}

rss_kb() {
  awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}

mount_tmpfs() {
  mkdir -p "$1"
  mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" 2>/dev/null || return 1
  TDM_MOUNTS+=("$1")
  trap _tdm_exit_umount EXIT
}

# The EXIT trap once a test mounted something: unmount, then the usual one.
_tdm_exit_umount() {
  local rc=$?
  local p
  for p in $(jobs -p); do
    kill -9 "$p" 2>/dev/null || true
    { wait "$p"; } 2>/dev/null || true
  done
  _tdm_umount_all
  (exit "$rc")
  _tdm_exit
}

_tdm_umount_all() {
  local m
  for m in "${TDM_MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
}

# ---- nats (tests/integration/test-nats-*.sh) ---------------------------------
# A real nats-server with JetStream on loopback, its store under $T, and the
# tests' own client (tdm-jsclient, built when libnats is found).
#   need_nats                  skip unless built with libnats; fail without
#                              nats-server (CI installs it)
#   nats_start [PORT]          start `nats-server -js -sd $T/nats -a 127.0.0.1
#                              -p PORT`; without PORT the server picks a free
#                              one (-p -1) and the test reads it from its log.
#                              Sets NATS_PID, NATS_PORT, NATS_URL; waits until
#                              it accepts clients. Stopped by pid (nats_stop,
#                              nats_kill9, or the EXIT trap)
#   nats_stop / nats_kill9     SIGTERM (wait) / kill -9 the server
#   js ARGS...                 tdm-jsclient $NATS_URL ARGS... (fails the test
#                              on error); its stdout in $STDOUT
#   js_count STREAM            number of messages in STREAM
#   js_dump STREAM FILE        the messages into FILE (see jsclient.c: SEQ, id,
#                              path, offset, payload, tab-separated)
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
need_nats() {
  [ -n "${TDM_JSCLIENT:-}" ] || skip "built without libnats (libnats-dev): no nats processor"
  [ -x "$TDM_JSCLIENT" ] || fail "TDM_JSCLIENT=$TDM_JSCLIENT is not executable"
  [ -x "$NATS_SERVER" ] || fail "nats-server not found (apt-get install nats-server)"
}

nats_start() {
  local port=${1:--1} end
  mkdir -p "$T/nats"
  : > "$T/nats.log"
  "$NATS_SERVER" -js -sd "$T/nats" -a 127.0.0.1 -p "$port" >>"$T/nats.log" 2>&1 </dev/null &
  NATS_PID=$!
  TDM_BG_PIDS+=("$NATS_PID")
  end=$((SECONDS + 20))
  if [ "$port" = -1 ]; then
    until port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/nats.log" | tail -n 1) && [ -n "$port" ]; do
      is_running "$NATS_PID" || fail "nats-server exited: $(tail -n 5 "$T/nats.log")"
      [ "$SECONDS" -lt "$end" ] || fail "nats-server did not listen: $(tail -n 5 "$T/nats.log")"
      sleep 0.05
    done
  fi
  NATS_PORT=$port
  NATS_URL=nats://127.0.0.1:$port
  # ready: JetStream answers (a stream that does not exist is "Not Found")
  until { "$TDM_JSCLIENT" "$NATS_URL" count __none__ 2>&1 || true; } | grep -q "Not Found"; do
    is_running "$NATS_PID" || fail "nats-server exited: $(tail -n 5 "$T/nats.log")"
    [ "$SECONDS" -lt "$end" ] || fail "nats-server on $NATS_URL does not answer: $(tail -n 5 "$T/nats.log")"
    sleep 0.05
  done
}

nats_stop() {
  kill -TERM "$NATS_PID" 2>/dev/null || true
  { wait "$NATS_PID"; } 2>/dev/null || true
}

nats_kill9() {
  kill -9 "$NATS_PID" 2>/dev/null || true
  { wait "$NATS_PID"; } 2>/dev/null || true
}

js() { assert_exit 0 "$TDM_JSCLIENT" "$NATS_URL" "$@"; }

js_count() { js count "$1"; cat "$STDOUT"; }

js_dump() { js dump "$1"; cp "$STDOUT" "$2"; }
#   wait_count STREAM N SECS [PID]
#                              poll until STREAM holds >= N messages; fail
#                              after SECS, or when PID is no longer running
wait_count() {
  local stream=$1 n=$2 secs=$3 pid=${4:-} have end=$((SECONDS + $3))
  while :; do
    have=$("$TDM_JSCLIENT" "$NATS_URL" count "$stream" 2>/dev/null || echo 0)
    [ "$have" -ge "$n" ] && return 0
    if [ -n "$pid" ] && ! is_running "$pid"; then
      fail "tidemark (pid $pid) exited while waiting for $n messages in $stream (has $have)"
    fi
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${secs}s waiting for $n messages in $stream (has $have)"
    sleep 0.2
  done
}

# ---- postgres (tests/integration/test-postgres-*.sh) ------------------------
# A real PostgreSQL cluster of the test's own: initdb in $T/pg (owned by the
# postgres user when the test runs as root: the server refuses root),
# listening only on a unix socket in $T/pg/sock, stopped by pid.
#   need_pg                    skip unless built with libpq (the postgres
#                              plugin); fail without the server binaries
#                              (CI installs postgresql)
#   pg_start                   initdb (first time), start the server, wait
#                              until it answers. Sets PG_PID, PG_SOCK,
#                              PG_PORT, PG_URI (a libpq URI, no commas). The
#                              EXIT trap stops it
#   pg_crash                   SIGQUIT to the postmaster (what pg_ctl stop -m
#                              immediate sends: no checkpoint, recovery at the
#                              next start); waits until it is gone
#   pg_stop                    SIGINT (a fast shutdown), waits until it is gone
#   psql_q SQL                 run SQL, print the rows unaligned (fails the
#                              test on error)
#   pg_wait_rows TABLE N SECS [PID]
#                              poll until TABLE holds >= N rows; fail after
#                              SECS, or when PID is no longer running
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
need_pg() {
  [ -e "$(dirname "$TIDEMARK")/tidemark-plugins/postgres.so" ] ||
    skip "built without libpq (libpq-dev): no postgres processor"
  [ -x "$PG_BIN/initdb" ] || fail "PostgreSQL server binaries not found (apt-get install postgresql)"
  command -v psql >/dev/null || fail "psql not found (apt-get install postgresql-client)"
}

_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local end
  PG_DIR=$T/pg
  PG_SOCK=$PG_DIR/sock
  if [ ! -d "$PG_DIR/data" ]; then
    mkdir -p "$PG_SOCK"
    chmod 755 "$T"
    [ "$(id -u)" -eq 0 ] && chown -R postgres "$PG_DIR"
    _pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync \
      > "$PG_DIR/initdb.log" 2>&1 || fail "initdb: $(tail -n 5 "$PG_DIR/initdb.log")"
    # Only a socket in the test's directory: the port is part of its name
    # and cannot collide with another test's.
    PG_PORT=${PG_PORT:-$((20000 + RANDOM % 30000))}
    {
      echo "listen_addresses = ''"
      echo "port = $PG_PORT"
      echo "unix_socket_directories = '$PG_SOCK'"
      echo "shared_buffers = 32MB"
      echo "max_wal_size = 256MB"
      echo "log_min_messages = warning"
    } >> "$PG_DIR/data/postgresql.conf"
  fi
  PG_URI="postgresql:///postgres?host=$PG_SOCK&port=$PG_PORT&user=postgres"
  _pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
    > "$PG_DIR/pg_ctl.log" 2>&1 || fail "pg_ctl start: $(tail -n 5 "$PG_DIR/server.log")"
  PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
  end=$((SECONDS + 30))
  until psql "$PG_URI" -Atqc 'select 1' >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || fail "postgres on $PG_SOCK does not answer: $(tail -n 5 "$PG_DIR/server.log")"
    sleep 0.05
  done
  trap _tdm_exit_pg EXIT
}

_pg_gone() {
  local pid=$1 end=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$end" ] || { kill -9 "$pid" 2>/dev/null; fail "postgres (pid $pid) did not stop"; }
    sleep 0.05
  done
}

pg_crash() { kill -QUIT "$PG_PID" 2>/dev/null || true; _pg_gone "$PG_PID"; }
pg_stop() { kill -INT "$PG_PID" 2>/dev/null || true; _pg_gone "$PG_PID"; }

# The EXIT trap once a test started a server: stop it, then the usual one.
_tdm_exit_pg() {
  local rc=$?
  if [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -QUIT "$PG_PID" 2>/dev/null || true
    local end=$((SECONDS + 20))
    while kill -0 "$PG_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.05; done
  fi
  (exit "$rc")
  _tdm_exit
}

psql_q() {
  psql "$PG_URI" -X -Atq -v ON_ERROR_STOP=1 -c "$1" > "$T/.psql.out" 2> "$T/.psql.err" ||
    fail "psql: $1: $(cat "$T/.psql.err")"
  cat "$T/.psql.out"
}

pg_wait_rows() {
  local table=$1 n=$2 secs=$3 pid=${4:-} have end=$((SECONDS + $3))
  while :; do
    have=$(psql "$PG_URI" -X -Atqc "select count(*) from $table" 2>/dev/null || echo 0)
    [ "${have:-0}" -ge "$n" ] && return 0
    if [ -n "$pid" ] && ! is_running "$pid"; then
      fail "tidemark (pid $pid) exited while waiting for $n rows in $table (has $have)"
    fi
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${secs}s waiting for $n rows in $table (has $have)"
    sleep 0.2
  done
}
