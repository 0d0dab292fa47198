#!/usr/bin/env bash
# Content rewritten in place (same inode, different content) and inode reuse
# (a deleted file's inode given to a new file) are new files: delivered whole,
# from 0, never resumed at the old offset.
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/state
mkdir -p "$D"
RD=$(realpath "$D")
: > "$T/all"
run() { tdm once -s "$S" -p "file:path=$T/out" -p stdout "$D"; cat "$STDOUT" >> "$T/all"; }

say "rewrite in place, same inode and same size, other head: delivered again from 0"
printf 'hello world\n' > "$D/a"
run
ino=$(stat -c %i "$D/a")
sleep 0.05   # a distinct mtime even with a coarse (jiffy) clock
printf 'HELLO WORLD\n' 1<> "$D/a"        # overwrite without truncating
assert_eq "$(stat -c %i "$D/a")" "$ino" "inode after in-place overwrite"
assert_eq "$(fsize "$D/a")" 12 "size after in-place overwrite"
run
printf 'HELLO WORLD\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "rewrite in place to a larger file with another head: all of it from 0"
sleep 0.05   # a distinct mtime even with a coarse (jiffy) clock
printf 'Hello again, world\nsecond line\n' 1<> "$D/a"
run
printf 'Hello again, world\nsecond line\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
status_json "$S"
assert_eq "$(jfile bookmark "$RD/a")" 31 "bookmark after rewrite"

say "same head, bytes just before the bookmark rewritten (+ an append): from 0"
gen_lines 1 2000 > "$D/b"              # ~190 KB: longer than any head fingerprint
run
assert_file_eq "$STDOUT" "$D/b"
size=$(fsize "$D/b")
# Replace the 30 bytes before the final newline, keep the size, then append.
printf 'X%.0s' $(seq 1 30) | dd of="$D/b" bs=1 seek=$((size - 31)) conv=notrunc status=none
printf 'appended after the rewrite\n' >> "$D/b"
run
assert_file_eq "$STDOUT" "$D/b" "a file rewritten before its bookmark was not redelivered whole"

say "inode reuse: a new file on a deleted file's inode is new, delivered from 0"
gen_lines 1 100 > "$D/c"
run
old_ino=$(stat -c %i "$D/c")
rm "$D/c"
reused=""
for try in 1 2 3 4 5; do
  gen_lines 500 800 | sed 's/^/reuse /' > "$D/n$try"   # larger, other head
  if [ "$(stat -c %i "$D/n$try")" = "$old_ino" ]; then reused=$D/n$try; break; fi
done
if [ -z "$reused" ]; then
  echo "note: the filesystem did not reuse inode $old_ino; the reuse case ran without reuse"
fi
run
cat "$D"/n* > "$T/want"
sort "$STDOUT" > "$T/got"; sort "$T/want" > "$T/want.s"
assert_file_eq "$T/got" "$T/want.s" "new files (one on a reused inode) were not delivered whole"

if [ -n "$reused" ]; then
  say "status: the reused inode is tracked under its new path with a fresh bookmark"
  status_json "$S"
  assert_eq "$(jfile inode "$(realpath "$reused")")" "$old_ino" "inode of the new entry"
  assert_eq "$(jfile bookmark "$(realpath "$reused")")" "$(fsize "$reused")" "bookmark of the new file"
  p=$(jfile present "$RD/c")
  [ -z "$p" ] || [ "$p" = false ] || fail "the deleted file $RD/c is listed as present=$p"

  say "inode reuse by a smaller file with the same name: delivered from 0"
  rm "$reused"
  printf 'tiny\n' > "$reused"
  echo "note: inode $( [ "$(stat -c %i "$reused")" = "$old_ino" ] && echo reused || echo 'not reused')"
  run
  printf 'tiny\n' > "$T/want"
  assert_file_eq "$STDOUT" "$T/want"
fi

say "rewrite with a shorter file on the same inode and path (rm + create): from 0"
printf 'first content that is fairly long\n' > "$D/d"
run
rm "$D/d"; printf 'other\n' > "$D/d"
run
printf 'other\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "the file output got exactly what stdout got, in the same order"
assert_file_eq "$T/out" "$T/all"

pass
