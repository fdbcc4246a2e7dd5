"""A WSGI app that exercises PEP 3333 from the app's side.

Each path is one behaviour; the tests in test_python_pep3333.py call them.
Paths that record something (close() calls) write to the file named by the
PEPAPP_RECORD environment variable, one line per event.
"""
import hashlib
import io
import json
import os
import random
import sys
import threading
import time
from urllib.parse import parse_qs

RECORD = os.environ.get("PEPAPP_RECORD")
FIRST_RANDOM = {}


def record(event):
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(event + "\n")


def qs(environ):
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def as_json(start_response, obj, status="200 OK", extra=()):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json")] + list(extra))
    return [body]


class Recorded:
    """An iterable with close(), recorded; may raise at chunk `fail_at`."""

    def __init__(self, chunks, tag, fail_at=None):
        self.chunks = chunks
        self.tag = tag
        self.fail_at = fail_at

    def __iter__(self):
        for i, c in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError(f"failing at chunk {i} on purpose")
            yield c

    def close(self):
        record(f"close {self.tag}")


def describe(environ):
    out = {}
    for k, v in environ.items():
        if isinstance(v, (str, bool, int)) or v is None:
            out[k] = [type(v).__name__, v]
        elif isinstance(v, tuple):
            out[k] = ["tuple", list(v)]
        else:
            out[k] = [type(v).__name__, type(v).__module__ + "." + type(v).__qualname__]
    return out


def body_digest(data):
    return {"len": len(data), "md5": hashlib.md5(data).hexdigest()}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = qs(environ)
    inp = environ["wsgi.input"]

    if path == "/env" or path.startswith("/env/"):
        return as_json(start_response, describe(environ))

    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello, World!\n"]

    # ---- write callable
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"one ")
        write(b"")
        write(b"two ")
        return [b"three"]
    if path == "/write-only":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        for i in range(5):
            write(b"%d\n" % i)
        return []
    if path == "/write-str":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            write("text")
        except TypeError as e:
            return [b"TypeError: " + str(e).encode()]
        return [b"no error"]

    # ---- start_response and exc_info
    if path == "/excinfo-replace":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise ValueError("handled by the app")
        except ValueError:
            start_response("503 Handled", [("Content-Type", "text/plain"), ("X-Second", "1")],
                           sys.exc_info())
        return [b"replaced"]
    if path == "/excinfo-after-head":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"head is out")
        try:
            raise ValueError("too late to change the status")
        except ValueError:
            try:
                start_response("500 Error", [("Content-Type", "text/plain")], sys.exc_info())
            except ValueError as e:
                record(f"reraised {e}")
                raise
        return [b"not reached"]
    if path == "/start-twice":
        start_response("200 OK", [])
        try:
            start_response("200 OK", [])
        except RuntimeError as e:
            return [str(e).encode()]
        return [b"no error"]
    if path == "/bad-start":
        kind = q["kind"]
        args = {
            "status-bytes": (b"200 OK", []),
            "status-short": ("200", []),
            "status-letters": ("2xx OK", []),
            "status-crlf": ("200 OK\r\nX: y", []),
            "headers-tuple": ("200 OK", (("A", "b"),)),
            "header-list": ("200 OK", [["A", "b"]]),
            "header-bytes": ("200 OK", [(b"A", b"b")]),
            "header-crlf": ("200 OK", [("A", "b\r\nSet-Cookie: x=y")]),
            "header-name-space": ("200 OK", [("A B", "c")]),
            "header-name-colon": ("200 OK", [("A:", "c")]),
            "header-nonlatin": ("200 OK", [("A", "\u20ac")]),
            "header-hop": ("200 OK", [("Transfer-Encoding", "chunked")]),
            "header-cl": ("200 OK", [("Content-Length", "12x")]),
        }[kind]
        try:
            start_response(*args)
        except (TypeError, ValueError) as e:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"exc": type(e).__name__, "msg": str(e)}).encode()]
        return as_json(start_response, {"exc": None}, extra=[("X-Unexpected", "1")])
    if path == "/latin1-header":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Latin", "caf\u00e9")])
        return [b"ok"]
    if path == "/custom-reason":
        start_response("299 Quite Fine", [("Content-Type", "text/plain")])
        return [b"ok"]
    if path == "/connection-close":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
        return [b"bye"]
    if path == "/no-start":
        return [b"body without start_response"]
    if path == "/no-start-empty":
        return []

    # ---- iterables
    if path == "/chunks":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Recorded([b"a" * 10, b"", b"b" * 20, b"c" * 30], q.get("tag", "chunks"))
    if path == "/gen":
        def gen():
            # start_response may be called from inside the iterable
            start_response("200 OK", [("Content-Type", "text/plain")])
            for i in range(int(q.get("n", "5"))):
                yield b"chunk %d\n" % i
        return gen()
    if path == "/gen-slow":
        def gen():
            start_response("200 OK", [("Content-Type", "text/plain")])
            for i in range(3):
                yield b"tick %d\n" % i
                time.sleep(0.2)
        return gen()
    if path == "/gen-empty":
        def gen():
            start_response("200 OK", [("Content-Type", "text/plain")])
            return
            yield b""
        return gen()
    if path == "/empty":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return []
    if path == "/empty-bytes":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]
    if path == "/tuple":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"tu", b"ple")
    if path == "/many":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%04d\n" % i for i in range(300)]
    if path == "/no-content":
        start_response("204 No Content", [])
        return []
    if path == "/not-modified":
        start_response("304 Not Modified", [("ETag", '"x"')])
        return []
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Recorded([b"closed", b" ok"], q["tag"])
    if path == "/close-error":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Recorded([b"x", b"y"], q["tag"], fail_at=int(q.get("at", "0")))
    if path == "/close-head":
        # HEAD still runs the app and closes its iterable
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Recorded([b"12345"], q["tag"])

    # ---- errors
    if path == "/error":
        raise ZeroDivisionError("the app divided by zero on purpose")
    if path == "/error-in-gen":
        def gen():
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"first chunk"
            raise RuntimeError("the generator fails after the head")
        return gen()
    if path == "/error-before-first":
        def gen():
            start_response("200 OK", [("Content-Type", "text/plain")])
            raise RuntimeError("the generator fails before its first chunk")
            yield b""
        return gen()
    if path == "/sysexit":
        raise SystemExit(3)
    if path == "/kbint":
        raise KeyboardInterrupt()
    if path == "/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["text is not bytes"]
    if path == "/bytes-result":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return b"bytes instead of [bytes]"
    if path == "/none-result":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return None
    if path == "/cl-short":
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
        write(b"only ten b")
        return []
    if path == "/cl-over":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"abcdefgh"]
    if path == "/errors":
        err = environ["wsgi.errors"]
        err.write("errors-line-1 from %s\n" % q.get("id", "?"))
        err.write("errors-partial ")
        err.writelines(["continued\n", "errors-line-3\n"])
        err.write("errors-unterminated")
        err.flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"logged"]

    # ---- wsgi.input
    if path == "/input/read":
        return as_json(start_response, body_digest(inp.read()))
    if path == "/input/read-none":
        return as_json(start_response, body_digest(inp.read(None)))
    if path == "/input/read-n":
        n = int(q.get("n", "1000"))
        parts = []
        sizes = set()
        while True:
            b = inp.read(n)
            if not b:
                break
            sizes.add(len(b))
            parts.append(b)
        d = body_digest(b"".join(parts))
        d["sizes"] = sorted(sizes)
        d["reads"] = len(parts)
        return as_json(start_response, d)
    if path == "/input/readline":
        lines = []
        while True:
            line = inp.readline()
            if not line:
                break
            lines.append(line)
        d = body_digest(b"".join(lines))
        d["lines"] = len(lines)
        d["first"] = lines[0].decode("latin-1") if lines else None
        return as_json(start_response, d)
    if path == "/input/readline-limit":
        n = int(q.get("n", "5"))
        got = []
        while True:
            line = inp.readline(n)
            if not line:
                break
            got.append(line.decode("latin-1"))
        return as_json(start_response, {"parts": got})
    if path == "/input/mixed":
        first = inp.readline()
        rest = inp.read(int(q.get("n", "4")))
        tail = inp.read()
        return as_json(start_response, {"first": first.decode(), "rest": rest.decode(),
                                        "tail": tail.decode()})
    if path == "/input/iter":
        lines = [line for line in inp]
        d = body_digest(b"".join(lines))
        d["lines"] = len(lines)
        return as_json(start_response, d)
    if path == "/input/readlines":
        hint = int(q.get("hint", "-1"))
        lines = inp.readlines(hint) if hint >= 0 else inp.readlines()
        rest = inp.read()
        return as_json(start_response, {"lines": len(lines), "rest": len(rest),
                                        "md5": hashlib.md5(b"".join(lines) + rest).hexdigest()})
    if path == "/input/overread":
        cl = int(environ.get("CONTENT_LENGTH") or 0)
        a = inp.read(cl + 1000 if cl else 1 << 20)
        b = inp.read(10)
        c = inp.readline()
        return as_json(start_response, {"a": len(a), "b": len(b), "c": len(c)})
    if path == "/input/md5-stream":
        h = hashlib.md5()
        total = 0
        while True:
            b = inp.read(65536)
            if not b:
                break
            h.update(b)
            total += len(b)
        return as_json(start_response, {"len": total, "md5": h.hexdigest()})
    if path == "/input/keep":
        # keep wsgi.input past the request: later use must raise, not crash
        global KEPT
        KEPT = inp
        return as_json(start_response, {"kept": True})
    if path == "/input/kept":
        try:
            KEPT.read(1)
        except ValueError as e:
            return as_json(start_response, {"exc": type(e).__name__, "msg": str(e)})
        return as_json(start_response, {"exc": None})
    if path == "/input/ignore":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"did not read the body"]

    # ---- wsgi.file_wrapper
    if path == "/file":
        f = open(q["path"], "rb")
        if "skip" in q:
            f.read(int(q["skip"]))  # a buffered read: the logical position matters
        headers = [("Content-Type", "application/octet-stream")]
        if "cl" in q:
            headers.append(("Content-Length", q["cl"]))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/file-bytesio":
        data = bytes(range(256)) * 1000
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(data), 1000)
    if path == "/file-close":
        class Tracked(io.BytesIO):
            def close(self):
                record("close filelike " + q["tag"])
                super().close()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](Tracked(b"tracked file"), 4)
    if path == "/file-real-close":
        class TrackedFile(io.FileIO):
            def close(self):
                record("close realfile " + q["tag"])
                super().close()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](TrackedFile(q["path"], "rb"))

    # ---- processes and threads
    if path == "/whoami":
        return as_json(start_response, {"pid": os.getpid(), "thread": threading.get_ident(),
                                        "random": random.random(),
                                        "thread_name": threading.current_thread().name})
    if path == "/first-random":
        # the first random number this worker draws: equal in two workers
        # only if random was not re-seeded after fork
        if "s" in q:
            time.sleep(float(q["s"]))
        pid = os.getpid()
        if pid not in FIRST_RANDOM:
            FIRST_RANDOM[pid] = random.random()
        return as_json(start_response, {"pid": pid, "random": FIRST_RANDOM[pid]})
    if path == "/sleep":
        time.sleep(float(q.get("s", "0.05")))
        return as_json(start_response, {"pid": os.getpid(), "thread": threading.get_ident()})
    if path == "/echo":
        body = inp.read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    if path == "/sys":
        import site
        return as_json(start_response, {
            "executable": sys.executable, "argv": sys.argv, "path": sys.path,
            "prefix": sys.prefix, "base_prefix": sys.base_prefix,
            "flags_no_user_site": sys.flags.no_user_site,
            "stdout_line_buffering": getattr(sys.stdout, "line_buffering", None),
            "modules_wharf": "wharf" in sys.modules,
            "sigint": str(__import__("signal").getsignal(__import__("signal").SIGINT)),
            "cwd": os.getcwd(), "pythonpath_env": os.environ.get("PYTHONPATH"),
            "site_packages": site.getsitepackages(),
        })
    if path == "/lazy":
        global KEPT_VAR
        v = environ.get("wharf.session")
        out = []
        for op in q.get("ops", "load").split(","):
            if op == "load":
                r = v.load()
                out.append(None if r is None else r.decode("latin-1"))
            elif op.startswith("store:"):
                out.append(v.store(op[6:].encode()))
            elif op == "delete":
                out.append(v.delete())
            elif op == "regenerate":
                out.append(v.regenerate())
            elif op == "keep":
                KEPT_VAR = v
                out.append(repr(v))
            elif op == "kept":
                try:
                    KEPT_VAR.load()
                    out.append("no error")
                except RuntimeError as e:
                    out.append("RuntimeError: " + str(e))
            elif op == "store-str":
                try:
                    v.store("text")
                except TypeError as e:
                    out.append("TypeError")
        return as_json(start_response, {"type": type(v).__module__ + "." + type(v).__name__,
                                        "name": getattr(v, "name", None), "results": out})
    if path == "/vars":
        out = {}
        for k, v in environ.items():
            if k.startswith("wharf."):
                out[k] = [type(v).__name__, v if isinstance(v, str) else repr(v)]
        return as_json(start_response, out)

    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such test path: " + path.encode("latin-1")]


application = app
