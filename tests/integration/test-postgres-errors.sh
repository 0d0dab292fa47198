#!/usr/bin/env bash
# postgres: what a user sees when something is wrong. Bad parameters, a
# password in the conninfo, a missing table (without create=yes), a missing
# column, no unique index on record_id, wrong credentials: a message naming
# it and exit 2. A server that is down: `once` waits, warns once naming host
# and port, gives up after --retry-timeout-ms with exit 1 and its bookmark
# kept; `run` waits for it and delivers once it is up. The password (given
# in PGPASSWORD) appears nowhere: not in messages, status or metrics.
source "$(dirname "$0")/lib.sh"
need_pg
pg_start

D=$T/d; S=$T/state
mkdir -p "$D"
gen_lines 1 1000 > "$D/a.log"
P="postgres:conninfo=$PG_URI"

say "bad parameters: exit 2, the parameter named"
assert_exit 2 "$TIDEMARK" once -s "$S" -p "postgres:table=t" "$D"
assert_contains "$STDERR" 'missing parameter "conninfo"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "$P" "$D"
assert_contains "$STDERR" 'missing parameter "table"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "$P,table=t,colour=red" "$D"
assert_contains "$STDERR" 'unknown parameter "colour"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "$P,table=t,format=xml" "$D"
assert_contains "$STDERR" 'parameter "format": "xml"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "$P,table=t,batch=0" "$D"
assert_contains "$STDERR" 'parameter "batch"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "postgres:conninfo=postgresql://h/db?nosuchkey=1,table=t" "$D"
assert_contains "$STDERR" 'parameter "conninfo"'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "postgres:conninfo=postgresql://u:pw@h/db,table=t" "$D"
assert_contains "$STDERR" 'holds a password'

say "a missing table, a missing column, no unique record_id: exit 2, named"
assert_exit 2 "$TIDEMARK" once -s "$S" -p "$P,table=nosuch" "$D"
assert_contains "$STDERR" "no table nosuch (create it, or add create=yes)"
psql_q 'create table nocol (path text, "offset" bigint, record_id text unique)'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "$P,table=nocol" "$D"
assert_contains "$STDERR" 'table nocol has no column "line"'
psql_q 'create table noid (line text, path text, "offset" bigint)'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "$P,table=noid" "$D"
assert_contains "$STDERR" 'table noid has no column "record_id"'
psql_q 'create table nouniq (line text, path text, "offset" bigint, record_id text)'
assert_exit 2 "$TIDEMARK" once -s "$S" -p "$P,table=nouniq" "$D"
assert_contains "$STDERR" 'table nouniq has no unique index on record_id'
assert_eq "$(psql_q 'select count(*) from nouniq')" 0 "rows in a refused table"

say "credentials: wrong password exit 2 naming the user; the password is printed nowhere"
PW=Xy-Sekr1t-$RANDOM
psql_q "create role tdmuser login password '$PW'; grant create on schema public to tdmuser"
{ echo "local all tdmuser scram-sha-256"; cat "$PG_DIR/data/pg_hba.conf"; } > "$T/hba"
cat "$T/hba" > "$PG_DIR/data/pg_hba.conf"
psql_q 'select pg_reload_conf()' >/dev/null
UP="postgres:conninfo=postgresql:///postgres?host=$PG_SOCK&port=$PG_PORT&user=tdmuser,table=lines,create=yes"
PGPASSWORD=wrong-$PW assert_exit 2 "$TIDEMARK" once -s "$S" -p "$UP" "$D"
assert_contains "$STDERR" 'password authentication failed for user "tdmuser"'
assert_not_contains "$STDERR" "$PW"
PGPASSWORD=$PW assert_exit 0 "$TIDEMARK" once -s "$S" -p "$UP" --metrics-file "$T/metrics" "$D"
assert_eq "$(psql_q 'select count(*) from lines')" 1000 "rows with the right password"
status_json "$S"
"$TIDEMARK" status -s "$S" > "$T/status.txt" 2>&1
for f in "$STDERR" "$STDOUT" "$T/status.json" "$T/status.txt" "$T/metrics"; do
  assert_not_contains "$f" "$PW"
done

say "server down at once: one warning naming host and port, exit 1 after --retry-timeout-ms"
gen_lines 1001 2000 >> "$D/a.log"
pg_stop
PGPASSWORD=$PW assert_exit 1 "$TIDEMARK" once -s "$S" -p "$UP" --retry-timeout-ms 1500 "$D"
assert_contains "$STDERR" "cannot connect to host $PG_SOCK port $PG_PORT"
assert_eq "$(grep -c "warning: postgres: cannot connect to host" "$STDERR")" 1 "warnings about the server being away"
assert_contains "$STDERR" "giving up"
assert_not_contains "$STDERR" "$PW"

say "server down at run: run waits, then delivers what came meanwhile"
echo "--- run" >> "$T/run.err"
PGPASSWORD=$PW run_bg "$T/run.out" -s "$S" -p "$UP" --checkpoint-ms 200 "$D"
sleep 1.5
is_running "$RUN_PID" || fail "run exited while the server was down"
pg_start
pg_wait_rows lines 2000 30 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_contains "$T/run.err" "connected to host $PG_SOCK port $PG_PORT"
assert_not_contains "$T/run.err" "$PW"
psql_q 'select line from lines' > "$T/got"
assert_lines_once "$D/a.log" "$T/got" "rows after the server came up"
assert_no_sanitizer "$T/run.err"
pg_stop
pass
