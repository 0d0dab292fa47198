"""The package behaves like a Python library: logging, Ctrl-C, sd_notify,
type hints and a manual in help()."""
import inspect
import logging
import os
import pydoc
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import tidemark
from conftest import child_env


def run_child(code, cwd, timeout=120, env=None):
    e = child_env()
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=e,
                          capture_output=True, timeout=timeout)


def test_messages_go_to_logging(state, src, caplog):
    (src / "a.log").write_bytes(b"x\n")

    def boom(chunk):
        raise ValueError("refused")

    caplog.set_level(logging.DEBUG, logger="tidemark")
    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(boom, name="boom")
        with pytest.raises(tidemark.Error):
            t.run_once()
    recs = [r for r in caplog.records if r.name == "tidemark"]
    assert any(r.levelno == logging.ERROR and "refused" in r.getMessage()
               for r in recs)


QUIET = r"""
import logging, tidemark
logging.getLogger("tidemark").addHandler(logging.NullHandler())
logging.getLogger("tidemark").propagate = False
def boom(c): raise ValueError("refused")
with tidemark.open("st", sources=["src"], verbose=2) as t:
    t.add_processor(boom, name="boom")
    try:
        t.run_once()
    except tidemark.Error:
        pass
tidemark.status("st")
tidemark.reset("st", ["no-such-file"])     # warned about: to the logger
try:
    tidemark.status("no-such-state")
except tidemark.Error as e:
    assert e.code == "ENOENT", e
"""


def test_nothing_printed_by_the_package(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.log").write_bytes(b"x\n")
    r = run_child(QUIET, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"" and r.stderr == b""


CTRL_C = r"""
import os, signal, sys, tidemark
seen = []
def p(c):
    seen.append(bytes(c.data))
    if len(seen) == 3:
        os.kill(os.getpid(), signal.SIGINT)     # Ctrl-C in the middle
with tidemark.open("st", sources=["src"]) as t:
    t.add_processor(p, name="p")
    with open("seen", "wb") as f:
        try:
            t.%s
        finally:
            f.write(b"".join(seen))
"""


@pytest.mark.parametrize("call", ["run_once()", "run()"])
def test_ctrl_c_checkpoints_then_raises_keyboard_interrupt(tmp_path, call):
    (tmp_path / "src").mkdir()
    files = {}
    for k in range(20):                         # 20 files: 20 chunks
        files["f%02d.log" % k] = b"".join(b"%02d %04d\n" % (k, i)
                                          for i in range(50))
        (tmp_path / "src" / ("f%02d.log" % k)).write_bytes(files["f%02d.log" % k])
    r = run_child(CTRL_C % call, tmp_path)
    err = r.stderr.decode()
    # An uncaught KeyboardInterrupt: Python ends by SIGINT, as it should.
    assert r.returncode == -signal.SIGINT
    assert err.rstrip().endswith("KeyboardInterrupt")
    frames = [l for l in err.splitlines() if l.startswith("  File ")]
    # The traceback ends at the call: nothing from inside the processor
    # trampoline or ctypes.
    assert all("ctypes" not in l and "deliver" not in l and "_failure"
               not in l for l in frames), err
    seen = (tmp_path / "seen").read_bytes().splitlines()
    assert 3 <= len(seen) // 50 < 20
    # The final checkpoint recorded what was taken: the rest comes next time.
    done = sum(x["bookmark"] for x in tidemark.status(tmp_path / "st"))
    assert done == 50 * 8 * (len(seen) // 50)
    rest = []
    with tidemark.open(tmp_path / "st", sources=[tmp_path / "src"]) as t:
        t.add_processor(lambda c: rest.append(bytes(c.data)), name="p")
        t.run_once()
    everything = seen + b"".join(rest).splitlines()
    assert sorted(everything) == sorted(b"".join(files.values()).splitlines())


def test_run_speaks_sd_notify(state, src, tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    (src / "a.log").write_bytes(b"x\n")
    got = []

    def listen():
        while True:
            try:
                m = sock.recv(4096).decode()
            except OSError:
                return
            got.append(m)
            if "WATCHDOG=1" in m and any("READY=1" in g for g in got) \
                    and not stopped.is_set():
                stopped.set()
                t.stop()
            if "STOPPING=1" in m:
                return

    stopped = threading.Event()
    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(lambda c: None, name="p")
        th = threading.Thread(target=listen)
        th.start()
        t.run(slice_ms=20)
        th.join(30)
    sock.close()
    text = "\n".join(got)
    assert got[0].startswith("READY=1\nSTATUS=1 files tracked, 2 bytes")
    assert "WATCHDOG=1" in text and got[-1] == "STOPPING=1"
    assert text.count("STOPPING=1") == 1


def test_help_reads_as_a_manual():
    doc = pydoc.render_doc(tidemark, renderer=pydoc.plaintext)
    for word in ("pip install", "RETRY", "Sink", "add_file_processor",
                 "begin_file", "dead_letter", "KeyboardInterrupt",
                 "NOTIFY_SOCKET", 'logging.getLogger("tidemark")'):
        assert word in doc, word
    for name in tidemark.__all__:
        obj = getattr(tidemark, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__, name
    assert os.path.exists(os.path.join(os.path.dirname(tidemark.__file__),
                                       "py.typed"))
    assert tidemark.open.__annotations__["return"] is tidemark.Tidemark
