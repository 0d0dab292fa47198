"""Load the new lines of the files in a folder into SQLite, exactly once.

    python3 sqlite_sink.py STATE_DIR DB FOLDER [--watch]

The README's Python example, run by tests/python/test_sqlite.py under kill -9.
Rows are inserted inside an open SQLite transaction; commit() commits it and
returns the row count, which tidemark stores in the same LMDB transaction as
the bookmarks; open() deletes any row past the count it is handed back, so a
crash anywhere (even between the two commits) neither loses nor doubles a row.
"""
import os
import signal
import sqlite3
import sys
from typing import Optional

import tidemark


class SqliteSink:
    def __init__(self, path: str) -> None:
        self.path = path

    def open(self, restore: Optional[bytes]) -> None:
        # restore: what commit() last returned (None the first time)
        self.db = sqlite3.connect(self.path)
        self.db.execute("CREATE TABLE IF NOT EXISTS lines "
                        "(n INTEGER PRIMARY KEY, path TEXT, line TEXT)")
        self.count = int(restore or b"0")
        self.db.execute("DELETE FROM lines WHERE n > ?", (self.count,))
        self.db.commit()

    def process(self, chunk: tidemark.Chunk) -> None:  # in the open transaction
        lines = bytes(chunk.data).decode().splitlines()
        self.db.executemany(
            "INSERT INTO lines VALUES (?, ?, ?)",
            [(self.count + 1 + i, chunk.path, s) for i, s in enumerate(lines)])
        self.count += len(lines)

    def commit(self) -> bytes:
        self.db.commit()
        if self.count and os.environ.get("SINK_DIE_AFTER_COMMIT"):
            os.kill(os.getpid(), signal.SIGKILL)  # tests: the worst moment
        return str(self.count).encode()

    def close(self) -> None:
        self.db.close()


def main() -> None:
    state, db, folder = sys.argv[1:4]
    with tidemark.open(state, sources=[folder], include=["*.csv", "*.log"],
                       checkpoint_ms=int(os.environ.get("SINK_CHECKPOINT_MS",
                                                        "1000"))) as t:
        t.add_processor(SqliteSink(db), name="sqlite")
        if "--watch" in sys.argv:
            signal.signal(signal.SIGTERM, lambda *_: t.stop())
            t.run()
        else:
            t.run_once()


if __name__ == "__main__":
    main()
