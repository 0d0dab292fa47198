#!/usr/bin/env bash
# Binary data: NUL bytes, CR/LF, random bytes. --records bytes delivers files
# byte-identical; lines mode passes NULs and CRs through untouched.
source "$(dirname "$0")/lib.sh"

D=$T/d
mkdir -p "$D"

say "--records bytes: 8 MiB of random bytes, byte-identical through file and stdout"
head -c 8388608 /dev/urandom > "$D/random.bin"
tdm once -s "$T/s1" --records bytes -p "file:path=$T/out" -p stdout "$D"
assert_file_eq "$T/out" "$D/random.bin"
assert_file_eq "$STDOUT" "$D/random.bin"

say "--records bytes: appended random bytes (no record boundaries) arrive once"
head -c 1234567 /dev/urandom > "$T/more"
cat "$T/more" >> "$D/random.bin"
tdm once -s "$T/s1" --records bytes -p "file:path=$T/out" -p stdout "$D"
assert_file_eq "$STDOUT" "$T/more"
assert_file_eq "$T/out" "$D/random.bin"

say "--records bytes: a file of NUL bytes only"
D2=$T/d2; mkdir -p "$D2"
head -c 300000 /dev/zero > "$D2/zeros"
tdm once -s "$T/s2" --records bytes "$D2"
assert_file_eq "$STDOUT" "$D2/zeros"

say "lines mode: NULs inside lines and CRLF endings pass through unchanged"
D3=$T/d3; mkdir -p "$D3"
printf 'a\0b\n\0\0\nwin\r\nlast\0line\n' > "$D3/nul.log"
tdm once -s "$T/s3" -p stdout -p count "$D3"
# stdout holds the data followed by the count line; split them.
head -c "$(fsize "$D3/nul.log")" "$STDOUT" > "$T/got"
assert_file_eq "$T/got" "$D3/nul.log"
assert_contains "$STDOUT" "lines=4 bytes=$(fsize "$D3/nul.log")"

say "lines mode: random binary ending in a newline arrives byte-identical"
D4=$T/d4; mkdir -p "$D4"
{ head -c 4000000 /dev/urandom; printf '\n'; } > "$D4/bin.log"
tdm once -s "$T/s4" -p "file:path=$T/out4" "$D4"
assert_file_eq "$T/out4" "$D4/bin.log"

say "lines mode: random binary without a final newline stops at the last newline"
D5=$T/d5; mkdir -p "$D5"
# random bytes with every newline removed, then one line, then a tail
{ head -c 100000 /dev/urandom | tr -d '\n'; printf '\n'; } > "$T/want5"
{ cat "$T/want5"; head -c 5000 /dev/urandom | tr -d '\n'; } > "$D5/tail.bin"
tdm once -s "$T/s5" -p "file:path=$T/out5" "$D5"
assert_file_eq "$T/out5" "$T/want5"

pass
