"""Behaviour the performance work must keep (tests/bench): small list
bodies written after the app returns, Content-Length mismatches on them,
response heads larger than the stack buffer, connections that go idle and
come back (their read buffer is returned and taken again), pipelined
requests while the app runs inline or on app threads (the loop mutes a
connection only when it gets an event), many idle keep-alive connections
next to busy ones, and access lines written in batches (none lost, in
order, before later error lines, times formatted once a second)."""
import http.client
import os
import re
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))
from pyharness import app_options, conn, get  # noqa: E402
from wharfctl import wait_for  # noqa: E402

ERRORS = [r"declared Content-Length", r"python failed"]


@pytest.fixture
def srv(wharf):
    return wharf(app_options("fastapp"), allowed_errors=ERRORS)


@pytest.fixture
def threaded(wharf):
    return wharf(app_options("fastapp", threads=4), allowed_errors=ERRORS)


def read_response(f):
    """One response from a socket file: (status line, headers, body)."""
    status = f.readline()
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body


def test_small_list_and_tuple_bodies_keep_alive(srv):
    c = conn(srv)
    for path, body in [("/small", b"small body"), ("/tuple", b"tuple"), ("/big", bytes(range(256)) * 256),
                       ("/small", b"small body")]:
        c.request("GET", path)
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("Content-Length") == str(len(body))  # known: no chunking
        assert r.read() == body
    c.close()


def test_head_of_a_small_list_body(srv):
    c = conn(srv)
    c.request("HEAD", "/small")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "10"
    assert r.read() == b""
    c.request("GET", "/tuple")  # the connection is still in sync
    assert c.getresponse().read() == b"tuple"
    c.close()


def test_no_content_has_no_body(srv):
    c = conn(srv)
    c.request("GET", "/empty")
    r = c.getresponse()
    assert r.status == 204 and r.read() == b""
    c.request("GET", "/small")
    assert c.getresponse().read() == b"small body"
    c.close()


def test_list_body_shorter_than_its_content_length_cuts_the_connection(srv):
    c = conn(srv)
    c.request("GET", "/short")
    r = c.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead) as e:
        r.read()
    assert e.value.partial == b"short"
    c.close()
    srv.wait_log(r"declared Content-Length 100 but sent 5 bytes; closing the connection")


def test_list_body_longer_than_its_content_length_is_cut_to_it(srv):
    c = conn(srv)
    c.request("GET", "/over")
    r = c.getresponse()
    assert r.read() == b"abcd"
    c.request("GET", "/small")  # exactly Content-Length went out: still in sync
    assert c.getresponse().read() == b"small body"
    c.close()
    srv.wait_log(r"more than its Content-Length \(4\); the excess is dropped")


def test_head_larger_than_the_stack_buffer(srv):
    r, body = get(srv, "/long-head")
    assert r.status == 299 and r.reason == "R" * 250
    assert body == b"after a long head"
    for i in range(60):
        assert r.getheader("X-Filler-%02d" % i) == "v" * 40


@pytest.mark.parametrize("mode", ["inline", "threads"])
def test_pipelined_requests_answered_in_order(request, mode):
    server = request.getfixturevalue("srv" if mode == "inline" else "threaded")
    s = server.connect()
    # the second and third arrive while the first is with the app
    s.sendall(b"GET /slow/one?0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /slow/three?0.05 HTTP/1.1\r\nHost: x\r\n\r\n")
    f = s.makefile("rb")
    bodies = [read_response(f)[2] for _ in range(3)]
    assert bodies == [b"/slow/one", b"/two", b"/slow/three"]
    s.sendall(b"GET /four HTTP/1.1\r\nHost: x\r\n\r\n")  # and the connection goes on
    assert read_response(f)[2] == b"/four"
    s.close()


def test_idle_connections_come_back(srv):
    """Connections that went idle (and gave their read buffer back) serve
    their next request, also one that arrives in pieces around others."""
    socks = [srv.connect() for _ in range(40)]
    files = [s.makefile("rb") for s in socks]
    for i, s in enumerate(socks):
        s.sendall(b"GET /first/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        assert read_response(files[i])[2] == b"/first/%d" % i
    # half a head on one idle connection, full requests on the others
    socks[0].sendall(b"GET /split HTTP/1.1\r\nHo")
    for i in reversed(range(1, 40)):
        socks[i].sendall(b"GET /second/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        assert read_response(files[i])[2] == b"/second/%d" % i
    socks[0].sendall(b"st: x\r\n\r\n")
    assert read_response(files[0])[2] == b"/split"
    for s in socks:
        s.close()


def test_many_idle_keepalive_connections_beside_busy_ones(srv):
    idle = []
    try:
        for i in range(300):
            s = srv.connect()
            s.sendall(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
            idle.append((s, s.makefile("rb")))
        for s, f in idle:
            assert read_response(f)[2] == b"/idle"
        c = conn(srv)
        for i in range(200):
            c.request("GET", "/busy")
            assert c.getresponse().read() == b"/busy"
        c.close()
        for s, f in idle[::-1][:50]:  # and the idle ones still work
            s.sendall(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(f)[2] == b"/again"
    finally:
        for s, _ in idle:
            s.close()


# ------------------------------------------------------------------ access log
# Lines are written in batches (once per loop turn, before other log lines).

ACCESS = re.compile(r'^127\.0\.0\.1 - - \[[^]]+\] "(\w+) (\S+) HTTP/1\.1" (\d+) ')


def access_lines(srv):
    return [m.groups() for m in map(ACCESS.match, srv.log().splitlines()) if m]


def test_every_request_gets_its_access_line_in_order(wharf):
    srv = wharf(app_options("fastapp"))
    c = conn(srv)
    for i in range(300):
        c.request("GET", "/n/%d" % i)
        assert c.getresponse().read() == b"/n/%d" % i
    c.close()
    # no further traffic is needed for the last lines to appear
    wait_for(lambda: len(access_lines(srv)) == 300, what="300 access lines")
    assert [uri for _, uri, _ in access_lines(srv)] == ["/n/%d" % i for i in range(300)]


def test_access_lines_come_before_a_later_error(wharf):
    srv = wharf(app_options("fastapp"), allowed_errors=[r"unhandled exception"])
    c = conn(srv)
    c.request("GET", "/before")
    assert c.getresponse().read() == b"/before"
    c.request("GET", "/raise")
    assert c.getresponse().status == 500
    c.close()
    srv.wait_log(r'"GET /raise HTTP/1\.1" 500')
    log = srv.log()
    assert log.index('"GET /before HTTP/1.1" 200') < log.index("fastapp raises on purpose")


def test_log_format_times_and_numbers(wharf):
    srv = wharf(app_options("fastapp", log_format="L=[%(ltime)] I=%(iso) C=%(ctime) E=%(epoch) "
                                                  "S=%(status) Z=%(size) M=%(method) U=%(uri)"))
    before = int(time.time())
    get(srv, "/small")
    get(srv, "/tuple")
    line = srv.wait_log(r"U=/tuple") and [l for l in srv.log().splitlines() if "U=/tuple" in l][0]
    m = re.search(r"L=\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
                  r"I=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}) "
                  r"C=(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) E=(\d+) S=200 Z=5 M=GET U=/tuple$", line)
    assert m, line
    assert before <= int(m.group(4)) <= int(time.time())
    small = [l for l in srv.log().splitlines() if "U=/small" in l][0]
    assert "S=200 Z=10 M=GET" in small
