"""Imports C extension modules that live outside libpython (lib-dynload):
they resolve Py* symbols globally, so libpython must be RTLD_GLOBAL."""
import _decimal
import hashlib
import json
import sqlite3
import ssl
import flask
import werkzeug

from json import decoder


def application(environ, start_response):
    con = sqlite3.connect(":memory:")
    (n,) = con.execute("select 40 + 2").fetchone()
    body = json.dumps({
        "json_c": decoder.c_scanstring is not None,
        "ssl": ssl.OPENSSL_VERSION,
        "sqlite": n,
        "decimal": str(_decimal.Decimal("1.1") + _decimal.Decimal("2.2")),
        "sha256": hashlib.sha256(b"x").hexdigest()[:8],
        "flask": flask.__name__,
        "werkzeug": werkzeug.__name__,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
