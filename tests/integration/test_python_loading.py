"""How the python plugin finds, imports and runs apps: module / wsgi-file /
callable / mount, import errors and need-app, lazy-apps, --check-config,
the interpreter's setup (sys.executable, sys.path, virtualenvs, C
extension modules), fork hygiene (random re-seeded, atexit) and the
SIGURG stack dump."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))
from pyharness import APPS, PYTHON, app_options, get  # noqa: E402
from loadgen import LoadGen  # noqa: E402
from wharfctl import alive, wait_for  # noqa: E402

LOAD_ERRORS = [r"python: cannot load the app"]


def run_to_exit(wharf, options, env=None, args=(), timeout=60):
    srv = wharf(options, start=False, env=env)
    p = srv.run(*args, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


# ------------------------------------------------------------------ import errors and need-app

@pytest.mark.parametrize("broken_by,what", [("runtime", "RuntimeError: broken at import on purpose"),
                                            ("syntax", "SyntaxError")])
def test_import_error_preload_exits_1_with_traceback(wharf, broken_by, what):
    rc, out = run_to_exit(wharf, app_options("broken_import"), env={"BROKEN_BY": broken_by})
    assert rc == 1, out
    assert "Traceback (most recent call last)" in out
    assert what in out
    # one line naming the option and the module
    assert re.search(r"module: cannot load broken_import:application: .*" + re.escape(what.split(":")[0]), out)
    assert "spawned worker" not in out, "preload fails in the master, before any fork"


def test_import_error_lazy_apps_exits_1(wharf):
    rc, out = run_to_exit(wharf, app_options("broken_import", lazy_apps=True, processes=2))
    assert rc == 1, out
    assert "RuntimeError: broken at import on purpose" in out
    assert "Traceback (most recent call last)" in out
    assert "could not start" in out


@pytest.mark.parametrize("module,msg", [
    ("nosuchmodule_xyz", "No module named 'nosuchmodule_xyz'"),
    ("scriptapp:nope", "module 'scriptapp' has no attribute 'nope'"),
    ("scriptapp:not_callable", "is a int, not a WSGI callable"),
])
def test_bad_app_names(wharf, module, msg):
    rc, out = run_to_exit(wharf, app_options(module))
    assert rc == 1 and msg in out, out


@pytest.mark.parametrize("opts,msg", [
    ([("module", "not a module")], "is not a module name"),
    ([("module", "scriptapp:bad name")], "is not a callable name"),
    ([("wsgi-file", "/nonexistent/app.py")], "cannot open '/nonexistent/app.py'"),
    ([("module", "scriptapp"), ("wsgi-file", os.path.join(APPS, "pepapp.py"))], "both module and wsgi-file"),
    ([("module", "scriptapp:app_a"), ("callable", "app_b")], "names the callable 'app_a' but callable = app_b"),
    ([("mount", "noslash=scriptapp")], "is not /prefix=module:app"),
    ([("module", "scriptapp"), ("mount", "/=scriptapp:app_a")], "mounted twice"),
    ([("home", "/nonexistent-venv"), ("module", "scriptapp")], "is not a directory"),
    ([("plugin", "python")], "no WSGI app configured"),
])
def test_config_errors_also_in_check_config(wharf, opts, msg):
    base = [("pythonpath", APPS)] + opts
    rc, out = run_to_exit(wharf, base)
    assert rc == 1 and msg in out, out
    rc, out = run_to_exit(wharf, base, args=["--check-config"])
    assert rc == 1 and msg in out, out


def test_check_config_does_not_import(wharf, tmp_path):
    marker = tmp_path / "imported.txt"
    rc, out = run_to_exit(wharf, app_options("sideeffect"), env={"SIDEEFFECT_FILE": str(marker)},
                          args=["--check-config"])
    assert rc == 0, out
    assert not marker.exists()


def test_need_app_false_serves_503(wharf):
    srv = wharf(app_options("broken_import", need_app=False), allowed_errors=LOAD_ERRORS)
    r, body = get(srv, "/")
    assert r.status == 503
    assert "need-app = false" in srv.log()


# ------------------------------------------------------------------ module, callable, wsgi-file, mount

@pytest.mark.parametrize("opts,who", [
    ([("module", "scriptapp")], "application"),
    ([("wsgi", "scriptapp")], "application"),
    ([("module", "scriptapp"), ("callable", "app_a")], "a"),
    ([("module", "scriptapp:app_b")], "b"),
    ([("module", "scriptapp:holder.inner")], "holder.inner"),
    ([("module", "scriptapp:create_app()")], "factory"),
])
def test_module_and_callable(wharf, opts, who):
    srv = wharf([("pythonpath", APPS)] + opts)
    assert json.loads(get(srv, "/x")[1])["app"] == who


def test_wsgi_file_finds_its_siblings(wharf):
    path = os.path.join(APPS, "filedir", "app_file.py")
    srv = wharf([("wsgi-file", path)])
    d = json.loads(get(srv, "/p")[1])
    assert d["who"].startswith("sibling module")
    assert d["name"].startswith("wharf_file")
    srv2 = wharf([("wsgi-file", path), ("callable", "other")], name="other")
    assert get(srv2, "/")[1] == b"other callable"


def test_mount_longest_prefix_wins(wharf):
    srv = wharf([("pythonpath", APPS), ("module", "scriptapp:app_default"),
                 ("mount", ["/a=scriptapp:app_a", "/a/b/=scriptapp:app_b",
                            "/f=" + os.path.join(APPS, "filedir", "app_file.py")])])
    cases = {
        "/": ("default", "", "/"),
        "/a": ("a", "/a", ""),
        "/a/": ("a", "/a", "/"),
        "/a/x/y": ("a", "/a", "/x/y"),
        "/ab": ("default", "", "/ab"),
        "/a/b": ("b", "/a/b", ""),
        "/a/b/c": ("b", "/a/b", "/c"),
        "/a/bc": ("a", "/a", "/bc"),
        "/zzz?q=1": ("default", "", "/zzz"),
    }
    for path, (app, script, info) in cases.items():
        d = json.loads(get(srv, path)[1])
        assert (d["app"], d["script_name"], d["path_info"]) == (app, script, info), path
    d = json.loads(get(srv, "/f/x")[1])
    assert d["script_name"] == "/f" and d["path_info"] == "/x" and d["who"].startswith("sibling")


def test_mount_without_default_app_is_404_elsewhere(wharf):
    srv = wharf([("pythonpath", APPS), ("mount", "/only=scriptapp:app_a")])
    assert get(srv, "/only/x")[0].status == 200
    assert get(srv, "/other")[0].status == 404


# ------------------------------------------------------------------ the interpreter

def test_interpreter_setup(wharf, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    srv = wharf(app_options(), env={"PYTHONPATH": str(extra)})
    d = json.loads(get(srv, "/sys")[1])
    assert d["executable"] == PYTHON
    assert d["argv"] == ["wharf"]
    assert d["path"][0] == APPS                      # pythonpath first
    assert d["path"][1] == d["cwd"] == srv.tmpdir    # then the current directory
    assert str(extra) in d["path"]                   # PYTHONPATH is honoured
    assert d["prefix"] == "/usr"
    assert d["modules_wharf"] is True
    assert "default_int_handler" not in d["sigint"], "no Python signal handlers: the core owns signals"


def test_chdir_and_relative_module(wharf, tmp_path):
    appdir = tmp_path / "proj"
    appdir.mkdir()
    (appdir / "wsgi.py").write_text(
        "import os\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [os.getcwd().encode()]\n")
    srv = wharf([("chdir", str(appdir)), ("module", "wsgi:app")])
    assert get(srv, "/")[1] == str(appdir).encode()


def test_c_extension_modules_import(wharf):
    srv = wharf(app_options("extmods"))
    r, body = get(srv, "/")
    assert r.status == 200, body
    d = json.loads(body)
    assert d["json_c"] and d["sqlite"] == 42 and d["decimal"] == "3.3" and "OpenSSL" in d["ssl"]
    assert d["flask"] == "flask"


VENV_APP = """
import json, sys
try:
    import flask
    has_flask = True
except ImportError:
    has_flask = False
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"prefix": sys.prefix, "base_prefix": sys.base_prefix,
                        "executable": sys.executable, "has_flask": has_flask,
                        "file": __file__}).encode()]
"""


@pytest.mark.parametrize("system_site", [False, True])
def test_virtualenv_home(wharf, tmp_path, system_site):
    venv = tmp_path / "venv"
    cmd = [PYTHON, "-m", "venv", "--without-pip", str(venv)]
    if system_site:
        cmd.insert(3, "--system-site-packages")
    subprocess.run(cmd, check=True)
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / "venvapp.py").write_text(VENV_APP)
    srv = wharf([("home", str(venv)), ("module", "venvapp")])
    d = json.loads(get(srv, "/")[1])
    assert d["prefix"] == str(venv)
    assert d["base_prefix"] == "/usr"
    assert d["executable"].startswith(str(venv) + "/bin/python")
    assert d["file"].startswith(str(site))
    assert d["has_flask"] is system_site


def test_virtualenv_of_another_python_is_refused(wharf, tmp_path):
    venv = tmp_path / "venv39"
    (venv / "lib" / "python3.9" / "site-packages").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /opt/python3.9/bin\n")
    rc, out = run_to_exit(wharf, app_options(home=str(venv)))
    assert rc == 1 and "virtualenv of another Python" in out, out


# ------------------------------------------------------------------ where the app runs

def test_preload_imports_once_in_the_master(wharf, tmp_path):
    marker = tmp_path / "imports.txt"
    srv = wharf(app_options("sideeffect", processes=2), env={"SIDEEFFECT_FILE": str(marker)})
    assert marker.read_text().split() == ["import", str(srv.pid)]
    worker = int(get(srv, "/")[1])
    assert worker != srv.pid


def test_lazy_apps_import_in_each_worker(wharf, tmp_path):
    marker = tmp_path / "imports.txt"
    srv = wharf(app_options("sideeffect", lazy_apps=True, processes=2), env={"SIDEEFFECT_FILE": str(marker)})
    pids = sorted(int(line.split()[1]) for line in marker.read_text().splitlines())
    assert len(pids) == 2 and srv.pid not in pids
    assert sorted(srv.worker_pids()) == pids


def test_atexit_runs_when_a_worker_stops(wharf, tmp_path):
    marker = tmp_path / "imports.txt"
    srv = wharf(app_options("sideeffect"), env={"SIDEEFFECT_FILE": str(marker)})
    worker = int(get(srv, "/")[1])
    srv.stop(sig=signal.SIGTERM)
    assert f"atexit {worker}" in marker.read_text()
    assert f"atexit {srv.pid}" not in marker.read_text()


def test_random_is_reseeded_in_each_worker(wharf):
    srv = wharf(app_options(processes=2))
    seen = {}
    lock = threading.Lock()

    def hit():
        d = requests.get(srv.url + "/first-random?s=0.2").json()
        with lock:
            seen[d["pid"]] = d["random"]

    for _ in range(5):
        threads = [threading.Thread(target=hit) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if len(seen) == 2:
            break
    assert len(seen) == 2, "both workers should have answered"
    a, b = seen.values()
    assert a != b


def test_sigurg_dumps_the_python_stack(wharf):
    srv = wharf(app_options(threads=2))
    t = threading.Thread(target=lambda: requests.get(srv.url + "/sleep?s=1.5"))
    t.start()
    time.sleep(0.3)
    (pid,) = srv.worker_pids()
    os.kill(pid, signal.SIGURG)
    srv.wait_log(r'File ".*pepapp\.py", line \d+ in app')
    t.join()
    assert "most recent call first" in srv.log()
    assert get(srv, "/hello")[0].status == 200, "the worker survives the dump"


# ------------------------------------------------------------------ readiness and reload

def have_plugin(name):
    from wharfctl import PLUGINS_DIR
    return os.path.exists(os.path.join(PLUGINS_DIR, f"{name}_plugin.so"))


@pytest.mark.skipif(not have_plugin("healthz"), reason="healthz plugin not built")
def test_readiness_follows_the_app(wharf):
    srv = wharf(app_options(healthz="/healthz"))
    assert requests.get(srv.url + "/healthz/ready").status_code == 200
    bad = wharf(app_options("broken_import", need_app=False, healthz="/healthz"), name="bad",
                allowed_errors=LOAD_ERRORS)
    assert requests.get(bad.url + "/healthz/ready").status_code == 503
    assert requests.get(bad.url + "/healthz/live").status_code == 200


@pytest.mark.parametrize("lazy_apps", [False, True], ids=["preload", "lazy-apps"])
def test_sighup_reloads_the_app_code(wharf, tmp_path, lazy_apps, report):
    """SIGHUP re-imports the app from disk (a new master image, never a
    fork of the old app; with lazy-apps each new worker imports it) and
    replaces the workers: the new code answers within 5 s, and 2 keep-alive
    clients hammering the server meanwhile see no failed request."""
    appdir = tmp_path / "proj"
    appdir.mkdir()
    code = ("import os\n"
            "def application(environ, start_response):\n"
            "    pid = str(os.getpid())\n"
            "    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Worker-Pid', pid),\n"
            "                              ('X-App-Version', '%s')])\n"
            "    return [b'pid ' + pid.encode() + b'\\n']\n")
    (appdir / "reloadme.py").write_text(code % "v1")
    srv = wharf([("chdir", str(appdir)), ("module", "reloadme"), ("processes", 2),
                 ("lazy-apps", lazy_apps), ("disable-logging", True)])
    load = LoadGen(srv.port, "/", clients=2)
    load.phase = "before"
    load.start()
    try:
        load.wait_ok(100)
        old = srv.worker_pids()
        # (a different size: .pyc files are checked by source mtime and size)
        (appdir / "reloadme.py").write_text(code % "v2-new")
        load.phase = "reload"
        srv.signal(signal.SIGHUP)
        t0 = time.monotonic()
        wait_for(lambda: get(srv, "/")[0].getheader("X-App-Version") == "v2-new", timeout=5,
                 what="the new code to answer")
        took = time.monotonic() - t0
        srv.wait_log(r"reload: all workers replaced", timeout=30)
        wait_for(lambda: not any(alive(p) for p in old), timeout=30, what="the old workers to drain")
        load.phase = "after"
        load.wait_ok(load.ok + 100)
    finally:
        load.stop()
    report(f"SIGHUP ({'lazy-apps' if lazy_apps else 'preload'}): new code after {took:.2f} s; "
          f"{load.summary()}; versions {dict(load.versions)}")
    assert load.total_failures == 0 and load.retries == 0, (load.summary(), load.failed[:5])
    assert load.versions[("before", "v1")] > 0 and ("before", "v2-new") not in load.versions
    assert set(v for (p, v) in load.versions if p == "after") == {"v2-new"}
    assert srv.log().count("reload: all workers replaced") == 1


@pytest.mark.skipif(not have_plugin("harakiri"), reason="harakiri plugin not built")
@pytest.mark.parametrize("threads", [1, 4])
def test_harakiri_logs_the_python_stack_and_replaces_the_worker(wharf, threads):
    srv = wharf(app_options(harakiri=1, threads=threads), allowed_errors=[r"HARAKIRI", r"died"])
    before = srv.worker_pids()
    try:
        requests.get(srv.url + "/sleep?s=30", timeout=15)
    except requests.RequestException:
        pass
    srv.wait_log(r"HARAKIRI: worker pid \d+ thread \d+: GET /sleep\?s=30")
    srv.wait_log(r'File ".*pepapp\.py", line \d+ in app')
    log = srv.log()
    assert "most recent call first" in log
    assert "in app" in log[log.index("HARAKIRI"):]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (srv.worker_pids() == before or not srv.worker_pids()):
        time.sleep(0.1)
    assert srv.worker_pids() and srv.worker_pids() != before
    assert get(srv, "/hello")[0].status == 200
