"""The core, through the real binary: --version, --help, config errors with
their exact one-line messages, plugin loading refusals, --check-config,
--show-config origins, the master/worker process model (ps, respawn after
SIGKILL, SIGINT and SIGTERM), pidfile and vacuum, and the plugin hook
order and tick rate (with the `hooks` fixture of tests/fixtures/plugins).

Most tests bind no socket and need no plugin but the fixtures: they pass
`port=False` (no http-socket line) and point WHARF_PLUGINS_DIR at the
fixture directory.  A few use the real http and harakiri plugins of the
build tree and are skipped when those are not built.
"""
import os
import re
import signal
import subprocess
import time

import pytest

from wharfctl import BUILDDIR, PLUGINS_DIR, SRCDIR, WHARF, Wharf, alive, wait_for

FIXTURES = os.path.join(BUILDDIR, "tests", "fixtures", "plugins")
FIXTURE_ENV = {"WHARF_PLUGINS_DIR": FIXTURES}


def at(path, line):
    """Regex of a file origin: the path as given, ':' and the line number
    (line 1 of a generated ini is its [uwsgi] header)."""
    return rf"{re.escape(str(path))}:{line}"


def abi_version():
    text = open(os.path.join(SRCDIR, "core", "wharf.h")).read()
    major = re.search(r"#define WHARF_ABI_MAJOR (\d+)", text).group(1)
    minor = re.search(r"#define WHARF_ABI_MINOR (\d+)", text).group(1)
    return int(major), int(minor)


def abi_line(name, major, minor):
    cur = abi_version()
    return (f"{name}_plugin.so: ABI {major}.{minor}, this wharf speaks {cur[0]}.{cur[1]} "
            f"(rebuild the plugin against this wharf's wharf.h)")


def one_shot(tmp_path, *args, options=None, name="oneshot", env=None):
    """Run wharf to completion with the fixture plugins-dir."""
    e = dict(FIXTURE_ENV)
    e.update(env or {})
    w = Wharf(tmp_path, options=options, port=False, env=e, name=name)
    return w, w.run(*args)


def only_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one line on stderr, got:\n{stderr}"
    return lines[0]


def hooks_server(wharf, tmp_path, extra=(), **kw):
    trace = tmp_path / "trace.txt"
    opts = [("plugin", "hooks"), ("hooks-trace", str(trace))] + list(extra)
    srv = wharf(opts, port=False, env=FIXTURE_ENV, **kw)
    return srv, trace


def read_trace(trace):
    try:
        return trace.read_text().splitlines()
    except FileNotFoundError:
        return []


def workers(master_pid):
    """{comm: pid} of the live (not zombie) children of the master."""
    out = subprocess.run(["ps", "-o", "pid=,stat=,comm=", "--ppid", str(master_pid)],
                         capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        pid, stat, comm = line.split(None, 2)
        if comm.startswith("wharf-worker-") and not stat.startswith("Z"):
            found[comm.strip()] = int(pid)
    return found


# ---------------------------------------------------------------- --version, --help

def test_version_names_the_allocator(tmp_path):
    _, r = one_shot(tmp_path, "--version")
    assert r.returncode == 0, r.stderr
    major, minor = abi_version()
    first = r.stdout.splitlines()[0]
    assert re.fullmatch(rf"wharf \S+ \(plugin ABI {major}\.{minor}, allocator: .+\)", first), first
    config_h = open(os.path.join(BUILDDIR, "config.h")).read()
    if re.search(r"^#define WHARF_WITH_JEMALLOC 1$", config_h, re.M):
        assert "allocator: jemalloc " in first
        # and it really is linked in
        ldd = subprocess.run(["ldd", WHARF], capture_output=True, text=True).stdout
        assert "libjemalloc" in ldd
    elif re.search(r"^CFLAGS = .*-fsanitize=address", open(os.path.join(BUILDDIR, "Makefile")).read(), re.M):
        assert "allocator: AddressSanitizer" in first
    else:
        assert "allocator: glibc malloc" in first
    assert f"plugins-dir: {FIXTURES}" in r.stdout


def test_help_lists_core_and_plugin_options(tmp_path):
    _, r = one_shot(tmp_path, "--help")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("Usage: wharf ")
    for line in ("--processes <int>", "--threads <int>", "--plugin <list>",
                 "--graceful-timeout <duration>", "--vacuum <bool>", "--master <compat>"):
        assert line in out
    assert re.search(r"^  --workers +alias of processes", out, re.M)
    # every core option shown by --show-config is documented by --help
    _, shown = one_shot(tmp_path, "--show-config", name="show")
    core = shown.stdout.split("[core]")[1]
    names = re.findall(r"^(\S+)\s+=", core, re.M)
    assert "processes" in names and len(names) > 20
    for name in names:
        assert re.search(rf"^  --{re.escape(name)}\b", out, re.M), f"--{name} missing from --help"
    # plugin options come from the plugins found in plugins-dir
    assert "\nhooks plugin (1.0):\n" in out
    for line in ("--hooks-size <size>", "--hooks-duration <duration>", "--hooks-list <list>",
                 "--hooks-addresses <address list>", "--hooks-bool <bool>", "--hooks-compat <compat>"):
        assert line in out
    assert re.search(r"^  --hooks-number +alias of hooks-int$", out, re.M)
    assert "[default: 64k]" in out
    # and unusable ones say why, in one line
    assert f"\nbadabi plugin: unusable: {abi_line('badabi', abi_version()[0] + 1, 0)}\n" in out
    assert out.rstrip().endswith(f"Plugins are looked up in {FIXTURES}.")


# ---------------------------------------------------------------- config errors

def test_unknown_option_in_file(tmp_path):
    w, r = one_shot(tmp_path, options=[("processes", 2), ("procesess", 4)])
    assert r.returncode == 1
    line = only_line(r.stderr)
    assert re.fullmatch(at(w.ini_path, 3) + rf": unknown option 'procesess' "
                        rf"\(did you mean 'processes'\?\)", line), line
    assert r.stdout == ""


@pytest.mark.skipif(not os.path.exists(os.path.join(PLUGINS_DIR, "harakiri_plugin.so")),
                    reason="harakiri plugin not built")
def test_harikiri_typo(tmp_path):
    """The issue's example, with the real harakiri plugin in plugins-dir."""
    w = Wharf(tmp_path, options=[("harikiri", 60)], port=False, name="typo")
    r = w.run()
    assert r.returncode == 1
    line = only_line(r.stderr)
    assert re.fullmatch(at(w.ini_path, 2) + rf": unknown option 'harikiri' "
                        rf"\(did you mean 'harakiri'\?\)", line), line
    r = Wharf(tmp_path, port=False, name="typo2").run("--harakiri-verbos")
    assert r.returncode == 1
    assert only_line(r.stderr) == "command line: unknown option 'harakiri-verbos' (did you mean 'harakiri-verbose'?)"


def test_unknown_option_on_command_line(tmp_path):
    _, r = one_shot(tmp_path, "--procesess", "4")
    assert r.returncode == 1
    assert only_line(r.stderr) == "command line: unknown option 'procesess' (did you mean 'processes'?)"


@pytest.mark.parametrize("typo, meant", [
    ("vaccum", "vacuum"),
    ("thraeds", "threads"),
    ("pidfiel", "pidfile"),
    ("hooks-sise", "hooks-size"),   # suggested from a plugin that is not loaded yet
])
def test_did_you_mean(tmp_path, typo, meant):
    _, r = one_shot(tmp_path, f"--{typo}", "1")
    assert r.returncode == 1
    assert only_line(r.stderr) == f"command line: unknown option '{typo}' (did you mean '{meant}'?)"


def test_unknown_option_without_suggestion(tmp_path):
    _, r = one_shot(tmp_path, "--frobnicate", "1")
    assert r.returncode == 1
    assert only_line(r.stderr) == "command line: unknown option 'frobnicate'"


def test_option_of_a_missing_plugin_names_it(tmp_path):
    _, r = one_shot(tmp_path, "--http-socket", ":8080")
    assert r.returncode == 1
    assert only_line(r.stderr) == (
        f"command line: option 'http-socket' needs the http plugin, but http_plugin.so was not "
        f"found in {FIXTURES} (install wharf, or set plugins-dir)")


def test_option_of_a_refused_plugin_says_why(tmp_path):
    # the owner's file is there but cannot be loaded: say why, not "not found"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    with open(os.path.join(FIXTURES, "badabi_plugin.so"), "rb") as src:
        (plugins / "http_plugin.so").write_bytes(src.read())
    _, r = one_shot(tmp_path, "--http-socket", ":8080", env={"WHARF_PLUGINS_DIR": str(plugins)})
    assert r.returncode == 1
    assert only_line(r.stderr) == (
        "command line: option 'http-socket' needs the http plugin, which cannot be loaded: "
        + abi_line("http", abi_version()[0] + 1, 0))


def test_strict_false_warns_and_runs(tmp_path):
    _, r = one_shot(tmp_path, "--strict=false", "--frobnicate", "1", "--check-config")
    assert r.returncode == 0, r.stderr
    assert re.search(r"WARN: command line: unknown option 'frobnicate' \(ignored: strict = false\)",
                     r.stderr), r.stderr


def test_bad_size_in_file(tmp_path):
    w, r = one_shot(tmp_path, options=[("hooks-size", "64q")])
    assert r.returncode == 1
    line = only_line(r.stderr)
    assert re.fullmatch(at(w.ini_path, 2) + rf": hooks-size: invalid value '64q' "
                        rf"\(expected a size such as 65536, 64k, 8m or 1g\)", line), line


@pytest.mark.skipif(not os.path.exists(os.path.join(PLUGINS_DIR, "http_plugin.so")),
                    reason="http plugin not built")
def test_buffer_size_64q(tmp_path):
    """The issue's example, with the real http plugin in plugins-dir."""
    w = Wharf(tmp_path, options=[("buffer-size", "64q")], name="bufsize")  # http-socket is line 2
    r = w.run()
    assert r.returncode == 1
    line = only_line(r.stderr)
    assert re.fullmatch(at(w.ini_path, 3) + r": buffer-size: invalid value '64q' "
                        r"\(expected a size such as 65536, 64k, 8m or 1g\)", line), line


@pytest.mark.parametrize("args, message", [
    (["--hooks-size", "64q"],
     "command line: hooks-size: invalid value '64q' (expected a size such as 65536, 64k, 8m or 1g)"),
    (["--hooks-size", "18446744073709551616"],
     "command line: hooks-size: invalid value '18446744073709551616' "
     "(expected a size such as 65536, 64k, 8m or 1g)"),
    (["--hooks-size", "2g"], "command line: hooks-size: '2g' is out of range (expected 1 to 1073741824)"),
    (["--hooks-duration", "soon"],
     "command line: hooks-duration: invalid value 'soon' "
     "(expected a duration such as 30 (seconds), 500ms, 2m or 1h)"),
    (["--hooks-bool=maybe"],
     "command line: hooks-bool: invalid value 'maybe' (expected true or false (also 1/0, yes/no, on/off))"),
    (["--hooks-int", "101"], "command line: hooks-int: '101' is out of range (expected 0 to 100)"),
    (["--hooks-number", "x"], "command line: hooks-number: invalid value 'x' (expected a whole number)"),
    (["--hooks-address", "localhost"],
     "command line: hooks-address: 'localhost' has no port (expected host:port, :port or a unix socket path)"),
    (["--hooks-addresses", "[::1]:70000"],
     "command line: hooks-addresses: '[::1]:70000' has an invalid port '70000' (expected 0-65535)"),
    (["--listen", "64q"], "command line: listen: invalid value '64q' (expected a whole number)"),
    (["--processes", "0"], "command line: processes: '0' is out of range (expected 1 to 4096)"),
    (["--workers", "5000"], "command line: workers: '5000' is out of range (expected 1 to 4096)"),
    (["--graceful-timeout", "2d"],
     "command line: graceful-timeout: invalid value '2d' "
     "(expected a duration such as 30 (seconds), 500ms, 2m or 1h)"),
])
def test_bad_values(tmp_path, args, message):
    _, r = one_shot(tmp_path, *args)
    assert r.returncode == 1
    assert only_line(r.stderr) == message


# ---------------------------------------------------------------- plugin loading

@pytest.mark.parametrize("name, message", [
    ("badabi", lambda: abi_line("badabi", abi_version()[0] + 1, 0)),
    ("newminor", lambda: abi_line("newminor", abi_version()[0], abi_version()[1] + 1)),
    ("nomagic", lambda: "nomagic_plugin.so: not a wharf plugin (bad magic 0xdeadbeef)"),
    ("nosymbol", lambda: "nosymbol_plugin.so: not a wharf plugin (no 'wharf_plugin' symbol)"),
    ("badphase", lambda: "badphase_plugin.so: plugin declares invalid phases 0x44"),
])
def test_refused_plugin(tmp_path, name, message):
    _, r = one_shot(tmp_path, "--plugin", name)
    assert r.returncode == 1
    assert only_line(r.stderr) == f"command line: plugin: {message()}"


def test_badabi_from_file(tmp_path):
    w, r = one_shot(tmp_path, options=[("plugin", "badabi")])
    assert r.returncode == 1
    line = only_line(r.stderr)
    assert re.fullmatch(at(w.ini_path, 2) + ": plugin: "
                        + re.escape(abi_line("badabi", abi_version()[0] + 1, 0)), line), line
    if abi_version() == (1, 0):
        assert line.endswith(": plugin: badabi_plugin.so: ABI 2.0, this wharf speaks 1.0 "
                             "(rebuild the plugin against this wharf's wharf.h)")


def test_plugins_dir_option(tmp_path):
    # plugins-dir from the file (no WHARF_PLUGINS_DIR in the environment)
    w, r = one_shot(tmp_path, "--check-config", options=[("plugins-dir", FIXTURES), ("plugin", "badabi")],
                    env={"WHARF_PLUGINS_DIR": None})
    assert r.returncode == 1
    assert only_line(r.stderr).endswith(": plugin: " + abi_line("badabi", abi_version()[0] + 1, 0))


def test_missing_plugin_names_the_path(tmp_path):
    _, r = one_shot(tmp_path, "--plugin", "nothere")
    assert r.returncode == 1
    assert only_line(r.stderr) == (
        f"command line: plugin: 'nothere': nothere_plugin.so not found (looked in {FIXTURES})")


def test_python3_is_python(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _, r = one_shot(tmp_path, "--plugin", "python3", env={"WHARF_PLUGINS_DIR": str(empty)})
    assert r.returncode == 1
    assert only_line(r.stderr) == (
        f"command line: plugin: 'python': python_plugin.so not found (looked in {empty})")


def test_duplicate_option_refused(tmp_path):
    _, r = one_shot(tmp_path, "--plugin", "dupopt")
    assert r.returncode == 1
    assert re.search(r"ERROR: option 'processes' of plugin 'dupopt' is already declared by the core$",
                     r.stderr.strip()), r.stderr


def test_plugin_loaded_by_its_option(tmp_path):
    # no `plugin = hooks`: using one of its options loads it
    _, r = one_shot(tmp_path, "--hooks-int", "3", "--check-config")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "configuration OK: 1 plugin(s), 0 socket(s)"


# ---------------------------------------------------------------- --check-config

def test_check_config_ok(tmp_path):
    trace = tmp_path / "trace.txt"
    _, r = one_shot(tmp_path, "--check-config",
                    options=[("processes", 3), ("plugin", "hooks"), ("hooks-trace", str(trace))])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "configuration OK: 1 plugin(s), 0 socket(s)"
    lines = read_trace(trace)
    # setup ran, in check-only mode, and nothing was started
    assert lines[0] == f"setup {lines[0].split()[1]} check_only=1 processes=3"
    assert not [line for line in lines if line.startswith(("worker_start", "tick"))]


@pytest.mark.skipif(not os.path.exists(os.path.join(PLUGINS_DIR, "http_plugin.so")),
                    reason="http plugin not built")
def test_check_config_beside_a_running_server(wharf, tmp_path):
    # validating the config of a running server must not need its port
    srv = wharf({"processes": 1})
    check = Wharf(tmp_path, options={"processes": 2}, port=srv.port, name="recheck").run("--check-config")
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "configuration OK: 1 plugin(s), 1 socket(s)"


def test_check_config_fails(tmp_path):
    _, r = one_shot(tmp_path, "--check-config", "--procesess", "2")
    assert r.returncode == 1
    assert r.stdout == ""
    w, r = one_shot(tmp_path, "--check-config", options=[("plugin", "hooks"), ("hooks-fail", "setup")],
                    name="failing")
    assert r.returncode == 1
    assert re.search("^" + at(w.ini_path, 3) + ": hooks-fail: setup fails on purpose$",
                     r.stderr, re.M), r.stderr
    assert "ERROR: plugin hooks: setup failed" in r.stderr


# ---------------------------------------------------------------- --show-config

def parse_show(text):
    """{section: [(name, value, origin)]} from --show-config output."""
    sections, cur = {}, None
    for line in text.splitlines():
        if line.startswith("["):
            cur = line.strip("[]")
            sections[cur] = []
        elif cur and line.strip():
            m = re.match(r"^(\S+)\s+= (.*?)\s*; (.*)$", line)
            assert m, line
            sections[cur].append(m.groups())
    return sections


def test_show_config_origins(tmp_path):
    w, r = one_shot(tmp_path, "--threads", "2", "--show-config",
                    options=[("processes", 3), ("master", True), ("hooks-int", 9),
                             ("hooks-list", ["a", "b"]), ("workers", 4), ("vacuum", True)],
                    env={"WHARF_VACUUM": "false"})
    assert r.returncode == 0, r.stderr
    sections = parse_show(r.stdout)
    core = {name: (value, origin) for name, value, origin in sections["core"]}
    # last value wins through the alias, and the origin is its line
    assert core["processes"][0] == "4"
    assert re.fullmatch(at(w.ini_path, 7), core["processes"][1]), core["processes"]
    assert core["threads"] == ("2", "command line")
    assert core["listen"] == ("1024", "default")
    assert core["vacuum"] == ("false", "env WHARF_VACUUM")          # env outranks the file
    assert core["plugins-dir"] == (FIXTURES, "env WHARF_PLUGINS_DIR")
    assert core["graceful-timeout"] == ("30s", "default")
    assert core["plugin"] == ("", "default (empty)")
    assert core["master"][0] == "true"
    assert re.fullmatch(at(w.ini_path, 3) + r" \(always on: wharf always runs a master\)", core["master"][1])
    # compat options not used are not shown; aliases and actions never are
    assert "die-on-term" not in core
    assert "workers" not in core and "show-config" not in core
    # every value has an origin
    for name, value, origin in sections["core"]:
        assert origin, name
    hooks = [s for s in sections if s.startswith("hooks plugin: ")]
    assert hooks == [f"hooks plugin: {FIXTURES}/hooks_plugin.so"]
    rows = sections[hooks[0]]
    plugin = {name: (value, origin) for name, value, origin in rows}
    assert plugin["hooks-int"][0] == "9" and re.fullmatch(at(w.ini_path, 4), plugin["hooks-int"][1])
    assert plugin["hooks-size"] == ("65536", "default")
    assert plugin["hooks-duration"] == ("1500ms", "default")
    assert plugin["hooks-string"] == ("hello", "default")
    assert plugin["hooks-empty"] == ("", "default (empty)")
    lists = [(value, origin) for name, value, origin in rows if name == "hooks-list"]
    assert [v for v, _ in lists] == ["a", "b"]            # the default 'builtin' was replaced
    assert re.fullmatch(at(w.ini_path, 5), lists[0][1]) and re.fullmatch(at(w.ini_path, 6), lists[1][1])


def test_show_config_list_default(tmp_path):
    _, r = one_shot(tmp_path, "--plugin", "hooks", "--show-config")
    assert r.returncode == 0, r.stderr
    rows = parse_show(r.stdout)[f"hooks plugin: {FIXTURES}/hooks_plugin.so"]
    assert [(v, o) for n, v, o in rows if n == "hooks-list"] == [("builtin", "default")]
    core = {n: (v, o) for n, v, o in parse_show(r.stdout)["core"]}
    assert core["plugin"] == ("hooks", "command line")


# ---------------------------------------------------------------- processes

def test_processes_respawn_and_sigint(wharf):
    srv = wharf([("master", True), ("processes", 4)], port=False, env=FIXTURE_ENV)
    expected = {f"wharf-worker-{i}" for i in range(1, 5)}
    before = wait_for(lambda: (lambda w: w if set(w) == expected else None)(workers(srv.pid)),
                      timeout=10, what="4 workers in ps")
    assert len(set(before.values())) == 4
    # master is named too
    with open(f"/proc/{srv.pid}/comm") as f:
        assert f.read().strip() == "wharf-master"

    victim = before["wharf-worker-2"]
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    def replaced():
        now = workers(srv.pid)
        new = now.get("wharf-worker-2")
        return now if new and new != victim and set(now) == expected else None
    after = wait_for(replaced, timeout=5, interval=0.005, what="worker 2 to be replaced")
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, f"respawn took {elapsed:.3f}s"
    # the others were left alone
    for name in expected - {"wharf-worker-2"}:
        assert after[name] == before[name]
    srv.wait_log(rf"worker 2 \(pid {victim}\) died: killed by signal 9")
    srv.wait_log(rf"spawned worker 2 \(pid {after['wharf-worker-2']}\)")

    srv.signal(signal.SIGINT)
    assert srv.wait_exit(10) == 0
    for pid in after.values():
        wait_for(lambda: not alive(pid), timeout=5, what=f"worker {pid} to exit")
    assert "SIGINT: fast stop" in srv.log()


def test_sigterm_exits_zero(wharf):
    srv = wharf([("processes", 2)], port=False, env=FIXTURE_ENV)
    pids = wait_for(lambda: (lambda w: w if len(w) == 2 else None)(workers(srv.pid)), what="2 workers")
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(30) == 0
    for pid in pids.values():
        assert not alive(pid)
    log = srv.log()
    assert "SIGTERM: graceful stop" in log
    assert log.count("finished draining") == 2


def test_workers_leave_with_a_killed_master(wharf):
    # no orphans: a worker whose master dies drains and exits
    srv = wharf([("processes", 3)], port=False, env=FIXTURE_ENV)
    pids = wait_for(lambda: (lambda w: w if len(w) == 3 else None)(workers(srv.pid)), what="3 workers")
    os.kill(srv.pid, signal.SIGKILL)
    srv.wait_exit(10)
    for pid in pids.values():
        wait_for(lambda: not alive(pid), timeout=10, what=f"orphaned worker {pid} to exit")


def test_pidfile_and_vacuum(wharf, tmp_path):
    pidfile = tmp_path / "run" / "wharf.pid"
    pidfile.parent.mkdir()
    srv = wharf([("pidfile", str(pidfile)), ("vacuum", True)], port=False, env=FIXTURE_ENV)
    assert pidfile.read_text() == f"{srv.pid}\n"
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(30) == 0
    assert not pidfile.exists()
    assert f"vacuum: removed {pidfile}" in srv.log()
    assert os.listdir(pidfile.parent) == []     # no temp file left behind


def test_pidfile_kept_without_vacuum(wharf, tmp_path):
    pidfile = tmp_path / "wharf.pid"
    srv = wharf([("pidfile", str(pidfile))], port=False, env=FIXTURE_ENV, name="novacuum")
    assert pidfile.read_text() == f"{srv.pid}\n"
    srv.signal(signal.SIGINT)
    assert srv.wait_exit(10) == 0
    assert pidfile.exists()


def test_pidfile_unwritable(tmp_path):
    _, r = one_shot(tmp_path, "--pidfile", str(tmp_path / "no" / "such" / "dir" / "x.pid"))
    assert r.returncode == 1
    assert re.search(rf"^command line: pidfile: cannot write {re.escape(str(tmp_path))}/no/such/dir/x\.pid: "
                     r"No such file or directory$", r.stderr, re.M), r.stderr


# ---------------------------------------------------------------- hooks

def test_hook_order_and_config(wharf, tmp_path):
    srv, trace = hooks_server(wharf, tmp_path, extra=[
        ("processes", 2), ("hooks-string", "from file"), ("hooks-number", 42), ("hooks-bool", "on"),
        ("hooks-size", "8m"), ("hooks-duration", "2m"), ("hooks-address", "[::1]:8080"),
        ("hooks-list", ["a", "b"]), ("hooks-addresses", ["/run/a.sock", ":8000"]), ("hooks-compat", True)])
    wait_for(lambda: sum(line.startswith("worker_start") for line in read_trace(trace)) == 2,
             what="2 worker_start lines")
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(30) == 0
    lines = read_trace(trace)
    master = str(srv.pid)
    assert lines[0] == f"setup {master} check_only=0 processes=2"
    assert lines[1] == ("conf string=from file int=42 bool=true size=8388608 duration=120000 "
                        "address=[::1]:8080 list=a|b addresses=/run/a.sock|:8000 empty=0")
    # hooks-int was set through its alias hooks-number on line 6
    assert re.fullmatch("origin hooks-int=" + at(srv.ini_path, 6)
                        + " hooks-string=" + at(srv.ini_path, 5) + " set=1", lines[2]), lines[2]
    hooks = [line.split()[0] for line in lines[3:]]
    assert hooks[-1] == "teardown" and lines[-1] == f"teardown {master}"
    # each worker: worker_start, later worker_stop, in its own process
    starts = {line.split()[2]: line.split()[1] for line in lines if line.startswith("worker_start")}
    stops = {line.split()[2]: line.split()[1] for line in lines if line.startswith("worker_stop")}
    assert set(starts) == {"id=1", "id=2"}
    assert stops == starts
    for wid in starts:
        assert starts[wid] != master
        i_start = lines.index(f"worker_start {starts[wid]} {wid}")
        i_stop = lines.index(f"worker_stop {stops[wid]} {wid}")
        assert 2 < i_start < i_stop < len(lines) - 1
    # ticks run in the master, never after teardown
    assert all(line.split()[1] == master for line in lines if line.startswith("tick"))
    assert hooks.count("setup") == 0 and hooks.count("teardown") == 1


def test_tick_ten_times_a_second(wharf, tmp_path):
    # wharf.h: tick runs in the master "ten times a second (harakiri needs
    # the precision)"
    srv, trace = hooks_server(wharf, tmp_path)
    ticks = wait_for(lambda: (lambda t: t if len(t) >= 21 else None)(
        [int(line.split("ms=")[1]) for line in read_trace(trace) if line.startswith("tick")]),
        timeout=10, what="21 ticks")
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    # never faster than 10 Hz; late by a poll interval at most, allowing
    # for a loaded CI machine now and then
    assert all(g >= 95 for g in gaps), gaps
    assert all(g <= 400 for g in gaps), gaps
    assert 1900 <= ticks[20] - ticks[0] <= 3500, gaps


def test_sigint_skips_worker_stop_but_tears_down(wharf, tmp_path):
    srv, trace = hooks_server(wharf, tmp_path)
    wait_for(lambda: any(line.startswith("worker_start") for line in read_trace(trace)), what="worker_start")
    srv.signal(signal.SIGINT)
    assert srv.wait_exit(10) == 0
    lines = read_trace(trace)
    assert lines[-1] == f"teardown {srv.pid}"
    # a fast stop: workers exit at once, without goodbyes
    assert not [line for line in lines if line.startswith("worker_stop")]


def test_worker_start_failure_stops_the_server(wharf, tmp_path):
    srv, trace = hooks_server(wharf, tmp_path, extra=[("hooks-fail", "worker_start")], start=False,
                              allowed_errors=[r"hooks: worker_start fails on purpose",
                                              r"worker 1: plugin hooks failed to start",
                                              r"worker 1 could not start"])
    srv.start(wait=False)
    assert srv.wait_exit(20) == 1
    log = srv.log()
    assert "worker 1 could not start (see the error above); stopping" in log
    assert read_trace(trace)[-1] == f"teardown {srv.pid}"
