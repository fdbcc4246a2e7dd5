"""healthz plugin: Kubernetes probes and Prometheus /metrics.

The probes are answered on the worker's event loop from state the core
keeps in shared memory; readiness checks come from the `fakecheck` fixture
plugin (tests/fixtures/plugins/fakecheck.c), whose check passes while a
file exists and whose "app" loads once another file exists.

/metrics output is validated by a strict parser of the text exposition
format 0.0.4 written below, and cross-checked with prometheus_client's
parser (Debian's python3-prometheus-client) when it is installed.
"""
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from wharfctl import BUILDDIR, PLUGINS_DIR, wait_for

JSON_TYPE = "application/json"
PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# ---------------------------------------------------------------- helpers

def get(srv, path, session=None, **kw):
    kw.setdefault("timeout", 5)
    return (session or requests).get(srv.url + path, **kw)


def status_of(srv, path):
    return get(srv, path).status_code


def wait_status(srv, path, code, timeout=5.0, what=None):
    """Poll `path` (a new connection each time) until it answers `code`;
    returns that response.  (A Response is falsy when its status is an
    error, hence the tuple.)"""
    def poll():
        r = get(srv, path)
        return (r,) if r.status_code == code else None
    return wait_for(poll, timeout=timeout, what=what or f"{path} to answer {code}")[0]


@pytest.fixture
def fixture_plugins(tmp_path):
    """A plugins-dir with the built plugins plus the fakecheck fixture
    (built on demand when pytest runs outside `make check`)."""
    so = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", "fakecheck_plugin.so")
    if not os.path.exists(so):
        subprocess.run(["make", "-C", BUILDDIR, "tests/fixtures/plugins/fakecheck_plugin.so"],
                       check=True, capture_output=True)
    d = tmp_path / "plugins"
    d.mkdir()
    for name in os.listdir(PLUGINS_DIR):
        if name.endswith("_plugin.so"):
            os.symlink(os.path.join(PLUGINS_DIR, name), d / name)
    os.symlink(so, d / "fakecheck_plugin.so")
    return {"WHARF_PLUGINS_DIR": str(d)}


def child_pids(srv, comm):
    out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(srv.pid)],
                         capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if comm in line]


class RawConn:
    """One client connection; reads responses with Content-Length bodies."""

    def __init__(self, srv):
        self.sock = srv.connect()
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed before a response head"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed inside a response body"
            self.buf += chunk
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- a strict 0.0.4 parser

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _unescape(text, allowed):
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            assert i + 1 < len(text) and text[i + 1] in allowed, f"bad escape in {text!r}"
            out.append({"\\": "\\", "n": "\n", '"': '"'}[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _labels(line, i):
    """Parse {a="b",...} starting at line[i] == '{'; returns (dict, next index)."""
    labels = {}
    i += 1
    while line[i] != "}":
        m = LABEL_NAME.match(line, i)
        assert m, f"bad label name at {i}: {line!r}"
        name = m.group(0)
        i = m.end()
        assert line[i:i + 2] == '="', f"expected =\" at {i}: {line!r}"
        i += 2
        start = i
        while line[i] != '"':
            i += 2 if line[i] == "\\" else 1
        assert name not in labels, f"label {name} twice: {line!r}"
        labels[name] = _unescape(line[start:i], '\\"n')
        i += 1
        if line[i] == ",":
            i += 1
            assert line[i] != "}", f"trailing comma: {line!r}"
        else:
            assert line[i] == "}", f"expected , or }} at {i}: {line!r}"
    return labels, i + 1


def _float(text):
    assert FLOAT.fullmatch(text), f"bad sample value {text!r}"
    return float(text)


class Exposition:
    def __init__(self, types, helps, samples):
        self.types, self.helps, self.samples = types, helps, samples

    def value(self, name, **labels):
        return self.samples[(name, tuple(sorted(labels.items())))]

    def series(self, name):
        """{labels tuple: value} of every sample called `name`."""
        return {lab: v for (n, lab), v in self.samples.items() if n == name}

    def total(self, name):
        return sum(self.series(name).values())

    def counters(self):
        return {k: v for k, v in self.samples.items()
                if self.types.get(k[0]) == "counter"
                or (k[0].endswith(("_bucket", "_count", "_sum"))
                    and self.types.get(k[0].rsplit("_", 1)[0]) == "histogram")}


def parse_prometheus(text):
    """Parse and validate Prometheus text format 0.0.4, strictly: every
    family has HELP and TYPE before its samples, families are contiguous, no
    series twice, label values and HELP escaped, counters >= 0, histogram
    buckets cumulative with le ascending to +Inf and _count equal to the
    +Inf bucket."""
    assert text.endswith("\n"), "exposition must end with a newline"
    types, helps, samples = {}, {}, {}
    closed, current = set(), None
    seen_samples = set()

    def enter(family):
        nonlocal current
        if family != current:
            assert family not in closed, f"family {family} is not contiguous"
            if current is not None:
                closed.add(current)
            current = family

    for line in text[:-1].split("\n"):
        assert line and line == line.strip(), f"blank or padded line {line!r}"
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (\S+) (.+)", line)
            assert m, f"unexpected comment line {line!r}"
            kind, name, rest = m.groups()
            assert METRIC_NAME.fullmatch(name), f"bad metric name {name!r}"
            enter(name)
            assert name not in seen_samples, f"{kind} of {name} after its samples"
            if kind == "HELP":
                assert name not in helps, f"HELP {name} twice"
                helps[name] = _unescape(rest, "\\n")
            else:
                assert name not in types, f"TYPE {name} twice"
                assert rest in TYPES, f"bad type {rest!r}"
                types[name] = rest
            continue
        m = METRIC_NAME.match(line)
        assert m, f"bad sample line {line!r}"
        name, i = m.group(0), m.end()
        labels = {}
        if line[i] == "{":
            labels, i = _labels(line, i)
        assert line[i] == " ", f"expected one space before the value: {line!r}"
        parts = line[i + 1:].split(" ")
        assert len(parts) in (1, 2), f"bad value/timestamp: {line!r}"
        value = _float(parts[0])
        if len(parts) == 2:
            assert re.fullmatch(r"-?[0-9]+", parts[1]), f"bad timestamp: {line!r}"
        family = name
        if name not in types:
            for suffix in ("_bucket", "_sum", "_count"):
                base = name[: -len(suffix)]
                if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
                    family = base
        enter(family)
        assert family in types and family in helps, f"{name} without HELP and TYPE"
        seen_samples.add(family)
        key = (name, tuple(sorted(labels.items())))
        assert key not in samples, f"series twice: {key}"
        samples[key] = value
        if types[family] == "counter":
            assert name == family and value >= 0 and not math.isnan(value), line
        if types[family] == "histogram":
            assert name != family, f"histogram sample without suffix: {line!r}"
            assert ("le" in labels) == name.endswith("_bucket"), line

    for family, t in types.items():
        assert family in helps, f"TYPE without HELP: {family}"
        if t != "histogram":
            continue
        groups = {}
        for (name, labels), v in samples.items():
            if name == family + "_bucket":
                rest = tuple(kv for kv in labels if kv[0] != "le")
                groups.setdefault(rest, []).append((_float(dict(labels)["le"]), v))
        assert groups, f"histogram {family} has no buckets"
        for rest, buckets in groups.items():
            les = [le for le, _ in buckets]
            counts = [c for _, c in buckets]
            assert les == sorted(les) and len(set(les)) == len(les), f"{family}: le not ascending"
            assert les[-1] == math.inf, f"{family}: no +Inf bucket"
            assert all(a <= b for a, b in zip(counts, counts[1:])), f"{family}: buckets not cumulative"
            assert samples[(family + "_count", rest)] == counts[-1], f"{family}: _count != +Inf bucket"
            assert samples[(family + "_sum", rest)] >= 0
    return Exposition(types, helps, samples)


def scrape(srv, session=None, path="/metrics"):
    r = get(srv, path, session)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == PROM_TYPE
    assert r.headers["Cache-Control"] == "no-store"
    return parse_prometheus(r.text)


# ---------------------------------------------------------------- the parser itself

def test_strict_parser_rejects_broken_expositions():
    good = ("# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\"} 2\n"
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 0.5\nh_count 2\n")
    assert parse_prometheus(good).value("x_total", a="1") == 2
    broken = [
        good.rstrip("\n"),                                            # no final newline
        good.replace("# HELP x_total X.\n", ""),                      # no HELP
        good.replace('{a="1"}', '{a="1",}'),                          # trailing comma
        good.replace('{a="1"}', '{a="\\t"}'),                         # bad escape
        good.replace("x_total{a=\"1\"} 2", "x_total{a=\"1\"} -2"),    # negative counter
        good.replace("h_bucket{le=\"1\"} 1", "h_bucket{le=\"1\"} 3"),  # not cumulative
        good.replace("h_count 2", "h_count 3"),                       # _count != +Inf
        good.replace('le="+Inf"', 'le="2"'),                          # no +Inf
        good + "x_total{a=\"2\"} 1\n",                                # family not contiguous
        good.replace("x_total{a=\"1\"} 2", "x_total{a=\"1\"}  2"),    # two spaces
        good.replace(" 2\n#", " two\n#"),                             # not a number
    ]
    for text in broken:
        with pytest.raises(AssertionError):
            parse_prometheus(text)


# ---------------------------------------------------------------- probes

def test_probes_answer_with_json_and_no_store(wharf):
    srv = wharf({"processes": 1, "healthz": "/healthz"})
    for path, body in [("/healthz/live", {"status": "ok"}), ("/healthz/startup", {"status": "ok"})]:
        r = get(srv, path)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == JSON_TYPE
        assert r.headers["Cache-Control"] == "no-store"
        assert r.json() == body
    r = get(srv, "/healthz/ready?verbose=1")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert r.json() == {"status": "ok", "checks": {}, "draining": False, "stopping": False, "app": True}

    # HEAD: same head, no body
    for path in ("/healthz/live", "/healthz/ready", "/healthz/startup"):
        g, h = get(srv, path), requests.head(srv.url + path, timeout=5)
        assert h.status_code == 200 and h.content == b""
        assert h.headers["Content-Length"] == g.headers["Content-Length"] == str(len(g.content))

    # other methods: 405 naming the allowed ones
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        r = requests.request(method, srv.url + "/healthz/ready", data=b"x", timeout=5)
        assert r.status_code == 405, method
        assert r.headers["Allow"] == "GET, HEAD"

    # only the exact probe paths are ours; the rest goes on (no app here: 404)
    for path in ("/healthz", "/healthz/", "/healthz/lives", "/healthz/live/", "/healthzz/live",
                 "/x/healthz/live"):
        assert status_of(srv, path) == 404, path

    # many probes on one keep-alive connection
    conn = RawConn(srv)
    conn.send(b"GET /healthz/live HTTP/1.1\r\nHost: t\r\n\r\n" * 20)
    for _ in range(20):
        status, headers, body = conn.response()
        assert status == 200 and json.loads(body) == {"status": "ok"}
    conn.close()


def test_prefix_option_forms(wharf):
    srv = wharf({"processes": 1, "healthz": "/probe/"}, name="prefix")
    assert status_of(srv, "/probe/live") == 200
    assert status_of(srv, "/probe/ready") == 200
    assert status_of(srv, "/healthz/live") == 404
    assert status_of(srv, "/metrics") == 404  # metrics only when asked for

    # `healthz = off`: no probes, but the plugin still serves /metrics
    srv = wharf({"processes": 1, "healthz": "off", "metrics": "/metrics"}, name="off")
    assert status_of(srv, "/healthz/live") == 404
    scrape(srv)

    # `plugin = healthz` alone: probes at the default prefix
    srv = wharf({"processes": 1, "plugin": "healthz"}, name="plugin")
    assert status_of(srv, "/healthz/live") == 200

    # bare flags on the command line: the default paths
    srv = wharf({"processes": 1}, args=["--healthz", "--metrics"], name="flags")
    assert status_of(srv, "/healthz/ready") == 200
    scrape(srv)

    # `metrics = true`, custom path elsewhere
    srv = wharf({"processes": 1, "metrics": "true", "healthz": "/_/health"}, name="true")
    scrape(srv)
    assert status_of(srv, "/_/health/live") == 200


@pytest.mark.parametrize("options, expect", [
    ({"healthz": "healthz"}, ["healthz", "'healthz' is not a path"]),
    ({"healthz": "/a?b"}, ["healthz", "'/a?b' is not a path"]),
    ({"metrics": "metrics"}, ["metrics", "'metrics' is not a path"]),
    ({"metrics": "/"}, ["metrics", "would hide the whole site"]),
    ({"metrics": "/healthz/ready"}, ["metrics", "also a probe"]),
    ({"healthz": "/h", "metrics": "/h/live/"}, ["metrics", "also a probe"]),
    ({"metrics": "/metrics", "metrics-allow": "10.0.0.300"}, ["metrics-allow", "'10.0.0.300'"]),
    ({"metrics": "/metrics", "metrics-allow": "10.0.0.0/33"}, ["metrics-allow", "'10.0.0.0/33'"]),
    ({"metrics": "/metrics", "metrics-allow": "127.0.0.1, nope"}, ["metrics-allow", "'nope'"]),
    ({"metrics-allow": "127.0.0.1"}, ["metrics-allow", "without 'metrics'"]),
])
def test_bad_config_is_one_clear_line(wharf, options, expect):
    srv = wharf(dict(options), start=False)
    cp = srv.run("--check-config")
    out = cp.stdout + cp.stderr
    assert cp.returncode == 1, out
    errors = [line for line in out.splitlines() if all(e in line for e in expect)]
    assert len(errors) == 1, out


def test_good_config_checks(wharf):
    srv = wharf({"healthz": "off", "metrics": "/m", "metrics-allow": ["unix, *", "::1", "fd00::/8"]},
                start=False)
    cp = srv.run("--check-config")
    assert cp.returncode == 0, cp.stdout + cp.stderr


# ---------------------------------------------------------------- readiness

def test_ready_turns_503_on_sigterm_while_live_stays_200_until_exit(wharf):
    srv = wharf({"processes": 2, "healthz": "/healthz", "shutdown-delay": 2})
    assert status_of(srv, "/healthz/ready") == 200
    srv.signal(signal.SIGTERM)

    r = wait_status(srv, "/healthz/ready", 503, timeout=1.0, what="ready to turn 503 after SIGTERM")
    assert r.json() == {"status": "unavailable", "checks": {}, "draining": False, "stopping": True,
                        "app": True}

    # shutdown-delay: the port still accepts; live says 200, ready 503,
    # until the sockets close; then the server exits 0
    answers = []

    def closed():
        try:
            live = get(srv, "/healthz/live", timeout=2).status_code
            ready = get(srv, "/healthz/ready", timeout=2).status_code
        except requests.ConnectionError:
            return True
        answers.append((live, ready))
        return False
    wait_for(closed, timeout=15, interval=0.05, what="the sockets to close")
    assert answers, "no probe answered during shutdown-delay"
    assert set(answers) == {(200, 503)}, answers
    assert srv.wait_exit(30) == 0
    assert "readiness now fails" in srv.log()


def test_draining_worker_is_alive_and_still_ready(wharf):
    """One worker draining (a reload, max-requests) is no reason to take the
    instance out of its load balancer: readiness stays 200 and says
    draining; only a stopping server (SIGTERM) fails it."""
    srv = wharf({"processes": 1, "healthz": "/healthz"})
    # Two connections the worker owns, each with a complete request (proof
    # that the worker has read what we sent) followed by a partial one, so
    # the drain keeps them open.
    ready_conn, live_conn = RawConn(srv), RawConn(srv)
    for conn, path in ((ready_conn, b"/healthz/ready"), (live_conn, b"/healthz/live")):
        req = b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n"
        conn.send(req + b"\r\n" + req)
        status, _, _ = conn.response()
        assert status == 200
    [pid] = srv.worker_pids()
    os.kill(pid, signal.SIGTERM)
    srv.wait_log(r"worker 1 draining")

    ready_conn.send(b"\r\n")
    status, headers, body = ready_conn.response()
    assert status == 200
    assert headers["connection"] == "close"
    assert json.loads(body) == {"status": "ok", "checks": {}, "draining": True,
                                "stopping": False, "app": True}
    live_conn.send(b"\r\n")
    status, headers, body = live_conn.response()
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert headers["connection"] == "close"
    ready_conn.close()
    live_conn.close()

    # the master starts a new worker, which is ready
    wait_for(lambda: status_of(srv, "/healthz/ready") == 200, timeout=10, what="a new ready worker")
    assert srv.worker_pids() != [pid]


def test_ready_follows_a_plugin_check(wharf, fixture_plugins, tmp_path):
    flag = tmp_path / "db-up"
    srv = wharf({"processes": 2, "healthz": "/healthz", "metrics": "/metrics",
                 "fakecheck-file": str(flag), "fakecheck-delay": "30ms",
                 "fakecheck-message": "db \"down\" \\ at\there é"}, env=fixture_plugins)

    r = wait_status(srv, "/healthz/ready", 503, what="ready 503 while the check fails")
    body = r.json()
    assert body["status"] == "unavailable" and body["app"] is True
    check = body["checks"]["fakecheck"]
    assert check["ok"] is False
    # the message as the plugin wrote it (or "not checked yet" before the
    # first run), quotes, backslash, tab and UTF-8 intact
    wait_for(lambda: get(srv, "/healthz/ready").json()["checks"]["fakecheck"]["error"]
             == "db \"down\" \\ at\there é", timeout=5, what="the check's message")

    flag.write_text("")
    r = wait_status(srv, "/healthz/ready", 200, what="ready 200 once the check passes")
    check = r.json()["checks"]["fakecheck"]
    assert check == {"ok": True, "ms": check["ms"], "error": None}
    assert check["ms"] >= 30  # fakecheck-delay
    assert scrape(srv).value("wharf_check_ok", check="fakecheck") == 1

    flag.unlink()
    wait_status(srv, "/healthz/ready", 503, what="ready 503 again once the check fails")
    assert status_of(srv, "/healthz/live") == 200
    assert status_of(srv, "/healthz/startup") == 200
    wait_for(lambda: scrape(srv).value("wharf_check_ok", check="fakecheck") == 0, timeout=5,
             what="wharf_check_ok 0")


def test_check_messages_are_valid_json_even_when_cut(wharf, fixture_plugins, tmp_path):
    # 100 x "é" is 200 bytes; the core keeps 159 of them, ending in half a
    # character, which must come out as U+FFFD, not as invalid UTF-8
    srv = wharf({"processes": 1, "healthz": "true", "fakecheck-file": str(tmp_path / "missing"),
                 "fakecheck-message": "é" * 100}, env=fixture_plugins)

    def cut_message():
        r = get(srv, "/healthz/ready")
        assert r.status_code == 503
        err = json.loads(r.content.decode("utf-8", "strict"))["checks"]["fakecheck"]["error"]
        return err if err != "not checked yet" else None
    assert wait_for(cut_message, timeout=5, what="a checked result") == "é" * 79 + "\ufffd"


def test_a_stuck_checker_makes_ready_fail(wharf, fixture_plugins, tmp_path):
    flag = tmp_path / "ok"
    flag.write_text("")
    srv = wharf({"processes": 1, "healthz": "true", "fakecheck-file": str(flag)}, env=fixture_plugins)
    wait_for(lambda: status_of(srv, "/healthz/ready") == 200, timeout=5, what="ready")
    [checker] = child_pids(srv, "wharf-checker")
    os.kill(checker, signal.SIGSTOP)
    try:
        r = wait_status(srv, "/healthz/ready", 503, timeout=10, what="a stale check to fail readiness")
        err = r.json()["checks"]["fakecheck"]["error"]
        assert err.startswith("stale: no result for "), err
    finally:
        os.kill(checker, signal.SIGCONT)
    wait_for(lambda: status_of(srv, "/healthz/ready") == 200, timeout=5,
             what="ready again once the checker runs")


def test_startup_and_ready_wait_for_the_app(wharf, fixture_plugins, tmp_path):
    ok, app = tmp_path / "ok", tmp_path / "app-loaded"
    ok.write_text("")
    srv = wharf({"processes": 2, "healthz": "true", "fakecheck-file": str(ok),
                 "fakecheck-app-file": str(app)},
                env=fixture_plugins)
    r = get(srv, "/healthz/startup")
    assert r.status_code == 503 and r.json() == {"status": "starting"}
    assert r.headers["Cache-Control"] == "no-store"
    r = get(srv, "/healthz/ready")
    assert r.status_code == 503 and r.json()["app"] is False
    assert status_of(srv, "/healthz/live") == 200

    app.write_text("")
    wait_for(lambda: status_of(srv, "/healthz/startup") == 200, timeout=5, what="startup 200")
    r = wait_status(srv, "/healthz/ready", 200)
    assert r.json()["app"] is True


# ---------------------------------------------------------------- metrics

def test_metrics_format_and_counters_move_exactly(wharf, fixture_plugins, tmp_path):
    ok = tmp_path / "ok"
    ok.write_text("")
    srv = wharf({"processes": 2, "metrics": "/metrics", "fakecheck-file": str(ok)},
                env=fixture_plugins)
    # One keep-alive connection, so one worker answers everything in order:
    # a request's counters are recorded before the next one is read.
    s = requests.Session()
    m1 = scrape(srv, s)
    for _ in range(3):
        assert get(srv, "/nope", s).status_code == 404
    for path in ("/healthz/live", "/healthz/ready"):
        assert get(srv, path, s).status_code == 200
    h = s.head(srv.url + "/metrics", timeout=5)
    assert h.status_code == 200 and h.content == b""
    assert h.headers["Content-Type"] == PROM_TYPE
    m2 = scrape(srv, s)

    def delta(name, **labels):
        return m2.value(name, **labels) - m1.value(name, **labels)
    # probes and scrapes are requests too: m1, live, ready, HEAD
    assert delta("wharf_requests_total", code="2xx") == 4
    assert delta("wharf_requests_total", code="4xx") == 3
    for code in ("1xx", "3xx", "5xx", "other"):
        assert delta("wharf_requests_total", code=code) == 0
    assert delta("wharf_request_duration_seconds_count") == 7
    assert delta("wharf_request_duration_seconds_sum") > 0
    # only the 404s reached the app phase: probes and scrapes never do
    assert delta("wharf_fakecheck_app_requests_total") == 3
    assert delta("wharf_requests_2_total") == 3  # the clashing plugin counter, renamed
    assert "clashes with another metric name" in srv.log()

    total = m2.total("wharf_requests_total")
    assert m2.value("wharf_request_duration_seconds_count") == total
    assert m2.value('wharf_request_duration_seconds_bucket', le="+Inf") == total
    assert m2.total("wharf_worker_requests_total") == total
    assert set(m2.series("wharf_worker_requests_total")) == {(("worker", "1"),), (("worker", "2"),)}
    les = [dict(k)["le"] for k in m2.series("wharf_request_duration_seconds_bucket")]
    assert les == ["0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
                   "5", "10", "+Inf"]

    assert m2.value("wharf_requests_in_flight") == 1  # this scrape
    assert m2.value("wharf_connections_open") >= 1
    assert m2.value("wharf_workers", state="ready") == 2
    for state in ("starting", "draining", "stopped"):
        assert m2.value("wharf_workers", state=state) == 0
    assert m2.value("wharf_workers_configured") == 2
    assert m2.value("wharf_worker_respawns_total") == 0
    assert m2.types["wharf_worker_rss_bytes"] == "gauge"
    assert m2.types["wharf_fakecheck_checks_run_total"] == "counter"
    assert m2.helps["wharf_fakecheck_checks_run_total"] == "Check runs\nof fakecheck \\ (escaped help)."

    # RSS is sampled by the master once a second; check runs are counted by
    # the checker process (server-wide plugin counters)
    def sampled():
        m = scrape(srv, s)
        rss = m.series("wharf_worker_rss_bytes")
        return (len(rss) == 2 and all(v > 0 for v in rss.values())
                and m.value("wharf_fakecheck_checks_run_total") >= 2)
    wait_for(sampled, timeout=5, what="RSS samples and check runs")
    s.close()


def test_metrics_parse_with_prometheus_client(wharf):
    parser = pytest.importorskip("prometheus_client.parser")
    srv = wharf({"processes": 2, "metrics": "/metrics"})
    s = requests.Session()  # one worker, in order: see the exact-counter test
    for _ in range(3):
        assert get(srv, "/nope", s).status_code == 404
    text = get(srv, "/metrics", s).text
    s.close()
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    # prometheus_client strips _total from counter family names
    assert families["wharf_requests"].type == "counter"
    assert families["wharf_request_duration_seconds"].type == "histogram"
    assert families["wharf_workers"].type == "gauge"
    fourxx = [s for s in families["wharf_requests"].samples if s.labels == {"code": "4xx"}]
    assert [s.value for s in fourxx] == [3.0]


def test_counters_survive_a_killed_worker(wharf):
    srv = wharf({"processes": 2, "metrics": "/metrics"})
    with requests.Session() as s:
        for _ in range(5):
            assert get(srv, "/nope", s).status_code == 404
        scrapes = [scrape(srv, s)]
    pids = srv.worker_pids()
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)

    def respawned():
        m = scrape(srv)
        scrapes.append(m)
        return (m.value("wharf_worker_respawns_total") == 1
                and m.value("wharf_workers", state="ready") == 2)
    wait_for(respawned, timeout=10, what="the killed worker to be replaced")
    assert pids[0] not in srv.worker_pids()
    for before, after in zip(scrapes, scrapes[1:]):
        for key, value in before.counters().items():
            assert after.samples[key] >= value, f"{key} went back: {value} -> {after.samples[key]}"
    last = scrapes[-1]
    assert last.value("wharf_requests_total", code="4xx") == 5
    assert last.value("wharf_requests_total", code="2xx") >= len(scrapes) - 1
    assert last.total("wharf_worker_requests_total") == last.total("wharf_requests_total")


def test_counters_survive_worker_recycling(wharf):
    # max-requests replaces the worker every few requests; the scoreboard
    # keeps each slot's counters, so the totals go on where they were
    srv = wharf({"processes": 1, "metrics": "/metrics", "max-requests": 3})
    s = requests.Session()
    scrapes = [scrape(srv, s) for _ in range(15)]
    base = scrapes[0].value("wharf_requests_total", code="2xx")
    prev = base
    for i, m in enumerate(scrapes):
        v = m.value("wharf_requests_total", code="2xx")
        # a worker counts a request just after sending its response: the
        # scrape that follows a Connection: close (the worker drains) may
        # reach the new worker before the old one counted; never more than
        # one behind, never back
        assert base + i - 1 <= v <= base + i and v >= prev, (i, v, base)
        prev = v
        assert m.value("wharf_worker_requests_total", worker="1") == m.total("wharf_requests_total")
    srv.wait_log(r"max-requests", count=2)
    # and nothing is lost: 15 scrapes answered, then this one sees them all
    answered = [15]

    def all_counted():
        v = scrape(srv).value("wharf_requests_total", code="2xx")
        assert v <= base + answered[0]
        answered[0] += 1
        return v == base + answered[0] - 1
    wait_for(all_counted, what="every answered scrape to be counted")
    s.close()


def test_metrics_allow(wharf):
    srv = wharf({"processes": 1, "metrics": "/metrics", "metrics-allow": "10.0.0.0/8"}, name="deny")
    r = get(srv, "/metrics")
    assert r.status_code == 403 and "metrics-allow" in r.text
    assert r.headers["Cache-Control"] == "no-store"
    assert status_of(srv, "/healthz/live") == 200  # probes are not restricted

    srv = wharf({"processes": 1, "metrics": "/metrics", "metrics-allow": ["::1", "127.0.0.0/8"]},
                name="allow")
    scrape(srv)
    # 127.0.0.1 is a trusted proxy by default (forwarded-allow-ips): the
    # client it names is the one checked
    assert get(srv, "/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403
    assert get(srv, "/metrics", headers={"X-Forwarded-For": "127.0.0.9"}).status_code == 200


def test_counters_of_other_plugins_appear(wharf):
    if not os.path.exists(os.path.join(PLUGINS_DIR, "harakiri_plugin.so")):
        pytest.skip("harakiri plugin not built")
    srv = wharf({"processes": 1, "metrics": "/metrics", "harakiri": 60})
    m = scrape(srv)
    assert m.types["wharf_harakiri_total"] == "counter"
    assert m.value("wharf_harakiri_total") == 0
