#!/usr/bin/env bash
# Rename rotation (logrotate `create`, `mv app.log app.log.1`): the renamed file
# keeps its bookmark and is read to its end; the new file at the old name
# starts at 0. Nothing lost, nothing repeated, across several rotations.
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/state
mkdir -p "$D"
RD=$(realpath "$D")
run() { tdm once -s "$S" -i 'app.log*' -p "file:path=$T/out" -p stdout "$D"; }

say "first run reads app.log"
printf 'gen0 line1\ngen0 line2\ngen0 line3\n' > "$D/app.log"
printf 'not matched\n' > "$D/other.txt"
run
assert_file_eq "$STDOUT" "$D/app.log"
ino0=$(stat -c %i "$D/app.log")

say "rotation: unread tail of the renamed file + the new file, each once"
printf 'gen0 line4\ngen0 line5\n' >> "$D/app.log"
mv "$D/app.log" "$D/app.log.1"
printf 'gen1 line1\n' > "$D/app.log"
run
printf 'gen0 line4\ngen0 line5\ngen1 line1\n' > "$T/want"
sort "$STDOUT" > "$T/got"
assert_file_eq "$T/got" "$T/want"

say "status: the bookmark followed the inode to its new name"
status_json "$S"
assert_eq "$(jfile inode "$RD/app.log.1")" "$ino0" "inode of the entry for app.log.1"
assert_eq "$(jfile bookmark "$RD/app.log.1")" "$(fsize "$D/app.log.1")" "bookmark of app.log.1"
assert_eq "$(jfile bookmark "$RD/app.log")" "$(fsize "$D/app.log")" "bookmark of the new app.log"
n_ino0=$(jq --argjson i "$ino0" '[.files[] | select(.inode == $i and .present != false)] | length' "$T/status.json")
assert_eq "$n_ino0" 1 "present entries for the rotated inode"

say "nothing new: nothing delivered"
run
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered with nothing new"

say "second rotation with writes to both generations before the run"
printf 'gen1 line2\n' >> "$D/app.log"
mv "$D/app.log.1" "$D/app.log.2"
mv "$D/app.log" "$D/app.log.1"
printf 'gen1 line3\n' >> "$D/app.log.1"   # a writer still holding the old file
printf 'gen2 line1\n' > "$D/app.log"
run
printf 'gen1 line2\ngen1 line3\ngen2 line1\n' > "$T/want"
sort "$STDOUT" > "$T/got"
assert_file_eq "$T/got" "$T/want"

say "the file output holds every line of every generation exactly once"
cat "$D"/app.log* | sort > "$T/want"
sort "$T/out" > "$T/got"
assert_file_eq "$T/got" "$T/want"
assert_not_contains "$T/out" "not matched"

say "a partial line at rotation time is completed in the renamed file"
printf 'gen2 partial' >> "$D/app.log"
run
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered for a partial line"
mv "$D/app.log.2" "$D/app.log.3"; mv "$D/app.log.1" "$D/app.log.2"; mv "$D/app.log" "$D/app.log.1"
printf ' done\n' >> "$D/app.log.1"
printf 'gen3 line1\n' > "$D/app.log"
run
printf 'gen2 partial done\ngen3 line1\n' > "$T/want"
sort "$STDOUT" > "$T/got"
assert_file_eq "$T/got" "$T/want"

say "a rotated file removed (compressed away) leaves the rest intact"
rm "$D/app.log.3"
printf 'gen3 line2\n' >> "$D/app.log"
run
printf 'gen3 line2\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "a rotated generation moved into a subdirectory is still the same file"
mkdir -p "$D/old"
mv "$D/app.log.2" "$D/old/app.log.2"
run
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered after moving a read file"
cat "$D"/app.log* "$D"/old/app.log* | sort > "$T/want"
sort "$T/out" | uniq > "$T/got"
# every line present...
comm -23 "$T/want" "$T/got" > "$T/missing"
assert_eq "$(fsize "$T/missing")" 0 "lines missing from the output: $(head -c 300 "$T/missing")"
# ...and none twice
assert_eq "$(sort "$T/out" | uniq -d | wc -l)" 0 "lines delivered twice"

say "two files swap names: each keeps its bookmark; appends arrive once"
printf 'x1\n' > "$D/app.log.x"; printf 'y1\n' > "$D/app.log.y"
run
mv "$D/app.log.x" "$D/tmp-swap"; mv "$D/app.log.y" "$D/app.log.x"; mv "$D/tmp-swap" "$D/app.log.y"
printf 'x2\n' >> "$D/app.log.y"; printf 'y2\n' >> "$D/app.log.x"
run
sort "$STDOUT" > "$T/got"
printf 'x2\ny2\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "a whole directory renamed: nothing delivered again"
mkdir -p "$D/dir1"; printf 'in dir1\n' > "$D/dir1/app.log"
run
mv "$D/dir1" "$D/dir2"
run
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered after renaming a directory"
printf 'after dir rename\n' >> "$D/dir2/app.log"
run
printf 'after dir rename\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

pass
