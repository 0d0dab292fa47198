#!/usr/bin/env bash
# nats: 20 new files are published by `tidemark run` with checkpoints far
# apart, and it is killed with -9 right after their first delivery, before
# any checkpoint recorded them. Five more files appear before the restart.
# Message ids are built from each file's id: the ids handed out before the
# kill must be durable already, so that after the restart every old file
# keeps its id (its replay is dropped by the stream's duplicate window) and
# no new file gets one of them (its messages would be dropped as replays).
# The stream then holds every line exactly once.
source "$(dirname "$0")/lib.sh"
need_nats
nats_start
js create LOGS 'logs.>' 120

D=$T/d; S=$T/state
mkdir -p "$D"
SPEC="nats:url=$NATS_URL,subject=logs.new,stream=LOGS"

# Lines of one length everywhere: a new file under an old file's id would
# name its lines exactly as that file's were named.
write_file() { # NAME
  local i
  for i in $(seq -w 1 50); do printf '%s line %s\n' "$1" "$i"; done > "$D/$1.log"
}
for k in $(seq -w 1 20); do write_file "old$k"; done

say "first run: 20 new files delivered, killed before a checkpoint"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 600000 "$D"
wait_count LOGS 1000 30 "$RUN_PID"
kill9_bg "$RUN_PID"
assert_eq "$(js_count LOGS)" 1000 "messages after the first run"

say "five more files, then a restart catches up"
for k in $(seq -w 1 5); do write_file "new$k"; done
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
wait_count LOGS 1250 30 "$RUN_PID"
sleep 1 # a replay under other ids would come now
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "every line exactly once, ids unique"
cat "$D"/*.log > "$T/want"
js_dump LOGS "$T/dump"
cut -f5 "$T/dump" > "$T/got"
assert_lines_once "$T/want" "$T/got" "stream after a kill -9 before the first checkpoint"
assert_eq "$(cut -f2 "$T/dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"
assert_no_sanitizer "$T/run.err"
nats_stop
pass
