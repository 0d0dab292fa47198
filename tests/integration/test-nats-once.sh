#!/usr/bin/env bash
# nats: `once` over 35,000 lines in two files publishes each line once, in
# file order, one message per line with a unique Nats-Msg-Id
# INSTANCE:FILE_ID:OFFSET and Tidemark-Path/Tidemark-Offset headers; a second
# `once` publishes nothing; status shows the instance and the stream's
# duplicate window. The plugin is found without --plugin-dir.
source "$(dirname "$0")/lib.sh"
need_nats
nats_start
js create LOGS 'logs.>' 120

D=$T/d; S=$T/state
mkdir -p "$D"
RD=$(realpath "$D")
gen_lines 1 20000 > "$D/a.log"
gen_lines 20001 35000 > "$D/b.log"
SPEC="nats:url=$NATS_URL,subject=logs.test,stream=LOGS"

say "once publishes every line (-v: the processor's start line)"
tdm once -v -s "$S" -p "$SPEC" "$D"
assert_contains "$STDERR" "duplicate window 120 s"
assert_eq "$(js_count LOGS)" 35000 "messages in the stream"
js_dump LOGS "$T/dump"

say "each line once, in file order, with its path and offset"
status_json "$S"
inst=$(jq -r .instance "$T/status.json")
[[ "$inst" =~ ^[0-9a-f]{16}$ ]] || fail "status instance [$inst] is not 16 hex digits"
for f in a b; do
  id=$(jfile id "$RD/$f.log")
  awk -F'\t' -v p="$RD/$f.log" '$3 == p { print $5 }' "$T/dump" > "$T/got.$f"
  assert_file_eq "$T/got.$f" "$D/$f.log" "payloads of $f.log in stream order"
  # ids: INSTANCE:FILE_ID:OFFSET, OFFSET the line's first byte = the header
  awk -F'\t' -v p="$RD/$f.log" '$3 == p { print $2 " " $4 }' "$T/dump" > "$T/ids.$f"
  awk '{ print o; o += length($0) + 1 }' o=0 "$D/$f.log" |
    awk -v i="$inst" -v f="$id" '{ print i ":" f ":" $1 " " $1 }' > "$T/want-ids.$f"
  assert_file_eq "$T/ids.$f" "$T/want-ids.$f" "ids and Tidemark-Offset of $f.log"
done
assert_eq "$(cut -f2 "$T/dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"

say "status shows the stream and its duplicate window"
assert_eq "$(jq -r '.processors[] | select(.spec | startswith("nats:")) | .note' "$T/status.json")" \
  "nats $NATS_URL stream LOGS, duplicate window 120 s" "status note of the nats processor"
tdm status -s "$S"
assert_contains "$STDOUT" "instance $inst"
assert_contains "$STDOUT" "duplicate window 120 s"

say "a second once publishes nothing; the start line shows the stream's duplicate window at the default verbosity"
tdm once -s "$S" -p "$SPEC" "$D"
assert_contains "$STDERR" "tidemark: once: 1 dir, processors: nats"
assert_contains "$STDERR" "stream LOGS, duplicate window 120 s"
grep -A1 "tidemark: once: 1 dir" "$STDERR" | grep -q "duplicate window" ||
  fail "the duplicate window does not follow the start line"
assert_eq "$(js_count LOGS)" 35000 "messages after a second once"

say "appended lines: only they are published"
gen_lines 35001 35010 >> "$D/b.log"
tdm once -s "$S" -p "$SPEC" "$D"
assert_eq "$(js_count LOGS)" 35010 "messages after appending 10 lines"
nats_stop
pass
