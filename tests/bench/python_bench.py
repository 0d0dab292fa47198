"""Python processors: how many chunks and bytes they take, against baselines
measured in the same run (no absolute thresholds: the machine is shared).

    TIDEMARK_LIB=build/watcher/libtidemark.so PYTHONPATH=watcher/python \
        /usr/bin/python3 tests/bench/python_bench.py [--files N] [--mib N]

1. Small appends: N files, each round appends one 100-byte line to every
   file and run_once() takes them (N chunks a round). The same with the C
   `count` processor is the engine's own cost; the difference is what the
   Python processor costs per chunk, and 1/that the chunks/s it can take.
2. Where processors run: the first pass over N files through run() (work on
   this thread, tdm_run_slice) against tdm_run() (work on libuv's thread
   pool, so every ctypes callback comes from a thread C created).
3. 1 MiB chunks: a file of --mib MiB in records=bytes through a Python
   function and through the C `count` processor (goal: >= 1 GB/s), and a
   pure-Python loop that readinto()s the same file 1 MiB at a time and calls
   the same function on a memoryview.
4. Whole files: --whole small files in whole mode through
   add_file_processor(fn) against `count`: the cost of a whole-file Python
   processor per file (goal: <= 100 us).
5. Dead letters (a library with --dead-letter): a file where every 10th
   record is refused, set aside with max_tries=1, against the same file
   with none refused: the cost per refused record.

Times are CPU time of the thread doing the work (time.thread_time: the
engine runs on it in run_once), so other load on a shared machine weighs
less; each figure is against its baseline measured in the same run.
"""
import argparse
import logging
import os
import shutil
import sys
import tempfile
import threading
import time

import tidemark


clock = time.thread_time


def timed_run_once(state, src, proc, file_fn=None, **kw):
    with tidemark.open(state, sources=[src], **kw) as t:
        if isinstance(proc, str):
            t.add_processor(proc)
        elif proc is not None:
            t.add_processor(proc, name="bench")
        if file_fn is not None:
            t.add_file_processor(file_fn, name="load")
        t0 = clock()
        try:
            s = t.run_once()
        except tidemark.Error as e:
            s = e.stats
        dt = clock() - t0
    return dt, s["chunks"], s["bytes"]


def small_appends(root, n, rounds):
    src = os.path.join(root, "small")
    os.mkdir(src)
    line = "x" * 99 + "\n"
    for i in range(n):
        with open(os.path.join(src, "f%06d.log" % i), "w") as f:
            f.write(line)
    taken = [0]

    def fn(chunk):
        taken[0] += len(chunk.data)

    for st in ("py", "c"):    # the first pass: new files, not measured
        timed_run_once(os.path.join(root, "st-" + st), src,
                       fn if st == "py" else "count")
    # Each round appends a line to every file and times both; the best
    # round of each counts (a shared machine adds noise, never speed).
    t_py = t_c = float("inf")
    for r in range(rounds):
        for i in range(n):
            with open(os.path.join(src, "f%06d.log" % i), "a") as f:
                f.write(line)
        runs = [("py", fn), ("c", "count")]
        if r % 2:
            runs.reverse()    # alternate: the page cache favours neither
        for st, proc in runs:
            dt, c, _ = timed_run_once(os.path.join(root, "st-" + st), src,
                                      proc)
            assert c == n, (st, c, n)
            if st == "py":
                t_py = min(t_py, dt)
            else:
                t_c = min(t_c, dt)
    chunks = n
    # A pure-Python loop calling fn on the same number of 100-byte views.
    buf = bytearray(line.encode())
    t0 = clock()
    for _ in range(chunks):
        mv = memoryview(buf)
        fn(tidemark.Chunk(1, None, 0, 0, mv))
        mv.release()
    t_loop = clock() - t0
    extra = max(t_py - t_c, 1e-9)
    print("small appends: %d chunks of 100 B a round, best of %d rounds"
          % (chunks, rounds))
    print("  tidemark + Python fn : %9.0f chunks/s" % (chunks / t_py))
    print("  tidemark + C count   : %9.0f chunks/s (engine baseline)" % (chunks / t_c))
    print("  Python processor cost: %6.2f us/chunk (goal <= 2) -> it takes "
          "%.0f chunks/s" % (extra / chunks * 1e6, chunks / extra))
    print("  pure-Python loop     : %9.0f calls/s (fn + Chunk + memoryview)"
          % (chunks / t_loop))
    print("  ratio tidemark+Python / tidemark+C: %.2f" % (t_c / t_py))
    shutil.rmtree(src)


def callback_path(root, n):
    """The exact trampoline C calls per chunk (descriptor's process()),
    called through ctypes from Python, so the figure also pays a Python->C
    call: an upper bound of the per-chunk cost."""
    import ctypes
    from tidemark import _lib
    taken = [0]

    def fn(chunk):
        taken[0] += len(chunk.data)

    with tidemark.open(os.path.join(root, "st-cb")) as t:
        t.add_processor(fn, name="bench")
        (d,) = [k for k in t._keep if isinstance(k, _lib.Processor_t)]
        data = ctypes.create_string_buffer(b"x" * 100)
        path = ctypes.create_string_buffer(b"/var/log/app/app.log")
        c = _lib.Chunk_t(ctypes.sizeof(_lib.Chunk_t), 0, 1,
                         ctypes.addressof(path), 0, ctypes.addressof(data), 100)
        msg = ctypes.create_string_buffer(256)
        proc, cref, mref = d.process, ctypes.addressof(c), ctypes.addressof(msg)
        t0 = clock()
        for _ in range(n):
            proc(None, cref, mref)
        dt = clock() - t0
    assert taken[0] == 100 * n
    print("per-chunk path (C trampoline + Chunk + memoryview + fn), %d calls:" % n)
    print("  %.2f us/chunk -> %.0f chunks/s (includes a Python->C call)"
          % (dt / n * 1e6, n / dt))


def where_it_runs(root, n):
    src = os.path.join(root, "where")
    os.mkdir(src)
    for i in range(n):
        with open(os.path.join(src, "f%06d.log" % i), "w") as f:
            f.write("y" * 99 + "\n")
    results = {}
    for mode in ("slice", "pool", "slice2", "pool2"):
        count = [0]
        threads = set()
        with tidemark.open(os.path.join(root, "st-w-" + mode),
                           sources=[src]) as t:
            def fn(chunk, t=t):
                count[0] += 1
                threads.add(threading.get_ident())
                if count[0] == n:
                    t.stop()
            t.add_processor(fn, name="bench")
            t0 = time.perf_counter()
            if mode.startswith("slice"):
                t.run()
            else:
                rc = t._lib.tdm_run(t._t)   # libuv's thread pool
                assert rc == 0, rc
            dt = time.perf_counter() - t0
        assert count[0] == n
        main = threading.get_ident() in threads
        results.setdefault(mode.rstrip("2"), []).append((dt, main))
    ds = min(d for d, _ in results["slice"])
    dp = min(d for d, _ in results["pool"])
    print("first pass over %d files, Python fn (best of 2, wall clock: the "
          "pool's threads are not this thread):" % n)
    print("  run() (work on the calling thread) : %8.0f chunks/s" % (n / ds))
    print("  tdm_run (libuv thread pool)        : %8.0f chunks/s" % (n / dp))
    print("  ratio pool / calling thread: %.2f" % (ds / dp))
    shutil.rmtree(src)


def big_chunks(root, mib):
    src = os.path.join(root, "big")
    os.mkdir(src)
    path = os.path.join(src, "big.bin")
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block)
    total = [0]

    def fn(chunk):
        total[0] += len(chunk.data)

    with open(path, "rb") as f:       # warm the page cache
        while f.read(1 << 24):
            pass
    dt_c, _, nbytes = timed_run_once(os.path.join(root, "st-big-c"), src,
                                     "count", records="bytes")
    dt, chunks, nbytes = timed_run_once(os.path.join(root, "st-big"), src, fn,
                                        records="bytes")
    assert nbytes == mib << 20
    buf = bytearray(1 << 20)
    t0 = clock()
    with open(path, "rb", buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            mv = memoryview(buf)[:k]
            fn(tidemark.Chunk(1, None, 0, 0, mv))
            mv.release()
    t_loop = clock() - t0
    gb = (mib << 20) / 1e9
    print("1 MiB chunks: %d MiB in %d chunks" % (mib, chunks))
    print("  tidemark + Python fn       : %6.2f GB/s (goal >= 1)" % (gb / dt))
    print("  tidemark + C count         : %6.2f GB/s (engine baseline)"
          % (gb / dt_c))
    print("  pure-Python readinto loop  : %6.2f GB/s" % (gb / t_loop))
    print("  ratio Python / C count: %.2f; Python cost %.1f us per MiB chunk"
          % (dt_c / dt, (dt - dt_c) / chunks * 1e6))
    shutil.rmtree(src)


def whole_files(root, n):
    src = os.path.join(root, "whole")
    os.mkdir(src)
    for i in range(n):
        with open(os.path.join(src, "d%06d.csv" % i), "w") as f:
            f.write("id,value\n%d,%d\n" % (i, i * i))
    old = time.time() - 60
    for name in os.listdir(src):
        os.utime(os.path.join(src, name), (old, old))
    seen = [0]

    def load(path, info):
        seen[0] += 1

    dt_c, _, _ = timed_run_once(os.path.join(root, "st-whole-c"), src, "count",
                                mode="whole", settle_ms=0)
    dt, _, _ = timed_run_once(os.path.join(root, "st-whole"), src, None,
                              file_fn=load, mode="whole", settle_ms=0)
    assert seen[0] == n, (seen[0], n)
    print("whole mode: %d small files" % n)
    print("  add_file_processor(fn) : %8.0f files/s" % (n / dt))
    print("  C count                : %8.0f files/s (engine baseline)"
          % (n / dt_c))
    print("  whole-file Python processor cost: %.1f us/file (goal <= 100); "
          "ratio Python / C: %.2f" % ((dt - dt_c) / n * 1e6, dt_c / dt))
    shutil.rmtree(src)


def dead_letters(root, n):
    lib = tidemark._lib_handle()
    from tidemark import _lib
    o = _lib.padded(_lib.Options_t)
    lib.tdm_options_init(__import__("ctypes").byref(o))
    if o.size < _lib.OPTIONS_HAS_DEAD_LETTER:
        print("dead letters: this libtidemark has none (0.3): not measured")
        return
    src = os.path.join(root, "dead")
    os.mkdir(src)
    with open(os.path.join(src, "bad.log"), "w") as f:
        for i in range(n):
            f.write(("BAD %d\n" if i % 10 == 0 else "ok %d\n") % i)
    src2 = os.path.join(root, "good")
    os.mkdir(src2)
    with open(os.path.join(src2, "good.log"), "w") as f:
        for i in range(n):
            f.write("ok %d\n" % i)

    def refuse(chunk):
        if b"BAD" in bytes(chunk.data):
            raise ValueError("refused")

    dt_good, _, _ = timed_run_once(os.path.join(root, "st-good"), src2, refuse)
    dt_bad, _, _ = timed_run_once(
        os.path.join(root, "st-dead"), src, refuse, max_tries=1,
        dead_letter=os.path.join(root, "dead.jsonl"))
    with open(os.path.join(root, "dead.jsonl")) as f:
        k = sum(1 for _ in f)
    assert k == n // 10, (k, n // 10)
    print("dead letters: %d of %d records refused (max_tries=1)" % (k, n))
    print("  cost per refused record: %.1f us (all-good run %.3f s, with "
          "refusals %.3f s)" % ((dt_bad - dt_good) / k * 1e6, dt_good, dt_bad))
    shutil.rmtree(src)
    shutil.rmtree(src2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--whole", type=int, default=5000)
    ap.add_argument("--dead", type=int, default=20000)
    a = ap.parse_args()
    # The refusals below are warned about one by one: not on the terminal.
    logging.getLogger("tidemark").setLevel(logging.CRITICAL)
    root = tempfile.mkdtemp(prefix="tdm-pybench-")
    try:
        callback_path(root, 500000)
        small_appends(root, a.files, a.rounds)
        where_it_runs(root, a.files)
        big_chunks(root, a.mib)
        whole_files(root, a.whole)
        dead_letters(root, a.dead)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
