"""Static files (plugins/static): what a client sees.

Raw sockets where the client library would normalise the request (paths
with dot segments, encoded bytes) or hide the response (gzip bodies,
bodies of HEAD/304); `requests` elsewhere.  No app is configured, so
whatever the static plugin declines is answered 404 by the core.
"""
import email.utils
import gzip
import os
import socket
import threading
import time

import pytest
import requests

from wharfctl import free_port, wait_for

SECRET = b"TOP-SECRET-0xdeadbeef"
MIB = 1024 * 1024


# ------------------------------------------------------------------ helpers

class Resp:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> list of values
        self.body = body

    def h(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def __repr__(self):
        return f"<Resp {self.status} {self.headers} {self.body[:80]!r}>"


def read_response(f, head=False):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed before a response")
    version, status, *reason = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    assert version == "HTTP/1.1", line
    headers = {}
    while True:
        line = f.readline().decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        name, value = line.split(":", 1)
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    status = int(status)
    body = b""
    if not head and status not in (204, 304) and status >= 200:
        if "content-length" in headers:
            body = f.read(int(headers["content-length"][0]))
        elif headers.get("transfer-encoding") == ["chunked"]:
            while True:
                size = int(f.readline().split(b";")[0], 16)
                if size == 0:
                    f.readline()
                    break
                body += f.read(size)
                f.readline()
        else:
            body = f.read()
    return Resp(status, reason[0] if reason else "", headers, body)


class Conn:
    """One keep-alive connection speaking raw HTTP/1.1."""

    def __init__(self, srv, timeout=10):
        self.sock = srv.connect(timeout=timeout)
        self.f = self.sock.makefile("rb")

    def request(self, target, method="GET", headers=(), raw=None):
        if raw is None:
            lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
            lines += [f"{k}: {v}" for k, v in headers]
            raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(raw)
        return read_response(self.f, head=(method == "HEAD"))

    def close(self):
        self.f.close()
        self.sock.close()


def get(srv, target, method="GET", headers=()):
    """One request on a fresh connection (target sent byte for byte)."""
    c = Conn(srv)
    try:
        return c.request(target, method, headers)
    finally:
        c.close()


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def etag_of(path):
    st = os.stat(path)
    return '"%x-%x"' % (int(st.st_mtime), st.st_size)


# ------------------------------------------------------------------ fixtures

@pytest.fixture
def site(tmp_path):
    """A document root with every kind of file the tests need, a secret
    outside it, and a directory listed in static-safe."""
    www = tmp_path / "www"
    (www / "sub").mkdir(parents=True)
    (www / "nodex").mkdir()
    (www / "gz").mkdir()
    (www / ".git").mkdir()
    (www / "hello.txt").write_bytes(b"hello\n")
    (www / "64k.bin").write_bytes(os.urandom(64 * 1024))
    (www / "1m.bin").write_bytes(os.urandom(MIB))
    (www / "style.css").write_bytes(b"body { color: red }\n")
    (www / "app.js").write_bytes(b"console.log(1)\n")
    (www / "data.json").write_bytes(b'{"a": 1}\n')
    (www / "icon.svg").write_bytes(b"<svg/>\n")
    (www / "font.woff2").write_bytes(b"wOF2....")
    (www / "blob.zzunknown").write_bytes(b"??")
    (www / "README").write_bytes(b"read me\n")
    (www / "empty.txt").write_bytes(b"")
    (www / "secret.py").write_bytes(b"PASSWORD = 1\n")
    (www / "sub" / "index.html").write_bytes(b"<h1>sub index</h1>\n")
    (www / "nodex" / "file.txt").write_bytes(b"in nodex\n")
    (www / ".git" / "config").write_bytes(b"[core]\n")
    js = b"function f() { return 42 }\n" * 50
    (www / "gz" / "app.js").write_bytes(js)
    (www / "gz" / "app.js.gz").write_bytes(gzip.compress(js))
    (www / "gz" / "app.js.br").write_bytes(b"BROTLI-BYTES-FOR-TEST")
    (www / "gz" / "style.css").write_bytes(b"a{}" * 100)
    (www / "gz" / "style.css.gz").write_bytes(gzip.compress(b"a{}" * 100))
    (www / "gz" / "plain.txt").write_bytes(b"no sibling\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET + b"\n")
    safe = tmp_path / "safe"
    safe.mkdir()
    (safe / "ok.txt").write_bytes(b"from the safe dir\n")
    os.symlink(outside / "secret.txt", www / "out-link.txt")
    os.symlink(outside, www / "dirlink")
    os.symlink(safe / "ok.txt", www / "safe-link.txt")
    os.symlink(www / "secret.py", www / "innocent.txt")
    os.symlink("hello.txt", www / "rel-link.txt")
    return tmp_path


def opts(site, *extra, **kw):
    o = [("processes", 1), ("static-map", f"/s={site / 'www'}")]
    o += list(extra)
    return o


# ------------------------------------------------------------------ basics

@pytest.mark.parametrize("name", ["64k.bin", "1m.bin", "hello.txt"])
def test_file_is_served_byte_exact(wharf, site, name):
    srv = wharf(opts(site))
    path = site / "www" / name
    r = requests.get(f"{srv.url}/s/{name}", timeout=10)
    assert r.status_code == 200
    assert r.content == path.read_bytes()
    assert r.headers["Content-Length"] == str(path.stat().st_size)
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"] == etag_of(path)
    assert r.headers["Last-Modified"] == http_date(int(path.stat().st_mtime))
    # the same through a raw socket: nothing but the file follows the head
    raw = get(srv, f"/s/{name}")
    assert raw.status == 200 and raw.body == path.read_bytes()


def test_query_string_is_not_part_of_the_file_name(wharf, site):
    srv = wharf(opts(site))
    r = get(srv, "/s/hello.txt?v=3f2a&x=%2e%2e")
    assert r.status == 200 and r.body == b"hello\n"


def test_http10_client(wharf, site):
    srv = wharf(opts(site))
    s = srv.connect()
    s.sendall(b"GET /s/64k.bin HTTP/1.0\r\n\r\n")
    f = s.makefile("rb")
    r = read_response(f)
    assert r.status == 200 and r.body == (site / "www" / "64k.bin").read_bytes()
    assert f.read() == b""  # and the connection is closed after it
    s.close()


def test_empty_file(wharf, site):
    srv = wharf(opts(site))
    r = get(srv, "/s/empty.txt")
    assert r.status == 200 and r.body == b"" and r.h("content-length") == "0"


def test_head_has_get_headers_and_no_body(wharf, site):
    srv = wharf(opts(site))
    c = Conn(srv)
    g = c.request("/s/1m.bin")
    h = c.request("/s/1m.bin", method="HEAD")
    assert h.status == 200 and h.body == b""
    for name in ("content-length", "content-type", "etag", "last-modified", "accept-ranges"):
        assert h.h(name) == g.h(name), name
    # had the HEAD response carried a body, this would read garbage
    again = c.request("/s/hello.txt")
    assert again.status == 200 and again.body == b"hello\n"
    c.close()


@pytest.mark.parametrize("name,ctype", [
    ("style.css", "text/css"),
    ("app.js", "text/javascript"),
    ("data.json", "application/json"),
    ("icon.svg", "image/svg+xml"),
    ("font.woff2", "font/woff2"),
    ("hello.txt", "text/plain"),
    ("sub/index.html", "text/html"),
    ("blob.zzunknown", "application/octet-stream"),
    ("README", "application/octet-stream"),
])
def test_content_type_by_extension(wharf, site, name, ctype):
    srv = wharf(opts(site))
    r = requests.get(f"{srv.url}/s/{name}", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == ctype  # no invented charset


def test_mime_file_option(wharf, site, tmp_path):
    types = tmp_path / "my.types"
    types.write_text("# ours\ntext/x-zz\tzzunknown\napplication/x-mine css\n")
    srv = wharf(opts(site, ("mime-file", str(types))))
    assert requests.get(f"{srv.url}/s/blob.zzunknown", timeout=10).headers["Content-Type"] == "text/x-zz"
    assert requests.get(f"{srv.url}/s/style.css", timeout=10).headers["Content-Type"] == "application/x-mine"
    # types the file does not name come from the built-in table
    assert requests.get(f"{srv.url}/s/font.woff2", timeout=10).headers["Content-Type"] == "font/woff2"


def test_dotfiles_are_just_files(wharf, site):
    srv = wharf(opts(site))
    r = get(srv, "/s/.git/config")
    assert r.status == 200 and r.body == b"[core]\n"


def test_relative_symlink_inside_root(wharf, site):
    srv = wharf(opts(site))
    r = get(srv, "/s/rel-link.txt")
    assert r.status == 200 and r.body == b"hello\n"


# ------------------------------------------------------------------ conditional requests

def test_if_none_match(wharf, site):
    srv = wharf(opts(site))
    tag = etag_of(site / "www" / "hello.txt")
    c = Conn(srv)
    for value in (tag, "W/" + tag, f'"nope", {tag}', "*"):
        r = c.request("/s/hello.txt", headers=[("If-None-Match", value)])
        assert r.status == 304, value
        assert r.body == b""
        assert r.h("etag") == tag
        assert r.h("content-length") is None
    for value in ('"nope"', tag[:-2] + '"', "W/" + tag[:-2] + '"'):
        r = c.request("/s/hello.txt", headers=[("If-None-Match", value)])
        assert r.status == 200 and r.body == b"hello\n", value
    c.close()


def test_if_modified_since(wharf, site):
    srv = wharf(opts(site))
    path = site / "www" / "hello.txt"
    mtime = int(path.stat().st_mtime)
    c = Conn(srv)
    for when in (mtime, mtime + 3600):
        r = c.request("/s/hello.txt", headers=[("If-Modified-Since", http_date(when))])
        assert r.status == 304 and r.body == b""
    # the obsolete date forms are accepted too (RFC 9110 5.6.7)
    asctime = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(mtime))
    r = c.request("/s/hello.txt", headers=[("If-Modified-Since", asctime)])
    assert r.status == 304
    for value in (http_date(mtime - 1), "not a date", ""):
        r = c.request("/s/hello.txt", headers=[("If-Modified-Since", value)])
        assert r.status == 200 and r.body == b"hello\n", value
    c.close()


def test_if_none_match_takes_precedence(wharf, site):
    srv = wharf(opts(site))
    mtime = int((site / "www" / "hello.txt").stat().st_mtime)
    r = get(srv, "/s/hello.txt", headers=[("If-None-Match", '"other"'),
                                          ("If-Modified-Since", http_date(mtime + 10))])
    assert r.status == 200 and r.body == b"hello\n"


def test_304_after_a_modification_is_200(wharf, site):
    srv = wharf(opts(site))
    path = site / "www" / "hello.txt"
    old = etag_of(path)
    path.write_bytes(b"hello, changed\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    # the cache trusts an entry for static-cache-paths (1 s), then stats it
    r = wait_for(lambda: (lambda x: x if x.status == 200 else None)(
        get(srv, "/s/hello.txt", headers=[("If-None-Match", old)])), timeout=10,
        what="the modified file to be served")
    assert r.body == b"hello, changed\n"
    assert r.h("etag") == etag_of(path) != old


# ------------------------------------------------------------------ ranges

def test_ranges(wharf, site):
    srv = wharf(opts(site))
    data = (site / "www" / "64k.bin").read_bytes()
    size = len(data)
    c = Conn(srv)
    cases = [
        ("bytes=0-0", 0, 0),                      # first byte
        (f"bytes={size - 1}-{size - 1}", size - 1, size - 1),  # last byte
        ("bytes=-1", size - 1, size - 1),         # suffix: last byte
        ("bytes=-100", size - 100, size - 1),     # suffix
        ("bytes=1000-", 1000, size - 1),          # open-ended
        ("bytes=10-19", 10, 19),
        (f"bytes=100-{size * 10}", 100, size - 1),  # end clamped
        (f"bytes=-{size * 2}", 0, size - 1),      # suffix longer than the file
    ]
    for value, first, last in cases:
        r = c.request("/s/64k.bin", headers=[("Range", value)])
        assert r.status == 206, value
        assert r.h("content-range") == f"bytes {first}-{last}/{size}", value
        assert r.h("content-length") == str(last - first + 1)
        assert r.body == data[first:last + 1], value
    for value in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"):
        r = c.request("/s/64k.bin", headers=[("Range", value)])
        assert r.status == 416, value
        assert r.h("content-range") == f"bytes */{size}"
        assert r.body == b""
    # ignored: bad syntax, another unit, several ranges -> the whole file
    for value in ("bytes=5-2", "bytes=abc", "bytes=", "pages=1-2", "bytes=0-1,5-6", "bytes 0-1"):
        r = c.request("/s/64k.bin", headers=[("Range", value)])
        assert r.status == 200, value
        assert r.body == data and r.h("content-range") is None
    # HEAD with a range: the 206 head, no body
    r = c.request("/s/64k.bin", method="HEAD", headers=[("Range", "bytes=0-9")])
    assert r.status == 206 and r.h("content-length") == "10" and r.body == b""
    r = c.request("/s/hello.txt")
    assert r.body == b"hello\n"  # the connection is still in step
    c.close()


def test_range_on_an_empty_file_is_unsatisfiable(wharf, site):
    srv = wharf(opts(site))
    r = get(srv, "/s/empty.txt", headers=[("Range", "bytes=0-")])
    assert r.status == 416 and r.h("content-range") == "bytes */0"


def test_if_range(wharf, site):
    srv = wharf(opts(site))
    path = site / "www" / "64k.bin"
    data = path.read_bytes()
    tag, mtime = etag_of(path), int(path.stat().st_mtime)
    c = Conn(srv)
    for validator in (tag, http_date(mtime)):
        r = c.request("/s/64k.bin", headers=[("Range", "bytes=0-9"), ("If-Range", validator)])
        assert r.status == 206 and r.body == data[:10], validator
    for validator in ('"other"', "W/" + tag, http_date(mtime - 10), http_date(mtime + 10)):
        r = c.request("/s/64k.bin", headers=[("Range", "bytes=0-9"), ("If-Range", validator)])
        assert r.status == 200 and r.body == data, validator
    c.close()


# ------------------------------------------------------------------ traversal

# (raw request-target, expected status): 403 refused by the static plugin,
# 404 nothing there (falls through; no app), 400 refused by the parser.
TRAVERSALS = [
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


@pytest.mark.parametrize("target,status", TRAVERSALS, ids=[t for t, _ in TRAVERSALS])
def test_traversal_is_refused(wharf, site, target, status):
    srv = wharf(opts(site))
    c = Conn(srv)
    r = c.request(target)
    assert r.status == status, r
    assert SECRET not in r.body and b"root:" not in r.body
    if status != 400:
        # refused or not, the connection goes on serving
        assert c.request("/s/hello.txt").body == b"hello\n"
    c.close()


def test_traversal_refusals_are_logged_safely(wharf, site):
    srv = wharf(opts(site))
    assert get(srv, "/s/%2e%2e/x%0aFAKE-LOG-LINE").status == 403
    assert get(srv, "/s/out-link.txt").status == 403
    srv.wait_log(r"static: refused /s/\.\./x\\x0aFAKE-LOG-LINE: '\.\.' in the path")
    srv.wait_log(r"static: refused /s/out-link\.txt: it resolves to .*/outside/secret\.txt")
    assert "\nFAKE-LOG-LINE" not in srv.log()


def test_symlink_into_static_safe_is_served(wharf, site):
    srv = wharf(opts(site, ("static-safe", str(site / "safe"))))
    r = get(srv, "/s/safe-link.txt")
    assert r.status == 200 and r.body == b"from the safe dir\n"
    r = get(srv, "/s/out-link.txt")  # not listed: still refused
    assert r.status == 403 and SECRET not in r.body


def test_symlink_into_safe_refused_without_static_safe(wharf, site):
    srv = wharf(opts(site))
    r = get(srv, "/s/safe-link.txt")
    assert r.status == 403 and b"safe dir" not in r.body


# ------------------------------------------------------------------ precompressed siblings

def test_gzip_and_br_siblings(wharf, site):
    srv = wharf(opts(site, ("static-gzip-all", True)))
    gz = site / "www" / "gz"
    c = Conn(srv)
    r = c.request("/s/gz/app.js", headers=[("Accept-Encoding", "gzip")])
    assert r.status == 200
    assert r.h("content-encoding") == "gzip"
    assert r.body == (gz / "app.js.gz").read_bytes()
    assert gzip.decompress(r.body) == (gz / "app.js").read_bytes()
    assert r.h("content-type") == "text/javascript"
    assert r.h("vary") == "Accept-Encoding"
    assert r.h("etag") == etag_of(gz / "app.js.gz")
    assert r.h("content-length") == str((gz / "app.js.gz").stat().st_size)

    for ae in ("br", "gzip, deflate, br", "br;q=1, gzip;q=1"):
        r = c.request("/s/gz/app.js", headers=[("Accept-Encoding", ae)])
        assert r.h("content-encoding") == "br", ae
        assert r.body == (gz / "app.js.br").read_bytes()
    r = c.request("/s/gz/app.js", headers=[("Accept-Encoding", "br;q=0.5, gzip")])
    assert r.h("content-encoding") == "gzip"

    for headers in ([], [("Accept-Encoding", "gzip;q=0, br;q=0")], [("Accept-Encoding", "identity")]):
        r = c.request("/s/gz/app.js", headers=headers)
        assert r.h("content-encoding") is None, headers
        assert r.body == (gz / "app.js").read_bytes()
        assert r.h("vary") == "Accept-Encoding"
        assert r.h("etag") == etag_of(gz / "app.js")

    # eligible but no sibling: identity, still Vary
    r = c.request("/s/gz/plain.txt", headers=[("Accept-Encoding", "gzip, br")])
    assert r.h("content-encoding") is None and r.body == b"no sibling\n"
    assert r.h("vary") == "Accept-Encoding"
    # a sibling asked for by name is just a gzip file
    r = c.request("/s/gz/app.js.gz")
    assert r.h("content-type") == "application/gzip" and r.h("content-encoding") is None
    # 304 for the variant's own validator
    tag = etag_of(gz / "app.js.gz")
    r = c.request("/s/gz/app.js", headers=[("Accept-Encoding", "gzip"), ("If-None-Match", tag)])
    assert r.status == 304 and r.h("vary") == "Accept-Encoding"
    # ranges apply to the bytes sent
    r = c.request("/s/gz/app.js", headers=[("Accept-Encoding", "gzip"), ("Range", "bytes=0-1")])
    assert r.status == 206 and r.body == b"\x1f\x8b"
    c.close()


def test_gzip_off_by_default(wharf, site):
    srv = wharf(opts(site))
    r = get(srv, "/s/gz/app.js", headers=[("Accept-Encoding", "gzip, br")])
    assert r.h("content-encoding") is None and r.h("vary") is None
    assert r.body == (site / "www" / "gz" / "app.js").read_bytes()


def test_static_gzip_regex_selects_files(wharf, site):
    srv = wharf(opts(site, ("static-gzip", r"\.css$")))
    r = get(srv, "/s/gz/style.css", headers=[("Accept-Encoding", "gzip")])
    assert r.h("content-encoding") == "gzip" and r.h("vary") == "Accept-Encoding"
    r = get(srv, "/s/gz/app.js", headers=[("Accept-Encoding", "gzip")])
    assert r.h("content-encoding") is None and r.h("vary") is None


def test_static_gzip_ext_and_dir(wharf, site):
    srv = wharf(opts(site, ("static-gzip-ext", ".js"), ("static-gzip-dir", str(site / "www" / "nodex"))))
    assert get(srv, "/s/gz/app.js", headers=[("Accept-Encoding", "gzip")]).h("content-encoding") == "gzip"
    assert get(srv, "/s/gz/style.css", headers=[("Accept-Encoding", "gzip")]).h("content-encoding") is None


def test_gzip_sibling_outside_root_is_ignored(wharf, site):
    www = site / "www"
    (www / "lonely.js").write_bytes(b"x = 1\n")
    os.symlink(site / "outside" / "secret.txt", www / "lonely.js.gz")
    srv = wharf(opts(site, ("static-gzip-all", True)))
    r = get(srv, "/s/lonely.js", headers=[("Accept-Encoding", "gzip")])
    assert r.status == 200 and r.body == b"x = 1\n" and r.h("content-encoding") is None


# ------------------------------------------------------------------ expires

def expires_of(r):
    return email.utils.parsedate_to_datetime(r.h("expires")).timestamp()


def test_expires_by_uri_filename_and_type(wharf, site):
    srv = wharf(opts(site,
                     ("static-expires-uri", r"\.css$ 3600"),
                     ("static-expires", r"/www/app\.js$ 60"),
                     ("static-expires-type", "application/json=120")))
    for target, seconds in (("/s/style.css", 3600), ("/s/app.js", 60), ("/s/data.json", 120)):
        before = time.time()
        r = get(srv, target)
        assert r.status == 200
        assert r.h("cache-control") == f"max-age={seconds}", target
        # Expires is "now + seconds" by the server's clock, to the second
        assert before - 2 + seconds <= expires_of(r) <= time.time() + 2 + seconds, target
    r = get(srv, "/s/hello.txt")
    assert r.h("expires") is None and r.h("cache-control") is None
    # 304 answers carry them too
    tag = etag_of(site / "www" / "style.css")
    r = get(srv, "/s/style.css", headers=[("If-None-Match", tag)])
    assert r.status == 304 and r.h("cache-control") == "max-age=3600"


def test_expires_from_mtime(wharf, site):
    path = site / "www" / "hello.txt"
    past = 1_000_000_000
    os.utime(path, (past, past))
    srv = wharf(opts(site, ("static-expires-mtime", r"hello\.txt$ 100"),
                     ("static-expires-path-info-mtime", r"^/s/app\.js$ 86400000")))
    r = get(srv, "/s/hello.txt")
    assert expires_of(r) == past + 100
    assert r.h("cache-control") == "max-age=0"  # already expired
    app = site / "www" / "app.js"
    r = get(srv, "/s/app.js")
    assert expires_of(r) == int(app.stat().st_mtime) + 86400000
    assert int(r.h("cache-control").split("=")[1]) > 86400000 - 3600


# ------------------------------------------------------------------ maps, index, fall-through

def test_static_index_and_redirect(wharf, site):
    srv = wharf(opts(site, ("static-index", ["missing.html", "index.html"])))
    r = get(srv, "/s/sub/")
    assert r.status == 200 and r.body == b"<h1>sub index</h1>\n"
    assert r.h("content-type") == "text/html"
    r = get(srv, "/s/sub")
    assert r.status == 301 and r.h("location") == "/s/sub/"
    r = get(srv, "/s/sub?x=1&y=%20")
    assert r.status == 301 and r.h("location") == "/s/sub/?x=1&y=%20"
    # a directory without an index file falls through (no app: 404)
    assert get(srv, "/s/nodex/").status == 404
    assert get(srv, "/s/nodex").status == 404
    assert get(srv, "/s/nodex/file.txt").body == b"in nodex\n"


def test_directory_without_static_index_falls_through(wharf, site):
    srv = wharf(opts(site))
    assert get(srv, "/s/sub/").status == 404


def test_redirect_location_is_percent_encoded(wharf, site):
    d = site / "www" / "a dir"
    d.mkdir()
    (d / "index.html").write_bytes(b"spaced\n")
    srv = wharf(opts(site, ("static-index", "index.html")))
    r = get(srv, "/s/a%20dir")
    assert r.status == 301 and r.h("location") == "/s/a%20dir/"
    assert get(srv, r.h("location")).body == b"spaced\n"


def test_static_map2_keeps_the_prefix(wharf, site, tmp_path):
    root = tmp_path / "app"
    (root / "assets").mkdir(parents=True)
    (root / "assets" / "x.txt").write_bytes(b"map2\n")
    srv = wharf([("processes", 1), ("static-map2", f"/assets={root}")])
    r = get(srv, "/assets/x.txt")
    assert r.status == 200 and r.body == b"map2\n"
    assert get(srv, "/assets/assets/x.txt").status == 404


def test_check_static(wharf, site):
    srv = wharf([("processes", 1), ("check-static", str(site / "www"))])
    assert get(srv, "/hello.txt").body == b"hello\n"
    assert get(srv, "/../outside/secret.txt").status == 403


def test_longest_prefix_wins_and_falls_back(wharf, site, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "hello.txt").write_bytes(b"from other\n")
    srv = wharf([("processes", 1),
                 ("static-map", [f"/s={site / 'www'}", f"/s/sub={other}"])])
    assert get(srv, "/s/sub/hello.txt").body == b"from other\n"      # longer prefix first
    assert get(srv, "/s/sub/index.html").body == b"<h1>sub index</h1>\n"  # fallback to /s
    assert get(srv, "/s/hello.txt").body == b"hello\n"
    # prefixes match whole segments
    assert get(srv, "/shello.txt").status == 404
    assert get(srv, "/s/subhello.txt").status == 404


def test_same_prefix_maps_are_fallbacks_in_order(wharf, site, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "both.txt").write_bytes(b"first\n")
    (second / "both.txt").write_bytes(b"second\n")
    (second / "only2.txt").write_bytes(b"only second\n")
    srv = wharf([("processes", 1), ("static-map", [f"/static={first}", f"/static={second}"])])
    assert get(srv, "/static/both.txt").body == b"first\n"
    assert get(srv, "/static/only2.txt").body == b"only second\n"


def test_map_to_a_single_file(wharf, site):
    robots = site / "www" / "hello.txt"
    # relative to the directory wharf starts in (the test's tmp dir)
    srv = wharf([("processes", 1), ("static-map", "/robots.txt=www/hello.txt")])
    r = get(srv, "/robots.txt")
    assert r.status == 200 and r.body == robots.read_bytes()
    assert get(srv, "/robots.txt/x").status == 404


def test_missing_file_and_other_methods_fall_through(wharf, site):
    srv = wharf(opts(site))
    r = get(srv, "/s/nope.txt")
    assert r.status == 404 and r.body == b"Not Found\n"  # the core's answer
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        c = Conn(srv)
        r = c.request("/s/hello.txt", method=method, headers=[("Content-Length", "0")])
        assert r.status == 404 and b"hello" not in r.body, method
        c.close()
    assert get(srv, "/elsewhere").status == 404


def test_new_file_is_found_at_once(wharf, site):
    srv = wharf(opts(site))
    assert get(srv, "/s/late.txt").status == 404
    (site / "www" / "late.txt").write_bytes(b"late\n")
    r = get(srv, "/s/late.txt")
    assert r.status == 200 and r.body == b"late\n"


def test_skip_ext(wharf, site):
    srv = wharf(opts(site, ("static-skip-ext", [".py", ".pyc"])))
    r = get(srv, "/s/secret.py")
    assert r.status == 404 and b"PASSWORD" not in r.body
    # a symlink with an innocent name to a skipped file is skipped too
    r = get(srv, "/s/innocent.txt")
    assert r.status == 404 and b"PASSWORD" not in r.body
    assert get(srv, "/s/hello.txt").status == 200


def test_seed_style_static_map_line(wharf, site):
    """The seed's `static-map = /static=/app/static  ; (필요시)`: the ini
    reader drops the inline comment."""
    port = free_port()
    ini = (f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nprocesses = 1\n"
           f"static-map = /static={site / 'www'}  ; (필요시)\n")
    srv = wharf(None, ini=ini, port=port)
    r = get(srv, "/static/hello.txt")
    assert r.status == 200 and r.body == b"hello\n"


# ------------------------------------------------------------------ connections

def test_many_static_responses_on_one_connection(wharf, site):
    srv = wharf(opts(site, ("static-gzip-all", True)))
    data = (site / "www" / "64k.bin").read_bytes()
    tag = etag_of(site / "www" / "hello.txt")
    c = Conn(srv)
    for i in range(40):
        kind = i % 5
        if kind == 0:
            r = c.request("/s/64k.bin")
            assert r.status == 200 and r.body == data
        elif kind == 1:
            r = c.request("/s/hello.txt", headers=[("If-None-Match", tag)])
            assert r.status == 304
        elif kind == 2:
            r = c.request("/s/64k.bin", headers=[("Range", f"bytes={i}-{i + 99}")])
            assert r.status == 206 and r.body == data[i:i + 100]
        elif kind == 3:
            r = c.request("/s/64k.bin", method="HEAD")
            assert r.status == 200 and r.body == b""
        else:
            r = c.request("/s/missing")
            assert r.status == 404
        assert r.h("connection") is None  # kept alive
    c.close()


def test_pipelined_static_requests(wharf, site):
    srv = wharf(opts(site))
    c = Conn(srv)
    one = b"GET /s/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
    c.sock.sendall(one * 10)
    for _ in range(10):
        r = read_response(c.f)
        assert r.status == 200 and r.body == b"hello\n"
    c.close()


def test_a_client_that_stops_reading_does_not_block_others(wharf, site):
    big = site / "www" / "big.bin"
    with open(big, "wb") as f:
        f.truncate(50 * MIB)
    srv = wharf(opts(site))
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", srv.port))
    stalled.sendall(b"GET /s/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    # the server has started answering it: the head is there
    stalled.settimeout(10)
    assert stalled.recv(12) == b"HTTP/1.1 200"
    # ... and the one worker still answers everyone else (the timeout is a
    # generous bound for "answered at all", not a speed requirement)
    for _ in range(20):
        r = requests.get(f"{srv.url}/s/hello.txt", timeout=10)
        assert r.status_code == 200 and r.text == "hello\n"
    data = (site / "www" / "1m.bin").read_bytes()
    assert requests.get(f"{srv.url}/s/1m.bin", timeout=10).content == data
    # the stalled download is still alive and resumes when read
    got = 0
    while got < MIB:
        chunk = stalled.recv(65536)
        assert chunk
        got += len(chunk)
    stalled.close()


def test_concurrent_downloads_while_the_cache_evicts(wharf, site):
    """static-cache-size = 1: every request evicts the other file while
    responses still send from it (the reference counts keep it open)."""
    www = site / "www"
    files = {"1m.bin": (www / "1m.bin").read_bytes(), "64k.bin": (www / "64k.bin").read_bytes()}
    srv = wharf(opts(site, ("static-cache-size", 1)))
    errors = []

    def worker(n):
        try:
            s = requests.Session()
            for i in range(10):
                name = list(files)[(n + i) % 2]
                r = s.get(f"{srv.url}/s/{name}", timeout=30)
                if r.status_code != 200 or r.content != files[name]:
                    errors.append((name, r.status_code, len(r.content)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


def test_cache_disabled_sees_changes_at_once(wharf, site):
    srv = wharf(opts(site, ("static-cache-paths", 0)))
    path = site / "www" / "hello.txt"
    assert get(srv, "/s/hello.txt").body == b"hello\n"
    path.write_bytes(b"changed at once\n")
    assert get(srv, "/s/hello.txt").body == b"changed at once\n"


# ------------------------------------------------------------------ configuration errors

@pytest.mark.parametrize("option,value,expect", [
    ("static-map", "nodir", "expected /prefix=/directory"),
    ("static-map", "/s=", "expected /prefix=/directory"),
    ("static-map", "s=/tmp", "must start with '/'"),
    ("static-map", "/s=/nonexistent/wharf-dir", "No such file or directory"),
    ("static-map2", "/s", "expected /prefix=/directory"),
    ("check-static", "/nonexistent/wharf-dir", "No such file or directory"),
    ("static-expires", r"([a-z 10", "invalid regular expression"),
    ("static-expires", r"\.css$", "expected 'REGEX SECONDS'"),
    ("static-expires-uri", r"\.css$ soon", "not a number of seconds"),
    ("static-expires-type", "text/css", "expected 'TYPE=SECONDS'"),
    ("static-gzip", r"(unclosed", "invalid regular expression"),
    ("static-index", "a/index.html", "expected a file name"),
    ("static-safe", "/nonexistent/wharf-safe", "No such file or directory"),
    ("mime-file", "/nonexistent/mime.types", "No such file or directory"),
])
def test_config_errors(wharf, site, option, value, expect):
    srv = wharf([("processes", 1), ("static-map", f"/ok={site / 'www'}"), (option, value)], start=False)
    for extra in (("--check-config",), ()):
        res = srv.run(*extra, timeout=30)
        assert res.returncode == 1, (extra, res.stdout, res.stderr)
        lines = [line for line in (res.stdout + res.stderr).splitlines() if option in line]
        assert len(lines) == 1, res.stdout + res.stderr
        # the value (for a regex error: the regex part of it) and the reason
        assert value.split(" ")[0] in lines[0] and expect in lines[0], lines[0]


def test_good_config_checks(wharf, site):
    srv = wharf(opts(site, ("static-index", "index.html"), ("static-expires", r"\.css$ 10"),
                     ("static-gzip", r"\.js$"), ("static-safe", str(site / "safe"))), start=False)
    res = srv.run("--check-config", timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr


# ------------------------------------------------------------------ metrics

def test_static_hits_are_counted_in_metrics(wharf, site):
    """Every file answered (200, 206, 304) counts once in
    wharf_static_hits_total; a fall-through to the app does not."""
    srv = wharf(opts(site, ("metrics", "/metrics")))

    def hits():
        body = requests.get(srv.url + "/metrics").text
        for line in body.splitlines():
            if line.startswith("wharf_static_hits_total "):
                return int(float(line.split()[1]))
        raise AssertionError("wharf_static_hits_total missing:\n" + body)

    before = hits()
    assert requests.get(srv.url + "/s/hello.txt").status_code == 200
    assert requests.get(srv.url + "/s/64k.bin", headers={"Range": "bytes=0-9"}).status_code == 206
    etag = requests.head(srv.url + "/s/hello.txt").headers["ETag"]
    assert requests.get(srv.url + "/s/hello.txt", headers={"If-None-Match": etag}).status_code == 304
    assert requests.get(srv.url + "/s/no-such-file").status_code == 404
    assert hits() == before + 4  # GET, range GET, HEAD and the 304; not the 404
