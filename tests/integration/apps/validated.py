"""An app wrapped in wsgiref.validate.validator, with every WSGIWarning
turned into an error: any PEP 3333 complaint about the server (environ,
wsgi.input, wsgi.errors, start_response, iteration, close) fails the
request with a 500 and a traceback in the log."""
import hashlib
import io
import json
import sys
import warnings
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)


def inner(environ, start_response):
    path = environ["PATH_INFO"]
    environ["wsgi.errors"].write("validated app: %s %s\n" % (environ["REQUEST_METHOD"], path))
    environ["wsgi.errors"].flush()
    if path == "/post":
        inp = environ["wsgi.input"]
        h = hashlib.md5()
        while True:
            b = inp.read(8192)  # the validator wants exactly one argument
            if not b:
                break
            h.update(b)
        body = json.dumps({"md5": h.hexdigest()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/lines":
        inp = environ["wsgi.input"]
        n = 1 if inp.readline() else 0
        n += len(inp.readline(1000) and [1])
        n += len(inp.readlines())
        body = json.dumps({"lines": n}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/gen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"%d\n" % i for i in range(10))
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"and returned"]
    if path == "/empty":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return []
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"file body" * 100), 64)
    if path == "/excinfo":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("x")
        except KeyError:
            start_response("200 OK", [("Content-Type", "text/plain"), ("X-Recovered", "1")],
                           sys.exc_info())
        return [b"recovered"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s %s?%s" % (environ["REQUEST_METHOD"], path, environ["QUERY_STRING"])).encode()]


application = validator(inner)
