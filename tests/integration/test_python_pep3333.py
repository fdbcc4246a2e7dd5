"""PEP 3333 through the real server: environ, start_response, write, the
iterable and its close(), wsgi.input, wsgi.errors, wsgi.file_wrapper, and
what happens when the app fails.  The app is tests/integration/apps/pepapp.py.
"""
import hashlib
import http.client
import json
import time
import os
import socket
import sys

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))
from pyharness import app_options, chunked, conn, get, raw  # noqa: E402
from wharfctl import wait_for  # noqa: E402

# log lines the error tests expect
APP_ERRORS = [r"unhandled exception", r"python failed", r"without calling start_response",
              r"declared Content-Length"]


@pytest.fixture
def record(tmp_path):
    path = tmp_path / "record.txt"
    path.write_text("")
    return path


@pytest.fixture
def srv(wharf, record):
    return wharf(app_options(), env={"PEPAPP_RECORD": str(record)}, allowed_errors=APP_ERRORS)


def env_of(srv, path="/env", **kw):
    r, body = get(srv, path, **kw)
    assert r.status == 200, body
    return r, json.loads(body)


# ------------------------------------------------------------------ environ

def test_environ_cgi_keys_and_types(srv):
    c = conn(srv)
    c.putrequest("GET", "/env?a=1&b=%20x", skip_accept_encoding=True)
    c.putheader("X-Custom", "value one")
    c.putheader("X-Dup", "1")
    c.putheader("X-Dup", "2")
    c.putheader("X_Spoofed", "must not appear")
    c.putheader("Cookie", "a=1")
    c.putheader("Cookie", "b=2")
    c.endheaders()
    r = c.getresponse()
    env = json.loads(r.read())
    c.close()
    val = {k: v[1] for k, v in env.items()}
    typ = {k: v[0] for k, v in env.items()}
    assert val["REQUEST_METHOD"] == "GET"
    assert val["SCRIPT_NAME"] == ""
    assert val["PATH_INFO"] == "/env"
    assert val["QUERY_STRING"] == "a=1&b=%20x"
    assert val["REQUEST_URI"] == "/env?a=1&b=%20x"
    assert val["SERVER_PORT"] == str(srv.port)
    assert val["SERVER_NAME"]
    assert val["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert val["REMOTE_ADDR"] == "127.0.0.1"
    assert val["REMOTE_PORT"].isdigit()
    assert "CONTENT_LENGTH" not in val and "CONTENT_TYPE" not in val
    assert val["HTTP_HOST"] == f"127.0.0.1:{srv.port}"
    assert val["HTTP_X_CUSTOM"] == "value one"
    assert val["HTTP_X_DUP"] == "1,2"
    assert val["HTTP_COOKIE"] == "a=1; b=2"
    assert not any("SPOOFED" in k for k in val), "header names with '_' must be dropped"
    assert val["HTTP_X_REQUEST_ID"] == r.getheader("X-Request-ID")
    # every CGI key is a native str (PEP 3333)
    for k, t in typ.items():
        if "." not in k:
            assert t == "str", (k, t)
    assert env["wsgi.version"] == ["tuple", [1, 0]]
    assert val["wsgi.url_scheme"] == "http"
    assert env["wsgi.input"][1] == "wharf.InputStream"
    assert env["wsgi.errors"][1] == "wharf.ErrorStream"
    assert env["wsgi.file_wrapper"][1] == "builtins.type"
    assert val["wsgi.multithread"] is False and val["wsgi.multiprocess"] is False
    assert val["wsgi.run_once"] is False
    assert val["wsgi.input_terminated"] is True


def test_environ_request_id_from_client(srv):
    _, env = env_of(srv, headers={"X-Request-ID": "abc-123"})
    assert env["HTTP_X_REQUEST_ID"] == ["str", "abc-123"]


def test_environ_body_keys(srv):
    _, env = env_of(srv, method="POST", body=b"hello", headers={"Content-Type": "text/plain"})
    assert env["CONTENT_LENGTH"] == ["str", "5"]
    assert env["CONTENT_TYPE"] == ["str", "text/plain"]
    assert "HTTP_CONTENT_LENGTH" not in env and "HTTP_CONTENT_TYPE" not in env
    # chunked: the length is unknown, so no CONTENT_LENGTH (wsgi.input_terminated)
    _, env = env_of(srv, method="POST", body=chunked([b"he", b"llo"]))
    assert "CONTENT_LENGTH" not in env
    assert env["HTTP_TRANSFER_ENCODING"] == ["str", "chunked"]


def test_environ_path_info_is_latin1_of_decoded_bytes(srv):
    _, env = env_of(srv, "/env/caf%C3%A9%20x?q=%C3%A9")
    assert env["PATH_INFO"][1] == "/env/caf\u00c3\u00a9 x"  # UTF-8 bytes seen as latin-1
    assert env["REQUEST_URI"][1] == "/env/caf%C3%A9%20x?q=%C3%A9"
    assert env["QUERY_STRING"][1] == "q=%C3%A9"


def test_environ_http10(srv):
    out = raw(srv, b"GET /env HTTP/1.0\r\nHost: x\r\n\r\n")
    env = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert env["SERVER_PROTOCOL"] == ["str", "HTTP/1.0"]


def test_environ_multithread_multiprocess(wharf):
    srv = wharf(app_options(processes=2, threads=4))
    _, env = env_of(srv)
    assert env["wsgi.multithread"] == ["bool", True]
    assert env["wsgi.multiprocess"] == ["bool", True]


def test_validator_no_warnings(wharf, tmp_path):
    """The app is wrapped in wsgiref.validate.validator with WSGIWarning
    turned into errors: any complaint would turn into a 500."""
    srv = wharf(app_options("validated"))
    s = requests.Session()
    for path in ["/", "/query?x=1&y=2", "/gen", "/write", "/empty", "/file", "/excinfo"]:
        r = s.get(srv.url + path)
        assert r.status_code == 200, (path, r.text)
    r = s.head(srv.url + "/")
    assert r.status_code == 200 and r.content == b""
    body = b"line 1\nline 2\n" * 1000
    r = s.post(srv.url + "/post", data=body)
    assert r.status_code == 200 and r.json()["md5"] == hashlib.md5(body).hexdigest()
    r = s.post(srv.url + "/post", data=chunked([body[:5000], body[5000:]]))
    assert r.status_code == 200 and r.json()["md5"] == hashlib.md5(body).hexdigest()
    r = s.post(srv.url + "/lines", data=body)
    assert r.status_code == 200 and r.json()["lines"] == 2000
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"]:
        r = s.request(method, srv.url + "/")
        assert r.status_code == 200, method
    assert "Traceback" not in srv.log()


# ------------------------------------------------------------------ start_response, write

def test_write_callable(srv):
    r, body = get(srv, "/write")
    assert r.status == 200 and body == b"one two three"
    r, body = get(srv, "/write-only")
    assert body == b"0\n1\n2\n3\n4\n"
    assert r.getheader("Transfer-Encoding") == "chunked"
    r, body = get(srv, "/write-str")
    assert body.startswith(b"TypeError: ")


def test_exc_info_replaces_headers_before_sending(srv):
    r, body = get(srv, "/excinfo-replace")
    assert r.status == 503 and r.reason == "Handled"
    assert r.getheader("X-Second") == "1" and r.getheader("X-First") is None
    assert body == b"replaced"


def test_exc_info_after_head_reraises_and_cuts(srv, record):
    c = conn(srv)
    c.request("GET", "/excinfo-after-head")
    r = c.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    c.close()
    assert "reraised too late to change the status" in record.read_text()
    srv.wait_log(r"ValueError: too late to change the status")
    assert get(srv, "/hello")[1] == b"Hello, World!\n"


def test_start_response_twice_without_exc_info(srv):
    _, body = get(srv, "/start-twice")
    assert b"second time without exc_info" in body


@pytest.mark.parametrize("kind,exc", [
    ("status-bytes", "TypeError"), ("status-short", "ValueError"), ("status-letters", "ValueError"),
    ("status-crlf", "ValueError"), ("headers-tuple", "TypeError"), ("header-list", "TypeError"),
    ("header-bytes", "TypeError"), ("header-crlf", "ValueError"), ("header-name-space", "ValueError"),
    ("header-name-colon", "ValueError"), ("header-nonlatin", "ValueError"), ("header-hop", "ValueError"),
    ("header-cl", "ValueError"),
])
def test_start_response_validates(srv, kind, exc):
    r, body = get(srv, "/bad-start?kind=" + kind)
    assert r.status == 200
    assert json.loads(body)["exc"] == exc
    assert r.getheader("X-Unexpected") is None


def test_status_reason_and_latin1_header(srv):
    r, _ = get(srv, "/custom-reason")
    assert r.status == 299 and r.reason == "Quite Fine"
    out = raw(srv, b"GET /latin1-header HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"\r\nX-Latin: caf\xe9\r\n" in out


def test_connection_close_from_app_is_honoured(srv):
    out = raw(srv, b"GET /connection-close HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close" in out and out.endswith(b"bye")


def test_app_without_start_response(srv):
    r, body = get(srv, "/no-start")
    assert r.status == 500
    r, body = get(srv, "/no-start-empty")
    assert r.status == 500
    srv.wait_log("without calling start_response")


# ------------------------------------------------------------------ the iterable

def test_iterable_of_chunks_is_chunked_and_closed(srv, record):
    r, body = get(srv, "/chunks?tag=c1")
    assert body == b"a" * 10 + b"b" * 20 + b"c" * 30
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert "close c1" in record.read_text()


def test_generators(srv):
    r, body = get(srv, "/gen?n=4")
    assert body == b"chunk 0\nchunk 1\nchunk 2\nchunk 3\n"
    assert r.getheader("Transfer-Encoding") == "chunked"
    r, body = get(srv, "/gen-empty")
    assert r.status == 200 and body == b"" and r.getheader("Content-Length") == "0"


def test_streaming_is_not_buffered(srv):
    """Each chunk reaches the client before the app produces the next
    (the generator sleeps 0.2 s between chunks)."""
    import time
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GET /gen-slow HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    got = b""
    while b"tick 0\n" not in got:
        got += s.recv(4096)
    assert b"tick 1" not in got, "the first chunk must not wait for the next one"
    while not got.endswith(b"0\r\n\r\n"):
        got += s.recv(4096)
    assert time.monotonic() - t0 >= 0.4
    assert b"Transfer-Encoding: chunked" in got and b"tick 2\n" in got
    s.close()


@pytest.mark.parametrize("path,body", [("/empty", b""), ("/empty-bytes", b""), ("/tuple", b"tuple"),
                                       ("/hello", b"Hello, World!\n")])
def test_sequences_get_content_length(srv, path, body):
    r, data = get(srv, path)
    assert data == body
    assert r.getheader("Content-Length") == str(len(body))
    assert r.getheader("Transfer-Encoding") is None


def test_many_chunks_in_a_list(srv):
    r, data = get(srv, "/many")
    assert data == b"".join(b"%04d\n" % i for i in range(300))
    assert r.getheader("Content-Length") == str(len(data))


def test_keep_alive_reuses_the_connection(srv):
    c = conn(srv)
    for path in ["/hello", "/empty", "/gen", "/tuple", "/write"] * 3:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        assert r.status == 200
        assert not r.will_close
    c.close()


def test_head(srv, record):
    r, data = get(srv, "/hello", method="HEAD")
    assert r.status == 200 and data == b"" and r.getheader("Content-Length") == "14"
    r, data = get(srv, "/gen", method="HEAD")
    assert r.status == 200 and data == b""
    r, data = get(srv, "/close-head?tag=h1", method="HEAD")
    assert data == b""
    # a HEAD response is complete once its head is out, maybe before close()
    wait_for(lambda: "close h1" in record.read_text(), 5, what="close() of the HEAD iterable")
    # HEAD responses on a kept-alive connection leave it usable
    c = conn(srv)
    for _ in range(3):
        c.request("HEAD", "/chunks")
        r = c.getresponse()
        assert r.read() == b""
    c.request("GET", "/hello")
    assert c.getresponse().read() == b"Hello, World!\n"
    c.close()


def test_bodyless_statuses(srv):
    r, data = get(srv, "/no-content")
    assert r.status == 204 and data == b"" and r.getheader("Content-Length") is None
    r, data = get(srv, "/not-modified")
    assert r.status == 304 and data == b"" and r.getheader("ETag") == '"x"'


def test_close_called_even_on_errors(srv, record):
    r, _ = get(srv, "/close?tag=ok")
    assert r.status == 200
    # the iterable fails before any body: 500, and close() still runs
    r, _ = get(srv, "/close-error?tag=e0&at=0")
    assert r.status == 500
    # it fails after the first chunk: the head is out, the response is cut
    c = conn(srv)
    c.request("GET", "/close-error?tag=e1&at=1")
    r = c.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    c.close()
    text = record.read_text()
    assert "close ok" in text and "close e0" in text and "close e1" in text


# ------------------------------------------------------------------ app errors

def test_exception_gives_500_traceback_and_worker_survives(srv):
    pid = get(srv, "/whoami")[1]
    r, body = get(srv, "/error")
    assert r.status == 500 and body == b"Internal Server Error\n"
    srv.wait_log(r"ZeroDivisionError: the app divided by zero on purpose")
    log = srv.log()
    assert "Traceback (most recent call last):" in log
    assert 'pepapp.py", line' in log
    assert json.loads(get(srv, "/whoami")[1])["pid"] == json.loads(pid)["pid"]


@pytest.mark.parametrize("path,what", [("/sysexit", "SystemExit: 3"), ("/kbint", "KeyboardInterrupt")])
def test_sysexit_and_keyboardinterrupt_do_not_kill_the_worker(srv, path, what):
    before = json.loads(get(srv, "/whoami")[1])["pid"]
    r, _ = get(srv, path)
    assert r.status == 500
    srv.wait_log(what)
    assert json.loads(get(srv, "/whoami")[1])["pid"] == before
    assert "died" not in srv.log()


@pytest.mark.parametrize("path,msg", [("/str-body", "a WSGI body is bytes"),
                                      ("/bytes-result", "returned bytes"),
                                      ("/none-result", "returned None"),
                                      ("/error-before-first", "fails before its first chunk")])
def test_bad_results_give_500(srv, path, msg):
    r, _ = get(srv, path)
    assert r.status == 500
    srv.wait_log(msg)
    assert get(srv, "/hello")[0].status == 200


def test_error_after_head_cuts_the_connection(srv):
    c = conn(srv)
    c.request("GET", "/error-in-gen")
    r = c.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    c.close()
    srv.wait_log("the generator fails after the head")
    assert get(srv, "/hello")[0].status == 200


def test_content_length_mismatch(srv):
    c = conn(srv)
    c.request("GET", "/cl-short")
    r = c.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    c.close()
    r, body = get(srv, "/cl-over")
    assert body == b"abc"
    srv.wait_log("more than its Content-Length")


def test_wsgi_errors_goes_to_the_log_line_buffered(srv):
    get(srv, "/errors?id=e1")
    srv.wait_log("errors-unterminated")
    log = srv.log()
    assert "errors-line-1 from e1\n" in log
    assert "errors-partial continued\n" in log
    assert "errors-line-3\n" in log


# ------------------------------------------------------------------ wsgi.input

BODY = b"".join(b"line %05d %s\n" % (i, b"x" * (i % 50)) for i in range(3000))


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_input_read_all(srv, framing):
    body = BODY if framing == "length" else chunked([BODY[i:i + 7000] for i in range(0, len(BODY), 7000)])
    for path in ["/input/read", "/input/read-none"]:
        r, data = get(srv, path, method="POST", body=body if framing == "length" else
                      chunked([BODY[i:i + 7000] for i in range(0, len(BODY), 7000)]))
        d = json.loads(data)
        assert d["len"] == len(BODY) and d["md5"] == hashlib.md5(BODY).hexdigest(), path


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_input_read_n_returns_n_until_the_end(srv, framing):
    body = b"z" * 10000
    if framing == "chunked":
        body = chunked([b"z" * 333] * 30 + [b"z" * 10])
    _, data = get(srv, "/input/read-n?n=1000", method="POST", body=body)
    d = json.loads(data)
    assert d["len"] == 10000 and d["reads"] == 10 and d["sizes"] == [1000]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_input_readline_iter_readlines(srv, framing):
    def body():
        return BODY if framing == "length" else chunked([BODY[i:i + 4095] for i in range(0, len(BODY), 4095)])
    d = json.loads(get(srv, "/input/readline", method="POST", body=body())[1])
    assert d["lines"] == 3000 and d["md5"] == hashlib.md5(BODY).hexdigest()
    assert d["first"] == "line 00000 \n"
    d = json.loads(get(srv, "/input/iter", method="POST", body=body())[1])
    assert d["lines"] == 3000 and d["md5"] == hashlib.md5(BODY).hexdigest()
    d = json.loads(get(srv, "/input/readlines", method="POST", body=body())[1])
    assert d["lines"] == 3000 and d["rest"] == 0
    d = json.loads(get(srv, "/input/readlines?hint=100", method="POST", body=body())[1])
    assert 1 <= d["lines"] < 3000 and d["md5"] == hashlib.md5(BODY).hexdigest()


def test_input_readline_limit_and_mixed(srv):
    d = json.loads(get(srv, "/input/readline-limit?n=4", method="POST", body=b"abcdefghij\nxy\n")[1])
    assert d["parts"] == ["abcd", "efgh", "ij\n", "xy\n"]
    d = json.loads(get(srv, "/input/mixed?n=3", method="POST", body=b"first line\nabcdefg")[1])
    assert d == {"first": "first line\n", "rest": "abc", "tail": "defg"}


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_input_never_reads_past_the_body(srv, framing):
    body = b"q" * 5000 if framing == "length" else chunked([b"q" * 2500, b"q" * 2500])
    c = conn(srv)
    c.request("POST", "/input/overread", body=body, headers={"Content-Length": "5000"}
              if framing == "length" else {})
    d = json.loads(c.getresponse().read())
    assert d == {"a": 5000, "b": 0, "c": 0}
    # the connection is still in sync for the next request
    c.request("GET", "/hello")
    assert c.getresponse().read() == b"Hello, World!\n"
    c.close()


def test_chunked_body_in_several_reads_keeps_the_connection_in_sync(srv):
    """A chunked body that reaches the server in pieces, a big one first and
    a small one later: after the response the connection must carry the
    next request, not leftovers of the body (regression: a stale buffer
    length made the worker parse old body bytes as a request)."""
    s = srv.connect()
    s.sendall(b"POST /input/overread HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"fa0\r\n" + b"q" * 4000 + b"\r\n")
    time.sleep(0.3)  # traffic shaping: the rest arrives in a later read
    s.sendall(b"5\r\nqqqqq\r\n0\r\n\r\n")
    f = s.makefile("rb")
    status = f.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    assert json.loads(f.read(length)) == {"a": 4005, "b": 0, "c": 0}
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert f.readline().startswith(b"HTTP/1.1 200")
    s.close()


def test_input_empty_body(srv):
    d = json.loads(get(srv, "/input/read", method="POST", body=b"")[1])
    assert d["len"] == 0
    d = json.loads(get(srv, "/input/read")[1])
    assert d["len"] == 0


def test_input_unread_body_and_keep_alive(srv):
    c = conn(srv)
    c.request("POST", "/input/ignore", body=b"x" * 3000)
    assert c.getresponse().read() == b"did not read the body"
    c.request("GET", "/hello")
    assert c.getresponse().read() == b"Hello, World!\n"
    c.close()


def test_input_used_after_the_request_raises(srv):
    get(srv, "/input/keep", method="POST", body=b"abc")
    wait_for(lambda: json.loads(get(srv, "/input/kept")[1])["exc"], 5, what="the kept input to be cut loose")
    d = json.loads(get(srv, "/input/kept")[1])
    assert d["exc"] == "ValueError" and "after its request ended" in d["msg"]


def test_input_10mb_chunked_upload_md5(srv):
    chunk = os.urandom(1 << 20)
    parts = [chunk[i:] + chunk[:i] for i in range(10)]
    expect = hashlib.md5(b"".join(parts)).hexdigest()
    r = requests.post(srv.url + "/input/md5-stream", data=chunked(parts))
    assert r.status_code == 200
    assert r.json() == {"len": 10 << 20, "md5": expect}
    r = requests.post(srv.url + "/input/read", data=chunked(parts))
    assert r.json() == {"len": 10 << 20, "md5": expect}


def test_echo_large_body_with_content_length(srv):
    body = os.urandom(3 << 20)
    r = requests.post(srv.url + "/echo", data=body)
    assert r.content == body


# ------------------------------------------------------------------ wsgi.file_wrapper

@pytest.fixture
def datafile(tmp_path):
    p = tmp_path / "data.bin"
    p.write_bytes(os.urandom(300_000))
    return p


def test_file_wrapper_real_file_uses_sendfile(srv, datafile):
    data = datafile.read_bytes()
    r, body = get(srv, f"/file?path={datafile}")
    assert body == data
    assert r.getheader("Content-Length") == str(len(data))  # known size: no chunking
    # from the file's logical position (after a buffered read)
    r, body = get(srv, f"/file?path={datafile}&skip=1000")
    assert body == data[1000:] and r.getheader("Content-Length") == str(len(data) - 1000)
    r, body = get(srv, f"/file?path={datafile}&cl={len(data)}", method="HEAD")
    assert body == b"" and r.getheader("Content-Length") == str(len(data))


def test_file_wrapper_sendfile_strace_free_check(srv, datafile):
    """Kept-alive connection after sendfile responses stays in sync."""
    data = datafile.read_bytes()
    c = conn(srv)
    for _ in range(3):
        c.request("GET", f"/file?path={datafile}")
        assert c.getresponse().read() == data
    c.request("GET", "/hello")
    assert c.getresponse().read() == b"Hello, World!\n"
    c.close()


def test_file_wrapper_bytesio_and_close(srv, record, datafile):
    r, body = get(srv, "/file-bytesio")
    assert body == bytes(range(256)) * 1000
    r, body = get(srv, "/file-close?tag=f1")
    assert body == b"tracked file"
    r, body = get(srv, f"/file-real-close?tag=f2&path={datafile}")
    assert body == datafile.read_bytes()
    # close() runs once the file has been handed to the socket; the client
    # may have every byte a moment before that
    wait_for(lambda: "close realfile f2" in record.read_text(), 5, what="close() of the real file")
    assert "close filelike f1" in record.read_text()
