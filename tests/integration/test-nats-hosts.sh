#!/usr/bin/env bash
# nats: three tidemark instances (three state directories: three "hosts")
# read files of the same names and contents (same file ids, same offsets)
# into one stream. Their instance ids differ, so no message id collides:
# the stream holds every line of every instance once, ids distinct.
source "$(dirname "$0")/lib.sh"
need_nats
nats_start
js create LOGS 'logs.>' 120

gen_lines 1 3000 > "$T/app.log"
gen_lines 5001 6000 > "$T/db.log"
for h in 1 2 3; do
  mkdir -p "$T/host$h"
  cp "$T/app.log" "$T/db.log" "$T/host$h/"
done

say "three instances publish to one stream"
for h in 1 2 3; do
  tdm once -s "$T/state$h" -p "nats:url=$NATS_URL,subject=logs.hosts" "$T/host$h"
done
assert_eq "$(js_count LOGS)" 12000 "messages from three instances"
js_dump LOGS "$T/dump"
assert_eq "$(cut -f2 "$T/dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"

say "each instance's lines once, in order, under its own instance id"
insts=()
for h in 1 2 3; do
  status_json "$T/state$h"
  inst=$(jq -r .instance "$T/status.json")
  insts+=("$inst")
  for f in app db; do
    awk -F'\t' -v p="$(realpath "$T/host$h/$f.log")" -v i="$inst:" \
      '$3 == p && index($2, i) == 1 { print $5 }' "$T/dump" > "$T/got"
    assert_file_eq "$T/got" "$T/$f.log" "host$h/$f.log in the stream"
  done
done
[ "${insts[0]}" != "${insts[1]}" ] && [ "${insts[1]}" != "${insts[2]}" ] &&
  [ "${insts[0]}" != "${insts[2]}" ] || fail "instance ids are not distinct: ${insts[*]}"

say "the same id space would collide: the file ids and offsets are equal"
# (what makes the ids distinct is the instance part alone)
assert_eq "$(cut -f2 "$T/dump" | cut -d: -f2- | sort | uniq -d | wc -l)" 4000 \
  "FILE_ID:OFFSET pairs shared by the instances"

say "again: nothing new is published"
for h in 1 2 3; do
  tdm once -s "$T/state$h" -p "nats:url=$NATS_URL,subject=logs.hosts" "$T/host$h"
done
assert_eq "$(js_count LOGS)" 12000 "messages after a second round"
nats_stop
pass
