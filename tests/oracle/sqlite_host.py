"""The oracle's Python daemon: the library (watcher/python) with the README's
SQLite sink (tests/python/sqlite_sink.py), run until SIGTERM.

    sqlite_host.py DB [tidemark run options...] DIR

Takes the subset of options the oracle gives (-s, -m, -i, --checkpoint-ms,
--settle-ms, --multiline-start, --multiline-timeout-ms).
"""
import signal
import sys

import tidemark
from sqlite_sink import SqliteSink

KEYS = {"-s": "state", "-m": "mode", "-i": "include", "--checkpoint-ms": "checkpoint_ms",
        "--settle-ms": "settle_ms", "--multiline-start": "multiline_start",
        "--multiline-timeout-ms": "multiline_timeout_ms"}


def main():
    db, args, src = sys.argv[1], [a for a in sys.argv[2:-1] if a != "-vv"], sys.argv[-1]
    opts = {"include": []}
    for k, v in zip(args[::2], args[1::2]):
        key = KEYS[k]
        if key == "include":
            opts["include"].append(v)
        elif key.endswith("_ms"):
            opts[key] = int(v)
        else:
            opts[key] = v
    state = opts.pop("state")
    with tidemark.open(state, sources=[src], **opts) as t:
        t.add_processor(SqliteSink(db), name="sqlite")
        signal.signal(signal.SIGTERM, lambda *_: t.stop())
        t.run()


if __name__ == "__main__":
    main()
