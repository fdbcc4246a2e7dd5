"""WSGI app for tests/integration/test_lifecycle.py: the Python twin of the
slowapp fixture plugin (tests/fixtures/plugins/slowapp.c).

    /pid           200 at once: "pid <pid>\n" and X-Worker-Pid
    /sleep?ms=N    the same after N ms inside stuck_in_the_app() (the name
                   harakiri's stack dump must show)
    /nap?ms=N      the same after N ms inside brief_nap()

With LIFECYCLE_TRACE=/prefix in the environment, requests whose path starts
with it write "lifecycleapp: begin <uri>" and "... end <uri>" to wsgi.errors
(the wharf log), so a test can wait for a request to be in flight.
"""
import os
import time
from urllib.parse import parse_qs

TRACE = os.environ.get("LIFECYCLE_TRACE")


def stuck_in_the_app(seconds):
    time.sleep(seconds)


def brief_nap(seconds):
    time.sleep(seconds)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    uri = path + ("?" + query if query else "")
    trace = TRACE and path.startswith(TRACE)
    if trace:
        environ["wsgi.errors"].write(f"lifecycleapp: begin {uri}\n")
        environ["wsgi.errors"].flush()
    ms = int(parse_qs(query).get("ms", ["0"])[0])
    if path == "/sleep":
        stuck_in_the_app(ms / 1000)
    elif path == "/nap":
        brief_nap(ms / 1000)
    elif path != "/pid":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    pid = str(os.getpid())
    body = f"pid {pid}\n".encode()
    if trace:
        environ["wsgi.errors"].write(f"lifecycleapp: end {uri}\n")
        environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                              ("X-Worker-Pid", pid)])
    return [body]
