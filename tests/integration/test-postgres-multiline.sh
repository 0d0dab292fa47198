#!/usr/bin/env bash
# postgres with --multiline-start: Java-style stack traces of 1 to 7 lines
# (stacktraces.py) written at a high rate while `tidemark run` is killed
# with -9 again and again. The host says where records end
# (tdm_chunk_t.record_ends): every record is exactly ONE row, whole (its
# start line and all its frames, newlines kept), none twice, none lost.
source "$(dirname "$0")/lib.sh"
need_pg
command -v python3 >/dev/null || fail "python3 is required"
pg_start

KILLS=${TDM_ML_KILLS:-5}
D=$T/d; S=$T/state
mkdir -p "$D"
SPEC="postgres:conninfo=$PG_URI,table=traces,create=yes"
ARGS=(-s "$S" --multiline-start '^R [0-9]+ ' --multiline-timeout-ms 300 -p "$SPEC" "$D")

python3 "$(dirname "$0")/stacktraces.py" "$D/app.log" "$T/tee" "$T/count" 3000 &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/app.log"

say "stack traces at 3000 records/s; tidemark run killed with -9 $KILLS times"
for k in $(seq 1 "$KILLS"); do
  opts=(--checkpoint-ms 150)
  [ $((k % 2)) -eq 0 ] && opts=()
  run_bg "$T/run.out" "${opts[@]}" "${ARGS[@]}"
  sleep "0.$((3 + RANDOM % 7))"
  is_running "$RUN_PID" || fail "run $k exited by itself before its kill"
  kill9_bg "$RUN_PID"
  printf '  kill -9 #%d: table at %7s rows, %7d lines written\n' \
    "$k" "$(psql "$PG_URI" -X -Atqc 'select count(*) from traces' 2>/dev/null || echo 0)" "$(lines_in "$T/tee")"
done

say "stop the writer; a last run catches up (the last record after the timeout)"
run_bg "$T/run.out" --checkpoint-ms 150 "${ARGS[@]}"
sleep 0.5
stop_bg "$WPID" TERM
n=$(cat "$T/count")
echo "writer wrote $n records ($(lines_in "$T/tee") lines)"
pg_wait_rows traces "$n" 60 "$RUN_PID"
sleep 1
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "every record exactly one row, whole (SQL counts)"
assert_eq "$(psql_q 'select count(*) from traces')" "$n" "rows"
psql "$PG_URI" -X -Atq -c "select replace(line, E'\\n', '|') from traces order by \"offset\"" > "$T/messages"
python3 "$(dirname "$0")/check-records.py" messages "$T/messages" "$n" ||
  fail "the table does not hold every record exactly once as one whole row"
psql "$PG_URI" -X -Atq -c "select line from traces order by \"offset\"" > "$T/all"
assert_file_eq "$T/all" "$D/app.log" "the rows in offset order, one after the other"
assert_no_sanitizer "$T/run.err"
pg_stop
pass
