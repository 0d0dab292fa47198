#!/usr/bin/env bash
# `tidemark reset` forgets bookmarks: for the PATHs given, or all of them; the
# next run delivers those files again from 0. An untracked PATH is an error.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state
mkdir -p "$D"
RD=$(realpath "$D")
printf 'a1\na2\n' > "$D/a.log"
printf 'b1\n' > "$D/b.log"
printf 'c1\n' > "$D/c.log"

tdm once -s "$S" "$D"
sort "$STDOUT" > "$T/got"
printf 'a1\na2\nb1\nc1\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "reset of one PATH: only that file is delivered again, from 0"
tdm reset -s "$S" "$RD/a.log"
status_json "$S"
assert_eq "$(jfile bookmark "$RD/b.log")" 3 "bookmark of b.log kept"
a_bm=$(jfile bookmark "$RD/a.log")
[ -z "$a_bm" ] || [ "$a_bm" = 0 ] || fail "a.log still has bookmark $a_bm after reset"
tdm once -s "$S" "$D"
printf 'a1\na2\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "reset of a relative PATH (resolved against the working directory)"
assert_exit 0 bash -c 'cd "$1" && "$2" reset -s "$3" d/b.log' _ "$T" "$TIDEMARK" "$S"
tdm once -s "$S" "$D"
printf 'b1\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "reset of two PATHs at once; it says how many files it forgot"
tdm reset -s "$S" "$RD/a.log" "$RD/c.log"
assert_contains "$STDOUT" "forgot 2 files"
tdm once -s "$S" "$D"
sort "$STDOUT" > "$T/got"
printf 'a1\na2\nc1\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "reset of an untracked PATH: exit 1 naming it, nothing forgotten"
assert_exit 1 "$TIDEMARK" reset -s "$S" "$RD/not-tracked.log"
assert_contains "$STDERR" "not-tracked.log"
tdm once -s "$S" "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered after a refused reset"

say "reset of everything: all files delivered again, store empty in between"
tdm reset -s "$S"
status_json "$S"
n=$(jq '[.files[] | select(.bookmark > 0)] | length' "$T/status.json")
assert_eq "$n" 0 "files with a bookmark after a full reset"
tdm once -s "$S" "$D"
sort "$STDOUT" > "$T/got"
printf 'a1\na2\nb1\nc1\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "reset of a directory PATH forgets the files under it"
mkdir -p "$D/sub"; printf 's1\n' > "$D/sub/s.log"; printf 's2\n' > "$D/sub/t.log"
tdm once -s "$S" "$D"
tdm reset -s "$S" "$RD/sub"
assert_contains "$STDOUT" "forgot 2 files"
tdm once -s "$S" "$D"
sort "$STDOUT" > "$T/got"
printf 's1\ns2\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "after a reset, appends continue normally from the new bookmark"
printf 'a3\n' >> "$D/a.log"
tdm once -s "$S" "$D"
printf 'a3\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "reset while another writer holds the state: refused with 'in use'"
hold_lock "$S/writer.lock"
assert_exit 1 "$TIDEMARK" reset -s "$S"
assert_contains "$STDERR" "in use"
release_lock
tdm once -s "$S" "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered: the refused reset forgot nothing"

pass
