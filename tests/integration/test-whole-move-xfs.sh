#!/usr/bin/env bash
# --on-done move:DIR on another filesystem (/dev/shm): the moved file keeps
# its mode and its modification time, as mv(1) keeps them. A copy that a
# kill -9 cut short (DIR/.tidemark-move.INSTANCE.XXXXXX) is removed at the
# next start, and the move is done again; a temporary of another instance
# (another state directory moving into the same DIR) is left alone.
source "$(dirname "$0")/lib.sh"

[ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$T")" ] ||
  skip "needs /dev/shm on another filesystem than $T"
DONE=$(mktemp -d /dev/shm/tdm-done.XXXXXX)
trap 'rc=$?; rm -rf "$DONE"; (exit $rc); _tdm_exit' EXIT
D=$T/drop; S=$T/state; mkdir -p "$D"
printf '#!/bin/sh\nexit 0\n' > "$T/ok.sh"; chmod +x "$T/ok.sh"

say "across filesystems: mode and mtime kept"
printf 'one\n' > "$D/a.csv"; chmod 600 "$D/a.csv"; touch -d '2020-01-01 00:00:00' "$D/a.csv"
printf 'two\n' > "$D/b.csv"; chmod 640 "$D/b.csv"; touch -d '2021-06-30 12:34:56.123456789' "$D/b.csv"
tdm once -m whole --settle-ms 100 -s "$S" -p "exec:cmd=$T/ok.sh" --on-done "move:$DONE" "$D"
assert_eq "$(ls -A "$D" | wc -l)" 0 "files left in the drop directory"
assert_eq "$(stat -c %a "$DONE/a.csv")" 600 "mode of the moved a.csv"
assert_eq "$(stat -c %a "$DONE/b.csv")" 640 "mode of the moved b.csv"
assert_eq "$(stat -c %y "$DONE/a.csv")" "$(TZ=${TZ:-} date -d '2020-01-01 00:00:00' '+%Y-%m-%d %H:%M:%S.000000000 %z')" "mtime of the moved a.csv"
assert_eq "$(stat -c %Y.%y "$DONE/b.csv" | sed 's/.* [0-9:]*\.\([0-9]*\) .*/\1/')" 123456789 "nanoseconds of b.csv's mtime"
assert_eq "$(ls -A "$DONE" | grep -c '^\.' || true)" 0 "hidden files left in DIR"

say "a copy a kill -9 cut short is removed at the next start; another instance's is not"
INST=$("$TIDEMARK" status -s "$S" | sed -n 's/^instance //p')
[ -n "$INST" ] || fail "no instance id in status"
head -c 100000 /dev/zero > "$DONE/.tidemark-move.$INST.AbC123"
head -c 100 /dev/zero > "$DONE/.tidemark-move.0123456789abcdef.XyZ789"
printf 'three\n' > "$D/c.csv"
tdm once -m whole --settle-ms 100 -s "$S" -p "exec:cmd=$T/ok.sh" --on-done "move:$DONE" "$D"
[ ! -e "$DONE/.tidemark-move.$INST.AbC123" ] || fail "our partial copy is still in DIR"
[ -e "$DONE/.tidemark-move.0123456789abcdef.XyZ789" ] || fail "another instance's temporary was removed"
assert_eq "$(cat "$DONE/c.csv")" three "c.csv moved"

say "kill -9 during a copy of a large file, then a restart: one copy in DIR, nothing else"
rm -f "$DONE"/.tidemark-move.*
head -c 64M /dev/urandom > "$T/big.bin"; cp "$T/big.bin" "$D/big.csv"; touch -d '-5 sec' "$D/big.csv"
"$TIDEMARK" once -q -m whole --settle-ms 100 -s "$S" -p "exec:cmd=$T/ok.sh" --on-done "move:$DONE" "$D" 2>>"$T/run.err" &
P=$!
caught=0
for i in $(seq 2000); do
  if ls -A "$DONE" | grep -q '^\.tidemark-move\.'; then caught=1; break; fi
  kill -0 "$P" 2>/dev/null || break
  sleep 0.002
done
kill -9 "$P" 2>/dev/null || true; wait "$P" 2>/dev/null || true
echo "  killed with a temporary in DIR: $caught"
tdm once -q -m whole --settle-ms 100 -s "$S" -p "exec:cmd=$T/ok.sh" --on-done "move:$DONE" "$D"
cmp -s "$DONE/big.csv" "$T/big.bin" || fail "big.csv in DIR is not the file"
assert_eq "$(ls -A "$DONE" | grep -c '^\.tidemark-move\.' || true)" 0 "temporaries left in DIR"
assert_eq "$(ls -A "$D" | wc -l)" 0 "files left in the drop directory"
pass
