"""Whole mode from Python: add_file_processor(fn) once per complete file
version, in-process, with exec's outcome rules; begin_file/end_file."""
import os
import time

import pytest

import tidemark


def whole(state, src, **kw):
    kw.setdefault("settle_ms", 0)
    return tidemark.open(state, sources=[src], mode="whole", **kw)


def test_once_per_complete_file_version(state, src):
    calls = []

    def load(path, info):
        with open(path, "rb") as f:
            calls.append((path, f.read(), info.length, info.hash_hex))

    (src / "a.csv").write_bytes(b"x,y\n1,2\n")
    (src / "dup.csv").write_bytes(b"x,y\n1,2\n")       # same content
    with whole(state, src) as t:
        t.add_file_processor(load, name="load")
        s = t.run_once()
    assert len(calls) == 1 and calls[0][1] == b"x,y\n1,2\n"
    assert calls[0][2] == 8 and len(calls[0][3]) == 32
    assert s["files_done"] == 1 and s["duplicates"] == 1
    calls.clear()
    with whole(state, src) as t:                         # nothing new
        t.add_file_processor(load, name="load")
        t.run_once()
    assert calls == []
    (src / "a.csv").write_bytes(b"x,y\n3,4\n")           # a new version
    old = time.time() - 5
    os.utime(src / "a.csv", (old, old))
    with whole(state, src) as t:
        t.add_file_processor(load, name="load")
        t.run_once()
    assert [(os.path.basename(c[0]), c[1]) for c in calls] == \
        [("a.csv", b"x,y\n3,4\n")]


def test_forget_after_keeps_the_hash(state, src):
    calls = []

    def load(path, info):
        with open(path, "rb") as f:
            calls.append(f.read())

    (src / "a.csv").write_bytes(b"a\n")
    with whole(state, src, on_done="delete", forget_after_ms=0) as t:
        t.add_file_processor(load, name="load")
        s = t.run_once()
    assert calls == [b"a\n"] and s["files_forgotten"] == 1
    assert list(tidemark.status(state)) == []           # no record left
    (src / "again.csv").write_bytes(b"a\n")             # the same content
    (src / "new.csv").write_bytes(b"new\n")
    with whole(state, src, on_done="delete", forget_after_ms=None) as t:
        t.add_file_processor(load, name="load")
        s = t.run_once()
    assert calls == [b"a\n", b"new\n"] and s["duplicates"] == 1
    assert s["files_forgotten"] == 0                    # None: never
    with pytest.raises(tidemark.Error):
        whole(state, src, forget_after_ms=-1)


def test_raise_fails_the_file_with_retries_and_on_failed(state, src,
                                                          tmp_path, caplog):
    bad = tmp_path / "bad"
    bad.mkdir()
    tries = []

    def load(path, info):
        tries.append(path)
        if path.endswith("b.csv"):
            raise ValueError("no header in %s" % os.path.basename(path))

    (src / "a.csv").write_bytes(b"a\n")
    (src / "b.csv").write_bytes(b"b\n")
    with whole(state, src, on_failed="move:%s" % bad, on_done="delete") as t:
        t.add_file_processor(load, name="load", retries=2)
        with pytest.raises(tidemark.Error) as ei:
            t.run_once()
    assert ei.value.code == "EPROC"
    assert "load" in ei.value.message and "b.csv" in ei.value.message
    assert "ValueError: no header in b.csv" in ei.value.message
    assert sorted(os.path.basename(p) for p in tries) == \
        ["a.csv", "b.csv", "b.csv", "b.csv"]            # 1 + 2 retries
    assert not (src / "a.csv").exists()                 # on_done delete
    assert (bad / "b.csv").read_bytes() == b"b\n"       # on_failed move
    st = {os.path.basename(r["path"]): r["state"]
          for r in tidemark.status(state)}
    assert st["b.csv"] == "failed"
    assert any("attempt 1 of 3" in r.getMessage() for r in caplog.records)


def test_tail_mode_is_a_clear_error(state, src):
    with tidemark.open(state, sources=[src]) as t:
        with pytest.raises(tidemark.Error) as ei:
            t.add_file_processor(lambda p, i: None, name="load")
    assert ei.value.code == "EUSAGE"
    assert "mode='whole'" in ei.value.message and "load" in ei.value.message


def test_begin_and_end_file_around_the_chunks(state, src):
    events = []

    class Loader:
        def begin_file(self, info):
            events.append(("begin", os.path.basename(info.path),
                           info.length))

        def process(self, chunk):
            events.append(("chunk", os.path.basename(chunk.path),
                           bytes(chunk.data)))

        def end_file(self, info):
            events.append(("end", os.path.basename(info.path), info.length))

    (src / "a.csv").write_bytes(b"1\n2\n")
    (src / "empty.csv").write_bytes(b"")
    with whole(state, src) as t:
        t.add_processor(Loader(), name="loader")
        t.run_once()
    by_file = {}
    for e in events:
        by_file.setdefault(e[1], []).append((e[0],) + e[2:])
    assert by_file == {
        "a.csv": [("begin", None), ("chunk", b"1\n2\n"), ("end", 4)],
        "empty.csv": [("begin", None), ("end", 0)]}
    # A failing end_file fails the file.
    (src / "c.csv").write_bytes(b"3\n")

    class Bad(Loader):
        def end_file(self, info):
            raise RuntimeError("cannot finish")

    with whole(state, src) as t:
        t.add_processor(Bad(), name="loader")
        with pytest.raises(tidemark.Error, match="cannot finish"):
            t.run_once()
