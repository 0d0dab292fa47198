#!/usr/bin/env bash
# Whole mode, a failing exec handler: it exits 3 for *.bad and kills itself
# for *.sig (and exits 4 for *.fail, under run); with retries=2,backoff-ms=50
# each such file is tried 3 times (the waits between tries at least 50 then
# 100 ms), then is "failed" in status with attempts 3, exit_status 3 (4) and
# an error; the other files are handled once and done; the child's stdout
# and stderr reach tidemark's stderr prefixed "tidemark: exec: PATH: ". A
# second run leaves failed files alone; `reset PATH` with a fixed handler
# makes just that file handled again, and a reset done file is handled again.
source "$(dirname "$0")/lib.sh"

D=$T/drop; S=$T/state; LOG=$T/handled; TRIES=$T/tries
mkdir -p "$D"
make_handler "$T/ok.sh" "$LOG"
# handler.sh: logs every try ("MS HEXPATH"), then fails for *.bad (exit 3,
# a message on stderr) and *.sig (SIGKILL), else runs ok.sh
cat > "$T/handler.sh" <<H
#!/bin/sh
eval "p=\\\${\$#}"
printf '%s %s\\n' "\$(date +%s%3N)" "\$(printf '%s' "\$p" | od -An -v -tx1 | tr -d ' \\n')" >> '$TRIES'
case "\$p" in
  *.bad) echo "cannot load this one" >&2; exit 3 ;;
  *.fail) exit 4 ;;
  *.sig) kill -KILL \$\$ ;;
esac
echo "loaded fine"
exec '$T/ok.sh' "\$@"
H
chmod +x "$T/handler.sh"
P="exec:cmd=$T/handler.sh,retries=2,backoff-ms=50,jobs=2"

: > "$T/want"
for i in 1 2 3 4 5 6; do printf 'good file %d\n' "$i" > "$D/good$i.csv"; want_entry "$D/good$i.csv" >> "$T/want"; done
printf 'broken 1\n' > "$D/one.bad"; printf 'broken 2\n' > "$D/two.bad"
printf 'dies\n' > "$D/three.sig"

say "once: failing files are retried, then failed; the others done"
assert_exit 1 "$TIDEMARK" once -m whole --settle-ms 100 -s "$S" -p "$P" "$D"
cp "$STDERR" "$T/once1.err"
assert_handled_once "$LOG" "$T/want" "good files"
for f in one.bad two.bad three.sig; do
  assert_eq "$(awk -v h="$(hexstr "$D/$f")" '$2 == h' "$TRIES" | wc -l)" 3 "tries of $f (1 + retries=2)"
done
say "the waits between tries follow backoff-ms=50, doubling"
for f in one.bad two.bad three.sig; do
  awk -v h="$(hexstr "$D/$f")" '$2 == h { print $1 }' "$TRIES" | sort -n > "$T/ts"
  gaps=$(awk 'NR > 1 { printf "%d ", $1 - prev } { prev = $1 }' "$T/ts")
  echo "  $f: gaps between tries (ms): $gaps"
  read -r g1 g2 <<<"$gaps"
  [ "$g1" -ge 45 ] && [ "$g2" -ge 90 ] || fail "$f: tries $gaps ms apart, want >= 50 then >= 100"
  [ "$g2" -lt 5000 ] || fail "$f: the second wait took $g2 ms"
done

say "status: failed with attempts, exit status and an error; the others done"
status_json "$S"
for f in one.bad two.bad; do
  assert_eq "$(jfile state "$D/$f")" failed "state of $f"
  assert_eq "$(jfile attempts "$D/$f")" 3 "attempts of $f"
  assert_eq "$(jfile exit_status "$D/$f")" 3 "exit_status of $f"
  e=$(jfile error "$D/$f")
  [ -n "$e" ] && [ "$e" != null ] || fail "$f: no error in status"
  echo "  $f: error: $e"
done
assert_eq "$(jfile state "$D/three.sig")" failed "state of three.sig"
assert_eq "$(jfile attempts "$D/three.sig")" 3 "attempts of three.sig"
e=$(jfile error "$D/three.sig")
[ -n "$e" ] && [ "$e" != null ] || fail "three.sig: no error in status"
echo "  three.sig: error: $e, exit_status $(jfile exit_status "$D/three.sig")"
assert_eq "$(jstate_count done)" 6 "files done"

say "the log names the failed files; the child's stderr and stdout are prefixed with its file"
for f in one.bad two.bad three.sig; do assert_contains "$T/once1.err" "$D/$f"; done
assert_contains "$T/once1.err" "tidemark: exec: $D/one.bad: cannot load this one"
assert_contains "$T/once1.err" "tidemark: exec: $D/good1.csv: loaded fine"

say "a second once leaves the failed files alone"
tries_before=$(lines_in "$TRIES")
assert_exit 0,1 "$TIDEMARK" once -m whole --settle-ms 100 -s "$S" -p "$P" "$D"
assert_eq "$(lines_in "$TRIES")" "$tries_before" "handler calls in a second once"
status_json "$S"
assert_eq "$(jfile state "$D/one.bad")" failed "state of one.bad after a second once"

say "fix the handler, reset one.bad: handled once, the other failed file still failed"
sed -i 's/^  \*\.bad).*$/  *.bad) ;;/' "$T/handler.sh"
tdm reset -s "$S" "$D/one.bad"
want_entry "$D/one.bad" >> "$T/want"
assert_exit 0,1 "$TIDEMARK" once -m whole --settle-ms 100 -s "$S" -p "$P" "$D"
assert_handled_once "$LOG" "$T/want" "after reset of one.bad"
status_json "$S"
assert_eq "$(jfile state "$D/one.bad")" done "state of one.bad after reset"
assert_eq "$(jfile state "$D/two.bad")" failed "state of two.bad (not reset)"
assert_eq "$(jfile state "$D/good1.csv")" done "state of good1.csv"

say "reset a done file: handled again"
tdm reset -s "$S" "$D/good1.csv"
want_entry "$D/good1.csv" >> "$T/want"
assert_exit 0,1 "$TIDEMARK" once -m whole --settle-ms 100 -s "$S" -p "$P" "$D"
[ "$(handled_times "$LOG" "$(hexstr "$D/good1.csv")")" -eq 2 ] || fail "good1.csv handled $(handled_times "$LOG" "$(hexstr "$D/good1.csv")") times after its reset, want 2 in all"
status_json "$S"
assert_eq "$(jfile state "$D/good1.csv")" done "state of good1.csv after its reset"

say "run: a failing file dropped while running is failed, a good one done"
run_bg "$T/run.out" -m whole --settle-ms 300 -s "$S" -p "$P" "$D"
printf 'broken 4\n' > "$T/four.fail"; mv "$T/four.fail" "$D/"
printf 'good 7\n' > "$T/good7.csv"; mv "$T/good7.csv" "$D/"
wait_for 15 bash -c '"$1" status -s "$2" --json | jq -e --arg p "$3" "[.files[] | select(.path == \$p and .state == \"failed\")] | length == 1"' \
  _ "$TIDEMARK" "$S" "$D/four.fail"
wait_for 15 grep -q "$(hexstr "$D/good7.csv")" "$LOG"
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit status of run after SIGTERM"
assert_eq "$(awk -v h="$(hexstr "$D/four.fail")" '$2 == h' "$TRIES" | wc -l)" 3 "tries of four.fail under run"
status_json "$S"
assert_eq "$(jfile exit_status "$D/four.fail")" 4 "exit_status of four.fail"
assert_eq "$(jfile attempts "$D/four.fail")" 3 "attempts of four.fail"
assert_eq "$(jfile state "$D/good7.csv")" done "state of good7.csv"
assert_no_sanitizer "$T/run.err"

pass
