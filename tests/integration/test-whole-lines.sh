#!/usr/bin/env bash
# Whole mode honours --records lines: every chunk ends at a line end, so a
# sink that sends one message per line (nats records=line) gets each line
# whole, also where a line straddles the 1 MiB read, for a plain file and a
# gzip one; the last line without its '\n' is whole too (the file is
# complete). A line longer than the buffer goes out in pieces.
source "$(dirname "$0")/lib.sh"
need_nats
nats_start
js create S 'logs.>' 120

D=$T/drop; S=$T/state; mkdir -p "$D"
python3 -c "
import sys; sys.stdout.write(''.join('%-98s\n' % ('row %d' % i) for i in range(30000)))" > "$T/d.csv"
cp "$T/d.csv" "$D/d.csv"
python3 -c "
import sys; sys.stdout.write(''.join('%-98s\n' % ('zrow %d' % i) for i in range(30000)))" | gzip -c > "$D/z.csv.gz"
printf 'last line without a newline' > "$D/e.csv"
touch -d '-5 sec' "$D"/*
tdm once -q -m whole --settle-ms 100 -s "$S" -p "nats:url=$NATS_URL,subject=logs.x,stream=S" "$D"
js_dump S "$T/dump"
cut -f5 "$T/dump" > "$T/got"
short=$(awk 'length($0) != 98 && $0 != "last line without a newline"' "$T/got" | wc -l)
assert_eq "$short" 0 "messages that are not a whole line (of $(lines_in "$T/got"))"
assert_eq "$(lines_in "$T/got")" 60001 "messages for 60,001 lines"
grep -c '^row ' "$T/got" | grep -qx 30000 || fail "rows of d.csv: $(grep -c '^row ' "$T/got")"
nats_stop
pass
