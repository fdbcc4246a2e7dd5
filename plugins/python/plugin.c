/*
 * plugins/python/plugin.c - the python plugin: options, hooks, and the
 * per-thread Python state.
 *
 * Where the interpreter lives:
 *   - default (preload): setup() in the master starts CPython and imports
 *     the apps (privileges are dropped and sockets bound by then); each
 *     worker inherits them through fork() and only runs
 *     PyOS_AfterFork_Child().  The master keeps the GIL while it forks
 *     (PyOS_AfterFork_Child needs the forking thread to hold it).
 *   - lazy-apps: setup() only checks the options; each worker starts its
 *     own interpreter and imports the apps in worker_start().
 *
 * GIL and threads: handle() runs on the loop thread (threads = 1) or on
 * any of the core's app threads.  Each OS thread gets one PyThreadState on
 * its first request, kept for the life of the worker, so threading.local
 * and C extensions see a stable thread.  handle() takes the GIL with
 * PyEval_RestoreThread and gives it back with PyEval_SaveThread; wsgi.c
 * releases it around every core call that can block.
 */
#include "pyplugin.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct py_global py_g;

static __thread struct py_thread *tls_thread;

struct py_thread *py_thread_current(void)
{
    return tls_thread;
}

void py_wait_idle(const int *busy)
{
    while (*(const volatile int *)busy > 0) {
        Py_BEGIN_ALLOW_THREADS
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
        Py_END_ALLOW_THREADS
    }
}

/* This OS thread's Python state; made on first use.  Called without the
 * GIL: PyThreadState_New() does not need it. */
static struct py_thread *thread_get(void)
{
    struct py_thread *t = tls_thread;
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->tstate = PyThreadState_New(py_g.interp);
    if (!t->tstate) {
        free(t);
        return NULL;
    }
    tls_thread = t;
    return t;
}

/* ------------------------------------------------------------ options */

#define CONF(field) offsetof(struct py_conf, field)

static const struct wharf_option py_options[] = {
    { "module", WHARF_OPT_STRING, CONF(module), NULL,
      "WSGI app to import: pkg.mod:app, pkg.mod (with callable) or pkg.mod:factory()", 0, 0 },
    { "wsgi", WHARF_OPT_ALIAS, 0, "module", "alias of module (uWSGI)", 0, 0 },
    { "wsgi-file", WHARF_OPT_STRING, CONF(wsgi_file), NULL,
      "WSGI app from a .py file (its directory goes first in sys.path)", 0, 0 },
    { "callable", WHARF_OPT_STRING, CONF(callable), "application",
      "name of the WSGI callable in the module or file (module = mod:name sets it too)", 0, 0 },
    { "pythonpath", WHARF_OPT_STRING | WHARF_OPT_LIST, CONF(pythonpath), NULL,
      "add a directory (or glob) to the front of sys.path; repeatable", 0, 0 },
    { "python-path", WHARF_OPT_ALIAS, 0, "pythonpath", "alias of pythonpath (uWSGI)", 0, 0 },
    { "pp", WHARF_OPT_ALIAS, 0, "pythonpath", "alias of pythonpath (uWSGI)", 0, 0 },
    { "home", WHARF_OPT_STRING, CONF(home), NULL,
      "virtualenv to run the app in (its site-packages are used)", 0, 0 },
    { "virtualenv", WHARF_OPT_ALIAS, 0, "home", "alias of home (uWSGI)", 0, 0 },
    { "venv", WHARF_OPT_ALIAS, 0, "home", "alias of home (uWSGI)", 0, 0 },
    { "pyhome", WHARF_OPT_ALIAS, 0, "home", "alias of home (uWSGI)", 0, 0 },
    { "lazy-apps", WHARF_OPT_BOOL, CONF(lazy_apps), "false",
      "import the app in each worker instead of once in the master", 0, 0 },
    { "lazy", WHARF_OPT_ALIAS, 0, "lazy-apps", "alias of lazy-apps (uWSGI)", 0, 0 },
    { "need-app", WHARF_OPT_BOOL, CONF(need_app), "true",
      "fail at startup when an app cannot be imported (false: answer 503)", 0, 0 },
    { "mount", WHARF_OPT_STRING | WHARF_OPT_LIST, CONF(mount), NULL,
      "mount an app under a prefix: /prefix=module:app or /prefix=path/file.py; repeatable", 0, 0 },
    WHARF_OPTIONS_END
};

/* ------------------------------------------------------------ hooks */

static int py_setup(struct wharf_server *s, void *conf)
{
    struct py_conf *c = conf;
    py_g.conf = c;
    py_g.server = s;
    py_g.threads = wharf_server_threads(s);
    py_g.processes = wharf_server_processes(s);
    if (py_apps_configure(c) < 0)
        return WHARF_ERROR;
    /* --check-config validates the options but imports nothing: importing
     * may have side effects (database connections at import time). */
    if (wharf_server_check_only(s) || c->lazy_apps)
        return WHARF_OK;
    if (py_interp_start(c) < 0)
        return WHARF_ERROR;
    int failed = py_apps_load();
    if (failed && c->need_app)
        return WHARF_ERROR;
    if (py_apps_prepare_environ() < 0)
        return WHARF_ERROR;
    py_g.apps_loaded = failed == 0;
    wharf_log(WHARF_LOG_INFO, "python %s: %zu app(s) loaded in the master%s", PY_VERSION,
              py_g.napps - (size_t)failed, failed ? " (some failed: need-app = false)" : "");
    /* The master keeps the GIL: the core forks the workers from this
     * thread, and PyOS_AfterFork_Child() in each needs it held here. */
    return WHARF_OK;
}

/* faulthandler dumps the Python stack of every thread to the log on
 * SIGURG (WHARF_SIGNAL_STACKDUMP): harakiri asks for it before killing a
 * stuck worker. */
static void register_stack_dump(void)
{
    PyObject *fh = PyImport_ImportModule("faulthandler");
    PyObject *res = NULL;
    if (fh) {
        PyObject *args = Py_BuildValue("(i)", WHARF_SIGNAL_STACKDUMP);
        PyObject *kw = Py_BuildValue("{s:i,s:O,s:O}", "file", wharf_log_fd(), "all_threads",
                                     Py_True, "chain", Py_False);
        if (args && kw) {
            PyObject *reg = PyObject_GetAttrString(fh, "register");
            if (reg)
                res = PyObject_Call(reg, args, kw);
            Py_XDECREF(reg);
        }
        Py_XDECREF(args);
        Py_XDECREF(kw);
        Py_DECREF(fh);
    }
    if (!res)
        py_log_exception(false, "faulthandler.register(SIGURG) failed; no Python stack dumps");
    Py_XDECREF(res);
}

static int py_worker_start(struct wharf_worker *w, void *conf)
{
    struct py_conf *c = conf;
    py_g.worker = w;
    if (!py_g.initialized) {
        /* lazy-apps (or need-app = false with nothing loaded): this worker
         * gets its own interpreter */
        if (py_interp_start(c) < 0)
            return WHARF_ERROR;
        int failed = py_apps_load();
        if (failed && c->need_app)
            return WHARF_ERROR; /* the core exits with WHARF_WORKER_EXIT_FAILED */
        if (py_apps_prepare_environ() < 0)
            return WHARF_ERROR;
        py_g.apps_loaded = failed == 0;
    } else {
        /* the interpreter came from the master through fork(): the GIL,
         * thread states and locks need resetting, and the at-fork hooks
         * run (random re-seeds itself there, threading forgets the
         * master's threads) */
        PyOS_AfterFork_Child();
    }
    register_stack_dump();

    struct py_thread *t = calloc(1, sizeof *t);
    if (!t)
        return WHARF_ERROR;
    t->tstate = PyThreadState_Get();
    tls_thread = t; /* the loop thread runs requests itself when threads = 1 */
    wharf_worker_set_app_ready(w, py_g.apps_loaded);
    /* App threads (started by the core after this hook) take the GIL
     * per request. */
    PyEval_SaveThread();
    return WHARF_OK;
}

static void py_worker_stop(struct wharf_worker *w, void *conf)
{
    (void)w;
    (void)conf;
    struct py_thread *t = tls_thread;
    if (!py_g.initialized || !t)
        return;
    PyEval_RestoreThread(t->tstate);
    /* Run the app's atexit hooks and flush its output, as a Python
     * process exiting would.  No Py_FinalizeEx: it waits for non-daemon
     * threads the app may have started, and the process exits anyway. */
    PyObject *atexit = PyImport_ImportModule("atexit");
    PyObject *res = atexit ? PyObject_CallMethod(atexit, "_run_exitfuncs", NULL) : NULL;
    if (!res)
        py_log_exception(false, "atexit handlers failed");
    Py_XDECREF(res);
    Py_XDECREF(atexit);
    py_errors_flush_thread(t);
    const char *streams[] = { "stdout", "stderr" };
    for (int i = 0; i < 2; i++) {
        PyObject *f = PySys_GetObject(streams[i]);
        if (f && f != Py_None) {
            PyObject *r = PyObject_CallMethod(f, "flush", NULL);
            if (!r)
                PyErr_Clear();
            Py_XDECREF(r);
        }
    }
    PyEval_SaveThread();
}

/* The app for this path: the longest mountpoint that is a prefix ending
 * at a path segment boundary, else the default app.  Plain C data, no
 * GIL needed. */
static struct py_app *find_app(const struct wharf_request *r)
{
    for (size_t i = 0; i < py_g.napps; i++) {
        struct py_app *a = &py_g.apps[i];
        size_t n = a->mount_len;
        if (n == 0 || (r->path_len >= n && memcmp(r->path, a->mountpoint, n) == 0 &&
                       (r->path_len == n || r->path[n] == '/')))
            return a;
    }
    return NULL;
}

static int py_handle(struct wharf_request *r, void *conf)
{
    (void)conf;
    struct py_app *app = find_app(r);
    if (!app)
        return WHARF_DECLINED;
    if (!app->callable) {
        /* need-app = false and the import failed: say so, do not 404 */
        wharf_response_simple(r, 503, "text/plain", "Service Unavailable: the app is not loaded\n", 43);
        return WHARF_DONE;
    }
    struct py_thread *t = thread_get();
    if (!t) {
        wharf_log(WHARF_LOG_ERROR, "%s %s: cannot create a Python thread state", r->method, r->uri);
        return WHARF_ERROR;
    }
    struct py_tail tail = { NULL, 0, false };
    PyEval_RestoreThread(t->tstate);
    int rc = py_wsgi_run(t, app, r, app->mount_len, &tail);
    PyEval_SaveThread();
    if (tail.end)
        py_wsgi_finish_tail(r, &tail);
    return rc;
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "python",
    .version = PY_VERSION,
    .options = py_options,
    .config_size = sizeof(struct py_conf),
    .setup = py_setup,
    .worker_start = py_worker_start,
    .handle = py_handle,
    .phases = WHARF_PHASE_BIT(WHARF_PHASE_APP),
    .worker_stop = py_worker_stop,
};
