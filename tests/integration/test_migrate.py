"""migrate plugin against a real PostgreSQL 15 (the `postgres` fixture).

`wharf --ini app.ini --migrate` is the Kubernetes Job of the seed (16.8):
it waits for the database, takes an advisory lock, runs Alembic and exits
0 or 1.  The readiness check reports the schema against the scripts' head.
"""
import os
import shutil
import subprocess
import time

import pytest
import requests

from services import APP_PASSWORD
from wharfctl import SRCDIR, free_port, wait_for

MIGRATIONS = os.path.join(SRCDIR, "contrib", "examples", "flaskapp", "migrations")
HEAD = "0002_items_note"

BROKEN = '''"""a broken revision"""
from alembic import op

revision = "0003_broken"
down_revision = "0002_items_note"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE no_such_table ADD COLUMN x integer")


def downgrade():
    pass
'''


def advisory_locks(pg):
    return int(pg.value("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))


def version(pg, db):
    return pg.value("SELECT version_num FROM alembic_version", db)


def columns(pg, db, table):
    rows = pg.sql("SELECT column_name FROM information_schema.columns "
                  f"WHERE table_name = '{table}' ORDER BY ordinal_position", db)
    return [r[0] for r in rows]


def no_password(text):
    assert APP_PASSWORD not in text, "the database password reached the log"


@pytest.fixture
def job(wharf, postgres):
    """job(db=None, **options) -> a Wharf (not started, no socket) whose ini
    points migrate-dsn at a fresh database; .db is its name."""
    def make(db=None, name="migrate", **options):
        db = db or postgres.new_database()
        opts = {"migrate-dsn": postgres.dsn(db), "migrate-dir": MIGRATIONS}
        opts.update({k.replace("_", "-"): v for k, v in options.items()})
        opts = {k: v for k, v in opts.items() if v is not None}
        w = wharf(opts, start=False, port=False, name=name)
        w.db = db
        return w
    return make


def run(w, *args, timeout=120):
    r = w.run(*args, timeout=timeout)
    out = r.stdout + r.stderr
    no_password(out)
    return r.returncode, out


def test_empty_database_to_head_then_noop(job, postgres):
    w = job()
    rc, out = run(w, "--migrate")
    assert rc == 0, out
    assert f"migrate: migrated base -> {HEAD}" in out
    assert "Running upgrade  -> 0001_create_items" in out  # Alembic's own output passed through
    assert version(postgres, w.db) == HEAD
    assert columns(postgres, w.db, "items") == ["id", "name", "created_at", "note"]
    assert advisory_locks(postgres) == 0

    rc, out = run(w, "--migrate")
    assert rc == 0, out
    assert f"migrate: already at head {HEAD}" in out
    assert "migrated" not in out and "Running upgrade" not in out
    assert version(postgres, w.db) == HEAD


def test_alembic_ini_and_keyvalue_dsn(job, postgres):
    """migrate-ini alone runs `python3 -m alembic -c INI upgrade head`; a
    key=value DSN reaches env.py as a postgresql:// DATABASE_URL."""
    db = postgres.new_database()
    w = job(db=db, migrate_dsn=postgres.dsn(db, form="kv"), migrate_dir=None,
            migrate_ini=os.path.join(MIGRATIONS, "alembic.ini"))
    rc, out = run(w, "--migrate")
    assert rc == 0, out
    assert "-m alembic -c" in out and f"migrated base -> {HEAD}" in out
    assert version(postgres, db) == HEAD


def test_migrate_command(job, postgres, tmp_path):
    """migrate-command runs through /bin/sh -c with DATABASE_URL set."""
    script = tmp_path / "upgrade.sh"
    script.write_text(f'#!/bin/sh\necho "url scheme: ${{DATABASE_URL%%:*}}"\n'
                      f'exec /usr/bin/python3 -m alembic -c {MIGRATIONS}/alembic.ini upgrade head\n')
    script.chmod(0o755)
    w = job(migrate_dir=None, migrate_command=str(script))
    rc, out = run(w, "--migrate")
    assert rc == 0, out
    assert "migrate: command: url scheme: postgresql" in out
    assert f"migrated base -> {HEAD}" in out


def test_broken_migration_exits_1_and_leaves_no_lock(job, postgres, tmp_path):
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts)
    w = job(migrate_dir=str(scripts))
    rc, out = run(w, "--migrate")
    assert rc == 0, out
    (scripts / "versions" / "0003_broken.py").write_text(BROKEN)

    rc, out = run(w, "--migrate")
    assert rc == 1, out
    # Alembic's error, passed through and summed up in one ERROR line
    assert 'relation "no_such_table" does not exist' in out
    err = [l for l in out.splitlines() if " ERROR: migrate: migration failed" in l]
    assert len(err) == 1, out
    assert "no_such_table" in err[0] and f"at revision {HEAD}" in err[0]
    # transactional DDL: nothing changed; and the lock is gone
    assert version(postgres, w.db) == HEAD
    assert advisory_locks(postgres) == 0


def test_waits_for_a_database_that_appears_5s_late(job, postgres):
    w = job(migrate_wait="60")
    postgres.stop()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(w.command("--migrate"), env=w.env, cwd=w.tmpdir,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # the database appears 5 s after the job started (the scenario, not
        # a synchronisation: the job must keep waiting on its own)
        time.sleep(max(0.0, 5.0 - (time.monotonic() - started)))
        assert proc.poll() is None, proc.stdout.read()
        postgres.start()
        out, _ = proc.communicate(timeout=120)
    finally:
        if not postgres.is_ready():
            postgres.start()
    no_password(out)
    assert proc.returncode == 0, out
    assert "migrate: waiting for the database at wharfapp@127.0.0.1" in out
    assert "is up (waited" in out
    assert f"migrated base -> {HEAD}" in out
    assert version(postgres, w.db) == HEAD


def test_gives_up_after_migrate_wait(job):
    port = free_port()
    w = job(migrate_dsn=f"postgresql://wharfapp:{APP_PASSWORD}@127.0.0.1:{port}/x",
            migrate_wait="1")
    t0 = time.monotonic()
    rc, out = run(w, "--migrate")
    assert rc == 1, out
    assert "not reachable after" in out and "Connection refused" in out
    assert time.monotonic() - t0 < 20


def test_wrong_password_is_reported_and_masked(job, postgres):
    db = postgres.new_database()
    secret = "Wrong-Secret-77"
    w = job(db=db, migrate_dsn=postgres.dsn(db, password=secret))
    rc, out = run(w, "--migrate")
    assert rc == 1, out
    assert "password authentication failed" in out
    assert secret not in out


def test_three_concurrent_jobs_migrate_once(job, postgres):
    w = job()
    procs = [subprocess.Popen(w.command("--migrate"), env=w.env, cwd=w.tmpdir,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    for p, out in zip(procs, outs):
        no_password(out)
        assert p.returncode == 0, out
    everything = "\n".join(outs)
    assert everything.count(f"migrated base -> {HEAD}") == 1, everything
    assert everything.count(f"already at head {HEAD}") == 2, everything
    # Alembic applied each revision exactly once
    assert everything.count("Running upgrade  -> 0001_create_items") == 1, everything
    assert "another migration holds the lock; waiting" in everything
    assert version(postgres, w.db) == HEAD
    assert advisory_locks(postgres) == 0


def test_migrate_status(job, postgres):
    w = job()
    rc, out = run(w, "--migrate-status")
    assert rc == 0, out
    assert f"current: base\nhead: {HEAD}\nstatus: behind" in out
    assert run(w, "--migrate")[0] == 0
    rc, out = run(w, "--migrate-status")
    assert f"current: {HEAD}\nhead: {HEAD}\nstatus: at head" in out


def test_config_errors_and_check_config(job):
    w = job(migrate_dir=None)
    rc, out = run(w, "--migrate")
    assert rc == 1
    assert "migrate-ini" in out and "migrate-dir" in out and "migrate-command" in out
    # --check-config validates without touching the network
    port = free_port()
    w = job(migrate_dsn=f"postgresql://u:{APP_PASSWORD}@127.0.0.1:{port}/x", name="cc")
    rc, out = run(w, "--check-config")
    assert rc == 0, out
    # a malformed parameter fails at once instead of waiting migrate-wait
    w = job(migrate_dsn="host=127.0.0.1 port=notanumber", name="bad", migrate_wait="60")
    t0 = time.monotonic()
    rc, out = run(w, "--migrate")
    assert rc == 1 and 'invalid integer value "notanumber"' in out, out
    assert time.monotonic() - t0 < 20
    # not a connection string at all: a config error naming the option
    w = job(migrate_dsn="postgresql://[broken", name="bad2")
    rc, out = run(w, "--migrate")
    assert rc == 1 and "migrate-dsn" in out and "not a valid libpq connection string" in out, out


def test_migrate_on_start_runs_before_workers(wharf, postgres):
    db = postgres.new_database()
    srv = wharf({"migrate-dsn": postgres.dsn(db), "migrate-dir": MIGRATIONS,
                 "migrate-on-start": True})
    log = srv.log()
    no_password(log)
    assert f"migrated base -> {HEAD}" in log
    assert log.index("migrated base") < log.index("worker(s) accepting")
    assert version(postgres, db) == HEAD


# ------------------------------------------------------------ readiness
# /healthz/ready of the healthz plugin: 200 when every cached check is ok,
# 503 otherwise, with each failing check's message as "error".

def ready(srv):
    r = requests.get(srv.url + "/healthz/ready", timeout=5)
    return r.status_code, r.json()["checks"]["migrate"]


def wait_ready(srv, status, error=None, timeout=15):
    def match():
        code, check = ready(srv)
        if code != status or (error is not None and not (check["error"] or "").startswith(error)):
            return None
        return check or True
    return wait_for(match, timeout, interval=0.1, what=f"/healthz/ready {status} ({error})")


@pytest.fixture
def ready_server(wharf, postgres):
    def start(db, dsn=None, **options):
        opts = {"healthz": "/healthz", "migrate-dsn": dsn or postgres.dsn(db),
                "migrate-dir": MIGRATIONS}
        opts.update({k.replace("_", "-"): v for k, v in options.items()})
        return wharf(opts)
    return start


def test_readiness_503_while_behind_then_200_after_migrating(ready_server, job, postgres):
    db = postgres.new_database()
    srv = ready_server(db, migrate_ready=True)
    wait_ready(srv, 503, f"behind (base < {HEAD})")

    rc, out = run(job(db=db), "--migrate")
    assert rc == 0, out
    check = wait_ready(srv, 200)
    assert check["ok"] is True and check["error"] is None
    no_password(srv.log())


def test_readiness_behind_without_migrate_ready_is_informational(ready_server, postgres):
    srv = ready_server(postgres.new_database())
    # the database is behind, but only migrate-ready makes that block traffic
    check = wait_ready(srv, 200)
    assert check["ok"] is True and check["error"] is None


def test_readiness_503_when_database_unreachable(ready_server):
    port = free_port()
    srv = ready_server(None, dsn=f"postgresql://wharfapp:{APP_PASSWORD}@127.0.0.1:{port}/x",
                       migrate_ready=True)
    wait_ready(srv, 503, "unreachable: Connection refused")
    no_password(srv.log())


def test_readiness_follows_a_database_restart(ready_server, job, postgres):
    db = postgres.new_database()
    assert run(job(db=db), "--migrate")[0] == 0
    srv = ready_server(db, migrate_ready=True)
    wait_ready(srv, 200)
    postgres.stop()
    try:
        wait_ready(srv, 503, "unreachable")
    finally:
        postgres.start()
    wait_ready(srv, 200)


def test_migrate_job_runs_beside_the_server_using_the_same_ini(wharf, postgres, tmp_path):
    """The Kubernetes Job / systemd ExecStartPre form: `wharf --ini app.ini
    --migrate` with the very ini the running server uses.  The job binds
    nothing, leaves the server's pidfile alone and does not import the app
    (whose module does not even exist here)."""
    db = postgres.new_database()
    pidfile = tmp_path / "app.pid"
    srv = wharf({"migrate-dsn": postgres.dsn(db), "migrate-dir": MIGRATIONS,
                 "pidfile": str(pidfile), "healthz": "/healthz"})
    server_pid = pidfile.read_text().strip()
    assert server_pid == str(srv.pid)

    with_app = srv.ini_path + ".app.ini"
    with open(srv.ini_path) as f, open(with_app, "w") as g:
        g.write(f.read() + "module = no_such_module_anywhere:app\n")
    r = subprocess.run([srv.command()[0], "--ini", with_app, "--migrate"], env=srv.env,
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    no_password(out)
    assert r.returncode == 0, out
    assert f"migrated base -> {HEAD}" in out
    assert "Address already in use" not in out and "no_such_module" not in out
    assert pidfile.read_text().strip() == server_pid
    assert version(postgres, db) == HEAD
    assert requests.get(srv.url + "/healthz/live", timeout=5).status_code == 200
