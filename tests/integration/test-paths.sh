#!/usr/bin/env bash
# Hostile file names (spaces, newlines, $(...), `...`, ';', quotes, leading
# dash, backslashes, non-ASCII) are files like any other: delivered, tracked
# under their exact names, reset by name, and nothing in them is executed.
source "$(dirname "$0")/lib.sh"

D="$T/dir with spaces; and \$(touch PWNED_DIR)"
S=$T/state
mkdir -p "$D/sub \`touch PWNED_SUB\`"
RD=$(realpath "$D")
cd "$T"   # anything executed by accident would land here

names=(
  "with space.log"
  $'new\nline.log'
  '$(touch PWNED).log'
  '`touch PWNED2`.log'
  'semi;colon;touch PWNED3.log'
  "quo'te\"s.log"
  '-dash.log'
  '--help'
  'back\slash\n.log'
  'tab	char.log'
  'ünïcødé.log'
  'star*and?.log'
  '|pipe&amp>redir<.log'
  "sub \`touch PWNED_SUB\`/nested \$(touch PWNED4).log"
)
: > "$T/want"
i=0
for n in "${names[@]}"; do
  i=$((i + 1))
  printf 'content %02d\n' "$i" > "$D/$n"
  printf 'content %02d\n' "$i" >> "$T/want"
done
echo "created ${#names[@]} files with hostile names"

say "every file delivered once, through stdout and file"
tdm once -s "$S" -p stdout -p "file:path=$T/out file;\$(touch PWNED5)" "$D"
sort "$STDOUT" > "$T/got"
assert_file_eq "$T/got" "$T/want"
sort "$T/out file;\$(touch PWNED5)" > "$T/got2"
assert_file_eq "$T/got2" "$T/want"

say "nothing was executed"
found=$(find "$T" / -maxdepth 1 -name 'PWNED*' 2>/dev/null; find "$T" -name 'PWNED*' 2>/dev/null)
assert_eq "$found" "" "files created by executed names"

say "a name that is not valid UTF-8 is delivered and status --json still parses"
printf 'latin1 name\n' > "$D/"$'caf\xe9\xff.log'
tdm once -s "$S" "$D"
printf 'latin1 name\n' > "$T/want1"
assert_file_eq "$STDOUT" "$T/want1"
status_json "$S"
rm "$D/"$'caf\xe9\xff.log'
tdm once -s "$T/state-tmp" "$D"   # (a fresh state for the exact-name checks below)
S=$T/state-tmp

say "status --json holds every exact name (newline, tab, quotes escaped properly)"
status_json "$S"
assert_eq "$(jcount)" "${#names[@]}" "files tracked"
for n in "${names[@]}"; do
  [ -n "$(jfile bookmark "$RD/$n")" ] || fail "status has no entry for $(printf '%q' "$RD/$n")"
  assert_eq "$(jfile bookmark "$RD/$n")" 11 "bookmark of $(printf '%q' "$n")"
done

say "the status table does not break on these names"
tdm status -s "$S"
assert_contains "$STDOUT" "with space.log"

say "appends to hostile names arrive; reset by a hostile name works"
printf 'more\n' >> "$D/${names[1]}"
printf 'more too\n' >> "$D/-dash.log"
tdm once -s "$S" "$D"
sort "$STDOUT" > "$T/got"
printf 'more\nmore too\n' > "$T/want2"
assert_file_eq "$T/got" "$T/want2"
tdm reset -s "$S" "$RD/${names[2]}"
tdm reset -s "$S" -- "$RD/-dash.log"
tdm once -s "$S" "$D"
sort "$STDOUT" > "$T/got"
printf 'content 03\ncontent 07\nmore too\n' > "$T/want3"
assert_file_eq "$T/got" "$T/want3"

say "include globs match hostile names literally"
tdm once -s "$T/state2" -i '$(touch PWNED).log' -i "quo'te\"s.log" "$D"
sort "$STDOUT" > "$T/got"
printf 'content 03\ncontent 06\n' > "$T/want4"
assert_file_eq "$T/got" "$T/want4"

say "a deep path (~3,000 bytes) is delivered and tracked"
deep=$T/deep
p=$deep
for i in $(seq 1 28); do p=$p/$(printf 'level%02d-%090d' "$i" 0); done
mkdir -p "$p"
printf 'deep content\n' > "$p/deep.log"
printf 'shallow content\n' > "$deep/shallow.log"
echo "path length: $(printf '%s' "$p/deep.log" | wc -c)"
tdm once -s "$T/state-deep" "$deep"
sort "$STDOUT" > "$T/got"
printf 'deep content\nshallow content\n' > "$T/want5"
assert_file_eq "$T/got" "$T/want5"
status_json "$T/state-deep"
assert_eq "$(jfile bookmark "$p/deep.log")" 13 "bookmark of the deep file"

say "a path longer than PATH_MAX (4096): no crash, the other files still delivered"
rel=.
for i in $(seq 29 45); do rel=$rel/$(printf 'level%02d-%090d' "$i" 0); done
# The shell cannot name a path over PATH_MAX: go there in two steps.
( cd "$p" && mkdir -p "$rel" && cd "$rel" && printf 'too deep\n' > too-deep.log ) ||
  fail "could not create the over-long path"
printf 'shallow 2\n' >> "$deep/shallow.log"
echo "path length: $(printf '%s' "$p/$rel/too-deep.log" | wc -c)"
assert_exit 0,1 "$TIDEMARK" once -s "$T/state-deep" "$deep"
assert_contains "$STDOUT" "shallow 2"
if [ "$LAST_EXIT" -ne 0 ] || ! grep -q 'too deep' "$STDOUT"; then
  echo "note: the over-long path was not delivered (exit $LAST_EXIT): $(tail -n 2 "$STDERR")"
  [ -s "$STDERR" ] || fail "an over-long path was silently skipped (no message)"
fi

say "still nothing executed"
found=$(find "$T" -name 'PWNED*' 2>/dev/null)
assert_eq "$found" "" "files created by executed names"

pass
