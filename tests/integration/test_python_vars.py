"""Request variables in the environ as wharf.<name>: plain ones as str,
lazy ones as wharf.LazyVar (load/store/delete/regenerate call the owning
plugin's callbacks).  Variables come from a test plugin,
tests/fixtures/plugins/pyvars.c, loaded by path."""
import json
import os
import sys

import pytest

from wharfctl import BUILDDIR

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))
from pyharness import app_options, get  # noqa: E402

PYVARS = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", "pyvars_plugin.so")


@pytest.fixture
def srv(wharf):
    assert os.path.exists(PYVARS), "make builds tests/fixtures/plugins/pyvars_plugin.so"
    return wharf(app_options(extra=[("plugin", PYVARS)], threads=2))


def lazy(srv, ops, mode=None):
    headers = {"X-Session-Mode": mode} if mode else {}
    r, body = get(srv, "/lazy?ops=" + ",".join(ops), headers=headers)
    assert r.status == 200, body
    return json.loads(body), r.getheader("X-Request-ID")


def test_plain_and_lazy_vars_in_environ(srv):
    d = json.loads(get(srv, "/vars")[1])
    assert d["wharf.plain"] == ["str", "hello"]
    assert d["wharf.latin"] == ["str", "caf\u00e9"]
    assert d["wharf.session"][0] == "LazyVar"


def test_lazy_load_runs_once(srv):
    d, rid = lazy(srv, ["load", "load", "load"])
    assert d["type"] == "wharf.LazyVar" and d["name"] == "session"
    assert d["results"] == ["stored-data"] * 3
    srv.wait_log(f"pyvars: load #1 mode=value rid={rid}")
    assert f"load #2 mode=value rid={rid}" not in srv.log()


def test_lazy_not_loaded_when_unused(srv):
    r, _ = get(srv, "/hello")
    rid = r.getheader("X-Request-ID")
    get(srv, "/hello")
    assert f"mode=value rid={rid}" not in srv.log()


def test_lazy_none_and_fail(srv):
    d, _ = lazy(srv, ["load"], mode="none")
    assert d["results"] == [None]
    d, _ = lazy(srv, ["load"], mode="fail")
    assert d["results"] == [None]


def test_lazy_store_delete_regenerate(srv):
    d, rid = lazy(srv, ["load", "store:new-value", "load", "regenerate", "delete", "load",
                        "store:fail", "store-str"])
    assert d["results"] == ["stored-data", True, "new-value", True, True, None, False, "TypeError"]
    srv.wait_log(f"store flags=0 value=fail rid={rid}")
    log = srv.log()
    assert f"store flags=0 value=new-value rid={rid}" in log
    assert f"store flags=2 value=new-value rid={rid}" in log   # WHARF_VAR_REGENERATE keeps the value
    assert f"store flags=1 value= rid={rid}" in log            # WHARF_VAR_DELETE


def test_lazy_var_after_its_request(srv):
    """A LazyVar kept past its request raises instead of touching it.  (The
    client may have the whole response a moment before the request's thread
    cuts its objects loose, so the next request may still see it live.)"""
    import time
    lazy(srv, ["keep"])
    deadline = time.monotonic() + 5
    while True:
        d, _ = lazy(srv, ["kept"])
        if d["results"][0] != "no error" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert d["results"][0].startswith("RuntimeError: wharf.session is used after its request ended")
