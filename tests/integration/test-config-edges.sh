#!/usr/bin/env bash
# Rough edges of the configuration, through the real binary: a bad glob is
# refused naming the option (exit 2); an INI key given twice is refused naming
# both lines; an INI line of any length works, and a processor spec longer
# than the store's 511-byte keys runs, checkpoints and resumes; a processor
# from the INI file that is refused is named with its FILE:LINE.
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/st
mkdir -p "$D"
printf 'one\ntwo\n' > "$D/a.log"

say "-i '[' is a bad glob: exit 2 naming the option"
assert_exit 2 "$TIDEMARK" once -s "$S" -i '[' "$D"
assert_contains "$STDERR" "-i"
assert_contains "$STDERR" "glob"
assert_exit 2 "$TIDEMARK" once -s "$S" --exclude 'a[b' "$D"
assert_contains "$STDERR" "--exclude"

say "an INI key given twice: exit 2 naming both lines"
printf 'state = %s\nmode = tail\n; comment\nmode = whole\n' "$S" > "$T/dup.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/dup.ini" "$D"
assert_contains "$STDERR" "dup.ini:4"
assert_contains "$STDERR" "dup.ini:2"

say "a bad glob in the INI file names FILE:LINE"
printf 'state = %s\ninclude = *.[ch\n' "$S" > "$T/glob.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/glob.ini" "$D"
assert_contains "$STDERR" "glob.ini:2"

say "a 3000-byte exec:cmd= line in the INI file works (the spec is over 511 bytes)"
PAD=$(head -c 3000 /dev/zero | tr '\0' x)
printf 'state = %s\nprocessor = exec:cmd=/bin/sh -c "cat >> %s" sh %s\n' "$S" "$T/out" "$PAD" > "$T/long.ini"
[ "$(wc -c < "$T/long.ini")" -gt 3000 ] || fail "the INI line is not long"
tdm once -c "$T/long.ini" "$D"
assert_file_eq "$T/out" "$D/a.log"
printf 'three\n' >> "$D/a.log"
tdm once -c "$T/long.ini" "$D"
assert_file_eq "$T/out" "$D/a.log"

say "a processor refused from the INI file is named with FILE:LINE"
printf 'state = %s\n\nprocessor = nope:x=1\n' "$S" > "$T/proc.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/proc.ini" "$D"
assert_contains "$STDERR" "nope"
assert_contains "$STDERR" "proc.ini:3"

say "options that mean nothing together are usage errors, not ignored"
assert_exit 2 "$TIDEMARK" once -m whole -s "$S" --multiline-start '^A' -p count "$D"
assert_contains "$STDERR" "--multiline-start: only in tail mode"
assert_exit 2 "$TIDEMARK" once -s "$S" --multiline-timeout-ms 5 -p count "$D"
assert_contains "$STDERR" "--multiline-timeout-ms: only with --multiline-start"
printf 'state = %s\nmode = whole\nmultiline-start = ^A\n' "$S" > "$T/mlw.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/mlw.ini" -p count "$D"
assert_contains "$STDERR" "mlw.ini:3: multiline-start: only in tail mode"
printf 'state = %s\n\nmultiline-timeout-ms = 5\n' "$S" > "$T/mlt.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/mlt.ini" -p count "$D"
assert_contains "$STDERR" "mlt.ini:3: multiline-timeout-ms: only with --multiline-start"

say "on-done = move:DIR in the INI file: a bad DIR names FILE:LINE"
printf 'state = %s\nmode = whole\non-done = move:%s/nonexistent\n' "$S" "$T" > "$T/od.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/od.ini" -p count "$D"
assert_contains "$STDERR" "$T/nonexistent: No such file or directory"
assert_contains "$STDERR" "od.ini:3: on-done: refused"
printf 'state = %s\nmode = whole\n\non-failed = move:%s\n' "$S" "$D/a.log" > "$T/of.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/of.ini" -p count "$D"
assert_contains "$STDERR" "not a directory"
assert_contains "$STDERR" "of.ini:4: on-failed: refused"
