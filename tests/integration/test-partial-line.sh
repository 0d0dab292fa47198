#!/usr/bin/env bash
# lines mode: a partial last line waits for its newline, then arrives whole and
# once. bytes mode: everything goes out at once.
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/state
mkdir -p "$D"
F=$D/app.log
RF=$(realpath "$D")/app.log

say "a partial last line is held back"
printf 'one\ntw' > "$F"
tdm once -s "$S" "$D"
printf 'one\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "status: bookmark stops at the last newline, the partial line is pending"
status_json "$S"
assert_eq "$(jfile bookmark "$RF")" 4 "bookmark"
assert_eq "$(jfile size "$RF")" 6 "size"
assert_eq "$(jfile pending "$RF")" 2 "pending bytes"

say "a run with the line still partial delivers nothing"
tdm once -s "$S" "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered while the line is still partial"

say "the completed line arrives whole, once; the next partial one waits"
printf 'o\nthr' >> "$F"
tdm once -s "$S" "$D"
printf 'two\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
printf 'ee\n' >> "$F"
tdm once -s "$S" "$D"
printf 'three\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "a line built from many small partial appends arrives once, whole"
for c in a b c d e f g h; do printf '%s' "$c" >> "$F"; tdm once -s "$S" "$D"; assert_eq "$(fsize "$STDOUT")" 0 "bytes out for a partial line"; done
printf '\n' >> "$F"
tdm once -s "$S" "$D"
printf 'abcdefgh\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "file processor: output ends at a line boundary, complete after the newline"
S2=$T/state2; D2=$T/logs2; mkdir -p "$D2"
printf 'l1\nl2\nl3-part' > "$D2/x"
tdm once -s "$S2" -p "file:path=$T/out" "$D2"
printf 'l1\nl2\n' > "$T/want"
assert_file_eq "$T/out" "$T/want"
printf 'ial\n' >> "$D2/x"
tdm once -s "$S2" -p "file:path=$T/out" "$D2"
assert_file_eq "$T/out" "$D2/x"

say "a file without any newline delivers nothing in lines mode"
S3=$T/state3; D3=$T/logs3; mkdir -p "$D3"
head -c 5000 /dev/zero | tr '\0' 'q' > "$D3/noeol"
tdm once -s "$S3" -p count "$D3"
assert_contains "$STDOUT" "lines=0 bytes=0"

say "bytes mode: the partial tail is delivered at once"
S4=$T/state4; D4=$T/logs4; mkdir -p "$D4"
printf 'ab' > "$D4/raw"
tdm once -s "$S4" --records bytes "$D4"
printf 'ab' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
printf 'c\nd' >> "$D4/raw"
tdm once -s "$S4" --records bytes "$D4"
printf 'c\nd' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
status_json "$S4"
assert_eq "$(jfile bookmark "$(realpath "$D4")/raw")" 5 "bytes-mode bookmark"
assert_eq "$(jfile pending "$(realpath "$D4")/raw")" 0 "bytes-mode pending"

pass
