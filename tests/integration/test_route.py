"""The route plugin end to end: uWSGI's internal routing language on the real
server.  Each test writes route* lines into a generated ini, starts wharf and
looks at what a client gets (status, headers, body) and, where routing hands
the request on, what the app sees.

The "app" is tests/fixtures/plugins/routeecho_plugin.so: an APP-phase plugin
that answers with the path, query string and request variables it was given
and logs "routeecho: app reached <uri>", so a test can tell whether a request
got past routing (python is not needed for that)."""
import base64
import os
import re
import warnings

with warnings.catch_warnings():  # crypt is deprecated (3.11) but in Debian's python
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

import pytest
import requests

from wharfctl import BUILDDIR, PLUGINS_DIR, wait_for

ECHO = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", "routeecho_plugin.so")
APP = ("plugin", ECHO)


def have_plugin(name):
    return os.path.exists(os.path.join(PLUGINS_DIR, f"{name}_plugin.so"))


# configure builds the plugin only when libpcre2-8 is found (or not at all
# with --disable-route)
pytestmark = pytest.mark.skipif(not have_plugin("route"), reason="route plugin not built")


@pytest.fixture(autouse=True)
def _need_echo():
    if not os.path.exists(ECHO):
        pytest.fail(f"{ECHO} is missing: run `make check` (or make {os.path.relpath(ECHO, BUILDDIR)})")


def app_lines(resp):
    """The echo app's body as a dict."""
    out = {}
    for line in resp.text.splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def raw(srv, request):
    """Send raw bytes, return the whole response text (the server closes or
    we stop at the end of a Content-Length body)."""
    with srv.connect() as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
        return data.decode("latin-1")


def reached(srv, uri):
    return f"routeecho: app reached {uri}" in srv.log()


# ------------------------------------------------------------ the seed rule

def test_seed_healthz_live_answers_200_without_any_app(wharf):
    srv = wharf({"route": r"^/healthz/live break:200", "processes": 1})
    with requests.Session() as s:  # two requests on one keep-alive connection
        for _ in range(2):
            r = s.get(srv.url + "/healthz/live")
            assert r.status_code == 200
            assert r.content == b""
            assert r.headers["Content-Length"] == "0"
            assert r.headers["Content-Type"] == "text/plain"
            assert r.headers.get("Connection", "").lower() != "close"
    # no APP plugin is loaded: any other path is the core's 404
    assert requests.get(srv.url + "/healthz/ready").status_code == 404
    assert "python" not in re.search(r"plugins: ([^;]*);", srv.log()).group(1)


def test_seed_rule_answers_before_the_app(wharf):
    srv = wharf([("route", r"^/healthz/live break:200"), APP])
    r = requests.get(srv.url + "/healthz/live")
    assert r.status_code == 200 and r.content == b""
    assert "X-App-Header" not in r.headers
    assert not reached(srv, "/healthz/live")
    r = requests.get(srv.url + "/other")
    assert r.status_code == 200 and app_lines(r)["path"] == "/other"
    assert reached(srv, "/other")
    # HEAD gets the same head, no body
    r = requests.head(srv.url + "/healthz/live")
    assert r.status_code == 200 and r.headers["Content-Length"] == "0"


PYAPP = """
import json

def app(environ, start_response):
    if environ["PATH_INFO"].startswith("/env"):
        keys = ("PATH_INFO", "QUERY_STRING", "REQUEST_URI", "REMOTE_USER", "wharf.REMOTE_USER",
                "wharf.TIER")
        body = json.dumps({k: environ.get(k) for k in keys}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    raise RuntimeError("the app was reached for " + environ["PATH_INFO"])
"""


@pytest.mark.skipif(not have_plugin("python"), reason="python plugin not built")
def test_seed_line_with_a_python_app_that_would_fail(wharf, tmp_path):
    """The seed's route line, verbatim with its inline comment, in front of a
    WSGI app that fails every request: /healthz/live never reaches Python."""
    (tmp_path / "failapp.py").write_text(PYAPP)
    srv = wharf(start=False, allowed_errors=[
        r"ERROR: GET /other: unhandled exception in the app: RuntimeError: the app was reached"])
    with open(srv.ini_path, "w") as f:
        f.write(f"[uwsgi]\nhttp-socket = 127.0.0.1:{srv.port}\npythonpath = {tmp_path}\n"
                "module = failapp:app\nprocesses = 1\n"
                # the seed's line: the reader drops the comment (else the
                # reason phrase would be "; ...")
                "route = ^/healthz/live break:200  ; \ucd08\uacbd\ub7c9 \ub77c\uc774\ube0c\ub2c8\uc2a4\n"
                "route = ^/env/(\\w+)$ rewrite:/env/rewritten?was=$1\n"
                "route = ^/env/ addvar:TIER=gold\n"
                "route = ^/env/ basicauth:Env,u:p\n")
    srv.start()
    with requests.Session() as s:
        for _ in range(3):
            r = s.get(srv.url + "/healthz/live")
            assert (r.status_code, r.content, r.reason) == (200, b"", "OK")
    assert "the app was reached" not in srv.log()
    assert requests.get(srv.url + "/other").status_code == 500
    srv.wait_log(r"the app was reached for /other")
    # what Python sees after routing
    r = requests.get(srv.url + "/env/abc?x=1", auth=("u", "p"))
    assert r.status_code == 200, r.text
    assert r.json() == {"PATH_INFO": "/env/rewritten", "QUERY_STRING": "was=abc&x=1",
                        "REQUEST_URI": "/env/abc?x=1", "REMOTE_USER": "u", "wharf.REMOTE_USER": "u",
                        "wharf.TIER": "gold"}
    assert requests.get(srv.url + "/env/abc").status_code == 401


# ------------------------------------------------------------ break / return

def test_break_with_code_reason_and_bare_break(wharf):
    srv = wharf([
        ("route", r"^/nope break:403 Go Away"),
        ("route", r"^/teapot break:418"),
        ("route", r"^/bad break"),
        APP,
    ])
    resp = raw(srv, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.startswith("HTTP/1.1 403 Go Away\r\n")
    assert re.search(r"(?im)^content-length: 0\r$", resp)
    r = requests.get(srv.url + "/teapot")
    assert r.status_code == 418 and r.content == b""
    # uWSGI closes a bare break without any response; wharf answers an
    # empty 500 and closes the connection
    r = requests.get(srv.url + "/bad")
    assert r.status_code == 500 and r.content == b""
    assert r.headers.get("Connection", "").lower() == "close"
    for uri in ("/nope", "/teapot", "/bad"):
        assert not reached(srv, uri)


def test_return_sends_the_reason_as_body(wharf):
    srv = wharf([("route", r"^/gone return:410"), ("route", r"^/busy break-with-status:503"), APP])
    r = requests.get(srv.url + "/gone")
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (410, "Gone", "text/plain")
    r = requests.get(srv.url + "/busy")
    assert (r.status_code, r.text) == (503, "Service Unavailable")


# ------------------------------------------------------------ redirects

def test_redirects_status_and_location(wharf):
    srv = wharf([
        ("route", r"^/r/(.*)$ redirect:/new/$1"),
        ("route", r"^/p/(.*)$ redirect-permanent:https://${HTTP_HOST}/perm/$1?${QUERY_STRING}"),
        ("route", r"^/t/ redirect-307:/temp"),
        ("route", r"^/pp/ redirect:308:/pp308"),
        ("route", r"^/s/ redirect-303:/see"),
        APP,
    ])
    get = lambda p, **kw: requests.get(srv.url + p, allow_redirects=False, **kw)
    r = get("/r/abc")
    assert (r.status_code, r.headers["Location"], r.text) == (302, "/new/abc", "Found")
    r = get("/p/x/y?a=1", headers={"Host": "example.org"})
    assert r.status_code == 301
    assert r.headers["Location"] == "https://example.org/perm/x/y?a=1"
    assert r.text == "Moved Permanently"
    assert get("/t/").status_code == 307 and get("/t/").headers["Location"] == "/temp"
    assert get("/pp/").status_code == 308 and get("/pp/").headers["Location"] == "/pp308"
    assert get("/s/").status_code == 303
    assert not reached(srv, "/r/abc")


def test_redirect_location_cannot_be_split(wharf):
    """$1 comes from the decoded path: %0d%0a must not start a new header."""
    srv = wharf([("route", r"(?s)^/r/(.*)$ redirect:/new/$1"), APP])
    resp = raw(srv, b"GET /r/a%0d%0aSet-Cookie:%20evil=1%20%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.startswith("HTTP/1.1 302")
    assert "\r\nLocation: /new/a%0D%0ASet-Cookie:%20evil=1%20%C3%A9\r\n" in resp
    assert not re.search(r"(?im)^set-cookie:", resp)


# ------------------------------------------------------------ rewrite

def test_rewrite_is_seen_by_later_rules_and_the_app(wharf):
    srv = wharf([
        ("route", r"^/old/(.*)$ rewrite:/new/$1?from=old"),
        ("route", r"^/new/(.*)$ addheader:X-Seen: $1 ${QUERY_STRING}"),
        ("route", r"^/old/ addheader:X-Never: old path is gone"),
        APP,
    ])
    r = requests.get(srv.url + "/old/a%20b?orig=1")
    assert r.status_code == 200
    assert r.headers["X-Seen"] == "a b from=old&orig=1"
    assert "X-Never" not in r.headers
    seen = app_lines(r)
    # PATH_INFO and QUERY_STRING change, REQUEST_URI stays (uWSGI)
    assert seen["path"] == "/new/a b"
    assert seen["query"] == "from=old&orig=1"
    assert seen["uri"] == "/old/a%20b?orig=1"


def test_rewrite_without_query_keeps_it_and_decodes_the_path(wharf):
    # $1 from REQUEST_URI is still percent-encoded; rewrite decodes it into
    # PATH_INFO as uWSGI does (ini values avoid '%': the ini reader expands it)
    srv = wharf([("route-uri", r"^/enc/([^?]*) rewrite:/dec/$1"), APP])
    seen = app_lines(requests.get(srv.url + "/enc/y%2Fz%20w?keep=me"))
    assert seen["path"] == "/dec/y/z w" and seen["query"] == "keep=me"


def test_rewrite_last_stops_routing(wharf):
    srv = wharf([
        ("route", r"^/a$ rewrite-last:/b"),
        ("route", r"^/b$ break:403"),
        APP,
    ])
    r = requests.get(srv.url + "/a")
    assert r.status_code == 200 and app_lines(r)["path"] == "/b"
    # without rewrite-last the next rule sees /b
    assert requests.get(srv.url + "/b").status_code == 403


def test_rewrite_then_break_shows_in_the_log(wharf):
    srv = wharf([
        ("route", r"^/(.*)\.php$ rewrite:/index.php?page=$1"),
        ("route", r"^/index\.php$ log:rewritten to ${PATH_INFO}?${QUERY_STRING}"),
        ("route", r"^/index\.php$ break:204"),
    ])
    assert requests.get(srv.url + "/about.php").status_code == 204
    srv.wait_log(r"(?m)INFO: rewritten to /index\.php\?page=about$")


# ------------------------------------------------------------ continue / last / goto

def test_continue_and_last_hand_the_request_on(wharf):
    srv = wharf([
        ("route", r"^/c continue"),
        ("route", r"^/l last:"),
        ("route", r"^/ break:403"),
        APP,
    ])
    assert requests.get(srv.url + "/c").status_code == 200
    assert requests.get(srv.url + "/l").status_code == 200
    assert requests.get(srv.url + "/other").status_code == 403


def test_goto_labels_static_and_dynamic(wharf):
    srv = wharf([
        ("route-host", r"^(\w+)\.local(:\d+)?$ goto:$1"),
        ("route", r"^/ break:404"),
        ("route-label", "alpha"),
        ("route", r"^/ addheader:X-Site: alpha"),
        ("route", r"^/ goto:done"),
        ("route-label", "beta"),
        ("route", r"^/ addheader:X-Site: beta"),
        ("route-label", "done"),
        ("route", r"^/ addheader:X-Done: 1"),
        ("route", r"^/ break:200"),
    ])
    get = lambda host: requests.get(srv.url + "/", headers={"Host": host})
    r = get("alpha.local")
    assert r.status_code == 200
    assert r.headers["X-Site"] == "alpha" and r.headers["X-Done"] == "1"
    r = get("beta.local")
    assert r.status_code == 200 and r.headers["X-Site"] == "beta"
    assert get("other.example").status_code == 404


def test_dynamic_goto_to_a_missing_label_is_a_500(wharf):
    srv = wharf([("route-host", r"^(\w+)$ goto:$1"), ("route-label", "known"),
                 ("route", r"^/ break:200")],
                allowed_errors=[r"goto 'unknown': no label"])
    assert requests.get(srv.url + "/", headers={"Host": "known"}).status_code == 200
    assert requests.get(srv.url + "/", headers={"Host": "unknown"}).status_code == 500
    srv.wait_log(r"ERROR: route: .*goto 'unknown': no label of that name after this rule")


# ------------------------------------------------------------ headers

def test_addheader_on_route_answers_and_on_app_responses(wharf):
    srv = wharf([
        ("route", r"^/ addheader:X-Frame-Options: DENY"),
        ("route", r"^/b/(\w+) addheader:X-Item: item-$1"),
        ("route", r"^/b/ break:200"),
        APP,
    ])
    r = requests.get(srv.url + "/b/42")
    assert r.status_code == 200
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Item"] == "item-42"
    r = requests.get(srv.url + "/app")
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-App-Header"] == "yes"
    assert "X-Item" not in r.headers


def test_addheader_never_sends_a_value_with_a_newline(wharf):
    srv = wharf([("route", r"(?s)^/h/(.*)$ addheader:X-Echo: $1"), ("route", r"^/h/ break:200")])
    resp = raw(srv, b"GET /h/a%0d%0aX-Injected:%201 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.startswith("HTTP/1.1 200")
    assert "X-Injected" not in resp and "X-Echo" not in resp
    srv.wait_log(r"WARN: route: .*addheader: the expanded value is not a valid header value")
    assert requests.get(srv.url + "/h/fine").headers["X-Echo"] == "fine"


def test_response_route_delheader_and_addheader(wharf):
    srv = wharf([
        ("response-route", r"^/api/ delheader:X-App-Header"),
        ("response-route", r"^/api/(\w+) addheader:Cache-Control: no-store, $1"),
        ("response-route-if", r"equal:${uwsgi[status]};200 addheader:X-Was-200: yes"),
        ("response-route", r"^/ remheader:Server"),
        ("route", r"^/api/quick break:202"),
        APP,
    ])
    r = requests.get(srv.url + "/api/users")
    assert r.status_code == 200 and "path=/api/users" in r.text
    assert "X-App-Header" not in r.headers and "Server" not in r.headers
    assert r.headers["Cache-Control"] == "no-store, users"
    assert r.headers["X-Was-200"] == "yes"
    r = requests.get(srv.url + "/web")
    assert r.headers["X-App-Header"] == "yes" and "Cache-Control" not in r.headers
    # responses made by the request chain go through the response chain too
    r = requests.get(srv.url + "/api/quick")
    assert r.status_code == 202 and r.headers["Cache-Control"] == "no-store, quick"
    assert "X-Was-200" not in r.headers


def test_response_route_on_app_threads(wharf):
    """With threads > 1 the response chain runs on app threads."""
    srv = wharf([("threads", 4), ("response-route", r"^/t/(\d+) addheader:X-N: $1"), APP])
    with requests.Session() as s:
        for i in range(50):
            assert s.get(f"{srv.url}/t/{i}").headers["X-N"] == str(i)


# ------------------------------------------------------------ variables

def test_addvar_setvar_reach_later_rules_and_the_app(wharf):
    srv = wharf([
        ("route", r"^/v/(\w+) addvar:ITEM=item-$1"),
        ("route", r"^/v/ setvar:FROM=${REMOTE_ADDR}"),
        ("route", r"^/v/ addheader:X-Item: ${ITEM} from ${FROM}"),
        APP,
    ])
    r = requests.get(srv.url + "/v/7")
    assert r.headers["X-Item"] == "item-7 from 127.0.0.1"
    seen = app_lines(r)
    assert seen["var.ITEM"] == "item-7" and seen["var.FROM"] == "127.0.0.1"


def test_request_variables_in_templates(wharf):
    srv = wharf([
        ("route", r"^/vars addheader:X-Vars: ${REQUEST_METHOD} ${REQUEST_URI} ${PATH_INFO} "
                  r"${QUERY_STRING} ${HTTP_HOST} ${HTTP_X_CUSTOM_THING} [${MISSING}]"),
        ("route", r"^/vars addheader:X-Cookie: ${cookie[sid]} ${qs[b]}"),
        ("route", r"^/vars addheader:X-Dollar: $$ a$b $5 ${unterminated"),
        ("route", r"^/vars break:200"),
    ])
    r = requests.get(srv.url + "/vars?a=1&b=2", headers={"Host": "h.example",
                                                         "X-Custom-Thing": "yes",
                                                         "Cookie": "x=1; sid=s3"})
    assert r.headers["X-Vars"] == "GET /vars?a=1&b=2 /vars a=1&b=2 h.example yes []"
    assert r.headers["X-Cookie"] == "s3 2"
    assert r.headers["X-Dollar"] == "$$ a$b  ${unterminated"


def test_captured_text_is_not_expanded_again(wharf):
    """uWSGI expands ${..} inside captured text (so a client could read any
    header back); wharf inserts captures literally."""
    srv = wharf([("route", r"^/e/(.*)$ addheader:X-E: [$1]"), ("route", r"^/e/ break:200")])
    r = requests.get(srv.url + "/e/${HTTP_AUTHORIZATION}", headers={"Authorization": "secret"})
    assert r.headers["X-E"] == "[${HTTP_AUTHORIZATION}]"


def test_expansion_longer_than_the_limit_is_a_500(wharf):
    srv = wharf([("route", r"^/big/(.*)$ addheader:X-Big: " + "$1" * 40), APP])
    r = requests.get(srv.url + "/big/" + "a" * 1000)
    assert r.status_code == 500
    srv.wait_log(r"WARN: route: .*longer than 16384 bytes")
    assert not reached(srv, "/big/" + "a" * 1000)
    assert requests.get(srv.url + "/big/short").headers["X-Big"] == "short" * 40


# ------------------------------------------------------------ basicauth

def auth(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basicauth_plaintext(wharf):
    srv = wharf([
        ("route", r"^/admin basicauth:Admin Area,admin:s3cret"),
        ("route", r"^/admin addheader:X-User: ${REMOTE_USER}"),
        APP,
    ])
    r = requests.get(srv.url + "/admin")
    assert r.status_code == 401 and r.text == "Unauthorized"
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Admin Area"'
    assert not reached(srv, "/admin")
    for bad in (auth("admin", "wrong"), auth("admin", "s3cret "), auth("Admin", "s3cret"),
                "Basic !!!!", "Bearer abc", "Basic " + base64.b64encode(b"admins3cret").decode()):
        r = requests.get(srv.url + "/admin", headers={"Authorization": bad})
        assert r.status_code == 401, bad
    r = requests.get(srv.url + "/admin", headers={"Authorization": auth("admin", "s3cret")})
    assert r.status_code == 200
    assert r.headers["X-User"] == "admin"
    assert app_lines(r)["var.REMOTE_USER"] == "admin"
    # other paths are not protected
    assert requests.get(srv.url + "/public").status_code == 200


def test_basicauth_next_chains_users_and_empty_credentials_always_401(wharf):
    srv = wharf([
        ("route", r"^/team basicauth-next:Team,alice:a1"),
        ("route", r"^/team basicauth:Team,bob:b2"),
        ("route", r"^/closed basicauth:Closed,"),
        APP,
    ])
    ok = lambda u, p: requests.get(srv.url + "/team", headers={"Authorization": auth(u, p)})
    assert ok("alice", "a1").status_code == 200
    assert app_lines(ok("bob", "b2"))["var.REMOTE_USER"] == "bob"
    assert ok("alice", "b2").status_code == 401
    assert requests.get(srv.url + "/team").status_code == 401
    r = requests.get(srv.url + "/closed", headers={"Authorization": auth("a", "b")})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="Closed"'


def test_basicauth_htpasswd_file(wharf, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    bcrypt_hash = crypt.crypt("hunter2", "$2b$05$" + "abcdefghijklmnopqrstuu")
    sha512_hash = crypt.crypt("pw512", crypt.mksalt(crypt.METHOD_SHA512))
    htpasswd.write_text("# users\n"
                        f"bob:{bcrypt_hash}\n"
                        "sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"
                        f"carol:{sha512_hash}\n")
    srv = wharf([("route", f"^/files basicauth:Files,{htpasswd}"), APP])
    get = lambda u, p: requests.get(srv.url + "/files", headers={"Authorization": auth(u, p)})
    assert app_lines(get("bob", "hunter2"))["var.REMOTE_USER"] == "bob"
    assert get("sha", "password").status_code == 200
    assert get("carol", "pw512").status_code == 200
    assert get("bob", "hunter3").status_code == 401
    assert get("nobody", "hunter2").status_code == 401
    assert requests.get(srv.url + "/files").status_code == 401


# ------------------------------------------------------------ subjects

def test_route_host_qs_uri_remote_addr_user_agent_referer(wharf):
    srv = wharf([
        ("route-host", r"^old\.example\.com$ redirect-permanent:https://new.example.com${REQUEST_URI}"),
        ("route-qs", r"(^|&)debug=1(&|$) break:403"),
        ("route-uri", r"^/raw\x252F break:451"),
        ("route-remote-addr", r"^10\. break:403"),
        ("route-user-agent", r"BadBot break:429"),
        ("route-referer", r"spam\.example break:400"),
        APP,
    ])
    r = requests.get(srv.url + "/p?q=1", headers={"Host": "old.example.com"}, allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"] == "https://new.example.com/p?q=1"
    assert requests.get(srv.url + "/x?a=2&debug=1").status_code == 403
    assert requests.get(srv.url + "/x?debug=10").status_code == 200
    # REQUEST_URI is raw: %2F is still encoded there, PATH_INFO is decoded
    assert requests.get(srv.url + "/raw%2Fx").status_code == 451
    assert requests.get(srv.url + "/", headers={"User-Agent": "Mozilla BadBot/1"}).status_code == 429
    assert requests.get(srv.url + "/", headers={"Referer": "http://spam.example/"}).status_code == 400
    assert requests.get(srv.url + "/fine").status_code == 200  # 127.0.0.1 is not 10.*


def test_route_if_conditions(wharf, tmp_path):
    (tmp_path / "present.txt").write_text("x")
    (tmp_path / "adir").mkdir()
    srv = wharf([
        ("route-if", r"equal:${REQUEST_METHOD};DELETE return:405"),
        ("route-if", r"startswith:${PATH_INFO};/internal/ break:404"),
        ("route-if", r"endswith:${PATH_INFO};.bak break:403"),
        ("route-if", r"contains:${HTTP_USER_AGENT};crawler break:429"),
        ("route-if", r"regexp:${PATH_INFO};^/user/(\d+)$ addheader:X-User-Id: $1"),
        ("route-if", r"empty:${HTTP_X_TOKEN} addheader:X-No-Token: 1"),
        ("route-if", f"isfile:{tmp_path}/${{qs[f]}} addheader:X-File: yes"),
        ("route-if", f"isdir:{tmp_path}/${{qs[f]}} addheader:X-Dir: yes"),
        ("route-if", f"exists:{tmp_path}/${{qs[f]}} addheader:X-Exists: yes"),
        ("route-if", r"ipv4in:${REMOTE_ADDR};127.0.0.0/8 addheader:X-Local: yes"),
        ("route-if", r"ishigher:${HTTP_X_N};10 addheader:X-Big-N: yes"),
        ("route-if-not", r"equal:${REQUEST_METHOD};GET addheader:X-Not-Get: yes"),
        APP,
    ])
    u = srv.url
    assert requests.delete(u + "/x").status_code == 405
    assert requests.get(u + "/internal/x").status_code == 404
    assert requests.get(u + "/a.bak").status_code == 403
    assert requests.get(u + "/", headers={"User-Agent": "a crawler"}).status_code == 429
    r = requests.get(u + "/user/42", headers={"X-Token": "t", "X-N": "11"})
    assert r.headers["X-User-Id"] == "42" and "X-No-Token" not in r.headers
    assert r.headers["X-Local"] == "yes" and r.headers["X-Big-N"] == "yes"
    assert "X-Not-Get" not in r.headers
    r = requests.get(u + "/user/x", headers={"X-N": "9"})
    assert "X-User-Id" not in r.headers and r.headers["X-No-Token"] == "1"
    assert "X-Big-N" not in r.headers
    r = requests.get(u + "/?f=present.txt")
    assert (r.headers.get("X-File"), r.headers.get("X-Dir"), r.headers.get("X-Exists")) == ("yes", None, "yes")
    r = requests.get(u + "/?f=adir")
    assert (r.headers.get("X-File"), r.headers.get("X-Dir"), r.headers.get("X-Exists")) == (None, "yes", "yes")
    r = requests.get(u + "/?f=missing")
    assert not any(h in r.headers for h in ("X-File", "X-Dir", "X-Exists"))
    assert requests.post(u + "/p").headers["X-Not-Get"] == "yes"


def test_rules_run_in_file_order_across_options(wharf):
    srv = wharf([
        ("route", r"^/o addheader:X-Order: 1"),
        ("route-host", r". addheader:X-Order: 2"),
        ("route-if", r"startswith:${PATH_INFO};/o addheader:X-Order: 3"),
        ("route-uri", r"^/o addheader:X-Order: 4"),
        ("route-run", r"addheader:X-Order: 5"),
        ("route", r"^/o break:200"),
    ])
    r = raw(srv, b"GET /o HTTP/1.1\r\nHost: h\r\n\r\n")
    assert re.findall(r"X-Order: (\d)", r) == ["1", "2", "3", "4", "5"]


# ------------------------------------------------------------ log / final-route

def test_log_action_escapes_request_data(wharf):
    # the text says " ERROR: " but stays inside one INFO line
    srv = wharf([("route", r"(?s)^/log/(.*)$ log:got [$1] from ${REMOTE_ADDR}"),
                 ("route", r"^/log/ break:204")], allowed_errors=[r"\] INFO: got \[a\\x0aFAKE ERROR"])
    assert requests.get(srv.url + "/log/a%0aFAKE%20ERROR:%20x%1b").status_code == 204
    srv.wait_log(r"INFO: got \[a\\x0aFAKE ERROR: x\\x1b\] from 127\.0\.0\.1")
    assert not re.search(r"(?m)^FAKE ERROR", srv.log())


def test_final_route_logs_after_the_response(wharf):
    srv = wharf([
        ("final-route", r"^/f/(\w+) log:done $1 status=${uwsgi[status]} size=${uwsgi[rsize]}"),
        ("final-route-if", r"ishigherequal:${uwsgi[status]};400 log:error response ${REQUEST_URI}"),
        ("route", r"^/f/missing break:404"),
        APP,
    ])
    r = requests.get(srv.url + "/f/ok")
    srv.wait_log(rf"(?m)INFO: done ok status=200 size={len(r.content)}$")
    requests.get(srv.url + "/f/missing")
    srv.wait_log(r"(?m)INFO: done missing status=404 size=0$")
    srv.wait_log(r"(?m)INFO: error response /f/missing$")
    assert "error response /f/ok" not in srv.log()


# ------------------------------------------------------------ bad configs

BAD = [
    ("route", r"^/(x break:200", r"route: bad regex '\^/\(x': missing closing parenthesis at offset 4"),
    ("route", r"^/x frobnicate:1", r"route: unknown action 'frobnicate' \(expected one of: continue, last"),
    ("route", r"^/x cache:k", r"route: the uWSGI action 'cache' is not supported"),
    ("route", r"^/x", r"route: expected 'REGEX ACTION'"),
    ("route", r"^/x break:9000", r"route: break: '9000' is not a status code"),
    ("route-if", r"bogus:a;b log:x", r"route-if: unknown condition 'bogus'"),
    ("route-if", r"equal:a log:x", r"route-if: condition 'equal' needs two operands"),
    ("route-host", r"[z-a] log:x", r"route-host: bad regex '\[z-a\]'"),
    ("final-route", r"^/ redirect:/x", r"final-route: action 'redirect' cannot run in final-route"),
    ("route", r"^/ basicauth:R,/nonexistent/htpasswd", r"cannot read htpasswd file /nonexistent/htpasswd"),
]


@pytest.mark.parametrize("option,value,message", BAD, ids=[b[1] for b in BAD])
def test_bad_config_exits_1_with_one_clear_line(wharf, option, value, message):
    srv = wharf([(option, value)], start=False)
    for extra in ((), ("--check-config",)):
        res = srv.run(*extra)
        out = res.stdout + res.stderr
        assert res.returncode == 1, out
        line = next((l for l in out.splitlines() if re.search(message, l)), None)
        assert line, f"no line matching {message!r} in:\n{out}"
        # line 1 is [uwsgi], line 2 the http-socket the harness adds
        assert line.startswith(f"{srv.ini_path}:3: {option}: "), line


def test_backward_goto_is_a_config_error(wharf):
    srv = wharf([("route-label", "top"), ("route", r"^/ log:x"), ("route", r"^/loop goto:top")],
                start=False)
    res = srv.run("--check-config")
    out = res.stdout + res.stderr
    assert res.returncode == 1
    # the goto's line, and where the label is
    assert (f"{srv.ini_path}:5: route: goto 'top' jumps backward to the label at {srv.ini_path}:3 "
            "(goto only jumps forward, so routing always ends)") in out, out


def test_goto_unknown_label_is_a_config_error(wharf):
    srv = wharf([("route", r"^/ goto:nowhere")], start=False)
    res = srv.run("--check-config")
    assert res.returncode == 1
    assert (f"{srv.ini_path}:3: route: goto 'nowhere': no route-label 'nowhere' after this rule"
            in res.stdout + res.stderr)


def test_good_config_checks_ok(wharf):
    srv = wharf([("route", r"^/healthz/live break:200"), ("route-label", "x"),
                 ("final-route", r"^/ log:bye")], start=False)
    res = srv.run("--check-config")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.skipif(not have_plugin("healthz"), reason="healthz plugin not built")
def test_answered_requests_are_counted_in_metrics(wharf):
    """uWSGI counts "routed requests"; here wharf_route_answered_total."""
    srv = wharf([("metrics", "/metrics"), ("route", r"^/healthz/live break:200"),
                 ("route", r"^/old redirect:/new"), ("route", r"^/ addheader:X-Seen: 1")])

    def answered():
        text = requests.get(srv.url + "/metrics").text
        m = re.search(r"(?m)^wharf_route_answered_total (\d+)$", text)
        assert m, text
        return int(m.group(1))

    assert answered() == 0
    for _ in range(3):
        requests.get(srv.url + "/healthz/live")
    requests.get(srv.url + "/old", allow_redirects=False)
    requests.get(srv.url + "/not-answered-by-routing")  # goes on (core 404)
    wait_for(lambda: answered() == 4, what="wharf_route_answered_total 4")
