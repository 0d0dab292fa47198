#!/usr/bin/env bash
# nats after a truncation (logrotate copytruncate, `: > file`): the file keeps
# its id and its offsets begin again at 0, so new lines would share message
# ids with the lines before the truncation and the stream's duplicate window
# would drop them. The id carries the truncation count: nothing is lost.
source "$(dirname "$0")/lib.sh"
need_nats
nats_start
js create LOGS 'logs.>' 120

mkdir -p "$T/d"
gen_lines 1 200 > "$T/d/app.log"
SPEC="nats:url=$NATS_URL,subject=logs.app"

say "before the truncation"
tdm once -s "$T/s" -p "$SPEC" "$T/d"
assert_eq "$(js_count LOGS)" 200 "messages"

say "copytruncate: the file is emptied and written again from offset 0"
: > "$T/d/app.log"
tdm once -s "$T/s" -p "$SPEC" "$T/d"
gen_lines 1001 1150 > "$T/d/app.log"   # offsets the first lines had
tdm once -s "$T/s" -p "$SPEC" "$T/d"
assert_eq "$(js_count LOGS)" 350 "messages after the truncation (none dropped as duplicates)"
js_dump LOGS "$T/dump"
assert_eq "$(cut -f2 "$T/dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"

nats_stop
pass
