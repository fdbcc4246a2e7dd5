"""redis_session plugin + wharf_session.py with a real Flask app and a real
redis-server (the `redis_server` fixture).

The app uses `app.session_interface = WharfSessionInterface()` and nothing
else: flask.session then lives in Redis, so any worker serves any user.
"""
import concurrent.futures
import os
import re
import time

import pytest
import requests

from wharfctl import PLUGINS_DIR, SRCDIR, wait_for

PYLIB = os.path.join(SRCDIR, "plugins", "python", "pylib")
PREFIX = "wharf:session:"
ID_RE = r"[A-Za-z0-9_-]{43}"

APP = '''
import os, time
from flask import Flask, jsonify, request, session
from wharf_session import WharfSessionInterface

app = Flask(__name__)
app.session_interface = WharfSessionInterface()


def answer(**kw):
    time.sleep(float(request.args.get("sleep", 0)))
    return jsonify(pid=os.getpid(), **kw)


@app.get("/pid")
def pid():                      # never touches the session
    return answer()


@app.get("/set")
def set_():
    session[request.args.get("k", "x")] = int(request.args.get("v", 1))
    return answer()


@app.get("/get")
def get():
    return answer(value=session.get(request.args.get("k", "x")))


@app.get("/login")
def login():
    session.regenerate()
    session["user"] = "alice"
    return answer()


@app.get("/logout")
def logout():
    session.delete()
    return answer()


application = app
'''


@pytest.fixture
def session_app(wharf, tmp_path, redis_server):
    if not os.path.exists(os.path.join(PLUGINS_DIR, "python_plugin.so")):
        pytest.skip("python plugin not built")
    pytest.importorskip("flask")
    (tmp_path / "app.py").write_text(APP)

    def start(**options):
        opts = {"wsgi-file": str(tmp_path / "app.py"), "pythonpath": PYLIB,
                "session-redis": redis_server.url, "processes": 1}
        opts.update({k.replace("_", "-"): v for k, v in options.items()})
        return wharf(opts)
    return start


def get(srv, path, cookie=None, **kw):
    headers = {"Connection": "close"}
    if cookie:
        headers["Cookie"] = cookie
    return requests.get(srv.url + path, headers=headers, timeout=10, **kw)


def session_cookie(resp, name="session"):
    """The Set-Cookie value for `name` (raw header), or None."""
    raw = resp.headers.get("Set-Cookie")
    if raw and raw.startswith(name + "="):
        return raw
    return None


def cookie_id(set_cookie, name="session"):
    m = re.match(rf"{name}=({ID_RE});", set_cookie)
    assert m, set_cookie
    return m.group(1)


def commandstats(r):
    return {k: v["calls"] for k, v in
            ((k[len("cmdstat_"):], v) for k, v in r.info("commandstats").items())}


def writes(r):
    stats = commandstats(r)
    return sum(stats.get(c, 0) for c in ("set", "del", "rename", "expire", "getex"))


def test_session_set_on_one_worker_read_by_another(session_app, redis_server):
    srv = session_app(processes=2)
    r1 = get(srv, "/set?v=1")
    assert r1.status_code == 200
    sid = cookie_id(session_cookie(r1))
    pid1 = r1.json()["pid"]

    # Concurrent slow requests keep one worker busy (threads = 1: the app
    # runs on the loop thread), so the others land on the second worker.
    def burst():
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            futs = []
            for _ in range(4):
                futs.append(ex.submit(get, srv, "/get?sleep=0.2", f"session={sid}"))
                time.sleep(0.05)
            return [f.result() for f in futs]

    def other_worker_answered():
        for resp in burst():
            assert resp.status_code == 200
            assert resp.json()["value"] == 1, resp.json()
            if resp.json()["pid"] != pid1:
                return resp
        return None
    resp = wait_for(other_worker_answered, 30, interval=0, what="the other worker to answer")
    assert resp.json()["pid"] in srv.worker_pids()


def test_cookie_attributes_and_ttl(session_app, redis_server):
    srv = session_app(session_ttl="3600")
    r = get(srv, "/set?v=7")
    sc = session_cookie(r)
    assert sc, r.headers
    parts = [p.strip() for p in sc.split(";")]
    assert parts[0] == f"session={cookie_id(sc)}"
    assert "HttpOnly" in parts and "SameSite=Lax" in parts and "Path=/" in parts
    assert "Max-Age=3600" in parts and "Secure" not in parts
    assert "Cookie" in r.headers.get("Vary", "")
    ttl = redis_server.client().ttl(PREFIX + cookie_id(sc))
    assert 3500 < ttl <= 3600


def test_cookie_options(session_app, redis_server):
    srv = session_app(session_cookie="sid", session_cookie_secure=True,
                      session_cookie_samesite="strict", session_cookie_httponly=False,
                      session_prefix="myapp:")
    r = get(srv, "/set?v=1")
    sc = session_cookie(r, "sid")
    parts = [p.strip() for p in sc.split(";")]
    assert "Secure" in parts and "SameSite=Strict" in parts and "HttpOnly" not in parts
    assert redis_server.client().exists("myapp:" + cookie_id(sc, "sid")) == 1
    assert get(srv, "/get", f"sid={cookie_id(sc, 'sid')}").json()["value"] == 1


def test_default_ttl_and_sliding_expiry(session_app, redis_server):
    srv = session_app()
    sid = cookie_id(session_cookie(get(srv, "/set?v=1")))
    rc = redis_server.client()
    assert 1209590 < rc.ttl(PREFIX + sid) <= 1209600
    rc.expire(PREFIX + sid, 100)
    r = get(srv, "/get", f"session={sid}")
    assert r.json()["value"] == 1
    # reading refreshed the TTL (GETEX) and re-sent the cookie's Max-Age
    assert rc.ttl(PREFIX + sid) > 1209500
    assert "Max-Age=1209600" in session_cookie(r)


def test_untouched_session_costs_no_redis_command(session_app, redis_server):
    srv = session_app()
    sid = cookie_id(session_cookie(get(srv, "/set?v=1")))
    rc = redis_server.client()
    before = commandstats(rc)
    for cookie in (None, f"session={sid}", "session=garbage"):
        r = get(srv, "/pid", cookie)
        assert r.status_code == 200
        assert "Set-Cookie" not in r.headers
    after = commandstats(rc)
    after.pop("info", None)
    before.pop("info", None)
    assert after == before, (before, after)
    # reading is one GETEX and no write of the data
    sets = after.get("set", 0)
    assert get(srv, "/get", f"session={sid}").json()["value"] == 1
    final = commandstats(rc)
    assert final.get("set", 0) == sets
    assert final.get("getex", 0) == after.get("getex", 0) + 1


def test_unknown_or_malformed_id_gets_a_fresh_session(session_app, redis_server):
    srv = session_app()
    rc = redis_server.client()
    chosen = "A" * 43  # well-formed, but never issued
    r = get(srv, "/set?v=5", f"session={chosen}")
    sid = cookie_id(session_cookie(r))
    assert sid != chosen                       # no fixation
    assert rc.exists(PREFIX + chosen) == 0
    assert rc.exists(PREFIX + sid) == 1
    for bad in ("session=abc", 'session="' + "B" * 44 + '"', "session=../../x", "session"):
        r = get(srv, "/get", f"a=1; {bad}; b=2")
        assert r.status_code == 200 and r.json()["value"] is None
    # quoted and among other cookies: accepted
    r = get(srv, "/get", f'theme=dark; session="{sid}"; lang=en')
    assert r.json()["value"] == 5


def test_login_regenerates_and_logout_deletes(session_app, redis_server):
    srv = session_app()
    rc = redis_server.client()
    old = cookie_id(session_cookie(get(srv, "/set?v=3")))
    r = get(srv, "/login", f"session={old}")
    new = cookie_id(session_cookie(r))
    assert new != old
    assert rc.exists(PREFIX + old) == 0
    r = get(srv, "/get", f"session={new}")
    assert r.json()["value"] == 3                      # data kept
    assert get(srv, "/get?k=user", f"session={new}").json()["value"] == "alice"

    r = get(srv, "/logout", f"session={new}")
    sc = session_cookie(r)
    assert sc.startswith("session=;") and "Max-Age=0" in sc
    assert rc.exists(PREFIX + new) == 0
    assert get(srv, "/get", f"session={new}").json()["value"] is None


def test_threads_share_the_connection_pool(session_app, redis_server):
    srv = session_app(threads=4)

    def one(i):
        sid = cookie_id(session_cookie(get(srv, f"/set?v={i}")))
        return i, get(srv, "/get?sleep=0.01", f"session={sid}").json()["value"]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        for i, value in ex.map(one, range(40)):
            assert value == i


def test_redis_outage_and_recovery(session_app, redis_server):
    srv = session_app(processes=2, healthz="/healthz")
    sid = cookie_id(session_cookie(get(srv, "/set?v=1")))
    wait_for(lambda: get(srv, "/healthz/ready").status_code == 200, 15, interval=0.1,
             what="readiness 200")
    assert get(srv, "/healthz/ready").json()["checks"]["redis_session"]["ok"] is True

    redis_server.stop()
    t0 = time.monotonic()
    for _ in range(30):
        r = get(srv, "/get", f"session={sid}")
        assert r.status_code == 200 and r.json()["value"] is None   # empty session
        r = get(srv, "/set?v=2")
        assert r.status_code == 200 and "Set-Cookie" not in r.headers  # not saved
    assert time.monotonic() - t0 < 30    # nobody waited for a timeout per request
    srv.wait_log(r"WARN: redis_session: Redis at 127\.0\.0\.1:\d+/0 unreachable")
    warnings = re.findall(r"WARN: redis_session: Redis at .* unreachable", srv.log())
    assert 1 <= len(warnings) <= 4, warnings    # rate-limited, not one per request
    def unready():
        r = get(srv, "/healthz/ready")
        return r.json() if r.status_code == 503 else None
    body = wait_for(unready, 15, interval=0.1, what="readiness 503")
    check = body["checks"]["redis_session"]
    assert check["ok"] is False and check["error"] == "unreachable: Connection refused"

    redis_server.start()   # same port, empty (no persistence)

    def works():
        r = get(srv, "/set?v=9")
        sc = session_cookie(r)
        if not sc:
            return None
        return get(srv, "/get", f"session={cookie_id(sc)}").json()["value"] == 9
    wait_for(works, 15, interval=0.1, what="sessions to work again")
    srv.wait_log(r"INFO: redis_session: Redis at .* is reachable again")
    wait_for(lambda: get(srv, "/healthz/ready").status_code == 200, 15, interval=0.1,
             what="readiness 200 again")


def test_bad_session_config(wharf, tmp_path):
    if not os.path.exists(os.path.join(PLUGINS_DIR, "redis_session_plugin.so")):
        pytest.skip("redis_session plugin not built")
    cases = [
        ({"session-redis": "http://x"}, "session-redis", "expected redis://"),
        ({"session-redis": "redis://h:99999/0"}, "session-redis", "port"),
        ({"session-redis": "rediss://h/0"}, "session-redis", "TLS"),
        ({"session-redis": "redis://h/0", "session-cookie-samesite": "Sometimes"},
         "session-cookie-samesite", "Lax, Strict or None"),
        ({"session-redis": "redis://h/0", "session-cookie-samesite": "None"},
         "session-cookie-samesite", "session-cookie-secure"),
        ({"session-redis": "redis://h/0", "session-cookie": "a b"}, "session-cookie",
         "not a valid cookie name"),
    ]
    for i, (opts, option, text) in enumerate(cases):
        w = wharf(opts, start=False, name=f"bad{i}")
        r = w.run("--check-config")
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert option in out and text in out, out


def test_redis_password_and_database(session_app, redis_factory):
    secret = "Redis-Pw-4242"
    rs = redis_factory(password=secret)
    srv = session_app(session_redis=f"redis://:{secret}@127.0.0.1:{rs.port}/3")
    sid = cookie_id(session_cookie(get(srv, "/set?v=4")))
    assert rs.client(db=3).exists(PREFIX + sid) == 1       # AUTH, then SELECT 3
    assert rs.client(db=0).exists(PREFIX + sid) == 0
    assert get(srv, "/get", f"session={sid}").json()["value"] == 4
    assert secret not in srv.log()


def test_wrong_redis_password_is_an_outage_not_an_error(session_app, redis_factory):
    rs = redis_factory(password="right-one")
    srv = session_app(session_redis=f"redis://:wrong-one@127.0.0.1:{rs.port}/0")
    r = get(srv, "/set?v=1")
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    srv.wait_log(r"WARN: redis_session: Redis at 127\.0\.0\.1:\d+/0 unreachable \(AUTH: "
                 r"WRONGPASS")
    assert "wrong-one" not in srv.log()


# ------------------------------------------------------------ wharf_session.py
# The Session mapping on a stand-in for wharf.LazyVar: what reaches the
# variable is exactly what would reach Redis.

class FakeVar:
    def __init__(self, value=None, fail=False):
        self.value, self.fail, self.calls = value, fail, []

    def load(self):
        self.calls.append("load")
        return None if self.fail else self.value

    def store(self, raw):
        self.calls.append(("store", raw))
        if self.fail:
            return False
        self.value = raw
        return True

    def delete(self):
        self.calls.append("delete")
        self.value = None
        return True

    def regenerate(self):
        self.calls.append("regenerate")
        return True


@pytest.fixture
def wharf_session():
    import importlib
    import sys
    sys.path.insert(0, PYLIB)
    try:
        yield importlib.import_module("wharf_session")
    finally:
        sys.path.remove(PYLIB)


def test_session_mapping(wharf_session):
    var = FakeVar(b'{"a":1}')
    s = wharf_session.Session(var)
    assert var.calls == []                       # nothing until first use
    assert s.save() is False and var.calls == []
    assert s["a"] == 1 and s.get("b") is None and len(s) == 1 and "a" in s
    assert var.calls == ["load"]                 # loaded once
    assert s.save() is False                     # read-only: no store
    s["b"] = [1, "x"]
    assert s.modified and s.save() is True
    assert var.calls[-1] == ("store", b'{"a":1,"b":[1,"x"]}')
    assert not s.modified and s.save() is False
    s.clear()
    assert s.save() is True and var.calls[-1] == "delete"   # emptied: deleted


def test_session_bad_data_delete_and_regenerate(wharf_session):
    for raw in (b"not json", b"[1,2]", b"\xff\xfe"):
        assert dict(wharf_session.Session(FakeVar(raw))) == {}
    var = FakeVar(b'{"u":1}')
    s = wharf_session.Session(var)
    s.regenerate()
    assert var.calls == ["load", "regenerate"]
    s["u"] = 2
    s.regenerate()                                # pending changes follow the new id
    assert var.calls[-2:] == ["regenerate", ("store", b'{"u":2}')]
    s.delete()
    assert var.calls[-1] == "delete" and dict(s) == {} and not s.modified


def test_session_backend_down(wharf_session):
    var = FakeVar(b'{"a":1}', fail=True)
    s = wharf_session.Session(var)
    assert dict(s) == {}                          # empty session
    s["a"] = 2
    assert s.save() is False                      # not saved, no exception


def test_flask_interface_without_wharf(wharf_session):
    flask = pytest.importorskip("flask")
    app = flask.Flask("t")
    app.secret_key = None
    app.session_interface = wharf_session.WharfSessionInterface()

    @app.get("/")
    def index():
        return {"null": flask.session.__class__.__name__}
    # no environ['wharf.session'] (not under wharf): Flask's null session
    assert app.test_client().get("/").get_json() == {"null": "NullSession"}
