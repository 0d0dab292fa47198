#!/usr/bin/env bash
# postgres with Debian's logrotate `compress`, forced every second, while a
# writer that keeps its file open (reopened by the postrotate SIGHUP)
# appends numbered lines and `tidemark run` tails `app.log*`: the .gz of a
# rotated log continues from that log's bookmark. At the end (SQL counts):
# no line twice, every line on disk (plain or compressed) in the table,
# every row a line the writer wrote.
#
# TDM_ROT_KILL_EVERY=N also kills `run` with -9 every N rotations. That is
# not exactly once yet, for any sink naming records by (file id, offset):
# the compressed copy gets a file id of its own, so the rows a kill made it
# deliver again from the plain file's bookmark come back under new record
# ids (the host would have to hand the copy its origin's id).
source "$(dirname "$0")/lib.sh"
need_pg
need_helper TDM_WRITER
command -v logrotate >/dev/null || skip "logrotate is not installed (apt-get install logrotate)"
pg_start

ROTS=${TDM_ROTS:-9}
D=$T/logs; S=$T/state
mkdir -p "$D"
"$TDM_WRITER" hold -r 3000 -c "$T/written" -t "$T/tee" w "$D/app.log" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/app.log"
{
  echo "$D/app.log {"
  echo "  rotate 50"
  echo "  missingok"
  echo "  ifempty"
  echo "  compress"
  echo "  create"
  echo "  postrotate"
  echo "    kill -HUP $WPID"
  echo "  endscript"
  echo "}"
} > "$T/rotate.conf"
chmod 644 "$T/rotate.conf"

ARGS=(-s "$S" -i 'app.log*' -p "postgres:conninfo=$PG_URI,table=lines,create=yes" --checkpoint-ms 100 --settle-ms 500 "$D")
run_bg /dev/null "${ARGS[@]}"
KILL_EVERY=${TDM_ROT_KILL_EVERY:-0}
say "logrotate -f (compress) every second, $ROTS times (kill -9 every ${KILL_EVERY} rotations, 0: none)"
for r in $(seq 1 "$ROTS"); do
  sleep 1
  logrotate_run "$T/rotate.conf" "$T/rotate.state"
  is_running "$WPID" || fail "the writer died at rotation $r: $(cat "$T/writer.err")"
  if [ "$KILL_EVERY" -gt 0 ] && [ $((r % KILL_EVERY)) -eq 0 ]; then
    is_running "$RUN_PID" || fail "tidemark exited by itself before a kill"
    sleep "0.$((RANDOM % 8))"
    kill9_bg "$RUN_PID"
    printf '  rotation %d: kill -9; %7d lines written, table at %7s rows\n' "$r" \
      "$(lines_in "$T/tee")" "$(psql_q 'select count(*) from lines')"
    run_bg /dev/null "${ARGS[@]}"
  fi
done
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
ngz=$(ls "$D" | grep -c '\.gz$' || true)
[ "$ngz" -gt $((ROTS / 2)) ] || fail "logrotate compressed only $ngz files"
{ for f in "$D"/app.log*; do case $f in *.gz) zcat "$f" ;; *) cat "$f" ;; esac; done; } > "$T/ondisk"
echo "writer wrote $(cat "$T/written") lines; $ngz .gz files on disk"
sleep 1.5 # the last .gz settles
pg_wait_rows lines "$(wc -l < "$T/ondisk")" 60 "$RUN_PID"
sleep 1
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "no line twice, every line on disk in the table, nothing invented (SQL)"
psql_q 'select line from lines' > "$T/got"
assert_eq "$(psql_q 'select count(*) - count(distinct line) from lines')" 0 "lines in the table twice"
sort -u "$T/ondisk" > "$T/a"; sort -u "$T/got" > "$T/b"; sort -u "$T/tee" > "$T/c"
assert_eq "$(comm -23 "$T/a" "$T/b" | wc -l)" 0 "lines on disk not in the table"
assert_eq "$(comm -13 "$T/c" "$T/b" | wc -l)" 0 "rows the writer never wrote"
echo "  $(wc -l < "$T/got") rows; $(( $(wc -l < "$T/b") - $(wc -l < "$T/a") )) more than on disk (read before logrotate lost them)"
assert_no_sanitizer "$T/run.err"
pg_stop
pass
