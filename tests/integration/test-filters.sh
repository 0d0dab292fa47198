#!/usr/bin/env bash
# Which files: --include / --exclude globs (on the name, or on the path under
# DIR when the glob has a '/'), --no-recursive, hidden files skipped unless
# included, several DIRs.
source "$(dirname "$0")/lib.sh"

D=$T/tree
mkdir -p "$D/sub/deep" "$T/other"
# Every file holds one line: its own path under the tree.
for f in a.log b.txt .hidden.log sub/c.log sub/e.txt sub/.h2 sub/deep/d.log sub/deep/f.txt; do
  printf '%s\n' "$f" > "$D/$f"
done
printf 'other/o.log\n' > "$T/other/o.log"

n=0
# expect "WANT FILES (space separated, sorted)" -- OPTIONS...
expect() {
  local want
  want=$(printf '%s\n' $1 | sort | tr '\n' ' ' | sed 's/ $//'); shift
  n=$((n + 1))
  say "tidemark once $* -> $want"
  tdm once -s "$T/state$n" "$@"
  sort "$STDOUT" | tr '\n' ' ' | sed 's/ $//' > "$T/got"
  assert_eq "$(cat "$T/got")" "$want" "files delivered for: $*"
  # And the store tracks exactly those files.
  status_json "$T/state$n"
  assert_eq "$(jcount)" "$(wc -w <<<"$want")" "files tracked for: $*"
}

expect "a.log b.txt sub/c.log sub/deep/d.log sub/deep/f.txt sub/e.txt" "$D"
expect "a.log sub/c.log sub/deep/d.log" -i '*.log' "$D"
expect "a.log sub/c.log" -i '*.log' -x 'd.*' "$D"
expect "b.txt sub/deep/f.txt sub/e.txt" -x '*.log' "$D"
expect "a.log b.txt sub/deep/f.txt sub/e.txt" -i '*.txt' -i 'a.*' "$D"
expect "a.log b.txt" --no-recursive "$D"
expect "a.log" --no-recursive -i '*.log' "$D"
expect "sub/deep/d.log sub/deep/f.txt" -i 'sub/deep/*' "$D"
expect "a.log b.txt sub/c.log sub/deep/d.log sub/deep/f.txt" -x 'sub/e.txt' "$D"
expect ".hidden.log" -i '.hidden.log' "$D"
expect ".hidden.log sub/.h2" -i '.*' "$D"
expect "" -i 'nothing-matches-*' "$D"
expect "a.log b.txt sub/c.log sub/deep/d.log sub/deep/f.txt sub/e.txt other/o.log" "$D" "$T/other"
expect "a.log other/o.log sub/c.log sub/deep/d.log" -i '*.log' "$D" "$T/other"

say "overlapping DIRs (a DIR and its subdirectory, or one DIR twice): each file once"
expect "a.log b.txt sub/c.log sub/deep/d.log sub/deep/f.txt sub/e.txt" "$D" "$D/sub"
expect "sub/c.log sub/deep/d.log sub/deep/f.txt sub/e.txt" "$D/sub" "$D/sub/deep" "$D/sub"

say "a bracket glob and a ? glob"
expect "a.log b.txt" -i '[ab].*' "$D"
expect "sub/e.txt sub/deep/f.txt" -i '?.txt' -x 'b.txt' "$D"

say "a later run still applies the filters (excluded files never delivered)"
tdm once -s "$T/state2" -i '*.log' "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered on the second filtered run"
printf 'b.txt again\n' >> "$D/b.txt"
printf 'a.log again\n' >> "$D/a.log"
tdm once -s "$T/state2" -i '*.log' "$D"
printf 'a.log again\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

pass
