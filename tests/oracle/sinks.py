"""The oracle's sinks: where tidemark delivers, and how to read it back.

A sink is a class registered in SINKS under its name. The oracle calls, in
this order:

    sink = SINKS[name](ctx)      ctx: the scenario's Context (oracle.py):
                                 ctx.work (a directory of its own),
                                 ctx.out_dir (where outputs go: a small
                                 tmpfs in the disk-full scenario), ctx.env,
                                 ctx.tidemark, ctx.rng, ctx.log(msg)
    sink.start()                 start servers, create tables or streams
    sink.daemon_argv(common)     the command of the daemon that reads the
                                 source and delivers into the sink;
                                 `common` holds tidemark's options without
                                 the processor (-s STATE, -m MODE, -i GLOB,
                                 ..., the source directory last). The oracle
                                 starts it, kills it with -9, restarts it.
    sink.servers()               [Server, ...]: processes the oracle may
                                 kill -9 or SIGSTOP (and restart) as faults
    sink.delivered()             bytes: every record the sink holds, each
                                 ending in "\\n", in any order (a record is
                                 one line, or a start line with its
                                 continuation lines)
    sink.stop()                  stop what start() started (by pid)

`policy` says what the sink promises: "exactly" (every record once: file,
nats, sqlite, postgres, exec in whole mode, whose handler here is idempotent by the
file's hash) or "at-least" (exec in tail mode streams into a program that
cannot roll back, so a kill -9 of tidemark may repeat what followed the last
checkpoint; still no record lost, torn or invented).

To add a sink: write a class like these, register it in SINKS, and add
scenarios using it to SCENARIOS in oracle.py; a server needs the methods of
Server (start, kill9, pause, resume, stop), as PgServer has.
"""
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Server:
    """A server process the oracle can fault: kill -9 and restart, or
    SIGSTOP then SIGCONT. `argv` is started again as it was, with its data
    directory kept (a crash, not a new server)."""

    def __init__(self, name, argv, log, ready):
        self.name, self.argv, self.logpath, self.ready = name, argv, log, ready
        self.proc = None

    def start(self):
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        end = time.time() + 20
        while not self.ready():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited: see %s" % (self.name, self.logpath))
            if time.time() > end:
                raise RuntimeError("%s not ready: see %s" % (self.name, self.logpath))
            time.sleep(0.05)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class FileSink:
    """-p file:path=OUT: exactly once into one file (rolls back on restart)."""
    policy = "exactly"

    def __init__(self, ctx):
        self.ctx = ctx
        self.out = os.path.join(ctx.out_dir, "out")

    def start(self):
        pass

    def daemon_argv(self, common):
        return [self.ctx.tidemark, "run"] + common[:-1] + [
            "-p", "file:path=" + self.out, common[-1]]

    def servers(self):
        return []

    def delivered(self):
        try:
            with open(self.out, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def stop(self):
        pass


class ExecSink:
    """-p exec:cmd=...: tail mode streams into exec_consumer.py (keeps whole
    lines only); whole mode runs it once per file version, which writes the
    file's records under the file's hash (a rerun after kill -9 replaces
    the same file: idempotent)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.whole = ctx.mode == "whole"
        self.policy = "exactly" if self.whole else "at-least"
        self.target = os.path.join(ctx.out_dir, "exec.d" if self.whole else "exec.out")

    def start(self):
        if self.whole:
            os.makedirs(self.target, exist_ok=True)

    def daemon_argv(self, common):
        cmd = "%s %s %s %s" % (sys.executable, os.path.join(HERE, "exec_consumer.py"),
                               "whole" if self.whole else "tail", self.target)
        spec = "exec:cmd=" + cmd + (",retries=100,backoff-ms=50" if self.whole else "")
        return [self.ctx.tidemark, "run"] + common[:-1] + ["-p", spec, common[-1]]

    def servers(self):
        return []

    def delivered(self):
        if not self.whole:
            try:
                with open(self.target, "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return b""
        parts = []
        for n in sorted(os.listdir(self.target)):
            if not n.startswith("."):
                with open(os.path.join(self.target, n), "rb") as f:
                    parts.append(f.read())
        return b"".join(parts)

    def notes(self):
        """What the handler saw that the summary should mention."""
        try:
            with open(os.path.join(self.target, ".stale")) as f:
                n = sum(1 for _ in f)
        except (OSError, AttributeError):
            return ""
        return "exec runs refused: the file had changed since it was hashed: %d" % n

    def stop(self):
        pass


class NatsSink:
    """-p nats:...: JetStream, records=line, a stream keyed by record ids
    (the duplicate window drops a replay)."""
    policy = "exactly"

    def __init__(self, ctx):
        self.ctx = ctx
        self.client = os.environ.get("TDM_JSCLIENT", "")
        self.port = None
        self.server = None

    def _js(self, *args, check=True):
        return subprocess.run([self.client, self.url] + list(args), capture_output=True,
                              check=check, timeout=60)

    def _ready(self):
        r = self._js("count", "__none__", check=False)
        return b"Not Found" in r.stdout + r.stderr

    def start(self):
        if not self.client or not os.access(self.client, os.X_OK):
            raise Skip("no tdm-jsclient (built without libnats)")
        ns = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not os.access(ns, os.X_OK):
            raise Skip("no nats-server")
        self.port = free_port()
        self.url = "nats://127.0.0.1:%d" % self.port
        self.server = Server("nats-server", [ns, "-js", "-sd", os.path.join(self.ctx.work, "nats"),
                                             "-a", "127.0.0.1", "-p", str(self.port)],
                             os.path.join(self.ctx.work, "nats.log"), self._ready)
        self.server.start()
        self._js("create", "S", "logs.>", "300")

    def daemon_argv(self, common):
        spec = "nats:url=%s,subject=logs.o,stream=S" % self.url
        return [self.ctx.tidemark, "run"] + common[:-1] + ["-p", spec, common[-1]]

    def servers(self):
        return [self.server]

    def delivered(self):
        for _ in range(50):
            r = self._js("dump", "S", check=False)
            if r.returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("tdm-jsclient dump failed: %s" % r.stderr.decode(errors="replace"))
        out = []
        for line in r.stdout.split(b"\n"):
            if not line:
                continue
            payload = line.split(b"\t", 4)[4]
            payload = payload.replace(b"\\n", b"\n").replace(b"\\t", b"\t")
            out.append(payload if payload.endswith(b"\n") else payload + b"\n")
        return b"".join(out)

    def stop(self):
        if self.server is not None:
            self.server.stop()


class SqliteSink:
    """The Python library (watcher/python) with tests/python/sqlite_sink.py's
    sink: a Python host process the oracle kills with -9."""
    policy = "exactly"

    def __init__(self, ctx):
        self.ctx = ctx
        self.db = os.path.join(ctx.out_dir, "lines.db")

    def start(self):
        lib = os.environ.get("TDM_LIB", "")
        if not lib or not os.path.exists(lib):
            raise Skip("no libtidemark.so (TDM_LIB)")
        self.ctx.env["TIDEMARK_LIB"] = lib
        self.ctx.env["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(ROOT, "watcher", "python"), os.path.join(ROOT, "tests", "python")])

    def daemon_argv(self, common):
        return ["/usr/bin/python3", os.path.join(HERE, "sqlite_host.py"), self.db] + common

    def servers(self):
        return []

    def delivered(self):
        if not os.path.exists(self.db):
            return b""
        con = sqlite3.connect(self.db)
        try:
            rows = con.execute("SELECT line FROM lines ORDER BY n").fetchall()
        finally:
            con.close()
        return b"".join(r[0].encode() + b"\n" for r in rows)

    def stop(self):
        pass


def _pg_bin():
    """PG_BIN, else the newest /usr/lib/postgresql/N/bin (Debian's layout)."""
    if os.environ.get("PG_BIN"):
        return os.environ["PG_BIN"]
    import glob
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                   key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    return found[-1] if found else "/usr/lib/postgresql/bin"


PG_BIN = _pg_bin()


def _group_alive(pgid):
    """Whether a process of group `pgid` exists, a zombie included: a
    postmaster's pid that is not reaped yet still holds its lock file (the
    next start refuses), and a backend still holds shared memory."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pgid, secs):
    end = time.time() + secs
    while _group_alive(pgid):
        if time.time() > end:
            return False
        time.sleep(0.05)
    return True


class PgServer:
    """A PostgreSQL cluster of the scenario's own, in DIR (owned by the
    postgres user when the oracle runs as root: the server refuses root),
    listening only on a unix socket in DIR/sock. kill9 is a crash: SIGKILL
    to the postmaster and every process of it (recovery at the next start);
    pause and resume SIGSTOP and SIGCONT all of them."""
    name = "postgres"

    def __init__(self, d):
        self.dir, self.data, self.sock = d, os.path.join(d, "data"), os.path.join(d, "sock")
        self.logpath = os.path.join(d, "server.log")
        self.pid = None

    def _as_pg(self, argv):
        return (["runuser", "-u", "postgres", "--"] + argv) if os.geteuid() == 0 else argv

    def _run(self, argv, what):
        r = subprocess.run(self._as_pg(argv), capture_output=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("%s: %s%s" % (what, r.stderr.decode(errors="replace")[-800:],
                                             self.log_tail()))

    def log_tail(self):
        try:
            with open(self.logpath, "rb") as f:
                return "\n" + b"".join(f.readlines()[-5:]).decode(errors="replace")
        except OSError:
            return ""

    def init(self):
        self.port = free_port()
        os.makedirs(self.sock)
        if os.geteuid() == 0:
            for root, dirs, files in os.walk(self.dir):
                for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                    shutil.chown(n, "postgres")
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust",
                   "-U", "postgres", "--no-sync"], "initdb")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = ''\nport = %d\nunix_socket_directories = '%s'\n"
                    "shared_buffers = 32MB\nmax_wal_size = 256MB\n"
                    "log_min_messages = warning\n" % (self.port, self.sock))
        self.uri = "postgresql:///postgres?host=%s&port=%d&user=postgres" % (self.sock, self.port)

    def start(self):
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.logpath,
                   "-w", "-t", "60", "start"], "pg_ctl start")
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())

    # pg_ctl starts the postmaster in a session of its own, so its process
    # group is every process of the server, a backend forked a moment ago
    # included.
    def kill9(self):
        _killpg(self.pid, signal.SIGKILL)
        if not _wait_gone(self.pid, 30):
            raise RuntimeError("postgres (process group %d) survived SIGKILL" % self.pid)

    def pause(self):
        _killpg(self.pid, signal.SIGSTOP)

    def resume(self):
        _killpg(self.pid, signal.SIGCONT)

    def stop(self):
        if self.pid is None or not _group_alive(self.pid):
            return
        _killpg(self.pid, signal.SIGCONT)
        _killpg(self.pid, signal.SIGINT)  # the postmaster: a fast shutdown
        if not _wait_gone(self.pid, 20):
            _killpg(self.pid, signal.SIGKILL)
            _wait_gone(self.pid, 10)


_COPY_ESC = re.compile(rb"\\(.)")
_COPY_MAP = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"\\": b"\\"}


class PostgresSink:
    """-p postgres:...,create=yes: the C plugin into a table of a
    PostgreSQL cluster the sink makes (initdb) and the faults crash
    (kill -9 of the postmaster and its children) and SIGSTOP. Exactly once:
    a replayed row's record_id is dropped by the table's unique index."""
    policy = "exactly"

    def __init__(self, ctx):
        self.ctx = ctx
        self.server = None

    def start(self):
        plugin = os.path.join(os.path.dirname(self.ctx.tidemark), "tidemark-plugins", "postgres.so")
        if not os.path.exists(plugin):
            raise Skip("built without libpq (libpq-dev): no postgres processor")
        if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
            raise Skip("no PostgreSQL server binaries in %s" % PG_BIN)
        if not shutil.which("psql"):
            raise Skip("no psql")
        # The server (the postgres user) must reach its directory.
        os.chmod(self.ctx.work, 0o755)
        self.server = PgServer(os.path.join(self.ctx.work, "pg"))
        self.server.init()
        self.server.start()

    def daemon_argv(self, common):
        spec = "postgres:conninfo=%s,table=lines,create=yes" % self.server.uri
        return [self.ctx.tidemark, "run"] + common[:-1] + ["-p", spec, common[-1]]

    def servers(self):
        return [self.server]

    def delivered(self):
        sql = "SELECT to_regclass('lines') IS NULL"
        r = None
        for _ in range(50):
            r = subprocess.run(["psql", self.server.uri, "-X", "-Atq", "-v", "ON_ERROR_STOP=1",
                                "-c", sql], capture_output=True, timeout=60)
            if r.returncode == 0:
                if r.stdout.strip() == b"t":
                    return b""  # the daemon has not made the table yet
                r = subprocess.run(["psql", self.server.uri, "-X", "-Atq", "-v",
                                    "ON_ERROR_STOP=1", "-c",
                                    "COPY (SELECT line FROM lines) TO STDOUT"],
                                   capture_output=True, timeout=60)
                if r.returncode == 0:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("psql: %s" % r.stderr.decode(errors="replace"))
        out = []
        for row in r.stdout.split(b"\n"):
            if not row:
                continue
            line = _COPY_ESC.sub(lambda m: _COPY_MAP.get(m.group(1), m.group(1)), row)
            out.append(line if line.endswith(b"\n") else line + b"\n")
        return b"".join(out)

    def stop(self):
        if self.server is not None:
            self.server.stop()


class Skip(Exception):
    """The scenario cannot run here (a missing server or permission)."""


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


SINKS = {"file": FileSink, "exec": ExecSink, "nats": NatsSink, "sqlite": SqliteSink,
         "postgres": PostgresSink}
