#!/usr/bin/env bash
# nats, whole mode: new content under a file id that was handled before is a
# new generation (tdm_chunk_t.generation), so its messages get ids never
# used before and the stream's duplicate window keeps them: a done file
# rewritten in place (twice), and daily drops under one name with
# --on-done delete (a new file usually gets the freed inode back). The same
# bytes written again are no new version.
source "$(dirname "$0")/lib.sh"
need_nats
nats_start
js create W 'w.>' 120
SPEC="nats:url=$NATS_URL,subject=w.x,stream=W"

say "a done file rewritten in place, twice"
D=$T/a; mkdir -p "$D"
printf 'version one\n' > "$D/f"
make_old "$D/f"
tdm once -m whole --settle-ms 50 -s "$T/sa" -p "$SPEC" "$D"
printf 'VERSION TWO\n' > "$D/f"
make_old "$D/f"
tdm once -m whole --settle-ms 50 -s "$T/sa" -p "$SPEC" "$D"
printf 'version 3\n' > "$D/f"
make_old "$D/f"
tdm once -m whole --settle-ms 50 -s "$T/sa" -p "$SPEC" "$D"
js_dump W "$T/a.dump"
cut -f5 "$T/a.dump" > "$T/a.got"
printf 'version one\nVERSION TWO\nversion 3\n' > "$T/a.want"
assert_file_eq "$T/a.got" "$T/a.want" "the stream after three versions"
assert_eq "$(cut -f2 "$T/a.dump" | sort -u | wc -l)" 3 "distinct ids"

say "daily drops under one name, --on-done delete"
D=$T/b; mkdir -p "$D"
: > "$T/b.want"
for day in 1 2 3 4; do
  printf 'day %s row a\nday %s row b\n' "$day" "$day" > "$D/.data.tmp"
  printf 'day %s row a\nday %s row b\n' "$day" "$day" >> "$T/b.want"
  mv "$D/.data.tmp" "$D/data.csv"
  make_old "$D/data.csv"
  echo "  day $day: inode $(stat -c %i "$D/data.csv")"
  tdm once -m whole --settle-ms 50 --on-done delete -s "$T/sb" -p "$SPEC" "$D"
  [ ! -e "$D/data.csv" ] || fail "day $day: data.csv not deleted"
done
js_dump W "$T/all.dump"
grep -F "$D/data.csv" "$T/all.dump" | cut -f5 > "$T/b.got"
assert_file_eq "$T/b.got" "$T/b.want" "the stream after four daily drops"

say "the same bytes written again: not a new version, nothing published"
printf 'version 3\n' > "$T/a/f"
make_old "$T/a/f"
n=$(js_count W)
tdm once -m whole --settle-ms 50 -s "$T/sa" -p "$SPEC" "$T/a"
assert_eq "$(js_count W)" "$n" "messages after handling the same content again"
nats_stop
pass
