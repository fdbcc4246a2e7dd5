"""App for tests/integration/test_fastpaths.py: the response shapes the
server's fast paths handle (small list bodies sent after the GIL is
released, Content-Length mismatches, long heads, slow handlers)."""
import time


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/small":
        body = b"small body"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body[:5], b"", body[5:]]
    if path == "/big":
        body = bytes(range(256)) * 256  # 64 KiB: above the deferral limit
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    if path == "/tuple":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"tu", b"ple")
    if path == "/short":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
        return [b"short"]
    if path == "/over":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"abc", b"defgh"]
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    if path == "/long-head":
        reason = "R" * 250
        headers = [("X-Filler-%02d" % i, "v" * 40) for i in range(60)]
        start_response("299 " + reason, headers)
        return [b"after a long head"]
    if path == "/raise":
        raise RuntimeError("fastapp raises on purpose")
    if path.startswith("/slow/"):
        time.sleep(float(environ.get("QUERY_STRING") or "0.2"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [path.encode()]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [path.encode()]
