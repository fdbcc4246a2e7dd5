"""contrib/systemd: the units, and the two protocols they rely on, checked
without a running systemd.

- `systemd-analyze verify` accepts wharf@.service and wharf@.socket.
- Socket activation: systemd's own `systemd-socket-activate` binds the
  socket, starts wharf on the first connection with LISTEN_FDS, and wharf
  serves on the socket it was given (binding the address itself would fail:
  it is taken).
- sd_notify, as Type=notify with NotifyAccess=all expects: READY=1 from the
  main pid; on SIGHUP RELOADING=1 and READY=1 from the *same* pid; on
  SIGUSR2 MAINPID=<new> from the old master and READY=1 from the new master,
  a pid systemd does not know yet (hence NotifyAccess=all); STOPPING=1 on
  SIGTERM.
"""
import array
import os
import shutil
import signal
import socket
import subprocess

import pytest
import requests

from wharfctl import SRCDIR, WHARF, alive, free_port, wait_for

UNITS = os.path.join(SRCDIR, "contrib", "systemd")
SERVICE = os.path.join(UNITS, "wharf@.service")
SOCKET = os.path.join(UNITS, "wharf@.socket")
SSA = shutil.which("systemd-socket-activate")
ANALYZE = shutil.which("systemd-analyze")


def unit_settings(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_service_unit_settings():
    u = unit_settings(SERVICE)
    assert u["Type"] == ["notify"]
    assert u["NotifyAccess"] == ["all"]
    assert u["ExecStart"] == ["/usr/bin/wharf --ini /etc/wharf/%i.ini"]
    assert u["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert u["KillSignal"] == ["SIGTERM"]
    assert u["User"] == ["wharf"]
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("RuntimeDirectory", "wharf"),
                       ("SystemCallArchitectures", "native"), ("CapabilityBoundingSet", "")]:
        assert u[key] == [value], key
    assert set(u["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    s = unit_settings(SOCKET)
    assert s["ListenStream"] == ["/run/wharf/%i.sock"]
    assert s["Accept"] == ["no"]


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (package systemd)")
def test_systemd_analyze_verify(tmp_path):
    """Units named for an instance, ExecStart pointing at the built binary
    (verify checks that the command exists)."""
    for src, name in [(SERVICE, "wharf@test.service"), (SOCKET, "wharf@test.socket")]:
        text = open(src).read().replace("/usr/bin/wharf", os.path.abspath(WHARF))
        (tmp_path / name).write_text(text)
    r = subprocess.run([ANALYZE, "verify", str(tmp_path / "wharf@test.service"),
                        str(tmp_path / "wharf@test.socket")],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
    problems = [line for line in (r.stdout + r.stderr).splitlines()
                if "wharf@test" in line and "Failed to" not in line]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


# ------------------------------------------------------- socket activation

@pytest.fixture
def activated(tmp_path, wharf):
    """wharf started by systemd-socket-activate on `listen`."""
    started = []

    def start(listen, http_socket, **extra):
        opts = {"http-socket": http_socket, "processes": 1, "healthz": "/healthz"}
        opts.update(extra)
        srv = wharf(opts, start=False)
        srv._logf = open(srv.log_path, "ab")
        # systemd-socket-activate passes on only the variables named with -E
        setenv = [f"-E{k}={v}" for k, v in srv.env.items()
                  if k.startswith(("WHARF_", "ASAN_", "UBSAN_", "LSAN_")) or k == "PATH"]
        srv.proc = subprocess.Popen([SSA, "-l", listen] + setenv + srv.command(), stdout=srv._logf,
                                    stderr=subprocess.STDOUT, env=srv.env, cwd=srv.tmpdir,
                                    start_new_session=True)
        started.append(srv)
        wait_for(lambda: "Listening on" in srv.log(), 10, what="systemd-socket-activate to listen")
        return srv
    return start


@pytest.mark.skipif(SSA is None, reason="systemd-socket-activate is not installed (package systemd)")
def test_socket_activation_tcp(activated):
    port = free_port()
    srv = activated(f"127.0.0.1:{port}", f"127.0.0.1:{port}")
    # the first connection starts wharf, which answers on the passed socket
    r = requests.get(f"http://127.0.0.1:{port}/healthz/live", timeout=15)
    assert r.status_code == 200
    srv.wait_log(r"worker\(s\) accepting")
    assert "cannot bind" not in srv.log()
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(30) == 0


@pytest.mark.skipif(SSA is None, reason="systemd-socket-activate is not installed (package systemd)")
def test_socket_activation_unix(activated, tmp_path):
    """Also: with vacuum on, the socket file systemd created stays when
    wharf exits - the socket unit keeps listening on it."""
    path = str(tmp_path / "wharf.sock")
    srv = activated(path, path, vacuum=True)
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(15)
        c.connect(path)
        c.sendall(b"GET /healthz/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := c.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    srv.wait_log(r"worker\(s\) accepting")
    assert "another server is listening" not in srv.log()
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(30) == 0
    assert os.path.exists(path), "vacuum removed the socket systemd owns"


# --------------------------------------------------------------- sd_notify

class NotifySocket:
    """A NOTIFY_SOCKET that records (sender pid, message)."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setblocking(False)
        self.messages = []

    def poll(self):
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return self.messages
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = array.array("i", payload[:12])[0]
            for line in data.decode().splitlines():
                self.messages.append((pid, line))

    def wait(self, predicate, what, timeout=20):
        return wait_for(lambda: [m for m in self.poll() if predicate(m)], timeout, what=what)


def test_sd_notify_ready_reload_upgrade_stop(tmp_path, wharf):
    n = NotifySocket(tmp_path / "notify.sock")
    srv = wharf({"processes": 1, "healthz": "/healthz"}, env={"NOTIFY_SOCKET": n.path})
    master = srv.pid
    n.wait(lambda m: m == (master, "READY=1"), "READY=1 from the master")

    # SIGHUP: the master re-executes itself; systemd's MAINPID stays right
    seen = len(n.poll())
    srv.signal(signal.SIGHUP)
    n.wait(lambda m: m == (master, "RELOADING=1"), "RELOADING=1")
    wait_for(lambda: (master, "READY=1") in n.poll()[seen:], 30, what="READY=1 after the reload")
    assert srv.proc.poll() is None
    assert requests.get(srv.url + "/healthz/live", timeout=5).status_code == 200

    # SIGUSR2: a new master (a child of this one) takes over
    seen = len(n.poll())
    srv.signal(signal.SIGUSR2)
    mainpid = n.wait(lambda m: m[0] == master and m[1].startswith("MAINPID="), "MAINPID=")[0][1]
    new = int(mainpid.split("=", 1)[1])
    assert new != master
    wait_for(lambda: (new, "READY=1") in n.poll()[seen:], 30, what="READY=1 from the new master")
    assert srv.wait_exit(60) == 0  # the old master drained and left
    assert requests.get(srv.url + "/healthz/live", timeout=5).status_code == 200

    # SIGTERM to the new main pid (what systemd would signal)
    os.kill(new, signal.SIGTERM)
    n.wait(lambda m: m == (new, "STOPPING=1"), "STOPPING=1 from the new master")

    wait_for(lambda: not alive(new), 40, interval=0.1, what="the new master to exit")
