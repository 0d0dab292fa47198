#!/usr/bin/env bash
# postgres in whole mode: complete files dropped into a directory (renamed
# in), each line one row, while `tidemark run -m whole` is killed with -9;
# then new versions of some files (rewritten in place) and new drops. Every
# line of every version is in the table exactly once: a new version's rows
# get record ids its old version never had.
source "$(dirname "$0")/lib.sh"
need_pg
pg_start

D=$T/d; S=$T/state; W=$T/work
mkdir -p "$D" "$W"
SPEC="postgres:conninfo=$PG_URI,table=lines,create=yes"
ARGS=(-s "$S" -m whole --settle-ms 300 --checkpoint-ms 150 -p "$SPEC" "$D")
: > "$T/want"

drop() { # drop NAME VERSION: a file of 400 lines renamed into the tree
  gen_lines 1 400 | sed "s/^/$1 v$2 /" > "$W/$1"
  cat "$W/$1" >> "$T/want"
  mv "$W/$1" "$D/$1"
}

say "40 drops while run -m whole is killed with -9 three times"
run_bg "$T/run.out" "${ARGS[@]}"
for i in $(seq 1 40); do
  drop "f$i.csv" 1
  if [ $((i % 13)) -eq 0 ]; then
    sleep 0.2
    kill9_bg "$RUN_PID"
    run_bg "$T/run.out" "${ARGS[@]}"
  fi
  sleep 0.02
done
pg_wait_rows lines 16000 60 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
psql_q 'select line from lines' > "$T/got"
assert_lines_once "$T/want" "$T/got" "rows after the drops"

say "new versions of 5 files (rewritten in place) and 5 new drops"
for i in 3 9 17 26 38; do
  gen_lines 1 400 | sed "s/^/f$i.csv v2 /" > "$D/f$i.csv"
  cat "$D/f$i.csv" >> "$T/want"
done
for i in $(seq 41 45); do drop "f$i.csv" 1; done
make_old "$D"/*.csv
tdm once -s "$S" -m whole --settle-ms 300 -p "$SPEC" "$D"
psql_q 'select line from lines' > "$T/got"
assert_lines_once "$T/want" "$T/got" "rows after new versions"

say "a second once adds nothing"
tdm once -s "$S" -m whole --settle-ms 300 -p "$SPEC" "$D"
assert_eq "$(psql_q 'select count(*) from lines')" "$(wc -l < "$T/want")" "rows after a second once"
assert_no_sanitizer "$T/run.err"
pg_stop
pass
