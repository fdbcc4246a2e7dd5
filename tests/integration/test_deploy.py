"""A whole zero-downtime deploy under load, through nginx (issue 10).

Two wharf instances (A and B, `processes = 2`, `threads = 4`) behind
Debian's nginx with contrib/deploy/nginx-upstream.conf (ports rendered),
the app's sessions in a real Redis, its schema in a real PostgreSQL
migrated by `wharf --migrate`.  Load generators run through nginx for the
whole deploy (keep-alive clients on a cheap URL and on one that reads the
database), and every request is counted under the step it was sent in.

    1. `wharf --migrate` to revision 1, start A and B with app v1
    2. create a session (a cookie) through nginx
    3. write v2 of the app and revision 2 (an additive column, which v1's
       query ignores) to disk; `wharf --migrate` to revision 2
    4. SIGHUP A, wait until A answers with v2 and is ready; then B
    5. upgrade A's binary in place: a new file over the old, then SIGUSR2
    6. SIGTERM B (readiness fails first, then B stops accepting), start it
       again

Asserted: 0 failed requests through nginx, every request sent after step
4 answered by v2, the session of step 2 still there, and B's
/healthz/ready answering 503 before B refused its first connection.  The
procedure is contrib/deploy/README.md's.
"""
import os
import shutil
import signal
import threading
import time

import pytest
import requests

from loadgen import LoadGen, record_run
import services
from services import NGINX, Nginx
from wharfctl import PLUGINS_DIR, SRCDIR, WHARF, alive, free_port, stop_foreign_master, wait_for

SITE = os.path.join(SRCDIR, "contrib", "deploy", "nginx-upstream.conf")
MIGRATIONS = os.path.join(SRCDIR, "contrib", "examples", "flaskapp", "migrations")
PYLIB = os.path.join(SRCDIR, "plugins", "python", "pylib")
REV1, REV2 = "0001_create_items", "0002_items_note"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed"),
    pytest.mark.skipif(not all(os.path.exists(os.path.join(PLUGINS_DIR, f"{p}_plugin.so"))
                               for p in ("python", "healthz", "migrate", "redis_session")),
                       reason="needs the python, healthz, migrate and redis_session plugins"),
]

# The app, in two releases.  v2 reads the column revision 2 adds; v1 never
# names it, so v1 keeps working once the column exists (additive first).
APP = '''
import os
import threading

import psycopg2
from flask import Flask, Response, request, session
from wharf_session import WharfSessionInterface

VERSION = "%(version)s"
COLUMNS = "%(columns)s"

app = Flask(__name__)
app.session_interface = WharfSessionInterface()
local = threading.local()


def db():
    conn = getattr(local, "conn", None)
    if conn is None or conn.closed:
        conn = local.conn = psycopg2.connect(os.environ["DATABASE_URL"])
        conn.autocommit = True
    return conn


def answer(text=""):
    pid = os.getpid()
    return Response(f"pid {pid}\\nversion {VERSION}\\n{text}", mimetype="text/plain",
                    headers={"X-Worker-Pid": str(pid), "X-App-Version": VERSION})


@app.get("/pid")
def pid():
    return answer()


@app.get("/items")
def items():
    with db().cursor() as cur:
        cur.execute(f"SELECT {COLUMNS} FROM items ORDER BY id")
        return answer(f"{len(cur.fetchall())} items\\n")


@app.get("/session/set")
def session_set():
    session["cart"] = request.args["v"]
    return answer()


@app.get("/session/get")
def session_get():
    return answer(f"cart {session.get('cart')}\\n")
'''

INI = """[uwsgi]
chdir = {appdir}
module = app:app
pythonpath = {pylib}
http-socket = 127.0.0.1:{port}
processes = 2
threads = 4
disable-logging = true
healthz = /healthz
migrate-dsn = $(DATABASE_URL)
migrate-dir = {appdir}/migrations
migrate-ready = true
session-redis = $(REDIS_URL)
; SIGTERM: readiness fails at once, the socket closes 1 s later
shutdown-delay = 1
graceful-timeout = 10
"""


def write_release(appdir, version):
    """What a deploy tool puts on disk: the app's code and its migrations."""
    columns = "id, name" if version == "v1" else "id, name, note"
    (appdir / "app.py").write_text(APP % {"version": version, "columns": columns})
    versions = appdir / "migrations" / "versions"
    revisions = [REV1] if version == "v1" else [REV1, REV2]
    for rev in revisions:
        shutil.copy(os.path.join(MIGRATIONS, "versions", rev + ".py"), versions)


def render_site(tmp, nginx_port, port_a, port_b):
    return services.render_site(SITE, tmp, [
        ("listen 80;", f"listen 127.0.0.1:{nginx_port};"),
        ("server 127.0.0.1:8001 ", f"server 127.0.0.1:{port_a} "),
        ("server 127.0.0.1:8002 ", f"server 127.0.0.1:{port_b} ")])


def get(url, path, **kw):
    kw.setdefault("timeout", 10)
    return requests.get(url + path, headers={"Connection": "close"}, **kw)


def version_of(url):
    r = get(url, "/pid")
    assert r.status_code == 200, r.text
    return r.headers["X-App-Version"]


class ReadinessWatch:
    """Polls one instance's /healthz/ready on fresh connections and keeps
    the outcomes in order, runs merged: [["200", 31], ["503", 40],
    ["refused", 12]].  Returns from the constructor once it has a first
    answer."""

    def __init__(self, url):
        self.url = url
        self.runs = []
        self.bodies = []   # the first few 503 bodies: why
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        wait_for(lambda: self.runs, what=f"a first readiness answer from {url}")

    def _loop(self):
        while not self._stop.is_set():
            try:
                r = get(self.url, "/healthz/ready", timeout=5)
                outcome = str(r.status_code)
                if r.status_code != 200 and len(self.bodies) < 5:
                    self.bodies.append(r.text)
            except requests.ConnectionError:
                outcome = "refused"
            record_run(self.runs, outcome)
            time.sleep(0.005)

    def stop(self):
        self._stop.set()
        self._t.join(10)
        return self.runs


# Three whole deploys in a row, each on a fresh database, Redis and nginx: a
# race that loses one request in a hundred thousand shows up here.
@pytest.mark.parametrize("run", [1, 2, 3])
def test_zero_downtime_deploy_through_nginx(wharf, postgres, redis_server, tmp_path, request, run,
                                           report):
    pytest.importorskip("flask")
    pytest.importorskip("psycopg2")
    appdir = tmp_path / "app"
    (appdir / "migrations" / "versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako", "alembic.ini"):
        shutil.copy(os.path.join(MIGRATIONS, name), appdir / "migrations")
    write_release(appdir, "v1")
    db = postgres.new_database()
    env = {"DATABASE_URL": postgres.dsn(db), "REDIS_URL": redis_server.url}

    # A runs from its own copy of the binary, so that step 5 can install a
    # new file over it as a package upgrade does
    bindir = tmp_path / "bin"
    bindir.mkdir()
    binary = str(bindir / "wharf")
    shutil.copy2(WHARF, binary)

    port_a, port_b, nginx_port = free_port(), free_port(), free_port()

    def instance(name, port, **kw):
        ini = INI.format(appdir=appdir, pylib=PYLIB, port=port)
        return wharf(ini=ini, port=port, name=name, env=env, start=False, **kw)

    a = instance("A", port_a, binary=binary)
    b = instance("B", port_b)
    masters = []                      # foreign masters (SIGUSR2) to stop at the end
    request.addfinalizer(lambda: [stop_foreign_master(pid) for pid in masters])

    # ---- 1. migrate to revision 1, start v1
    r = a.run("--migrate", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert postgres.value("SELECT version_num FROM alembic_version", db) == REV1
    a.start()
    b.start()
    ngx = Nginx(str(tmp_path), render_site(str(tmp_path), nginx_port, port_a, port_b))
    checked = ngx.test_config()
    assert checked.returncode == 0, checked.stderr
    ngx.start(nginx_port)
    request.addfinalizer(ngx.stop)
    front = f"http://127.0.0.1:{nginx_port}"

    fast = LoadGen(nginx_port, "/pid", clients=4)
    dbload = LoadGen(nginx_port, "/items", clients=1)
    loads = (fast, dbload)

    def step(name):
        """Begin a step: later requests count under `name`; make sure some
        requests of the step before went through."""
        for load in loads:
            load.phase = name
        fast.wait_ok(fast.ok + 150, timeout=60)
        dbload.wait_ok(dbload.ok + 15, timeout=60)

    for load in loads:
        load.phase = "1 v1 serving"
        load.start()
    try:
        fast.wait_ok(200)
        dbload.wait_ok(20)
        assert {version_of(a.url), version_of(b.url)} == {"v1"}

        # ---- 2. a session, through nginx
        step("2 session created")
        user = requests.Session()
        resp = user.get(front + "/session/set?v=anchor-42", timeout=10)
        assert resp.status_code == 200 and "session" in user.cookies, resp.headers

        # ---- 3. the new release on disk, the additive migration
        step("3 migrate to revision 2")
        write_release(appdir, "v2")
        r = a.run("--migrate", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"migrated {REV1} -> {REV2}" in r.stdout + r.stderr
        assert postgres.value("SELECT version_num FROM alembic_version", db) == REV2
        # v1 keeps serving its query on the new schema
        dbload.wait_ok(dbload.ok + 10)

        # ---- 4. reload A, then B: new code from disk
        reload_readiness = {}
        for name, srv in (("4a reload A", a), ("4b reload B", b)):
            step(name)
            old = srv.worker_pids()
            watch = ReadinessWatch(srv.url)
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"reload: all workers replaced", timeout=30)
            wait_for(lambda: not any(alive(p) for p in old), timeout=30,
                     what=f"{name}: the old workers to drain")
            assert version_of(srv.url) == "v2"
            # a reload is no reason for a load balancer to look elsewhere
            reload_readiness[name] = watch.stop()
            assert [o for o, _ in reload_readiness[name]] == ["200"], (reload_readiness, watch.bodies)

        # ---- 5. new binary for A, in place
        step("5 binary upgrade of A")
        shutil.copy2(WHARF, binary + ".new")
        os.rename(binary + ".new", binary)       # what dpkg does
        old_master = a.pid
        a.signal(signal.SIGUSR2)
        a.wait_log(r"binary upgrade: started \S+ as new master pid \d+", timeout=30)
        new_master = int(a.log().rsplit("as new master pid ", 1)[1].split()[0])
        masters.append(new_master)
        assert a.wait_exit(30) == 0
        assert new_master != old_master and alive(new_master)
        assert os.readlink(f"/proc/{new_master}/exe") == binary   # the new file, not "(deleted)"
        assert version_of(a.url) == "v2"

        # ---- 6. stop B, start it again
        step("6 restart B")
        watch = ReadinessWatch(b.url)
        b.signal(signal.SIGTERM)
        assert b.wait_exit(30) == 0
        wait_for(lambda: watch.runs[-1][0] == "refused", what="B to refuse connections")
        runs = watch.stop()
        b2 = instance("B-again", port_b)
        b2.start()
        wait_for(lambda: any(str(p) in fast.pids for p in b2.worker_pids()),
                 timeout=30, what="nginx to send requests to the restarted B")

        step("7 after the deploy")
        fast.wait_ok(fast.ok + 150)
        dbload.wait_ok(dbload.ok + 15)
    finally:
        for load in loads:
            load.stop()

    # ---- the counts
    phases = list(dict.fromkeys(p for load in loads for p in load.by_phase))
    versions = fast.versions + dbload.versions      # (phase, version) -> n

    def answered_by(phase):
        return {v: n for (p, v), n in versions.items() if p == phase}

    report(f"deploy {run} through nginx, requests per step (fast /pid + db /items):")
    for phase in phases:
        counts = dict(fast.by_phase[phase] + dbload.by_phase[phase])
        report(f"  {phase:26} {counts}  answered by {answered_by(phase)}")
    report(f"  total: fast {fast.summary()}, db {dbload.summary()}")
    report(f"  readiness during the reloads: {reload_readiness}")
    report(f"  B's readiness while stopping: {runs}")

    for load in loads:
        assert load.total_failures == 0, f"failed requests: {load.summary()}; first: {load.failed[:5]}"
        assert load.retries == 0, load.retried[:5]
        assert not load.errors
    # every request sent after step 4 was answered by v2; none before it
    for phase in phases:
        seen = set(answered_by(phase))
        if phase >= "5":
            assert seen == {"v2"}, (phase, seen)
        elif phase < "4":
            assert seen == {"v1"}, (phase, seen)
    # the session of step 2 outlived every process that served it
    resp = user.get(front + "/session/get", timeout=10)
    assert resp.status_code == 200 and "cart anchor-42\n" in resp.text, resp.text
    # B said "not ready" while it still accepted, before it stopped accepting
    outcomes = [o for o, _ in runs]
    assert "503" in outcomes and "refused" in outcomes, runs
    assert outcomes.index("503") < outcomes.index("refused"), runs
    assert "200" not in outcomes[outcomes.index("503"):], runs


SLOW_IMPORT = '''
import os
import time

# the second import (after a reload) is slow, as a big app's can be
if os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow")):
    time.sleep(6)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def test_readiness_stays_200_through_a_reload_slower_than_check_results_last(wharf, redis_server,
                                                                              tmp_path, report):
    """A check result is trusted for 5 s.  A reload whose app import takes
    6 s must not let the results go stale: the previous image's checker
    keeps them fresh until the new image's checker has a round of its own,
    so /healthz/ready answers 200 throughout."""
    appdir = tmp_path / "slowapp"
    appdir.mkdir()
    (appdir / "slowimport.py").write_text(SLOW_IMPORT)
    srv = wharf([("chdir", str(appdir)), ("module", "slowimport"), ("processes", 2),
                 ("healthz", "/healthz"), ("session-redis", redis_server.url)])
    wait_for(lambda: get(srv.url, "/healthz/ready").status_code == 200,
             what="the first round of checks")
    (appdir / "slow").write_text("")
    watch = ReadinessWatch(srv.url)
    t0 = time.monotonic()
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"reload: all workers replaced", timeout=60)
    took = time.monotonic() - t0
    runs = watch.stop()
    report(f"reload with a 6 s import took {took:.1f} s; readiness meanwhile {runs}")
    assert took > 6
    assert [o for o, _ in runs] == ["200"], (runs, watch.bodies)
    assert "checker" not in srv.log().split("reload: starting a new image", 1)[1]  # no checker died
