#!/usr/bin/env bash
# postgres: a writer appends ~10,000 lines/s to three files while `tidemark
# run` inserting into a table is killed with -9 five times at random moments
# and restarted. A replay sends again what came after the last checkpoint,
# with the same record ids, and the unique constraint drops what the table
# has: after a last run catches up, the table holds every line exactly once
# (counted with SQL), each file's rows in the file's order.
source "$(dirname "$0")/lib.sh"
need_pg
need_helper TDM_WRITER
pg_start
psql_q 'create table lines (line text, path text, "offset" bigint, record_id text unique, ingested_at timestamptz default now())'

KILLS=${TDM_KILL9_KILLS:-5}
D=$T/d; S=$T/state
mkdir -p "$D"
FILES=("$D/a.log" "$D/b.log" "$D/c.log")
SPEC="postgres:conninfo=$PG_URI,table=lines"

"$TDM_WRITER" append -r 10000 -c "$T/written" -t "$T/tee" k "${FILES[@]}" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/c.log"

for k in $(seq 1 "$KILLS"); do
  if [ "$k" -eq 1 ]; then ms=$((50 + RANDOM % 150)); else ms=$((200 + RANDOM % 1300)); fi
  opts=(--checkpoint-ms 200)
  [ $((k % 2)) -eq 0 ] && opts=()
  run_bg "$T/run.out" -s "$S" -p "$SPEC" "${opts[@]}" "$D"
  sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  is_running "$RUN_PID" || fail "run $k exited by itself before its kill"
  kill9_bg "$RUN_PID"
  printf '  kill %d after %4d ms: table at %7s rows, %7d written\n' \
    "$k" "$ms" "$(psql_q 'select count(*) from lines')" "$(lines_in "$T/tee")"
done

say "stop the writer; a last run catches up"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
sleep 0.5
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
written=$(cat "$T/written")
echo "writer wrote $written lines"
pg_wait_rows lines "$written" 60 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "every line exactly once (SQL counts), each file in order"
assert_eq "$(psql_q 'select count(*), count(distinct line) from lines')" "$written|$written" "rows, distinct lines"
psql_q 'select line from lines' > "$T/got"
assert_lines_once "$T/tee" "$T/got" "table after $KILLS kills -9"
for f in "${FILES[@]}"; do
  psql "$PG_URI" -X -Atq -c "select line from lines where path = '$(realpath "$f")' order by \"offset\"" > "$T/order.got"
  assert_file_eq "$T/order.got" "$f" "rows of $(basename "$f") in offset order"
done
assert_no_sanitizer "$T/run.err"
pg_stop
pass
