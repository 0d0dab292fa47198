#!/usr/bin/env bash
# Multiline records (--multiline-start): Java-style stack traces of 1 to 7
# lines, written at a high rate, while `tidemark run` is killed with -9 again
# and again. Two processors take every chunk: `file` (the bytes, exactly
# once) and the test plugin `records` (tests/plugins/records.c), which writes
# ONE line per record as tdm_chunk_t.record_ends tells it — what a sink that
# sends one message per record (nats records=line) sees. At the end every
# record is exactly one message, whole (its start line and all its frames),
# none twice, none lost; the file output holds every record once, untorn.
# Then, under `once`: a last record completes only once the file has been
# quiet for --multiline-timeout-ms; a bad REGEX is exit 2 naming the option
# (and FILE:LINE in a config file); a record over --max-record is delivered
# in pieces and counted.
source "$(dirname "$0")/lib.sh"
[ -f "$TDM_TEST_PLUGINS/records/records.so" ] || fail "the records test plugin is not built"
command -v python3 >/dev/null || fail "python3 is required"

D=$T/logs; S=$T/state; OUT=$T/out; MSG=$T/messages
mkdir -p "$D"

# writer: records "R <seq> <k>" + k-1 lines "\tat ...Frame<seq>.m<j>(...)",
# k = 1..7, about RATE records/s in batches every 10 ms (one write each);
# also to TEE; on SIGTERM writes the record count to COUNT.
cat > "$T/stack.py" <<'PY'
import os, signal, sys, time
path, tee, count, rate = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
tf = os.open(tee, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
seq, per = 0, max(1, rate // 100)
nxt = time.monotonic()
while not stop:
    out = []
    for _ in range(per):
        seq += 1
        k = 1 + (seq * 7919) % 7
        out.append("R %d %d java.lang.IllegalStateException: boom %d\n" % (seq, k, seq))
        for j in range(1, k):
            out.append("\tat com.example.Frame%d.m%d(Frame.java:%d)\n" % (seq, j, j))
    b = "".join(out).encode()
    os.write(fd, b)
    os.write(tf, b)
    nxt += 0.01
    d = nxt - time.monotonic()
    if d > 0:
        time.sleep(d)
with open(count + ".tmp", "w") as f:
    f.write("%d\n" % seq)
os.rename(count + ".tmp", count)
PY

# check.py KIND FILE N: every record 1..N exactly once and whole.
#   KIND messages: one record per line, frames joined by '|'
#   KIND bytes:    the raw lines, records in a row
cat > "$T/check.py" <<'PY'
import re, sys
kind, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = re.compile(r"^R (\d+) (\d+) java\.lang\.IllegalStateException: boom (\d+)$")
frame = re.compile(r"^\tat com\.example\.Frame(\d+)\.m(\d+)\(Frame\.java:(\d+)\)$")
seen, bad = {}, []
def record(lines, where):
    m = start.match(lines[0]) if lines else None
    if not m or m.group(1) != m.group(3):
        bad.append("%s: not a record start: %r" % (where, lines[:1])); return
    seq, k = int(m.group(1)), int(m.group(2))
    if len(lines) != k:
        bad.append("%s: record %d has %d of its %d lines" % (where, seq, len(lines), k)); return
    for j, l in enumerate(lines[1:], 1):
        f = frame.match(l)
        if not f or int(f.group(1)) != seq or int(f.group(2)) != j:
            bad.append("%s: record %d: line %d is %r" % (where, seq, j, l)); return
    seen[seq] = seen.get(seq, 0) + 1
data = open(path, encoding="ascii", errors="replace").read()
if data and not data.endswith("\n"):
    bad.append("the output ends inside a line")
lines = data.split("\n")[:-1] if data else []
if kind == "messages":
    for i, l in enumerate(lines, 1):
        record(l.split("|"), "message %d" % i)
else:
    cur, at = [], 0
    for i, l in enumerate(lines, 1):
        if l.startswith("R "):
            if cur: record(cur, "line %d" % at)
            cur, at = [l], i
        else:
            cur.append(l)
    if cur: record(cur, "line %d" % at)
dups = [s for s, c in seen.items() if c > 1]
missing = [s for s in range(1, n + 1) if s not in seen]
extra = [s for s in seen if s > n]
for what, v in (("torn or foreign", bad), ("twice", dups), ("missing", missing), ("never written", extra)):
    if v:
        print("%s: %d records %s, e.g. %s" % (path, len(v), what, v[:3]))
        sys.exit(1)
print("  %s: %d records, each once and whole" % (kind, len(seen)))
PY

python3 "$T/stack.py" "$D/app.log" "$T/tee" "$T/count" "${TDM_ML_RATE:-3000}" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
ARGS=(-s "$S" --plugin-dir "$TDM_TEST_PLUGINS/records" --multiline-start '^R [0-9]+ '
      --multiline-timeout-ms 300 --checkpoint-ms 100
      -p "file:path=$OUT" -p "records:path=$MSG" "$D")
KILLS=${TDM_ML_KILLS:-8}
say "stack traces at ${TDM_ML_RATE:-3000} records/s; tidemark run killed with -9 $KILLS times"
for k in $(seq 1 "$KILLS"); do
  run_bg /dev/null "${ARGS[@]}"
  sleep "0.$((3 + RANDOM % 7))"
  kill9_bg "$RUN_PID"
  printf '  kill -9 #%d: %7d lines written, %6d messages\n' "$k" "$(lines_in "$T/tee")" "$(lines_in "$MSG")"
done
run_bg /dev/null "${ARGS[@]}"
sleep 0.5
stop_bg "$WPID" TERM
n=$(cat "$T/count")
say "the writer stopped after $n records: the last completes after the timeout"
wait_lines "$MSG" "$n" 60 "$RUN_PID"
sleep 0.5
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
python3 "$T/check.py" messages "$MSG" "$n" || fail "messages are not one whole record each, exactly once"
python3 "$T/check.py" bytes "$OUT" "$n" || fail "the file output is not every record once, whole"
assert_file_eq "$T/tee" "$OUT"
assert_no_sanitizer "$T/run.err"

say "once: a last record waits until the file has been quiet for the timeout"
D2=$T/logs2; S2=$T/state2; mkdir -p "$D2"
printf 'R 1 2 java.lang.IllegalStateException: boom 1\n\tat com.example.Frame1.m1(Frame.java:1)\nR 2 2 java.lang.IllegalStateException: boom 2\n' > "$D2/a.log"
O2=(-s "$S2" --plugin-dir "$TDM_TEST_PLUGINS/records" --multiline-start '^R [0-9]+ '
    --multiline-timeout-ms 5000 -p "records:path=$T/m2")
tdm once "${O2[@]}" "$D2"
assert_eq "$(lines_in "$T/m2")" 1 "messages while the file is fresh (record 2 is open)"
printf '\tat com.example.Frame2.m1(Frame.java:1)\n' >> "$D2/a.log"   # record 2 goes on
tdm once "${O2[@]}" "$D2"
assert_eq "$(lines_in "$T/m2")" 1 "messages while the file is still fresh"
touch -d '-10 sec' "$D2/a.log"
tdm once "${O2[@]}" "$D2"
assert_eq "$(lines_in "$T/m2")" 2 "messages once the file has been quiet"
python3 "$T/check.py" messages "$T/m2" 2 || fail "once: messages are not whole records"

say "a record longer than --max-record: pieces, counted"
D3=$T/logs3; mkdir -p "$D3"
{ echo "R 1 1 java.lang.IllegalStateException: boom 1"; for i in $(seq 1 200); do echo "	at x$i"; done
  echo "R 2 1 java.lang.IllegalStateException: boom 2"; } > "$D3/big.log"
touch -d '-10 sec' "$D3/big.log"
tdm once -s "$T/state3" --multiline-start '^R ' --max-record 1024 -p "file:path=$T/o3" "$D3"
assert_file_eq "$D3/big.log" "$T/o3"
status_json "$T/state3"
[ "$(jfile pieces "$D3/big.log")" -ge 1 ] || fail "pieces of big.log: $(jfile pieces "$D3/big.log")"

say "a bad REGEX: exit 2 naming the option (FILE:LINE in a config file)"
assert_exit 2 "$TIDEMARK" once -s "$T/s4" --multiline-start '^R [' "$D3"
assert_contains "$STDERR" "--multiline-start"
printf '[tidemark]\nmultiline-start = (unclosed\n' > "$T/bad.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/bad.ini" -s "$T/s4" "$D3"
assert_contains "$STDERR" "$T/bad.ini:2: multiline-start"
assert_exit 2 "$TIDEMARK" once -s "$T/s4" --multiline-timeout-ms soon "$D3"
assert_contains "$STDERR" "multiline-timeout-ms"
pass
