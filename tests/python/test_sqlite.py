"""Exactly once into SQLite from Python, across kill -9 (the README's sink)."""
import os
import random
import signal
import sqlite3
import subprocess
import time

import tidemark
from conftest import HERE, spawn

SINK = os.path.join(HERE, "sqlite_sink.py")
LINES = 150_000


def make_log(src):
    # ~100-byte lines: 15 MB, so the run commits many times (1 MiB chunks).
    path = src / "big.log"
    with open(path, "w") as f:
        for i in range(LINES):
            f.write("line %06d %s\n" % (i, "x" * 88))
    return path


def table(db):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT n, line FROM lines ORDER BY n").fetchall()
    finally:
        con.close()


def check_exactly_once(db):
    rows = table(db)
    assert len(rows) == LINES
    for i, (n, line) in enumerate(rows):
        assert n == i + 1 and line == "line %06d %s" % (i, "x" * 88), (i, n, line)


def test_kill_9_at_random_moments(state, src, tmp_path):
    make_log(src)
    db = tmp_path / "lines.db"
    env = {"SINK_CHECKPOINT_MS": "1"}
    rng = random.Random(os.environ.get("TDM_SEED") or time.time_ns())
    kills = 0
    while kills < 5:
        child = spawn(SINK, state, db, src, env_extra=env)
        time.sleep(rng.uniform(0.05, 1.5))
        if child.poll() is not None:
            # It finished before the kill: start over from nothing, so that
            # every kill lands inside a run.
            assert child.returncode == 0
            os.unlink(db)
            subprocess.run(["rm", "-rf", "--", state], check=True)
            continue
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
    child = spawn(SINK, state, db, src, env_extra=env)
    assert child.wait(300) == 0
    check_exactly_once(db)


def test_kill_9_between_the_two_commits(state, src, tmp_path):
    """SQLite has committed, LMDB has not: the rows past the stored count
    are deleted on open and delivered again."""
    make_log(src)
    db = tmp_path / "lines.db"
    env = {"SINK_CHECKPOINT_MS": "1"}
    child = spawn(SINK, state, db, src, env_extra=dict(
        env, SINK_DIE_AFTER_COMMIT="1"))
    assert child.wait(300) == -signal.SIGKILL
    committed = len(table(db))              # committed in SQLite ...
    assert 0 < committed < LINES
    marks = [r["bookmark"] for r in tidemark.status(state)]
    assert marks in ([], [0])               # ... but not in LMDB
    child = spawn(SINK, state, db, src, env_extra=env)
    assert child.wait(300) == 0
    check_exactly_once(db)                  # ... and not doubled
