#!/usr/bin/env bash
# While `tidemark run` runs on a state directory:
#   - a second `run` and a `once` on it exit 1 with "in use", deliver nothing
#     and leave their `file` output untouched; the first keeps running;
#   - `status --json` reads the store: the file, its identity, its bookmark,
#     and the bookmark moving as checkpoints are made;
# and after it stops, `once` on the same state finds nothing new.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D"
RD=$(realpath "$D")
gen_lines 1 200 > "$D/a.log"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D"
wait_lines "$OUT" 200 15 "$RUN_PID"

say "a second run on the same state: exit 1, 'in use', nothing delivered"
printf 'precious\n' > "$T/out2"
TDM_CMD_TIMEOUT=20 assert_exit 1 "$TIDEMARK" run -s "$S" -p stdout -p "file:path=$T/out2" "$D"
assert_contains "$STDERR" "in use"
assert_eq "$(fsize "$STDOUT")" 0 "bytes a refused run wrote to stdout"
assert_eq "$(cat "$T/out2")" "precious" "file output of a refused run"

say "once on the same state: exit 1, 'in use'"
TDM_CMD_TIMEOUT=20 assert_exit 1 "$TIDEMARK" once -s "$S" -p stdout "$D"
assert_contains "$STDERR" "in use"
assert_eq "$(fsize "$STDOUT")" 0 "bytes a refused once wrote to stdout"
is_running "$RUN_PID" || fail "the first run exited after the refused ones"

# bookmark_is SIZE: status --json shows a.log with bookmark SIZE
bookmark_is() { field_is "$S" "$RD/a.log" bookmark "$1"; }

say "status --json while running: the file, its identity, its bookmark"
wait_for 10 bookmark_is "$(fsize "$D/a.log")"
status_json "$S"
assert_eq "$(jcount)" 1 "files tracked"
assert_eq "$(jfile inode "$RD/a.log")" "$(stat -c %i "$D/a.log")" "inode"
assert_eq "$(jfile dev "$RD/a.log")" "$(stat -c %d "$D/a.log")" "dev"
assert_eq "$(jfile size "$RD/a.log")" "$(fsize "$D/a.log")" "size"
assert_eq "$(jfile pending "$RD/a.log")" 0 "pending"
assert_eq "$(jfile present "$RD/a.log")" true "present"
assert_eq "$(jq -r '.last_checkpoint != null' "$T/status.json")" true "last_checkpoint is set"

say "status follows the bookmark as the running daemon checkpoints"
gen_lines 201 300 >> "$D/a.log"
wait_lines "$OUT" 300 10 "$RUN_PID"
wait_for 10 bookmark_is "$(fsize "$D/a.log")"
printf 'b\n' > "$D/b.log"
wait_for 10 bash -c '"$1" status -s "$2" --json | jq -e --arg p "$3" "[.files[] | select(.path == \$p and .bookmark == 2)] | length == 1"' \
  _ "$TIDEMARK" "$S" "$RD/b.log"
assert_exit 0 "$TIDEMARK" status -s "$S"
assert_contains "$STDOUT" "$RD/b.log"

say "stop; then once on the same state finds nothing new"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
cat "$D/a.log" "$D/b.log" > "$T/want"
assert_lines_once "$T/want" "$OUT"
tdm once -s "$S" -p stdout -p "file:path=$OUT" "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes a once after the run delivered"
assert_lines_once "$T/want" "$OUT" "output after the once"
assert_no_sanitizer "$T/run.err"

pass
