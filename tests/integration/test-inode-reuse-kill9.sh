#!/usr/bin/env bash
# app.log rotated to app.log.1 (tidemark saw it), which is deleted by gzip
# while tidemark is down, and its inode given to the new app.log
# (logrotate's `create`): the new file's record goes to the store before
# its first chunk with the inode the old record still names, then kill -9.
# At the next start both records are loaded: the old one is kept as a ghost
# (what its content was: head, bookmark, marker), not deleted, and the .gz
# continues from its bookmark instead of being delivered again from 0.
# Needs the filesystem to give the freed inode to the next file (ext4 does,
# unless another process takes it first): skipped otherwise.
# The kill is placed exactly: the processor is a program fed through its
# stdin (exec) that kills tidemark with -9 when it reads the line TRIGGER,
# leaving the lines after it unread in its pipe (the checkpoint waits for
# them).
source "$(dirname "$0")/lib.sh"
command -v gzip >/dev/null || skip "gzip is not installed"

kill9_on_trigger "$T/proc.sh"
D=$T/logs; S=$T/state
mkdir -p "$D"
rm -f "$T/seen"
ARGS=(-s "$S" -i 'app.log*' -p "exec:cmd=$T/proc.sh" --settle-ms 200 "$D")
say "app.log read to its end (300 lines), renamed to app.log.1 (seen)"
for i in $(seq 1 300); do echo "a:$i the first content of app.log, line $i"; done > "$D/app.log"
tdm once "${ARGS[@]}"
mv "$D/app.log" "$D/app.log.1"
tdm once "${ARGS[@]}"
say "10 lines more, app.log.1 deleted (its copy kept), a new app.log in its inode"
for i in $(seq 301 310); do echo "a:$i the first content of app.log, line $i"; done >> "$D/app.log.1"
ino=$(stat -c %i "$D/app.log.1")
cp "$D/app.log.1" "$T/copy"
rm "$D/app.log.1"
{ echo "b:1 after the rotation"; echo TRIGGER
  for i in $(seq 2 50); do echo "b:$i after the rotation"; done; } > "$D/app.log"
[ "$(stat -c %i "$D/app.log")" = "$ino" ] ||
  skip "this filesystem did not give the freed inode to the next file (case 3 needs it)"
touch "$T/arm"
assert_exit 137 "$TIDEMARK" once -v "${ARGS[@]}"
cp "$STDERR" "$T/killed.err"
assert_contains "$T/killed.err" "a new file in the inode"
[ ! -e "$T/arm" ] || fail "the processor never read TRIGGER"
say "the compressed copy appears"
gzip -c "$T/copy" > "$D/app.log.1.gz"
make_old "$D/app.log.1.gz"
tdm once -v "${ARGS[@]}"
cp "$STDERR" "$T/after.err"
say "each line of the old content once"
awk -F'[: ]' '$1 == "a" && $2 <= 300' "$T/seen" | sort | uniq -d > "$T/dups"
assert_eq "$(wc -l < "$T/dups")" 0 "old lines delivered twice (e.g. $(head -1 "$T/dups"))"
assert_eq "$(grep '^a:' "$T/seen" | sort -u | wc -l)" 310 "old lines delivered (the unread tail from the copy)"
assert_eq "$(grep '^b:' "$T/seen" | sort -u | wc -l)" 50 "lines after the rotation"
assert_contains "$T/after.err" "copy of"
assert_no_sanitizer "$T/after.err"
pass
