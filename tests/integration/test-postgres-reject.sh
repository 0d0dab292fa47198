#!/usr/bin/env bash
# postgres: the contract behind TDM_PROC_REJECT, checked on the plugin's
# methods directly (tdm-pgfeed), since a host that sets rejected records
# aside is not needed to see it. A chunk holding one record the table
# refuses (not JSON; a CHECK constraint) is answered REJECT naming the
# record's offset, and nothing of it is kept, while the chunks before it in
# the same transaction are; the same record alone in a chunk is rejected
# too (exactly the record to set aside), and its neighbours alone go in. A
# replay after a reopen adds nothing.
source "$(dirname "$0")/lib.sh"
need_pg
TDM_PGFEED=${TDM_PGFEED:-$(dirname "$TIDEMARK")/tests/integration/tdm-pgfeed}
need_helper TDM_PGFEED
PLUGIN=$(dirname "$TIDEMARK")/tidemark-plugins/postgres.so
pg_start

feed() { assert_exit 0 "$TDM_PGFEED" "$PLUGIN" feedfeedfeedfeed "$@"; cp "$STDOUT" "$T/feed.out"; }
answer() { sed -n "$1p" "$T/feed.out" | cut -f2; }

say "format=json: a chunk with a line that is not JSON"
feed conninfo="$PG_URI" table=docs format=json create=yes -- \
  'chunk:1:0:{"a":1}\n{"a":2}\n' \
  'chunk:1:16:{"a":3}\nnot json\n{"a":5}\n' \
  'chunk:1:24:not json\n' \
  'chunk:1:16:{"a":3}\n' \
  'chunk:1:33:{"a":5}\n' \
  commit reopen \
  'chunk:1:0:{"a":1}\n{"a":2}\n{"a":3}\n' commit
cat "$T/feed.out" | cut -c1-160
assert_eq "$(answer 1) $(answer 2) $(answer 3) $(answer 4) $(answer 5) $(answer 6)" \
  "ok reject reject ok ok ok" "what process() and commit() answered"
assert_contains "$T/feed.out" "docs refused a record: invalid input syntax for type json"
assert_eq "$(sed -n 2p "$T/feed.out" | grep -c '(the record at offset 24)')" 1 "the offset named by the rejected chunk"
assert_eq "$(answer 8) $(answer 9)" "ok ok" "a replay after a reopen"
assert_eq "$(psql_q "select string_agg((doc->>'a') || '@' || \"offset\" || '=' || record_id, ' ' order by \"offset\") from docs")" \
  "1@0=feedfeedfeedfeed:1:0:0 2@8=feedfeedfeedfeed:1:0:8 3@16=feedfeedfeedfeed:1:0:16 5@33=feedfeedfeedfeed:1:0:33" \
  "rows: the accepted chunks' records once, nothing of the rejected ones"

say "format=line: a CHECK constraint"
psql_q "create table checked (line text check (line <> 'bad'), path text, \"offset\" bigint, record_id text unique)"
feed conninfo="$PG_URI" table=checked -- \
  'chunk:7:0:good1\n' \
  'chunk:7:6:good2\nbad\ngood3\n' \
  'chunk:7:12:bad\n' \
  'chunk:7:6:good2\n' 'chunk:7:16:good3\n' commit
assert_eq "$(answer 1) $(answer 2) $(answer 3) $(answer 4) $(answer 5) $(answer 6)" \
  "ok reject reject ok ok ok" "what process() and commit() answered"
assert_contains "$T/feed.out" 'checked refused a record: new row for relation "checked" violates check constraint'
assert_eq "$(psql_q "select string_agg(line || '@' || \"offset\", ' ' order by \"offset\") from checked")" \
  "good1@0 good2@6 good3@16" "rows of the check-constrained table"
pg_stop
pass
