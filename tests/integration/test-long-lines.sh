#!/usr/bin/env bash
# Lines longer than --max-record are delivered in pieces and counted; every
# byte arrives, once, in order; short lines around them are untouched.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state
mkdir -p "$D"
RD=$(realpath "$D")
F=$D/long.log

say "--max-record 100: a 1000-byte line goes out in pieces, bytes intact"
{
  printf 'short before\n'
  head -c 999 /dev/zero | tr '\0' 'L'; printf '\n'
  printf 'short after\n'
} > "$F"
tdm once -s "$S" --max-record 100 -p stdout -p "file:path=$T/out" "$D"
assert_file_eq "$STDOUT" "$F"
assert_file_eq "$T/out" "$F"
status_json "$S"
pieces=$(jfile pieces "$RD/long.log")
[ "${pieces:-0}" -gt 0 ] || fail "status pieces=$pieces for a 1000-byte line with --max-record 100"
echo "pieces reported: $pieces"
assert_eq "$(jfile bookmark "$RD/long.log")" "$(fsize "$F")" "bookmark after a long line"

say "count: the long line's bytes all counted"
tdm once -s "$T/state-count" --max-record 100 -p count "$D"
assert_contains "$STDOUT" "bytes=$(fsize "$F")"

say "a long line still being written (no newline yet) beyond --max-record"
printf 'x%.0s' $(seq 1 250) >> "$F"     # 250 bytes, no newline
tdm once -s "$S" --max-record 100 "$D"
got1=$(fsize "$STDOUT"); cp "$STDOUT" "$T/part1"
# At least the full pieces may already go out; whatever went out is a prefix.
[ "$got1" -le 250 ] || fail "delivered $got1 bytes of a 250-byte unfinished line"
printf 'y%.0s' $(seq 1 30) >> "$F"; printf '\n' >> "$F"
tdm once -s "$S" --max-record 100 "$D"
cat "$T/part1" "$STDOUT" > "$T/got"
{ printf 'x%.0s' $(seq 1 250); printf 'y%.0s' $(seq 1 30); printf '\n'; } > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "default --max-record (1 MiB): a 3 MiB line and long lines across read boundaries"
D2=$T/d2; mkdir -p "$D2"
{
  gen_lines 1 1000
  head -c 3145728 /dev/zero | tr '\0' 'M'; printf '\n'
  gen_lines 1001 2000
  for n in 1 2 3 4 5; do head -c $((700000 + n * 1000)) /dev/zero | tr '\0' "$n"; printf '\n'; done
  gen_lines 2001 3000
} > "$D2/big.log"
tdm once -s "$T/state2" -p "file:path=$T/out2" -p count "$D2"
assert_file_eq "$T/out2" "$D2/big.log"
assert_contains "$STDOUT" "lines=$(grep -c '' "$D2/big.log") "
status_json "$T/state2"
p2=$(jfile pieces "$(realpath "$D2")/big.log")
[ "${p2:-0}" -gt 0 ] || fail "status pieces=$p2 for a 3 MiB line with the default --max-record"

say "many long lines with --max-record 64 (the minimum), file output intact"
D3=$T/d3; mkdir -p "$D3"
seq 1 3000 | awk '{ s = sprintf("%0" (50 + ($1 * 37) % 400) "d", $1); print s }' > "$D3/mixed.log"
tdm once -s "$T/state3" --max-record 64 -p "file:path=$T/out3" "$D3"
assert_file_eq "$T/out3" "$D3/mixed.log"

pass
