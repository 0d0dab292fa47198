"""The tidemark package against the real library, files and state store."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import tidemark
from conftest import child_env, spawn, tidemark_bin


def collect(state, src, **kw):
    """One run_once with a function processor; the (path, offset, bytes)
    it saw."""
    seen = []
    with tidemark.open(state, sources=[src], **kw) as t:
        t.add_processor(lambda c: seen.append((c.path, c.offset,
                                               bytes(c.data))), name="fn")
        t.run_once()
    return seen


def test_function_sees_only_new_bytes(state, src):
    log = src / "app.log"
    log.write_bytes(b"one\ntwo\n")
    assert collect(state, src) == [(str(log), 0, b"one\ntwo\n")]
    assert collect(state, src) == []
    with open(log, "ab") as f:
        f.write(b"three\npartial")
    assert collect(state, src) == [(str(log), 8, b"three\n")]
    with open(log, "ab") as f:
        f.write(b" line\n")
    assert collect(state, src) == [(str(log), 14, b"partial line\n")]
    (src / "new.log").write_bytes(b"n\n")
    assert collect(state, src) == [(str(src / "new.log"), 0, b"n\n")]


def test_same_handle_two_passes_and_counters(state, src):
    log = src / "a.log"
    log.write_bytes(b"x\n")
    seen = []
    with tidemark.open(state, sources=[str(src)], checkpoint_ms=50) as t:
        t.add_processor(lambda c: seen.append(bytes(c.data)), name="fn")
        s = t.run_once()
        assert s["chunks"] == 1 and s["bytes"] == 2 and s["files_new"] == 1
        with open(log, "ab") as f:
            f.write(b"y\n")
        s = t.run_once()
        assert s["chunks"] == 2 and s["bytes"] == 4
    assert seen == [b"x\n", b"y\n"]


def test_exception_keeps_bookmark_and_raises(state, src):
    log = src / "a.log"
    log.write_bytes(b"first\n")
    assert collect(state, src) == [(str(log), 0, b"first\n")]
    with open(log, "ab") as f:
        f.write(b"second\n")

    def boom(chunk):
        raise ValueError("cannot take %d bytes" % len(chunk.data))

    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(boom, name="boom")
        with pytest.raises(tidemark.Error) as ei:
            t.run_once()
    err = ei.value
    assert err.code == "EPROC"
    assert "ValueError: cannot take 7 bytes" in err.message
    assert "boom" in err.message
    assert err.stats["proc_failures"] == 5  # offered alone max_tries (5) times
    assert isinstance(err.__cause__, ValueError)
    (rec,) = tidemark.status(state)
    assert rec["bookmark"] == 6 and rec["state"] == "failed"
    assert "cannot take 7 bytes" in rec["error"]
    # The next run gets the same bytes.
    assert collect(state, src) == [(str(log), 6, b"second\n")]
    (rec,) = tidemark.status(state)
    assert rec["bookmark"] == 13 and rec["state"] == "active"


def test_wrong_return_value_is_a_failure(state, src):
    (src / "a.log").write_bytes(b"x\n")
    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(lambda c: True, name="bad")
        with pytest.raises(tidemark.Error, match="None or tidemark.RETRY"):
            t.run_once()


def test_retry_offers_the_same_chunk_again(state, src):
    (src / "a.log").write_bytes(b"x\ny\n")
    calls = []

    def flaky(chunk):
        calls.append(bytes(chunk.data))
        return tidemark.RETRY if len(calls) < 3 else None

    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(flaky, name="flaky")
        s = t.run_once()
    assert calls == [b"x\ny\n"] * 3
    assert s["proc_retries"] == 2 and s["proc_failures"] == 0
    assert tidemark.status(state)[0]["bookmark"] == 4


def test_memoryview_is_released_after_the_call(state, src):
    (src / "a.log").write_bytes(b"hello\n")
    kept = []

    def keep(chunk):
        assert chunk.data.readonly and bytes(chunk.data) == b"hello\n"
        assert chunk.data[0] == ord("h")
        kept.append(chunk)

    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(keep, name="keep")
        t.run_once()
    (chunk,) = kept
    with pytest.raises(ValueError):
        bytes(chunk.data)
    with pytest.raises(ValueError):
        chunk.data[0]
    # The rest of a kept chunk stays readable.
    assert chunk.path == str(src / "a.log") and chunk.offset == 0


def test_exported_buffer_outlives_the_call_as_a_copy(state, src):
    (src / "a.log").write_bytes(b"hello\n")
    held = []  # a pending re iterator holds an export of the buffer
    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(lambda c: held.append(re.finditer(b"l", c.data)),
                        name="h")
        t.run_once()
    assert tidemark.status(state)[0]["bookmark"] == 6
    assert [m.start() for m in held[0]] == [2, 3]


SLICE_CHILD = r"""
import sys, tidemark
kept = []
def p(c):
    kept.append(c.data[0:5])            # a slice: outlives the call
    kept.append(c.data[1:][::2])        # a slice of a slice
t = tidemark.open("st", sources=["src"])
t.add_processor(p, name="p")
t.run_once()
open("src/a.log", "ab").write(b"ZZZZZZZZZZ\n")
t.run_once()
t.close()
junk = [bytearray(b"J" * (1 << 20)) for _ in range(40)]   # reuse freed memory
print(repr([bytes(k) for k in kept]))
"""


def test_kept_slice_of_data_is_a_copy(tmp_path):
    """A slice of chunk.data kept past the call (0.2: SIGSEGV after close)
    keeps the bytes of its own chunk, whatever happens after."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.log").write_bytes(b"alpha\nbravo\ncharlie\n")
    r = subprocess.run([sys.executable, "-c", SLICE_CHILD], cwd=tmp_path,
                       env=child_env(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert eval(r.stdout) == [b"alpha", b"lh\nrv\nhri\n", b"ZZZZZ",
                                   b"ZZZZZ"]


@pytest.mark.parametrize("blob", [7, 10**9, "text", 1.5])
def test_commit_must_return_bytes(state, src, blob):
    (src / "a.log").write_bytes(b"x\n")

    class S(Recorder):
        def commit(self):
            return blob

    log = []
    t = tidemark.open(state, sources=[src])
    t.add_processor(S(log), name="s")
    with pytest.raises(tidemark.Error) as ei:
        t.run_once()
    with pytest.raises(tidemark.Error, match="must return bytes"):
        t.close()                                       # the final commit
    assert ei.value.code == "EPROC"
    assert "TypeError: commit() returned %s; it must return bytes" \
        % type(blob).__name__ in ei.value.message
    # nothing committed
    assert [r["bookmark"] for r in tidemark.status(state)] in ([], [0])
    log.clear()
    with tidemark.open(state, sources=[src]) as t:      # never b"\0" * 7
        t.add_processor(Recorder(log), name="s")
    assert log[0] == ("open", None)


def test_status_equals_the_command(state, src, tmp_path):
    (src / "a.log").write_bytes(b"1\n2\n")
    (src / "sub").mkdir()
    (src / "sub" / "b.log").write_bytes(b"partial")
    (src / "t\u00e9st \"q\".log").write_bytes(b"x\n")
    collect(state, src)
    with open(src / "a.log", "ab") as f:
        f.write(b"3\n")            # pending bytes show up in both
    (src / "sub" / "b.log").unlink()  # a gone file too
    out = subprocess.run([tidemark_bin(), "status", "--json", "--state", state],
                         check=True, capture_output=True).stdout
    cli = json.loads(out.decode("utf-8", "surrogateescape"))
    assert tidemark.status(state) == cli["files"]
    assert len(cli["files"]) == 3
    with pytest.raises(tidemark.Error) as ei:
        tidemark.status(tmp_path / "nothing")
    assert ei.value.code == "ENOENT"


def test_status_iterates(state, src, tmp_path):
    # The iterator form yields what the list form holds, one entry at a
    # time, across more than one read of the pipe (64 KiB).
    for i in range(600):
        (src / ("file-%04d-\u00e9.log" % i)).write_bytes(b"x\n" * (i % 3))
    collect(state, src)
    it = tidemark.status(state, iterate=True)
    assert not isinstance(it, list)
    assert list(it) == tidemark.status(state)
    # Stopped early: the library's walk ends, nothing is left hanging.
    it = tidemark.status(state, iterate=True)
    assert next(it)["path"].startswith(os.fspath(src))
    it.close()
    with pytest.raises(tidemark.Error) as ei:
        list(tidemark.status(tmp_path / "nothing", iterate=True))
    assert ei.value.code == "ENOENT"


def test_reset_all_and_paths(state, src):
    (src / "a.log").write_bytes(b"a\n")
    (src / "b.log").write_bytes(b"b\n")
    assert len(collect(state, src)) == 2
    assert tidemark.reset(state, paths=[src / "a.log"]) == 1
    assert collect(state, src) == [(str(src / "a.log"), 0, b"a\n")]
    assert tidemark.reset(state) == 2
    assert sorted(c[2] for c in collect(state, src)) == [b"a\n", b"b\n"]
    assert tidemark.reset(state, paths=[str(src / "nothing")]) == 0
    with tidemark.open(state):
        with pytest.raises(tidemark.Error) as ei:
            tidemark.reset(state)
        assert ei.value.code == "ELOCKED"


def test_errors_carry_codes(state, src, tmp_path):
    with tidemark.open(state) as t:
        with pytest.raises(tidemark.Error) as ei:
            t.add_processor("no-such-processor")
        assert ei.value.code == "EUSAGE" and "no-such-processor" in ei.value.message
        with pytest.raises(tidemark.Error) as ei:
            t.add_source(tmp_path / "missing")
        assert ei.value.code == "ENOENT" and "missing" in ei.value.message
        with pytest.raises(tidemark.Error) as ei:
            tidemark.open(state)
        assert ei.value.code == "ELOCKED"
    with pytest.raises(tidemark.Error) as ei:
        tidemark.open(state, mode="sideways")
    assert ei.value.code == "EUSAGE" and "--mode" in ei.value.message
    with pytest.raises(TypeError, match="no_such_option"):
        tidemark.open(state, no_such_option=1)
    # Another process holds the writer lock: the library's own ELOCKED.
    child = spawn("-c", "import tidemark,sys,time\n"
                  "t=tidemark.open(sys.argv[1]); print('open', flush=True)\n"
                  "sys.stdin.read()", state, stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"open\n"
        with pytest.raises(tidemark.Error) as ei:
            tidemark.open(state)
        assert ei.value.code == "ELOCKED" and ei.value.errno == -4003
    finally:
        child.stdin.close()
        child.wait(30)


def test_options_as_keywords(state, src):
    (src / "a.csv").write_bytes(b"1,2\n")
    (src / "b.txt").write_bytes(b"no\n")
    (src / "deep").mkdir()
    (src / "deep" / "c.csv").write_bytes(b"3,4\n")
    seen = collect(state, src, include=["*.csv"], no_recursive=True,
                   records="bytes", max_record="64K", checkpoint_ms=10,
                   settle_ms=5, poll_ms=0, verbose=0)
    assert seen == [(str(src / "a.csv"), 0, b"1,2\n")]


def test_spec_processor_and_processor_keyword(state, src, tmp_path):
    (src / "a.log").write_bytes(b"x\ny\n")
    out = tmp_path / "out"
    with tidemark.open(state, sources=[src],
                       processor=["file:path=%s" % out]) as t:
        t.run_once()
    assert out.read_bytes() == b"x\ny\n"


class Recorder:
    """An object processor that records what it is asked."""

    def __init__(self, log):
        self.log = log
        self.n = 0

    def open(self, restore):
        self.log.append(("open", restore))
        self.n = int(restore or b"0")

    def process(self, chunk):
        self.n += bytes(chunk.data).count(b"\n")

    def commit(self):
        self.log.append(("commit", self.n))
        return b"%d" % self.n

    def close(self):
        self.log.append(("close",))


def test_object_blob_survives_a_restart(state, src):
    (src / "a.log").write_bytes(b"1\n2\n3\n")
    log = []
    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(Recorder(log), name="rec")
        t.run_once()
    assert log[0] == ("open", None)
    assert ("commit", 3) in log and log[-1] == ("close",)
    log.clear()
    with open(src / "a.log", "ab") as f:
        f.write(b"4\n")
    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(Recorder(log), name="rec")
        t.run_once()
    assert log[0] == ("open", b"3")
    assert ("commit", 4) in log


def test_failing_commit_rolls_back(state, src):
    (src / "a.log").write_bytes(b"1\n")

    class Bad(Recorder):
        def commit(self):
            if self.n:
                raise OSError("disk on fire")
            return b""

    log = []
    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(Bad(log), name="bad")
        with pytest.raises(tidemark.Error, match="disk on fire"):
            t.run_once()
    assert tidemark.status(state)[0]["bookmark"] == 0


def test_open_failure_is_an_error(state):
    class NoOpen(Recorder):
        def open(self, restore):
            raise RuntimeError("no database")

    with tidemark.open(state) as t:
        with pytest.raises(tidemark.Error) as ei:
            t.add_processor(NoOpen([]), name="x")
    assert ei.value.code == "EPROC" and "no database" in ei.value.message


def test_run_and_stop_from_another_thread(state, src):
    log = src / "a.log"
    log.write_bytes(b"before\n")
    seen = []
    got = threading.Event()

    def fn(chunk):
        seen.append(bytes(chunk.data))
        if b"after\n" in b"".join(seen):
            got.set()

    with tidemark.open(state, sources=[src], checkpoint_ms=20) as t:
        t.add_processor(fn, name="fn")
        runner_ident = []

        def feeder():
            time.sleep(0.2)
            with open(log, "ab") as f:
                f.write(b"after\n")
            got.wait(30)
            t.stop()

        th = threading.Thread(target=feeder)
        th.start()
        stats = t.run()
        th.join()
    assert b"".join(seen) == b"before\nafter\n"
    assert stats["chunks"] == len(seen)
    assert tidemark.status(state)[0]["bookmark"] == 13


def test_processors_run_on_the_calling_thread(state, src):
    (src / "a.log").write_bytes(b"x\n")
    idents = []

    def fn(chunk):
        idents.append(threading.get_ident())
        t.stop()

    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(fn, name="fn")
        t.run()
    assert idents == [threading.get_ident()]


SIGTERM_CHILD = r"""
import signal, sys, tidemark
state, src, out = sys.argv[1:4]
with tidemark.open(state, sources=[src], checkpoint_ms=20) as t:
    def fn(chunk):
        with open(out, "ab") as f:
            f.write(bytes(chunk.data))
    t.add_processor(fn, name="fn")
    signal.signal(signal.SIGTERM, lambda *_: t.stop())
    print("ready", flush=True)
    stats = t.run()
print("stopped chunks=%d" % stats["chunks"], flush=True)
"""


def wait_for(pred, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_run_stops_on_sigterm(state, src, tmp_path):
    log = src / "a.log"
    out = tmp_path / "out"
    log.write_bytes(b"one\n")
    child = spawn("-c", SIGTERM_CHILD, state, src, out, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        assert wait_for(lambda: out.exists() and out.read_bytes() == b"one\n")
        with open(log, "ab") as f:
            f.write(b"two\n")
        assert wait_for(lambda: out.read_bytes() == b"one\ntwo\n")
        child.send_signal(signal.SIGTERM)
        rest = child.communicate(timeout=30)[0]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0
    assert rest.startswith(b"stopped chunks=")
    # The final checkpoint recorded everything delivered.
    assert tidemark.status(state)[0]["bookmark"] == 8


def test_keyboard_interrupt_in_a_processor_stops_cleanly(state, src):
    (src / "a.log").write_bytes(b"x\n")

    def fn(chunk):
        raise KeyboardInterrupt

    with tidemark.open(state, sources=[src]) as t:
        t.add_processor(fn, name="fn")
        with pytest.raises(KeyboardInterrupt):
            t.run_once()
    assert tidemark.status(state)[0]["bookmark"] == 0


def test_whole_mode(state, src):
    (src / "drop.csv").write_bytes(b"a,b\n")
    (src / "copy.csv").write_bytes(b"a,b\n")
    seen = collect(state, src, mode="whole", settle_ms=10, include=["*.csv"])
    assert [s[2] for s in seen] == [b"a,b\n"]  # the copy is a duplicate
    states = sorted(r["state"] for r in tidemark.status(state))
    assert states == ["done", "duplicate"]


def test_record_options_as_keywords(state, src, tmp_path):
    """The 0.2 long options reach the library: multiline records, reading
    gzip by its magic bytes (or not), and a bad value named."""
    import gzip
    log = src / "app.log"
    log.write_bytes(b"ERROR a\n  at x\n  at y\nINFO b\n")
    old = time.time() - 10   # quiet for longer than the multiline timeout
    os.utime(log, (old, old))
    seen = collect(state, src, multiline_start=r"^[A-Z]+ ",
                   multiline_timeout_ms=100)
    assert b"".join(d for _, _, d in seen) == log.read_bytes()
    # records: "ERROR a" with its two stack lines is one record, then "INFO b"
    assert [d for _, _, d in seen][0].startswith(b"ERROR a\n  at x\n  at y\n")

    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "rotated").write_bytes(gzip.compress(b"zipped line\n"))
    os.utime(packed / "rotated", (old, old))  # complete: it holds still
    assert [d for _, _, d in collect(str(tmp_path / "s2"), packed)] == \
        [b"zipped line\n"]
    raw = collect(str(tmp_path / "s3"), packed, decompress="never",
                  records="bytes")
    assert b"".join(d for _, _, d in raw)[:2] == b"\x1f\x8b"

    with pytest.raises(tidemark.Error) as ei:
        tidemark.open(str(tmp_path / "s4"), sources=[src], decompress="maybe")
    assert ei.value.code == "EUSAGE" and "--decompress" in str(ei.value)
    with pytest.raises(tidemark.Error) as ei:
        collect(str(tmp_path / "s5"), src, multiline_start="(")
    assert ei.value.code == "EUSAGE" and "multiline" in str(ei.value)
