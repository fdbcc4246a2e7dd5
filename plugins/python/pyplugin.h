/*
 * plugins/python/pyplugin.h - what the files of the python plugin share.
 *
 * The plugin embeds the CPython it was built against (python3-embed) and
 * runs WSGI apps (PEP 3333).  Files by concern:
 *   plugin.c      options, hooks, per-thread interpreter state, dispatch
 *   interp.c      interpreter start (PyConfig, venv, sys.path), app loading
 *   wsgi.c        one request: environ, start_response/write, the response
 *   input.c       wsgi.input: the request body, streamed
 *   objects.c     wsgi.errors, wsgi.file_wrapper, wharf.LazyVar and the
 *                 built-in `wharf` module that holds the types
 *
 * Python.h must come first (it sets feature macros).
 */
#ifndef WHARF_PYPLUGIN_H
#define WHARF_PYPLUGIN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wharf.h"

/* ------------------------------------------------------------ config */

struct py_conf {
    char *module;            /* "pkg.mod:app" or "pkg.mod" */
    char *wsgi_file;         /* path to a .py file */
    char *callable;          /* default "application" */
    struct wharf_list pythonpath;
    char *home;              /* virtualenv (or a Python prefix) */
    bool lazy_apps;          /* import in each worker, not the master */
    bool need_app;           /* no app loaded -> startup fails */
    struct wharf_list mount; /* "/prefix=module:app" or "/prefix=file.py" */
};

/* One WSGI app and where it is mounted.  The default app (module or
 * wsgi-file) has the empty mountpoint. */
struct py_app {
    char *mountpoint;        /* "" or "/prefix" (no trailing slash) */
    size_t mount_len;
    char *spec;              /* as configured: "wsgi:app", "/srv/app.py" */
    char *callable_name;     /* attribute path, maybe ending in "()" */
    const char *option;      /* "module", "wsgi-file" or "mount" */
    const char *origin;      /* where the option was given */
    bool is_file;
    PyObject *callable;      /* NULL until loaded (or when loading failed) */
    PyObject *environ;       /* template: constants + placeholders */
};

/* Process-wide state of the plugin. */
struct py_global {
    struct py_conf *conf;
    struct wharf_server *server;
    struct wharf_worker *worker;   /* in a worker, else NULL */
    bool initialized;              /* the interpreter runs in this process */
    bool apps_loaded;              /* every configured app is loaded */
    PyInterpreterState *interp;
    struct py_app *apps;           /* sorted: longest mountpoint first */
    size_t napps;
    unsigned threads, processes;
};
extern struct py_global py_g;

/* Per OS thread: its Python thread state (made once, never destroyed per
 * request) and objects reused from one request to the next. */
struct py_thread {
    PyThreadState *tstate;
    PyObject *input;               /* InputObject, reused when unshared */
    PyObject *start_response;      /* StartResponseObject, idem */
    PyObject *write;               /* WriteObject, idem */
    /* wsgi.errors line buffer of this thread */
    char *errbuf;
    size_t errlen, errcap;
    /* last value caches: the same client and server repeat */
    PyObject *server_name;  char server_name_c[64];
    unsigned server_port;   PyObject *server_port_obj;
    PyObject *remote_addr;  char remote_addr_c[64];
    unsigned remote_port;   PyObject *remote_port_obj;
};
/* This thread's state, or NULL before its first request. */
struct py_thread *py_thread_current(void);

/* ------------------------------------------------------------ interp.c */

/* Start the interpreter in this process (dlopen promotion, PyConfig,
 * sys.path).  The calling thread holds the GIL afterwards.  0 or -1
 * (logged). */
int py_interp_start(struct py_conf *);
/* Check options that need no interpreter (module syntax, files, mounts,
 * home); fills py_g.apps.  0 or -1 after wharf_config_error(). */
int py_apps_configure(struct py_conf *);
/* Import every app (GIL held).  Returns the number that failed; each
 * failure is logged with its traceback and a one-line config error. */
int py_apps_load(void);
/* Build each loaded app's environ template (GIL held). */
int py_apps_prepare_environ(void);

/* Log the current Python exception: one ERROR line "<context>: <Type:
 * message>" and the traceback as one raw write.  Clears the exception.
 * `client_gone` turns an OSError into a short INFO line. */
void py_log_exception(bool client_gone, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "ValueError: bad thing" for the current exception, without clearing it. */
void py_exception_summary(char *buf, size_t len);

/* Wait (GIL held, released while waiting) until *busy is 0: calls that
 * released the GIL for I/O on a request's object have come back.  Busy
 * counters only change with the GIL held. */
void py_wait_idle(const int *busy);

/* ------------------------------------------------------------ wsgi.c */

/* Interned strings and constants used on the hot path. */
int py_wsgi_init(void);
/* What is left to do once the GIL is given back: a small complete body
 * (copied into request memory) to write, and the end of the response.
 * Sending it after PyEval_SaveThread() saves two GIL round trips per
 * request for the common `return [body]`. */
struct py_tail {
    const void *body;
    size_t len;
    bool end;
};
/* Run one request through `app` (GIL held).  Returns WHARF_DONE or
 * WHARF_ERROR (the response was started and must be cut).  With `tail`
 * non-NULL, the response may be left to py_wsgi_finish_tail(), which the
 * caller runs without the GIL. */
int py_wsgi_run(struct py_thread *, struct py_app *, struct wharf_request *,
                size_t script_len, struct py_tail *tail);
/* Send what py_wsgi_run() left in `tail` (GIL not held). */
void py_wsgi_finish_tail(struct wharf_request *, struct py_tail *);
/* Build the constant part of an app's environ. */
PyObject *py_environ_template(struct py_app *);

/* ------------------------------------------------------------ input.c */

extern PyTypeObject py_input_type;
/* A wsgi.input for `r`, reusing the thread's cached one when nobody else
 * holds it.  New reference. */
PyObject *py_input_for(struct py_thread *, struct wharf_request *);
/* The body could not be read (the http plugin answered 400/413 or the
 * client went away): an app exception after that is no server error. */
bool py_input_failed(PyObject *input);
/* The request is over: later use raises instead of touching it (waits for
 * a read in progress on another thread). */
void py_input_detach(PyObject *input);

/* ------------------------------------------------------------ objects.c */

extern PyTypeObject py_errors_type;
extern PyTypeObject py_filewrapper_type;
extern PyTypeObject py_lazyvar_type;

/* The built-in `wharf` module (registered before the interpreter starts). */
PyObject *py_wharf_module_init(void);
int py_objects_ready(void);

/* The wsgi.errors object shared by all requests: each thread buffers its
 * own partial line, so lines of concurrent requests never mix. */
extern PyObject *py_errors;
/* Write out this thread's partial wsgi.errors line. */
void py_errors_flush_thread(struct py_thread *);

/* The file a wsgi.file_wrapper wraps, and its block size. */
PyObject *py_filewrapper_filelike(PyObject *);
Py_ssize_t py_filewrapper_blksize(PyObject *);

PyObject *py_lazyvar_new(struct wharf_request *, const char *name,
                         const struct wharf_lazy_var_ops *, void *data);
void py_lazyvar_detach(PyObject *);

#endif
