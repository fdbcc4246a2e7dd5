"""Several callables that report who answered and the SCRIPT_NAME /
PATH_INFO split (for mount), plus a factory."""
import json
import os

IMPORT_PID = os.getpid()


def _make(name):
    def app(environ, start_response):
        body = json.dumps({"app": name, "script_name": environ["SCRIPT_NAME"],
                           "path_info": environ["PATH_INFO"], "import_pid": IMPORT_PID,
                           "pid": os.getpid(), "ppid": os.getppid()}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    return app


app_default = _make("default")
app_a = _make("a")
app_b = _make("b")
application = _make("application")


class Holder:
    inner = staticmethod(_make("holder.inner"))


holder = Holder()


def create_app():
    return _make("factory")


not_callable = 42
