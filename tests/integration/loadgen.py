"""A small load generator for tests that must count every failed request.

`LoadGen` runs N client threads.  Each keeps one keep-alive connection
(`http.client`) and sends GET requests back to back until it is stopped or
its time is up.  Every attempt ends in exactly one outcome:

    ok                     the expected status and a well-formed body
    refused                connect() was refused (nothing listens; for a unix
                           socket also: the socket file is gone)
    connect_error          connect() failed otherwise
    reset_before_response  the connection closed or was reset before the
                           first byte of the response
    reset_mid_response     ... after the status line, before the body ended
    timeout                no answer within `timeout`
    bad_status             an answer with another status
    bad_response           not HTTP, or a body that is not the app's

One retry, and only one: a request that fails with reset_before_response on
a *reused* keep-alive connection (one that already carried a response) is
sent again once on a new connection, as browsers, urllib3 and
`requests` do for idempotent requests: the server may have closed the idle
connection just as the request was sent, and the client cannot tell that
from "the server read the request and died".  Such retries are counted and
recorded separately (`retries`, `retried`) and never hidden: a retry that
fails again counts as a failure, and every other failure counts as it is.

Each request carries `lg=<client>-<n>` in its query string and in
X-Request-ID, so a test can find it in the server log.  The server's
`X-Worker-Pid` header (the slowapp fixture and the python test apps send
it) is counted per pid.

With keepalive=False every request uses a new connection
(`Connection: close`): a client "connecting in a loop".

Phases: a test sets `load.phase = "step 4"` between the steps of a longer
run.  Each outcome is counted under the phase that was current when its
request was *sent* (`by_phase[phase]`), and each successful response under
(phase, X-App-Version header) in `versions`, so a test can say "every
request sent after the deploy was answered by the new code".
"""
import collections
import http.client
import socket
import threading
import time

KINDS = ("refused", "connect_error", "reset_before_response", "reset_mid_response",
         "timeout", "bad_status", "bad_response")

_RESETS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
           ConnectionAbortedError)


class _Conn(http.client.HTTPConnection):
    """HTTPConnection that can also speak over a unix socket."""

    def __init__(self, host, port, timeout, unix_path=None):
        super().__init__(host, port, timeout=timeout)
        self.unix_path = unix_path
        self.served = 0          # responses read on the current socket
        self.last_pid = None     # worker that answered last on it

    def connect(self):
        if self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(self.timeout)
            try:
                s.connect(self.unix_path)
            except BaseException:
                s.close()
                raise
            self.sock = s
        else:
            super().connect()
        self.served = 0
        self.last_pid = None

    def close(self):
        super().close()
        self.served = 0


def record_run(runs, outcome):
    """Append an outcome to [[outcome, count], ...], merging repeats."""
    if runs and runs[-1][0] == outcome:
        runs[-1][1] += 1
    else:
        runs.append([outcome, 1])


class LoadGen:
    def __init__(self, port=None, path="/pid", clients=4, duration=None, timeout=10.0,
                 keepalive=True, stop_on_refused=False, expect_status=200, host="127.0.0.1",
                 unix_path=None, check_body=True, on_refused=None):
        self.host, self.port, self.unix_path = host, port, unix_path
        self.path = path
        self.clients = clients
        self.duration = duration
        self.timeout = timeout
        self.keepalive = keepalive
        self.stop_on_refused = stop_on_refused
        self.expect_status = expect_status
        self.check_body = check_body
        self.on_refused = on_refused   # called on the client thread at once
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []
        self.ok = 0
        self.failures = collections.Counter()
        self.failed = []         # (time, client, request id, kind, detail)
        self.retries = 0
        self.retried = []        # dicts: rid, client, pid (owner of the conn), error, time
        self.pids = collections.Counter()
        self.closes = 0          # responses with Connection: close
        self.runs = [[] for _ in range(clients)]   # per client: [[outcome, count], ...]
        self.first_ok = self.last_ok = None
        self.phase = None
        self.by_phase = collections.defaultdict(collections.Counter)  # phase -> outcome -> n
        self.versions = collections.Counter()   # (phase, X-App-Version) -> n
        self.started = None
        self.errors = []         # exceptions in client threads (bugs of this file)

    # ---------------------------------------------------------------- control
    def start(self):
        self.started = time.monotonic()
        for i in range(self.clients):
            t = threading.Thread(target=self._client, args=(i,), daemon=True,
                                 name=f"loadgen-{i}")
            self._threads.append(t)
            t.start()
        return self

    def stop(self, timeout=60):
        """Stop after the requests in flight; returns self."""
        self._stop.set()
        return self.join(timeout)

    def join(self, timeout=60):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                raise AssertionError(f"load client {t.name} still running after {timeout}s")
        if self.errors:
            raise AssertionError("load client crashed: " + "; ".join(self.errors))
        return self

    def running(self):
        return any(t.is_alive() for t in self._threads)

    def wait_ok(self, n, timeout=30):
        """Wait until at least n requests succeeded in total."""
        deadline = time.monotonic() + timeout
        while self.ok < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.ok} of {n} requests succeeded in {timeout}s: "
                                     f"{self.summary()}")
            if not self.running():
                raise AssertionError(f"load clients stopped early: {self.summary()}")
            time.sleep(0.01)
        return self

    # ---------------------------------------------------------------- results
    @property
    def total_failures(self):
        return sum(self.failures.values())

    def summary(self):
        return {"ok": self.ok, "failures": dict(self.failures), "retries": self.retries,
                "closes": self.closes, "pids": len(self.pids)}

    def outcome_runs(self, client=0):
        """The outcomes of one client in order, runs merged:
        [["ok", 120], ["refused", 1]]."""
        return [list(r) for r in self.runs[client]]

    # ---------------------------------------------------------------- client
    def _client(self, idx):
        try:
            self._client_loop(idx)
        except Exception as e:  # a bug here must fail the test, not vanish
            with self._lock:
                self.errors.append(f"client {idx}: {e!r}")

    def _client_loop(self, idx):
        conn = _Conn(self.host, self.port, self.timeout, self.unix_path)
        n = 0
        end = None if self.duration is None else time.monotonic() + self.duration
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            n += 1
            rid = f"{idx}-{n}"
            owner = conn.last_pid
            phase = self.phase
            kind, detail = self._attempt(conn, rid)
            if kind == "reset_before_response" and detail.get("reused"):
                with self._lock:
                    self.retries += 1
                    self.retried.append({"rid": rid, "client": idx, "pid": owner,
                                         "error": detail.get("error"), "time": time.monotonic()})
                kind, detail = self._attempt(conn, rid + "r")
            with self._lock:
                record_run(self.runs[idx], kind or "ok")
                self.by_phase[phase][kind or "ok"] += 1
                if kind is None:
                    self.versions[(phase, detail.get("version"))] += 1
                    self.ok += 1
                    now = time.monotonic()
                    self.first_ok = self.first_ok or now
                    self.last_ok = now
                else:
                    self.failures[kind] += 1
                    self.failed.append((time.monotonic(), idx, rid, kind, detail.get("error")))
            if kind == "refused" and self.on_refused:
                self.on_refused()
            if kind == "refused" and self.stop_on_refused:
                break
        conn.close()

    def _attempt(self, conn, rid):
        """One request; returns (None, info) or (kind, info)."""
        sep = "&" if "?" in self.path else "?"
        path = f"{self.path}{sep}lg={rid}"
        if conn.sock is None:
            try:
                conn.connect()
            except ConnectionRefusedError as e:
                return "refused", {"error": repr(e)}
            except FileNotFoundError as e:
                if self.unix_path:  # the socket file is gone: nobody listens
                    return "refused", {"error": repr(e)}
                return "connect_error", {"error": repr(e)}
            except socket.timeout as e:
                return "timeout", {"error": repr(e)}
            except OSError as e:
                return "connect_error", {"error": repr(e)}
        reused = conn.served > 0
        headers = {"X-Request-ID": rid}
        if not self.keepalive:
            headers["Connection"] = "close"
        got_status = False
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            got_status = True
            body = resp.read()
        except socket.timeout as e:
            conn.close()
            return "timeout", {"error": repr(e), "reused": reused}
        except _RESETS + (http.client.IncompleteRead,) as e:
            conn.close()
            kind = "reset_mid_response" if got_status else "reset_before_response"
            return kind, {"error": repr(e), "reused": reused}
        except (http.client.HTTPException, OSError) as e:
            conn.close()
            return "bad_response", {"error": repr(e), "reused": reused}
        pid = resp.getheader("X-Worker-Pid")
        will_close = resp.will_close
        if will_close:
            conn.close()
            with self._lock:
                self.closes += 1
        else:
            conn.served += 1
            conn.last_pid = pid
        if resp.status != self.expect_status:
            return "bad_status", {"error": f"status {resp.status}: {body[:200]!r}"}
        if self.check_body and (pid is None or not body.startswith(f"pid {pid}\n".encode())):
            return "bad_response", {"error": f"body {body[:80]!r}, X-Worker-Pid {pid!r}"}
        with self._lock:
            self.pids[pid] += 1
        return None, {"pid": pid, "version": resp.getheader("X-App-Version")}
