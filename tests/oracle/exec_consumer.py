"""The oracle's exec program (tests/oracle/sinks.py, ExecSink).

    exec_consumer.py tail OUT          tail mode: stdin -> OUT, whole lines
                                       only (a line cut by a kill -9 of
                                       tidemark is dropped, as any consumer
                                       that parses lines would)
    exec_consumer.py whole DIR PATH    whole mode: the records of PATH
                                       (gzip and zstd decompressed) into
                                       DIR/$TIDEMARK_HASH, replaced whole:
                                       a rerun of the same version is
                                       idempotent. A plain file whose size
                                       is not $TIDEMARK_SIZE changed since
                                       tidemark hashed it: refused (exit 75,
                                       retried), as a careful handler does,
                                       and noted in DIR/.stale
"""
import gzip
import os
import subprocess
import sys


def tail(out):
    pending = b""
    with open(out, "ab") as f:
        while True:
            b = os.read(0, 1 << 16)
            if not b:
                return
            pending += b
            cut = pending.rfind(b"\n") + 1
            if cut:
                f.write(pending[:cut])
                f.flush()
                pending = pending[cut:]


def whole(d, path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x1f\x8b" and data[:4] not in (b"\x28\xb5\x2f\xfd", b"\x50\x2a\x4d\x18") \
            and str(len(data)) != os.environ.get("TIDEMARK_SIZE"):
        with open(os.path.join(d, ".stale"), "a") as f:
            f.write("%s hashed at %s bytes, %d now\n" % (path, os.environ.get("TIDEMARK_SIZE"), len(data)))
        sys.exit(75)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:4] in (b"\x28\xb5\x2f\xfd", b"\x50\x2a\x4d\x18"):
        data = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True,
                              check=True).stdout
    key = os.environ["TIDEMARK_HASH"]
    tmp = os.path.join(d, ".%s.%d" % (key, os.getpid()))
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(d, key))


if __name__ == "__main__":
    if sys.argv[1] == "tail":
        tail(sys.argv[2])
    else:
        whole(sys.argv[2], sys.argv[3])
