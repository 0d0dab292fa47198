#!/usr/bin/env bash
# postgres: `once` of 200,000 lines over four files into a table it creates
# (create=yes): every line one row, counted with SQL (none lost, none
# doubled, rows == lines), each file's rows in offset order are the file
# byte for byte (tabs, backslashes, carriage returns and UTF-8 kept), the
# record ids unique. A second `once` adds nothing; appended lines add
# exactly themselves.
source "$(dirname "$0")/lib.sh"
need_pg
pg_start

D=$T/d; S=$T/state
mkdir -p "$D"
gen_lines 1 50000 > "$D/a.log"
gen_lines 50001 100000 > "$D/b.log"
gen_lines 100001 150000 > "$D/c.log"
gen_lines 150001 199995 > "$D/d.log"
printf 'a\ttab\nback\\slash \\N\ncarriage\rreturn\nutf-8 \303\251t\303\251 \342\202\254\n\n' > "$D/e.log"
cat "$D"/*.log > "$T/want"
SPEC="postgres:conninfo=$PG_URI,table=lines,create=yes"

say "once of $(wc -l < "$T/want") lines"
t0=$(now_ms)
tdm once -s "$S" -p "$SPEC" "$D"
echo "  once took $(( $(now_ms) - t0 )) ms"
assert_contains "$STDERR" "table lines on host $PG_SOCK port $PG_PORT"
assert_not_contains "$STDERR" "sending again" "rows sent twice with no connection lost"
assert_eq "$(psql_q 'select count(*), count(distinct record_id) from lines')" "200000|200000" "rows, distinct record ids"
psql_q 'select line from lines' > "$T/got"
assert_lines_once "$T/want" "$T/got" "rows after once"

say "each file's rows in offset order are the file; offsets and ids are right"
for f in "$D"/*.log; do
  psql "$PG_URI" -X -Atq -c "select line from lines where path = '$(realpath "$f")' order by \"offset\"" > "$T/one"
  assert_file_eq "$T/one" "$f" "rows of $(basename "$f") in offset order"
done
status_json "$S"
inst=$(jq -r .instance "$T/status.json")
awk 'BEGIN { o = 0 } { print o; o += length($0) + 1 }' "$D/b.log" > "$T/offs.want"
psql "$PG_URI" -X -Atq -c "select \"offset\" from lines where path = '$(realpath "$D/b.log")' order by \"offset\"" > "$T/offs.got"
assert_file_eq "$T/offs.got" "$T/offs.want" "offsets of b.log's rows"
bad=$(psql_q "select count(*) from lines where record_id <> '$inst:' || split_part(record_id, ':', 2) || ':0:' || \"offset\"")
assert_eq "$bad" 0 "rows whose record_id is not INSTANCE:FILE:0:OFFSET"
assert_eq "$(psql_q "select count(*) from lines where ingested_at > now() or ingested_at < now() - interval '5 minutes'")" 0 "ingested_at"

say "a second once adds nothing; appended lines add exactly themselves"
tdm once -s "$S" -p "$SPEC" "$D"
assert_eq "$(psql_q 'select count(*) from lines')" 200000 "rows after a second once"
gen_lines 199996 201000 >> "$D/d.log"
gen_lines 199996 201000 >> "$T/want"
tdm once -s "$S" -p "$SPEC" "$D"
psql_q 'select line from lines' > "$T/got"
assert_lines_once "$T/want" "$T/got" "rows after appending"
pg_stop
pass
