/*
 * plugins/python/input.c - wsgi.input: the request body, streamed through
 * wharf_request_read() (already de-chunked by the transport) with the GIL
 * released while it blocks.
 *
 * read(n) returns n bytes unless the body ends first (like a buffered
 * file: parsers such as werkzeug's multipart rely on it), read() / read(-1)
 * / read(None) the rest.  readline() keeps the bytes it read past the line
 * in a small buffer that read() drains first.  Nothing is ever read past
 * the end of the body: the transport reports 0 there, and with a known
 * Content-Length we do not even ask.  wsgi.input_terminated is True, so
 * apps may read to EOF on chunked bodies.
 */
#include "pyplugin.h"

#include <stdlib.h>
#include <string.h>

#define LINEBUF_SIZE 65536
#define READALL_FIRST 65536          /* first allocation of read() on chunked bodies */
#define READALL_KNOWN_MAX (64 << 20) /* trust Content-Length up to this for one allocation */

typedef struct {
    PyObject_HEAD
    struct wharf_request *r;   /* NULL once the request is over */
    int64_t remaining;         /* body bytes not read from the transport; -1 unknown */
    bool eof;
    bool failed;               /* the transport refused or lost the body */
    int busy;                  /* reads blocked in I/O (GIL released) */
    char *buf;                 /* readline look-ahead */
    size_t pos, len;
} InputObject;

PyObject *py_input_for(struct py_thread *t, struct wharf_request *r)
{
    InputObject *in = (InputObject *)t->input;
    if (!in || Py_REFCNT(in) != 1) {
        /* the app kept the previous one: leave it to the app */
        in = PyObject_New(InputObject, &py_input_type);
        if (!in)
            return NULL;
        in->buf = NULL;
        in->busy = 0;
        Py_XSETREF(t->input, (PyObject *)in);
    }
    in->r = r;
    in->remaining = r->content_length;
    in->eof = r->content_length == 0;
    in->failed = false; /* the object is reused: a past request's failure is not this one's */
    in->pos = in->len = 0;
    return Py_NewRef((PyObject *)in);
}

void py_input_detach(PyObject *o)
{
    InputObject *in = (InputObject *)o;
    py_wait_idle(&in->busy);
    in->r = NULL;
    in->pos = in->len = 0;
}

static void input_dealloc(PyObject *self)
{
    InputObject *in = (InputObject *)self;
    PyMem_Free(in->buf);
    PyObject_Free(self);
}

static bool input_live(InputObject *in)
{
    if (in->r)
        return true;
    PyErr_SetString(PyExc_ValueError, "wsgi.input is used after its request ended");
    return false;
}

/* Read up to n bytes from the transport into dst.  Returns the count, 0 at
 * the end of the body, -1 with an exception set. */
static Py_ssize_t raw_read(InputObject *in, char *dst, size_t n)
{
    if (in->eof || n == 0)
        return 0;
    if (in->remaining >= 0 && (int64_t)n > in->remaining)
        n = (size_t)in->remaining;
    struct wharf_request *r = in->r;
    ssize_t got;
    in->busy++;
    Py_BEGIN_ALLOW_THREADS
    got = wharf_request_read(r, dst, n);
    Py_END_ALLOW_THREADS
    in->busy--;
    if (got < 0) {
        in->eof = true;
        in->failed = true;
        PyErr_SetString(PyExc_OSError,
                        "cannot read the request body: it was malformed or too large, or the client went away or timed out");
        return -1;
    }
    if (got == 0) {
        in->eof = true;
        return 0;
    }
    if (in->remaining >= 0) {
        in->remaining -= got;
        if (in->remaining == 0)
            in->eof = true;
    }
    return got;
}

/* Up to `limit` bytes (-1: everything), buffered bytes first. */
static PyObject *read_upto(InputObject *in, Py_ssize_t limit)
{
    size_t buffered = in->len - in->pos;
    size_t cap;
    if (in->remaining >= 0) {
        uint64_t avail = buffered + (uint64_t)in->remaining;
        if (avail > READALL_KNOWN_MAX)
            avail = READALL_KNOWN_MAX;
        cap = limit >= 0 && (uint64_t)limit < avail ? (size_t)limit : (size_t)avail;
    } else {
        size_t first = buffered > READALL_FIRST ? buffered : READALL_FIRST;
        cap = limit >= 0 && (size_t)limit < first ? (size_t)limit : first;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
    if (!out)
        return NULL;
    size_t got = 0;
    if (buffered) {
        size_t take = buffered < cap ? buffered : cap;
        memcpy(PyBytes_AS_STRING(out), in->buf + in->pos, take);
        in->pos += take;
        got = take;
    }
    for (;;) {
        if (limit >= 0 && got >= (size_t)limit)
            break;
        if (in->eof)
            break;
        if (got == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (limit >= 0 && ncap > (size_t)limit)
                ncap = (size_t)limit;
            if (in->remaining >= 0 && ncap > got + (uint64_t)in->remaining)
                ncap = got + (size_t)in->remaining;
            if (_PyBytes_Resize(&out, (Py_ssize_t)ncap) < 0)
                return NULL;
            cap = ncap;
        }
        Py_ssize_t n = raw_read(in, PyBytes_AS_STRING(out) + got, cap - got);
        if (n < 0) {
            Py_DECREF(out);
            return NULL;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != cap && _PyBytes_Resize(&out, (Py_ssize_t)got) < 0)
        return NULL;
    return out;
}

/* size argument: int, None or absent -> -1 */
static int size_arg(PyObject *const *args, Py_ssize_t nargs, const char *fn, Py_ssize_t *out)
{
    *out = -1;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", fn, nargs);
        return -1;
    }
    if (nargs == 0 || args[0] == Py_None)
        return 0;
    if (!PyLong_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s() argument must be int or None, not %.100s", fn,
                     Py_TYPE(args[0])->tp_name);
        return -1;
    }
    *out = PyLong_AsSsize_t(args[0]);
    if (*out == -1 && PyErr_Occurred())
        return -1;
    if (*out < 0)
        *out = -1;
    return 0;
}

static PyObject *input_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    InputObject *in = (InputObject *)self;
    Py_ssize_t size;
    if (size_arg(args, nargs, "read", &size) < 0 || !input_live(in))
        return NULL;
    return read_upto(in, size);
}

/* Refill the look-ahead buffer (it is empty).  Count, 0 at EOF, -1. */
static Py_ssize_t fill(InputObject *in)
{
    if (!in->buf) {
        in->buf = PyMem_Malloc(LINEBUF_SIZE);
        if (!in->buf) {
            PyErr_NoMemory();
            return -1;
        }
    }
    in->pos = in->len = 0;
    Py_ssize_t n = raw_read(in, in->buf, LINEBUF_SIZE);
    if (n > 0)
        in->len = (size_t)n;
    return n;
}

static PyObject *readline_impl(InputObject *in, Py_ssize_t limit)
{
    /* fast path: the whole line is in the buffer */
    PyObject *acc = NULL; /* bytearray when a line spans refills */
    for (;;) {
        if (in->pos == in->len) {
            Py_ssize_t n = fill(in);
            if (n < 0) {
                Py_XDECREF(acc);
                return NULL;
            }
            if (n == 0)
                break;
        }
        size_t have = in->len - in->pos;
        size_t accn = acc ? (size_t)PyByteArray_GET_SIZE(acc) : 0;
        if (limit >= 0 && accn + have > (size_t)limit)
            have = (size_t)limit - accn;
        const char *start = in->buf + in->pos;
        const char *nl = memchr(start, '\n', have);
        size_t take = nl ? (size_t)(nl - start) + 1 : have;
        bool done = nl || (limit >= 0 && accn + take >= (size_t)limit);
        if (!acc && done) {
            in->pos += take;
            return PyBytes_FromStringAndSize(start, (Py_ssize_t)take);
        }
        if (!acc) {
            acc = PyByteArray_FromStringAndSize(start, (Py_ssize_t)take);
            if (!acc)
                return NULL;
        } else if (PyByteArray_Resize(acc, (Py_ssize_t)(accn + take)) < 0) {
            Py_DECREF(acc);
            return NULL;
        } else {
            memcpy(PyByteArray_AS_STRING(acc) + accn, start, take);
        }
        in->pos += take;
        if (done)
            break;
    }
    if (!acc)
        return PyBytes_FromStringAndSize(NULL, 0);
    PyObject *out = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(acc), PyByteArray_GET_SIZE(acc));
    Py_DECREF(acc);
    return out;
}

static PyObject *input_readline(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    InputObject *in = (InputObject *)self;
    Py_ssize_t size;
    if (size_arg(args, nargs, "readline", &size) < 0 || !input_live(in))
        return NULL;
    if (size == 0)
        return PyBytes_FromStringAndSize(NULL, 0);
    return readline_impl(in, size);
}

static PyObject *input_readlines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    InputObject *in = (InputObject *)self;
    Py_ssize_t hint;
    if (size_arg(args, nargs, "readlines", &hint) < 0 || !input_live(in))
        return NULL;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    Py_ssize_t total = 0;
    for (;;) {
        PyObject *line = readline_impl(in, -1);
        if (!line) {
            Py_DECREF(list);
            return NULL;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        if (n == 0) {
            Py_DECREF(line);
            break;
        }
        int rc = PyList_Append(list, line);
        Py_DECREF(line);
        if (rc < 0) {
            Py_DECREF(list);
            return NULL;
        }
        total += n;
        if (hint > 0 && total >= hint)
            break;
    }
    return list;
}

static PyObject *input_iternext(PyObject *self)
{
    InputObject *in = (InputObject *)self;
    if (!input_live(in))
        return NULL;
    PyObject *line = readline_impl(in, -1);
    if (line && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return NULL; /* StopIteration */
    }
    return line;
}

static PyObject *input_true(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_TRUE;
}

static PyObject *input_false(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_FALSE;
}

static PyObject *input_close(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_NONE; /* the server owns the body; nothing to close */
}

static PyMethodDef input_methods[] = {
    { "read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL,
      "read(size=-1): up to size bytes of the body (all of it by default)" },
    { "readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
      "readline(size=-1): one line, at most size bytes" },
    { "readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
      "readlines(hint=-1): the remaining lines" },
    { "readable", input_true, METH_NOARGS, NULL },
    { "writable", input_false, METH_NOARGS, NULL },
    { "seekable", input_false, METH_NOARGS, NULL },
    { "close", input_close, METH_NOARGS, NULL },
    { NULL, NULL, 0, NULL }
};

PyTypeObject py_input_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wharf.InputStream",
    .tp_basicsize = sizeof(InputObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body, streamed",
    .tp_dealloc = input_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = input_iternext,
    .tp_methods = input_methods,
};

bool py_input_failed(PyObject *input)
{
    return input && ((InputObject *)input)->failed;
}
