#!/usr/bin/env python3
"""check-chunks.py DUMP FILE...: the `nats` messages in DUMP (tdm-jsclient
dump: SEQ, id, path, offset, payload with \\n \\t \\\\ escaped) cover each FILE
exactly once: for each, its messages sorted by offset are back to back from
0, none overlaps, and their payloads are the file's bytes. Prints the
messages and bytes counted; exits 1 naming the first duplicate, gap or
difference."""
import sys


def unescape(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == '\\' and i + 1 < len(s):
            n = s[i + 1]
            out.append({'n': '\n', 't': '\t', '\\': '\\'}.get(n, n))
            i += 2
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def main():
    dump, files = sys.argv[1], sys.argv[2:]
    by_path = {}
    for line in open(dump, encoding='utf-8', errors='surrogateescape'):
        f = line.rstrip('\n').split('\t', 4)
        if len(f) < 5:
            f.append('')
        by_path.setdefault(f[2], []).append((int(f[3]), unescape(f[4]), f[1]))
    bad = 0
    for path in files:
        want = open(path, encoding='utf-8', errors='surrogateescape').read()
        msgs = sorted(by_path.get(path, []))
        pos, dups, gaps = 0, 0, 0
        for off, data, mid in msgs:
            if off < pos:
                dups += 1
                if dups == 1:
                    print('%s: message %s at offset %d overlaps bytes up to %d'
                          % (path, mid, off, pos))
            elif off > pos:
                gaps += 1
                if gaps == 1:
                    print('%s: bytes %d to %d are in no message' % (path, pos, off))
            pos = max(pos, off + len(data))
        got = ''.join(d for _, d, _ in msgs)
        print('%s: %d messages, %d bytes of %d; overlaps %d, gaps %d'
              % (path, len(msgs), len(got), len(want), dups, gaps))
        if dups or gaps or got != want:
            bad = 1
            if not dups and not gaps:
                print('%s: the messages differ from the file' % path)
    return bad


sys.exit(main())
