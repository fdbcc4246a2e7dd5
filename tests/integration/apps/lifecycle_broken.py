"""An app whose import fails in a function of its own (the traceback must
name it): tests/integration/test_lifecycle.py."""


def load_settings():
    raise RuntimeError("settings.ini is missing (lifecycle test)")


SETTINGS = load_settings()


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"never\n"]
