#!/usr/bin/env bash
# postgres format=json: each record parsed as JSON, into a `doc jsonb`
# column (create=yes makes it), or mapped onto a table's columns by name
# (a key the record lacks takes the column's default, a key the table lacks
# is ignored). A record that is not JSON, or that the table refuses (a type,
# NOT NULL), makes process() answer TDM_PROC_REJECT with nothing of its
# chunk kept. Until the host sets rejected records aside (--dead-letter), it
# fails that file: the good file's rows are all there exactly once, the bad
# file is reported (its name, the error, the record's offset) and none of
# its chunk's rows is in the table. With a host that has --dead-letter, the
# bad records are in that file instead and every good one in the table.
source "$(dirname "$0")/lib.sh"
need_pg
pg_start
psql_q "create table events (level text not null, n int, msg text default 'none', record_id text unique, ingested_at timestamptz default now())"

D=$T/d; S=$T/state
mkdir -p "$D"
seq 1 3000 | awk '{ printf "{\"level\": \"info\", \"n\": %d, \"msg\": \"event %d\", \"extra\": [1, 2]}\n", $1, $1 }' > "$D/good.log"
{
  echo '{"level": "warn", "n": 1, "msg": "fine"}'
  echo '{"level": "warn", "n": 2}'
  echo 'this is not json'
  echo '{"level": "warn", "n": "not a number"}'
  echo '{"n": 5, "msg": "no level"}'
  echo '{"level": "warn", "n": 6, "msg": "fine too"}'
} > "$D/bad.log"
dl=(); want=1
if "$TIDEMARK" --help 2>&1 | grep -q -- '--dead-letter'; then
  dl=(--dead-letter "$T/dead.jsonl"); want=0
fi

say "format=json into doc jsonb (create=yes)"
assert_exit "$want" "$TIDEMARK" once -s "$S" -p "postgres:conninfo=$PG_URI,table=docs,format=json,create=yes" ${dl[@]+"${dl[@]}"} "$D"
cp "$STDERR" "$T/docs.err"
good=$(realpath "$D/good.log"); bad=$(realpath "$D/bad.log")
assert_eq "$(psql_q "select count(*), count(distinct doc->>'n') from docs where path = '$good'")" "3000|3000" "good.log rows in docs"
assert_eq "$(psql_q "select sum((doc->>'n')::int) from docs where path = '$good'")" 4501500 "the n of good.log's rows"
assert_eq "$(psql_q "select doc::text from docs where path = '$good' and \"offset\" = 0")" '{"n": 1, "msg": "event 1", "extra": [1, 2], "level": "info"}' "a doc"
bad_off=$(awk '/not json/ { print o; exit } { o += length($0) + 1 }' "$D/bad.log")
if [ ${#dl[@]} -eq 0 ]; then
  assert_contains "$T/docs.err" "$bad"
  assert_contains "$T/docs.err" "docs refused a record: invalid input syntax for type json"
  assert_contains "$T/docs.err" "(the record at offset $bad_off)"
  assert_eq "$(psql_q "select count(*) from docs where path = '$bad'")" 0 "rows of bad.log's rejected chunk"
  status_json "$S"
  assert_eq "$(jfile state "$bad")" failed "bad.log's state"
else
  assert_eq "$(psql_q "select count(*) from docs where path = '$bad'")" 5 "bad.log's JSON records"
  assert_eq "$(jq -r .data "$T/dead.jsonl")" "this is not json" "the dead letter"
fi

say "format=json mapped onto the columns of a table without doc"
S2=$T/state2
assert_exit "$want" "$TIDEMARK" once -s "$S2" -p "postgres:conninfo=$PG_URI,table=events,format=json" ${dl[@]+"${dl[@]/dead.jsonl/dead2.jsonl}"} "$D"
cp "$STDERR" "$T/events.err"
assert_eq "$(psql_q "select count(*), count(distinct n), sum(n) from events where level = 'info'")" "3000|3000|4501500" "good.log rows in events"
assert_eq "$(psql_q "select msg from events where n = 7 and level = 'info'")" "event 7" "a mapped row"
if [ ${#dl[@]} -eq 0 ]; then
  assert_contains "$T/events.err" "$bad"
  assert_contains "$T/events.err" "events refused a record"
  assert_eq "$(psql_q "select count(*) from events where level <> 'info'")" 0 "rows of bad.log's rejected chunk"
else
  assert_eq "$(psql_q "select count(*) from events where level = 'warn'")" 3 "bad.log's acceptable records"
  assert_eq "$(psql_q "select msg from events where level = 'warn' and n = 2")" none "a missing key takes the default"
  assert_eq "$(wc -l < "$T/dead2.jsonl")" 3 "dead letters of the mapped table"
fi

say "a second once adds nothing"
tdm_rc=$([ ${#dl[@]} -eq 0 ] && echo 0,1 || echo 0)
assert_exit "$tdm_rc" "$TIDEMARK" once -s "$S" -p "postgres:conninfo=$PG_URI,table=docs,format=json,create=yes" ${dl[@]+"${dl[@]}"} "$D"
assert_eq "$(psql_q "select count(*) from docs where path = '$good'")" 3000 "good.log rows in docs after a second once"
pg_stop
pass
