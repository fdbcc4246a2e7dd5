/*
 * plugins/python/interp.c - starting CPython inside wharf and loading the
 * WSGI apps.
 *
 * Interpreter choices:
 *   - the libpython this plugin links against is re-opened RTLD_GLOBAL:
 *     the core loads plugins RTLD_LOCAL, and C extension modules
 *     (_ssl, _json, _sqlite3, ...) resolve Py* symbols globally;
 *   - PyConfig in "python" mode (not isolated), like running
 *     /usr/bin/python3: PYTHONPATH and the other PYTHON* variables count,
 *     the user site too unless a virtualenv says otherwise;
 *   - sys.executable is the real interpreter (the virtualenv's
 *     bin/python with `home`), never wharf, so subprocess and
 *     multiprocessing work; sys.argv is ["wharf"];
 *   - no Python signal handlers (the core owns signals), C stdio left
 *     alone, stdout/stderr unbuffered so prints reach the log at once;
 *   - sys.path: pythonpath entries, then the wsgi-file directories, then
 *     the current directory (after `chdir`), then the usual entries.
 */
#include "pyplugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef WHARF_PYTHON_EXECUTABLE
#define WHARF_PYTHON_EXECUTABLE "/usr/bin/python3"
#endif

#define PY_LIBDIR "lib/python" Py_STRINGIFY(PY_MAJOR_VERSION) "." Py_STRINGIFY(PY_MINOR_VERSION)

/* Python helpers that are not worth writing in C (run at startup or on
 * errors only, never per request). */
static const char helpers_src[] =
    "import sys\n"
    "def format_exc(exc):\n"
    "    import traceback\n"
    "    return ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))\n"
    "def exc_summary(exc):\n"
    "    import traceback\n"
    "    return traceback.format_exception_only(type(exc), exc)[-1].strip()\n"
    "def load_file(name, path):\n"
    "    mod = sys.modules.get(name)\n"
    "    if mod is not None:\n"
    "        return mod\n"
    "    import importlib.util, importlib.machinery\n"
    "    loader = importlib.machinery.SourceFileLoader(name, path)\n"
    "    spec = importlib.util.spec_from_file_location(name, path, loader=loader)\n"
    "    mod = importlib.util.module_from_spec(spec)\n"
    "    sys.modules[name] = mod\n"
    "    try:\n"
    "        loader.exec_module(mod)\n"
    "    except BaseException:\n"
    "        sys.modules.pop(name, None)\n"
    "        raise\n"
    "    return mod\n"
    "def resolve(mod, path):\n"
    "    call = path.endswith('()')\n"
    "    attr = path[:-2] if call else path\n"
    "    obj = mod\n"
    "    for part in attr.split('.'):\n"
    "        try:\n"
    "            obj = getattr(obj, part)\n"
    "        except AttributeError:\n"
    "            raise AttributeError(f'module {mod.__name__!r} has no attribute {attr!r}') from None\n"
    "    if call:\n"
    "        obj = obj()\n"
    "    if not callable(obj):\n"
    "        raise TypeError(f'{mod.__name__}:{path} is a {type(obj).__name__}, not a WSGI callable')\n"
    "    return obj\n";

static PyObject *h_format_exc, *h_exc_summary, *h_load_file, *h_resolve;

/* ------------------------------------------------------------ errors */

void py_exception_summary(char *buf, size_t len)
{
    buf[0] = '\0';
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    PyObject *s = h_exc_summary && value ? PyObject_CallOneArg(h_exc_summary, value) : NULL;
    const char *text = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
    if (text)
        snprintf(buf, len, "%s", text);
    else {
        PyErr_Clear();
        snprintf(buf, len, "%s", ((PyTypeObject *)type)->tp_name);
    }
    Py_XDECREF(s);
    PyErr_Restore(type, value, tb);
}

void py_log_exception(bool client_gone, const char *fmt, ...)
{
    if (!PyErr_Occurred())
        return;
    char ctx[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    if (client_gone && PyErr_ExceptionMatches(PyExc_OSError)) {
        PyErr_Clear();
        wharf_log(WHARF_LOG_INFO, "%s: the client went away", ctx);
        return;
    }
    char summary[1024];
    py_exception_summary(summary, sizeof summary);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    wharf_log(WHARF_LOG_ERROR, "%s: %s", ctx, summary);
    /* The traceback in one write, so lines of other processes do not cut
     * into it.  Never PyErr_Print(): it exits on SystemExit. */
    PyObject *text = h_format_exc && value ? PyObject_CallOneArg(h_format_exc, value) : NULL;
    Py_ssize_t n = 0;
    const char *s = text && PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    if (s)
        wharf_log_raw(s, (size_t)n);
    else
        PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* ------------------------------------------------------------ configuration */

/* snprintf into a PATH_MAX buffer; a path that does not fit is an error
 * (ENAMETOOLONG), never silently cut. */
static int pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX) {
        out[0] = '\0';
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static bool is_identifier_path(const char *s, size_t n, bool allow_call)
{
    if (allow_call && n > 2 && s[n - 2] == '(' && s[n - 1] == ')')
        n -= 2;
    if (n == 0)
        return false;
    bool start = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (start)
                return false;
            start = true;
            continue;
        }
        bool alpha = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
        if (!alpha && !(c >= '0' && c <= '9' && !start))
            return false;
        start = false;
    }
    return !start;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        abort();
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

/* "pkg.mod:app" -> module "pkg.mod", callable "app"; "pkg.mod" -> the
 * `callable` option.  0 or -1 after a config error. */
static int parse_module_spec(struct py_app *a, const char *spec, const char *origin,
                             const char *option, const char *default_callable)
{
    const char *colon = strchr(spec, ':');
    size_t mlen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!is_identifier_path(spec, mlen, false)) {
        wharf_config_error(origin, option, "'%s' is not a module name (expected pkg.module or pkg.module:app)",
                           spec);
        return -1;
    }
    const char *cal = colon ? colon + 1 : default_callable;
    if (!is_identifier_path(cal, strlen(cal), true)) {
        wharf_config_error(origin, option, "'%s' is not a callable name (expected app, obj.attr or factory())",
                           cal);
        return -1;
    }
    a->spec = xstrndup(spec, mlen);
    a->callable_name = xstrdup(cal);
    a->is_file = false;
    return 0;
}

static int parse_file_spec(struct py_app *a, const char *path, const char *origin,
                           const char *option, const char *callable)
{
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(path, real) || stat(real, &st) < 0) {
        wharf_config_error(origin, option, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        wharf_config_error(origin, option, "'%s' is not a file", path);
        return -1;
    }
    if (access(real, R_OK) < 0) {
        wharf_config_error(origin, option, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    if (!is_identifier_path(callable, strlen(callable), true)) {
        wharf_config_error(origin, "callable", "'%s' is not a callable name", callable);
        return -1;
    }
    a->spec = xstrdup(real);
    a->callable_name = xstrdup(callable);
    a->is_file = true;
    return 0;
}

static struct py_app *new_app(void)
{
    struct py_app *n = realloc(py_g.apps, (py_g.napps + 1) * sizeof *n);
    if (!n)
        abort();
    py_g.apps = n;
    struct py_app *a = &n[py_g.napps++];
    memset(a, 0, sizeof *a);
    return a;
}

static int cmp_apps(const void *x, const void *y)
{
    const struct py_app *a = x, *b = y;
    return a->mount_len < b->mount_len ? 1 : a->mount_len > b->mount_len ? -1 : 0;
}

static bool looks_like_file(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 3 && strcmp(s + n - 3, ".py") == 0) ||
           (n > 5 && strcmp(s + n - 5, ".wsgi") == 0);
}

static int check_home(struct py_conf *c)
{
    if (!c->home)
        return 0;
    const char *origin = wharf_option_origin(py_g.server, "home");
    struct stat st;
    if (stat(c->home, &st) < 0 || !S_ISDIR(st.st_mode)) {
        wharf_config_error(origin, "home", "'%s' is not a directory", c->home);
        return -1;
    }
    char p[PATH_MAX];
    pathf(p, "%s/pyvenv.cfg", c->home);
    if (access(p, R_OK) == 0) {
        pathf(p, "%s/" PY_LIBDIR "/site-packages", c->home);
        if (access(p, R_OK) != 0) {
            wharf_config_error(origin, "home",
                               "'%s' is a virtualenv of another Python: it has no " PY_LIBDIR
                               "/site-packages, and wharf embeds Python %d.%d",
                               c->home, PY_MAJOR_VERSION, PY_MINOR_VERSION);
            return -1;
        }
        return 0;
    }
    pathf(p, "%s/" PY_LIBDIR "/os.py", c->home);
    if (access(p, R_OK) == 0)
        return 0; /* a Python installation prefix (PYTHONHOME) */
    pathf(p, "%s/" PY_LIBDIR "/site-packages", c->home);
    if (access(p, R_OK) == 0)
        return 0; /* an old-style virtualenv without pyvenv.cfg */
    wharf_config_error(origin, "home", "'%s' is not a Python %d.%d virtualenv (no pyvenv.cfg, no " PY_LIBDIR
                       "/site-packages)", c->home, PY_MAJOR_VERSION, PY_MINOR_VERSION);
    return -1;
}

int py_apps_configure(struct py_conf *c)
{
    struct wharf_server *s = py_g.server;
    const char *callable = c->callable ? c->callable : "application";
    if (c->module && c->wsgi_file) {
        wharf_config_error(wharf_option_origin(s, "wsgi-file"), "wsgi-file",
                           "both module and wsgi-file are set; use one (or mount the other)");
        return -1;
    }
    if (c->module) {
        const char *origin = wharf_option_origin(s, "module");
        const char *colon = strchr(c->module, ':');
        if (colon && wharf_option_is_set(s, "callable") && strcmp(colon + 1, callable) != 0) {
            wharf_config_error(origin, "module", "'%s' names the callable '%s' but callable = %s; drop one",
                               c->module, colon + 1, callable);
            return -1;
        }
        struct py_app *a = new_app();
        a->mountpoint = xstrdup("");
        a->option = "module";
        a->origin = origin;
        if (parse_module_spec(a, c->module, origin, "module", callable) < 0)
            return -1;
    } else if (c->wsgi_file) {
        const char *origin = wharf_option_origin(s, "wsgi-file");
        struct py_app *a = new_app();
        a->mountpoint = xstrdup("");
        a->option = "wsgi-file";
        a->origin = origin;
        if (parse_file_spec(a, c->wsgi_file, origin, "wsgi-file", callable) < 0)
            return -1;
    }
    for (size_t i = 0; i < c->mount.count; i++) {
        const struct wharf_list_item *it = &c->mount.items[i];
        const char *eq = strchr(it->value, '=');
        if (!eq || it->value[0] != '/' || !eq[1]) {
            wharf_config_error(it->origin, "mount", "'%s' is not /prefix=module:app or /prefix=file.py",
                               it->value);
            return -1;
        }
        size_t plen = (size_t)(eq - it->value);
        while (plen > 1 && it->value[plen - 1] == '/')
            plen--; /* "/app/" mounts at "/app" */
        if (plen == 1)
            plen = 0; /* "/" is the default app */
        for (size_t j = 0; j < py_g.napps; j++)
            if (py_g.apps[j].mount_len == plen && memcmp(py_g.apps[j].mountpoint, it->value, plen) == 0) {
                wharf_config_error(it->origin, "mount", "'%.*s' is mounted twice%s", (int)(plen ? plen : 1),
                                   plen ? it->value : "/", plen ? "" : " (module/wsgi-file is the app at /)");
                return -1;
            }
        struct py_app *a = new_app();
        a->mountpoint = xstrndup(it->value, plen);
        a->mount_len = plen;
        a->option = "mount";
        a->origin = it->origin;
        int rc = looks_like_file(eq + 1) ? parse_file_spec(a, eq + 1, it->origin, "mount", callable)
                                         : parse_module_spec(a, eq + 1, it->origin, "mount", callable);
        if (rc < 0)
            return -1;
    }
    if (py_g.napps == 0 && c->need_app) {
        wharf_config_error(wharf_option_origin(s, "module"), "module",
                           "no WSGI app configured: set module, wsgi-file or mount (or need-app = false)");
        return -1;
    }
    qsort(py_g.apps, py_g.napps, sizeof *py_g.apps, cmp_apps);
    for (size_t i = 0; i < c->pythonpath.count; i++) {
        const char *p = c->pythonpath.items[i].value;
        struct stat st;
        if (!strpbrk(p, "*?[") && stat(p, &st) < 0)
            wharf_log(WHARF_LOG_WARN, "%s: pythonpath: '%s' does not exist (added anyway)",
                      c->pythonpath.items[i].origin, p);
    }
    return check_home(c);
}

/* ------------------------------------------------------------ interpreter */

/* The core dlopen()s plugins RTLD_LOCAL, so libpython's symbols are not
 * global and extension modules (which do not link libpython) fail with
 * "undefined symbol: PyExc_...".  Re-open the same libpython globally. */
static void promote_libpython(void)
{
    Dl_info info;
    if (!dladdr((void *)&Py_InitializeFromConfig, &info) || !info.dli_fname) {
        wharf_log(WHARF_LOG_WARN, "cannot find libpython: C extension modules may fail to import");
        return;
    }
    void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
    if (!h)
        wharf_log(WHARF_LOG_WARN, "cannot make %s global (%s): C extension modules may fail to import",
                  info.dli_fname, dlerror());
    /* never dlclose()d: it stays for the life of the process */
}

static int status_ok(PyStatus st, const char *what)
{
    if (!PyStatus_Exception(st))
        return 0;
    wharf_log(WHARF_LOG_ERROR, "python: %s: %s%s%s", what, st.func ? st.func : "",
              st.func ? ": " : "", st.err_msg ? st.err_msg : "failed");
    return -1;
}

static int sys_path_insert(Py_ssize_t *at, const char *dir)
{
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    if (!path || !PyList_Check(path))
        return -1;
    PyObject *s = PyUnicode_DecodeFSDefault(dir);
    if (!s)
        return -1;
    int rc = PyList_Insert(path, (*at)++, s);
    Py_DECREF(s);
    return rc;
}

static int add_wharf_pylib(void);

static int setup_sys_path(struct py_conf *c)
{
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
        wharf_log(WHARF_LOG_ERROR, "python: getcwd: %s", strerror(errno));
        return -1;
    }
    Py_ssize_t at = 0;
    for (size_t i = 0; i < c->pythonpath.count; i++) {
        const char *p = c->pythonpath.items[i].value;
        char abs[PATH_MAX];
        if (p[0] != '/')
            pathf(abs, "%s/%s", cwd, p);
        else
            pathf(abs, "%s", p);
        glob_t g;
        if (strpbrk(abs, "*?[") && glob(abs, 0, NULL, &g) == 0) {
            for (size_t k = 0; k < g.gl_pathc; k++)
                if (sys_path_insert(&at, g.gl_pathv[k]) < 0) {
                    globfree(&g);
                    return -1;
                }
            globfree(&g);
        } else if (sys_path_insert(&at, abs) < 0) {
            return -1;
        }
    }
    /* a wsgi-file finds its sibling modules, as `python3 file.py` would */
    for (size_t i = 0; i < py_g.napps; i++)
        if (py_g.apps[i].is_file) {
            char *dir = xstrdup(py_g.apps[i].spec);
            char *slash = strrchr(dir, '/');
            if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
            int rc = sys_path_insert(&at, dir);
            free(dir);
            if (rc < 0)
                return -1;
        }
    /* `module = wsgi:app` imports from the current directory (after
     * chdir), as with uWSGI and gunicorn; an absolute path, so a later
     * os.chdir() in the app changes nothing */
    if (sys_path_insert(&at, cwd) < 0)
        return -1;
    return add_wharf_pylib();
}

/* Python helpers shipped with wharf (wharf_session.py: the dict-like
 * session and its Flask SessionInterface) go last on sys.path.  An
 * installed plugin finds them in WHARF_PYLIBDIR; a plugin run from the
 * build tree finds them in the source tree. */
static int add_wharf_pylib(void)
{
    Dl_info info;
    const char *dir = WHARF_PYLIBDIR;
    if (dladdr((void *)add_wharf_pylib, &info) && info.dli_fname) {
        char *self = xstrdup(info.dli_fname);
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        char real_self[PATH_MAX], real_plugindir[PATH_MAX];
        bool installed = realpath(self, real_self) && realpath(WHARF_PLUGINDIR, real_plugindir) &&
                         strcmp(real_self, real_plugindir) == 0;
        if (!installed && access(WHARF_PYLIB_SRCDIR "/wharf_session.py", R_OK) == 0)
            dir = WHARF_PYLIB_SRCDIR;
        free(self);
    }
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    if (!path || !PyList_Check(path))
        return -1;
    PyObject *s = PyUnicode_DecodeFSDefault(dir);
    if (!s)
        return -1;
    int rc = PyList_Append(path, s);
    Py_DECREF(s);
    return rc;
}

/* A virtualenv without pyvenv.cfg (old virtualenv): add its site-packages
 * the way site.py would. */
static int add_old_virtualenv(struct py_conf *c)
{
    char p[PATH_MAX];
    pathf(p, "%s/pyvenv.cfg", c->home);
    if (access(p, R_OK) == 0)
        return 0;
    pathf(p, "%s/" PY_LIBDIR "/os.py", c->home);
    if (access(p, R_OK) == 0)
        return 0;
    pathf(p, "%s/" PY_LIBDIR "/site-packages", c->home);
    PyObject *site = PyImport_ImportModule("site");
    PyObject *r = site ? PyObject_CallMethod(site, "addsitedir", "s", p) : NULL;
    Py_XDECREF(site);
    if (!r) {
        py_log_exception(false, "python: home: cannot add %s", p);
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* The signal module installs a KeyboardInterrupt handler for SIGINT the
 * first time it is imported, whatever install_signal_handlers says.  Import
 * it now and put SIGINT back to SIG_DFL: the core owns every signal (the
 * workers read them from a signalfd). */
static int give_signals_back(void)
{
    PyObject *mod = PyImport_ImportModule("signal");
    if (!mod)
        return -1;
    PyObject *dfl = PyObject_GetAttrString(mod, "SIG_DFL");
    PyObject *r = dfl ? PyObject_CallMethod(mod, "signal", "iO", SIGINT, dfl) : NULL;
    Py_XDECREF(dfl);
    Py_DECREF(mod);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int load_helpers(void)
{
    PyObject *globals = PyDict_New();
    if (!globals)
        return -1;
    PyObject *builtins = PyEval_GetBuiltins();
    PyDict_SetItemString(globals, "__builtins__", builtins);
    PyDict_SetItemString(globals, "__name__", PyUnicode_FromString("wharf._helpers"));
    PyObject *r = PyRun_String(helpers_src, Py_file_input, globals, globals);
    if (!r) {
        Py_DECREF(globals);
        return -1;
    }
    Py_DECREF(r);
    h_format_exc = PyDict_GetItemString(globals, "format_exc");
    h_exc_summary = PyDict_GetItemString(globals, "exc_summary");
    h_load_file = PyDict_GetItemString(globals, "load_file");
    h_resolve = PyDict_GetItemString(globals, "resolve");
    /* the dict keeps them alive for the life of the process */
    return h_format_exc && h_exc_summary && h_load_file && h_resolve ? 0 : -1;
}

int py_interp_start(struct py_conf *c)
{
    promote_libpython();
    if (PyImport_AppendInittab("wharf", py_wharf_module_init) < 0) {
        wharf_log(WHARF_LOG_ERROR, "python: cannot register the wharf module");
        return -1;
    }
    PyConfig cfg;
    PyConfig_InitPythonConfig(&cfg);
    cfg.install_signal_handlers = 0; /* the core owns signals */
    cfg.parse_argv = 0;
    cfg.configure_c_stdio = 0;       /* leave the core's stdio alone */
    cfg.buffered_stdio = 0;          /* print() reaches the log at once */

    char exe[PATH_MAX];
    pathf(exe, "%s", WHARF_PYTHON_EXECUTABLE);
    bool prefix_home = false;
    if (c->home) {
        char real[PATH_MAX], p[PATH_MAX];
        if (!realpath(c->home, real))
            snprintf(real, sizeof real, "%s", c->home);
        pathf(p, "%s/pyvenv.cfg", real);
        if (access(p, R_OK) == 0) {
            /* getpath finds pyvenv.cfg next to the executable's directory
             * and sets sys.prefix and site-packages exactly as when the
             * venv's own python runs */
            pathf(exe, "%s/bin/python%d", real, PY_MAJOR_VERSION);
            if (access(exe, X_OK) != 0)
                pathf(exe, "%s/bin/python", real);
        } else {
            pathf(p, "%s/" PY_LIBDIR "/os.py", real);
            prefix_home = access(p, R_OK) == 0;
        }
        if (prefix_home && status_ok(PyConfig_SetBytesString(&cfg, &cfg.home, real), "home") < 0)
            goto fail;
    }
    if (status_ok(PyConfig_SetBytesString(&cfg, &cfg.program_name, exe), "program_name") < 0 ||
        status_ok(PyConfig_SetBytesString(&cfg, &cfg.executable, exe), "executable") < 0)
        goto fail;
    char *argv[] = { "wharf", NULL };
    if (status_ok(PyConfig_SetBytesArgv(&cfg, 1, argv), "argv") < 0)
        goto fail;
    if (status_ok(Py_InitializeFromConfig(&cfg), "cannot start the interpreter") < 0)
        goto fail;
    PyConfig_Clear(&cfg);

    py_g.initialized = true;
    py_g.interp = PyThreadState_Get()->interp;
    if (load_helpers() < 0 || py_objects_ready() < 0 || py_wsgi_init() < 0 || give_signals_back() < 0) {
        py_log_exception(false, "python: plugin initialization failed");
        return -1;
    }
    if (setup_sys_path(c) < 0) {
        py_log_exception(false, "python: cannot set sys.path");
        return -1;
    }
    if (c->home && add_old_virtualenv(c) < 0)
        return -1;
    return 0;
fail:
    PyConfig_Clear(&cfg);
    return -1;
}

/* ------------------------------------------------------------ apps */

static PyObject *import_app_module(struct py_app *a)
{
    if (!a->is_file)
        return PyImport_ImportModule(a->spec);
    /* a file gets a module name of its own, as uWSGI does, so that
     * "app.py" never shadows (or is shadowed by) an importable "app" */
    char name[PATH_MAX + 16];
    size_t n = (size_t)snprintf(name, sizeof name, "wharf_file");
    for (const char *p = a->spec; *p && n < sizeof name - 1; p++)
        name[n++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                   (*p >= '0' && *p <= '9') ? *p : '_');
    name[n] = '\0';
    return PyObject_CallFunction(h_load_file, "ss", name, a->spec);
}

int py_apps_load(void)
{
    int failed = 0;
    for (size_t i = 0; i < py_g.napps; i++) {
        struct py_app *a = &py_g.apps[i];
        PyObject *mod = import_app_module(a);
        PyObject *app = mod ? PyObject_CallFunction(h_resolve, "Os", mod, a->callable_name) : NULL;
        Py_XDECREF(mod);
        if (!app) {
            char summary[600];
            py_exception_summary(summary, sizeof summary);
            py_log_exception(false, "python: cannot load the app %s%s%s", a->spec, a->is_file ? "" : ":",
                             a->is_file ? "" : a->callable_name);
            if (py_g.conf->need_app)
                wharf_config_error(a->origin, a->option, "cannot load %s%s%s: %s (traceback above)", a->spec,
                                   a->is_file ? "" : ":", a->is_file ? "" : a->callable_name, summary);
            else
                wharf_log(WHARF_LOG_WARN, "%s: %s: cannot load %s%s%s (need-app = false: answering 503 under %s)",
                          a->origin, a->option, a->spec, a->is_file ? "" : ":",
                          a->is_file ? "" : a->callable_name, a->mount_len ? a->mountpoint : "/");
            failed++;
            continue;
        }
        a->callable = app;
        wharf_log(WHARF_LOG_INFO, "python: app %s%s%s loaded%s%s", a->spec, a->is_file ? "" : ":",
                  a->is_file ? "" : a->callable_name, a->mount_len ? " at " : "",
                  a->mount_len ? a->mountpoint : "");
    }
    return failed;
}

int py_apps_prepare_environ(void)
{
    for (size_t i = 0; i < py_g.napps; i++) {
        struct py_app *a = &py_g.apps[i];
        if (!a->callable)
            continue;
        a->environ = py_environ_template(a);
        if (!a->environ) {
            py_log_exception(false, "python: cannot build the environ of %s", a->spec);
            return -1;
        }
    }
    return 0;
}
