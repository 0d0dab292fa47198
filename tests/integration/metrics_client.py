#!/usr/bin/env python3
"""metrics_client.py: the HTTP client of the metrics tests (loopback only).

  metrics_client.py port                 print a free loopback TCP port
  metrics_client.py get PORT PATH        GET PATH; print the status line's
                                         code, then the body
  metrics_client.py raw PORT BYTES       send BYTES (Python escapes), print
                                         what comes back until the close
  metrics_client.py idle PORT SECS       connect, send half a request, print
                                         "closed after N s" when the server
                                         closes, or "open" after SECS
  metrics_client.py flood PORT N [PID]   N connections in batches of 200 held
                                         open together: garbage, half-open,
                                         oversized, never-reading; print
                                         "flood done", and with PID "max_fds
                                         N", the most descriptors PID held
                                         while a batch was open
"""
import os
import signal
import socket
import sys
import time


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_all(s):
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        out += b
    return out


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` is fine
    cmd = sys.argv[1]
    if cmd == "port":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        return
    port = int(sys.argv[2])
    if cmd == "get":
        s = connect(port)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[3]).encode())
        data = read_all(s)
        head, _, body = data.partition(b"\r\n\r\n")
        print(head.split(b" ")[1].decode() if head else "none")
        sys.stdout.write(body.decode("utf-8", "replace"))
    elif cmd == "raw":
        s = connect(port)
        s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
        sys.stdout.write(read_all(s).decode("latin-1"))
    elif cmd == "idle":
        s = connect(port)
        s.sendall(b"GET /metr")
        s.settimeout(float(sys.argv[3]))
        t0 = time.monotonic()
        try:
            b = s.recv(1)
            print("closed after %.1f s" % (time.monotonic() - t0) if not b else "data")
        except socket.timeout:
            print("open")
        except ConnectionResetError:
            print("closed after %.1f s" % (time.monotonic() - t0))
    elif cmd == "flood":
        n = int(sys.argv[3])
        pid = sys.argv[4] if len(sys.argv) > 4 else None
        max_fds = 0
        done = 0
        while done < n:
            batch = []
            for i in range(min(200, n - done)):
                try:
                    s = connect(port)
                except OSError:
                    continue
                kind = (done + i) % 4
                try:
                    if kind == 0:  # garbage, terminated
                        s.sendall(os.urandom(300) + b"\r\n\r\n")
                    elif kind == 1:  # half-open: part of a request, then nothing
                        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    elif kind == 2:  # oversized head, never terminated
                        s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
                    else:  # a request whose answer is never read
                        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
                except OSError:
                    pass
                batch.append(s)
            done += len(batch) if batch else 200
            time.sleep(0.2)
            if pid is not None:
                max_fds = max(max_fds, len(os.listdir("/proc/%s/fd" % pid)))
            for s in batch:
                s.close()
        print("flood done")
        if pid is not None:
            print("max_fds %d" % max_fds)


main()
