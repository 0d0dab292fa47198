#!/usr/bin/env bash
# kill -9 after the records of new content went to the store (a truncated
# file's new generation, a compressed copy: written before their first
# chunk) but before the checkpoint: what the truncated file was must still
# be in the store, so that its compressed copy continues its bookmark and
# is not delivered again from 0 (the oracle's tail-file-logrotate seed
# 981494623239: an inode of a rotated log given to the new app.log, then
# kill -9 every second or so; 300-440 lines twice).
#   1. The truncation met at a start, its copy only after the kill: the
#      truncation's ghost goes to the store with the new generation.
#   2. The truncation and its copy (logrotate's olddir: another directory,
#      scanned after) met by one start, the copy's unread tail handed over:
#      the copy's record starts from the bookmark the ghost had in the store,
#      not from 0 (the ghost itself is forgotten by the copy that continues
#      it, and was never written).
# (An inode of a rotated log given to the new one: it.inode-reuse-kill9.)
# The kill is placed exactly: the processor is a program fed through its
# stdin (exec) that kills tidemark with -9 when it reads the line TRIGGER,
# leaving the lines after it unread in its pipe (the checkpoint waits for
# them).
source "$(dirname "$0")/lib.sh"
command -v gzip >/dev/null || skip "gzip is not installed"

kill9_on_trigger "$T/proc.sh"

# case N WHERE: WHERE the TRIGGER line is (new: in app.log's new content;
# tail: in the old content's unread tail, which only the copy has).
case_() {
  local n=$1 where=$2 D=$T/c$1/logs O=$T/c$1/old S=$T/c$1/state
  mkdir -p "$D" "$O"
  rm -f "$T/seen"
  local ARGS=(-s "$S" -i 'app.log*' -p "exec:cmd=$T/proc.sh" --settle-ms 200 "$D" "$O")

  say "$n: app.log read to its end (300 lines) and checkpointed"
  for i in $(seq 1 300); do echo "a:$i the first content of app.log, line $i"; done > "$D/app.log"
  tdm once "${ARGS[@]}"
  assert_eq "$(grep -c '^a:' "$T/seen")" 300 "lines delivered by the first once"

  say "$n: 10 lines more, then app.log copied and truncated"
  for i in $(seq 301 310); do
    echo "a:$i the first content of app.log, line $i"
    [ "$where" = tail ] && [ "$i" = 303 ] && echo TRIGGER
  done >> "$D/app.log"
  cp "$D/app.log" "$T/copy"
  : > "$D/app.log"
  { echo "b:1 after the truncation"; [ "$where" = new ] && echo TRIGGER
    for i in $(seq 2 50); do echo "b:$i after the truncation"; done; } >> "$D/app.log"
  if [ "$where" = tail ]; then
    gzip -c "$T/copy" > "$O/app.log.1.gz"
    make_old "$O/app.log.1.gz"
  fi

  say "$n: once meets the truncation; kill -9 once TRIGGER is handed over"
  touch "$T/arm"
  assert_exit 137 "$TIDEMARK" once -v "${ARGS[@]}"
  cp "$STDERR" "$T/c$n/killed.err"
  assert_contains "$T/c$n/killed.err" "truncated"
  [ ! -e "$T/arm" ] || fail "the processor never read TRIGGER"

  if [ "$where" = new ]; then
    say "$n: the compressed copy appears (compressed while tidemark was down)"
    gzip -c "$T/copy" > "$O/app.log.1.gz"
    make_old "$O/app.log.1.gz"
  fi
  tdm once -v "${ARGS[@]}"
  cp "$STDERR" "$T/c$n/after.err"

  say "$n: each line of the old content once: the copy continued the bookmark"
  # (Lines after the durable bookmark, handed over before the kill, come
  # again: the program saw them uncommitted. Not those before it.)
  awk -F'[: ]' '$1 == "a" && $2 <= 300' "$T/seen" | sort | uniq -d > "$T/dups"
  assert_eq "$(wc -l < "$T/dups")" 0 "old lines delivered twice (e.g. $(head -1 "$T/dups"))"
  assert_eq "$(grep '^a:' "$T/seen" | sort -u | wc -l)" 310 "old lines delivered (the unread tail from the copy)"
  assert_eq "$(grep '^b:' "$T/seen" | sort -u | wc -l)" 50 "lines after the truncation"
  assert_no_sanitizer "$T/c$n/after.err"
}

case_ 1 new
assert_contains "$T/c1/after.err" "copy of"
case_ 2 tail
assert_contains "$T/c2/killed.err" "copy of"

pass
