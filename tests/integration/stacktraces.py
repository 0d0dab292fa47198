#!/usr/bin/env python3
# stacktraces.py PATH TEE COUNT RATE: a logger of Java-style stack traces for
# the multiline tests (test-multiline.sh, test-nats-multiline.sh). Records
# "R <seq> <k> java.lang.IllegalStateException: boom <seq>" followed by k-1
# lines "\tat com.example.Frame<seq>.m<j>(Frame.java:<j>)", k = 1..7, about
# RATE records/s in batches every 10 ms (one write(2) each, O_APPEND), the
# same bytes appended to TEE; on SIGTERM it writes the number of records to
# COUNT (temp file + rename) and exits.
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
