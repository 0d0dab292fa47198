#!/usr/bin/env bash
# One writer per state directory: while another process holds the writer lock
# (STATE/writer.lock, flock), `once` refuses with exit 1 and "in use", delivers
# nothing and changes nothing; `status` still reads. Two real tidemark
# processes racing on one state: one runs, the other is refused.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state
mkdir -p "$D"
printf 'one\n' > "$D/a.log"
tdm once -s "$S" "$D"
[ -f "$S/writer.lock" ] || fail "no $S/writer.lock after a run"

say "a held lock: once exits 1 with 'in use', delivers nothing"
printf 'two\n' >> "$D/a.log"
hold_lock "$S/writer.lock"
assert_exit 1 "$TIDEMARK" once -s "$S" "$D"
assert_contains "$STDERR" "in use"
assert_contains "$STDERR" "$(basename "$S")"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered by a refused writer"
say "the file processor's output is not touched by a refused writer"
printf 'precious\n' > "$T/out"
assert_exit 1 "$TIDEMARK" once -s "$S" -p "file:path=$T/out" "$D"
printf 'precious\n' > "$T/want"
assert_file_eq "$T/out" "$T/want"

say "status reads beside the writer"
status_json "$S"
assert_eq "$(jfile bookmark "$(realpath "$D")/a.log")" 4 "bookmark read while locked"

say "released: the next run delivers what the refused ones did not"
release_lock
tdm once -s "$S" "$D"
printf 'two\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "two tidemark processes at once: exactly one does the work"
D2=$T/d2; S2=$T/state2
mkdir -p "$D2"
gen_lines 1 400000 > "$D2/big.log"       # ~40 MB: a run takes tens of ms
"$TIDEMARK" once -s "$S2" -p "file:path=$T/race1" "$D2" >"$T/r1.out" 2>"$T/r1.err" &
p1=$!; TDM_BG_PIDS+=("$p1")
# start the second at once: whichever takes the lock first does the work
rc2=0
timeout 60 "$TIDEMARK" once -s "$S2" -p "file:path=$T/race2" "$D2" >"$T/r2.out" 2>"$T/r2.err" || rc2=$?
rc1=0; wait "$p1" || rc1=$?
echo "first exit $rc1, second exit $rc2"
[ "$rc1" -lt 124 ] && [ "$rc2" -lt 124 ] || fail "a writer crashed or hung: exits $rc1 and $rc2"
# Exactly one of them delivered the file; the other was refused ("in use")
# or, if they did not overlap, found nothing new.
r1=$(fsize "$T/race1" 2>/dev/null || echo 0); r2=$(fsize "$T/race2" 2>/dev/null || echo 0)
if [ "$r1" -gt 0 ]; then winner=1; cmp -s "$T/race1" "$D2/big.log" || fail "first writer's output differs from the input"
else winner=2; cmp -s "$T/race2" "$D2/big.log" || fail "second writer's output differs from the input"; fi
[ "$r1" -eq 0 ] || [ "$r2" -eq 0 ] || fail "both writers delivered bytes ($r1 and $r2)"
loser_rc=$([ $winner = 1 ] && echo "$rc2" || echo "$rc1")
loser_err=$([ $winner = 1 ] && echo "$T/r2.err" || echo "$T/r1.err")
winner_rc=$([ $winner = 1 ] && echo "$rc1" || echo "$rc2")
assert_eq "$winner_rc" 0 "exit of the writer that did the work"
if [ "$loser_rc" -eq 1 ]; then
  assert_contains "$loser_err" "in use"
  echo "writer $winner did the work; the other was refused while it ran"
else
  assert_eq "$loser_rc" 0 "exit of the other writer"
  echo "note: the runs did not overlap; the second found nothing new"
fi

pass
