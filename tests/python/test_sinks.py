"""tidemark.sinks against a real SQLite file and a real PostgreSQL server
(started here, on a socket and a port of its own, stopped by pid): every
record exactly once, across kill -9 of the loader at random moments."""
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

import tidemark
from tidemark.sinks import PostgresSink, SQLiteSink
from conftest import spawn

PG_BIN = "/usr/lib/postgresql/15/bin"
LINES = 60_000

LOADER = r"""
import os, signal, sys, tidemark
from tidemark.sinks import SQLiteSink, PostgresSink
kind, state, src, target, table = sys.argv[1:6]
base = SQLiteSink if kind == "sqlite" else PostgresSink
class Sink(base):
    def process(self, chunk):
        self.took = True
        return super().process(chunk)
    def commit(self):
        blob = super().commit()
        if os.environ.get("DIE_AFTER_COMMIT") and getattr(self, "took", 0):
            os.kill(os.getpid(), signal.SIGKILL)   # the database has it,
        return blob                                # the bookmarks do not
sink = Sink(target, table)
with tidemark.open(state, sources=[src], checkpoint_ms=1,
                   max_record="64K") as t:
    t.add_processor(sink, name=kind)
    t.run_once()
"""


def make_logs(src):
    """Two files of unique lines, one with a non-ASCII path."""
    names = ["a.log", "b \u00e9t\u00e9.log"]
    for k, name in enumerate(names):
        with open(src / name, "w") as f:
            for i in range(LINES // 2):
                f.write("%s line %06d %s\n" % (name[0], i, "x" * 60))
    return {str(src / n): n for n in names}


def expected_lines():
    return sorted("%s line %06d %s" % (c, i, "x" * 60)
                  for c in "ab" for i in range(LINES // 2))


def kill_at_random(kind, state, src, target, forget, kills=4):
    """Start the loader and kill -9 it at a random moment, `kills` times,
    then let it finish. A loader that finished before its kill starts the
    whole load over (`forget` empties the target), so every kill lands
    inside a load."""
    rng = random.Random(os.environ.get("TDM_SEED") or time.time_ns())
    done = 0
    while done < kills:
        child = spawn("-c", LOADER, kind, state, src, target, "lines")
        time.sleep(rng.uniform(0.1, 0.8))
        if child.poll() is not None:
            assert child.returncode == 0
            forget()
            shutil.rmtree(state)
            continue
        child.send_signal(signal.SIGKILL)
        child.wait()
        done += 1
    child = spawn("-c", LOADER, kind, state, src, target, "lines")
    assert child.wait(300) == 0


def check_rows(rows, paths, instance_ids):
    lines = sorted(r[0] for r in rows)
    assert len(lines) == LINES, (len(lines), LINES)
    assert lines == expected_lines()                    # none lost, none twice
    for line, path, off, rid in rows:
        assert path in paths
        inst, fid, gen, roff = rid.split(":")
        assert int(roff) == off and gen == "0"
        instance_ids.add(inst)
    assert len(instance_ids) == 1 and "-" not in instance_ids


def test_sqlite_sink_exactly_once_under_kill_9(state, src, tmp_path):
    paths = make_logs(src)
    db = str(tmp_path / "rows.db")
    kill_at_random("sqlite", state, src, db, lambda: os.unlink(db))
    con = sqlite3.connect(db)
    rows = con.execute('SELECT line, path, "offset", record_id FROM lines'
                       ).fetchall()
    stamp = con.execute("SELECT min(ingested_at) FROM lines").fetchone()[0]
    con.close()
    check_rows(rows, paths, set())
    assert stamp.endswith("Z") and "T" in stamp


def test_sqlite_sink_parse_and_reject(state, src, tmp_path):
    (src / "a.csv").write_bytes(b"1,one\n2,two\n3,three\n")
    db = str(tmp_path / "rows.db")

    def parse(line):
        n, word = line.split(",")
        return None if n == "2" else {"n": int(n), "word": word}

    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(SQLiteSink(db, "words", parse=parse), name="w")
        t.run_once()
    con = sqlite3.connect(db)
    assert con.execute('SELECT n, word, "offset" FROM words ORDER BY n'
                       ).fetchall() == [(1, "one", 0), (3, "three", 12)]
    con.close()
    # A line that is not UTF-8 is refused, named by path and offset.
    (src / "b.csv").write_bytes(b"4,\xff\n")
    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(SQLiteSink(db, "words", parse=parse), name="w")
        with pytest.raises(tidemark.Error) as ei:
            t.run_once()
    assert "b.csv at offset 0: not UTF-8" in ei.value.message


def test_sink_names_are_checked():
    with pytest.raises(ValueError, match="table"):
        SQLiteSink("x.db", "lines; DROP TABLE x")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A PostgreSQL server of our own: initdb as the postgres user in a
    directory it can reach, its socket in there, a free port."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="tdm-pg-")
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "data")
        self.sock = os.path.join(self.base, "sock")
        os.mkdir(self.sock)
        shutil.chown(self.base, "postgres")
        shutil.chown(self.sock, "postgres")
        self.env = {k: v for k, v in os.environ.items()  # no sanitizer runtime
                    if not k.startswith(("LD_PRELOAD", "ASAN_", "UBSAN_"))}
        self.port = free_port()
        self.pid = None
        self.pg(["initdb", "-D", self.data, "-A", "trust", "-U", "postgres"])
        self.url = "postgresql:///postgres?host=%s&port=%d&user=postgres" % (
            self.sock, self.port)

    def pg(self, argv):
        subprocess.run(["runuser", "-u", "postgres", "--", PG_BIN + "/" +
                        argv[0]] + argv[1:], check=True, env=self.env,
                       stdout=subprocess.DEVNULL)

    def start(self):
        # After a kill -9 its backends notice and leave on their own; until
        # they have, a new server refuses to start: try again.
        for attempt in range(40):
            try:
                self.pg(["pg_ctl", "-D", self.data, "-l",
                         os.path.join(self.base, "log"), "-w", "-o",
                         "-k %s -p %d -c listen_addresses=''" % (
                             self.sock, self.port), "start"])
                break
            except subprocess.CalledProcessError:
                if attempt == 39:
                    raise
                time.sleep(0.25)
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())

    def kill(self, sig=signal.SIGKILL):
        """Stop the server by its pid (SIGKILL: a crash, recovered on the
        next start; SIGTERM: a clean stop) and wait until it is gone."""
        os.kill(self.pid, sig)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self.pid = None


@pytest.fixture(scope="module")
def server():
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        pytest.skip("PostgreSQL 15 is not installed (%s)" % PG_BIN)
    if os.geteuid() != 0:
        pytest.skip("starting PostgreSQL as the postgres user needs root")
    srv = Server()
    srv.start()
    try:
        yield srv
    finally:
        if srv.pid is not None:
            srv.kill(signal.SIGTERM)
        shutil.rmtree(srv.base, ignore_errors=True)


@pytest.fixture
def postgres(server):
    if server.pid is None:
        server.start()
    return server.url


def pg_rows(conninfo, table="lines"):
    import psycopg
    with psycopg.connect(conninfo) as conn:
        return conn.execute('SELECT line, path, "offset", record_id FROM %s'
                            % table).fetchall()


def test_postgres_sink_exactly_once_under_kill_9(state, src, postgres):
    paths = make_logs(src)
    import psycopg

    def forget():
        with psycopg.connect(postgres) as conn:
            conn.execute("DROP TABLE lines")
    kill_at_random("postgres", state, src, postgres, forget)
    check_rows(pg_rows(postgres), paths, set())
    with psycopg.connect(postgres) as conn:
        cols = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'lines' ORDER BY ordinal_position").fetchall()
    assert cols == [("line", "text"), ("path", "text"), ("offset", "bigint"),
                    ("record_id", "text"),
                    ("ingested_at", "timestamp with time zone")]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_replay_after_a_crash_between_the_commits(kind, state, src, tmp_path,
                                                  request):
    """The database committed, the bookmarks did not: the same records come
    again with the same record ids, and are dropped."""
    target = str(tmp_path / "rows.db") if kind == "sqlite" else \
        request.getfixturevalue("postgres")
    (src / "a.log").write_bytes(b"one\ntwo\n")
    child = spawn("-c", LOADER, kind, state, src, target, "replay",
                  env_extra={"DIE_AFTER_COMMIT": "1"})
    assert child.wait(120) == -signal.SIGKILL
    rows = lambda: sorted(r[0] for r in (       # noqa: E731
        pg_rows(target, "replay") if kind == "postgres" else
        sqlite3.connect(target).execute("SELECT line FROM replay").fetchall()))
    assert rows() == ["one", "two"]             # committed in the database
    assert [r["bookmark"] for r in tidemark.status(state)] in ([], [0])
    with open(src / "a.log", "ab") as f:
        f.write(b"three\n")
    child = spawn("-c", LOADER, kind, state, src, target, "replay")
    assert child.wait(120) == 0
    assert rows() == ["one", "three", "two"]    # delivered again, not doubled


def test_multiline_records_are_one_row_each(state, src, tmp_path):
    log = src / "app.log"
    log.write_bytes(b"ERROR a\n  at x\n  at y\nINFO b\nWARN c\n  at z\n")
    old = time.time() - 10          # quiet past the multiline timeout
    os.utime(log, (old, old))
    db = str(tmp_path / "rows.db")
    ends = []
    with tidemark.open(state, sources=[src], multiline_start=r"^[A-Z]+ ",
                       multiline_timeout_ms=100) as t:
        sink = SQLiteSink(db, "lines")
        process = sink.process

        def spy(chunk):
            ends.append(chunk.record_ends)
            return process(chunk)
        sink.process = spy
        t.add_processor(sink, name="sqlite")
        t.run_once()
    assert all(e is not None for e in ends)
    con = sqlite3.connect(db)
    assert con.execute('SELECT line, "offset" FROM lines ORDER BY 2'
                       ).fetchall() == [("ERROR a\n  at x\n  at y", 0),
                                        ("INFO b", 22), ("WARN c\n  at z", 29)]
    con.close()


def test_postgres_sink_through_a_server_crash_and_an_outage(state, src,
                                                           server, caplog):
    """The server is killed -9 in the middle of a pass (the transaction
    goes with it) and stays away for a while: the sink keeps what it took,
    answers RETRY while away, sends it all again once the server is back."""
    if server.pid is None:
        server.start()
    for k in range(12):
        (src / ("f%02d.log" % k)).write_bytes(b"".join(
            b"%02d %03d\n" % (k, i) for i in range(100)))
    seen = []

    def crash_at_the_fifth(chunk):
        seen.append(chunk.path)
        if len(seen) == 5:
            server.kill(signal.SIGKILL)
            threading.Timer(2.0, server.start).start()

    with tidemark.open(state, sources=[src], retry_timeout_ms=120000) as t:
        t.add_processor(crash_at_the_fifth, name="crash")
        t.add_processor(PostgresSink(server.url, "outage"), name="pg")
        s = t.run_once()
    assert s["proc_retries"] > 0
    lines = sorted(r[0] for r in pg_rows(server.url, "outage"))
    assert lines == sorted("%02d %03d" % (k, i) for k in range(12)
                           for i in range(100))
    msgs = [r.getMessage() for r in caplog.records if r.name == "tidemark"]
    assert sum("is away" in m for m in msgs) == 1
    assert any("is back" in m for m in msgs)
