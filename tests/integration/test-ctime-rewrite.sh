#!/usr/bin/env bash
# A file rewritten in place with new bytes of the same size whose mtime is
# put back (cp -p, rsync --inplace -t, tar, touch -d) must be seen: its ctime
# changed (size, mtime and ctime unchanged = unchanged). Tail mode delivers
# the new content; whole mode handles the new version. Under `once` and
# under `run`.
source "$(dirname "$0")/lib.sh"

L=$T/logs; D=$T/drop
mkdir -p "$L" "$D"

say "tail, once: same size, mtime put back"
printf 'AAAA\nBBBB\n' > "$L/x"; touch -d 2020-01-01 "$L/x"
tdm once -q -s "$T/st1" -p "file:path=$T/out1" "$L"
sleep 0.05 # a ctime tick
printf 'CCCC\nDDDD\n' > "$L/x"; touch -d 2020-01-01 "$L/x"
tdm once -q -s "$T/st1" -p "file:path=$T/out1" "$L"
assert_eq "$(tr '\n' ' ' < "$T/out1")" "AAAA BBBB CCCC DDDD " "tail output"

say "tail, once: an unchanged file is still not read again"
tdm once -q -s "$T/st1" -p "file:path=$T/out1" "$L"
assert_eq "$(tr '\n' ' ' < "$T/out1")" "AAAA BBBB CCCC DDDD " "tail output after a third once"

say "whole, once: same size, mtime put back: a new version"
printf 'v1 payload\n' > "$D/f"; touch -d 2020-01-01 "$D/f"
tdm once -q -m whole --settle-ms 10 -s "$T/st2" -p "file:path=$T/out2" "$D"
sleep 0.05
printf 'v2 payload\n' > "$D/f"; touch -d 2020-01-01 "$D/f"
tdm once -q -m whole --settle-ms 10 -s "$T/st2" -p "file:path=$T/out2" "$D"
assert_eq "$(tr '\n' ' ' < "$T/out2")" "v1 payload v2 payload " "whole output"

say "tail, run: same size, mtime put back while running (found by the sweep: SIGHUP)"
printf 'EEEE\nFFFF\n' > "$L/y"; touch -d 2020-01-01 "$L/y"
run_bg "$T/run.out" -s "$T/st3" -p "file:path=$T/out3" "$L"
wait_lines "$T/out3" 4 20 "$RUN_PID"  # x and y
stop_bg "$RUN_PID"
printf 'GGGG\nHHHH\n' > "$L/y"; touch -d 2020-01-01 "$L/y"
run_bg "$T/run.out" -s "$T/st3" -p "file:path=$T/out3" "$L"
wait_lines "$T/out3" 6 20 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID"
assert_contains "$T/out3" "GGGG"
assert_eq "$(lines_in "$T/out3")" 6 "lines of the run output"
pass
