#!/usr/bin/env bash
# `once` on a full output disk (a real 1 MiB tmpfs) gives up after
# --retry-timeout-ms instead of retrying the chunk forever: it names the file
# and the processor, keeps the bookmark (status shows the bytes pending) and
# exits 1. Once space is back, the next `once` delivers the rest.
# The same limit comes from the INI file. Needs root for mount (else skip).
source "$(dirname "$0")/lib.sh"

D=$T/logs; S=$T/state; FULL=$T/full
mkdir -p "$D" "$FULL"
mount -t tmpfs -o size=1m tmpfs "$FULL" 2>/dev/null || skip "cannot mount a tmpfs (not root?)"
unmount_full() { local rc=$?; umount "$FULL" 2>/dev/null || true; set +e; (exit "$rc"); _tdm_exit; }
trap unmount_full EXIT
for i in 1 2 3; do seq -f "f$i %09g" 1 40000 > "$D/f$i"; done   # 3 x 520000 bytes

say "once on a full disk: exit 1 after the give-up time, naming file and processor"
assert_exit 1 "$TIDEMARK" once -s "$S" --retry-timeout-ms 1500 -p "file:path=$FULL/out" "$D"
assert_contains "$STDERR" "giving up"
assert_contains "$STDERR" "processor 'file:path=$FULL/out'"
grep -q "$D/f[123]" "$STDERR" || fail "the message does not name the file"
assert_contains "$STDERR" "--retry-timeout-ms"

say "the bookmark is kept: status shows bytes still pending"
status_json "$S"
pending=$(jq '[.files[].pending] | add' "$T/status.json")
[ "$pending" -gt 0 ] || fail "nothing pending after giving up"

say "the same limit from the INI file"
printf 'retry-timeout-ms = 1000\n' > "$T/conf.ini"
assert_exit 1 "$TIDEMARK" once -c "$T/conf.ini" -s "$S" -p "file:path=$FULL/out" "$D"
assert_contains "$STDERR" "giving up"

say "space comes back: the next once delivers the rest"
umount "$FULL"
tdm once -s "$S" -p "file:path=$T/out2" "$D"
[ -s "$T/out2" ] || fail "nothing delivered after space came back"
status_json "$S"
assert_eq "$(jq '[.files[].pending] | add' "$T/status.json")" 0 "pending after the rerun"

say "--help names the option"
tdm --help
assert_contains "$STDOUT" "--retry-timeout-ms"
