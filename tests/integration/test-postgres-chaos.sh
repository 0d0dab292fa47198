#!/usr/bin/env bash
# postgres: both at once. Under a writer of ~6,000 lines/s, `tidemark run`
# is killed with -9 again and again, and twice the server crashes too
# (SIGQUIT to the postmaster) and tidemark is killed while it is away, then
# both start again. The table ends with every line exactly once.
source "$(dirname "$0")/lib.sh"
need_pg
need_helper TDM_WRITER
pg_start

D=$T/d; S=$T/state
mkdir -p "$D"
FILES=("$D/a.log" "$D/b.log" "$D/c.log")
SPEC="postgres:conninfo=$PG_URI,table=lines,create=yes,batch=3000"

"$TDM_WRITER" append -r 6000 -c "$T/written" -t "$T/tee" c "${FILES[@]}" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/c.log"

for k in 1 2 3 4 5 6; do
  opts=(--checkpoint-ms 150)
  [ $((k % 2)) -eq 0 ] && opts=()
  run_bg "$T/run.out" -s "$S" -p "$SPEC" "${opts[@]}" "$D"
  sleep "0.$((3 + RANDOM % 7))"
  if [ $((k % 3)) -eq 2 ]; then
    pg_crash
    sleep "0.$((2 + RANDOM % 6))"
    is_running "$RUN_PID" || fail "run $k exited while the server was down"
    kill9_bg "$RUN_PID"
    pg_start
    what="server crash, then kill -9 while it was down"
  else
    is_running "$RUN_PID" || fail "run $k exited by itself before its kill"
    kill9_bg "$RUN_PID"
    what="kill -9"
  fi
  printf '  round %d (%s): table at %7s rows, %7d written\n' \
    "$k" "$what" "$(psql_q 'select count(*) from lines')" "$(lines_in "$T/tee")"
done

say "stop the writer; a last run catches up"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 150 "$D"
sleep 0.5
stop_bg "$WPID" TERM
written=$(cat "$T/written")
echo "writer wrote $written lines"
pg_wait_rows lines "$written" 60 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "every line exactly once (SQL counts)"
assert_eq "$(psql_q 'select count(*), count(distinct line) from lines')" "$written|$written" "rows, distinct lines"
psql_q 'select line from lines' > "$T/got"
assert_lines_once "$T/tee" "$T/got" "table after kills and crashes"
assert_no_sanitizer "$T/run.err"
pg_stop
pass
