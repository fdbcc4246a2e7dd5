"""The deploy kit (contrib/k8s, contrib/docker, contrib/nginx,
contrib/systemd, the packaging), validated without Docker or Kubernetes:
yamllint, the fields the seed's deployment chapter requires, the timing
relations between the manifests and wharf's config, the packaging of every
plugin, and `wharf --check-config` of the config the image and the
ConfigMap carry."""
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile

import pytest
import requests
import yaml

from wharfctl import PLUGINS_DIR, SRCDIR, WHARF, free_port, server_environ

CONTRIB = os.path.join(SRCDIR, "contrib")
K8S = os.path.join(CONTRIB, "k8s")
DOCKER = os.path.join(CONTRIB, "docker")
MANIFESTS = sorted(glob.glob(os.path.join(K8S, "*.yaml")))
COMPOSE = os.path.join(DOCKER, "compose.yaml")
IMAGE_INI = os.path.join(DOCKER, "uwsgi.ini")


# ------------------------------------------------------------------ helpers

def load_k8s():
    docs = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(open(path)):
            if doc:
                assert doc["kind"] not in docs, f"two {doc['kind']} manifests"
                docs[doc["kind"]] = doc
    return docs


K = load_k8s()


def ini_options(text):
    """[(key, value)] of an ini text, in order (comments dropped)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in ";#[":
            continue
        key, _, value = line.partition("=")
        out.append((key.strip(), value.split(" ;")[0].strip()))
    return out


def ini_value(text, key):
    values = [v for k, v in ini_options(text) if k == key]
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def seconds(duration):
    """wharf's duration syntax: a bare number is seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", duration)
    assert m, duration
    return float(m.group(1)) * {None: 1, "s": 1, "ms": 0.001, "m": 60, "h": 3600}[m.group(2)]


def size(text):
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    assert m, text
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def pod_spec(kind):
    spec = K[kind]["spec"]
    return spec["template"]["spec"]


def container(kind):
    (c,) = pod_spec(kind)["containers"]
    return c


CONFIGMAP_INI = K["ConfigMap"]["data"]["uwsgi.ini"]


# ------------------------------------------------------------------ linting

def test_yamllint_strict():
    assert shutil.which("yamllint"), "yamllint is not installed (Debian package yamllint)"
    r = subprocess.run(["yamllint", "--strict", "-f", "parsable"] + MANIFESTS + [COMPOSE],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_kind_is_there():
    assert set(K) == {"ConfigMap", "Secret", "Deployment", "Service", "Ingress",
                      "HorizontalPodAutoscaler", "Job"}
    assert K["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"
    assert K["Ingress"]["apiVersion"] == "networking.k8s.io/v1"
    assert K["Deployment"]["apiVersion"] == "apps/v1"
    assert K["Job"]["apiVersion"] == "batch/v1"


# ------------------------------------------------------------------ Kubernetes

def test_configmap_holds_the_image_ini():
    assert CONFIGMAP_INI == open(IMAGE_INI).read()


def test_deployment_rolls_without_downtime():
    d = K["Deployment"]["spec"]
    assert d["strategy"]["type"] == "RollingUpdate"
    assert d["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": "25%"}
    c = container("Deployment")
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz/live"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz/startup"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        port = c[probe]["httpGet"]["port"]
        assert ports.get(port, port) == 8000
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["/bin/sh", "-c", "sleep 5"]
    assert c["args"] == ["--ini", "/etc/wharf/uwsgi.ini"]
    assert ini_value(CONFIGMAP_INI, "http-socket") == ":8000"
    annotations = K["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == ini_value(CONFIGMAP_INI, "metrics")


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_security_context_as_the_seed(kind):
    c = container(kind)
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod_spec(kind)["securityContext"]["runAsNonRoot"] is True
    # the only writable path is an emptyDir at /tmp, where the ini writes
    volumes = {v["name"]: v for v in pod_spec(kind)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/etc/wharf"]]["configMap"]["name"] == K["ConfigMap"]["metadata"]["name"]
    assert c["envFrom"] == [{"secretRef": {"name": K["Secret"]["metadata"]["name"]}}]


def test_written_paths_are_in_tmp():
    """Read-only root file system: whatever the ini makes wharf write
    (pidfile, log file, unix sockets) is under /tmp."""
    for key, value in ini_options(CONFIGMAP_INI):
        if key in ("pidfile", "logto", "safe-pidfile") or (key.endswith("socket") and "/" in value):
            assert value.startswith("/tmp/"), (key, value)


def test_timing_relations():
    c = container("Deployment")
    graceful = seconds(ini_value(CONFIGMAP_INI, "graceful-timeout"))
    delay = seconds(ini_value(CONFIGMAP_INI, "shutdown-delay"))
    prestop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1].split()[-1])
    grace = pod_spec("Deployment")["terminationGracePeriodSeconds"]
    # the kubelet's SIGKILL never cuts a drain short
    assert grace > prestop + delay + graceful
    # a pod failing readiness leaves the endpoints before its sockets close
    ready = c["readinessProbe"]
    assert ready["periodSeconds"] * ready["failureThreshold"] <= delay
    # the Ingress waits longer than harakiri and takes what limit-post takes
    ann = K["Ingress"]["metadata"]["annotations"]
    assert int(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= seconds(ini_value(CONFIGMAP_INI, "harakiri"))
    assert size(ann["nginx.ingress.kubernetes.io/proxy-body-size"]) == size(ini_value(CONFIGMAP_INI, "limit-post"))


def test_service_ingress_hpa_point_at_the_deployment():
    dep = K["Deployment"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    svc = K["Service"]["spec"]
    assert svc["selector"].items() <= labels.items()
    (port,) = svc["ports"]
    assert port["targetPort"] in {p["name"] for p in container("Deployment")["ports"]}
    (rule,) = K["Ingress"]["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": K["Service"]["metadata"]["name"], "port": {"number": port["port"]}}
    hpa = K["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": dep["metadata"]["name"]}
    assert hpa["minReplicas"] <= dep["spec"]["replicas"] <= hpa["maxReplicas"]
    # CPU utilization needs a CPU request
    assert container("Deployment")["resources"]["requests"]["cpu"]


def test_migrate_job():
    job = K["Job"]["spec"]
    assert job["backoffLimit"] == 1
    assert pod_spec("Job")["restartPolicy"] == "Never"
    c = container("Job")
    assert c["args"] == ["--ini", "/etc/wharf/uwsgi.ini", "--migrate"]
    assert c["image"] == container("Deployment")["image"]
    assert ini_value(CONFIGMAP_INI, "migrate-dsn") == "$(DATABASE_URL)"


def test_secret_provides_every_variable_the_ini_reads():
    secret = K["Secret"]
    assert secret["type"] == "Opaque"
    keys = set(secret["stringData"])
    assert {"DATABASE_URL", "SECRET_KEY"} <= keys
    assert set(re.findall(r"\$\((\w+)\)", CONFIGMAP_INI)) <= keys
    assert "SealedSecret" in open(os.path.join(K8S, "secret.yaml")).read()


# ------------------------------------------------------------------ Docker

def dockerfile():
    """[(stage, instruction, arguments)] with continuation lines joined."""
    text = open(os.path.join(DOCKER, "Dockerfile")).read().replace("\\\n", " ")
    out, stage = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        if instr == "FROM":
            stage = args.split()[-1]
        out.append((stage, instr, " ".join(args.split())))
    return out


def test_dockerfile_stages_and_runtime_settings():
    d = dockerfile()
    froms = [a for _, i, a in d if i == "FROM"]
    assert froms == ["debian:12-slim AS build", "debian:12-slim AS runtime"]
    runtime = {i: a for s, i, a in d if s == "runtime"}
    assert runtime["USER"] == "10001:10001"
    assert runtime["EXPOSE"] == "8000"
    assert runtime["STOPSIGNAL"] == "SIGTERM"
    assert "/healthz/live" in runtime["HEALTHCHECK"]
    assert runtime["ENTRYPOINT"] == '["wharf"]'
    assert runtime["CMD"] == '["--ini", "/app/uwsgi.ini"]'
    runtime_apt = " ".join(a for s, i, a in d if s == "runtime" and i == "RUN")
    assert "build-essential" not in runtime_apt and "-dev " not in runtime_apt
    assert "useradd --system --uid 10001" in runtime_apt


def test_dockerfile_copies_exist_and_apt_packages_are_debian_12s():
    for stage, instr, args in dockerfile():
        if instr == "COPY" and "--from=" not in args:
            for src in args.split()[:-1]:
                assert os.path.exists(os.path.join(SRCDIR, src)), f"COPY {src}: not in the repository"
    if not shutil.which("apt-cache"):
        pytest.skip("no apt-cache")
    names = set()
    for stage, instr, args in dockerfile():
        if instr == "RUN" and "apt-get install" in args:
            tail = args.split("--no-install-recommends", 1)[1].split("&&")[0]
            names.update(tail.split())
    r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + sorted(names),
                       capture_output=True, text=True)
    found = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
    assert names <= found, f"not in the apt lists: {sorted(names - found)}"


def test_dockerignore_has_the_seed_list_and_keeps_the_build_inputs():
    lines = open(os.path.join(SRCDIR, ".dockerignore")).read().splitlines()
    for seed in (".git", "__pycache__/", "*.pyc", "venv/", ".env", ".mypy_cache/"):
        assert seed in lines
    # Makefile.am includes tests/*/local.mk: tests/ itself must stay
    assert "tests/" not in lines and "tests" not in lines


def test_compose_stack():
    c = yaml.safe_load(open(COMPOSE))["services"]
    assert set(c) == {"web", "migrate", "db", "cache"}
    assert c["db"]["image"] == "postgres:15" and c["cache"]["image"] == "redis:7"
    assert c["web"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert c["migrate"]["command"] == ["--ini", "/app/uwsgi.ini", "--migrate"]
    for name in ("web", "db", "cache"):
        assert c[name]["healthcheck"]["test"], name
    assert "/healthz/ready" in " ".join(c["web"]["healthcheck"]["test"])
    for name in ("web", "migrate"):
        assert c[name]["read_only"] is True and c[name]["tmpfs"] == ["/tmp"], name
        assert c[name]["user"] == "10001:10001"
    grace = seconds(c["web"]["stop_grace_period"])
    ini = open(IMAGE_INI).read()
    assert grace > seconds(ini_value(ini, "shutdown-delay")) + seconds(ini_value(ini, "graceful-timeout"))


def test_compose_config_validates():
    tool = shutil.which("docker-compose")
    if tool:
        cmd = [tool, "-f", COMPOSE, "config", "-q"]
    elif shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                   capture_output=True).returncode == 0:
        cmd = ["docker", "compose", "-f", COMPOSE, "config", "-q"]
    else:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------------ nginx and systemd

def test_nginx_site_matches_the_example_ini():
    site = open(os.path.join(CONTRIB, "nginx", "wharf.conf")).read()
    ini = open(os.path.join(CONTRIB, "systemd", "example.ini")).read()
    read_timeout = re.search(r"^\s*proxy_read_timeout (\d+)s;", site, re.M).group(1)
    assert int(read_timeout) >= seconds(ini_value(ini, "harakiri"))
    body = re.search(r"^\s*client_max_body_size (\w+);", site, re.M).group(1)
    assert size(body) == size(ini_value(ini, "limit-post"))
    assert "keepalive 64;" in site
    assert "proxy_next_upstream error timeout;" in site
    sockets = [v for k, v in ini_options(ini) if k == "http-socket"]
    for s in sockets:
        assert (f"unix:{s}" if s.startswith("/") else s) in site


def test_systemd_stop_timeout_covers_the_drain():
    unit = open(os.path.join(CONTRIB, "systemd", "wharf@.service")).read()
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))
    ini = open(os.path.join(CONTRIB, "systemd", "example.ini")).read()
    assert stop > seconds(ini_value(ini, "shutdown-delay")) + seconds(ini_value(ini, "graceful-timeout"))


# ------------------------------------------------------------------ packaging

PLUGINS = sorted(os.path.basename(os.path.dirname(p))
                 for p in glob.glob(os.path.join(SRCDIR, "plugins", "*", "local.mk")))
CORE_PACKAGE = {"http", "harakiri", "healthz", "static", "route"}


@pytest.mark.parametrize("plugin", PLUGINS)
def test_every_plugin_is_packaged(plugin):
    """A new plugin directory without packaging fails here, not in a user's
    `apt install`."""
    deb = os.path.join(CONTRIB, "debian")
    rules = open(os.path.join(deb, "rules")).read()
    assert plugin in re.search(r"^PLUGINS := (.*)$", rules, re.M).group(1).split()
    installs = {os.path.basename(p): open(p).read() for p in glob.glob(os.path.join(deb, "*.install"))}
    def ships(text):
        # a plain line naming the .so, or wharf.install's loop over names
        loop = re.search(r"^for p in ([\w ]+);", text, re.M)
        return f"{plugin}_plugin.so" in text or bool(loop and plugin in loop.group(1).split())
    owners = [name for name, text in installs.items() if ships(text)]
    assert len(owners) == 1, f"{plugin}: packaged by {owners}"
    assert (owners[0] == "wharf.install") == (plugin in CORE_PACKAGE)
    spec = open(os.path.join(CONTRIB, "rpm", "wharf.spec")).read()
    assert f"{plugin}_plugin.so" in spec
    assert re.search(rf"--(enable-{plugin}\b|%{{\?with_{plugin}:enable}})", spec)
    assert f"--enable-{plugin} " in " ".join(a for _, i, a in dockerfile() if i == "RUN") + " "


def test_abi_is_read_from_the_header_not_hard_coded():
    header = open(os.path.join(SRCDIR, "core", "wharf.h")).read()
    abi = re.search(r"#define WHARF_ABI_MAJOR (\d+)", header).group(1)
    rules = open(os.path.join(CONTRIB, "debian", "rules")).read()
    assert "WHARF_ABI_MAJOR" in rules and "-Vwharf:ABI=wharf-abi-$(WHARF_ABI)" in rules
    control = open(os.path.join(CONTRIB, "debian", "control")).read()
    assert f"wharf-abi-{abi}" not in control
    assert control.count("${wharf:ABI}") == 4  # Provides of wharf, Depends of 3 plugins
    spec = open(os.path.join(CONTRIB, "rpm", "wharf.spec")).read()
    assert "Provides:       wharf(abi) = %{wharf_abi}" in spec
    assert spec.count("Requires:       wharf(abi) = %{wharf_abi}") == 3


# ------------------------------------------------------------------ check-config

def test_configmap_ini_passes_check_config(tmp_path):
    """The ConfigMap's (= the image's) uwsgi.ini against the plugins built in
    this tree, with /app replaced by a copy of the example app."""
    app = tmp_path / "app"
    example = os.path.join(CONTRIB, "examples", "flaskapp")
    if os.path.isdir(example):
        shutil.copytree(example, app)
    for sub in ("static", "migrations"):
        (app / sub).mkdir(parents=True, exist_ok=True)
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(CONFIGMAP_INI.replace("/tmp/", f"{tmp_path}/").replace("/app", str(app)))
    env = server_environ()
    env.update(WHARF_PLUGINS_DIR=PLUGINS_DIR, DATABASE_URL="postgresql://app:app@127.0.0.1:1/app",
               REDIS_URL="redis://127.0.0.1:1/0", SECRET_KEY="test")
    r = subprocess.run([WHARF, "--ini", str(ini), "--check-config"], capture_output=True, text=True,
                       env=env, cwd=str(tmp_path), timeout=60)
    assert r.returncode == 0, (
        f"wharf --check-config of the ConfigMap's uwsgi.ini failed (plugins in {PLUGINS_DIR}: "
        f"{sorted(os.listdir(PLUGINS_DIR)) if os.path.isdir(PLUGINS_DIR) else 'none'}):\n"
        + r.stdout + r.stderr)


# ------------------------------------------------------------------ the image's config, run like the image

def can_run_read_only():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "mount -o remount,bind,ro / && ! touch /.wharf-probe 2>/dev/null"],
                           capture_output=True)
    return probe.returncode == 0


NEEDED = ("http", "python", "static", "route", "healthz", "harakiri", "migrate", "redis_session")


def test_image_config_serves_on_a_read_only_root(tmp_path, wharf):
    """What the container does, without Docker: the image's uwsgi.ini and
    the example app, as uid 10001, in a mount namespace whose root file
    system is read-only except one directory standing in for /tmp.  The
    app serves, probes answer, and nothing but the pidfile was written.
    PostgreSQL and Redis are absent: readiness says so, the server runs."""
    missing = [p for p in NEEDED if not os.path.exists(os.path.join(PLUGINS_DIR, f"{p}_plugin.so"))]
    example = os.path.join(CONTRIB, "examples", "flaskapp")
    if missing or not os.path.isdir(example):
        pytest.fail(f"this build lacks what the image has: plugins {missing}, example app "
                    f"{'present' if os.path.isdir(example) else 'missing'}")
    if not can_run_read_only():
        pytest.skip("needs root, unshare and setpriv, and mount namespaces")
    base = tempfile.mkdtemp(prefix="wharf-image-", dir="/var/tmp")  # uid 10001 must traverse it
    try:
        os.chmod(base, 0o755)
        app, rw = os.path.join(base, "app"), os.path.join(base, "tmp")
        shutil.copytree(example, app)
        os.makedirs(os.path.join(app, "migrations"), exist_ok=True)
        os.makedirs(rw)
        os.chown(rw, 10001, 10001)
        port = free_port()
        ini = (CONFIGMAP_INI.replace("/tmp/", rw + "/").replace("/app", app)
               .replace("http-socket = :8000", f"http-socket = 127.0.0.1:{port}"))
        srv = wharf(ini=ini, port=port, start=False,
                    env={"DATABASE_URL": "postgresql://app:app@127.0.0.1:1/app",
                         "REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "test",
                         "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/nonexistent"})
        ini_path = os.path.join(base, "uwsgi.ini")
        shutil.copy(srv.ini_path, ini_path)
        os.chmod(ini_path, 0o644)
        script = ("mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro / && "
                  "exec setpriv --reuid 10001 --regid 10001 --clear-groups --no-new-privs "
                  "\"$2\" --ini \"$3\"")
        srv._logf = open(srv.log_path, "ab")
        srv.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                                     "sh", rw, os.path.abspath(WHARF), ini_path],
                                    stdout=srv._logf, stderr=subprocess.STDOUT, env=srv.env,
                                    cwd="/", start_new_session=True)
        srv.wait_ready(30)
        assert requests.get(srv.url + "/healthz/live", timeout=5).status_code == 200
        assert requests.get(srv.url + "/api/hello", timeout=10).status_code == 200
        assert requests.get(srv.url + "/static/style.css", timeout=5).status_code == 200
        ready = requests.get(srv.url + "/healthz/ready", timeout=5)
        assert ready.status_code == 503  # no database, no Redis here
        assert os.stat(os.path.join(rw, "wharf.pid")).st_uid == 10001
        srv.stop(signal.SIGTERM, timeout=60)
        assert set(os.listdir(rw)) <= {"wharf.pid"}
    finally:
        shutil.rmtree(base, ignore_errors=True)

