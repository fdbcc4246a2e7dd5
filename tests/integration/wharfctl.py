"""Start the real wharf binary for integration tests.

One helper for every test: a temp dir, a free port, a generated ini file,
waiting for readiness by watching the log (never by sleeping), and a check
at the end that the log holds no sanitizer report and no unexpected error.
"""
import os
import re
import signal
from signal import SIGINT
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("WHARF_SRCDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILDDIR = os.environ.get("WHARF_BUILDDIR", SRCDIR)
WHARF = os.environ.get("WHARF_BIN", os.path.join(BUILDDIR, "wharf"))
PLUGINS_DIR = os.environ.get("WHARF_TEST_PLUGINS_DIR", os.path.join(BUILDDIR, "plugins"))
PYTHON = "/usr/bin/python3"

# Lines that mean the server itself is broken, whatever the test expects.
FATAL_PATTERNS = [
    re.compile(r"AddressSanitizer:"),       # reports, not the startup summary line
    re.compile(r"LeakSanitizer"),
    re.compile(r"runtime error:"),          # UBSan
    re.compile(r"out of memory"),
    re.compile(r"Segmentation fault|SIGSEGV|signal 11"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    """Poll `predicate` until it returns a truthy value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive; a process that is reaped while we read its
    # stat file gives ENOENT or ESRCH
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def stop_foreign_master(pid, timeout=30):
    """Stop a master that is not our child (started by SIGUSR2) and wait."""
    if alive(pid):
        os.kill(pid, signal.SIGINT)
        wait_for(lambda: not alive(pid), timeout=timeout, what=f"master {pid} to exit")


def server_environ(base=None):
    """The environment for a wharf process: this one without the WHARF_*
    and UWSGI_* variables the test harness itself uses."""
    base = os.environ if base is None else base
    return {k: v for k, v in base.items() if not k.startswith(("WHARF_", "UWSGI_"))}


def ini_text(options, section="uwsgi"):
    """options: dict or list of (key, value); list values repeat the key."""
    items = options.items() if isinstance(options, dict) else options
    lines = [f"[{section}]"]
    for key, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is True:
                v = "true"
            elif v is False:
                v = "false"
            lines.append(f"{key} = {v}")
    return "\n".join(lines) + "\n"


class Wharf:
    """A running wharf master.  Use the `wharf` fixture from conftest.py."""

    def __init__(self, tmpdir, options=None, ini=None, args=(), env=None,
                 port=None, allowed_errors=(), name="app", binary=None):
        self.tmpdir = str(tmpdir)
        self.port = port or free_port()
        self.name = name
        self.ini_path = os.path.join(self.tmpdir, f"{name}.ini")
        self.log_path = os.path.join(self.tmpdir, f"{name}.log")
        if options is not None:
            opts = list(options.items()) if isinstance(options, dict) else list(options)
            if not any(k in ("http-socket",) for k, _ in opts) and port is not False:
                opts.insert(0, ("http-socket", f"127.0.0.1:{self.port}"))
            ini = ini_text(opts)
        if ini is not None:
            with open(self.ini_path, "w") as f:
                f.write(ini)
        self.args = list(args)
        self.binary = binary or WHARF   # a copy, for binary-upgrade tests
        # WHARF_* and UWSGI_* variables are config to wharf (WHARF_SRCDIR
        # would be an unknown option 'srcdir'): the server gets only the
        # ones a test sets.
        self.env = server_environ()
        self.env["WHARF_PLUGINS_DIR"] = PLUGINS_DIR
        # sanitizer builds: report and stop at the first error; Python's own
        # allocations are not leaks of ours.  Reports go to files of their
        # own (<tmpdir>/sanitizer-report.<pid>), so none is lost whatever
        # the process did with its stderr (a worker's log redirection, a
        # daemonized child); check_log() fails the test if one appears.
        self.report_prefix = os.path.join(self.tmpdir, "sanitizer-report")
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:halt_on_error=1:"
                            f"log_path={self.report_prefix}")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:"
                            f"log_path={self.report_prefix}")
        if env:
            self.env.update(env)
        # env={"NAME": None} removes NAME (e.g. WHARF_PLUGINS_DIR)
        self.env = {k: v for k, v in self.env.items() if v is not None}
        self.allowed_errors = [re.compile(p) for p in allowed_errors]
        self.proc = None
        self._logf = None

    # -- process ---------------------------------------------------------
    def command(self, *extra):
        cmd = [self.binary]
        if os.path.exists(self.ini_path):
            cmd += ["--ini", self.ini_path]
        return cmd + self.args + list(extra)

    def start(self, wait=True, timeout=15):
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self._logf, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.tmpdir, start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"wharf exited with {self.proc.returncode} before ready:\n{self.log()}")
            return "worker(s) accepting" in self.log()
        wait_for(ready, timeout, what="wharf to become ready")
        return self

    def run(self, *extra, timeout=60):
        """Run wharf to completion (e.g. --check-config); returns CompletedProcess."""
        return subprocess.run(self.command(*extra), env=self.env, cwd=self.tmpdir,
                              capture_output=True, text=True, timeout=timeout)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=30):
        return self.proc.wait(timeout)

    # `sig=signal.SIGINT` cannot be a default here: in the class body the
    # name `signal` is the method above, not the module.
    def stop(self, sig=None, timeout=30):
        if sig is None:
            sig = SIGINT
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError(f"wharf did not stop within {timeout}s:\n{self.log()}")
        if self._logf:
            self._logf.close()
            self._logf = None
        return self.proc.returncode if self.proc else None

    def kill_group(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    @property
    def pid(self):
        return self.proc.pid

    def worker_pids(self):
        out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(line.split()[0]) for line in out.splitlines() if "wharf-worker" in line]

    # -- log -------------------------------------------------------------
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10, count=1):
        rx = re.compile(pattern)
        return wait_for(lambda: len(rx.findall(self.log())) >= count, timeout,
                        what=f"log line matching {pattern!r}")

    def sanitizer_reports(self):
        """Sanitizer report files written by any process of this server."""
        d = os.path.dirname(self.report_prefix)
        base = os.path.basename(self.report_prefix) + "."
        return sorted(os.path.join(d, n) for n in os.listdir(d) if n.startswith(base))

    def check_log(self):
        """Fail on sanitizer reports (report files or lines in the log) and on
        ERROR lines the test did not allow."""
        reports = self.sanitizer_reports()
        if reports:
            text = ""
            for path in reports[:3]:
                with open(path, "rb") as f:
                    text += f"--- {path}\n" + f.read().decode("utf-8", "replace")[-6000:]
            raise AssertionError(f"{len(reports)} sanitizer report(s):\n{text}")
        problems = []
        for line in self.log().splitlines():
            if any(p.search(line) for p in FATAL_PATTERNS):
                problems.append(line)
            elif " ERROR: " in line and not any(p.search(line) for p in self.allowed_errors):
                problems.append(line)
        if problems:
            raise AssertionError("unexpected lines in the wharf log:\n" + "\n".join(problems[:20])
                                 + "\n--- full log ---\n" + self.log()[-8000:])

    # -- client ----------------------------------------------------------
    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def connect(self, timeout=5):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s
