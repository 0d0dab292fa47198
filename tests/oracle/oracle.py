#!/usr/bin/env python3
"""The oracle: seeded, randomized end-to-end scenarios against the real binary.

Real writer threads append, rotate, truncate and drop files (every record
unique and written in a ledger); real faults hit at random moments (kill -9
of the daemon, kill -9 and SIGSTOP of nats-server and of PostgreSQL, a full tmpfs, a low
descriptor cap); then the daemon catches up and every sink is checked
against the ledger: no record lost, none duplicated, none torn, none
invented. A record the writers made unreachable on purpose (written before
a truncation, an old version replaced before it settled) "may" be missing
but never be doubled or torn.

    oracle.py list                          the scenario table
    oracle.py run --seed S --scenario NAME  one scenario (a replay)
    oracle.py ci [--minutes M]              fresh seeds, every scenario in
                                            turn, for M minutes (default
                                            TDM_ORACLE_MINUTES, else 2.75)

Environment: TIDEMARK (the binary), TDM_JSCLIENT (nats scenarios), TDM_LIB
(libtidemark.so, for the Python sink), PG_BIN (PostgreSQL's initdb and
pg_ctl, for the postgres scenarios; default the newest
/usr/lib/postgresql/N/bin), TDM_KEEP=1 (keep every work
directory), TDM_ORACLE_VERBOSE=1 (the daemon logs with -vv). A failure prints its seed and the one command that replays it;
its work directory (logs, sink contents, the ledger) is kept.

Scenarios named with `xfail` hit a bug known and not fixed yet (the issue
item is named): they run, and their failure is reported but does not fail
the run; one that passes is reported as XPASS (then remove the mark).
"""
import argparse
import collections
import gzip
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sinks import SINKS, Skip  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SETTLE_MS = 2000  # whole mode's --settle-ms

# name -> what it runs. mode: tail|whole; sink: a name in sinks.SINKS;
# lanes: writer threads (see Lane); ops: what append lanes do besides
# appending; faults: what the fault thread does; nofile: a hard descriptor
# cap for the daemon; tmpfs: outputs and state on a small tmpfs (root);
# xfail: the known, unfixed bug it hits.
SCENARIOS = {
    "tail-file-append": dict(mode="tail", sink="file", lanes=["append"] * 3, faults=["kill9"]),
    "tail-file-rotate": dict(mode="tail", sink="file", lanes=["append"] * 2,
                             ops=["rename", "truncate"], faults=["kill9"]),
    "tail-file-copytruncate": dict(mode="tail", sink="file", lanes=["append"] * 2,
                                   ops=["copytruncate"], faults=["kill9"]),
    "tail-file-logrotate": dict(mode="tail", sink="file", lanes=["append"] * 2,
                                ops=["logrotate-compress", "logrotate-delaycompress"],
                                faults=["kill9"]),
    "tail-file-multiline": dict(mode="tail", sink="file", lanes=["multiline"] * 2,
                                faults=["kill9"]),
    "tail-file-compressed": dict(mode="tail", sink="file", lanes=["append", "zdrops"],
                                 faults=["kill9"]),
    "tail-file-fdcap": dict(mode="tail", sink="file", lanes=["spray"] * 2, nofile=40,
                            faults=["kill9"]),
    "tail-file-diskfull": dict(mode="tail", sink="file", lanes=["append"] * 2, tmpfs=True,
                               faults=["disk-full", "disk-full", "kill9"]),
    "whole-file-drops": dict(mode="whole", sink="file", lanes=["drops"] * 2, faults=["kill9"]),
    "tail-exec": dict(mode="tail", sink="exec", lanes=["append"] * 2, ops=["rename"],
                      faults=["kill9"]),
    "whole-exec": dict(mode="whole", sink="exec", lanes=["drops"] * 2, faults=["kill9"]),
    "tail-nats": dict(mode="tail", sink="nats", lanes=["append"] * 2, ops=["rename"],
                      faults=["kill9", "server-kill9", "server-stop"]),
    "tail-nats-multiline": dict(mode="tail", sink="nats", lanes=["multiline"] * 2,
                                faults=["kill9", "server-stop"]),
    "whole-nats": dict(mode="whole", sink="nats", lanes=["drops"] * 2,
                       faults=["kill9", "server-kill9"]),
    "tail-sqlite": dict(mode="tail", sink="sqlite", lanes=["append"] * 2, ops=["rename"],
                        faults=["kill9"]),
    "whole-sqlite": dict(mode="whole", sink="sqlite", lanes=["drops"] * 2, faults=["kill9"]),
    "tail-postgres": dict(mode="tail", sink="postgres", lanes=["append"] * 2, ops=["rename"],
                          faults=["kill9", "server-kill9", "server-stop"]),
    "whole-postgres": dict(mode="whole", sink="postgres", lanes=["drops"] * 2,
                           faults=["kill9"]),
}


class Failure(Exception):
    pass


# ---- the ledger ------------------------------------------------------------

class Ledger:
    """Every record written: id -> (bytes, must). `must`: it stays readable
    (in a file, a rotated copy or a compressed one) and must arrive once;
    otherwise it may be missing (the writer made it unreachable) but never
    arrive twice, torn."""

    def __init__(self):
        self.recs = {}
        self.lock = threading.Lock()

    def add(self, rid, data):
        with self.lock:
            self.recs[rid] = [data, True]

    def may(self, rids):
        with self.lock:
            for r in rids:
                if self.recs[r][1] is True:
                    self.recs[r][1] = False

    def free(self, rids):
        """Not checked at all: a file written in place more slowly than
        --settle-ms (the machine stalled the writer) is rightly taken as
        complete early, then again as a new version."""
        with self.lock:
            for r in rids:
                self.recs[r][1] = None


def payload(rng):
    n = rng.choice([0, 5, 20, 60, 120, 400]) + rng.randrange(10)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_.") for _ in range(n))


# ---- writers ---------------------------------------------------------------

class Lane(threading.Thread):
    """One writer thread with its own files and its own random stream.

    append: appends records to NAME.log, some written in two pieces (a
        partial line for a while); between batches one of the scenario's
        ops: rename (NAME.log -> NAME.log.K, then a new NAME.log),
        copytruncate (copy to NAME.log.K, then truncate: nothing is written
        in between, so nothing is lost), truncate (what was in the file may
        be lost), logrotate-compress / logrotate-delaycompress (Debian's
        logrotate, rotate 1000, create)
    multiline: records of a start line and 0-4 continuation lines (with a
        pause between pieces)
    spray: appends to 50 files in turn (the descriptor cap scenario)
    zdrops: tail mode: whole gzip and zstd files dropped by rename
    drops: whole mode: files dropped by rename (plain, .gz, .zst) or written
        in place in pieces, sometimes big (> 1 MiB); new versions of earlier
        drops, in place or by rename over them (the old version may be
        missing)
    """

    def __init__(self, ctx, idx, kind, ops):
        super().__init__(daemon=True)
        self.ctx, self.idx, self.kind, self.ops = ctx, idx, kind, ops
        self.rng = random.Random("%d-%d" % (ctx.seed, idx))
        self.name_ = "w%d" % idx
        self.seq = 0
        self.stop_ev = threading.Event()
        self.error = None
        self.cur = []          # ids in the live file (append lanes)
        self.k = 0             # rotation / drop counter
        self.drops = []        # whole mode: [path, [ids]] of plain drops

    def record(self, multiline=False):
        self.seq += 1
        rid = "%s:%d" % (self.name_, self.seq)
        head = "O%d %s %s" % (self.ctx.seed, rid, payload(self.rng))
        lines = [head]
        if multiline:
            for c in range(self.rng.randrange(5)):
                lines.append("  %s.%d %s" % (rid, c, payload(self.rng)))
        data = ("\n".join(lines) + "\n").encode()
        self.ctx.ledger.add(rid, data)
        return rid, data

    def run(self):
        try:
            getattr(self, "run_" + self.kind)()
        except Exception:
            self.error = traceback.format_exc()

    def pause(self, lo=0.0, hi=0.05):
        time.sleep(self.rng.uniform(lo, hi))

    # tail mode ---------------------------------------------------------------
    def append_batch(self, path, multiline=False, ids=None):
        n = self.rng.randrange(1, 40)
        with open(path, "ab") as f:
            for _ in range(n):
                rid, data = self.record(multiline)
                if ids is not None:
                    ids.append(rid)
                if self.rng.random() < 0.1:  # a partial line (or record) for a while
                    cut = self.rng.randrange(1, len(data))
                    f.write(data[:cut])
                    f.flush()
                    self.pause(0.01, 0.3 if multiline else 0.15)
                    f.write(data[cut:])
                else:
                    f.write(data)
                f.flush()

    def run_append(self):
        path = os.path.join(self.ctx.src, self.name_ + ".log")
        while not self.stop_ev.is_set():
            self.append_batch(path, ids=self.cur)
            self.pause(0.0, 0.08)
            if self.ops and self.rng.random() < 0.08:
                self.op(self.rng.choice(self.ops), path)

    def op(self, what, path):
        if not os.path.exists(path):
            return
        self.k += 1
        self.ctx.ops[what] += 1
        if what == "rename":
            os.rename(path, "%s.%d" % (path, self.k))
            self.cur = []
        elif what == "copytruncate":
            shutil.copyfile(path, "%s.%d" % (path, self.k))
            os.truncate(path, 0)
            self.cur = []
        elif what == "truncate":
            os.truncate(path, 0)
            self.ctx.ledger.may(self.cur)
            self.cur = []
        elif what.startswith("logrotate"):
            # One configuration per file, as in /etc/logrotate.d: switching
            # between compress and delaycompress on the same file makes
            # logrotate itself lose a rotated file.
            self.lr = getattr(self, "lr", what)
            what = self.lr
            conf = os.path.join(self.ctx.work, "%s.logrotate" % self.name_)
            with open(conf, "w") as f:
                f.write("%s {\n rotate 1000\n missingok\n ifempty\n compress\n%s create\n}\n"
                        % (path, " delaycompress\n" if what.endswith("delaycompress") else ""))
            os.chmod(conf, 0o644)
            subprocess.run(["logrotate", "-f", "-s", conf + ".state", conf], check=True,
                           capture_output=True)
            self.cur = []

    def run_multiline(self):
        path = os.path.join(self.ctx.src, self.name_ + ".log")
        while not self.stop_ev.is_set():
            self.append_batch(path, multiline=True)
            self.pause(0.0, 0.1)

    def run_spray(self):
        paths = [os.path.join(self.ctx.src, "%s-%02d.log" % (self.name_, i)) for i in range(50)]
        while not self.stop_ev.is_set():
            for p in self.rng.sample(paths, 10):
                rid, data = self.record()
                with open(p, "ab") as f:
                    f.write(data)
            self.pause(0.0, 0.05)

    def compressed(self, kind, data):
        if kind == "gz":
            return gzip.compress(data, compresslevel=1)
        return subprocess.run(["zstd", "-q", "-c", "--check"], input=data,
                              capture_output=True, check=True).stdout

    def drop_content(self, big=False):
        ids, parts = [], []
        n = self.rng.randrange(1, 60) if not big else 9000
        for _ in range(n):
            rid, data = self.record()
            ids.append(rid)
            parts.append(data)
        return ids, b"".join(parts)

    def run_zdrops(self):
        while not self.stop_ev.is_set():
            self.k += 1
            kind = self.rng.choice(["gz", "zst"])
            ids, data = self.drop_content()
            tmp = os.path.join(self.ctx.tmp, "%s-%d" % (self.name_, self.k))
            with open(tmp, "wb") as f:
                f.write(self.compressed(kind, data))
            os.rename(tmp, os.path.join(self.ctx.src, "%s-%d.log.%s" % (self.name_, self.k, kind)))
            self.pause(0.1, 0.5)

    # whole mode --------------------------------------------------------------
    def run_drops(self):
        while not self.stop_ev.is_set():
            self.k += 1
            r = self.rng.random()
            if r < 0.15 and self.drops:
                self.new_version()
            else:
                big = self.rng.random() < 0.1
                ids, data = self.drop_content(big)
                kind = self.rng.choice(["plain", "plain", "plain", "gz", "zst"])
                name = "%s-%d.csv" % (self.name_, self.k) + ("" if kind == "plain" else "." + kind)
                path = os.path.join(self.ctx.src, name)
                if kind != "plain":
                    data = self.compressed(kind, data)
                if kind == "plain" and self.rng.random() < 0.4:
                    self.write_in_place(path, data, ids)
                else:
                    tmp = os.path.join(self.ctx.tmp, name)
                    with open(tmp, "wb") as f:
                        f.write(data)
                    os.rename(tmp, path)
                if kind == "plain":
                    self.drops.append([path, ids])
            self.pause(0.05, 0.4)

    def write_in_place(self, path, data, ids):
        t0 = time.monotonic()
        with open(path, "wb") as f:
            pieces = sorted(self.rng.sample(range(1, len(data)), min(3, len(data) - 1)))
            last = 0
            for p in pieces + [len(data)]:
                f.write(data[last:p])
                f.flush()
                last = p
                self.pause(0.0, 0.05)
        if time.monotonic() - t0 > SETTLE_MS / 2000:
            self.ctx.ledger.free(ids)
            self.ctx.ops["stalled in-place writes (not checked)"] += 1

    def new_version(self):
        d = self.rng.choice(self.drops)
        path, old = d
        ids, data = self.drop_content()
        self.ctx.ledger.may(old)  # replaced, perhaps before it settled
        if self.rng.random() < 0.5:
            self.write_in_place(path, data, ids)
        else:
            tmp = os.path.join(self.ctx.tmp, "nv-%s-%d" % (self.name_, self.k))
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, path)
        d[1] = ids


# ---- the daemon and the faults ---------------------------------------------

class Daemon:
    def __init__(self, ctx, argv, nofile=None):
        self.ctx, self.argv, self.nofile = ctx, argv, nofile
        self.proc = None
        self.kills = 0
        self.logpath = os.path.join(ctx.work, "daemon.err")

    def _limits(self):
        if self.nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def start(self):
        with open(self.logpath, "ab") as log:
            log.write(("--- %s start: %s\n" % (time.strftime("%T"), " ".join(self.argv))).encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=log,
                                         stdin=subprocess.DEVNULL, env=self.ctx.env,
                                         preexec_fn=self._limits)

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.kills += 1

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("the daemon did not stop within 60 s of SIGTERM")
        return self.proc.returncode

    def tail(self, n=15):
        try:
            with open(self.logpath, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


def fill(path):
    """Fill the filesystem of `path` with one file until ENOSPC (it may be
    full already: then the file may stay empty, or not be made at all)."""
    try:
        with open(path, "wb") as f:
            block = b"\0" * (1 << 16)
            while True:
                f.write(block)
                f.flush()
    except OSError:
        pass


class Faults(threading.Thread):
    def __init__(self, ctx, sc, daemon, servers):
        super().__init__(daemon=True)
        self.ctx, self.sc, self.daemon_, self.servers = ctx, sc, daemon, servers
        self.rng = random.Random("%d-faults" % ctx.seed)
        self.stop_ev = threading.Event()
        self.done = collections.Counter()
        self.error = None

    def run(self):
        try:
            while not self.stop_ev.wait(self.rng.uniform(0.3, 1.8)):
                if not self.daemon_.alive():
                    self.error = "the daemon exited by itself (status %s):\n%s" % (
                        self.daemon_.proc.returncode, self.daemon_.tail())
                    return
                what = self.rng.choice(self.sc["faults"])
                if what.startswith("server") and not self.servers:
                    continue
                self.fault(what)
                self.done[what] += 1
        except Exception:
            self.error = traceback.format_exc()

    def fault(self, what):
        hold = self.rng.uniform(0.05, 1.2)
        if what == "kill9":
            self.daemon_.kill9()
            time.sleep(self.rng.uniform(0, 0.3))
            self.daemon_.start()
        elif what == "server-kill9":
            s = self.rng.choice(self.servers)
            s.kill9()
            time.sleep(hold)
            s.start()
        elif what == "server-stop":
            s = self.rng.choice(self.servers)
            s.pause()
            time.sleep(hold)
            s.resume()
        elif what == "disk-full":
            filler = os.path.join(self.ctx.out_dir, "filler")
            fill(filler)
            time.sleep(hold)
            try:
                os.unlink(filler)
            except FileNotFoundError:
                pass


# ---- checking --------------------------------------------------------------

def parse(blob, seed):
    """Delivered bytes -> [(rid or None, record bytes)]."""
    tag = b"O%d " % seed
    out, cur = [], None
    for line in blob.splitlines(keepends=True):
        if line.startswith(tag):
            if cur is not None:
                out.append(cur)
            cur = line
        elif line.startswith(b"  ") and cur is not None:
            cur += line
        else:
            if cur is not None:
                out.append(cur)
                cur = None
            out.append(line)
    if cur is not None:
        out.append(cur)
    recs = []
    for r in out:
        f = r.split(b" ", 2)
        rid = f[1].decode(errors="replace") if len(f) > 1 and r.startswith(tag) else None
        recs.append((rid, r))
    return recs


def check(ledger, blob, seed, policy):
    """The verdict: {lost, duplicated, torn, invented} lists (empty: clean)."""
    seen = collections.Counter()
    torn, invented = [], []
    for rid, data in parse(blob, seed):
        ent = ledger.recs.get(rid)
        if ent is None:
            invented.append(data[:120])
        elif ent[1] is None:
            pass
        elif ent[0] != data:
            torn.append((rid, data[:120], ent[0][:120]))
        else:
            seen[rid] += 1
    lost = [r for r, (d, must) in ledger.recs.items() if must and seen[r] == 0]
    dup = [(r, n) for r, n in seen.items() if n > 1] if policy == "exactly" else []
    return {"lost": lost, "duplicated": dup, "torn": torn, "invented": invented}


def missing_musts(ledger, blob, seed):
    got = set(rid for rid, d in parse(blob, seed) if rid in ledger.recs
              and ledger.recs[rid][0] == d)
    return sum(1 for r, (d, must) in ledger.recs.items() if must and r not in got)


# ---- one scenario ----------------------------------------------------------

class Context:
    pass


def replay_cmd(name, seed):
    return "TIDEMARK=%s python3 %s run --scenario %s --seed %d" % (
        os.environ.get("TIDEMARK", "./build/tidemark"), os.path.join(HERE, "oracle.py"), name, seed)


def run_scenario(name, seed, seconds=None, keep=False):
    """Run scenario `name` with `seed`. Returns (status, text): status
    "pass", "fail" or "skip"."""
    sc = SCENARIOS[name]
    rng = random.Random(seed)
    ctx = Context()
    ctx.seed, ctx.rng, ctx.mode = seed, rng, sc["mode"]
    ctx.tidemark = os.path.abspath(os.environ.get("TIDEMARK", "./build/tidemark"))
    ctx.work = tempfile.mkdtemp(prefix="tdm-oracle-%s-%d." % (name, seed))
    ctx.src = os.path.join(ctx.work, "src")
    ctx.tmp = os.path.join(ctx.work, "tmp")
    ctx.out_dir = os.path.join(ctx.work, "out")
    for d in (ctx.src, ctx.tmp, ctx.out_dir):
        os.makedirs(d)
    ctx.env = dict(os.environ)
    ctx.ledger = Ledger()
    ctx.ops = collections.Counter()
    ctx.log = lambda msg: None
    mounted = False
    sink = daemon = None
    lanes, faults = [], None
    summary = ""
    try:
        if sc.get("tmpfs"):
            if os.geteuid() != 0:
                raise Skip("a full tmpfs needs root (mount)")
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % rng.choice([4096, 8192]),
                                "tmpfs", ctx.out_dir], capture_output=True)
            if r.returncode != 0:
                raise Skip("mount tmpfs: %s" % r.stderr.decode(errors="replace").strip())
            mounted = True
        state = os.path.join(ctx.out_dir if sc.get("tmpfs") else ctx.work, "state")
        common = (["-vv"] if os.environ.get("TDM_ORACLE_VERBOSE") else []) + [
                  "-s", state, "-m", sc["mode"], "--checkpoint-ms",
                  str(rng.choice([20, 100, 300, 1000]))]
        if sc["mode"] == "whole":
            common += ["--settle-ms", str(SETTLE_MS)]
        if "multiline" in sc["lanes"]:
            common += ["--multiline-start", "^O", "--multiline-timeout-ms", "400"]
        if sc["sink"] == "exec" and sc["mode"] == "whole" or sc["mode"] == "whole":
            common += ["-i", "*.csv", "-i", "*.csv.gz", "-i", "*.csv.zst"]
        else:
            common += ["-i", "*.log*"]
        common.append(ctx.src)
        sink = SINKS[sc["sink"]](ctx)
        sink.start()
        daemon = Daemon(ctx, sink.daemon_argv(common), sc.get("nofile"))
        daemon.start()
        for i, kind in enumerate(sc["lanes"]):
            lanes.append(Lane(ctx, i, kind, sc.get("ops", [])))
        for ln in lanes:
            ln.start()
        faults = Faults(ctx, sc, daemon, sink.servers())
        faults.start()
        time.sleep(seconds if seconds is not None else rng.uniform(4, 9))
        faults.stop_ev.set()
        faults.join()
        for ln in lanes:
            ln.stop_ev.set()
        for ln in lanes:
            ln.join()
        errs = [ln.error for ln in lanes if ln.error] + ([faults.error] if faults.error else [])
        if errs:
            raise Failure("\n".join(errs))
        if not daemon.alive():
            raise Failure("the daemon exited by itself (status %s):\n%s"
                          % (daemon.proc.returncode, daemon.tail()))
        # Catch up: until every record that must arrive did; at most 90 s,
        # and 20 s without progress is the end of it.
        end = time.time() + 90
        best, since = None, time.time()
        while time.time() < end and time.time() - since < 20:
            left = missing_musts(ctx.ledger, sink.delivered(), seed)
            if left == 0:
                break
            if best is None or left < best:
                best, since = left, time.time()
            if not daemon.alive():
                raise Failure("the daemon exited by itself while catching up (status %s):\n%s"
                              % (daemon.proc.returncode, daemon.tail()))
            time.sleep(1.0 if sc["sink"] == "nats" else 0.3)
        time.sleep(1.5)  # what else would still come (a duplicate)
        rc = daemon.stop()
        blob = sink.delivered()
        verdict = check(ctx.ledger, blob, seed, sink.policy)
        musts = sum(1 for d, m in ctx.ledger.recs.values() if m is True)
        summary = ("%d records (%d must arrive), %d bytes delivered, ops: %s, faults: %s"
                   % (len(ctx.ledger.recs), musts, len(blob),
                      dict(ctx.ops) or "none", dict(faults.done) or "none"))
        note = getattr(sink, "notes", lambda: "")()
        if note:
            summary += "; " + note
        bad = {k: v for k, v in verdict.items() if v}
        if rc not in (0, None) and not bad:
            bad["exit"] = ["the daemon's exit status after SIGTERM: %s\n%s" % (rc, daemon.tail())]
        if bad:
            with open(os.path.join(ctx.work, "ledger.json"), "w") as f:
                json.dump({k: [v[0].decode(errors="replace"), v[1]] for k, v in ctx.ledger.recs.items()}, f)
            with open(os.path.join(ctx.work, "delivered"), "wb") as f:
                f.write(blob)
            lines = []
            for k, v in bad.items():
                lines.append("  %s: %d, e.g. %s" % (k, len(v), "; ".join(repr(x) for x in v[:3])))
            raise Failure(summary + "\n" + "\n".join(lines))
        return "pass", summary
    except Skip as e:
        return "skip", str(e)
    except Failure as e:
        keep = True
        return "fail", "%s\n  work directory kept: %s" % (e, ctx.work)
    except Exception:
        keep = True
        return "fail", "%s\n  work directory kept: %s" % (traceback.format_exc(), ctx.work)
    finally:
        for ln in lanes:
            ln.stop_ev.set()
        if faults is not None:
            faults.stop_ev.set()
        if daemon is not None and daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        if sink is not None:
            try:
                sink.stop()
            except Exception:
                pass
        if mounted:
            subprocess.run(["umount", "-l", ctx.out_dir], capture_output=True)
        if not keep and not os.environ.get("TDM_KEEP"):
            shutil.rmtree(ctx.work, ignore_errors=True)


def report(name, seed, status, text):
    sc = SCENARIOS[name]
    xf = sc.get("xfail")
    if status == "fail" and xf:
        tag = "XFAIL"
    elif status == "pass" and xf:
        tag = "XPASS"
    else:
        tag = status.upper()
    print("%-5s %-24s seed %-20d %s" % (tag, name, seed, text.splitlines()[0] if text else ""),
          flush=True)
    if status == "fail":
        print("\n".join("      " + x for x in text.splitlines()[1:]))
        if xf:
            print("      expected: %s" % xf)
        print("      replay: %s" % replay_cmd(name, seed), flush=True)
    if tag == "XPASS":
        print("      (marked xfail for %s: it passed; remove the mark once fixed)" % xf)
    return tag


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    r = sub.add_parser("run")
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    r.add_argument("--seconds", type=float)
    c = sub.add_parser("ci")
    c.add_argument("--minutes", type=float,
                   default=float(os.environ.get("TDM_ORACLE_MINUTES") or 2.75))
    c.add_argument("--only", help="a comma-separated list of scenarios")
    a = ap.parse_args()

    if a.cmd == "list":
        for n, sc in SCENARIOS.items():
            print("%-24s %-5s %-6s lanes=%s ops=%s faults=%s%s%s%s" % (
                n, sc["mode"], sc["sink"], ",".join(sc["lanes"]), ",".join(sc.get("ops", [])) or "-",
                ",".join(sorted(set(sc["faults"]))),
                " nofile=%d" % sc["nofile"] if sc.get("nofile") else "",
                " tmpfs" if sc.get("tmpfs") else "",
                "  XFAIL: " + sc["xfail"] if sc.get("xfail") else ""))
        return 0
    if a.cmd == "run":
        status, text = run_scenario(a.scenario, a.seed, a.seconds)
        tag = report(a.scenario, a.seed, status, text)
        return 1 if tag == "FAIL" else 0

    names = a.only.split(",") if a.only else list(SCENARIOS)
    deadline = time.time() + a.minutes * 60
    seeds = random.Random()  # fresh seeds each run (printed)
    tally = collections.Counter()
    i = seeds.randrange(len(names))
    print("oracle: %.1f minutes over %d scenarios, fresh seeds" % (a.minutes, len(names)), flush=True)
    start = time.time()
    while True:
        # A scenario takes ~10-25 s: start one only when there is time for it.
        if tally and time.time() + 20 > deadline:
            break
        name = names[i % len(names)]
        i += 1
        seed = seeds.randrange(1, 1 << 40)
        status, text = run_scenario(name, seed)
        tally[report(name, seed, status, text)] += 1
    print("oracle: %d scenarios in %.0f s: %s" % (sum(tally.values()), time.time() - start,
                                                 ", ".join("%s %d" % kv for kv in sorted(tally.items()))))
    return 1 if tally["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
