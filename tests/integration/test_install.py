"""`make install` gives plugin authors what DESIGN.md promises: wharf.h and
wharf.pc, enough to build a plugin out of tree with
`cc -shared $(pkg-config --cflags wharf) -o x_plugin.so x.c` and load it.

The install goes to a temporary DESTDIR, so wharf.pc's prefix (the
configured one, /usr/local by default) is redirected there with
--define-variable=prefix=<DESTDIR><prefix>.
"""
import os
import re
import shutil
import subprocess

import pytest

from wharfctl import BUILDDIR, SRCDIR, WHARF, Wharf, server_environ

PLUGIN_C = r"""
#include <wharf.h>

struct x_conf {
    char *greeting;
    long times;
};

static const struct wharf_option x_options[] = {
    { "x-greeting", WHARF_OPT_STRING, offsetof(struct x_conf, greeting), "hello from x",
      "what setup() logs", 0, 0 },
    { "x-times", WHARF_OPT_INT, offsetof(struct x_conf, times), "1", "how often", 1, 3 },
    WHARF_OPTIONS_END
};

static int x_setup(struct wharf_server *s, void *conf)
{
    struct x_conf *c = conf;
    for (long i = 0; i < c->times; i++)
        wharf_log(WHARF_LOG_INFO, "x plugin setup: %s (check only: %d)", c->greeting,
                  (int)wharf_server_check_only(s));
    return WHARF_OK;
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "x",
    .version = "0.1",
    .options = x_options,
    .config_size = sizeof(struct x_conf),
    .setup = x_setup,
};
"""

PLUGIN_CXX = r"""
#include <wharf.h>

static int cxx_setup(struct wharf_server *s, void *)
{
    wharf_log(WHARF_LOG_INFO, "cxx plugin setup (check only: %d)", (int)wharf_server_check_only(s));
    return WHARF_OK;
}

extern "C" WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "cxx",
    .version = "0.1",
    .setup = cxx_setup,
};
"""


def clean_env():
    """The environment for a nested make or a wharf run: without the outer
    make's flags (its jobserver fds are not ours), without WHARF_* config
    variables, with a C locale for messages."""
    env = {k: v for k, v in server_environ().items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env["LC_ALL"] = "C"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Run `make install DESTDIR=...` once; returns a dict of paths."""
    if not os.path.exists(os.path.join(BUILDDIR, "Makefile")):
        pytest.skip(f"no configured build tree in {BUILDDIR}")
    dest = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["make", "-C", BUILDDIR, "install", f"DESTDIR={dest}"], env=clean_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"make install failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    pcs = [os.path.join(d, f) for d, _, files in os.walk(dest) for f in files if f == "wharf.pc"]
    headers = [os.path.join(d, f) for d, _, files in os.walk(dest) for f in files if f == "wharf.h"]
    binaries = [os.path.join(d, f) for d, _, files in os.walk(dest) for f in files
                if f == "wharf" and os.access(os.path.join(d, f), os.X_OK)]
    assert len(pcs) == 1, pcs
    assert len(headers) == 1, headers
    assert len(binaries) == 1, binaries
    pc = open(pcs[0]).read()
    prefix = re.search(r"^prefix=(.*)$", pc, re.M).group(1)
    return {
        "dest": str(dest),
        "pc": pcs[0],
        "pc_text": pc,
        "prefix": prefix,
        "staged_prefix": f"{dest}{prefix}",
        "header": headers[0],
        "binary": binaries[0],
    }


def pkg_config(inst, *args):
    env = clean_env()
    env["PKG_CONFIG_PATH"] = os.path.dirname(inst["pc"])
    env.pop("PKG_CONFIG_LIBDIR", None)
    r = subprocess.run(["pkg-config", f"--define-variable=prefix={inst['staged_prefix']}", *args, "wharf"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def package_version():
    text = open(os.path.join(BUILDDIR, "config.h")).read()
    return re.search(r'^#define PACKAGE_VERSION "([^"]+)"$', text, re.M).group(1)


def abi_major():
    text = open(os.path.join(SRCDIR, "core", "wharf.h")).read()
    return re.search(r"#define WHARF_ABI_MAJOR (\d+)", text).group(1)


def test_layout(installed):
    prefix = installed["staged_prefix"]
    assert installed["header"].startswith(prefix + "/include/wharf/")
    assert installed["pc"].startswith(prefix + "/lib")
    assert installed["binary"] == prefix + "/bin/wharf"
    with open(installed["header"]) as a, open(os.path.join(SRCDIR, "core", "wharf.h")) as b:
        assert a.read() == b.read()
    # nothing but the public header is installed for plugin authors
    includes = os.listdir(os.path.dirname(installed["header"]))
    assert includes == ["wharf.h"]


def test_pkg_config_metadata(installed):
    cflags = pkg_config(installed, "--cflags")
    assert f"-I{installed['staged_prefix']}/include/wharf" in cflags.split()
    assert "-fvisibility=hidden" in cflags.split()
    assert pkg_config(installed, "--modversion") == package_version()
    assert pkg_config(installed, "--variable=abi_major") == abi_major()
    assert pkg_config(installed, "--variable=plugindir").startswith(installed["staged_prefix"] + "/lib")
    # a plugin needs no library to link against: the symbols come from wharf
    assert pkg_config(installed, "--libs") == ""


@pytest.fixture(scope="module")
def x_plugin(installed, tmp_path_factory):
    """Build x_plugin.so out of tree, the way the docs say."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler"
    d = tmp_path_factory.mktemp("outoftree")
    (d / "x.c").write_text(PLUGIN_C)
    cflags = pkg_config(installed, "--cflags").split()
    r = subprocess.run([cc, "-shared", *cflags, "-std=c11", "-Wall", "-Wextra", "-Werror",
                        "-o", "x_plugin.so", "x.c"], cwd=d, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d


def test_out_of_tree_plugin_exports_one_symbol(x_plugin):
    r = subprocess.run(["nm", "-D", "--defined-only", str(x_plugin / "x_plugin.so")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    symbols = [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]
    assert symbols == ["wharf_plugin"]


@pytest.mark.parametrize("which", ["built", "installed"])
def test_out_of_tree_plugin_loads(installed, x_plugin, tmp_path, which):
    binary = WHARF if which == "built" else installed["binary"]
    env = clean_env()
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    r = subprocess.run([binary, "--plugins-dir", str(x_plugin), "--plugin", "x", "--x-times", "2",
                        "--check-config"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "configuration OK: 1 plugin(s), 0 socket(s)"
    assert r.stderr.count("INFO: x plugin setup: hello from x (check only: 1)") == 2, r.stderr


def test_out_of_tree_plugin_loaded_by_its_option(x_plugin, tmp_path):
    r = Wharf(tmp_path, port=False, env={"WHARF_PLUGINS_DIR": str(x_plugin)}).run(
        "--x-greeting", "hi", "--check-config")
    assert r.returncode == 0, r.stderr
    assert "x plugin setup: hi (check only: 1)" in r.stderr
    bad = Wharf(tmp_path, port=False, env={"WHARF_PLUGINS_DIR": str(x_plugin)}).run("--x-times", "4")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "command line: x-times: '4' is out of range (expected 1 to 3)"


def test_out_of_tree_plugin_runs(wharf, x_plugin):
    srv = wharf([("plugin", "x"), ("x-greeting", "serving")], port=False,
                env={"WHARF_PLUGINS_DIR": str(x_plugin)})
    assert "x plugin setup: serving (check only: 0)" in srv.log()
    assert "plugins: x;" in srv.log()


# ---------------------------------------------------------------- the header alone

C_FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wstrict-prototypes",
           "-Wmissing-prototypes", "-Wshadow"]


@pytest.mark.parametrize("compiler", ["cc", "clang"])
def test_header_compiles_standalone_as_c(installed, compiler):
    if not shutil.which(compiler):
        pytest.skip(f"{compiler} not installed")
    r = subprocess.run([compiler, *C_FLAGS, "-fsyntax-only", "-x", "c", installed["header"]],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_header_first_include(installed, tmp_path):
    """wharf.h needs nothing included before it."""
    (tmp_path / "t.c").write_text("#include <wharf.h>\nint main(void) { return WHARF_ABI_MAJOR - WHARF_ABI_MAJOR; }\n")
    r = subprocess.run(["cc", *C_FLAGS, "-I", os.path.dirname(installed["header"]), "-o", "t", "t.c"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("std", ["c++11", "c++17", "c++20"])
def test_header_compiles_as_cxx(installed, std):
    if not shutil.which("g++"):
        pytest.skip("g++ not installed")
    r = subprocess.run(["g++", f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic",
                        "-fsyntax-only", "-x", "c++", installed["header"]], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_cxx_plugin_loads(installed, tmp_path):
    """A C++20 plugin (designated initializers in declaration order) builds
    and loads too; the header's extern "C" keeps the names plain."""
    if not shutil.which("g++"):
        pytest.skip("g++ not installed")
    (tmp_path / "cxx.cc").write_text(PLUGIN_CXX)
    cflags = pkg_config(installed, "--cflags").split()
    r = subprocess.run(["g++", "-std=c++20", "-shared", *cflags, "-Wall", "-Werror", "-o", "cxx_plugin.so",
                        "cxx.cc"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = Wharf(tmp_path, port=False, env={"WHARF_PLUGINS_DIR": str(tmp_path)}).run(
        "--plugin", "cxx", "--check-config")
    assert r.returncode == 0, r.stderr
    assert "cxx plugin setup (check only: 1)" in r.stderr
