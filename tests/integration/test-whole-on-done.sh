#!/usr/bin/env bash
# Whole mode --on-done move:DIR / --on-failed move:DIR: 150 files, a handler
# that fails every file whose number ends in 7, `run` killed with -9 twice
# while it works. At the end: every file is in done/ or failed/ (the failed
# ones in failed/), none is left in the drop directory, no file whose outcome
# was durable (status after a kill) is handled again after the restart, and
# an older file of the same name already in done/ is kept (the new one gets a
# suffix). failed/ lies on another filesystem (/dev/shm) when there is one:
# copy, fsync, unlink. Then: outcomes committed without --on-done (the state
# a kill -9 between the commit and the move leaves) are acted on at the next
# start without handling the files again; --on-done delete; bad DIRs are
# exit 2 naming the option.
source "$(dirname "$0")/lib.sh"

D=$T/drop; S=$T/state; DONE=$T/done; LOG=$T/calls
FAILED=$T/failed
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$T")" ]; then
  FAILED=$(mktemp -d /dev/shm/tdm-failed.XXXXXX)
  trap 'rc=$?; rm -rf "$FAILED"; (exit $rc); _tdm_exit' EXIT
fi
mkdir -p "$D" "$DONE" "$FAILED"
dir_empty() { [ -z "$(ls -A "$1")" ]; }
calls_at_least() { [ "$(lines_in "$LOG")" -ge "$1" ]; }

# handler: logs its file's name, fails names ending in 7
cat > "$T/handler.sh" <<H
#!/bin/sh
eval "p=\\\${\$#}"
n=\$(basename "\$p")
sleep 0.\$((1 + \$\$ % 3))
echo "\$n" >> '$LOG'
case "\$n" in *7.csv) exit 3 ;; esac
exit 0
H
chmod +x "$T/handler.sh"
: > "$LOG"

for i in $(seq -w 1 150); do printf 'file %s\n' "$i" > "$D/f$i.csv"; done
echo "an older f001.csv" > "$DONE/f001.csv"
ARGS=(-m whole --settle-ms 200 --checkpoint-ms 50 -s "$S"
      -p "exec:cmd=$T/handler.sh,retries=0,jobs=4"
      --on-done "move:$DONE" --on-failed "move:$FAILED" "$D")

say "run, kill -9 twice while it works"
for k in 1 2; do
  run_bg /dev/null "${ARGS[@]}"
  wait_for 60 calls_at_least $((k * 40))
  kill9_bg "$RUN_PID"
  status_json "$S"
  at=$(lines_in "$LOG")
  jq -r '.files[] | select(.state == "done" or .state == "failed") | .path' "$T/status.json" |
    xargs -r -n1 basename | sed "s/^/$at /" >> "$T/durable"
  echo "  kill -9 #$k: $at calls, $(wc -l < "$T/durable") outcomes durable"
done
run_bg /dev/null "${ARGS[@]}"
wait_for 90 dir_empty "$D"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "every file in done/ or failed/, none left, none handled again once durable"
assert_eq "$(ls -A "$D" | wc -l)" 0 "files left in the drop directory"
nfail=$(ls "$FAILED" | wc -l); ndone=$(ls "$DONE" | wc -l)
assert_eq "$nfail" 15 "files in failed/"
assert_eq "$ndone" $((135 + 1)) "files in done/ (135 and the older f001.csv)"
assert_eq "$(ls "$FAILED" | grep -vc '7\.csv$' || true)" 0 "files in failed/ not ending in 7"
assert_eq "$(cat "$DONE/f001.csv")" "an older f001.csv" "the older f001.csv in done/"
assert_eq "$(cat "$DONE/f001.csv.1")" "file 001" "the new f001.csv, moved beside it"
for i in $(seq -w 1 150); do
  f=f$i.csv
  case $f in *7.csv) c=$(cat "$FAILED/$f") ;; f001.csv) c=$(cat "$DONE/f001.csv.1") ;; *) c=$(cat "$DONE/$f") ;; esac
  [ "$c" = "file $i" ] || fail "$f: moved content is '$c'"
done
# (a handler of the killed run still running writes its line later: only
# files in flight, never durable ones)
while read -r at f; do
  n=$(tail -n +$((at + 1)) "$LOG" | grep -cx "$f" || true)
  [ "$n" -eq 0 ] || fail "$f was durable at a kill -9 (after $at calls) but handled again $n times"
done < "$T/durable"
echo "  $(sort -u -k2 "$T/durable" | wc -l) files durable at a kill: none handled again;" \
  "$(sort "$LOG" | uniq -d | wc -l) in flight at a kill handled again (at least once)"
[ "$(sort -u "$LOG" | wc -l)" -eq 150 ] || fail "handled $(sort -u "$LOG" | wc -l) distinct files, want 150"

say "outcomes committed, not acted on (a kill -9 between commit and move): moved at the next start, not handled again"
D2=$T/drop2; S2=$T/state2; DONE2=$T/done2; mkdir -p "$D2" "$DONE2"; : > "$LOG"
for i in 1 2 3; do echo "two $i" > "$D2/g$i.csv"; done
tdm once -m whole --settle-ms 100 -s "$S2" -p "exec:cmd=$T/handler.sh" "$D2"
assert_eq "$(lines_in "$LOG")" 3 "handler calls"
assert_eq "$(ls "$D2" | wc -l)" 3 "files still in the tree"
tdm once -m whole --settle-ms 100 -s "$S2" -p "exec:cmd=$T/handler.sh" --on-done "move:$DONE2" "$D2"
assert_eq "$(lines_in "$LOG")" 3 "handler calls after the restart with --on-done"
assert_eq "$(ls "$D2" | wc -l)" 0 "files left in the tree"
assert_eq "$(ls "$DONE2" | wc -l)" 3 "files in done2/"

say "--on-done delete"
D3=$T/drop3; mkdir -p "$D3"; echo "three" > "$D3/h.csv"
tdm once -m whole --settle-ms 100 -s "$T/state3" -p "exec:cmd=$T/handler.sh" --on-done delete "$D3"
assert_eq "$(ls "$D3" | wc -l)" 0 "files left after --on-done delete"

say "bad directories: exit 2 naming the option"
assert_exit 2 "$TIDEMARK" once -m whole -s "$T/s4" --on-done "move:$T/nope" "$D3"
assert_contains "$STDERR" "--on-done"
assert_exit 2 "$TIDEMARK" once -m whole -s "$T/s4" --on-failed "move:$T/calls" "$D3"
assert_contains "$STDERR" "--on-failed"
assert_exit 2 "$TIDEMARK" once -m whole -s "$T/s4" --on-done "move:$D3/sub" "$D3" || true
mkdir -p "$D3/sub"
assert_exit 2 "$TIDEMARK" once -m whole -s "$T/s4" --on-done "move:$D3/sub" "$D3"
assert_contains "$STDERR" "inside the source"
assert_exit 2 "$TIDEMARK" once -s "$T/s4" --on-done delete "$D3"
assert_contains "$STDERR" "--on-done"
assert_exit 2 "$TIDEMARK" once -m whole -s "$T/s4" --on-done rename "$D3"
assert_contains "$STDERR" "--on-done"
pass
