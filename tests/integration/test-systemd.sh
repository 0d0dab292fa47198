#!/usr/bin/env bash
# systemd: the shipped unit tidemark@.service scores at most 2.0 in
# `systemd-analyze security --offline=true`; `run` under a NOTIFY_SOCKET the
# test binds says READY=1 (after the first pass, with a STATUS= line counting
# the files), WATCHDOG=1 when WATCHDOG_USEC is set, and STOPPING=1 on SIGTERM;
# with JOURNAL_STREAM naming its stderr, log lines carry <N> priorities
# instead of "tidemark: LEVEL:", and not when it names another stream.
source "$(dirname "$0")/lib.sh"

BUILD=$(dirname "$TIDEMARK")
UNIT=$BUILD/tidemark@.service
[ -f "$UNIT" ] || fail "$UNIT was not generated"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is required"
command -v python3 >/dev/null || fail "python3 is required"

say "the unit: Type=notify, instance config, state directory, exposure <= 2.0"
assert_contains "$UNIT" "Type=notify"
assert_contains "$UNIT" "run -c /etc/tidemark/%i.conf"
assert_contains "$UNIT" "StateDirectory=tidemark/%i"
assert_contains "$UNIT" "TIDEMARK_STATE=%S/tidemark/%i"
# systemd-analyze wants a unit name: an instance of the template. Its
# --threshold is in tenths: 20 is an exposure of 2.0.
cp "$UNIT" "$T/tidemark@test.service"
assert_exit 0 systemd-analyze security --offline=true --threshold=20 "$T/tidemark@test.service"
score=$(grep -oE 'Overall exposure level for [^:]+: [0-9.]+' "$STDOUT" | awk '{print $NF}')
[ -n "$score" ] || fail "no exposure score in: $(tail -n 3 "$STDOUT")"
echo "exposure $score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score > 2.0"
# The check itself must be able to fail: a unit without the hardening.
printf '[Service]\nType=notify\nExecStart=/usr/bin/tidemark run\n' > "$T/bare@test.service"
assert_exit nonzero systemd-analyze security --offline=true --threshold=20 "$T/bare@test.service"

# A NOTIFY_SOCKET of our own: every datagram becomes a line block in $NOTES.
NOTES=$T/notify.log
SOCK=$T/notify.sock
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
print("bound", file=out)
while True:
    msg = s.recv(4096).decode("utf-8", "replace")
    for line in msg.split("\n"):
        if line:
            print(line, file=out)
' "$SOCK" "$NOTES" &
LISTENER=$!
wait_for 10 grep -q bound "$NOTES"

D=$T/d
mkdir -p "$D"
for i in 1 2 3; do gen_lines 1 200 > "$D/f$i.log"; done

say "run: READY=1 with STATUS after the first pass, WATCHDOG=1, STOPPING=1"
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=400000 run_bg "$T/out" -s "$T/s" -p count "$D"
wait_for 30 grep -q '^READY=1' "$NOTES"
grep -q '^STATUS=tracking 3 files' "$NOTES" || { cat "$NOTES" >&2; fail "no STATUS line with 3 files"; }
wait_for 10 bash -c '[ "$(grep -c "^WATCHDOG=1" "$1")" -ge 3 ]' _ "$NOTES"
grep -q '^STOPPING=1' "$NOTES" && fail "STOPPING before the stop"
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "exit status of run"
wait_for 10 grep -q '^STOPPING=1' "$NOTES"
assert_contains "$T/out" "lines=600"

say "without WATCHDOG_USEC, no WATCHDOG=1"
: > "$NOTES"
NOTIFY_SOCKET=$SOCK run_bg "$T/out2" -s "$T/s" -p count "$D"
wait_for 30 grep -q '^READY=1' "$NOTES"
sleep 0.5
stop_bg "$RUN_PID"
wait_for 10 grep -q '^STOPPING=1' "$NOTES"
assert_not_contains "$NOTES" "WATCHDOG=1"
kill "$LISTENER"; wait "$LISTENER" 2>/dev/null || true

say "JOURNAL_STREAM naming stderr: <N> priority prefixes"
# A port that is taken: the --metrics error is logged through the library.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
time.sleep(60)
' > "$T/port" &
HOLDER=$!
wait_for 10 test -s "$T/port"
PORT=$(cat "$T/port")
: > "$T/err"
exec 3>>"$T/err"
js=$(stat -c '%d:%i' "$T/err")
JOURNAL_STREAM=$js timeout 60 "$TIDEMARK" run -v -s "$T/s2" --metrics "127.0.0.1:$PORT" "$D" \
  >/dev/null 2>&3 </dev/null && fail "run on a taken port did not fail"
exec 3>&-
grep -qE "^<3>--metrics 127.0.0.1:$PORT: cannot listen" "$T/err" || { cat "$T/err" >&2; fail "no <3> error line"; }
grep -q "tidemark: error: --metrics" "$T/err" && fail "the error line kept its text prefix under journald"

say "JOURNAL_STREAM naming stderr: the command's own lines carry <N> too"
: > "$T/err2"
exec 3>>"$T/err2"
js=$(stat -c '%d:%i' "$T/err2")
JOURNAL_STREAM=$js timeout 60 "$TIDEMARK" once -s "$T/s3" -p count "$D" \
  >/dev/null 2>&3 </dev/null || fail "once under journald failed"
JOURNAL_STREAM=$js timeout 60 "$TIDEMARK" once -s "$T/s3" -i '[' "$D" \
  >/dev/null 2>&3 </dev/null && fail "once with a bad glob did not fail"
JOURNAL_STREAM=$js timeout 60 "$TIDEMARK" once --no-such-option \
  >/dev/null 2>&3 </dev/null && fail "once with a bad option did not fail"
exec 3>&-
grep -q '^<6>tidemark: once: 1 dir, processors: count$' "$T/err2" || { cat "$T/err2" >&2; fail "no <6> start line"; }
grep -q '^<6>tidemark: done: 3 files tracked' "$T/err2" || { cat "$T/err2" >&2; fail "no <6> done line"; }
grep -q "^<3>--include '\[': not a valid glob" "$T/err2" || { cat "$T/err2" >&2; fail "no <3> glob error"; }
grep -q '^<3>tidemark: error: .*no-such-option' "$T/err2" || { cat "$T/err2" >&2; fail "no <3> usage error"; }
grep -q "^<3>Try 'tidemark --help'" "$T/err2" || { cat "$T/err2" >&2; fail "no <3> on the usage hint"; }
grep -v '^<[0-9]>' "$T/err2" && fail "a line without its priority under journald"

say "JOURNAL_STREAM naming another stream: plain prefixes"
assert_exit 1 env JOURNAL_STREAM=1:2 "$TIDEMARK" run -s "$T/s2" --metrics "127.0.0.1:$PORT" "$D"
assert_contains "$STDERR" "tidemark: error: --metrics 127.0.0.1:$PORT: cannot listen"
grep -q "^<3>" "$STDERR" && fail "<3> prefix without journald"
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true

pass
