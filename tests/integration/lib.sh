# lib.sh: sourced by every tests/integration/test-*.sh.
#
# Environment (set by ctest, see CMakeLists.txt; set them by hand to run a
# script alone):
#   TIDEMARK          the binary under test (required)
#   TDM_PLUGIN_DIR    where template.so lives
#   TDM_TEST_PLUGINS  bad_abi/, too_small/, no_symbol/, good/ test plugins
#   TDM_KEEP=1        keep the temporary directory even on success
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
#                              $T/status.json ("" when absent)
#   jcount                     number of file entries in $T/status.json
#   fsize FILE                 size in bytes
#   gen_lines FIRST LAST       lines "NNNNNNNNN payload" of varied length
#   hold_lock FILE             a background process holds flock(FILE)
#                              ($LOCK_PID) until release_lock

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

# assert_exit CODE CMD...
LAST_EXIT=0
assert_exit() {
  local want=$1; shift
  local rc=0
  timeout -k 5 "$TDM_CMD_TIMEOUT" "$@" >"$STDOUT" 2>"$STDERR" </dev/null || rc=$?
  LAST_EXIT=$rc
  # A sanitizer build (.ci/run) reports memory errors and leaks on stderr;
  # they fail the test whatever the exit status was expected to be.
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: ' "$STDERR" 2>/dev/null; then
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

jfile() {
  jq -r --arg p "$2" --arg f "$1" \
    '[.files[] | select(.path == $p)] | if length == 0 then "" else (.[0][$f] | tostring) end' \
    "$T/status.json"
}

jcount() { jq '.files | length' "$T/status.json"; }

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
