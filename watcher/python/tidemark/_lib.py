"""_lib: finding libtidemark and declaring its C interface (ctypes).

Mirrors watcher/include/tidemark.h and watcher/include/tidemark/processor.h. Structures
the library fills or reads (options, stats) are placed in buffers larger
than the Python declaration, so a newer library with fields appended at the
end never writes past them; fields the library may lack (appended after
0.2) are used only when the `size` the library reports covers them.

The library is, in this order: $TIDEMARK_LIB; the libtidemark.so that `pip
install` bundled beside this file; the one `cmake --install` put under the
same prefix; the system's.
"""
import ctypes
import ctypes.util
import os
from typing import Any, List, Tuple, Type, TypeVar

c_int, c_uint32, c_uint64 = ctypes.c_int, ctypes.c_uint32, ctypes.c_uint64
c_size_t, c_void_p, c_char_p = ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p
POINTER, CFUNCTYPE = ctypes.POINTER, ctypes.CFUNCTYPE

# processor.h
ABI_VERSION = 2
MSG_MAX = 256
RESTORE_MAX = 256
PROC_OK, PROC_RETRY, PROC_FAIL, PROC_PENDING = 0, 1, 2, 3
PROC_UNAVAILABLE, PROC_REJECT = 4, 5
MODE_TAIL, MODE_WHOLE = 0, 1
RECORDS_LINES, RECORDS_BYTES = 0, 1
LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 0, 1, 2, 3
ESTOPPED, EPARTIAL, EPROC = -4008, -4007, -4005

# Slack after a structure the library fills (fields it may have appended).
_SLACK = 4096


class Chunk_t(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("flags", c_uint32), ("file_id", c_uint64),
                ("path", c_void_p), ("offset", c_uint64), ("data", c_void_p),
                ("len", c_size_t),
                # appended after 0.2: read only when `size` covers them
                ("record_ends", c_void_p), ("n_records", c_size_t),
                ("generation", c_uint32)]


# Offset of the end of tdm_chunk_t.generation: a host chunk this big has it.
CHUNK_HAS_GENERATION = Chunk_t.generation.offset + 4


class OpenArgs_t(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("mode", c_int), ("params", c_void_p),
                ("n_params", c_size_t), ("restore", c_void_p),
                ("restore_len", c_size_t), ("msg", c_void_p),
                # appended in 0.2
                ("instance", c_char_p), ("checkpoint_ms", c_uint64),
                ("log", c_void_p), ("log_arg", c_void_p)]


OPEN_ARGS_HAS_INSTANCE = OpenArgs_t.instance.offset + ctypes.sizeof(c_char_p)


class FileInfo_t(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("file_id", c_uint64), ("path", c_char_p),
                ("length", c_uint64), ("hash", c_void_p),
                ("hash_hex", c_char_p)]


OPEN_FN = CFUNCTYPE(c_int, POINTER(c_void_p), POINTER(OpenArgs_t))
# The chunk comes as an address: the trampoline reads it with one
# string_at + struct unpack, cheaper than a POINTER(Chunk_t) argument.
PROCESS_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p)
COMMIT_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, POINTER(c_size_t), c_void_p)
CLOSE_FN = CFUNCTYPE(None, c_void_p)
FILE_FN = CFUNCTYPE(c_int, c_void_p, POINTER(FileInfo_t), c_void_p)
CHUNK_CB = CFUNCTYPE(c_int, c_void_p, POINTER(Chunk_t))
LOG_CB = CFUNCTYPE(None, c_void_p, c_int, c_char_p)


class Processor_t(ctypes.Structure):
    _fields_ = [("abi_version", c_uint32), ("size", c_uint32),
                ("name", c_char_p), ("summary", c_char_p),
                ("open", OPEN_FN), ("process", PROCESS_FN),
                ("commit", COMMIT_FN), ("close", CLOSE_FN),
                ("file", FILE_FN), ("poll", c_void_p)]


class Options_t(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("state_dir", c_char_p), ("mode", c_int), ("records", c_int),
                ("include", POINTER(c_char_p)), ("n_include", c_size_t),
                ("exclude", POINTER(c_char_p)), ("n_exclude", c_size_t),
                ("recursive", c_int), ("from_end", c_int),
                ("max_record", c_uint64), ("settle_ms", c_uint32),
                ("checkpoint_ms", c_uint32), ("poll_ms", c_uint32),
                ("plugin_dir", c_char_p), ("log_level", c_int),
                ("log_cb", LOG_CB), ("log_arg", c_void_p),
                # appended in 0.2 (tidemark.h): operating, hardening, records
                ("metrics_listen", c_char_p), ("metrics_file", c_char_p),
                ("progress_cb", c_void_p), ("progress_arg", c_void_p),
                ("progress_ms", c_uint32), ("notify", c_int),
                ("retry_timeout_ms", c_uint32),
                ("decompress", c_int), ("multiline_start", c_char_p),
                ("multiline_timeout_ms", c_uint32),
                ("on_done", c_char_p), ("on_failed", c_char_p),
                # appended in 0.3 (dead letters): set only when the
                # library's tdm_options_init() size covers them
                ("dead_letter", c_char_p), ("max_tries", c_uint32),
                # appended in 0.3 (a million files): the same
                ("forget_after_ms", c_uint64)]


OPTIONS_HAS_DEAD_LETTER = Options_t.max_tries.offset + 4
OPTIONS_HAS_FORGET_AFTER = Options_t.forget_after_ms.offset + 8


# tdm_stats_t, in order (tidemark.h).
STATS = ("files_seen", "files_opened", "files_new", "bytes", "chunks",
         "pieces", "truncations", "rewrites", "skipped_special",
         "file_errors", "proc_failures", "proc_retries", "checkpoints",
         "checkpoint_errors", "rescans", "overflows", "watches",
         "polled_dirs", "files_done", "duplicates", "files_failed",
         "files_tracked", "lost_files", "compressed_files",
         "compressed_errors", "compressed_resumed", "files_moved",
         "files_deleted", "after_errors",
         "dead_letters",  # appended in 0.3; present when `size` covers it
         "files_forgotten")


class Stats_t(ctypes.Structure):
    _fields_ = [("size", c_uint32)] + [(n, c_uint64) for n in STATS]


def stats_names(size: int) -> Tuple[str, ...]:
    """The counters a tdm_stats_t of `size` bytes (the library's) holds."""
    return tuple(n for n in STATS
                 if getattr(Stats_t, n).offset + 8 <= size)


_S = TypeVar("_S", bound=ctypes.Structure)


def padded(struct_type: Type[_S]) -> _S:
    """An instance of `struct_type` at the start of a zeroed buffer with
    room for fields a newer library appends."""
    buf = ctypes.create_string_buffer(ctypes.sizeof(struct_type) + _SLACK)
    obj = struct_type.from_buffer(buf)
    setattr(obj, "_keep", buf)
    return obj


class LibraryNotFound(OSError):
    pass


HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLED = os.path.join(HERE, "libtidemark.so")


def _candidates() -> Tuple[List[str], bool]:
    env = os.environ.get("TIDEMARK_LIB")
    if env:
        return [env], True
    names = ["libtidemark.so.0"]
    if os.path.exists(BUNDLED):     # put here by `pip install`
        names.insert(0, BUNDLED)
        return names, False
    try:  # written by `cmake --install`: the library of the same prefix
        from . import _install  # type: ignore[attr-defined]
        names.insert(0, os.path.normpath(os.path.join(
            HERE, _install.LIBDIR_REL, "libtidemark.so.0")))
    except ImportError:
        pass
    found = ctypes.util.find_library("tidemark")
    if found:
        names.append(found)
    return names, False


def load() -> Any:
    names, from_env = _candidates()
    errors = []
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            errors.append(str(e))
            continue
        _declare(lib)
        return lib
    where = ("TIDEMARK_LIB=%s" % names[0]) if from_env else (
        "tried %s; set TIDEMARK_LIB to the path of libtidemark.so"
        % ", ".join(names))
    raise LibraryNotFound("libtidemark could not be loaded (%s): %s"
                          % (where, "; ".join(errors)))


def _declare(lib: Any) -> None:
    def fn(name: str, restype: Any, *argtypes: Any) -> None:
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    t = c_void_p
    fn("tdm_strerror", c_char_p, c_int)
    fn("tdm_err_name", c_char_p, c_int)
    fn("tdm_version", c_char_p)
    fn("tdm_options_init", None, c_void_p)
    fn("tdm_open", c_int, c_void_p, POINTER(t))
    fn("tdm_add_source", c_int, t, c_char_p)
    fn("tdm_add_processor", c_int, t, c_char_p)
    fn("tdm_add_callback", c_int, t, c_char_p, CHUNK_CB, c_void_p)
    fn("tdm_add_processor_desc", c_int, t, POINTER(Processor_t), c_char_p,
       c_void_p)
    fn("tdm_run_once", c_int, t)
    fn("tdm_run_slice", c_int, t, c_uint32)
    fn("tdm_stop", None, t)
    fn("tdm_rescan", None, t)
    fn("tdm_stats_init", None, c_void_p)
    fn("tdm_get_stats", None, t, c_void_p)
    fn("tdm_close", None, t)
    fn("tdm_status_json", c_int, c_char_p, POINTER(c_void_p))
    fn("tdm_reset", c_int, c_char_p, POINTER(c_char_p), c_size_t,
       POINTER(c_size_t))
    fn("tdm_free", None, c_void_p)
    # Later additions: declared when the library has them.
    for name, restype, argtypes in (
            ("tdm_status_write", c_int, (c_void_p, c_int, c_void_p)),
            ("tdm_status_write_fd", c_int, (c_void_p, c_int, c_int)),
            ("tdm_reset_paths", c_int, (c_void_p, POINTER(c_char_p), c_size_t,
                                        POINTER(c_size_t), POINTER(c_size_t)))):
        if hasattr(lib, name):
            fn(name, restype, *argtypes)


# The C library's stdio, for tdm_status_write's FILE * (open_memstream).
libc = ctypes.CDLL(None)
libc.open_memstream.restype = c_void_p
libc.open_memstream.argtypes = [POINTER(c_void_p), POINTER(c_size_t)]
libc.fclose.restype = c_int
libc.fclose.argtypes = [c_void_p]
libc.free.restype = None
libc.free.argtypes = [c_void_p]


# A read-only memoryview straight over C memory: one call, no copy.
_PyBUF_READ = 0x100
memview = ctypes.pythonapi.PyMemoryView_FromMemory
memview.restype = ctypes.py_object
memview.argtypes = [c_void_p, ctypes.c_ssize_t, c_int]
