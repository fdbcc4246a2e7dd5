"""Helpers shared by the python plugin's tests (tests/integration/test_python*.py).

Not a test module: the test files put this directory on sys.path.
"""
import http.client
import os
import socket

APPS = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"


def app_options(module="pepapp", extra=(), **kw):
    """Options for a server running `module` from tests/integration/apps."""
    opts = [("pythonpath", APPS), ("module", module)]
    opts += list(extra)
    opts += [(k.replace("_", "-"), v) for k, v in kw.items()]
    return opts


def conn(srv, timeout=10):
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)


def get(srv, path, method="GET", body=None, headers=None, timeout=10):
    """One request on a new connection; returns (response, body bytes)."""
    c = conn(srv, timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r, data
    finally:
        c.close()


def raw(srv, data, timeout=5):
    """Send raw bytes, read until the server closes (or timeout)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def chunked(parts):
    """Body bytes as a generator: http.client and requests send it chunked."""
    def gen():
        for p in parts:
            yield p
    return gen()
