"""contrib/plugin-template builds out of tree against the installed SDK
(`make install` of this build: wharf.h and wharf.pc, nothing from the source
tree), installs into the plugins-dir wharf.pc names, and the built wharf
loads it: its option, its request hook and its readiness check work."""
import glob
import os
import re
import shutil
import subprocess

import requests

from wharfctl import BUILDDIR, SRCDIR, wait_for

TEMPLATE = os.path.join(SRCDIR, "contrib", "plugin-template")


def install_sdk(tmp_path):
    """`make install DESTDIR=...` of this build; returns (pkg-config command,
    PKG_CONFIG_PATH, installed plugins-dir)."""
    dest = tmp_path / "dest"
    r = subprocess.run(["make", "-C", BUILDDIR, "install", f"DESTDIR={dest}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    pcs = glob.glob(str(dest / "**" / "pkgconfig" / "wharf.pc"), recursive=True)
    assert len(pcs) == 1, pcs
    prefix = re.search(r"^prefix=(.*)$", open(pcs[0]).read(), re.M).group(1)
    pkg_config = f"pkg-config --define-variable=prefix={dest}{prefix}"
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
    plugindir = subprocess.run(pkg_config.split() + ["--variable=plugindir", "wharf"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
    assert plugindir.startswith(str(dest)) and os.path.exists(os.path.join(plugindir, "http_plugin.so"))
    return pkg_config, env, plugindir


def test_makefile_is_ten_lines_of_pkg_config():
    lines = open(os.path.join(TEMPLATE, "Makefile")).read().splitlines()
    assert len(lines) <= 10
    assert any("--cflags wharf" in line for line in lines)
    assert any("--variable=plugindir wharf" in line for line in lines)


def test_template_builds_installs_and_loads(tmp_path, wharf):
    pkg_config, env, plugindir = install_sdk(tmp_path)
    src = tmp_path / "hello"
    shutil.copytree(TEMPLATE, src)
    built = subprocess.run(["make", "-C", str(src), f"PKG_CONFIG={pkg_config}",
                            "CFLAGS=-O2 -g -Wall -Wextra -Werror"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
    assert f"-I{tmp_path}/dest" in built.stdout, built.stdout
    assert os.path.join(SRCDIR, "core") not in built.stdout
    exported = subprocess.run(["nm", "-D", "--defined-only", str(src / "hello_plugin.so")],
                              capture_output=True, text=True, check=True).stdout
    assert re.findall(r" [A-Z] (\w+)$", exported, re.M) == ["wharf_plugin"]

    installed = subprocess.run(["make", "-C", str(src), "install", f"PKG_CONFIG={pkg_config}"],
                               env=env, capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert os.path.exists(os.path.join(plugindir, "hello_plugin.so"))

    # the built wharf with the installed plugins-dir: loaded by its option
    ready_file = tmp_path / "ready"
    srv = wharf({"hello-text": "hi from the template", "hello-ready-file": str(ready_file),
                 "healthz": "/healthz", "processes": 1},
                env={"WHARF_PLUGINS_DIR": plugindir})
    r = requests.get(srv.url + "/hello", timeout=5)
    assert r.status_code == 200
    assert r.text == "hi from the template\n"
    assert requests.get(srv.url + "/other", timeout=5).status_code == 404

    # its readiness check: failing until the file exists
    def ready_status():
        r = requests.get(srv.url + "/healthz/ready", timeout=5)
        hello = r.json()["checks"].get("hello")
        return hello is not None and hello["error"] != "not checked yet" and (r.status_code, hello)
    status, hello = wait_for(ready_status, 15, interval=0.1, what="the hello check to run")
    assert status == 503 and hello["ok"] is False
    assert hello["error"] == "waiting for the ready file"
    ready_file.write_text("")
    wait_for(lambda: requests.get(srv.url + "/healthz/ready", timeout=5).status_code == 200, 15,
             interval=0.1, what="readiness once the ready file exists")

    # and its setup() validation, through --check-config
    bad = srv.run("--hello-path", "nope", "--check-config")
    assert bad.returncode == 1
    assert "hello-path" in bad.stderr + bad.stdout and "'nope' must start with '/'" in bad.stderr + bad.stdout
