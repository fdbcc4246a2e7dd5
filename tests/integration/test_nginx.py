"""contrib/nginx/wharf.conf in front of wharf, with Debian's nginx.

The site file is used as shipped, rendered only in its host paths and ports
(the socket, 127.0.0.1:8000, port 80, the static root), in front of a wharf
started from contrib/systemd/example.ini, the config the site is written
for.  Once over the unix socket, once over TCP.

What the app sees is read from wharf's access log (`%(addr)`, the request's
X-Forwarded-For and Content-Length): it is the client address wharf hands
to the app (REMOTE_ADDR).  When the python plugin is built, a WSGI app
echoes its environ and the body as well.
"""
import hashlib
import os
import socket

import pytest
import requests

import services
from services import NGINX, Nginx
from wharfctl import PLUGINS_DIR, SRCDIR, free_port, wait_for

SITE = os.path.join(SRCDIR, "contrib", "nginx", "wharf.conf")
EXAMPLE_INI = os.path.join(SRCDIR, "contrib", "systemd", "example.ini")
CLIENT = "127.0.0.2"  # the test client's source address, as nginx sees it
LOG_FORMAT = "ACCESS addr=%(addr) xff=[%(var.HTTP_X_FORWARDED_FOR)] cl=%(cl) %(method) %(uri) %(status)"

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed")


def render_site(tmp, transport, nginx_port, wharf_port, sock, static_root):
    """The shipped site file with this test's paths and ports; only the
    upstream server of `transport` is kept."""
    unix_line = "server unix:/run/wharf/example.sock max_fails=0;"
    tcp_line = "server 127.0.0.1:8000 backup;"
    if transport == "unix":
        upstream = [(unix_line, f"server unix:{sock} max_fails=0;"), (tcp_line, "")]
    else:
        upstream = [(unix_line, ""), (tcp_line, f"server 127.0.0.1:{wharf_port};")]
    return services.render_site(SITE, tmp, upstream + [
        ("listen 80;", f"listen 127.0.0.1:{nginx_port};"), ("listen [::]:80;", ""),
        ("alias /srv/example/static/;", f"alias {static_root}/;")])


def example_ini(tmp, wharf_port, sock, extra=()):
    """contrib/systemd/example.ini with this test's socket, port and pidfile."""
    text = open(EXAMPLE_INI).read()
    for old, new in [("127.0.0.1:8000", f"127.0.0.1:{wharf_port}"),
                     ("/run/wharf/example.sock", sock),
                     ("/run/wharf/example.pid", os.path.join(tmp, "wharf.pid"))]:
        assert old in text, f"{old!r} not in example.ini: update this test"
        text = text.replace(old, new)
    return text + f"log-format = {LOG_FORMAT}\n" + "".join(f"{k} = {v}\n" for k, v in extra)


class Source127_2(requests.adapters.HTTPAdapter):
    """Connect from 127.0.0.2, so the client address differs from nginx's."""
    def init_poolmanager(self, *a, **kw):
        kw["source_address"] = (CLIENT, 0)
        super().init_poolmanager(*a, **kw)


@pytest.fixture
def stack(tmp_path, wharf, request):
    """wharf (example.ini) behind nginx (wharf.conf), over request.param."""
    def start(transport, extra=()):
        tmp = str(tmp_path)
        wharf_port, nginx_port = free_port(), free_port()
        sock = os.path.join(tmp, "wharf.sock")
        static_root = os.path.join(tmp, "static")
        os.makedirs(static_root)
        with open(os.path.join(static_root, "app.css"), "w") as f:
            f.write("body { color: #123456 }\n")
        srv = wharf(ini=example_ini(tmp, wharf_port, sock, extra), port=wharf_port)
        ngx = Nginx(tmp, render_site(tmp, transport, nginx_port, wharf_port, sock, static_root))
        checked = ngx.test_config()
        assert checked.returncode == 0, checked.stderr
        ngx.start(nginx_port)
        request.addfinalizer(ngx.stop)
        session = requests.Session()
        session.mount("http://", Source127_2())
        return srv, ngx, session, f"http://127.0.0.1:{nginx_port}"
    return start


def access_lines(srv, uri):
    return [line for line in srv.log().splitlines() if "ACCESS " in line and f" {uri} " in line]


def test_shipped_site_passes_nginx_t(tmp_path):
    """The site file as shipped (only included into a minimal nginx.conf)."""
    ngx = Nginx(str(tmp_path), SITE)
    checked = ngx.test_config()
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_client_address_reaches_wharf(stack, transport):
    srv, ngx, s, base = stack(transport)
    # a spoofed X-Forwarded-For from the client is kept in the header but
    # never becomes the client address: nginx appends the address it saw
    r = s.get(base + "/healthz/live", headers={"X-Forwarded-For": "198.51.100.7"})
    assert r.status_code == 200
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    line = wait_for(lambda: access_lines(srv, "/healthz/live"), what="the access log line")[0]
    assert f"addr={CLIENT} " in line, line
    assert f"xff=[198.51.100.7, {CLIENT}]" in line, line


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_static_files_are_served_by_nginx(stack, transport):
    srv, ngx, s, base = stack(transport)
    r = s.get(base + "/static/app.css")
    assert r.status_code == 200
    assert r.text == "body { color: #123456 }\n"
    assert r.headers["Content-Type"].startswith("text/css")
    assert "immutable" in r.headers["Cache-Control"]
    # the next request does reach wharf; the static one never did
    assert s.get(base + "/healthz/live").status_code == 200
    wait_for(lambda: access_lines(srv, "/healthz/live"), what="the access log line")
    assert access_lines(srv, "/static/app.css") == []


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_request_body_passes_through(stack, transport):
    srv, ngx, s, base = stack(transport)
    body = os.urandom(1 << 20)
    r = s.post(base + "/upload", data=body, headers={"Content-Type": "application/octet-stream"})
    # no app is configured: wharf answers 404 after taking the whole body,
    # and the keep-alive connection to nginx stays usable
    assert r.status_code == 404
    line = wait_for(lambda: access_lines(srv, "/upload"), what="the access log line")[0]
    assert f"cl={len(body)} POST /upload 404" in line, line
    assert s.get(base + "/healthz/live").status_code == 200


def test_body_above_limit_is_refused_by_nginx(stack):
    """client_max_body_size matches limit-post (50m): nginx answers 413
    from the Content-Length alone, and wharf never sees the request."""
    srv, ngx, s, base = stack("unix")
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: %d\r\n\r\n"
                  % (51 * 1024 * 1024))
        head = c.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert s.get(base + "/healthz/live").status_code == 200
    wait_for(lambda: access_lines(srv, "/healthz/live"), what="the access log line")
    assert access_lines(srv, "/upload") == []


ECHO_APP = '''
import hashlib, json
def application(environ, start_response):
    body = environ["wsgi.input"].read()
    out = json.dumps({"remote_addr": environ.get("REMOTE_ADDR"),
                      "xff": environ.get("HTTP_X_FORWARDED_FOR"),
                      "proto": environ.get("HTTP_X_FORWARDED_PROTO"),
                      "host": environ.get("HTTP_HOST"),
                      "length": len(body),
                      "sha256": hashlib.sha256(body).hexdigest()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]
'''


@pytest.mark.skipif(not os.path.exists(os.path.join(PLUGINS_DIR, "python_plugin.so")),
                    reason="the python plugin is not built in this tree")
@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_wsgi_app_sees_client_and_body(stack, tmp_path, transport):
    (tmp_path / "echoapp.py").write_text(ECHO_APP)
    srv, ngx, s, base = stack(transport, extra=[("chdir", str(tmp_path)), ("wsgi-file", "echoapp.py")])
    body = os.urandom(300_000)
    r = s.post(base + "/echo", data=body, headers={"Host": "example.com"})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["remote_addr"] == CLIENT
    assert seen["xff"] == CLIENT
    assert seen["proto"] == "http"
    assert seen["host"] == "example.com"
    assert seen["length"] == len(body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()
