#!/usr/bin/env bash
# nats: a replay publishes every byte once even where it cuts differently
# from the run that crashed (records=chunk: the replay reads more at once;
# --multiline-start: a record the timeout ended, read longer after a
# continuation line was appended while tidemark was down). In each case a
# `run` publishes while its checkpoints are held back (a second processor,
# the test plugin `records` with a hold file, answers RETRY to commit), is
# killed with -9, more is written, and `once` replays from the old
# bookmark: the stream then holds each byte (each line) once.
source "$(dirname "$0")/lib.sh"
need_nats
RP=$TDM_TEST_PLUGINS/records
[ -f "$RP/records.so" ] || fail "the records test plugin is not built"
nats_start
js create CH 'ch.>' 120
js create ML 'ml.>' 120
HERE=$(dirname "$0")
HOLD=$T/hold

bookmark_at_most() {
  local b
  status_quiet "$1"
  b=$(jq -r '[.files[].bookmark] | max // 0' "$T/st.json")
  [ "$b" -le "$2" ] || fail "the bookmark is at $b, past $2, before the kill: nothing to replay"
}

say "records=chunk: the replay reads 200 lines where the crashed run read 100"
D=$T/c; mkdir -p "$D"; : > "$D/a.log"
SPEC="nats:url=$NATS_URL,subject=ch.x,stream=CH,records=chunk"
touch "$HOLD"
run_bg "$T/run.out" -s "$T/sc" --plugin-dir "$RP" --checkpoint-ms 200 -p "$SPEC" -p "records:path=$T/rc,hold=$HOLD" "$D"
sleep 0.5
seq -f 'first %g' 100 >> "$D/a.log"
want=$(fsize "$D/a.log")
has_all() { [ "$("$TDM_JSCLIENT" "$NATS_URL" payloads CH | wc -c)" -ge "$want" ]; }
wait_for 20 has_all
sleep 0.5
bookmark_at_most "$T/sc" 0
kill9_bg "$RUN_PID"
rm -f "$HOLD"
seq -f 'second %g' 100 >> "$D/a.log"
tdm once -s "$T/sc" --plugin-dir "$RP" -p "$SPEC" -p "records:path=$T/rc,hold=$HOLD" "$D"
js_dump CH "$T/ch.dump"
python3 "$HERE/check-chunks.py" "$T/ch.dump" "$D/a.log" > "$T/check.out" || fail "$(cat "$T/check.out")"
cat "$T/check.out"

say "--multiline-start: a record the timeout ended, replayed longer"
D=$T/m; mkdir -p "$D"; : > "$D/app.log"
SPEC="nats:url=$NATS_URL,subject=ml.x,stream=ML"
ML=(--multiline-start '^START' --multiline-timeout-ms 300)
rm -f "$HOLD"
run_bg "$T/run.out" -s "$T/sm" --plugin-dir "$RP" "${ML[@]}" --checkpoint-ms 200 -p "$SPEC" -p "records:path=$T/rm,hold=$HOLD" "$D"
sleep 0.5
touch "$HOLD" # after the first checkpoint (bookmark 0): the next ones wait
sleep 0.3
printf 'START 1\n  at a\n  at b\n' >> "$D/app.log"
wait_count ML 1 20 "$RUN_PID"
sleep 0.5
bookmark_at_most "$T/sm" 0
kill9_bg "$RUN_PID"
rm -f "$HOLD"
printf '  at c\nSTART 2\n  at d\n' >> "$D/app.log"
sleep 0.5 # START 2 then ends by the timeout too
tdm once -s "$T/sm" --plugin-dir "$RP" "${ML[@]}" -p "$SPEC" -p "records:path=$T/rm,hold=$HOLD" "$D"
js_dump ML "$T/ml.dump"
cut -f5 "$T/ml.dump"
cut -f5 "$T/ml.dump" | sed 's/\\n/\n/g' > "$T/ml.lines"
assert_lines_once "$D/app.log" "$T/ml.lines" "lines of app.log in the stream"
assert_eq "$(cut -f2 "$T/ml.dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"
nats_stop
pass
