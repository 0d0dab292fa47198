#!/usr/bin/env bash
# tidemark never reads the output files of its own processors back as input,
# as it never reads its state directory: by identity (device, inode), not by
# name, and it says so once. `once` with OUT inside the source delivers the
# input once however often it runs; `run` does not grow OUT forever; an output
# that a processor creates only after the scan started is skipped too (a test
# plugin that opens its output at its first chunk); a hard link to OUT under
# another name is still OUT. --metrics-file inside the source (replaced by
# temp + rename at every checkpoint, a new inode each time) is not read back
# either, nor is its temporary.
source "$(dirname "$0")/lib.sh"

L=$T/logs; S=$T/state
mkdir -p "$L"
seq 1 10 > "$L/a"

say "once, three times, OUT inside the source: OUT holds the input once"
for i in 1 2 3; do
  tdm once -s "$S" -p "file:path=$L/out" "$L"
  assert_file_eq "$L/out" "$L/a" "out after once #$i"
done
assert_contains "$STDERR" "$L/out"
assert_contains "$STDERR" "output of processor"
status_json "$S"
assert_eq "$(jcount)" 1 "files tracked (only a, not out)"

say "run, OUT inside the source: OUT equals the input, said once"
mkdir -p "$T/logs2"; L2=$T/logs2
gen_lines 1 20000 > "$L2/a.log"
run_bg "$T/run.out" -s "$T/state2" -p "file:path=$L2/out.log" "$L2"
wait_lines "$L2/out.log" 20000 30 "$RUN_PID"
gen_lines 20001 20100 >> "$L2/a.log"
wait_lines "$L2/out.log" 20100 30 "$RUN_PID"
sleep 2.5 # two checkpoints: an output read back would show by now
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit of run"
assert_file_eq "$L2/out.log" "$L2/a.log" "run's out.log"
n=$(grep -c "output of processor" "$T/run.err" || true)
assert_eq "$n" 1 "times the skipped output is said"

say "a hard link to OUT under another name is OUT (identity, not name)"
ln "$L/out" "$L/out-link"
tdm once -s "$S" -p "file:path=$L/out" "$L"
assert_file_eq "$L/out" "$L/a" "out with a hard link to it in the tree"

say "an output created after the scan started (run, a plugin that opens it late)"
[ -e "$TDM_TEST_PLUGINS/late_out/late_out.so" ] || fail "late_out test plugin not built"
mkdir -p "$T/logs3"; L3=$T/logs3
seq 1 100 > "$L3/a"
run_bg "$T/run.out" -s "$T/state3" --plugin-dir "$TDM_TEST_PLUGINS/late_out" -p "late_out:path=$L3/late.out" "$L3"
wait_lines "$L3/late.out" 100 30 "$RUN_PID"
seq 101 150 >> "$L3/a"
wait_lines "$L3/late.out" 150 30 "$RUN_PID"
sleep 2.5
stop_bg "$RUN_PID"
assert_file_eq "$L3/late.out" "$L3/a" "late.out"
say "--metrics-file inside the source: run never reads it back"
LM=$T/logsm; mkdir -p "$LM"; echo "real line" > "$LM/app.log"
run_bg "$T/runm.out" -s "$T/statem" --checkpoint-ms 100 --metrics-file "$LM/tidemark.prom" \
  -p "file:path=$T/outm" "$LM"
wait_lines "$T/outm" 1 30 "$RUN_PID"
for i in $(seq 20); do echo "more $i" >> "$LM/app.log"; sleep 0.1; done
wait_lines "$T/outm" 21 30 "$RUN_PID"
sleep 1
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run's exit status"
{ echo "real line"; seq -f 'more %g' 20; } > "$T/wantm"
assert_lines_once "$T/wantm" "$T/outm" "OUT with --metrics-file in the source"
assert_contains "$T/run.err" "tidemark's --metrics-file: not read as input"
status_json "$T/statem"
assert_eq "$(jcount)" 1 "files tracked with --metrics-file in the source (only app.log)"

say "once, twice, --metrics-file by a relative path inside the source"
mkdir -p "$T/logsr"; echo "real line" > "$T/logsr/app.log"
( cd "$T" && tdm once -s "$T/statem2" --metrics-file logsr/m.prom -p "file:path=$T/outm2" logsr \
  && tdm once -s "$T/statem2" --metrics-file logsr/m.prom -p "file:path=$T/outm2" logsr )
grep -v '^# \|^tidemark_' "$T/outm2" > "$T/outm2.data" || true
assert_file_eq "$T/outm2" "$T/logsr/app.log"

pass
