"""Records its import (pid) in the file named by SIDEEFFECT_FILE, and an
atexit hook, to see where and whether it was imported."""
import atexit
import os

path = os.environ["SIDEEFFECT_FILE"]
with open(path, "a") as f:
    f.write("import %d\n" % os.getpid())


@atexit.register
def _bye():
    with open(path, "a") as f:
        f.write("atexit %d\n" % os.getpid())


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d" % os.getpid()]
