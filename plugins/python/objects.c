/*
 * plugins/python/objects.c - the small C types behind environ values and
 * the built-in `wharf` module that exposes them:
 *   wharf.ErrorStream  wsgi.errors: to the wharf log, line-buffered per
 *                      thread (one object for all requests)
 *   wharf.FileWrapper  wsgi.file_wrapper: wsgi.c sends it with sendfile
 *                      when it wraps a regular file
 *   wharf.LazyVar      a lazy request variable (wharf.<name>): load(),
 *                      store(), delete(), regenerate() call the owning
 *                      plugin's wharf_lazy_var_ops with the GIL released
 */
#include "pyplugin.h"

#include <structmember.h>
#include <stdlib.h>
#include <string.h>

PyObject *py_errors;

/* ------------------------------------------------------------ wsgi.errors */

typedef struct {
    PyObject_HEAD
} ErrorsObject;

#define ERRBUF_MAX 65536

static void errbuf_append(struct py_thread *t, const char *s, size_t n)
{
    if (!t) {
        /* a thread the app started itself: no buffer, write as is */
        wharf_log_raw(s, n);
        return;
    }
    while (n > 0) {
        const char *nl = memrchr(s, '\n', n);
        if (nl) {
            /* everything up to the last newline goes out now, with what
             * was buffered, in one write */
            size_t upto = (size_t)(nl - s) + 1;
            if (t->errlen == 0) {
                wharf_log_raw(s, upto);
            } else {
                size_t need = t->errlen + upto;
                if (need > t->errcap) {
                    char *nb = realloc(t->errbuf, need);
                    if (!nb) {
                        wharf_log_raw(t->errbuf, t->errlen);
                        t->errlen = 0;
                        wharf_log_raw(s, upto);
                        goto rest;
                    }
                    t->errbuf = nb;
                    t->errcap = need;
                }
                memcpy(t->errbuf + t->errlen, s, upto);
                wharf_log_raw(t->errbuf, need);
                t->errlen = 0;
            }
        rest:
            s += upto;
            n -= upto;
            continue;
        }
        /* a partial line: keep it, unless it grows past reason */
        if (t->errlen + n > ERRBUF_MAX) {
            if (t->errlen)
                wharf_log_raw(t->errbuf, t->errlen);
            t->errlen = 0;
            wharf_log_raw(s, n);
            return;
        }
        if (t->errlen + n > t->errcap) {
            size_t cap = t->errcap ? t->errcap : 256;
            while (cap < t->errlen + n)
                cap *= 2;
            char *nb = realloc(t->errbuf, cap);
            if (!nb) {
                wharf_log_raw(s, n);
                return;
            }
            t->errbuf = nb;
            t->errcap = cap;
        }
        memcpy(t->errbuf + t->errlen, s, n);
        t->errlen += n;
        return;
    }
}

void py_errors_flush_thread(struct py_thread *t)
{
    if (t && t->errlen) {
        wharf_log_raw(t->errbuf, t->errlen);
        t->errlen = 0;
    }
}

static PyObject *errors_write(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyUnicode_Check(arg))
        return PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s",
                            Py_TYPE(arg)->tp_name);
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
    PyObject *tmp = NULL;
    if (!s) {
        /* lone surrogates: show them rather than fail the app */
        PyErr_Clear();
        tmp = PyUnicode_AsEncodedString(arg, "utf-8", "backslashreplace");
        if (!tmp)
            return NULL;
        s = PyBytes_AS_STRING(tmp);
        n = PyBytes_GET_SIZE(tmp);
    }
    errbuf_append(py_thread_current(), s, (size_t)n);
    Py_XDECREF(tmp);
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

static PyObject *errors_writelines(PyObject *self, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq);
    if (!it)
        return NULL;
    PyObject *line;
    while ((line = PyIter_Next(it))) {
        PyObject *r = errors_write(self, line);
        Py_DECREF(line);
        if (!r) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *errors_flush(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    py_errors_flush_thread(py_thread_current());
    Py_RETURN_NONE;
}

static PyObject *errors_true(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_TRUE;
}

static PyObject *errors_false(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_FALSE;
}

static PyObject *errors_fileno(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLong(wharf_log_fd());
}

static PyMethodDef errors_methods[] = {
    { "write", errors_write, METH_O, "write(str): to the wharf log; whole lines at once" },
    { "writelines", errors_writelines, METH_O, "writelines(iterable of str)" },
    { "flush", errors_flush, METH_NOARGS, "write out a partial line" },
    { "writable", errors_true, METH_NOARGS, NULL },
    { "readable", errors_false, METH_NOARGS, NULL },
    { "seekable", errors_false, METH_NOARGS, NULL },
    { "isatty", errors_false, METH_NOARGS, NULL },
    { "fileno", errors_fileno, METH_NOARGS, "the log's file descriptor" },
    { NULL, NULL, 0, NULL }
};

PyTypeObject py_errors_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wharf.ErrorStream",
    .tp_basicsize = sizeof(ErrorsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.errors: text to the wharf log, line-buffered per thread",
    .tp_methods = errors_methods,
};

/* ------------------------------------------------------------ wsgi.file_wrapper */

typedef struct {
    PyObject_HEAD
    PyObject *filelike;
    Py_ssize_t blksize;
} FileWrapperObject;

static int fw_init(PyObject *self, PyObject *args, PyObject *kw)
{
    FileWrapperObject *fw = (FileWrapperObject *)self;
    static char *kwlist[] = { "filelike", "blksize", NULL };
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|n:FileWrapper", kwlist, &filelike, &blksize))
        return -1;
    if (blksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "blksize must be positive");
        return -1;
    }
    Py_INCREF(filelike);
    Py_XSETREF(fw->filelike, filelike);
    fw->blksize = blksize;
    return 0;
}

/* The wrapped object is the app's: it may refer back to the wrapper, so
 * the type takes part in garbage collection. */
static int fw_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((FileWrapperObject *)self)->filelike);
    return 0;
}

static int fw_clear(PyObject *self)
{
    Py_CLEAR(((FileWrapperObject *)self)->filelike);
    return 0;
}

static void fw_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    fw_clear(self);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *fw_iternext(PyObject *self)
{
    FileWrapperObject *fw = (FileWrapperObject *)self;
    if (!fw->filelike)
        return NULL;
    PyObject *data = PyObject_CallMethod(fw->filelike, "read", "n", fw->blksize);
    if (!data)
        return NULL;
    if (PyBytes_Check(data) && PyBytes_GET_SIZE(data) == 0) {
        Py_DECREF(data);
        return NULL; /* StopIteration */
    }
    return data;
}

static PyObject *fw_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    FileWrapperObject *fw = (FileWrapperObject *)self;
    if (fw->filelike) {
        PyObject *close = PyObject_GetAttrString(fw->filelike, "close");
        if (!close) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return NULL;
            PyErr_Clear();
        } else {
            PyObject *r = PyObject_CallNoArgs(close);
            Py_DECREF(close);
            if (!r)
                return NULL;
            Py_DECREF(r);
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef fw_methods[] = {
    { "close", fw_close, METH_NOARGS, "close the wrapped file" },
    { NULL, NULL, 0, NULL }
};

static PyMemberDef fw_members[] = {
    { "filelike", T_OBJECT, offsetof(FileWrapperObject, filelike), READONLY, NULL },
    { "blksize", T_PYSSIZET, offsetof(FileWrapperObject, blksize), READONLY, NULL },
    { NULL, 0, 0, 0, NULL }
};

PyTypeObject py_filewrapper_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wharf.FileWrapper",
    .tp_basicsize = sizeof(FileWrapperObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "wsgi.file_wrapper(filelike, blksize=8192): a regular file is sent with sendfile(2)",
    .tp_traverse = fw_traverse,
    .tp_clear = fw_clear,
    .tp_init = fw_init,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = fw_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = fw_iternext,
    .tp_methods = fw_methods,
    .tp_members = fw_members,
};

PyObject *py_filewrapper_filelike(PyObject *o)
{
    return ((FileWrapperObject *)o)->filelike;
}

Py_ssize_t py_filewrapper_blksize(PyObject *o)
{
    return ((FileWrapperObject *)o)->blksize;
}

/* ------------------------------------------------------------ wharf.LazyVar */

typedef struct {
    PyObject_HEAD
    struct wharf_request *r;        /* NULL once the request is over */
    const struct wharf_lazy_var_ops *ops;
    void *data;
    PyObject *name;
    PyObject *value;                /* NULL: not loaded; None: no value */
    int busy;                       /* callbacks running (GIL released) */
} LazyVarObject;

PyObject *py_lazyvar_new(struct wharf_request *r, const char *name,
                         const struct wharf_lazy_var_ops *ops, void *data)
{
    LazyVarObject *v = PyObject_New(LazyVarObject, &py_lazyvar_type);
    if (!v)
        return NULL;
    v->r = r;
    v->ops = ops;
    v->data = data;
    v->value = NULL;
    v->busy = 0;
    v->name = PyUnicode_DecodeLatin1(name, (Py_ssize_t)strlen(name), NULL);
    if (!v->name) {
        Py_DECREF(v);
        return NULL;
    }
    return (PyObject *)v;
}

void py_lazyvar_detach(PyObject *o)
{
    LazyVarObject *v = (LazyVarObject *)o;
    py_wait_idle(&v->busy);
    v->r = NULL;
}

static void lv_dealloc(PyObject *self)
{
    LazyVarObject *v = (LazyVarObject *)self;
    Py_CLEAR(v->name);
    Py_CLEAR(v->value);
    PyObject_Free(self);
}

static bool lv_live(LazyVarObject *v)
{
    if (v->r)
        return true;
    PyErr_Format(PyExc_RuntimeError, "wharf.%U is used after its request ended", v->name);
    return false;
}

static PyObject *lv_load(PyObject *self, PyObject *unused)
{
    (void)unused;
    LazyVarObject *v = (LazyVarObject *)self;
    if (!lv_live(v))
        return NULL;
    if (!v->value) {
        const char *val = NULL;
        size_t len = 0;
        int rc = 1;
        if (v->ops->load) {
            struct wharf_request *r = v->r;
            v->busy++;
            Py_BEGIN_ALLOW_THREADS
            rc = v->ops->load(r, v->data, &val, &len);
            Py_END_ALLOW_THREADS
            v->busy--;
        }
        if (rc == 0)
            v->value = PyBytes_FromStringAndSize(val ? val : "", (Py_ssize_t)(val ? len : 0));
        else
            v->value = Py_NewRef(Py_None); /* none yet, or the backend failed */
        if (!v->value)
            return NULL;
    }
    return Py_NewRef(v->value);
}

static PyObject *lv_do_store(LazyVarObject *v, const char *val, size_t len, unsigned flags)
{
    int rc = -1;
    if (v->ops->store) {
        struct wharf_request *r = v->r;
        v->busy++;
        Py_BEGIN_ALLOW_THREADS
        rc = v->ops->store(r, v->data, val, len, flags);
        Py_END_ALLOW_THREADS
        v->busy--;
    }
    return PyBool_FromLong(rc == 0);
}

static PyObject *lv_store(PyObject *self, PyObject *arg)
{
    LazyVarObject *v = (LazyVarObject *)self;
    if (!lv_live(v))
        return NULL;
    if (!PyBytes_Check(arg))
        return PyErr_Format(PyExc_TypeError, "store() takes bytes, not %.100s", Py_TYPE(arg)->tp_name);
    PyObject *r = lv_do_store(v, PyBytes_AS_STRING(arg), (size_t)PyBytes_GET_SIZE(arg), 0);
    if (r == Py_True)
        Py_XSETREF(v->value, Py_NewRef(arg));
    return r;
}

static PyObject *lv_delete(PyObject *self, PyObject *unused)
{
    (void)unused;
    LazyVarObject *v = (LazyVarObject *)self;
    if (!lv_live(v))
        return NULL;
    PyObject *r = lv_do_store(v, NULL, 0, WHARF_VAR_DELETE);
    if (r == Py_True)
        Py_XSETREF(v->value, Py_NewRef(Py_None));
    return r;
}

static PyObject *lv_regenerate(PyObject *self, PyObject *unused)
{
    (void)unused;
    LazyVarObject *v = (LazyVarObject *)self;
    if (!lv_live(v))
        return NULL;
    /* the same value under a new id: pass what we know of the value */
    const char *val = NULL;
    size_t len = 0;
    PyObject *held = v->value && PyBytes_Check(v->value) ? Py_NewRef(v->value) : NULL;
    if (held) {
        val = PyBytes_AS_STRING(held);
        len = (size_t)PyBytes_GET_SIZE(held);
    }
    /* held: another thread may store() while the GIL is released */
    PyObject *r = lv_do_store(v, val, len, WHARF_VAR_REGENERATE);
    Py_XDECREF(held);
    return r;
}

static PyObject *lv_repr(PyObject *self)
{
    LazyVarObject *v = (LazyVarObject *)self;
    return PyUnicode_FromFormat("<wharf.LazyVar %U%s>", v->name,
                                !v->r ? " (request ended)" : v->value ? " loaded" : "");
}

static PyMethodDef lv_methods[] = {
    { "load", lv_load, METH_NOARGS, "the value as bytes, or None when there is none (loaded once)" },
    { "store", lv_store, METH_O, "store(bytes): save a new value; True when saved" },
    { "delete", lv_delete, METH_NOARGS, "drop the value (e.g. logout); True when done" },
    { "regenerate", lv_regenerate, METH_NOARGS, "keep the value under a new id; True when done" },
    { NULL, NULL, 0, NULL }
};

static PyMemberDef lv_members[] = {
    { "name", T_OBJECT, offsetof(LazyVarObject, name), READONLY, "the variable's name" },
    { NULL, 0, 0, 0, NULL }
};

PyTypeObject py_lazyvar_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wharf.LazyVar",
    .tp_basicsize = sizeof(LazyVarObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a request variable loaded on first use (e.g. a session)",
    .tp_dealloc = lv_dealloc,
    .tp_repr = lv_repr,
    .tp_methods = lv_methods,
    .tp_members = lv_members,
};

/* ------------------------------------------------------------ module */

static struct PyModuleDef wharf_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wharf",
    .m_doc = "The wharf application server, seen from the app.",
    .m_size = -1,
};

PyObject *py_wharf_module_init(void)
{
    if (PyType_Ready(&py_errors_type) < 0 || PyType_Ready(&py_filewrapper_type) < 0 ||
        PyType_Ready(&py_lazyvar_type) < 0 || PyType_Ready(&py_input_type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&wharf_module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "ErrorStream", (PyObject *)&py_errors_type) < 0 ||
        PyModule_AddObjectRef(m, "FileWrapper", (PyObject *)&py_filewrapper_type) < 0 ||
        PyModule_AddObjectRef(m, "LazyVar", (PyObject *)&py_lazyvar_type) < 0 ||
        PyModule_AddObjectRef(m, "InputStream", (PyObject *)&py_input_type) < 0 ||
        PyModule_AddStringConstant(m, "python_version", PY_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

int py_objects_ready(void)
{
    PyObject *m = PyImport_ImportModule("wharf");
    if (!m)
        return -1;
    Py_DECREF(m);
    py_errors = PyObject_New(PyObject, &py_errors_type);
    return py_errors ? 0 : -1;
}
