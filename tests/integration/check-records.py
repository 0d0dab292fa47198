#!/usr/bin/env python3
# check-records.py KIND FILE N: FILE holds the records 1..N of stacktraces.py
# each exactly once and whole; exit 1 naming the first problems otherwise.
#   KIND messages: one record per line, its own newlines shown as '|'
#   KIND bytes:    the raw lines, records in a row
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
