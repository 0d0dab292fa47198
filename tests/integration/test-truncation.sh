#!/usr/bin/env bash
# Truncation (`: > file`, logrotate copytruncate): noticed, counted, reading
# restarts at 0 and the new content is delivered once.
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/state
mkdir -p "$D"
F=$D/app.log; RF=$(realpath "$D")/app.log
run() { tdm once -s "$S" -x '*.1' -p "file:path=$T/out" -p stdout "$D"; }

say "read the file"
printf 'aaaa line 1\naaaa line 2\naaaa line 3\n' > "$F"
ino=$(stat -c %i "$F")
run
assert_file_eq "$STDOUT" "$F"

say "truncate to 0 and write less than before: new content from 0, once"
: > "$F"
printf 'bbbb 1\n' >> "$F"
assert_eq "$(stat -c %i "$F")" "$ino" "inode kept by truncation"
run
printf 'bbbb 1\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "status counts the truncation and the bookmark restarted"
status_json "$S"
assert_eq "$(jfile truncations "$RF")" 1 "truncations"
assert_eq "$(jfile bookmark "$RF")" 7 "bookmark after truncation"
assert_eq "$(jq '[.files[] | select(.state != "gone")] | length' "$T/status.json")" 1 \
  "entries (a truncated file is the same file)"
assert_eq "$(jq '[.files[] | select(.state == "gone")] | length' "$T/status.json")" 1 \
  "gone records (what it was before the truncation, for a copy of it)"

say "appends after the truncation continue from the new bookmark"
printf 'bbbb 2\n' >> "$F"
run
printf 'bbbb 2\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "copytruncate: copy away (excluded), truncate, write again"
cp "$F" "$F.1"
: > "$F"
printf 'cccc\n' > "$F"
run
printf 'cccc\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
status_json "$S"
assert_eq "$(jfile truncations "$RF")" 2 "truncations after the second one"

say "truncated to the same head, shorter: the head is delivered again"
printf 'dddd 1\ndddd 2\ndddd 3\n' > "$F"   # '>' truncates then writes: longer, other head
run
printf 'dddd 1\ndddd 2\ndddd 3\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
: > "$F"; printf 'dddd 1\n' > "$F"
run
printf 'dddd 1\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "truncated and refilled past the old bookmark with other content: all of it, from 0"
printf 'eeee\n' >> "$F"
run
printf 'eeee\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"   # bookmark now 12
: > "$F"
printf 'a much longer replacement line\nand another\n' > "$F"
run
printf 'a much longer replacement line\nand another\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "truncated to empty: nothing delivered, later content from 0"
: > "$F"
run
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered from an empty file"
printf 'ffff\n' > "$F"
run
printf 'ffff\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "the file output got every generation once, in order"
printf 'aaaa line 1\naaaa line 2\naaaa line 3\nbbbb 1\nbbbb 2\ncccc\ndddd 1\ndddd 2\ndddd 3\ndddd 1\neeee\na much longer replacement line\nand another\nffff\n' > "$T/want"
assert_file_eq "$T/out" "$T/want"

pass
