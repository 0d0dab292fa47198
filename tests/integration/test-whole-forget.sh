#!/usr/bin/env bash
# Whole mode --forget-after: drops handled with --on-done delete are kept as
# "gone" until the duration has passed, then a pass drops their records
# (status --summary: 0 files, N forgotten; the store's records go) and keeps
# their hashes: the same content dropped again is a duplicate, new content is
# handled. A file done but still in the tree is never forgotten, nor a failed
# one (moved away by --on-failed: its record is dropped, its content handled
# again when dropped again). kill -9 during the forgetting of 6,000 records,
# again and again: after each, tracked + forgotten = 6,000 and the store
# passes its check; at the end nothing was handled twice. Bad durations are
# usage errors naming the option, or FILE:LINE. A quiet `run` forgets too.
source "$(dirname "$0")/lib.sh"

D=$T/drop; S=$T/state; LOG=$T/handled; FAILED=$T/failed
mkdir -p "$D" "$FAILED"
# handler.sh: logs the content it was given; fails content starting "bad"
cat > "$T/handler.sh" <<H
#!/bin/sh
eval "p=\\\${\$#}"
c=\$(cat "\$p")
echo "\$c" >> '$LOG'
case "\$c" in bad*) exit 3 ;; esac
exit 0
H
chmod +x "$T/handler.sh"
P="exec:cmd=$T/handler.sh,retries=0,jobs=2"
summary() { # summary STATE: "FILES FORGOTTEN"
  assert_exit 0 "$TIDEMARK" status -s "$1" --summary --json
  jq -r '"\(.files) \(.forgotten)"' "$STDOUT"
}
handled() { grep -cx "$1" "$LOG" || true; }

for i in $(seq 1 20); do echo "drop $i" > "$D/d$i.csv"; done

say "drops handled and deleted: kept as gone for --forget-after"
tdm once -m whole --settle-ms 0 --on-done delete --forget-after 2s -s "$S" -p "$P" "$D"
assert_eq "$(ls -A "$D")" "" "the drop directory after --on-done delete"
assert_eq "$(sort -u "$LOG" | wc -l) $(wc -l < "$LOG")" "20 20" "distinct contents handled, calls"
assert_eq "$(summary "$S")" "20 0" "files, forgotten before the duration"
status_json "$S"
assert_eq "$(jstate_count gone)" 20 "records gone"

say "a pass after the duration forgets them: 0 files, 20 forgotten"
sleep 2.1
tdm once -m whole --settle-ms 0 --on-done delete --forget-after 2s -s "$S" -p "$P" \
  --metrics-file "$T/metrics.prom" "$D"
assert_eq "$(summary "$S")" "0 20" "files, forgotten after the duration"
assert_eq "$(grep '^tidemark_files_forgotten_total ' "$T/metrics.prom")" \
  "tidemark_files_forgotten_total 20" "the metric of files forgotten"
status_json "$S"
assert_eq "$(jcount)" 0 "records in the store"
assert_exit 0 "$TIDEMARK" status -s "$S" --summary
assert_contains "$STDOUT" "20 files forgotten" "status --summary"

say "the same content again is a duplicate of a forgotten file; new content is handled"
for i in 1 2 3 4 5; do echo "drop $i" > "$D/again$i.csv"; done
for i in 1 2 3; do echo "new $i" > "$D/new$i.csv"; done
tdm once -m whole --settle-ms 0 --on-done delete --forget-after 2s -s "$S" -p "$P" "$D"
for i in 1 2 3 4 5; do assert_eq "$(handled "drop $i")" 1 "calls for 'drop $i'"; done
for i in 1 2 3; do assert_eq "$(handled "new $i")" 1 "calls for 'new $i'"; done
assert_eq "$(grep -c 'duplicate of a file handled before and forgotten' "$STDERR")" 5 \
  "duplicates of forgotten files said"
assert_eq "$(ls -A "$D")" "" "the drop directory (duplicates are deleted too)"
status_json "$S"
assert_eq "$(jq '[.files[] | select(.duplicate_of == null and .state == "gone")] | length' "$T/status.json")" 8 \
  "gone records (duplicates of forgotten files name none)"

say "--forget-after 0: forgotten in the same pass; duplicates of them too"
sleep 0.1
tdm once -m whole --settle-ms 0 --on-done delete --forget-after 0 -s "$S" -p "$P" "$D"
assert_eq "$(summary "$S")" "0 23" "files, forgotten (20 + 3 new)"

say "done but still in the tree: never forgotten; failed: never forgotten"
S2=$T/state2; D2=$T/drop2; mkdir -p "$D2"
echo "kept 1" > "$D2/k1.csv"; echo "kept 2" > "$D2/k2.csv"; echo "bad one" > "$D2/b.csv"
assert_exit 1 "$TIDEMARK" once -m whole --settle-ms 0 --forget-after 0 -s "$S2" -p "$P" "$D2"
sleep 0.1
assert_exit 0 "$TIDEMARK" once -m whole --settle-ms 0 --forget-after 0 -s "$S2" -p "$P" "$D2"
assert_eq "$(summary "$S2")" "3 0" "files, forgotten (2 done in the tree, 1 failed)"
status_json "$S2"
assert_eq "$(jstate_count done) $(jstate_count failed)" "2 1" "done, failed"
assert_eq "$(handled "bad one")" 1 "calls for the failed file (failed files are left alone)"

say "failed and moved away by --on-failed: dropped, not remembered: handled again"
assert_exit 0 "$TIDEMARK" once -m whole --settle-ms 0 --forget-after 0 --on-failed "move:$FAILED" \
  -s "$S2" -p "$P" "$D2"
assert_eq "$(ls "$FAILED")" b.csv "moved by --on-failed"
echo "bad one" > "$D2/b-again.csv"
assert_exit 1 "$TIDEMARK" once -m whole --settle-ms 0 --forget-after 0 --on-failed "move:$FAILED" \
  -s "$S2" -p "$P" "$D2"
assert_eq "$(handled "bad one")" 2 "calls for the failed content dropped again"
assert_eq "$(summary "$S2" | cut -d' ' -f2)" 0 "forgotten (failed files never are)"

say "kill -9 while 6,000 records are forgotten, again and again"
S3=$T/state3; D3=$T/drop3; OUT=$T/out; N=6000; mkdir -p "$D3"
python3 - "$D3" "$N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "f%05d" % i), "w") as f:
        f.write("content %d\n" % i)
PY
W=(-m whole --settle-ms 0 --checkpoint-ms 50 --on-done delete -s "$S3" -p "file:path=$OUT")
tdm once "${W[@]}" --forget-after 1h "$D3"
assert_eq "$(summary "$S3")" "$N 0" "files, forgotten before"
sleep 0.2
mid=0
for k in $(seq 1 40); do
  "$TIDEMARK" once -q "${W[@]}" --forget-after 100ms "$D3" 2>>"$T/kill.err" &
  pid=$!
  sleep "0.0$((k % 10))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  read -r files forgotten <<<"$(summary "$S3")"
  assert_eq "$((files + forgotten))" "$N" "tracked + forgotten after kill -9 #$k ($files + $forgotten)"
  [ "$files" -gt 0 ] && [ "$forgotten" -gt 0 ] && mid=$((mid + 1))
  [ "$files" -eq 0 ] && break
done
echo "  $k kills, $mid of them in the middle of the forgetting"
[ "$mid" -ge 1 ] || fail "no kill -9 landed in the middle of the forgetting"
tdm once "${W[@]}" --forget-after 100ms "$D3"
assert_eq "$(summary "$S3")" "0 $N" "files, forgotten at the end"
assert_eq "$(wc -l < "$OUT") $(sort -u "$OUT" | wc -l)" "$N $N" "lines handed over, distinct"
say "all of it dropped again: duplicates, nothing handed over twice"
python3 - "$D3" "$N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(0, n, 7):
    with open(os.path.join(d, "again%05d" % i), "w") as f:
        f.write("content %d\n" % i)
PY
tdm once "${W[@]}" --forget-after 100ms "$D3"
assert_eq "$(wc -l < "$OUT")" "$N" "lines handed over after the same content again"
assert_eq "$(ls -A "$D3" | wc -l)" 0 "the drop directory (duplicates deleted)"

say "run: a quiet run forgets when the duration is over, with nothing new"
S5=$T/state5; D5=$T/drop5; mkdir -p "$D5"
for i in 1 2 3; do echo "run drop $i" > "$D5/r$i.csv"; done
run_bg /dev/null -m whole --settle-ms 0 --checkpoint-ms 100 --on-done delete --forget-after 1s \
  -s "$S5" -p "$P" "$D5"
forgotten_is() { [ "$(summary "$S5")" = "0 $1" ]; }
wait_for 20 forgotten_is 3 || fail "run did not forget: $(summary "$S5")"
# dropped as loaders drop: written under a hidden name, renamed into place
echo "run drop 2" > "$D5/.a"; mv "$D5/.a" "$D5/again.csv"
echo "run drop new" > "$D5/.n"; mv "$D5/.n" "$D5/new.csv"
wait_for 20 forgotten_is 4 || fail "run did not forget the new one: $(summary "$S5")"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "run's exit status"
assert_eq "$(handled "run drop 2") $(handled "run drop new")" "1 1" "calls in run"

say "bad durations: usage errors naming the option, the value, FILE:LINE"
for v in x -1 10 1y 5.5s ""; do
  assert_exit 2 "$TIDEMARK" once -m whole -s "$T/state4" -p count --forget-after "$v" "$D"
  assert_contains "$STDERR" "--forget-after" "message for '$v'"
  [ -z "$v" ] || assert_contains "$STDERR" "'$v'" "message for '$v' names it"
done
printf 'mode = whole\n\nforget-after = 3 days\n' > "$T/bad.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/bad.ini" -s "$T/state4" -p count "$D"
assert_contains "$STDERR" "$T/bad.ini:3: forget-after: '3 days' is not a duration" "INI message"
printf 'mode = whole\nforget-after = never\n' > "$T/ok.ini"
tdm once -c "$T/ok.ini" -s "$T/state4" -p count "$D"
pass
