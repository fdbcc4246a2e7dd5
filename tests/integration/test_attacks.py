"""Hostile clients against the real server: request smuggling, malformed
framing, oversized heads and bodies, slow heads (slowloris), slow readers,
connection floods.

Every refusal is checked the way a smuggling attacker would probe it: the
status code, "Connection: close" in the answer, the server closing the
connection right after it (a stream whose framing was refused cannot be
resynchronised), a request pipelined behind the bad one never reaching
the access log, and the same worker process still serving new clients.

The responses a bare core cannot produce come from the `hostile` fixture
plugin (tests/fixtures/plugins/hostile.c): GET /big (a large body from the
event loop), /big-app (the same from the APP phase), /echo (an APP handler
that reads the whole body) and /noread (one that never reads it).
"""
import json
import os
import re
import resource
import selectors
import socket
import subprocess
import time

import pytest
import requests

from wharfctl import BUILDDIR, PLUGINS_DIR, Wharf, wait_for

HOSTILE_SO = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", "hostile_plugin.so")
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"


# ---------------------------------------------------------------- helpers

class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:60]!r}>"


def parse_one(buf):
    """One response from the front of `buf`: (Response, rest) or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    m = re.fullmatch(r"HTTP/1\.[01] (\d{3}) .*", lines[0])
    assert m, f"bad status line {lines[0]!r} in {buf[:200]!r}"
    status = int(m.group(1))
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        k = k.strip().lower()
        assert k not in headers or k == "set-cookie", f"duplicate response field {k}"
        headers[k] = v.strip()
    rest = buf[end + 4:]
    if 100 <= status < 200:
        return Response(status, headers, b""), rest
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            nl = rest.find(b"\r\n")
            if nl < 0:
                return None
            size = int(rest[:nl], 16)
            if len(rest) < nl + 2 + size + 2:
                return None
            body += rest[nl + 2:nl + 2 + size]
            rest = rest[nl + 2 + size + 2:]
            if size == 0:
                return Response(status, headers, body), rest
    n = int(headers.get("content-length", "0"))
    if len(rest) < n:
        return None
    return Response(status, headers, rest[:n]), rest[n:]


def read_responses(sock, count=None, timeout=5.0):
    """Read responses until `count` are complete, or (count None) until the
    server closes the connection.  Returns (responses, closed, leftover)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    buf, out, closed = b"", [], False
    while count is None or len(out) < count:
        parsed = parse_one(buf)
        if parsed:
            out.append(parsed[0])
            buf = parsed[1]
            continue
        if closed:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            data = b""
        if not data:
            closed = True
        buf += data
    return out, closed, buf


def exchange(srv, data, timeout=5.0):
    """Send `data` on a new connection (as fast as the server takes it) and
    read what comes back until the server closes the connection."""
    s = srv.connect()
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished: the answer is still there
        resps, closed, rest = read_responses(s, None, timeout)
        assert rest == b"", f"garbage after the responses: {rest[:200]!r}"
        return resps, closed
    finally:
        s.close()


def get_ok(srv, path="/healthy", timeout=2.0):
    """A well-behaved client on a new connection gets its answer."""
    r = requests.get(srv.url + path, timeout=timeout)
    assert r.status_code == 404 and r.text == "Not Found\n", r
    return r


def access_logged(srv, path):
    return re.search(r'"[A-Z]+ ' + re.escape(path) + r' HTTP/1\.[01]"', srv.log()) is not None


def assert_refused(srv, data, status, workers, marker="/smuggled"):
    """`data` gets exactly one answer, `status`, marked "Connection: close";
    the server then closes the connection, nothing pipelined behind it is
    processed, and the same worker serves the next client."""
    resps, closed = exchange(srv, data)
    assert [r.status for r in resps] == [status], resps
    assert resps[0].headers.get("connection") == "close", resps[0].headers
    assert closed, "the server kept the connection open after refusing the framing"
    get_ok(srv)
    assert srv.worker_pids() == workers, "a worker died"
    assert not access_logged(srv, marker), "the request smuggled behind the bad one was processed"


@pytest.fixture(scope="module")
def plugins_env(tmp_path_factory):
    """A plugins-dir with the built plugins plus the hostile fixture (built
    on demand when pytest runs outside `make check`)."""
    if not os.path.exists(HOSTILE_SO):
        subprocess.run(["make", "-C", BUILDDIR, "tests/fixtures/plugins/hostile_plugin.so"],
                       check=True, capture_output=True)
    d = tmp_path_factory.mktemp("plugins")
    for name in os.listdir(PLUGINS_DIR):
        if name.endswith("_plugin.so"):
            os.symlink(os.path.join(PLUGINS_DIR, name), d / name)
    os.symlink(HOSTILE_SO, d / "hostile_plugin.so")
    return {"WHARF_PLUGINS_DIR": str(d)}


@pytest.fixture(scope="module")
def module_srv(tmp_path_factory, plugins_env):
    """One server for all the framing attacks: each test also proves the
    attacks before it left it healthy.  The log is checked after every
    test (sanitizer reports, unexpected errors)."""
    srv = Wharf(tmp_path_factory.mktemp("attacks"), env=plugins_env, options={
        "processes": 1,
        "hostile-big": "1m",
        "limit-post": "1m",
        "buffer-size": "8k",
    }).start()
    srv.initial_workers = srv.worker_pids()
    assert len(srv.initial_workers) == 1
    yield srv
    try:
        srv.stop()
    finally:
        srv.kill_group()
    srv.check_log()


@pytest.fixture
def srv(module_srv):
    get_ok(module_srv)
    yield module_srv
    module_srv.check_log()
    assert module_srv.worker_pids() == module_srv.initial_workers, "a worker died"


def start(wharf, plugins_env, options, **kw):
    opts = {"processes": 1, "plugin": "hostile"}
    opts.update(options)
    return wharf(opts, env=plugins_env, **kw)


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n:
        pytest.fail(f"this test needs {n} file descriptors, the hard limit is {hard}")
    if soft == resource.RLIM_INFINITY or soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def req(head_fields, body=b"", path="/echo", method="POST", version="HTTP/1.1", host=b"a"):
    head = f"{method} {path} {version}\r\n".encode()
    if host is not None:
        head += b"Host: " + host + b"\r\n"
    head += b"".join(f + b"\r\n" for f in head_fields)
    return head + b"\r\n" + body


# ---------------------------------------------------------------- baseline

def test_baseline_keep_alive_pipelining(srv):
    """What the attack tests compare against: three pipelined requests on
    one connection, with Content-Length and chunked bodies, all answered in
    order on a connection that stays open."""
    s = srv.connect()
    s.sendall(req([b"Content-Length: 5"], b"hello")
              + req([b"Transfer-Encoding: chunked"], b"3\r\nabc\r\n2;x=\"y\"\r\nde\r\n0\r\nT: v\r\n\r\n")
              + b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    resps, closed, _ = read_responses(s, 3)
    assert [(r.status, r.body) for r in resps] == [
        (200, b"read 5 bytes\n"), (200, b"read 5 bytes\n"), (404, b"Not Found\n")]
    assert not closed
    s.sendall(b"GET /y HTTP/1.1\r\nHost: a\r\n\r\n")
    resps, _, _ = read_responses(s, 1)
    assert resps[0].status == 404
    s.close()


# ---------------------------------------------------------------- smuggling

SMUGGLING = [
    # CL.TE / TE.CL: both framings in one request
    ("cl-te", [b"Content-Length: 6", b"Transfer-Encoding: chunked"], b"0\r\n\r\nX", 400),
    ("te-cl", [b"Transfer-Encoding: chunked", b"Content-Length: 6"], b"0\r\n\r\nX", 400),
    # TE.TE: Transfer-Encoding obfuscated so that two parsers disagree
    ("te-xchunked", [b"Transfer-Encoding: xchunked"], b"0\r\n\r\n", 501),
    ("te-xchunked-cl", [b"Transfer-Encoding: xchunked", b"Content-Length: 5"], b"0\r\n\r\n", 400),
    ("te-space-chunked-cl", [b"Transfer-Encoding:  chunked", b"Content-Length: 5"], b"0\r\n\r\n", 400),
    ("te-tab-chunked-cl", [b"Transfer-Encoding:\tchunked", b"Content-Length: 5"], b"0\r\n\r\n", 400),
    ("te-chunked-identity", [b"Transfer-Encoding: chunked, identity"], b"0\r\n\r\n", 400),
    ("te-identity", [b"Transfer-Encoding: identity"], b"", 501),
    ("te-chunked-chunked", [b"Transfer-Encoding: chunked, chunked"], b"0\r\n\r\n", 400),
    ("te-duplicated", [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"], b"0\r\n\r\n", 400),
    ("te-then-te-x", [b"Transfer-Encoding: chunked", b"Transfer-encoding: x"], b"0\r\n\r\n", 400),
    ("te-x-then-te", [b"Transfer-Encoding: x", b"Transfer-Encoding: chunked"], b"0\r\n\r\n", 501),
    ("te-empty-element", [b"Transfer-Encoding: , chunked"], b"0\r\n\r\n", 400),
    ("te-quoted", [b'Transfer-Encoding: "chunked"'], b"0\r\n\r\n", 400),
    ("te-vt", [b"Transfer-Encoding: \x0bchunked"], b"0\r\n\r\n", 400),
    ("te-nul", [b"Transfer-Encoding: chunked\x00"], b"0\r\n\r\n", 400),
    ("te-params", [b"Transfer-Encoding: chunked;q=1"], b"0\r\n\r\n", 501),
    ("te-space-before-colon", [b"Transfer-Encoding : chunked"], b"0\r\n\r\n", 400),
    ("te-obs-fold", [b"X: y", b" Transfer-Encoding: chunked"], b"0\r\n\r\n", 400),
    ("te-folded-value", [b"Transfer-Encoding:", b" chunked"], b"0\r\n\r\n", 400),
    ("te-bare-lf", [b"X: y\nTransfer-Encoding: chunked"], b"0\r\n\r\n", 400),
    ("te-bare-cr", [b"X: y\rTransfer-Encoding: chunked"], b"0\r\n\r\n", 400),
    # Content-Length games
    ("cl-twice-equal", [b"Content-Length: 5", b"Content-Length: 5"], b"hello", 400),
    ("cl-twice-different", [b"Content-Length: 5", b"Content-Length: 6"], b"hello!", 400),
    ("cl-list", [b"Content-Length: 5, 5"], b"hello", 400),
    ("cl-plus", [b"Content-Length: +5"], b"hello", 400),
    ("cl-minus", [b"Content-Length: -1"], b"", 400),
    ("cl-hex", [b"Content-Length: 0x10"], b"0123456789abcdef", 400),
    ("cl-huge", [b"Content-Length: 99999999999999999999999"], b"", 400),
    ("cl-int64-overflow", [b"Content-Length: 18446744073709551621"], b"", 400),
    ("cl-space-inside", [b"Content-Length: 1 5"], b"hello", 400),
    ("cl-empty", [b"Content-Length:"], b"", 400),
    ("cl-dot", [b"Content-Length: 5.0"], b"hello", 400),
    ("cl-space-before-colon", [b"Content-Length : 5"], b"hello", 400),
    ("cl-nul", [b"Content-Length: 5\x00"], b"hello", 400),
    # NUL, CR and friends in the head
    ("nul-in-value", [b"X-A: a\x00b"], b"", 400),
    ("nul-in-name", [b"X-\x00A: b"], b"", 400),
    ("cr-in-value", [b"X-A: a\rb"], b"", 400),
    ("cr-in-name", [b"X-\rA: b"], b"", 400),
    ("bare-cr-line-end", [b"X-A: a\rX-B: b"], b"", 400),
    ("del-in-value", [b"X-A: a\x7f"], b"", 400),
    ("obs-fold", [b"X-A: a", b" b"], b"", 400),
    ("obs-fold-tab", [b"X-A: a", b"\tb"], b"", 400),
    ("space-before-colon", [b"X-A : a"], b"", 400),
    ("no-colon", [b"X-A a"], b"", 400),
    ("empty-name", [b": a"], b"", 400),
    ("expect-unknown", [b"Expect: 200-ok"], b"", 417),
]


@pytest.mark.parametrize("fields,body,status", [c[1:] for c in SMUGGLING],
                         ids=[c[0] for c in SMUGGLING])
def test_smuggling_refused(srv, fields, body, status):
    assert_refused(srv, req(fields, body) + SMUGGLED, status, srv.initial_workers)


def test_transfer_encoding_in_http10_refused(srv):
    """HTTP/1.0 has no chunked: a 1.0 request with Transfer-Encoding has
    faulty framing (RFC 9112 6.1), with or without Content-Length."""
    for fields in ([b"Transfer-Encoding: chunked"], [b"Content-Length: 5", b"Transfer-Encoding: chunked"]):
        assert_refused(srv, req(fields, b"0\r\n\r\n", version="HTTP/1.0") + SMUGGLED, 400,
                       srv.initial_workers)


def test_host_field_refusals(srv):
    """Host must be there in 1.1, once, and look like a host."""
    for fields in ([b"Host: a b"], [b"Host: a/b"], [b"Host: u@a"], [b"Host: a", b"Host: a"],
                   [b"Host: a", b"host: b"]):
        assert_refused(srv, req(fields, host=None) + SMUGGLED, 400, srv.initial_workers)


def test_smuggling_behind_a_good_request(srv):
    """A good request, a bad one, then a smuggled one, on one connection:
    the first is answered, the second refused, the third never seen."""
    data = (b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
            + req([b"Content-Length: 4", b"Transfer-Encoding: chunked"], b"0\r\n\r\n")
            + SMUGGLED)
    resps, closed = exchange(srv, data)
    assert [r.status for r in resps] == [404, 400]
    assert resps[1].headers["connection"] == "close"
    assert closed
    assert access_logged(srv, "/first")
    assert not access_logged(srv, "/smuggled")


def random_pipeline(rng, n):
    """n valid requests (GETs, Content-Length and chunked bodies, some
    with extensions and trailers) and the answers they must get."""
    data, want = b"", []
    for i in range(n):
        kind = rng.choice(["get", "cl", "chunked"])
        if kind == "get":
            data += b"GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n" % i
            want.append((404, b"Not Found\n"))
            continue
        body = bytes(rng.choice(b"abcGET /\r\n0") for _ in range(rng.randrange(0, 3000)))
        if kind == "cl":
            data += req([b"Content-Length: %d" % len(body)], body)
        else:
            chunks, rest = b"", body
            while rest:
                k = rng.randrange(1, 700)
                ext = rng.choice([b"", b";a=b", b';q="x;y"'])
                chunks += b"%x%s\r\n%s\r\n" % (len(rest[:k]), ext, rest[:k])
                rest = rest[k:]
            chunks += b"0\r\n" + rng.choice([b"", b"T: v\r\n"]) + b"\r\n"
            data += req([b"Transfer-Encoding: chunked"], chunks)
        want.append((200, b"read %d bytes\n" % len(body)))
    return data, want


@pytest.mark.parametrize("max_segment", [1, 7, 100, 1500, 20000])
def test_pipeline_split_anywhere(srv, max_segment):
    """The framing never depends on how the stream is cut into reads: 40
    pipelined requests with bodies, sent in random segments of up to
    `max_segment` bytes with a short gap between them (so the server reads
    them one by one), get exactly their 40 answers, in order.  A body byte
    left over and parsed as a request, or a request eaten as body, shows
    up as a wrong or missing answer."""
    import random
    rng = random.Random(max_segment)
    data, want = random_pipeline(rng, 40)
    s = srv.connect()
    pos = 0
    while pos < len(data):
        n = rng.randrange(1, max_segment + 1)
        s.sendall(data[pos:pos + n])
        pos += n
        time.sleep(0.0005 if max_segment > 1 else 0)  # traffic shaping, not synchronisation
    resps, closed, rest = read_responses(s, len(want), timeout=20)
    assert [(r.status, r.body) for r in resps] == want
    assert not closed and rest == b""
    s.close()


def test_te_with_ows_is_chunked(srv):
    """OWS around "chunked" is allowed (RFC 9110 5.5): the body is chunked
    and the request behind it is a separate request, not smuggled data."""
    for te in (b"Transfer-Encoding:  chunked", b"Transfer-Encoding:\tchunked ", b"transfer-encoding: CHUNKED"):
        s = srv.connect()
        s.sendall(req([te], b"5\r\nhello\r\n0\r\n\r\n") + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        resps, closed, _ = read_responses(s, 2)
        assert [(r.status, r.body) for r in resps] == [(200, b"read 5 bytes\n"), (404, b"Not Found\n")]
        s.close()


def test_refusal_closes_gracefully(srv):
    """After refusing a request the server shuts its side and keeps reading
    (and dropping) for a moment before closing (RFC 9112 9.6): a client
    still uploading gets a clean end of stream, not a reset that could
    destroy the answer it has not read yet."""
    s = srv.connect()
    s.sendall(req([b"Content-Length: +5"]))
    resps, closed, _ = read_responses(s, None)
    assert [r.status for r in resps] == [400] and closed
    s.sendall(b"x" * 200_000)  # the rest of an upload, after the answer
    s.sendall(b"x" * 200_000)
    s.settimeout(5)
    assert s.recv(1) == b""
    s.close()


def test_content_length_leading_zeros_and_ows(srv):
    """`Content-Length: 005` is 1*DIGIT (accepted, read as 5); OWS around it
    is not part of the value."""
    s = srv.connect()
    s.sendall(req([b"Content-Length: 005"], b"hello") + req([b"Content-Length:\t 5 \t"], b"world"))
    resps, closed, _ = read_responses(s, 2)
    assert [(r.status, r.body) for r in resps] == [(200, b"read 5 bytes\n")] * 2
    s.close()


# ---------------------------------------------------------------- chunked bodies

CHUNKED = [
    ("size-overflow", b"ffffffffffffffffff\r\n", 400),
    ("size-int64-overflow", b"8000000000000000\r\n", 400),
    ("size-17-digits", b"00000000000000001\r\nx\r\n0\r\n\r\n", 400),
    ("size-0x", b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    ("size-negative", b"-5\r\nhello\r\n0\r\n\r\n", 400),
    ("size-plus", b"+5\r\nhello\r\n0\r\n\r\n", 400),
    ("size-empty", b"\r\nhello\r\n0\r\n\r\n", 400),
    ("size-leading-space", b" 5\r\nhello\r\n0\r\n\r\n", 400),
    ("size-trailing-space", b"5 \r\nhello\r\n0\r\n\r\n", 400),
    ("size-bare-lf", b"5\nhello\r\n0\r\n\r\n", 400),
    ("size-bare-cr", b"5\rhello\r\n0\r\n\r\n", 400),
    ("size-underscore", b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n", 400),
    ("data-too-long", b"5\r\nhello!\r\n0\r\n\r\n", 400),
    ("data-bare-lf", b"5\r\nhello\n0\r\n\r\n", 400),
    ("last-chunk-bare-lf", b"5\r\nhello\r\n0\n\r\n", 400),
    ("ext-too-long", b"5;" + b"a" * 300 + b"\r\nhello\r\n0\r\n\r\n", 400),
    ("ext-many", b"5" + b";a" * 200 + b"\r\nhello\r\n0\r\n\r\n", 400),
    ("ext-lf-in-quotes", b'5;a="x\ny"\r\nhello\r\n0\r\n\r\n', 400),
    ("ext-unterminated-quote", b'5;a="x\r\nhello\r\n0\r\n\r\n', 400),
    ("ext-smuggle-lf", b"2;\nxx\r\n45\r\n0\r\n\r\n", 400),
    ("ext-nul", b"5;a\x00\r\nhello\r\n0\r\n\r\n", 400),
    ("trailer-obs-fold", b"0\r\nT: v\r\n w\r\n\r\n", 400),
    ("trailer-space-before-colon", b"0\r\nT : v\r\n\r\n", 400),
    ("trailer-bare-lf", b"0\r\nT: v\n\r\n", 400),
    ("trailer-nul", b"0\r\nT: a\x00\r\n\r\n", 400),
    ("trailer-too-large", b"0\r\n" + b"T: " + b"v" * 9000 + b"\r\n\r\n", 431),
    ("over-limit-post-one-chunk", b"100001\r\n", 413),
    ("over-limit-post-sum", b"80000\r\n" + b"x" * 0x80000 + b"\r\n80001\r\n", 413),
]


@pytest.mark.parametrize("body,status", [c[1:] for c in CHUNKED], ids=[c[0] for c in CHUNKED])
def test_bad_chunked_body_read_by_the_app(srv, body, status):
    """The app reads the body: the transport answers the framing error
    itself (whatever the app then tries to send) and closes."""
    assert_refused(srv, req([b"Transfer-Encoding: chunked"], body) + SMUGGLED, status,
                   srv.initial_workers)


@pytest.mark.parametrize("body", [c[1] for c in CHUNKED if c[2] == 400][:6],
                         ids=[c[0] for c in CHUNKED if c[2] == 400][:6])
def test_bad_chunked_body_nobody_reads(srv, body):
    """Nobody reads the body (the core answers 404 without an app): the
    server discards it itself, finds the framing error there and closes;
    what follows is never taken for a request."""
    resps, closed = exchange(srv, req([b"Transfer-Encoding: chunked"], body, path="/nothing-here")
                             + SMUGGLED)
    assert [r.status for r in resps] == [404]
    assert closed
    assert not access_logged(srv, "/smuggled")
    get_ok(srv)


def test_chunk_extensions_within_limits_are_accepted(srv):
    """Extensions are legal and ignored: many chunks, each with extensions
    just under the per-line limit (256 bytes), quoted strings included."""
    ext = b";name=" + b"v" * 200 + b';q="a\\"b;c"'
    body = b"".join(b"1" + ext + b"\r\nx\r\n" for _ in range(50)) + b"0" + ext + b"\r\n\r\n"
    s = srv.connect()
    s.sendall(req([b"Transfer-Encoding: chunked"], body))
    resps, _, _ = read_responses(s, 1)
    assert (resps[0].status, resps[0].body) == (200, b"read 50 bytes\n")
    s.close()


# ---------------------------------------------------------------- limits

def test_too_many_headers_431(srv):
    """10,000 header fields: 431 as soon as http-max-headers (100) is
    passed, and the log says which limits apply."""
    data = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(10000)) + b"\r\n"
    assert_refused(srv, data + SMUGGLED, 431, srv.initial_workers)
    srv.wait_log(r"INFO: 431 to 127\.0\.0\.1: too many header fields .*http-max-headers")


def test_huge_header_line_431_names_buffer_size(srv):
    """A single 100 KB header line: 431, and the log line names the option
    to change (buffer-size) and its value."""
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert_refused(srv, data + SMUGGLED, 431, srv.initial_workers)
    srv.wait_log(r"INFO: 431 to 127\.0\.0\.1: request head too large .*buffer-size = 8192")


def test_head_just_under_buffer_size_is_served(srv):
    """The limit is the whole head: one just under 8k is fine."""
    base = b"GET /fits HTTP/1.1\r\nHost: a\r\nX-Fill: \r\n\r\n"
    data = base.replace(b"X-Fill: ", b"X-Fill: " + b"f" * (8192 - len(base)))
    assert len(data) == 8192
    s = srv.connect()
    s.sendall(data)
    resps, _, _ = read_responses(s, 1)
    assert resps[0].status == 404
    s.close()
    assert_refused(srv, data.replace(b"X-Fill: ", b"X-Fill: f"), 431, srv.initial_workers)


def test_uri_longer_than_buffer_size_414(srv):
    data = b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    assert_refused(srv, data + SMUGGLED, 414, srv.initial_workers)
    srv.wait_log(r"INFO: 414 to 127\.0\.0\.1: request-target too long|request line too long")


def test_body_over_limit_post_413_content_length(srv):
    """Content-Length above limit-post: 413 before any body byte is read,
    even when the client sends the body anyway (the answer still arrives)."""
    assert_refused(srv, req([b"Content-Length: 1048577"]) + SMUGGLED, 413, srv.initial_workers)
    resps, closed = exchange(srv, req([b"Content-Length: 4000000"], b"x" * 4_000_000))
    assert [r.status for r in resps] == [413] and closed
    srv.wait_log(r"INFO: 413 to 127\.0\.0\.1: Content-Length exceeds limit \(limit-post = 1048576\)")
    # exactly at the limit is fine
    s = srv.connect()
    s.sendall(req([b"Content-Length: 1048576"], b"x" * 1048576))
    resps, _, _ = read_responses(s, 1)
    assert (resps[0].status, resps[0].body) == (200, b"read 1048576 bytes\n")
    s.close()


def test_body_over_limit_post_413_chunked(srv):
    """Chunked bodies are held to limit-post by their declared chunk sizes."""
    body = b"".join(b"10000\r\n" + b"x" * 0x10000 + b"\r\n" for _ in range(17)) + b"0\r\n\r\n"
    assert_refused(srv, req([b"Transfer-Encoding: chunked"], body) + SMUGGLED, 413, srv.initial_workers)
    srv.wait_log(r"413 to 127\.0\.0\.1: request body: chunked body exceeds limit \(limit-post\)")
    s = srv.connect()
    s.sendall(req([b"Transfer-Encoding: chunked"], body[:(7 + 0x10000 + 2) * 16] + b"0\r\n\r\n"))
    resps, _, _ = read_responses(s, 1)
    assert (resps[0].status, resps[0].body) == (200, b"read 1048576 bytes\n")
    s.close()


def test_refused_body_is_logged_with_its_real_status(srv):
    """The access log shows the status the client got (400), not the one
    the app tried to send after its read failed."""
    assert_refused(srv, req([b"Transfer-Encoding: chunked"], b"zz\r\n", path="/echo?logged")
                   + SMUGGLED, 400, srv.initial_workers)
    wait_for(lambda: re.search(r'"POST /echo\?logged HTTP/1\.1" 400 ', srv.log()),
             what="the access log line of the refused body")


# ---------------------------------------------------------------- request line

REQUEST_LINES = [
    ("http09-simple", b"GET /\r\n\r\n", 400),
    ("http09-version", b"GET / HTTP/0.9\r\n\r\n", 505),
    ("http2-version", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("http3", b"GET / HTTP/3\r\nHost: a\r\n\r\n", 400),
    ("http12", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    ("lowercase-version", b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    ("version-two-digits", b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
    ("no-host-http11", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-spaces", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("tab-separator", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("trailing-space", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    ("space-in-target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("nul-in-target", b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("encoded-nul", b"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad-escape", b"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("fragment", b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("relative", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("userinfo", b"GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad-scheme", b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("connect", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501),
    ("method-too-long", b"A" * 40 + b" / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    ("method-bad-char", b"G{T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("leading-bare-lf", b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("binary-garbage", bytes(range(256)), 400),
    ("tls-client-hello", bytes.fromhex("16030100c4010000c00303") + os.urandom(32), 400),
]


@pytest.mark.parametrize("data,status", [c[1:] for c in REQUEST_LINES], ids=[c[0] for c in REQUEST_LINES])
def test_bad_request_line(srv, data, status):
    assert_refused(srv, data + SMUGGLED, status, srv.initial_workers)


def test_absolute_form_wins_over_host(srv):
    """absolute-form + a different Host: the target's authority is the one
    used (RFC 9112 3.2.2); the request is served, not refused."""
    s = srv.connect()
    s.sendall(b"GET http://example.org/x HTTP/1.1\r\nHost: other.example\r\n\r\n")
    resps, _, _ = read_responses(s, 1)
    assert resps[0].status == 404
    s.close()


# ---------------------------------------------------------------- Expect: 100-continue

def test_expect_100_sent_when_the_app_reads(srv):
    s = srv.connect()
    s.sendall(req([b"Expect: 100-continue", b"Content-Length: 5"]))
    resps, closed, _ = read_responses(s, 1)
    assert resps[0].status == 100 and not closed
    s.sendall(b"hello")
    resps, closed, _ = read_responses(s, 1)
    assert (resps[0].status, resps[0].body) == (200, b"read 5 bytes\n")
    s.sendall(b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n")  # still keep-alive
    resps, _, _ = read_responses(s, 1)
    assert resps[0].status == 404
    s.close()


@pytest.mark.parametrize("path,status,body", [
    ("/noread", 200, b"not read\n"),         # an app that answers without reading
    ("/no-such-app", 404, b"Not Found\n"),   # nobody handles it
])
def test_expect_100_not_sent_when_nobody_reads(srv, path, status, body):
    """No 100 when the body is not wanted: the final answer comes at once,
    says "Connection: close", and the connection closes (the client may
    still send the body it held back, which must not be read as a
    request)."""
    s = srv.connect()
    s.sendall(req([b"Expect: 100-continue", b"Content-Length: 36"], path=path))
    resps, closed, _ = read_responses(s, None)
    assert [(r.status, r.body) for r in resps] == [(status, body)]
    assert resps[0].headers.get("connection") == "close"
    assert closed
    s.close()


def test_expect_100_refused_body_gets_no_100(srv):
    """A Content-Length over limit-post gets its 413 instead of a 100."""
    resps, closed = exchange(srv, req([b"Expect: 100-continue", b"Content-Length: 2000000"]))
    assert [r.status for r in resps] == [413] and closed


def test_expect_ignored_in_http10(srv):
    """HTTP/1.0 clients do not know 100 (RFC 9110 10.1.1): none is sent."""
    s = srv.connect()
    s.sendall(req([b"Expect: 100-continue", b"Content-Length: 5"], b"hello", version="HTTP/1.0"))
    resps, closed, _ = read_responses(s, None)
    assert [(r.status, r.body) for r in resps] == [(200, b"read 5 bytes\n")]
    assert closed


# ---------------------------------------------------------------- timeouts

def test_slow_head_408(wharf, plugins_env):
    """A head trickled one byte every 100 ms gets 408 after http-timeout
    (1 s) although bytes keep coming: the timeout is for the whole head,
    not per read.  The head would take 6 s to complete."""
    srv = start(wharf, plugins_env, {"http-timeout": "1"})
    head = b"GET /slow HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"s" * 30 + b"\r\n\r\n"
    s = srv.connect()
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    sent = 0
    # the 100 ms between bytes is the attack's pace; the select() that
    # spaces them also watches for the server's answer
    while sent < len(head) and not sel.select(timeout=0.1):
        try:
            s.send(head[sent:sent + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 1
    assert sent < len(head), "the whole head went in without a 408"
    resps, closed, _ = read_responses(s, None, timeout=5)
    assert [r.status for r in resps] == [408]
    assert resps[0].headers["connection"] == "close"
    assert closed
    s.close()
    srv.wait_log(r"408 to 127\.0\.0\.1: request head not received within http-timeout")
    assert not access_logged(srv, "/slow")
    get_ok(srv)


def test_idle_connection_closed_silently(wharf, plugins_env):
    """A connection that never sends a byte, and a keep-alive connection
    that goes idle, are closed without a response (no 408 to a client that
    asked nothing) after http-timeout / http-keepalive."""
    srv = start(wharf, plugins_env, {"http-timeout": "1", "http-keepalive": "1"})
    silent = srv.connect()
    idle = srv.connect()
    idle.sendall(b"GET /once HTTP/1.1\r\nHost: a\r\n\r\n")
    resps, _, _ = read_responses(idle, 1)
    assert resps[0].status == 404
    for s in (silent, idle):
        resps, closed, rest = read_responses(s, None, timeout=5)
        assert resps == [] and rest == b"" and closed
        s.close()
    get_ok(srv)


# ---------------------------------------------------------------- slowloris

def test_slowloris_1000_connections(wharf, plugins_env):
    """1000 connections each trickle one header byte per second (for about
    5 s) into one worker; meanwhile a normal client's requests are each
    answered (client timeout 1 s).  Then all 1000 are still open: the
    server neither dropped them early nor ran out of descriptors."""
    n = 1000
    raise_fd_limit(n + 500)
    srv = start(wharf, plugins_env, {"http-timeout": "60", "listen": "1024"})
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", srv.port))
        socks.append(s)
    prefix = b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: "
    sent = [0] * n

    def trickle():
        for i, s in enumerate(socks):
            b = prefix[sent[i]:sent[i] + 1] or b"s"
            try:
                if s.send(b) == 1:
                    sent[i] += 1
            except BlockingIOError:
                pass  # connect not finished yet: next round

    answered = 0
    t_end = time.monotonic() + 5
    while time.monotonic() < t_end:
        round_end = time.monotonic() + 1
        trickle()
        while time.monotonic() < round_end:
            r = requests.get(srv.url + "/normal", timeout=1)
            assert r.status_code == 404
            answered += 1
    assert answered >= 5
    assert min(sent) >= 3, "slowloris connections did not get their bytes in"
    # every trickling connection is still open (nothing came back)
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    assert sel.select(timeout=0.2) == []
    for s in socks:
        s.close()
    get_ok(srv)


# ---------------------------------------------------------------- slow readers

def open_and_stall(srv, path):
    """Ask for `path` and never read: returns the socket (small receive
    buffer so the server soon has to wait)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    return s


def test_slow_reader_loop_response(wharf, plugins_env):
    """A client that asks for a 32 MB response from the event loop and
    stops reading does not block other clients; after socket-timeout
    without progress the server gives up on it."""
    srv = start(wharf, plugins_env, {"hostile-big": "32m", "socket-timeout": "2"})
    stalled = [open_and_stall(srv, "/big") for _ in range(3)]
    for _ in range(20):
        get_ok(srv, timeout=1)
    srv.wait_log(r"client 127\.0\.0\.1: no progress for 2000 ms: closing", timeout=10, count=3)
    for s in stalled:
        got = 0
        s.settimeout(5)
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                got += len(d)
        except ConnectionResetError:
            pass
        assert got < 32 << 20, "the stalled client got everything"
        s.close()
    get_ok(srv)


def test_slow_reader_static_file(wharf, plugins_env, tmp_path):
    """The same with a 64 MB static file (sendfile from the loop): three
    stalled readers cost neither the other clients nor memory, and are
    dropped after socket-timeout."""
    www = tmp_path / "www"
    www.mkdir()
    with open(www / "big.bin", "wb") as f:
        f.truncate(64 << 20)
    srv = start(wharf, plugins_env, {"static-map": f"/s={www}", "socket-timeout": "2"})
    worker = srv.worker_pids()[0]
    rss0 = rss_kib(worker)
    stalled = [open_and_stall(srv, "/s/big.bin") for _ in range(3)]
    for _ in range(20):
        get_ok(srv, timeout=1)
    assert rss_kib(worker) - rss0 < 16 << 10, "the stalled responses are being buffered in memory"
    srv.wait_log(r"client 127\.0\.0\.1: no progress for 2000 ms: closing", timeout=10, count=3)
    for s in stalled:
        s.close()
    get_ok(srv)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def test_slow_reader_app_response(wharf, plugins_env):
    """The same from the APP phase (blocking writes on an app thread): with
    threads = 2 one thread waits on the slow reader, the other serves."""
    srv = start(wharf, plugins_env, {"hostile-big": "32m", "socket-timeout": "2", "threads": 2})
    stalled = open_and_stall(srv, "/big-app")
    for _ in range(20):
        get_ok(srv, timeout=1)
    srv.wait_log(r"client 127\.0\.0\.1: no progress for 2000 ms \(socket-timeout\): closing", timeout=10)
    stalled.close()
    get_ok(srv)


# ---------------------------------------------------------------- floods

def connect_many(port, n, timeout=5.0):
    """Start n non-blocking connects; returns the sockets."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    return socks


def closed_by_server(s):
    try:
        return s.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (ConnectionResetError, OSError):
        return True


def worker_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_connection_flood_beyond_backlog(wharf, plugins_env):
    """600 connections opened at once against listen = 16 and
    max-connections = 50, never sending anything: the worker holds exactly
    50, closes the ones above the limit as it accepts them, never crashes,
    leaks no descriptor, and serves normally once the flood goes away.
    (Connections the kernel dropped from the full backlog stay half-open on
    the client side: that is TCP, not wharf.)"""
    raise_fd_limit(2000)
    srv = start(wharf, plugins_env, {"listen": "16", "max-connections": "50", "http-timeout": "30"},
)
    workers = srv.worker_pids()
    base = worker_fds(workers[0])
    socks = connect_many(srv.port, 600)
    wait_for(lambda: worker_fds(workers[0]) == base + 50, timeout=10,
             what="the worker to hold max-connections connections")
    srv.wait_log(r"WARN: max-connections = 50 reached in worker 1: new connections are closed")
    wait_for(lambda: any(closed_by_server(s) for s in socks), timeout=10,
             what="connections above max-connections to be closed")
    assert worker_fds(workers[0]) == base + 50
    for s in socks:
        s.close()
    wait_for(lambda: requests.get(srv.url + "/after", timeout=1).status_code == 404, timeout=10,
             what="a normal request after the flood")
    for _ in range(10):
        get_ok(srv)
    wait_for(lambda: worker_fds(workers[0]) == base, timeout=10, what="every flood connection closed")
    assert srv.worker_pids() == workers


def test_connection_flood_fd_exhaustion(wharf, plugins_env):
    """The worker runs out of file descriptors (RLIMIT_NOFILE 64, no
    max-connections): accept fails with EMFILE.  The worker neither spins
    nor floods the log, keeps serving the connections it has, and accepts
    again once the flood goes away."""
    srv = start(wharf, plugins_env, {"http-timeout": "30"}, start=False)
    plain = srv.command
    srv.command = lambda *extra: ["prlimit", "--nofile=64", "--"] + plain(*extra)
    srv.start()
    workers = srv.worker_pids()
    keep = srv.connect()  # opened before the flood: must keep working
    socks = connect_many(srv.port, 200)
    srv.wait_log(r"accept on 127\.0\.0\.1:\d+: Too many open files: not accepting for 100 ms")
    worker = workers[0]
    cpu0, t0 = cpu_seconds(worker), time.monotonic()
    keep.sendall(b"GET /kept HTTP/1.1\r\nHost: a\r\n\r\n")
    resps, _, _ = read_responses(keep, 1)
    assert resps[0].status == 404
    time.sleep(1.0)  # CPU use is measured over a second: a duration, not a wait
    cpu = cpu_seconds(worker) - cpu0
    wall = time.monotonic() - t0
    assert cpu < 0.3 * wall, f"the worker spins at {cpu / wall:.0%} CPU while it cannot accept"
    warnings = len(re.findall(r"Too many open files", srv.log()))
    assert warnings <= 5, f"{warnings} warnings: the log is flooded"
    for s in socks:
        s.close()
    keep.close()
    wait_for(lambda: requests.get(srv.url + "/after", timeout=1).status_code == 404, timeout=10,
             what="a normal request after the flood")
    assert srv.worker_pids() == workers


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- a real WSGI app

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")


def wsgi_options(**kw):
    """The python plugin's test app (tests/integration/apps/pepapp.py)."""
    opts = {"processes": 1, "pythonpath": APPS, "module": "pepapp"}
    opts.update({k.replace("_", "-"): v for k, v in kw.items()})
    return opts


def test_wsgi_environ_cannot_be_spoofed(wharf):
    """Header names with '_' never reach the environ (X_Forwarded_For would
    become HTTP_X_FORWARDED_FOR, as if a trusted proxy had set it), and
    X-Forwarded-For from a peer outside forwarded-allow-ips is ignored."""
    srv = wharf(wsgi_options(forwarded_allow_ips="10.9.8.7"))
    s = srv.connect()
    s.sendall(b"GET /env HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\n"
              b"X-Forwarded-For: 7.7.7.7\r\nX-Forwarded-Proto: https\r\nContent_Length: 5\r\n"
              b"Transfer_Encoding: chunked\r\nX_Real_IP: 6.6.6.6\r\n\r\n")
    resps, _, _ = read_responses(s, 1)
    s.close()
    env = {k: v[1] for k, v in json.loads(resps[0].body).items()}
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_X_FORWARDED_FOR"] == "7.7.7.7"  # passed on as data, not trusted
    assert "HTTP_X_REAL_IP" not in env and "HTTP_TRANSFER_ENCODING" not in env
    assert env.get("CONTENT_LENGTH", "") in ("", "0")
    assert not any("6.6.6.6" in str(v) for v in env.values())


def test_wsgi_expect_100_continue(wharf):
    """With a WSGI app: 100 only once the app reads wsgi.input; an app that
    answers without reading gets its answer out at once, and the
    connection closes (the held-back body must not be read as a request)."""
    srv = wharf(wsgi_options())
    s = srv.connect()
    s.sendall(b"POST /input/read HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    resps, _, _ = read_responses(s, 1)
    assert resps[0].status == 100
    s.sendall(b"hello")
    resps, closed, _ = read_responses(s, 1)
    assert resps[0].status == 200 and b'"len": 5' in resps[0].body and not closed
    s.close()
    s = srv.connect()
    s.sendall(b"POST /input/ignore HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    resps, closed, _ = read_responses(s, None)
    assert [(r.status, r.body) for r in resps] == [(200, b"did not read the body")]
    assert resps[0].headers["connection"] == "close" and closed
    s.close()


def test_wsgi_smuggled_body_never_reaches_the_app(wharf):
    """A chunked body with a bad chunk, read by the app: the client gets
    400 and the close, the request pipelined behind it is not run.  The
    app sees wsgi.input raise; that is the client's doing, so it is an INFO
    line, never an ERROR a client could write at will."""
    srv = wharf(wsgi_options())
    data = (b"POST /input/read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n5;\nxx\r\n0\r\n\r\n" + SMUGGLED)
    resps, closed = exchange(srv, data)
    assert [r.status for r in resps] == [400] and closed
    assert not access_logged(srv, "/smuggled")
    srv.wait_log(r'"POST /input/read HTTP/1.1" 400 ')
    srv.wait_log(r"INFO: POST /input/read: the app stopped: its request body could not be read")
    assert requests.get(srv.url + "/hello", timeout=5).text == "Hello, World!\n"


# ---------------------------------------------------------------- path traversal

# The static plugin's own set (copied from tests/integration/test_static.py,
# TRAVERSALS), run here again through a server that also maps "/" (so a
# traversal that escapes one map cannot land in another), plus the cases
# after it.  Expected: 403 refused by the static plugin, 404 nothing there,
# 400 refused by the parser; never the secret, and (except after a 400)
# the same keep-alive connection goes on serving.
SECRET = b"TOP-SECRET-0xdeadbeef"
STATIC_TRAVERSALS = [
    ("/s/../outside/secret.txt", 403),
    ("/s/../../../../../../etc/passwd", 403),
    ("/s/%2e%2e/outside/secret.txt", 403),
    ("/s/%2E%2E/outside/secret.txt", 403),
    ("/s/.%2e/outside/secret.txt", 403),
    ("/s/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 403),
    ("/s/..%2foutside%2fsecret.txt", 403),
    ("/s/%2e%2e%2foutside%2fsecret.txt", 403),
    ("/s/%2e%2e%2f", 403),
    ("/s/foo/../../outside/secret.txt", 403),
    ("/s/sub/../../outside/secret.txt", 403),
    ("/s/./../outside/secret.txt", 403),
    ("/s/..%5coutside%5csecret.txt", 403),            # encoded backslash
    ("/s/%5c..%5c..%5cetc%5cpasswd", 403),
    ("/s/sub%5c..%5c..%5coutside/secret.txt", 403),
    ("/s/%c0%ae%c0%ae/outside/secret.txt", 404),      # overlong UTF-8: not dots
    ("/s/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt", 404),
    ("/s/%252e%252e/outside/secret.txt", 404),        # double encoding: a name
    ("/s/..;/outside/secret.txt", 404),               # "..;" is a name on Linux
    ("//etc/passwd", 404),                            # no map matches
    ("/s//etc/passwd", 404),                          # <root>//etc/passwd
    ("/s/out-link.txt", 403),                         # symlink out of the root
    ("/s/dirlink/secret.txt", 403),                   # directory symlink out
    ("/s/%2e%2e%00/secret.txt", 400),                 # encoded NUL
    ("http://localhost/s/../outside/secret.txt", 403),  # absolute-form
]


MORE_TRAVERSALS = [
    ("/../outside/secret.txt", 403),                   # through the "/" map
    ("/%2e%2e/outside/secret.txt", 403),
    ("/%2e%2E%2foutside%2fsecret.txt", 403),
    ("/s/..\\outside\\secret.txt", 403),            # raw backslashes
    ("/s/sub/..", 403),                                # ".." that stays inside: still refused
    ("/s/hello.txt/..", 403),
    ("/s/%2e%2e", 403),
    ("/s/..%2f..%2f..%2f..%2fetc%2fpasswd", 403),
    ("http://x/s/%2e%2e/outside/secret.txt", 403),      # absolute-form, encoded
    ("/s/....", 404),                                  # a name, not a traversal
    ("/s/%ef%bc%8e%ef%bc%8e/outside/secret.txt", 404),  # fullwidth dots
    ("/s/up/secret.txt", 403),                         # relative symlink out
    ("/s/loop", 404),                                  # symlink loop: ELOOP
    ("/s/zero", 404),                                  # symlink to a device: not a regular file
    ("/s/fifo", 404),                                  # a FIFO: never opened (would block)
    ("/s/hello.txt/", 404),                            # a file used as a directory
    ("/s/hello.txt%00.png", 400),                      # NUL truncation
    ("/s/hello.txt\x00.png", 400),                     # raw NUL
    ("/s/" + "x" * 5000, 404),                         # longer than NAME_MAX
    ("/s/" + "sub/" * 1500 + "hello.txt", 404),        # longer than PATH_MAX
    ("/s/" + "./" * 3000 + "hello.txt", 404),
]


@pytest.fixture(scope="module")
def traversal_srv(tmp_path_factory, plugins_env):
    root = tmp_path_factory.mktemp("traversal")
    www = root / "www"
    (www / "sub").mkdir(parents=True)
    (www / "hello.txt").write_bytes(b"hello\n")
    (www / "sub" / "index.html").write_bytes(b"sub\n")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET + b"\n")
    os.symlink(outside / "secret.txt", www / "out-link.txt")
    os.symlink(outside, www / "dirlink")
    os.symlink("../outside", www / "up")
    os.symlink("loop", www / "loop")
    os.symlink("/dev/zero", www / "zero")
    os.mkfifo(www / "fifo")
    srv = Wharf(root, env=plugins_env, options=[
        ("processes", 1), ("buffer-size", "64k"),
        ("static-map", f"/s={www}"), ("static-map", f"/={www}")]).start()
    yield srv
    try:
        srv.stop()
    finally:
        srv.kill_group()
    srv.check_log()


@pytest.mark.parametrize("target,status", STATIC_TRAVERSALS + MORE_TRAVERSALS,
                         ids=[t[:60] for t, _ in STATIC_TRAVERSALS + MORE_TRAVERSALS])
def test_path_traversal(traversal_srv, target, status):
    srv = traversal_srv
    s = srv.connect()
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode("latin-1"))
    resps, closed, _ = read_responses(s, 1)
    assert [r.status for r in resps] == [status], resps
    assert SECRET not in resps[0].body and b"root:" not in resps[0].body
    if status == 400:
        assert resps[0].headers["connection"] == "close"
    else:
        s.sendall(b"GET /s/hello.txt HTTP/1.1\r\nHost: a\r\n\r\n")
        resps, _, _ = read_responses(s, 1)
        assert (resps[0].status, resps[0].body) == (200, b"hello\n")
    s.close()
    srv.check_log()


# ---------------------------------------------------------------- the harness itself

def sanitized_build():
    out = subprocess.run(["ldd", os.path.join(BUILDDIR, "wharf")], capture_output=True, text=True).stdout
    return "libasan" in out or "libubsan" in out


def test_sanitizer_reports_fail_the_test(tmp_path, plugins_env):
    """The harness catches sanitizer reports from workers, both ways they
    arrive: ASan writes report files (ASAN_OPTIONS log_path, set by
    wharfctl) and check_log() fails on any; UBSan, combined with ASan in a
    GCC build, ignores log_path and writes to the server log, where
    check_log() finds "runtime error:".  The fixture's GET /asan (a heap
    over-read) and GET /ub (a signed overflow) trigger one each; in a plain
    build they just answer.  (The server is not the `wharf` fixture's: its
    end-of-test check would rightly fail on these reports.)"""
    srv = Wharf(tmp_path, env=plugins_env, options={"processes": 1, "plugin": "hostile"})
    srv.start()
    try:
        if not sanitized_build():
            for path in ("/asan", "/ub"):
                assert requests.get(srv.url + path, timeout=2).status_code == 200
            srv.check_log()
            return
        with pytest.raises(requests.RequestException):
            requests.get(srv.url + "/asan", timeout=5)
        reports = wait_for(srv.sanitizer_reports, what="an ASan report file")
        wait_for(lambda: "heap-buffer-overflow" in open(reports[0]).read(), what="the report's text")
        with pytest.raises(AssertionError, match="sanitizer report"):
            srv.check_log()
        for path in reports:
            os.unlink(path)
        srv.check_log()  # nothing else wrong so far
        wait_for(lambda: requests.get(srv.url + "/x", timeout=1).status_code == 404, what="a new worker")
        with pytest.raises(requests.RequestException):
            requests.get(srv.url + "/ub", timeout=5)
        srv.wait_log(r"runtime error: signed integer overflow")
        with pytest.raises(AssertionError, match="runtime error"):
            srv.check_log()
    finally:
        srv.stop()
        srv.kill_group()


def test_slow_small_body_does_not_block_an_inline_worker(wharf):
    """R.U.D.Y.: with threads = 1 the app runs on the worker's event loop;
    a client that sends a small POST body slowly must not hold it.  The
    body is received on the loop first, so another client is answered
    while it trickles, the slow request is answered once its body is
    complete, and a body that never completes gets 408 after http-timeout."""
    srv = wharf(wsgi_options(threads=1, socket_timeout=30, http_timeout=3))
    slow = srv.connect(timeout=10)
    slow.sendall(b"POST /input/read HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    # the worker is free meanwhile (timeout 2 s, far below socket-timeout 30 s)
    for _ in range(3):
        assert requests.get(srv.url + "/hello", timeout=2).text == "Hello, World!\n"
    slow.sendall(b"defghij")
    resps, _, _ = read_responses(slow, 1)
    assert resps[0].status == 200 and json.loads(resps[0].body)["len"] == 10
    slow.close()

    stuck = srv.connect(timeout=10)
    stuck.sendall(b"POST /input/read HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    assert requests.get(srv.url + "/hello", timeout=2).status_code == 200
    resps, closed, _ = read_responses(stuck, None, timeout=10)
    assert len(resps) == 1
    assert resps[0].status == 408 and closed
    stuck.close()
