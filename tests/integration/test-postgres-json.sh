#!/usr/bin/env bash
# postgres format=json: each record parsed as JSON, into a `doc jsonb`
# column (create=yes makes it), or mapped onto a table's columns by name
# (a key the record lacks takes the column's default, a key the table lacks
# is ignored). A record that is not JSON, or that the table refuses (a type,
# NOT NULL), makes process() answer TDM_PROC_REJECT with nothing of its
# chunk kept: with --dead-letter the host narrows the chunk down to that
# record and sets it aside, and every other record of the file is in the
# table exactly once; without it, the file stops before the record, marked
# failed, the records before it in the table.
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
dl=(--dead-letter "$T/dead.jsonl"); want=0
say "format=json into doc jsonb (create=yes)"
assert_exit "$want" "$TIDEMARK" once -s "$S" -p "postgres:conninfo=$PG_URI,table=docs,format=json,create=yes" "${dl[@]}" "$D"
cp "$STDERR" "$T/docs.err"
good=$(realpath "$D/good.log"); bad=$(realpath "$D/bad.log")
assert_eq "$(psql_q "select count(*), count(distinct doc->>'n') from docs where path = '$good'")" "3000|3000" "good.log rows in docs"
assert_eq "$(psql_q "select sum((doc->>'n')::int) from docs where path = '$good'")" 4501500 "the n of good.log's rows"
assert_eq "$(psql_q "select doc::text from docs where path = '$good' and \"offset\" = 0")" '{"n": 1, "msg": "event 1", "extra": [1, 2], "level": "info"}' "a doc"
bad_off=$(awk '/not json/ { print o; exit } { o += length($0) + 1 }' "$D/bad.log")
assert_eq "$(psql_q "select count(*) from docs where path = '$bad'")" 5 "bad.log's JSON records"
assert_eq "$(jq -r '"\(.data | rtrimstr("\n")) \(.offset) \(.path)"' "$T/dead.jsonl")" "this is not json $bad_off $bad" "the dead letter"
assert_contains "$(jq -r .error "$T/dead.jsonl" > "$T/dl.err"; echo "$T/dl.err")" "docs refused a record: invalid input syntax for type json"

say "format=json mapped onto the columns of a table without doc"
S2=$T/state2
assert_exit "$want" "$TIDEMARK" once -s "$S2" -p "postgres:conninfo=$PG_URI,table=events,format=json" "${dl[@]/dead.jsonl/dead2.jsonl}" "$D"
cp "$STDERR" "$T/events.err"
assert_eq "$(psql_q "select count(*), count(distinct n), sum(n) from events where level = 'info'")" "3000|3000|4501500" "good.log rows in events"
assert_eq "$(psql_q "select msg from events where n = 7 and level = 'info'")" "event 7" "a mapped row"
assert_eq "$(psql_q "select count(*) from events where level = 'warn'")" 3 "bad.log's acceptable records"
assert_eq "$(psql_q "select msg from events where level = 'warn' and n = 2")" none "a missing key takes the default"
assert_eq "$(wc -l < "$T/dead2.jsonl")" 3 "dead letters of the mapped table"
assert_eq "$(jq -r '.data | rtrimstr("\n")' "$T/dead2.jsonl" | sort | tr '\n' '|')" 'this is not json|{"level": "warn", "n": "not a number"}|{"n": 5, "msg": "no level"}|' "what the mapped table refused"

say "without --dead-letter: the file stops before the refused record, marked failed"
assert_exit 1 "$TIDEMARK" once -s "$T/state3" -p "postgres:conninfo=$PG_URI,table=nodl,format=json,create=yes" "$D"
assert_contains "$STDERR" "nodl refused a record"
assert_eq "$(psql_q "select count(*) from nodl where path = '$good'")" 3000 "good.log rows without --dead-letter"
assert_eq "$(psql_q "select string_agg(doc->>'n', ',' order by \"offset\") from nodl where path = '$bad'")" "1,2" "bad.log's records before the refused one"
status_json "$T/state3"
assert_eq "$(jfile state "$bad")" failed "bad.log's state"

say "a second once adds nothing"
assert_exit 0 "$TIDEMARK" once -s "$S" -p "postgres:conninfo=$PG_URI,table=docs,format=json,create=yes" "${dl[@]}" "$D"
assert_eq "$(psql_q "select count(*) from docs")" 3005 "rows in docs after a second once"
assert_eq "$(wc -l < "$T/dead.jsonl")" 1 "dead letters after a second once"
pg_stop
pass
