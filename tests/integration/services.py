"""Real PostgreSQL 15 and Redis servers for integration tests.

`postgres` (one cluster for the whole session): initdb/pg_ctl from
/usr/lib/postgresql/15/bin in a temp dir, a unix socket dir and a free
loopback port; as the unprivileged user `wharftest` when we run as root
(PostgreSQL refuses root).  Local connections are trusted (the fixture's
own admin access); TCP connections need a password, so DSNs carry a real
one that wharf must never log.  `pg.new_database()` gives each test a
fresh, empty database owned by the app role.

`Nginx` (one per test): Debian's nginx in the foreground with its pid, logs
and temp files in a temp dir, in front of a given site file.

`redis_server` (one per test): redis-server on a free loopback port with
persistence off; `stop()`/`start()` simulate an outage on the same port.

Readiness is waited for with pg_isready / PING, never with sleeps.
"""
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from wharfctl import free_port, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = "wharftest"
APP_ROLE = "wharfapp"
# no characters that need URI escaping or that an ini reader could expand
APP_PASSWORD = "Pw-9f3kQz7xLm"


def _need(path, what):
    if not os.path.exists(path):
        pytest.skip(f"{what} not installed ({path})")


class Postgres:
    def __init__(self):
        _need(os.path.join(PG_BIN, "initdb"), "PostgreSQL 15")
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="wharf-pg-")
        self.data = os.path.join(self.root, "data")
        self.sockdir = os.path.join(self.root, "sock")
        self.logfile = os.path.join(self.root, "postgres.log")
        os.mkdir(self.sockdir)
        self._user = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(PG_USER)
            except KeyError:
                subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", PG_USER],
                               check=True, capture_output=True)
                pw = pwd.getpwnam(PG_USER)
            self._user = pw
            for d in (self.root, self.sockdir):
                os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o755)
        self._counter = itertools.count(1)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres",
                   "-E", "UTF8", "--locale=C", "--auth-local=trust",
                   "--auth-host=scram-sha-256", "--no-sync"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"""
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{self.sockdir}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
""")
        self.start()
        self.sql(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")

    def _run(self, cmd, check=True, **kw):
        if self._user:
            kw.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        return subprocess.run(cmd, check=check, capture_output=True, text=True,
                              cwd=self.root, **kw)

    # -- server --------------------------------------------------------
    def start(self):
        """Start and wait until it accepts connections (pg_ctl -w uses
        pg_isready's check)."""
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.logfile,
                   "-w", "-t", "60", "start"])
        wait_for(self.is_ready, 30, what="PostgreSQL to accept connections")

    def start_later(self):
        """Start without waiting (pg_ctl returns at once); pair with is_ready."""
        return self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.logfile,
                          "-W", "start"])

    def stop(self):
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"],
                  check=False)

    def is_ready(self):
        r = subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-q", "-h", self.sockdir,
                            "-p", str(self.port), "-U", "postgres"])
        return r.returncode == 0

    def destroy(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases -----------------------------------------------------
    def new_database(self):
        name = f"t{os.getpid()}_{next(self._counter)}"
        self.sql(f"CREATE DATABASE {name} OWNER {APP_ROLE}")
        return name

    def dsn(self, db, password=APP_PASSWORD, form="uri"):
        """The app's DSN over TCP (password required)."""
        if form == "uri":
            return f"postgresql://{APP_ROLE}:{password}@127.0.0.1:{self.port}/{db}"
        return f"host=127.0.0.1 port={self.port} user={APP_ROLE} password={password} dbname={db}"

    def sql(self, query, db="postgres"):
        """Run SQL as the superuser over the unix socket; returns rows as
        lists of strings (psql -At)."""
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-v",
                            "ON_ERROR_STOP=1", "-h", self.sockdir, "-p", str(self.port),
                            "-U", "postgres", "-d", db, "-c", query],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"psql failed: {r.stderr}")
        return [line.split("|") for line in r.stdout.splitlines()]

    def value(self, query, db="postgres"):
        rows = self.sql(query, db)
        return rows[0][0] if rows else None


@pytest.fixture(scope="session")
def postgres():
    pg = Postgres()
    try:
        yield pg
    finally:
        pg.destroy()


class RedisServer:
    def __init__(self, tmpdir, password=None):
        _need("/usr/bin/redis-server", "redis-server")
        self.port = free_port()
        self.dir = str(tmpdir)
        self.password = password
        self.proc = None
        self.logfile = os.path.join(self.dir, f"redis-{self.port}.log")

    def start(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir, "--logfile", self.logfile,
             "--daemonize", "no"] + (["--requirepass", self.password] if self.password else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, 10, what="redis-server to answer PING")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def ping(self):
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited: {open(self.logfile).read()[-2000:]}")
        try:
            return self.client().ping()
        except Exception:
            return False

    def client(self, db=0):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=self.password,
                           socket_timeout=5)

    @property
    def url(self):
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"


@pytest.fixture
def redis_server(tmp_path):
    srv = RedisServer(tmp_path).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def redis_factory(tmp_path):
    """redis_factory(password=None) -> another started RedisServer."""
    servers = []

    def make(password=None):
        d = tmp_path / f"redis{len(servers)}"
        d.mkdir()
        servers.append(RedisServer(d, password=password).start())
        return servers[-1]
    try:
        yield make
    finally:
        for srv in servers:
            srv.stop()


def render_site(src, tmp, replacements):
    """A shipped nginx site file with this test's ports and paths: each
    (old, new) must be found, so a change to the shipped file fails the
    test instead of testing something else.  Returns the path."""
    text = open(src).read()
    for old, new in replacements:
        assert old in text, f"{old!r} not in {src}: update this test"
        text = text.replace(old, new)
    path = os.path.join(tmp, "site.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


class Nginx:
    def __init__(self, tmp, site):
        self.tmp = tmp
        self.conf = os.path.join(tmp, "nginx.conf")
        self.error_log = os.path.join(tmp, "nginx-error.log")
        temp = os.path.join(tmp, "nginx-temp")
        os.makedirs(temp, exist_ok=True)
        # as root nginx would run its workers as nobody, who cannot read
        # pytest's private temp directories
        user = "user root;" if os.geteuid() == 0 else ""
        with open(self.conf, "w") as f:
            f.write(f"""{user}
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
""")
        self.globals = f"daemon off; master_process on; pid {tmp}/nginx.pid; error_log {self.error_log};"
        self.proc = None

    def test_config(self):
        return subprocess.run([NGINX, "-p", self.tmp, "-c", self.conf, "-g", self.globals, "-t"],
                              capture_output=True, text=True)

    def start(self, port):
        self.proc = subprocess.Popen([NGINX, "-p", self.tmp, "-c", self.conf, "-g", self.globals],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.proc.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(up, 10, what="nginx to listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
