"""tidemark: process only what is new in files, exactly once, from Python.

A pure-Python binding (ctypes, standard library only) of libtidemark. The
library is found through $TIDEMARK_LIB (the path of libtidemark.so), then
the installed one.

    import tidemark

    def show(chunk):                    # None: accepted; tidemark.RETRY: later
        print(chunk.path, chunk.offset, bytes(chunk.data))

    with tidemark.open("state", sources=["/var/log/app"]) as t:
        t.add_processor(show, name="show")
        print(t.run_once())             # counters of tdm_stats_t

Processors run on the thread that calls run_once() or run(): a Python
processor costs a plain Python call per chunk, not a hop to a C thread.
"""
import os
import sys
import threading
import traceback
import ctypes
import json as _json

from . import _lib

__all__ = ["open", "Tidemark", "Chunk", "Error", "RETRY", "status", "reset",
           "version"]


class _Retry:
    __slots__ = ()

    def __repr__(self):
        return "tidemark.RETRY"


RETRY = _Retry()
"""Return it from a processor: the chunk is not taken now, offer it again."""


class Error(Exception):
    """An error of tidemark. `.code` names it ("ELOCKED", "EPROC", "ENOENT",
    ...), `.errno` is the library's negative number (0 when the error was
    Python's own), `.message` says what happened, naming the file or option;
    `.stats` holds the counters when a run ended with it."""

    def __init__(self, code, message, errno=0, stats=None):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.errno = errno
        self.stats = stats


_LIB = None
_LIB_LOCK = threading.Lock()


def _lib_handle():
    global _LIB
    if _LIB is None:
        with _LIB_LOCK:
            if _LIB is None:
                try:
                    _LIB = _lib.load()
                except _lib.LibraryNotFound as e:
                    raise Error("ENOENT", str(e)) from None
    return _LIB


def version():
    """The library's version, e.g. "0.2.0"."""
    return _lib_handle().tdm_version().decode()


def _error(rc, message=None, stats=None):
    lib = _lib_handle()
    name = lib.tdm_err_name(rc).decode()
    return Error(name, message or lib.tdm_strerror(rc).decode(), rc, stats)


def _fs(path):
    return os.fsencode(os.fspath(path))


# State directories this process has open (LMDB must not be opened twice in
# one process: closing one handle drops the other's locks).
_OPEN_DIRS = set()


def _real(path):
    return os.path.realpath(os.fspath(path))


class Chunk:
    """New bytes of one file. `data` is a read-only memoryview of tidemark's
    buffer, valid only during the call: copy what you keep (bytes(data)).
    `path` is a str (os.fsdecode of the file's current path)."""

    __slots__ = ("file_id", "offset", "flags", "data", "_ptr", "_path")

    PIECE = 0x1     # a piece of a record longer than max_record
    RESTART = 0x2   # first chunk after the file was truncated or rewritten

    def __init__(self, file_id, path_ptr, offset, flags, data):
        self.file_id = file_id
        self._ptr = path_ptr    # C string, readable during the call only
        self._path = None
        self.offset = offset
        self.flags = flags
        self.data = data

    @property
    def path(self):
        p = self._path
        if p is None:
            if self._ptr is None:
                raise ValueError("chunk.path was not read during the call")
            p = self._path = os.fsdecode(ctypes.string_at(self._ptr))
        return p

    def __repr__(self):
        try:
            path = self.path
        except ValueError:
            path = "?"
        return "<tidemark.Chunk file_id=%d path=%r offset=%d flags=%d>" % (
            self.file_id, path, self.offset, self.flags)


def _exc_text(e):
    text = "".join(traceback.format_exception_only(type(e), e)).strip()
    return text or type(e).__name__


def _put_msg(msg_ptr, text):
    if msg_ptr:
        raw = text.encode("utf-8", "replace")[:_lib.MSG_MAX - 1]
        ctypes.memmove(msg_ptr, raw + b"\0", len(raw) + 1)


# Options: keyword (a long option, '-' -> '_') -> how it goes into
# tdm_options_t. Lists accumulate like repeated options.
_MODES = {"tail": _lib.MODE_TAIL, "whole": _lib.MODE_WHOLE}
_RECORDS = {"lines": _lib.RECORDS_LINES, "bytes": _lib.RECORDS_BYTES}
_DECOMPRESS = {"auto": 0, "never": 1}  # tdm_decompress_t
_SIZES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _size(name, v):
    if isinstance(v, bool):
        raise TypeError("%s: a size, not %r" % (name, v))
    if isinstance(v, int):
        return v
    s = str(v).strip()
    low = s.lower()
    if low.endswith("ib"):
        low = low[:-2]
    mult = 1
    if low and low[-1] in _SIZES:
        mult, low = _SIZES[low[-1]], low[:-1]
    if not low.isdigit():
        raise Error("EUSAGE", "--%s: %r is not a size (N, NK, NM, NG)"
                    % (name.replace("_", "-"), v), -4001)
    return int(low) * mult


def _choice(table, name, v):
    try:
        return table[v]
    except (KeyError, TypeError):
        raise Error("EUSAGE", "--%s: %r is not one of %s" % (
            name, v, ", ".join(sorted(table))), -4001) from None


def _uint(name, v, bits=32):
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v >= 1 << bits:
        raise Error("EUSAGE", "--%s: %r is not a number in [0, %d]" % (
            name.replace("_", "-"), v, (1 << bits) - 1), -4001)
    return v


def _str_list(name, v):
    if isinstance(v, (str, bytes, os.PathLike)):
        v = [v]
    return [_fs(x) for x in v]


class Tidemark:
    """An open state directory with its sources and processors. Made by
    tidemark.open(); close() it (or use `with`)."""

    def __init__(self, state, sources=(), **options):
        lib = _lib_handle()
        self._lib = lib
        self._t = None
        self._keep = []          # ctypes objects C points to, until close
        self._procs = []         # Python processors, in order
        self._failures = []      # exception texts of the current call
        self._interrupt = None   # KeyboardInterrupt/SystemExit in a callback
        self._errors = []        # error lines the library logged
        self._running = False
        self._run_state = None   # None, "running", or the final rc
        self._thread = None      # the thread that runs the work
        real = _real(state)
        specs = []

        o = _lib.padded(_lib.Options_t)
        lib.tdm_options_init(ctypes.byref(o))
        o.log_level = _lib.LOG_WARN
        keep = [o]
        for key, value in options.items():
            if value is None:
                continue
            if key == "mode":
                o.mode = _choice(_MODES, key, value)
            elif key == "records":
                o.records = _choice(_RECORDS, key, value)
            elif key in ("include", "exclude"):
                items = _str_list(key, value)
                arr = (ctypes.c_char_p * max(len(items), 1))(*items)
                keep.append(arr)
                setattr(o, key, ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p)))
                setattr(o, "n_" + key, len(items))
            elif key == "no_recursive":
                o.recursive = 0 if value else 1
            elif key == "recursive":
                o.recursive = 1 if value else 0
            elif key == "from_end":
                o.from_end = 1 if value else 0
            elif key == "max_record":
                o.max_record = _uint(key, _size(key, value), 64)
            elif key in ("settle_ms", "checkpoint_ms", "poll_ms",
                         "retry_timeout_ms", "multiline_timeout_ms"):
                setattr(o, key, _uint(key, value))
            elif key == "decompress":
                o.decompress = _choice(_DECOMPRESS, key, value)
            elif key in ("plugin_dir", "metrics_file", "multiline_start",
                         "on_done", "on_failed", "metrics"):
                b = _fs(value)
                keep.append(b)
                setattr(o, "metrics_listen" if key == "metrics" else key, b)
            elif key == "verbose":
                level = _lib.LOG_WARN + (int(value) if value else 0)
                o.log_level = min(level, _lib.LOG_DEBUG)
            elif key == "quiet":
                if value:
                    o.log_level = _lib.LOG_ERROR
            elif key == "processor":
                specs = [value] if isinstance(value, str) else list(value)
            else:
                raise TypeError("tidemark.open() got an unknown option %r "
                                "(the long options of `tidemark run`, with "
                                "'-' written '_')" % key)
        state_b = _fs(state)
        keep.append(state_b)
        o.state_dir = state_b
        self._log_cb = _lib.LOG_CB(self._on_log)
        o.log_cb = self._log_cb

        if real in _OPEN_DIRS:
            raise Error("ELOCKED", "state directory %s is already open in this "
                        "process" % real, -4003)
        handle = ctypes.c_void_p()
        self._errors.clear()
        rc = lib.tdm_open(ctypes.byref(o), ctypes.byref(handle))
        if rc != 0:
            raise self._lib_error(rc)
        self._t = handle.value
        self._real = real
        _OPEN_DIRS.add(real)
        self._keep.extend(keep)
        try:
            if isinstance(sources, (str, bytes, os.PathLike)):
                sources = [sources]
            for s in sources:
                self.add_source(s)
            for spec in specs:
                self.add_processor(spec)
        except BaseException:
            self.close()
            raise

    # ---- logging and errors ------------------------------------------------

    def _on_log(self, arg, level, msg):
        try:
            text = msg.decode("utf-8", "replace")
            if level == _lib.LOG_ERROR:
                self._errors.append(text)
                del self._errors[:-20]
            name = ("error", "warning", "info", "debug")[level] \
                if 0 <= level <= 3 else "log"
            sys.stderr.write("tidemark: %s: %s\n" % (name, text))
        except BaseException:
            pass

    def _lib_error(self, rc, stats=None):
        msg = self._errors[-1] if self._errors else None
        return _error(rc, msg, stats)

    def _check(self):
        if self._t is None:
            raise Error("EBADF", "this tidemark is closed", -9)
        return self._t

    # ---- sources and processors ----------------------------------------------

    def add_source(self, directory):
        """Watch/scan `directory` (a source, like the DIR arguments)."""
        t = self._check()
        self._errors.clear()
        rc = self._lib.tdm_add_source(t, _fs(directory))
        if rc != 0:
            raise self._lib_error(rc)

    def add_processor(self, processor, name=None):
        """Add a processor: a spec string as `-p` ("file:path=/srv/out"), a
        function fn(chunk) -> None | RETRY (raise: failure), or an object
        with open(restore), process(chunk), commit() -> bytes and close().
        `name` names a function or object in logs and keys an object's
        restore point in the store (default: its class or function name):
        give the same name to the same sink every time."""
        t = self._check()
        if isinstance(processor, (str, bytes)):
            if name is not None:
                raise TypeError("add_processor: a spec carries its own name")
            self._errors.clear()
            rc = self._lib.tdm_add_processor(t, _fs(processor))
            if rc != 0:
                raise self._lib_error(rc)
            return
        if hasattr(processor, "process"):
            self._add_object(processor, name or type(processor).__name__)
        elif callable(processor):
            self._add_function(processor, name or getattr(
                processor, "__name__", "python"))
        else:
            raise TypeError("add_processor: %r is neither a spec, a function "
                            "nor an object with process()" % (processor,))

    def _deliver(self, fn, label):
        """The per-chunk trampoline: fn(chunk) -> result code. Every
        exception is caught: this is called from C.

        chunk.data is a slice of one memoryview over the host's read buffer
        (made again only when the buffer moves or grows), released after the
        call; the slice covers exactly the chunk's bytes, so it never shows
        memory the chunk does not own. chunk.path is read from C only when
        asked for, or after the call when the chunk object was kept."""
        memview = _lib.memview
        fail = self._failure
        failures = self._failures
        refcount = sys.getrefcount
        base = [None, 0, 0]     # memoryview, its address, its length

        def deliver(cp, msg):
            c = cp.contents
            n = c.len
            p = c.data
            if p != base[1] or n > base[2]:
                base[0] = memview(p, n, 0x100)
                base[1] = p
                base[2] = n
            data = base[0][:n]
            chunk = Chunk(c.file_id, c.path, c.offset, c.flags, data)
            try:
                r = fn(chunk)
            except BaseException as e:
                data.release()
                return fail(label, e, msg)
            if refcount(chunk) > 2:     # kept: give it its path for later
                chunk.path
            chunk._ptr = None
            try:
                data.release()
            except BufferError:
                _put_msg(msg, "chunk.data is still in use after the call "
                         "(copy what you keep: bytes(chunk.data))")
                failures.append("processor '%s': chunk.data kept past the "
                                "call" % label)
                return _lib.PROC_FAIL
            if r is None:
                return 0
            if r is RETRY:
                return 1
            return fail(label, TypeError(
                "processor returned %r (None or tidemark.RETRY)" % (r,)), msg)
        return deliver

    def _failure(self, label, e, msg):
        """A processor raised: a failure with the exception's text, or, for
        KeyboardInterrupt/SystemExit, a stop (re-raised after the run)."""
        try:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                if self._interrupt is None:
                    self._interrupt = e
                if self._t is not None:
                    self._lib.tdm_stop(self._t)
                return _lib.PROC_RETRY
            text = _exc_text(e)
            _put_msg(msg, text)
            self._failures.append("processor '%s': %s" % (label, text))
            if len(self._failures) == 1:
                self._first_exc = e
            return _lib.PROC_FAIL
        except BaseException:
            return _lib.PROC_FAIL

    def _add_function(self, fn, label):
        self._add_desc(label, self._deliver(fn, label), None, None, None)
        self._procs.append(fn)

    def _add_object(self, obj, label):
        deliver = self._deliver(obj.process, label)
        failure = self._failure
        failures = self._failures

        def c_open(state, args):
            try:
                a = args.contents
                restore = (ctypes.string_at(a.restore, a.restore_len)
                           if a.restore and a.restore_len else None)
                if hasattr(obj, "open"):
                    obj.open(restore)
                return _lib.PROC_OK
            except BaseException as e:
                try:
                    return failure(label, e, args.contents.msg)
                except BaseException:
                    return _lib.PROC_FAIL

        def c_commit(state, buf, lenp, msg):
            try:
                blob = obj.commit() if hasattr(obj, "commit") else None
                if blob is None:
                    blob = b""
                blob = bytes(blob)
                if len(blob) > _lib.RESTORE_MAX:
                    raise ValueError("commit() returned %d bytes; a restore "
                                     "point holds at most %d" % (
                                         len(blob), _lib.RESTORE_MAX))
                ctypes.memmove(buf, blob, len(blob))
                lenp[0] = len(blob)
                return _lib.PROC_OK
            except BaseException as e:
                try:
                    if isinstance(e, (KeyboardInterrupt, SystemExit)):
                        failure(label, e, msg)
                        e = RuntimeError("interrupted")
                    text = _exc_text(e)
                    _put_msg(msg, text)
                    failures.append("processor '%s': commit: %s" % (label, text))
                except BaseException:
                    pass
                return _lib.PROC_FAIL

        def c_close(state):
            try:
                if hasattr(obj, "close"):
                    obj.close()
            except BaseException as e:
                try:
                    sys.stderr.write("tidemark: error: processor '%s': close: "
                                     "%s\n" % (label, _exc_text(e)))
                except BaseException:
                    pass

        self._add_desc(label, deliver, c_open, c_commit, c_close)
        self._procs.append(obj)

    def _add_desc(self, label, deliver, c_open, c_commit, c_close):
        """Hand the library a processor descriptor of ours
        (tdm_add_processor_desc); it and its callbacks live until close."""
        def c_process(state, cp, msg):
            try:
                return deliver(cp, msg)
            except BaseException:
                return _lib.PROC_FAIL

        d = _lib.Processor_t()
        d.abi_version = _lib.ABI_VERSION
        d.size = ctypes.sizeof(_lib.Processor_t)
        name_b = label.encode()
        d.name = name_b
        d.summary = b"a Python processor"
        d.process = _lib.PROCESS_FN(c_process)
        if c_open is not None:
            d.open = _lib.OPEN_FN(c_open)
            d.commit = _lib.COMMIT_FN(c_commit)
            d.close = _lib.CLOSE_FN(c_close)
        self._keep.extend([d, name_b])
        self._failures.clear()
        self._errors.clear()
        self._first_exc = None
        rc = self._lib.tdm_add_processor_desc(self._t, ctypes.byref(d), name_b,
                                              None)
        if rc != 0:
            failures = list(self._failures)
            self._failures.clear()
            err = self._lib_error(rc)
            if failures:
                err = Error(err.code, failures[0], rc)
            raise err from self._first_exc

    # ---- running -----------------------------------------------------------

    def stats(self):
        """The counters since open (tdm_stats_t names) as a dict. Call it
        between runs, or from a processor."""
        st = _lib.padded(_lib.Stats_t)
        self._lib.tdm_stats_init(ctypes.byref(st))
        self._lib.tdm_get_stats(self._check(), ctypes.byref(st))
        return {n: getattr(st, n) for n in _lib.STATS}

    def _begin(self):
        t = self._check()
        if self._running:
            raise Error("EBUSY", "already running (run_once and run are not "
                        "reentrant)", -16)
        self._running = True
        self._failures.clear()
        self._errors.clear()
        self._interrupt = None
        self._first_exc = None
        return t

    def _end(self, rc, raise_failures):
        self._running = False
        stats = self.stats()
        if self._interrupt is not None:
            e, self._interrupt = self._interrupt, None
            raise e
        if raise_failures and self._failures:
            text = self._failures[0]
            if len(self._failures) > 1:
                text += " (and %d more failures)" % (len(self._failures) - 1)
            err = Error("EPROC", text, _lib.EPROC, stats)
            raise err from self._first_exc
        if rc not in (0, _lib.ESTOPPED) and not (
                rc == _lib.EPARTIAL and not raise_failures):
            raise self._lib_error(rc, stats)
        return stats

    def run_once(self):
        """Process every file under the sources up to its current end,
        checkpoint, and return the counters (a dict). A processor that raised
        makes it raise tidemark.Error (code "EPROC", the exception's text)
        after the checkpoint; the bookmark of that file stays before the
        chunk. Files that could not be read: Error "EPARTIAL"."""
        t = self._begin()
        rc = _lib.ESTOPPED
        try:
            rc = self._lib.tdm_run_once(t)
        finally:
            out = self._end(rc, True)
        return out

    def run(self, slice_ms=200):
        """Watch the sources and process what appears until stop() (from a
        signal handler, another thread, or a processor). The work runs on
        this thread; every `slice_ms` it returns to the interpreter, so
        Python signal handlers run. Processor failures are logged and
        counted (stats "proc_failures"), not raised. Returns the counters."""
        t = self._begin()
        lib = self._lib
        rc = 1
        self._thread = threading.get_ident()
        try:
            while rc == 1:
                rc = lib.tdm_run_slice(t, slice_ms)
        finally:
            if rc == 1:  # an exception between slices (KeyboardInterrupt)
                lib.tdm_stop(t)
                while rc == 1:
                    rc = lib.tdm_run_slice(t, slice_ms)
            self._thread = None
            out = self._end(rc, False)
        return out

    def stop(self):
        """Make a final checkpoint and end run() / run_once(). Safe from a
        signal handler and from any thread."""
        t = self._t
        if t is not None:
            self._lib.tdm_stop(t)

    def rescan(self):
        """Ask a running run() to compare everything with the store."""
        t = self._t
        if t is not None:
            self._lib.tdm_rescan(t)

    def close(self):
        """Final checkpoint, close the processors (their close()), release
        the state directory. Idempotent. Raises tidemark.Error when the
        final commit of a Python processor failed."""
        t = self._t
        if t is None:
            return
        if self._running:
            raise Error("EBUSY", "close() while running: stop() first", -16)
        self._failures.clear()
        self._t = None
        try:
            self._lib.tdm_close(t)
        finally:
            _OPEN_DIRS.discard(self._real)
            self._keep.clear()
            self._procs.clear()
        if self._failures:
            raise Error("EPROC", self._failures[0], _lib.EPROC)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            try:
                self.close()
            except Error:
                pass  # the original exception matters more

    def __del__(self):
        if getattr(self, "_t", None) is not None and not sys.is_finalizing() \
                and not self._running:
            try:
                self.close()
            except BaseException:
                pass


def open(state, sources=(), **options):
    """Open state directory `state` (created if missing) and return a
    Tidemark. Keywords are the long options of `tidemark run` with '-'
    written '_': mode ("tail"|"whole"), records ("lines"|"bytes"), include
    and exclude (lists of globs), no_recursive, from_end, max_record (int or
    "1M"), settle_ms, checkpoint_ms, poll_ms, plugin_dir, processor (specs),
    verbose, quiet, retry_timeout_ms, decompress ("auto"|"never"),
    multiline_start, multiline_timeout_ms, on_done ("delete"|"move:DIR"),
    on_failed ("move:DIR"), metrics ("ADDR:PORT", served while run() runs),
    metrics_file."""
    return Tidemark(state, sources, **options)


def _status_error(lib, rc, state):
    return _error(rc, "%s: %s" % (os.fspath(state),
                                  lib.tdm_strerror(rc).decode())
                  if rc != -2 else "no tidemark state in %s"
                  % os.fspath(state))


def status(state, iterate=False):
    """The files `tidemark status --json` lists for `state`, as a list of
    dicts (read-only: works while a writer runs). With iterate=True, an
    iterator that yields them one by one as the store is read: memory stays
    flat over millions of files (the list form holds the whole JSON)."""
    lib = _lib_handle()
    if iterate:
        return _status_iter(lib, state)
    out = ctypes.c_void_p()
    rc = lib.tdm_status_json(_fs(state), ctypes.byref(out))
    if rc != 0:
        raise _status_error(lib, rc, state)
    try:
        text = ctypes.string_at(out.value)
    finally:
        lib.tdm_free(out)
    return _json.loads(text.decode("utf-8", "surrogateescape"))["files"]


_STATUS_JSON = 1  # tdm_status_format_t TDM_STATUS_JSON


def _status_iter(lib, state):
    """status(iterate=True): the library writes the JSON into a pipe from a
    thread (ctypes lets go of the GIL meanwhile); the entries of "files" are
    decoded here as they come. Closing the iterator early closes the pipe,
    which ends the library's walk."""
    import codecs
    rfd, wfd = os.pipe()
    result = {}

    def write():
        try:
            o = _lib.padded(_lib.Options_t)
            lib.tdm_options_init(ctypes.byref(o))
            o.state_dir = _fs(state)
            o.log_level = _lib.LOG_WARN
            result["rc"] = lib.tdm_status_write_fd(ctypes.byref(o),
                                                   _STATUS_JSON, wfd)
        finally:
            os.close(wfd)

    th = threading.Thread(target=write, name="tidemark-status", daemon=True)
    th.start()
    dec = _json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    buf, pos, in_files, done = "", 0, False, False
    try:
        with os.fdopen(rfd, "rb", buffering=0) as r:
            rfd = None
            while not done:
                chunk = r.read(1 << 16)
                buf = buf[pos:] + utf8.decode(chunk, final=not chunk)
                pos = 0
                if not in_files:
                    at = buf.find('"files":[')
                    if at < 0:
                        if not chunk:
                            break
                        continue
                    pos, in_files = at + len('"files":['), True
                while True:  # each complete entry in the buffer
                    while pos < len(buf) and buf[pos] in ", \n":
                        pos += 1
                    if pos < len(buf) and buf[pos] == "]":
                        done = True
                        break
                    try:
                        entry, end = dec.raw_decode(buf, pos)
                    except ValueError:
                        break  # not all of it yet
                    pos = end
                    yield entry
                if not chunk:
                    break
    finally:
        if rfd is not None:
            os.close(rfd)
        th.join()
    if result.get("rc", 0) != 0:
        raise _status_error(lib, result["rc"], state)


def reset(state, paths=None):
    """Forget every file (paths=None) or the files at or under `paths`, so
    they are read again from the start. Returns how many were forgotten.
    The directory must not be open for writing (here or elsewhere)."""
    lib = _lib_handle()
    if _real(state) in _OPEN_DIRS:
        raise Error("ELOCKED", "state directory %s is open in this process: "
                    "close it first" % os.fspath(state), -4003)
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    items = [_fs(p) for p in (paths or [])]
    arr = (ctypes.c_char_p * max(len(items), 1))(*items)
    n = ctypes.c_size_t()
    rc = lib.tdm_reset(_fs(state), arr, len(items), ctypes.byref(n))
    if rc != 0:
        raise _error(rc, "reset of %s: %s" % (os.fspath(state),
                                             lib.tdm_strerror(rc).decode()))
    return n.value
