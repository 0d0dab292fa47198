#!/usr/bin/env bash
# A truncation met at a start, then kill -9 after the truncated file's new
# generation went to the store (before its first chunk) but before the
# checkpoint: the ghost that keeps what the file was (its head, bookmark and
# marker) goes to the store with that new generation, not later. Without it
# the store says "truncated, at 0" and nothing else: the compressed copy made
# of the old content (logrotate's compress, finished while tidemark was
# down; or an inode of a rotated file given to the new app.log, as the
# oracle's tail-file-logrotate seed 981494623239 met) was delivered again
# from 0.
#
# The kill is placed exactly: the processor is a program fed through its
# stdin (exec) that kills tidemark with -9 when it reads the line TRIGGER,
# leaving the lines after it unread in its pipe (the checkpoint waits for
# them).
source "$(dirname "$0")/lib.sh"
command -v gzip >/dev/null || skip "gzip is not installed"

D=$T/logs; S=$T/state
mkdir -p "$D"
cat > "$T/proc.sh" <<EOF
#!/usr/bin/env bash
while IFS= read -r l; do
  printf '%s\n' "\$l" >> "$T/seen"
  if [ "\$l" = TRIGGER ] && [ -e "$T/arm" ]; then
    rm -f "$T/arm"
    kill -9 "\$PPID"
    sleep 30
  fi
done
EOF
chmod +x "$T/proc.sh"
ARGS=(-s "$S" -i 'app.log*' -p "exec:cmd=$T/proc.sh" --settle-ms 200 "$D")

say "app.log read to its end (300 lines) and checkpointed"
for i in $(seq 1 300); do echo "a:$i the first content of app.log, line $i"; done > "$D/app.log"
tdm once "${ARGS[@]}"
assert_eq "$(grep -c '^a:' "$T/seen")" 300 "lines delivered by the first once"

say "10 lines more, then app.log copied and truncated (the copy not there yet)"
for i in $(seq 301 310); do echo "a:$i the first content of app.log, line $i"; done >> "$D/app.log"
cp "$D/app.log" "$T/copy"
: > "$D/app.log"
{ echo "b:1 after the truncation"; echo TRIGGER
  for i in $(seq 2 50); do echo "b:$i after the truncation"; done; } >> "$D/app.log"

say "once meets the truncation; kill -9 once the new content is handed over"
touch "$T/arm"
assert_exit 137 "$TIDEMARK" once -v "${ARGS[@]}"
cp "$STDERR" "$T/killed.err"
assert_contains "$T/killed.err" "truncated"
[ ! -e "$T/arm" ] || fail "the processor never read TRIGGER"

say "the compressed copy appears (compressed while tidemark was down)"
gzip -c "$T/copy" > "$D/app.log.1.gz"
make_old "$D/app.log.1.gz"
tdm once -v "${ARGS[@]}"
cp "$STDERR" "$T/after.err"

say "each line of the old content once: the copy continued the bookmark"
grep '^a:' "$T/seen" | sort | uniq -d > "$T/dups"
assert_eq "$(wc -l < "$T/dups")" 0 "old lines delivered twice (e.g. $(head -1 "$T/dups"))"
assert_eq "$(grep '^a:' "$T/seen" | sort -u | wc -l)" 310 "old lines delivered (the unread tail from the copy)"
assert_eq "$(grep '^b:' "$T/seen" | sort -u | wc -l)" 50 "lines after the truncation"
assert_contains "$T/after.err" "copy of"
assert_no_sanitizer "$T/after.err"
pass
