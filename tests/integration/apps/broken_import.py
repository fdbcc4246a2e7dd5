"""An app whose import fails: startup must fail with the traceback."""
import os

BROKEN_BY = os.environ.get("BROKEN_BY", "runtime")
if BROKEN_BY == "runtime":
    raise RuntimeError("broken at import on purpose")
if BROKEN_BY == "syntax":
    exec("def f(:\n    pass")


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"not broken"]
