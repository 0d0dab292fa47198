#!/usr/bin/env bash
# copytruncate with the copies included, the copy met only after a restart:
# what the truncated file was (its head, bookmark and marker) is kept in the
# store with the truncation, so that the copy (app.log.1), met by the next
# tidemark, continues from that bookmark (only the tail unread at the
# truncation arrives from it) and is delivered once, also when it is
# compressed first (logrotate's compress), after two truncations in a row,
# when the original was refilled past its old bookmark before it was seen,
# under kill -9 between the truncation's checkpoint and the copy, when the
# copy is met before the original's content was read at all, and when it is
# met half written. A copy continues from a truncation once: the store keeps
# nothing of it after.
source "$(dirname "$0")/lib.sh"

# The records of PATH in state STATE whose state is "gone" (ghosts).
ghosts_at() {
  status_json "$1"
  jq --arg p "$2" '[.files[] | select(.path == $p and .state == "gone")] | length' \
    "$T/status.json"
}

# A wait_for predicate: STATE has a record of PATH.
tracked() {
  status_quiet "$1" || return 1
  [ "$(jq --arg p "$2" '[.files[] | select(.path == $p)] | length' "$T/st.json")" -ge 1 ]
}

# A wait_for predicate: in STATE, PATH is truncated once and what it was
# before is a ghost (both written by one checkpoint).
truncation_durable() {
  status_quiet "$1" || return 1
  [ "$(jq --arg p "$2" '[.files[] | select(.path == $p and .state == "active" and
                         .truncations == 1)] | length' "$T/st.json")" = 1 ] &&
  [ "$(jq --arg p "$2" '[.files[] | select(.path == $p and .state == "gone")] | length' \
        "$T/st.json")" = 1 ]
}

say "once: truncation seen with the copy left out by the glob; the copy next"
D=$T/a; S=$T/sa; OUT=$T/outa; mkdir -p "$D"
seq -f 'a %g' 100 > "$D/app.log"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
seq -f 'b %g' 10 >> "$D/app.log"            # unread at the truncation
cp "$D/app.log" "$D/app.log.1"; : > "$D/app.log"
seq -f 'c %g' 5 >> "$D/app.log"
tdm once -s "$S" -i 'app.log' -p "file:path=$OUT" "$D"
assert_eq "$(ghosts_at "$S" "$D/app.log")" 1 "ghosts of app.log after its truncation"
tdm once -v -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
assert_contains "$STDERR" "app.log.1: a copy of a file truncated since"
{ seq -f 'a %g' 100; seq -f 'b %g' 10; seq -f 'c %g' 5; } > "$T/wanta"
assert_lines_once "$T/wanta" "$OUT" "OUT after the copy met in a later once"
assert_eq "$(ghosts_at "$S" "$D/app.log")" 0 "ghosts of app.log once the copy continued"
seq -f 'd %g' 3 >> "$D/app.log"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
seq -f 'd %g' 3 >> "$T/wanta"
assert_lines_once "$T/wanta" "$OUT" "OUT after one more once"

say "once: the copy compressed before it is met (logrotate compress)"
D=$T/b; S=$T/sb; OUT=$T/outb; mkdir -p "$D"
seq -f 'a %g' 100 > "$D/app.log"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
seq -f 'b %g' 10 >> "$D/app.log"
cp "$D/app.log" "$D/app.log.1"; : > "$D/app.log"
seq -f 'c %g' 5 >> "$D/app.log"
tdm once -s "$S" -i 'app.log' -p "file:path=$OUT" "$D"
gzip "$D/app.log.1"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
{ seq -f 'a %g' 100; seq -f 'b %g' 10; seq -f 'c %g' 5; } > "$T/wantb"
assert_lines_once "$T/wantb" "$OUT" "OUT after the compressed copy"
assert_eq "$(ghosts_at "$S" "$D/app.log")" 0 "ghosts of app.log once the compressed copy continued"

say "once: two truncations in a row, both copies met after them"
D=$T/c; S=$T/sc; OUT=$T/outc; mkdir -p "$D"
seq -f 'a %g' 100 > "$D/app.log"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
seq -f 'b %g' 10 >> "$D/app.log"
cp "$D/app.log" "$D/app.log.1"; : > "$D/app.log"
seq -f 'c %g' 50 >> "$D/app.log"
tdm once -s "$S" -i 'app.log' -p "file:path=$OUT" "$D"
seq -f 'd %g' 7 >> "$D/app.log"
mv "$D/app.log.1" "$D/app.log.2"
cp "$D/app.log" "$D/app.log.1"; : > "$D/app.log"
seq -f 'e %g' 5 >> "$D/app.log"
tdm once -s "$S" -i 'app.log' -p "file:path=$OUT" "$D"
assert_eq "$(ghosts_at "$S" "$D/app.log")" 2 "ghosts of app.log after two truncations"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
{ seq -f 'a %g' 100; seq -f 'b %g' 10; seq -f 'c %g' 50; seq -f 'd %g' 7
  seq -f 'e %g' 5; } > "$T/wantc"
assert_lines_once "$T/wantc" "$OUT" "OUT after two copies of two truncations"
assert_eq "$(ghosts_at "$S" "$D/app.log")" 0 "ghosts of app.log once both copies continued"

say "once: truncated and refilled past the old bookmark before it is seen"
D=$T/g; S=$T/sg; OUT=$T/outg; mkdir -p "$D"
seq -f 'a %g' 100 > "$D/app.log"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
seq -f 'b %g' 10 >> "$D/app.log"
cp "$D/app.log" "$D/app.log.1"; : > "$D/app.log"
seq -f 'c %g' 500 >> "$D/app.log"            # longer than before: a new file
tdm once -s "$S" -i 'app.log' -p "file:path=$OUT" "$D"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
{ seq -f 'a %g' 100; seq -f 'b %g' 10; seq -f 'c %g' 500; } > "$T/wantg"
assert_lines_once "$T/wantg" "$OUT" "OUT after the copy of a file refilled"
assert_eq "$(ghosts_at "$S" "$D/app.log")" 0 "ghosts of app.log once the copy continued"

say "once: copied before a byte of the original's content was read"
D=$T/e; S=$T/se; OUT=$T/oute; mkdir -p "$D"
seq -f 'a %g' 100 > "$D/app.log"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
: > "$D/app.log"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"   # truncated, empty
seq -f 'b %g' 20 >> "$D/app.log"
cp "$D/app.log" "$D/app.log.1"
# The copy is met while app.log (left out by -x, its record kept) has read
# none of what it holds: the copy delivers it, app.log goes on after it.
tdm once -v -s "$S" -i 'app.log*' -x app.log -p "file:path=$OUT" "$D"
assert_contains "$STDERR" "app.log.1: a copy of"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"   # app.log: nothing new
: > "$D/app.log"; seq -f 'c %g' 5 >> "$D/app.log"
tdm once -s "$S" -i 'app.log*' -p "file:path=$OUT" "$D"
{ seq -f 'a %g' 100; seq -f 'b %g' 20; seq -f 'c %g' 5; } > "$T/wante"
assert_lines_once "$T/wante" "$OUT" "OUT after a copy met before its original was read"

say "run: the copy met while it is still being written"
D=$T/f; S=$T/sf; OUT=$T/outf; mkdir -p "$D"
gen_lines 1 1000 > "$D/app.log"
run_bg "$T/runf.out" -s "$S" --checkpoint-ms 50 -i 'app.log*' -p "file:path=$OUT" "$D"
wait_lines "$OUT" 1000 30 "$RUN_PID"
head -c 20000 "$D/app.log" > "$D/app.log.1"   # cp, half way
wait_for 30 tracked "$S" "$D/app.log.1"     # met half written
tail -c +20001 "$D/app.log" >> "$D/app.log.1"  # cp, done
: > "$D/app.log"
gen_lines 1001 1010 >> "$D/app.log"
wait_lines "$OUT" 1010 30 "$RUN_PID"
sleep 2
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run's exit status"
gen_lines 1 1010 > "$T/wantf"
assert_lines_once "$T/wantf" "$OUT" "OUT after a copy met half written"

say "run: kill -9 after the truncation's checkpoint, before the copy is read"
D=$T/d; S=$T/sd; OUT=$T/outd; mkdir -p "$D"
gen_lines 1 2000 > "$D/app.log"
run_bg "$T/run1.out" -s "$S" --checkpoint-ms 50 -i 'app.log' -p "file:path=$OUT" "$D"
wait_lines "$OUT" 2000 30 "$RUN_PID"
kill -STOP "$RUN_PID"                        # the tail stays unread
gen_lines 2001 2300 >> "$D/app.log"
cp "$D/app.log" "$D/app.log.1"; : > "$D/app.log"
gen_lines 2301 2310 >> "$D/app.log"
kill -CONT "$RUN_PID"
wait_for 30 truncation_durable "$S" "$D/app.log"
kill9_bg "$RUN_PID"
run_bg "$T/run2.out" -s "$S" --checkpoint-ms 50 -i 'app.log*' -p "file:path=$OUT" "$D"
wait_lines "$OUT" 2310 30 "$RUN_PID"
sleep 1
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run's exit status"
gen_lines 1 2310 > "$T/wantd"
assert_lines_once "$T/wantd" "$OUT" "OUT after kill -9 between truncation and copy"
assert_eq "$(ghosts_at "$S" "$D/app.log")" 0 "ghosts of app.log once the copy continued"
pass
