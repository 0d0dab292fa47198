"""_lib: finding libtidemark and declaring its C interface (ctypes).

Mirrors watcher/include/tidemark.h and watcher/include/tidemark/processor.h. Structures
the library fills or reads (options, stats) are placed in buffers larger
than the Python declaration, so a newer library with fields appended at the
end never writes past them.
"""
import ctypes
import ctypes.util
import os

c_int, c_uint32, c_uint64 = ctypes.c_int, ctypes.c_uint32, ctypes.c_uint64
c_size_t, c_void_p, c_char_p = ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p
POINTER, CFUNCTYPE = ctypes.POINTER, ctypes.CFUNCTYPE

# processor.h
ABI_VERSION = 2
MSG_MAX = 256
RESTORE_MAX = 256
PROC_OK, PROC_RETRY, PROC_FAIL = 0, 1, 2
MODE_TAIL, MODE_WHOLE = 0, 1
RECORDS_LINES, RECORDS_BYTES = 0, 1
LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 0, 1, 2, 3
ESTOPPED, EPARTIAL, EPROC = -4008, -4007, -4005

# Slack after a structure the library fills (fields it may have appended).
_SLACK = 4096


class Chunk_t(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("flags", c_uint32), ("file_id", c_uint64),
                ("path", c_void_p), ("offset", c_uint64), ("data", c_void_p),
                ("len", c_size_t)]


class OpenArgs_t(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("mode", c_int), ("params", c_void_p),
                ("n_params", c_size_t), ("restore", c_void_p),
                ("restore_len", c_size_t), ("msg", c_void_p)]


OPEN_FN = CFUNCTYPE(c_int, POINTER(c_void_p), POINTER(OpenArgs_t))
PROCESS_FN = CFUNCTYPE(c_int, c_void_p, POINTER(Chunk_t), c_void_p)
COMMIT_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, POINTER(c_size_t), c_void_p)
CLOSE_FN = CFUNCTYPE(None, c_void_p)
CHUNK_CB = CFUNCTYPE(c_int, c_void_p, POINTER(Chunk_t))
LOG_CB = CFUNCTYPE(None, c_void_p, c_int, c_char_p)


class Processor_t(ctypes.Structure):
    _fields_ = [("abi_version", c_uint32), ("size", c_uint32),
                ("name", c_char_p), ("summary", c_char_p),
                ("open", OPEN_FN), ("process", PROCESS_FN),
                ("commit", COMMIT_FN), ("close", CLOSE_FN),
                ("file", c_void_p), ("poll", c_void_p)]


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
                ("on_done", c_char_p), ("on_failed", c_char_p)]


# tdm_stats_t, in order (tidemark.h).
STATS = ("files_seen", "files_opened", "files_new", "bytes", "chunks",
         "pieces", "truncations", "rewrites", "skipped_special",
         "file_errors", "proc_failures", "proc_retries", "checkpoints",
         "checkpoint_errors", "rescans", "overflows", "watches",
         "polled_dirs", "files_done", "duplicates", "files_failed",
         "files_tracked", "lost_files", "compressed_files",
         "compressed_errors", "compressed_resumed", "files_moved",
         "files_deleted", "after_errors")


class Stats_t(ctypes.Structure):
    _fields_ = [("size", c_uint32)] + [(n, c_uint64) for n in STATS]


def padded(struct_type):
    """An instance of `struct_type` at the start of a zeroed buffer with
    room for fields a newer library appends."""
    buf = ctypes.create_string_buffer(ctypes.sizeof(struct_type) + _SLACK)
    obj = struct_type.from_buffer(buf)
    obj._keep = buf
    return obj


class LibraryNotFound(OSError):
    pass


def _candidates():
    env = os.environ.get("TIDEMARK_LIB")
    if env:
        return [env], True
    names = ["libtidemark.so.0"]
    try:  # written by `cmake --install`: the library of the same prefix
        from . import _install
        names.insert(0, os.path.normpath(os.path.join(
            os.path.dirname(os.path.abspath(__file__)), _install.LIBDIR_REL,
            "libtidemark.so.0")))
    except ImportError:
        pass
    found = ctypes.util.find_library("tidemark")
    if found:
        names.append(found)
    return names, False


def load():
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


def _declare(lib):
    def fn(name, restype, *argtypes):
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
    fn("tdm_status_write_fd", c_int, c_void_p, c_int, c_int)
    fn("tdm_reset", c_int, c_char_p, POINTER(c_char_p), c_size_t,
       POINTER(c_size_t))
    fn("tdm_free", None, c_void_p)


# A read-only memoryview straight over C memory: one call, no copy.
_PyBUF_READ = 0x100
memview = ctypes.pythonapi.PyMemoryView_FromMemory
memview.restype = ctypes.py_object
memview.argtypes = [c_void_p, ctypes.c_ssize_t, c_int]
