"""tidemark: process only what is new in files, exactly once, from Python.

Install (builds libtidemark from the source tree with CMake and bundles it
in the package; offline, with Debian's python3-setuptools and python3-wheel):

    python3 -m venv --system-site-packages v
    v/bin/pip install --no-build-isolation --no-index ./watcher/python

A FUNCTION PROCESSOR gets every run of new bytes (a Chunk) and returns None
(taken) or tidemark.RETRY (offer it again later); an exception is a failure:

    import tidemark

    def show(chunk):
        print(chunk.path, chunk.offset, bytes(chunk.data))

    with tidemark.open("state", sources=["/var/log/app"]) as t:
        t.add_processor(show, name="show")
        print(t.run_once())             # the counters, a dict

AN OBJECT PROCESSOR (a sink, see the Sink protocol) is exactly once across
kill -9: the bytes its commit() returns are stored in the same transaction
as the bookmarks and handed back to open(restore) after a restart, so a sink
that rolls its output back to that point neither loses nor doubles a record.
tidemark.sinks has two: SQLiteSink and PostgresSink.

FAILURES. An exception in process() is a failure of that chunk: the
bookmark does not move past it, and the processor is brought back to its
last committed restore point (close(), then open(restore) again) before
anything is offered to it again, so what it did with the failed chunk is
undone, never committed. With dead_letter="FILE" (and max_tries=N, default
5) a record refused N times is set aside into FILE as a JSON line and its
file goes on after it; raise tidemark.Reject for a record no retry will
ever make acceptable (it is set aside at once). run_once() raises
tidemark.Error("EPROC") afterwards with the exception's text when a
failure was not set aside; run() logs and counts failures and goes on.

WHOLE FILES. In mode="whole" a file is handed over once it is complete and
never twice with the same content. t.add_file_processor(fn) calls fn(path,
info) once per complete file version (raise: the file failed; on_done,
on_failed apply). A chunk processor may define begin_file(info) and
end_file(info), called around the chunks of each complete file.

THREADS AND SIGNALS. Processors run on the thread that calls run_once() or
run(). run() returns to the interpreter every slice_ms, so signal handlers
run; stop() (from a handler or another thread) ends it after a final
checkpoint. Ctrl-C (SIGINT with Python's default handler) in run() or
run_once() makes the final checkpoint, then raises KeyboardInterrupt from
the call. run() speaks systemd's sd_notify protocol (READY, STATUS,
WATCHDOG, STOPPING) when NOTIFY_SOCKET is set.

MESSAGES go to logging.getLogger("tidemark") (the library's error, warning,
info and debug levels map onto logging's); the package prints nothing.

The library is found through $TIDEMARK_LIB (the path of libtidemark.so),
else the one bundled by pip, else the installed one.
"""
import ctypes
import errno as _errno
import json as _json
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Literal,
                    Optional, Protocol, Sequence, Tuple, Union, overload,
                    runtime_checkable)

from . import _lib

__all__ = ["open", "Tidemark", "Chunk", "FileInfo", "Error", "Reject",
           "RETRY", "ChunkLike", "Processor", "Sink", "ChunkFunction",
           "FileFunction", "StrPath", "status", "reset", "version", "logger"]

logger = logging.getLogger("tidemark")
"""Where every message of tidemark goes ("tidemark")."""

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
"""A path: str, bytes or os.PathLike."""


class _Retry:
    __slots__ = ()

    def __repr__(self) -> str:
        return "tidemark.RETRY"


RETRY = _Retry()
"""Return it from a processor: the chunk is not taken now, offer it again."""


class Error(Exception):
    """An error of tidemark. `.code` names it ("ELOCKED", "EPROC", "ENOENT",
    ...), `.errno` is the library's negative number (0 when the error was
    Python's own), `.message` says what happened, naming the file or option;
    `.stats` holds the counters when a run ended with it."""

    def __init__(self, code: str, message: str, errno: int = 0,
                 stats: Optional[Dict[str, int]] = None) -> None:
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.errno = errno
        self.stats = stats


class Reject(Exception):
    """Raise it from process() for a record that no retry will ever make
    acceptable (not JSON, a constraint violation): with dead_letter set the
    record is narrowed down from the chunk and set aside at once, without
    the max_tries retries another exception gets. Without dead_letter it is
    a failure like any exception."""


_LIB: Any = None
_LIB_LOCK = threading.Lock()


def _lib_handle() -> Any:
    global _LIB
    if _LIB is None:
        with _LIB_LOCK:
            if _LIB is None:
                try:
                    _LIB = _lib.load()
                except _lib.LibraryNotFound as e:
                    raise Error("ENOENT", str(e)) from None
    return _LIB


def version() -> str:
    """The library's version, e.g. "0.3.0"."""
    return str(_lib_handle().tdm_version().decode())


def _error(rc: int, message: Optional[str] = None,
           stats: Optional[Dict[str, int]] = None) -> Error:
    lib = _lib_handle()
    name = lib.tdm_err_name(rc).decode()
    return Error(name, message or lib.tdm_strerror(rc).decode(), rc, stats)


def _fs(path: StrPath) -> bytes:
    return os.fsencode(os.fspath(path))


# State directories this process has open (LMDB must not be opened twice in
# one process: closing one handle drops the other's locks).
_OPEN_DIRS = set()


def _real(path: StrPath) -> str:
    return os.path.realpath(os.fsdecode(os.fspath(path)))


class Chunk:
    """New bytes of one file, handed to a processor.

    `data` is a read-only memoryview of a copy of the bytes, released after
    the call: use it during the call; a slice or an export of it that
    outlives the call keeps its own copy alive (it never shows other bytes
    or freed memory), and `data` itself raises ValueError after the call.
    `path` is a str (os.fsdecode of the file's current path; os.fsencode
    gives the bytes back). `offset` is the file offset of data[0];
    `generation` counts how often this file's offsets began again at 0
    (truncations), so (file_id, generation, offset) names a record for
    good. `flags`: Chunk.PIECE, Chunk.RESTART. `record_ends`: with
    multiline_start, where each record in `data` ends (end offsets within
    data, ascending; the last is len(data) unless PIECE is set); None when
    records are lines (or bytes)."""

    __slots__ = ("file_id", "offset", "flags", "data", "generation",
                 "record_ends", "_ptr", "_path")

    PIECE = 0x1     # a piece of a record longer than max_record
    RESTART = 0x2   # first chunk after the file was truncated or rewritten

    def __init__(self, file_id: int, path_ptr: Optional[int], offset: int,
                 flags: int, data: memoryview, generation: int = 0,
                 record_ends: Optional[Tuple[int, ...]] = None) -> None:
        self.file_id = file_id
        self.record_ends = record_ends
        self._ptr = path_ptr    # C string, readable during the call only
        self._path: Optional[str] = None
        self.offset = offset
        self.flags = flags
        self.data = data
        self.generation = generation

    @property
    def path(self) -> str:
        p = self._path
        if p is None:
            if self._ptr is None:
                raise ValueError("chunk.path was not read during the call")
            p = self._path = os.fsdecode(ctypes.string_at(self._ptr))
        return p

    def __repr__(self) -> str:
        try:
            path = self.path
        except ValueError:
            path = "?"
        return "<tidemark.Chunk file_id=%d path=%r offset=%d flags=%d>" % (
            self.file_id, path, self.offset, self.flags)


class FileInfo:
    """A complete file in whole mode: `file_id`, `path` (str), `length`
    (bytes), `hash` (16 bytes, XXH3-128 of the content) and `hash_hex`.
    begin_file() gets one with length, hash and hash_hex None (not known
    before the whole file was read)."""

    __slots__ = ("file_id", "path", "length", "hash", "hash_hex")

    def __init__(self, file_id: int, path: str, length: Optional[int] = None,
                 hash: Optional[bytes] = None,
                 hash_hex: Optional[str] = None) -> None:
        self.file_id = file_id
        self.path = path
        self.length = length
        self.hash = hash
        self.hash_hex = hash_hex

    def __repr__(self) -> str:
        return "<tidemark.FileInfo file_id=%d path=%r length=%r hash=%s>" % (
            self.file_id, self.path, self.length, self.hash_hex)


@runtime_checkable
class ChunkLike(Protocol):
    """What a processor may rely on in a chunk (tidemark.Chunk is one; a
    test can pass its own)."""
    file_id: int
    offset: int
    flags: int
    generation: int
    data: memoryview
    record_ends: Optional[Tuple[int, ...]]

    @property
    def path(self) -> str: ...


@runtime_checkable
class Processor(Protocol):
    """An object processor: process(chunk) -> None | RETRY. It may also
    define the methods of Sink and begin_file(info) / end_file(info)."""

    def process(self, chunk: Chunk) -> Optional[_Retry]: ...


@runtime_checkable
class Sink(Protocol):
    """An object processor that is exactly once across kill -9.

    open(restore): restore is what commit() last returned durably (None on
    the first run); roll the output back to it. Called again, after
    close(), when a chunk failed: undo what was not committed.
    process(chunk): take the chunk (None) or not now (RETRY); raise: failure.
    commit() -> bytes: make what was taken durable and return the restore
    point (at most 256 bytes). close(): release."""

    def open(self, restore: Optional[bytes]) -> None: ...

    def process(self, chunk: Chunk) -> Optional[_Retry]: ...

    def commit(self) -> bytes: ...

    def close(self) -> None: ...


ChunkFunction = Callable[[Chunk], Optional[_Retry]]
"""A function processor: fn(chunk) -> None | tidemark.RETRY."""

FileFunction = Callable[[str, FileInfo], Any]
"""A whole-file processor: fn(path, info); its return value is ignored."""


def _exc_text(e: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(e), e)).strip()
    return text or type(e).__name__


def _put_msg(msg_ptr: Optional[int], text: str) -> None:
    """Write `text` into a TDM_MSG_MAX buffer, cut at a UTF-8 character
    boundary."""
    if msg_ptr:
        raw = text.encode("utf-8", "replace")[:_lib.MSG_MAX - 1]
        raw = raw.decode("utf-8", "ignore").encode("utf-8")
        ctypes.memmove(msg_ptr, raw + b"\0", len(raw) + 1)


# Options: keyword (a long option, '-' -> '_') -> how it goes into
# tdm_options_t. Lists accumulate like repeated options.
_MODES = {"tail": _lib.MODE_TAIL, "whole": _lib.MODE_WHOLE}
_RECORDS = {"lines": _lib.RECORDS_LINES, "bytes": _lib.RECORDS_BYTES}
_DECOMPRESS = {"auto": 0, "never": 1}  # tdm_decompress_t
_SIZES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_LEVELS = {_lib.LOG_ERROR: logging.ERROR, _lib.LOG_WARN: logging.WARNING,
           _lib.LOG_INFO: logging.INFO, _lib.LOG_DEBUG: logging.DEBUG}


def _usage(text: str) -> Error:
    return Error("EUSAGE", text, -4001)


def _size(name: str, v: Union[int, str]) -> int:
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
        raise _usage("--%s: %r is not a size (N, NK, NM, NG)"
                     % (name.replace("_", "-"), v))
    return int(low) * mult


def _choice(table: Dict[str, int], name: str, v: Any) -> int:
    try:
        return table[v]
    except (KeyError, TypeError):
        raise _usage("--%s: %r is not one of %s" % (
            name, v, ", ".join(sorted(table)))) from None


def _uint(name: str, v: Any, bits: int = 32) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v >= 1 << bits:
        raise _usage("--%s: %r is not a number in [0, %d]" % (
            name.replace("_", "-"), v, (1 << bits) - 1))
    return v


def _str_list(name: str, v: Any) -> List[bytes]:
    if isinstance(v, (str, bytes, os.PathLike)):
        v = [v]
    return [_fs(x) for x in v]


class _Notify:
    """systemd's sd_notify over NOTIFY_SOCKET (a datagram socket; a name
    starting with '@' is in the abstract namespace). Does nothing when the
    variable is not set."""

    def __init__(self) -> None:
        addr = os.environ.get("NOTIFY_SOCKET", "")
        self.sock: Optional[socket.socket] = None
        self.addr = "\0" + addr[1:] if addr.startswith("@") else addr
        self.watchdog_s = 0.0
        self.stopping = False
        if not addr:
            return
        try:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.setblocking(False)
        except OSError as e:
            logger.warning("NOTIFY_SOCKET=%s: %s", addr, e)
            return
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or
                                                 pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 2e6

    def send(self, text: str) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(text.encode(), self.addr)
        except OSError as e:
            logger.debug("sd_notify %s: %s", self.addr, e)

    def stop(self) -> None:
        if self.sock is not None and not self.stopping:
            self.stopping = True
            self.send("STOPPING=1")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Tidemark:
    """An open state directory with its sources and processors. Made by
    tidemark.open(); close() it (or use `with`)."""

    def __init__(self, state: StrPath, sources: Union[StrPath,
                                                      Iterable[StrPath]] = (),
                 **options: Any) -> None:
        lib = _lib_handle()
        self._lib = lib
        self._t: Optional[int] = None
        self._keep: List[Any] = []   # ctypes objects C points to, until close
        self._procs: List[Any] = []  # Python processors, in order
        self._names: List[str] = []  # and their names
        self._failures: List[str] = []  # exception texts of the current call
        self._rejects = 0               # of them, tidemark.Reject
        self._first_exc: Optional[BaseException] = None
        self._interrupt: Optional[BaseException] = None
        self._sigint = False         # Ctrl-C arrived during a run
        self._errors: List[str] = []  # error lines the library logged
        self._running = False
        self._notify: Optional[_Notify] = None
        self._mode = "tail"
        self._dead_letter = False
        self.instance: Optional[str] = None
        """This state directory's random instance id (hex), as processors
        see it; known once an object processor was added."""
        real = _real(state)
        specs: List[str] = []

        o = _lib.padded(_lib.Options_t)
        lib.tdm_options_init(ctypes.byref(o))
        lib_size = o.size
        st = _lib.padded(_lib.Stats_t)
        lib.tdm_stats_init(ctypes.byref(st))
        # A 0.3 library (it counts dead letters) rolls a processor back to
        # its last restore point after a failure; with an older one the
        # package does it (see _add_object).
        self._host_rolls_back = "dead_letters" in _lib.stats_names(st.size)
        level = logger.getEffectiveLevel()
        o.log_level = (_lib.LOG_DEBUG if level <= logging.DEBUG else
                       _lib.LOG_INFO if level <= logging.INFO else
                       _lib.LOG_WARN if level <= logging.WARNING else
                       _lib.LOG_ERROR)
        keep: List[Any] = [o]
        for key, value in options.items():
            if value is None:
                continue
            if key == "mode":
                o.mode = _choice(_MODES, key, value)
                self._mode = value
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
            elif key in ("dead_letter", "max_tries"):
                if lib_size < _lib.OPTIONS_HAS_DEAD_LETTER:
                    raise _usage("--%s: this libtidemark (%s) has no dead-"
                                 "letter file (0.3 and later)" % (
                                     key.replace("_", "-"), version()))
                if key == "max_tries":
                    if _uint(key, value) < 1:
                        raise _usage("--max-tries: %r: at least 1" % value)
                    o.max_tries = value
                else:
                    b = _fs(value)
                    keep.append(b)
                    o.dead_letter = b
                    self._dead_letter = True
            elif key == "forget_after_ms":
                if lib_size < _lib.OPTIONS_HAS_FORGET_AFTER:
                    raise _usage("--forget-after: this libtidemark (%s) does "
                                 "not forget (0.3 and later)" % version())
                # None: never (TDM_FORGET_NEVER)
                o.forget_after_ms = (2**64 - 1 if value is None
                                     else _uint(key, value, 64))
            elif key == "verbose":
                lv = _lib.LOG_WARN + (int(value) if value else 0)
                o.log_level = min(lv, _lib.LOG_DEBUG)
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

    def _on_log(self, arg: Any, level: int, msg: bytes) -> None:
        try:
            text = msg.decode("utf-8", "replace")
            if level == _lib.LOG_ERROR:
                self._errors.append(text)
                del self._errors[:-20]
            logger.log(_LEVELS.get(level, logging.ERROR), "%s", text)
        except BaseException:
            pass

    def _lib_error(self, rc: int, stats: Optional[Dict[str, int]] = None
                   ) -> Error:
        msg = self._errors[-1] if self._errors else None
        return _error(rc, msg, stats)

    def _check(self) -> int:
        if self._t is None:
            raise Error("EBADF", "this tidemark is closed", -9)
        return self._t

    # ---- sources and processors ----------------------------------------------

    def add_source(self, directory: StrPath) -> None:
        """Watch/scan `directory` (a source, like the DIR arguments)."""
        t = self._check()
        self._errors.clear()
        rc = self._lib.tdm_add_source(t, _fs(directory))
        if rc != 0:
            raise self._lib_error(rc)

    def add_processor(self, processor: Union[str, bytes, ChunkFunction,
                                             Processor],
                      name: Optional[str] = None) -> None:
        """Add a processor: a spec string as `-p` ("file:path=/srv/out"), a
        function fn(chunk) -> None | RETRY (raise: failure), or an object
        with process(chunk) and, for exactly once, open(restore), commit()
        -> bytes and close() (see Sink); in whole mode it may define
        begin_file(info) and end_file(info). `name` names a function or
        object in logs and keys an object's restore point in the store
        (default: its class or function name): give the same name to the
        same sink every time."""
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
            self._add_function(processor, name or str(getattr(
                processor, "__name__", "python")))
        else:
            raise TypeError("add_processor: %r is neither a spec, a function "
                            "nor an object with process()" % (processor,))

    def add_file_processor(self, fn: FileFunction,
                           name: Optional[str] = None,
                           retries: int = 0) -> None:
        """Whole mode: call fn(path, info) once per complete file version,
        here, in this process (path is a str, info a FileInfo). It returns
        normally: the file is done (on_done applies); it raises: the file
        failed, with the exception's text (on_failed applies), after
        `retries` more attempts. A file with the same content as one done
        before is a duplicate and is not handed over again. In tail mode a
        file is never complete: tidemark.Error("EUSAGE")."""
        self._check()
        if self._mode != "whole":
            raise _usage("add_file_processor: %r: whole-file processors need "
                         "mode='whole' (in tail mode a file is never complete)"
                         % (name or getattr(fn, "__name__", repr(fn)),))
        if not callable(fn):
            raise TypeError("add_file_processor: %r is not callable" % (fn,))
        label = name or str(getattr(fn, "__name__", "python"))
        tries = 1 + _uint("retries", retries)

        def on_file(info: FileInfo) -> None:
            for attempt in range(tries):
                try:
                    fn(info.path, info)
                    return
                except Exception as e:
                    if attempt + 1 == tries:
                        raise
                    logger.warning("processor '%s': %s: attempt %d of %d: %s",
                                   label, info.path, attempt + 1, tries,
                                   _exc_text(e))

        def nothing(state: Any, c: Any, msg: Any) -> int:
            return 0
        self._add_desc(label, nothing, None, None, None,
                       self._file_method(label, on_file, None))
        self._procs.append(fn)

    def _file_method(self, label: str, end: Optional[Callable[[FileInfo], Any]],
                     begin: Optional[Callable[[int, Optional[bytes]], None]]
                     ) -> Callable[[Any, Any, Any], int]:
        """A descriptor's file(): FileInfo from C, begin (if the chunks did
        not call it, e.g. an empty file), then `end`."""
        fail = self._failure

        def c_file(state: Any, ip: Any, msg: Any) -> int:
            try:
                i = ip.contents
                h = ctypes.string_at(i.hash, 16) if i.hash else None
                info = FileInfo(i.file_id, os.fsdecode(i.path or b""),
                                i.length, h,
                                i.hash_hex.decode() if i.hash_hex else None)
                if begin is not None:
                    begin(i.file_id, i.path)
                if end is not None:
                    end(info)
                return _lib.PROC_OK
            except BaseException as e:
                try:
                    where = os.fsdecode(ip.contents.path or b"?")
                except BaseException:
                    where = "?"
                return fail(label, e, msg, where)
        return c_file

    def _deliver(self, fn: Callable[[Chunk], Any], label: str
                 ) -> Callable[[Any, Any, Any], int]:
        """The per-chunk trampoline C calls: process(state, chunk, msg) ->
        result code of fn(chunk). Every exception is caught: this is called
        from C.

        The tdm_chunk_t is read with one string_at and a struct unpack (as
        much of it as the host's `size` says it has, learned at the first
        chunk). chunk.data is a memoryview of a bytes copy of the host's
        buffer (one string_at: a slice or export kept past the call keeps
        that copy alive, never the host's memory), released after the call.
        chunk.path is read from C only when asked for, or after the call
        when the chunk object was kept."""
        string_at = ctypes.string_at
        c_uint32 = ctypes.c_uint32
        fail = self._failure
        refcount = sys.getrefcount
        chunk_ = Chunk
        retry = RETRY
        full = struct.Struct("=IIQQQQQQQI")     # up to generation
        short = struct.Struct("=IIQQQQQ")       # the 0.2 layout's start
        layout: List[Any] = []                  # [unpack, bytes to read]

        def deliver(state: Any, cp: int, msg: Any) -> int:
            try:
                if not layout:
                    size = ctypes.c_uint32.from_address(cp).value
                    st = full if size >= full.size else short
                    layout[:] = [st.unpack, st.size]
                f = layout[0](string_at(cp, layout[1]))
                data = memoryview(string_at(f[5], f[6]))
                if len(f) > 7:
                    ends = (tuple((c_uint32 * f[8]).from_address(f[7]))
                            if f[7] else None)
                    chunk = chunk_(f[2], f[3], f[4], f[1], data, f[9], ends)
                else:
                    chunk = chunk_(f[2], f[3], f[4], f[1], data)
                code: int
                try:
                    r = fn(chunk)
                except BaseException as e:
                    code = fail(label, e, msg)
                else:
                    if r is None:
                        code = 0
                    elif r is retry:
                        code = 1
                    else:
                        code = fail(label, TypeError(
                            "processor returned %r (None or tidemark.RETRY)"
                            % (r,)), msg)
                if refcount(chunk) > 2:     # kept: give it its path for later
                    chunk.path
                chunk._ptr = None
                try:
                    data.release()
                except BufferError:
                    pass    # an export of the copy lives on: it owns the copy
                return code
            except BaseException:
                return int(_lib.PROC_FAIL)
        return deliver

    def _failure(self, label: str, e: BaseException, msg: Any,
                 where: Optional[str] = None) -> int:
        """A processor raised: a failure with the exception's text (a
        rejection for tidemark.Reject), or, for KeyboardInterrupt /
        SystemExit, a stop (re-raised after the run)."""
        try:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                if self._interrupt is None:
                    self._interrupt = e
                if self._t is not None:
                    self._lib.tdm_stop(self._t)
                return _lib.PROC_RETRY
            text = _exc_text(e)
            _put_msg(msg, text)
            self._failures.append("processor '%s': %s%s" % (
                label, where + ": " if where else "", text))
            if len(self._failures) == 1:
                self._first_exc = e
            if isinstance(e, Reject):
                self._rejects += 1
                return int(_lib.PROC_REJECT)
            return int(_lib.PROC_FAIL)
        except BaseException:
            return _lib.PROC_FAIL

    def _add_function(self, fn: ChunkFunction, label: str) -> None:
        self._add_desc(label, self._deliver(fn, label), None, None, None, None)
        self._procs.append(fn)

    def _add_object(self, obj: Any, label: str) -> None:
        process = obj.process
        begin_file = getattr(obj, "begin_file", None)
        end_file = getattr(obj, "end_file", None)
        begun: List[Optional[int]] = [None]  # whose begin_file() was called

        def begin(file_id: int, path: Optional[bytes]) -> None:
            if begun[0] != file_id:
                begun[0] = file_id
                if begin_file is not None:
                    begin_file(FileInfo(file_id, os.fsdecode(path or b"")))

        if (begin_file is not None or end_file is not None) \
                and self._mode == "whole":
            def process_in_file(chunk: Chunk) -> Any:
                if chunk.offset == 0 or begun[0] != chunk.file_id:
                    begun[0] = None
                    begin(chunk.file_id, os.fsencode(chunk.path))
                return process(chunk)

            def end(info: FileInfo) -> None:
                begun[0] = None
                if end_file is not None:
                    end_file(info)
            deliver = self._deliver(process_in_file, label)
            c_file: Optional[Callable[[Any, Any, Any], int]] = \
                self._file_method(label, end, begin)
        else:
            deliver = self._deliver(process, label)
            c_file = None
        failure = self._failure
        failures = self._failures
        wants_instance = hasattr(obj, "tidemark_instance")
        last_blob: List[Optional[bytes]] = [None]   # its restore point

        if not self._host_rolls_back and hasattr(obj, "open"):
            # An older library does not roll a failed processor back: do it
            # here, so that what it did with the failed chunk is undone.
            inner = deliver

            def deliver(state: Any, cp: Any, msg: Any) -> int:
                code = inner(state, cp, msg)
                if code == _lib.PROC_FAIL or code == _lib.PROC_REJECT:
                    try:
                        if hasattr(obj, "close"):
                            obj.close()
                        obj.open(last_blob[0])
                    except BaseException as e:
                        logger.error("processor '%s': rolling back to its "
                                     "last restore point: %s", label,
                                     _exc_text(e))
                return code

        def c_open(state: Any, args: Any) -> int:
            try:
                a = args.contents
                restore = (ctypes.string_at(a.restore, a.restore_len)
                           if a.restore and a.restore_len else None)
                if a.size >= _lib.OPEN_ARGS_HAS_INSTANCE and a.instance:
                    self.instance = a.instance.decode()
                    if wants_instance:
                        obj.tidemark_instance = self.instance
                begun[0] = None
                last_blob[0] = restore
                if hasattr(obj, "open"):
                    obj.open(restore)
                return _lib.PROC_OK
            except BaseException as e:
                try:
                    return failure(label, e, args.contents.msg)
                except BaseException:
                    return _lib.PROC_FAIL

        def c_commit(state: Any, buf: Any, lenp: Any, msg: Any) -> int:
            try:
                blob = obj.commit() if hasattr(obj, "commit") else None
                if blob is None:
                    blob = b""
                elif not isinstance(blob, (bytes, bytearray, memoryview)):
                    raise TypeError(
                        "commit() returned %s; it must return bytes (the "
                        "restore point open() gets back), e.g. b\"%%d\" %% n"
                        % type(blob).__name__)
                blob = bytes(blob)
                if len(blob) > _lib.RESTORE_MAX:
                    raise ValueError("commit() returned %d bytes; a restore "
                                     "point holds at most %d" % (
                                         len(blob), _lib.RESTORE_MAX))
                ctypes.memmove(buf, blob, len(blob))
                lenp[0] = len(blob)
                last_blob[0] = blob or None
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

        def c_close(state: Any) -> None:
            try:
                if hasattr(obj, "close"):
                    obj.close()
            except BaseException as e:
                try:
                    logger.error("processor '%s': close: %s", label,
                                 _exc_text(e))
                except BaseException:
                    pass

        self._add_desc(label, deliver, c_open, c_commit, c_close, c_file)
        self._procs.append(obj)

    def _add_desc(self, label: str, deliver: Callable[[Any, Any, Any], int],
                  c_open: Any, c_commit: Any, c_close: Any,
                  c_file: Any) -> None:
        """Hand the library a processor descriptor of ours
        (tdm_add_processor_desc); it and its callbacks live until close."""
        d = _lib.Processor_t()
        d.abi_version = _lib.ABI_VERSION
        d.size = ctypes.sizeof(_lib.Processor_t)
        name_b = label.encode()
        d.name = name_b
        d.summary = b"a Python processor"
        d.process = _lib.PROCESS_FN(deliver)
        if c_open is not None:
            d.open = _lib.OPEN_FN(c_open)
            d.commit = _lib.COMMIT_FN(c_commit)
            d.close = _lib.CLOSE_FN(c_close)
        if c_file is not None:
            d.file = _lib.FILE_FN(c_file)
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
        self._names.append(label)

    # ---- running -----------------------------------------------------------

    def stats(self) -> Dict[str, int]:
        """The counters since open (tdm_stats_t names) as a dict. Call it
        between runs, or from a processor."""
        st = _lib.padded(_lib.Stats_t)
        self._lib.tdm_stats_init(ctypes.byref(st))
        self._lib.tdm_get_stats(self._check(), ctypes.byref(st))
        return {n: getattr(st, n) for n in _lib.stats_names(st.size)}

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self._sigint = True
        if self._notify is not None:
            self._notify.stop()
        t = self._t
        if t is not None:
            self._lib.tdm_stop(t)

    def _begin(self) -> int:
        t = self._check()
        if self._running:
            raise Error("EBUSY", "already running (run_once and run are not "
                        "reentrant)", -16)
        self._running = True
        self._failures.clear()
        self._rejects = 0
        self._errors.clear()
        self._interrupt = None
        self._sigint = False
        self._first_exc = None
        self._old_sigint: Any = None
        # Ctrl-C: with Python's own handler it would raise inside a
        # processor called from C; take it over for the run (main thread
        # only), stop cleanly, and raise KeyboardInterrupt at the end.
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    self._old_sigint = signal.signal(signal.SIGINT,
                                                     self._on_sigint)
            except (ValueError, OSError):
                self._old_sigint = None
        return t

    def _end(self, rc: int, raise_failures: bool) -> Any:
        """The counters, or the exception the run must raise (returned, so
        that it is raised from run()/run_once() itself)."""
        if self._old_sigint is not None:
            signal.signal(signal.SIGINT, self._old_sigint)
            self._old_sigint = None
        self._running = False
        stats = self.stats()
        if self._interrupt is not None or self._sigint:
            e = self._interrupt
            self._interrupt = None
            self._sigint = False
            if isinstance(e, SystemExit):
                return SystemExit(e.code)
            return KeyboardInterrupt()
        # With a dead-letter file, refused records were set aside and the
        # pass went on: only what the library itself returns is an error.
        if raise_failures and self._failures and not self._dead_letter:
            text = self._failures[0]
            if len(self._failures) > 1:
                text += " (and %d more failures)" % (len(self._failures) - 1)
            err = Error("EPROC", text, _lib.EPROC, stats)
            err.__cause__ = self._first_exc
            return err
        if rc not in (0, _lib.ESTOPPED) and not (
                rc == _lib.EPARTIAL and not raise_failures):
            return self._lib_error(rc, stats)
        return stats

    def run_once(self) -> Dict[str, int]:
        """Process every file under the sources up to its current end,
        checkpoint, and return the counters (a dict). A processor that raised
        makes it raise tidemark.Error (code "EPROC", the exception's text)
        after the checkpoint; the bookmark of that file stays before the
        chunk (with dead_letter set, a record refused max_tries times is set
        aside instead and the pass goes on). Files that could not be read:
        Error "EPARTIAL". Ctrl-C: final checkpoint, then KeyboardInterrupt
        (a pass whose processors are all C ones sees it only at its end)."""
        t = self._begin()
        rc = _lib.ESTOPPED
        try:
            rc = self._lib.tdm_run_once(t)
        finally:
            out = self._end(rc, True)
        if isinstance(out, BaseException):
            raise out
        return out  # type: ignore[no-any-return]

    def run(self, slice_ms: int = 200) -> Dict[str, int]:
        """Watch the sources and process what appears until stop() (from a
        signal handler, another thread, or a processor) or Ctrl-C. The work
        runs on this thread; every `slice_ms` it returns to the interpreter,
        so Python signal handlers run. Processor failures are logged and
        counted (stats "proc_failures"), not raised. With NOTIFY_SOCKET set
        it tells systemd READY=1 after the first pass, STATUS= lines,
        WATCHDOG=1 (when WATCHDOG_USEC is set) and STOPPING=1. Returns the
        counters."""
        t = self._begin()
        lib = self._lib
        rc = 1
        n = self._notify = _Notify()
        next_status = next_dog = 0.0
        first = True
        try:
            while rc == 1:
                rc = lib.tdm_run_slice(t, slice_ms)
                if n.sock is not None and rc == 1:
                    now = time.monotonic()
                    if first:
                        first = False
                        n.send("READY=1\nSTATUS=%s" % self._status_line())
                        next_status = now + 5
                    elif now >= next_status:
                        n.send("STATUS=%s" % self._status_line())
                        next_status = now + 5
                    if n.watchdog_s and now >= next_dog:
                        n.send("WATCHDOG=1")
                        next_dog = now + n.watchdog_s
        finally:
            if rc == 1:  # an exception between slices (KeyboardInterrupt)
                n.stop()
                lib.tdm_stop(t)
                while rc == 1:
                    rc = lib.tdm_run_slice(t, slice_ms)
            n.stop()
            n.close()
            self._notify = None
            out = self._end(rc, False)
        if isinstance(out, BaseException):
            raise out
        return out  # type: ignore[no-any-return]

    def _status_line(self) -> str:
        s = self.stats()
        return "%d files tracked, %d bytes, %d chunks, %d failures" % (
            s["files_tracked"], s["bytes"], s["chunks"], s["proc_failures"])

    def stop(self) -> None:
        """Make a final checkpoint and end run() / run_once(). Safe from a
        signal handler and from any thread."""
        n = self._notify
        if n is not None:
            n.stop()
        t = self._t
        if t is not None:
            self._lib.tdm_stop(t)

    def rescan(self) -> None:
        """Ask a running run() to compare everything with the store."""
        t = self._t
        if t is not None:
            self._lib.tdm_rescan(t)

    def close(self) -> None:
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

    def __enter__(self) -> "Tidemark":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()
        else:
            try:
                self.close()
            except Error:
                pass  # the original exception matters more

    def __del__(self) -> None:
        if getattr(self, "_t", None) is not None and not sys.is_finalizing() \
                and not self._running:
            try:
                self.close()
            except BaseException:
                pass


def open(state: StrPath, sources: Union[StrPath, Iterable[StrPath]] = (),
         **options: Any) -> Tidemark:
    """Open state directory `state` (created if missing) and return a
    Tidemark. Keywords are the long options of `tidemark run` with '-'
    written '_': mode ("tail"|"whole"), records ("lines"|"bytes"), include
    and exclude (lists of globs), no_recursive, from_end, max_record (int or
    "1M"), settle_ms, checkpoint_ms, poll_ms, plugin_dir, processor (specs),
    verbose, quiet, retry_timeout_ms, decompress ("auto"|"never"),
    multiline_start, multiline_timeout_ms, on_done ("delete"|"move:DIR"),
    on_failed ("move:DIR"), metrics ("ADDR:PORT", served while run() runs),
    metrics_file, dead_letter (a file: records refused max_tries times go
    there as JSON lines), max_tries (default 5) and forget_after_ms (whole
    mode: records of files done and gone that long are dropped, their
    content hashes kept; default 30 days; None: never). Messages go to
    logging.getLogger("tidemark"); its level decides what the library sends
    (verbose/quiet override it)."""
    return Tidemark(state, sources, **options)


class _Sink:
    """A log sink for the calls without a Tidemark (status, reset): the
    library's lines go to the logger; the last error is kept for the
    exception."""

    def __init__(self, state: StrPath) -> None:
        lib = _lib_handle()
        self.errors: List[str] = []
        self.o = _lib.padded(_lib.Options_t)
        lib.tdm_options_init(ctypes.byref(self.o))
        self.state = _fs(state)
        self.o.state_dir = self.state
        level = logger.getEffectiveLevel()
        self.o.log_level = (_lib.LOG_DEBUG if level <= logging.DEBUG else
                            _lib.LOG_INFO if level <= logging.INFO else
                            _lib.LOG_WARN if level <= logging.WARNING else
                            _lib.LOG_ERROR)
        self.cb = _lib.LOG_CB(self.log)
        self.o.log_cb = self.cb

    def log(self, arg: Any, level: int, msg: bytes) -> None:
        try:
            text = msg.decode("utf-8", "replace")
            if level == _lib.LOG_ERROR:
                self.errors.append(text)
            logger.log(_LEVELS.get(level, logging.ERROR), "%s", text)
        except BaseException:
            pass

    def error(self, rc: int, fallback: str) -> Error:
        return _error(rc, self.errors[-1] if self.errors else fallback)


def _state_text(lib: Any, rc: int, state: StrPath) -> str:
    name = os.fsdecode(os.fspath(state))
    if rc == -_errno.ENOENT:
        return "no tidemark state in %s" % name
    return "%s: %s" % (name, lib.tdm_strerror(rc).decode())


_STATUS_JSON = 1  # tdm_status_format_t TDM_STATUS_JSON


@overload
def status(state: StrPath, iterate: Literal[False] = False
           ) -> List[Dict[str, Any]]: ...


@overload
def status(state: StrPath, iterate: Literal[True]
           ) -> Iterator[Dict[str, Any]]: ...


def status(state: StrPath, iterate: bool = False
           ) -> Union[List[Dict[str, Any]], Iterator[Dict[str, Any]]]:
    """The files `tidemark status --json` lists for `state`, as a list of
    dicts (read-only: works while a writer runs). With iterate=True, an
    iterator that yields them one by one as the store is read: memory stays
    flat over millions of files (the list form holds the whole JSON).
    Messages go to the "tidemark" logger."""
    lib = _lib_handle()
    if iterate:
        return _status_iter(lib, state)
    if hasattr(lib, "tdm_status_write"):
        sink = _Sink(state)
        buf, size = ctypes.c_void_p(), ctypes.c_size_t()
        f = _lib.libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
        if not f:
            raise MemoryError("open_memstream")
        try:
            rc = lib.tdm_status_write(ctypes.byref(sink.o), _STATUS_JSON, f)
        finally:
            _lib.libc.fclose(f)
            text = ctypes.string_at(buf.value or 0, size.value) \
                if buf.value else b""
            _lib.libc.free(buf)
        if rc != 0:
            raise sink.error(rc, _state_text(lib, rc, state))
    else:
        out = ctypes.c_void_p()
        rc = lib.tdm_status_json(_fs(state), ctypes.byref(out))
        if rc != 0:
            raise _error(rc, _state_text(lib, rc, state))
        try:
            text = ctypes.string_at(out.value or 0)
        finally:
            lib.tdm_free(out)
    files: List[Dict[str, Any]] = _json.loads(
        text.decode("utf-8", "surrogateescape"))["files"]
    return files


def _status_iter(lib: Any, state: StrPath) -> Iterator[Dict[str, Any]]:
    """status(iterate=True): the library writes the JSON into a pipe from a
    thread (ctypes lets go of the GIL meanwhile); the entries of "files" are
    decoded here as they come. Closing the iterator early closes the pipe,
    which ends the library's walk."""
    import codecs
    if not hasattr(lib, "tdm_status_write_fd"):
        yield from status(state)
        return
    rfd: Optional[int]
    rfd, wfd = os.pipe()
    result: Dict[str, int] = {}
    sink = _Sink(state)

    def write() -> None:
        try:
            result["rc"] = lib.tdm_status_write_fd(ctypes.byref(sink.o),
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
    rc = result.get("rc", 0)
    if rc != 0:
        raise sink.error(rc, _state_text(lib, rc, state))


def reset(state: StrPath, paths: Optional[Union[StrPath, Sequence[StrPath]]]
          = None) -> int:
    """Forget every file (paths=None) or the files at or under `paths`, so
    they are read again from the start. Returns how many were forgotten (a
    path that matches nothing is warned about through the "tidemark"
    logger). The directory must not be open for writing (here or
    elsewhere)."""
    lib = _lib_handle()
    if _real(state) in _OPEN_DIRS:
        raise Error("ELOCKED", "state directory %s is open in this process: "
                    "close it first" % os.fsdecode(os.fspath(state)), -4003)
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    items = [_fs(p) for p in (paths or [])]
    arr = (ctypes.c_char_p * max(len(items), 1))(*items)
    n = ctypes.c_size_t()
    if hasattr(lib, "tdm_reset_paths"):
        sink = _Sink(state)
        rc = lib.tdm_reset_paths(ctypes.byref(sink.o), arr, len(items),
                                 ctypes.byref(n), None)
        if rc != 0:
            raise sink.error(rc, "reset of " + _state_text(lib, rc, state))
        return n.value
    rc = lib.tdm_reset(_fs(state), arr, len(items), ctypes.byref(n))
    if rc != 0:
        raise _error(rc, "reset of " + _state_text(lib, rc, state))
    return n.value
