#!/usr/bin/env bash
# `tidemark top` as a person sees it, in a real terminal (tmux), during a
# catch-up: `run` feeds a slow processor (a program reading 64 KiB every 50
# ms) from three files with a backlog while tdm-writer appends to them. On
# screen: the header (instance as `status --json` says, files, rates,
# processor state), the files sorted by bytes pending, a name with control
# characters escaped; the filter (/), the sort key (s); the screen at 60 and
# at 20 columns; q, SIGTERM and SIGINT each give the shell back its screen
# and its terminal settings; a --metrics address that does not answer is
# said on the screen. Not a terminal: a plain snapshot. Bad input: a clear
# message and exit status.
source "$(dirname "$0")/lib.sh"

command -v tmux >/dev/null || fail "tmux is required (Debian: tmux)"
need_helper TDM_WRITER
MC="python3 $(dirname "$0")/metrics_client.py"

TM="tmux -L tdm-top-$$ -f /dev/null"
_top_exit() {
  local rc=$?
  $TM kill-server >/dev/null 2>&1 || true
  set +e
  (exit "$rc")
  _tdm_exit
}
trap _top_exit EXIT

say "bad input: a clear message and a non-zero exit"
assert_exit 1 "$TIDEMARK" top -s "$T/none" --once
assert_contains "$STDERR" "no tidemark state in $T/none"
mkdir -p "$T/plain"
assert_exit 1 "$TIDEMARK" top -s "$T/plain" --once
assert_contains "$STDERR" "no tidemark state in $T/plain"
mkdir -p "$T/junk" && head -c 70000 /dev/urandom > "$T/junk/data.mdb"
assert_exit 1 "$TIDEMARK" top -s "$T/junk" --once
assert_contains "$STDERR" "$T/junk"
assert_exit 2 "$TIDEMARK" top -s "$T/junk" --metrics 9464
assert_contains "$STDERR" "--metrics"
assert_exit 2 "$TIDEMARK" top -s "$T/junk" --interval-ms 5
assert_contains "$STDERR" "--interval-ms"
assert_exit 2 "$TIDEMARK" top "$T/junk"
assert_contains "$STDERR" "'top' takes no DIR"

D=$T/d
S=$T/s
mkdir -p "$D"
cat > "$T/slow.py" <<'EOF'
import sys, time
r = sys.stdin.buffer
while r.read(65536):
    time.sleep(0.05)
EOF
gen_lines 1 10 > "$D/big.log"
gen_lines 1 10 > "$D/mid.log"
gen_lines 1 10 > "$D/small.log"
CTL=$(printf 'ctl\033[31mred\nname.log')
printf 'one line\n' > "$D/$CTL"
# Every file tracked first, then a backlog of different sizes for `run`.
tdm once -q -s "$S" -p count "$D"
gen_lines 11 60000 >> "$D/big.log"
gen_lines 11 30000 >> "$D/mid.log"
gen_lines 11 2000 >> "$D/small.log"
PORT=$($MC port)
DEAD=$($MC port)

run_bg "$T/out" -s "$S" -p "exec:cmd=/usr/bin/python3 $T/slow.py" \
  --checkpoint-ms 200 --metrics "127.0.0.1:$PORT" "$D"
"$TDM_WRITER" append -r 20000 W "$D/big.log" "$D/mid.log" "$D/small.log" \
  > /dev/null &
WRITER_PID=$!
wait_for 30 bash -c "$MC get $PORT /metrics | grep -q '^tidemark_files_tracked 4'"
status_json "$S"
INST=$(jq -r .instance "$T/status.json")

# Rows of a screen or snapshot (between the titles and the keys line) in
# bytes: the PENDING column with its unit (K, M, G: powers of 1024).
pending_column() {
  awk '/^ *PENDING /{on=1; next} on && NF > 1 && $2 != "of" && $1 ~ /^[0-9.]+[KMGT]?$/ {
         v = $1; m = 1
         if (v ~ /K$/) m = 1024; else if (v ~ /M$/) m = 1048576
         else if (v ~ /G$/) m = 1073741824
         sub(/[KMGT]$/, "", v); printf "%.0f\n", v * m }' "$1"
}
assert_sorted() {
  pending_column "$1" > "$T/col"
  [ "$(wc -l < "$T/col")" -ge "$2" ] || { cat "$1" >&2; fail "fewer than $2 file rows"; }
  sort -s -n -r "$T/col" | cmp -s - "$T/col" || { cat "$1" >&2; fail "rows not sorted by bytes pending"; }
}

say "not a terminal: one plain snapshot, sorted by bytes pending"
tdm top -s "$S" --metrics "127.0.0.1:$PORT" --interval-ms 300
cp "$STDOUT" "$T/snap"
assert_contains "$T/snap" "instance $INST"
assert_contains "$T/snap" "live: 127.0.0.1:$PORT"
assert_contains "$T/snap" 'ctl\x1b[31mred\nname.log'
assert_sorted "$T/snap" 4
if grep -q $'\033' "$T/snap"; then fail "an escape byte reached the snapshot"; fi

say "a terminal: tmux at 120x30, top started from a shell"
$TM new-session -d -s top -x 120 -y 30 "env PS1='$ ' bash --norc --noprofile"
screen() { $TM capture-pane -p -t top > "$T/screen"; }
shows() { screen; grep -qF -- "$1" "$T/screen"; }
hides() { screen; ! grep -qF -- "$1" "$T/screen"; }
line_max() { screen; awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$T/screen"; }
TOP="$TIDEMARK top -s $S --metrics 127.0.0.1:$PORT"
$TM send-keys -t top "stty -g > $T/stty.before; echo BEFORE-TOP; $TOP" Enter
wait_for 20 shows "live: 127.0.0.1:$PORT"
wait_for 20 shows "rec/s"
screen
cp "$T/screen" "$T/screen.first"
assert_contains "$T/screen" "tidemark  instance $INST"
assert_contains "$T/screen" "files 4"
assert_contains "$T/screen" "PENDING BEHIND   READ/S STATE     PATH"
assert_contains "$T/screen" "exec:cmd=/usr/bin/python3 $T/slow.py"
assert_contains "$T/screen" 'ctl\x1b[31mred\nname.log'
assert_contains "$T/screen" "4 of 4 files  sort: pending (s)"
assert_not_contains "$T/screen" "BEFORE-TOP"
assert_sorted "$T/screen" 4
say "a catch-up is on screen: bytes pending, a processor at work"
wait_for 20 bash -c "$TM capture-pane -p -t top | grep -E '^ *[0-9.]+[KM] ' | grep -q big.log"
wait_for 20 bash -c "$TM capture-pane -p -t top | grep -qE '^  ok +[0-9.]+[KM]?/s +[0-9.]+[kM]? rec/s'"
screen
cp "$T/screen" "$T/screen.catchup"
assert_sorted "$T/screen" 4

say "filter: / then a substring keeps the matching files; Esc clears it"
$TM send-keys -t top / m i d
wait_for 10 shows "filter: mid_"
screen
assert_contains "$T/screen" "$D/mid.log"
assert_not_contains "$T/screen" "$D/big.log"
$TM send-keys -t top Enter
wait_for 10 shows "1 of 4 files  sort: pending (s)  filter: mid (/, Esc)"
screen
assert_contains "$T/screen" "$D/mid.log"
assert_not_contains "$T/screen" "$D/big.log"
$TM send-keys -t top Escape
wait_for 10 shows "4 of 4 files  sort: pending"

say "sort: s goes to the next key"
$TM send-keys -t top s
wait_for 10 shows "sort: behind (s)"
$TM send-keys -t top p
wait_for 10 shows "sort: pending (s)"

say "resized to 60 columns: narrower columns, nothing past the edge"
$TM resize-window -t top -x 60 -y 30
wait_for 10 shows "PENDING STATE   PATH"
[ "$(line_max)" -le 60 ] || { cat "$T/screen" >&2; fail "a line is wider than 60 columns"; }
assert_contains "$T/screen" "tidemark  instance $INST"
assert_sorted "$T/screen" 4
say "20 columns: still readable"
$TM resize-window -t top -x 20 -y 30
wait_for 10 bash -c "$TM capture-pane -p -t top | grep -qx 'PENDING STATE   PATH'"
[ "$(line_max)" -le 20 ] || { cat "$T/screen" >&2; fail "a line is wider than 20 columns"; }
assert_contains "$T/screen" "tidemark  instance"
$TM resize-window -t top -x 120 -y 30
wait_for 10 shows "PENDING BEHIND"

say "q: the shell's screen and terminal settings are back"
$TM send-keys -t top q
wait_for 10 shows "BEFORE-TOP"
hides "PENDING" || { cat "$T/screen" >&2; fail "top's screen is still there after q"; }
$TM send-keys -t top "stty -g > $T/stty.after" Enter
wait_for 10 test -s "$T/stty.after"
assert_file_eq "$T/stty.before" "$T/stty.after"

for how in TERM INT; do
  say "SIG$how: the terminal is restored too"
  rm -f "$T/stty.after" "$T/top.pid"
  $TM send-keys -t top "clear; echo BEFORE-$how; sh -c 'echo \$\$ > $T/top.pid; exec $TOP'" Enter
  wait_for 20 shows "PENDING BEHIND"
  if [ "$how" = TERM ]; then
    kill -TERM "$(cat "$T/top.pid")"
  else
    $TM send-keys -t top C-c
  fi
  wait_for 10 shows "BEFORE-$how"
  hides "PENDING" || { cat "$T/screen" >&2; fail "top's screen is still there after SIG$how"; }
  $TM send-keys -t top "stty -g > $T/stty.after" Enter
  wait_for 10 test -s "$T/stty.after"
  assert_file_eq "$T/stty.before" "$T/stty.after"
done

say "a --metrics address that does not answer: said on the screen"
$TM send-keys -t top "clear; $TIDEMARK top -s $S --metrics 127.0.0.1:$DEAD" Enter
wait_for 20 shows "metrics 127.0.0.1:$DEAD: not answering"
assert_contains "$T/screen" "big.log"
$TM send-keys -t top q
wait_for 10 hides "PENDING"
assert_exit 1 "$TIDEMARK" top -s "$S" --metrics "127.0.0.1:$DEAD" --interval-ms 100
assert_contains "$STDERR" "--metrics 127.0.0.1:$DEAD: not answering"
assert_contains "$STDOUT" "instance $INST"

kill "$WRITER_PID"
wait "$WRITER_PID" 2>/dev/null || true
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run's exit status"
assert_no_sanitizer "$T/run.err"
pass
