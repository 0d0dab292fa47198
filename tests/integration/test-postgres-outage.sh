#!/usr/bin/env bash
# postgres: the server crashes (SIGQUIT to the postmaster, what pg_ctl stop
# -m immediate does: no shutdown checkpoint, recovery at the next start)
# twice under load and is started again each time. tidemark stays up, warns
# once per outage naming the host and port, pauses reading, reconnects by
# itself and resumes: the table then holds every line exactly once.
# Then `once` of a large backlog whose transaction holds many chunks when
# the server crashes (a statement trigger makes each chunk take 0.3 s): the
# rows the crash took from the open transaction are sent again on the next
# connection, and the table holds every line exactly once.
source "$(dirname "$0")/lib.sh"
need_pg
need_helper TDM_WRITER
pg_start
psql_q 'create table lines (line text, path text, "offset" bigint, record_id text unique, ingested_at timestamptz default now())'

D=$T/d; S=$T/state
mkdir -p "$D"
FILES=("$D/a.log" "$D/b.log")
SPEC="postgres:conninfo=$PG_URI,table=lines,batch=2000"

"$TDM_WRITER" append -r 8000 -c "$T/written" -t "$T/tee" o "${FILES[@]}" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/b.log"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
pg_wait_rows lines 2000 20 "$RUN_PID"

for o in 1 2; do
  say "crash $o of the server under load; 2 s down"
  sleep "0.$((RANDOM % 9))"
  pg_crash
  echo "  crashed with $(lines_in "$T/tee") lines written"
  sleep 2
  is_running "$RUN_PID" || fail "tidemark exited while the server was down"
  assert_eq "$(grep -c "warning: postgres: lost the connection to host $PG_SOCK port $PG_PORT" "$T/run.err")" "$o" "warnings after outage $o"
  pg_start
  pg_wait_rows lines "$(( $(lines_in "$T/tee") - 1000 ))" 30 "$RUN_PID"
done

stop_bg "$WPID" TERM
written=$(cat "$T/written")
echo "writer wrote $written lines"
pg_wait_rows lines "$written" 60 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_eq "$(grep -c "postgres: reconnected to host $PG_SOCK port $PG_PORT" "$T/run.err")" 2 "reconnections said"

say "every line exactly once (SQL counts)"
assert_eq "$(psql_q 'select count(*), count(distinct line) from lines')" "$written|$written" "rows, distinct lines"
psql_q 'select line from lines' > "$T/got"
assert_lines_once "$T/tee" "$T/got" "table after two server crashes"

say "once of a backlog: the server crashes with many chunks in the open transaction"
psql_q "create function slow() returns trigger language plpgsql as \$\$ begin perform pg_sleep(0.3); return null; end \$\$"
psql_q 'create trigger slow before insert on lines for each statement execute function slow()'
gen_lines 1 150000 | sed 's/^/backlog /' > "$D/c.log"
cat "$D/c.log" >> "$T/tee"
"$TIDEMARK" once -s "$S" -p "postgres:conninfo=$PG_URI,table=lines,batch=1000000" \
  --checkpoint-ms 100000 "$D" > "$T/once.out" 2> "$T/once.err" &
OPID=$!; TDM_BG_PIDS+=("$OPID")
sleep 2
is_running "$OPID" || fail "once ended before the crash (the trigger did not slow it down): $(tail -n 3 "$T/once.err")"
pg_crash
sleep 1
pg_start
wait "$OPID" || fail "once exited $? after the server came back: $(tail -n 5 "$T/once.err")"
assert_contains "$T/once.err" "postgres: sending again the"
grep "sending again" "$T/once.err" | sed 's/^/  /'
psql_q 'select line from lines' > "$T/got"
assert_lines_once "$T/tee" "$T/got" "table after a crash during once"
assert_no_sanitizer "$T/run.err"
assert_no_sanitizer "$T/once.err"
pg_stop
pass
