#!/usr/bin/env bash
# Appended bytes are delivered once; nothing is repeated; new files, small
# files, empty files and files with identical content are all delivered;
# several processors each get every chunk; --from-end starts at the end.
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/state
mkdir -p "$D/sub/deeper"

say "first run delivers every byte of every file, stdout holds only data"
printf 'alpha 1\nalpha 2\n' > "$D/a.log"
tdm once -s "$S" "$D"
printf 'alpha 1\nalpha 2\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
[ -d "$S" ] || fail "state directory $S was not created"

say "second run with nothing new delivers nothing"
tdm once -s "$S" "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered by a run with nothing new"

say "appended lines are delivered, and only they"
printf 'alpha 3\n' >> "$D/a.log"
tdm once -s "$S" "$D"
printf 'alpha 3\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "several appends between runs arrive together, in order"
for i in 4 5 6; do printf 'alpha %d\n' "$i" >> "$D/a.log"; done
tdm once -s "$S" "$D"
printf 'alpha 4\nalpha 5\nalpha 6\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "new files (also in nested directories) are found and delivered"
printf 'beta 1\n' > "$D/sub/b.log"
printf 'gamma 1\n' > "$D/sub/deeper/c.log"
tdm once -s "$S" "$D"
sort "$STDOUT" > "$T/got"
printf 'beta 1\ngamma 1\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "a 3-byte file is tracked and read at once"
printf 'xy\n' > "$D/tiny"
tdm once -s "$S" "$D"
printf 'xy\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
printf 'z\n' >> "$D/tiny"
tdm once -s "$S" "$D"
printf 'z\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "an empty file is tracked; its first bytes arrive later"
: > "$D/empty.log"
tdm once -s "$S" "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered for an empty file"
printf 'now not empty\n' >> "$D/empty.log"
tdm once -s "$S" "$D"
printf 'now not empty\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "files with identical content / identical first lines are distinct files"
for n in 1 2 3; do printf 'same header\nsame body\n' > "$D/dup$n.log"; done
printf 'same header\ndifferent body\n' > "$D/dup4.log"
tdm once -s "$S" "$D"
sort "$STDOUT" > "$T/got"
printf 'different body\nsame body\nsame body\nsame body\nsame header\nsame header\nsame header\nsame header\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"
status_json "$S"
assert_eq "$(jcount)" 9 "files tracked (a b c tiny empty dup1-4)"

say "a larger file (~20 MB) arrives byte-identical through stdout and file"
gen_lines 1 150000 > "$D/big.log"
tdm once -s "$S" -p stdout -p "file:path=$T/out" "$D"
assert_file_eq "$STDOUT" "$D/big.log"
assert_file_eq "$T/out" "$D/big.log"

say "appends to many files at once: each appended byte exactly once"
S2=$T/state2; D2=$T/many
mkdir -p "$D2"
for i in $(seq 1 50); do printf 'f%02d l1\n' "$i" > "$D2/f$i"; done
tdm once -s "$S2" -p "file:path=$T/out2" "$D2"
for i in $(seq 1 50); do printf 'f%02d l2\nf%02d l3\n' "$i" "$i" >> "$D2/f$i"; done
tdm once -s "$S2" -p "file:path=$T/out2" "$D2"
cat "$D2"/f* | sort > "$T/want"
sort "$T/out2" > "$T/got"
assert_file_eq "$T/got" "$T/want"

say "count processor: totals at exit, on stdout"
S3=$T/state3
tdm once -s "$S3" -p count "$D2"
assert_eq "$(grep -c '' "$STDOUT")" 1 "lines printed by count"
read -r files lines bytes < <(sed -n 's/^count: files=\([0-9]*\) chunks=[0-9]* lines=\([0-9]*\) bytes=\([0-9]*\)$/\1 \2 \3/p' "$STDOUT") || true
assert_eq "${files:-}" 50 "count files= (stdout: $(cat "$STDOUT"))"
assert_eq "${lines:-}" 150 "count lines="
assert_eq "${bytes:-}" "$(cat "$D2"/f* | wc -c)" "count bytes="
tdm once -s "$S3" -p count "$D2"
assert_contains "$STDOUT" "lines=0 bytes=0"

say "two processors both get every chunk"
S4=$T/state4
tdm once -s "$S4" -p "file:path=$T/o1" -p "file:path=$T/o2" -p count "$D2"
assert_file_eq "$T/o1" "$T/o2"
assert_eq "$(fsize "$T/o1")" "$(cat "$D2"/f* | wc -c)" "bytes in each file output"
assert_contains "$STDOUT" "lines=150 "

say "the same DIR named relatively, absolutely, with ./ and .. : the same files"
S6=$T/state6
assert_exit 0 bash -c 'cd "$1" && exec "$2" once -s "$3" many' _ "$T" "$TIDEMARK" "$S6"
assert_eq "$(fsize "$STDOUT")" "$(cat "$D2"/f* | wc -c)" "bytes delivered via a relative DIR"
tdm once -s "$S6" "$D2"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered again via the absolute DIR"
tdm once -s "$S6" "$T/./many/../many/"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered again via ./ and .."
status_json "$S6"
assert_eq "$(jq -r '[.files[].path | startswith("/")] | all' "$T/status.json")" true "all stored paths absolute"
assert_eq "$(jcount)" 50 "files tracked via three spellings of one DIR"

say "--from-end: files first seen start at their end; later appends are delivered"
S5=$T/state5
tdm once -s "$S5" --from-end "$D2"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered on a --from-end first run"
printf 'after end\n' >> "$D2/f7"
tdm once -s "$S5" --from-end "$D2"
printf 'after end\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

pass
