#!/usr/bin/env bash
# Whole mode ignores the temp files of common writers — rsync's hidden
# `.name.XXXXXX`, `*.tmp`, `*.part`, `*.swp` — even once they have been still
# far longer than --settle-ms; renamed to their final names they are handled
# once each. Under `run` (live), then under `once`.
source "$(dirname "$0")/lib.sh"

D=$T/drop; S=$T/state; LOG=$T/handled
mkdir -p "$D/sub"
make_handler "$T/handler.sh" "$LOG"
P="exec:cmd=$T/handler.sh"
temps=(.report.csv.Xy12Ab report2.csv.tmp sub/video.mp4.part .notes.txt.swp notes2.txt.swp sub/.hidden)

printf 'ready\n' > "$D/ready.txt"; make_old "$D/ready.txt"
: > "$T/want"; want_entry "$D/ready.txt" >> "$T/want"
run_bg "$T/run.out" -m whole --settle-ms 300 -s "$S" -p "$P" "$D"
wait_for 20 grep -q "$(hexstr "$D/ready.txt")" "$LOG"

say "run: temp files written and left still for 3x --settle-ms are not picked up"
i=0
for f in "${temps[@]}"; do
  i=$((i + 1)); printf 'temp content %d\n' "$i" > "$D/$f"
done
printf 'a normal file\n' > "$D/normal.csv"      # settles: handled
want_entry "$D/normal.csv" >> "$T/want"
wait_for 10 grep -q "$(hexstr "$D/normal.csv")" "$LOG"
sleep 1
assert_handled_once "$LOG" "$T/want" "with temp files present"

say "renamed to their final names: each handled once"
finals=(report.csv report2.csv sub/video.mp4 notes.txt notes2.txt sub/visible)
for j in "${!temps[@]}"; do
  mv "$D/${temps[$j]}" "$D/${finals[$j]}"
  want_entry "$D/${finals[$j]}" >> "$T/want"
done
wait_lines "$LOG" "$(lines_in "$T/want")" 15 "$RUN_PID"
sleep 1
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_handled_once "$LOG" "$T/want" "after the renames"
status_json "$S"
for f in "${temps[@]}"; do
  assert_eq "$(jfile state "$D/$f")" "" "status entry of the temp file $f"
done
for f in "${finals[@]}"; do assert_eq "$(jfile state "$D/$f")" done "state of $f"; done

say "once: temp files left in the tree are not picked up, even old ones"
for f in "${temps[@]}"; do printf 'second temp %s\n' "$f" > "$D/$f"; done
make_old "${temps[@]/#/$D/}"
tdm once -m whole --settle-ms 100 -s "$S" -p "$P" "$D"
assert_handled_once "$LOG" "$T/want" "once with temp files"
status_json "$S"
for f in "${temps[@]}"; do
  assert_eq "$(jfile state "$D/$f")" "" "status entry of the temp file $f after once"
done
assert_no_sanitizer "$T/run.err"

pass
