#!/usr/bin/env bash
# A processor that fails (stdout into a pipe whose reader went away): a clear
# message, exit 1 (not death by SIGPIPE), and the bookmark does not move past
# bytes that were not accepted: the next run delivers exactly the rest.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state
mkdir -p "$D"
gen_lines 1 200000 > "$D/a.log"          # ~20 MB, far more than a pipe holds
RF=$(realpath "$D")/a.log

say "once | head -c 100: exit 1 with a message, no SIGPIPE death"
set +o pipefail
timeout 60 "$TIDEMARK" once -s "$S" "$D" 2>"$T/err" | head -c 100 > "$T/head"
rc=${PIPESTATUS[0]}
set -o pipefail
[ "$rc" -ne 124 ] || fail "once into a closed pipe hung"
[ "$rc" -lt 128 ] || fail "once into a closed pipe died by signal $((rc - 128))"
assert_eq "$rc" 1 "exit of once into a closed pipe ($(tail -n 2 "$T/err"))"
assert_contains "$T/err" "stdout"
cmp -s "$T/head" <(head -c 100 "$D/a.log") || fail "the first 100 bytes through the pipe are wrong"

say "the bookmark stays at or before what the pipe took; the next run delivers the rest exactly"
status_json "$S"
bm=$(jfile bookmark "$RF"); bm=${bm:-0}
echo "bookmark after the failed run: $bm of $(fsize "$D/a.log")"
[ "$bm" -lt "$(fsize "$D/a.log")" ] || fail "bookmark moved to the end although delivery failed"
tdm once -s "$S" -p stdout "$D"
tail -c +"$((bm + 1))" "$D/a.log" > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "and then nothing is left"
tdm once -s "$S" "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered after the rest was delivered"

pass
