#!/usr/bin/python3
"""Hold N idle keep-alive connections open to a server (benchmark scenario 6).

    idle_conns.py HOST PORT N [PATH]

Opens N connections, sends one GET on each and reads its response, so every
connection is a real keep-alive connection waiting for its next request (as
a browser's or a proxy's pooled connection is), then prints "ready N" and
holds them, sending nothing, until stdin closes or SIGTERM arrives.  Before
exiting it prints "open K of N": how many the server still kept.
"""
import resource
import select
import signal
import socket
import sys


def read_response(s):
    """Read one response with a Content-Length body; False on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


def still_open(s):
    """Open = nothing readable (no EOF, no reset) right now."""
    p = select.poll()  # select() cannot watch fds past 1023
    p.register(s, select.POLLIN)
    if not p.poll(0):
        return True
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except OSError:
        return False


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, host, port)).encode()
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port))
        s.sendall(request)
        if not read_response(s):
            sys.exit("idle_conns: the server closed a keep-alive connection after one request")
        conns.append(s)
    print("ready %d" % len(conns), flush=True)

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    while not stop:
        try:
            r, _, _ = select.select([sys.stdin], [], [], 0.5)
        except InterruptedError:
            continue
        if r and not sys.stdin.readline():
            break
    alive = sum(1 for s in conns if still_open(s))
    print("open %d of %d" % (alive, len(conns)), flush=True)
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
