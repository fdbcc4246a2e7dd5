/*
 * plugins/python/wsgi.c - one WSGI request (PEP 3333), the hot path.
 *
 * environ: each app has a template dict holding the constant items
 * (wsgi.version, wsgi.errors, wsgi.file_wrapper, SCRIPT_NAME, ...) and a
 * placeholder for every per-request CGI key, presized so that the copy
 * (PyDict_Copy, a memcpy of the key table) has room for the request's
 * headers without growing.  Keys are interned once; header names map to
 * HTTP_* keys through a cache, so a request allocates only its values.
 *
 * start_response and write are small C callables (vectorcall, no argument
 * tuples), reused by the thread for the next request unless the app kept
 * a reference.  start_response validates the status and headers (TypeError
 * or ValueError raised into the app) and hands them to the core; the head
 * goes out with the first non-empty body chunk or at the end (PEP 3333).
 * A list or tuple result gets a Content-Length and goes out in one
 * writev(); a wsgi.file_wrapper around a regular file goes out with
 * sendfile(); anything else is iterated, one write per chunk.  The GIL is
 * released around every core call that may block.
 *
 * Errors: an exception before anything was sent becomes a 500 with the
 * traceback in the log; after the head was sent the connection is cut
 * (WHARF_ERROR).  close() of the result is always called.  SystemExit and
 * KeyboardInterrupt are app errors like any other: the worker goes on.
 */
#include "pyplugin.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef WHARF_VERSION
#define WHARF_VERSION "0"
#endif

/* The request being answered, on the C stack of py_wsgi_run(). */
struct py_req {
    struct wharf_request *r;
    struct py_tail *tail;    /* NULL: send everything now */
    PyObject *headers;       /* the list given to start_response */
    PyObject *write;         /* the write callable */
    int status;
    bool started;            /* start_response() succeeded */
    bool client_gone;
    bool overflow_logged;
    int busy;                /* write() calls blocked in I/O (GIL released) */
};

/* ------------------------------------------------------------ interned strings */

static PyObject *k_REQUEST_METHOD, *k_SCRIPT_NAME, *k_PATH_INFO, *k_QUERY_STRING, *k_REQUEST_URI,
    *k_SERVER_NAME, *k_SERVER_PORT, *k_SERVER_PROTOCOL, *k_REMOTE_ADDR, *k_REMOTE_PORT,
    *k_CONTENT_TYPE, *k_CONTENT_LENGTH, *k_HTTP_X_REQUEST_ID, *k_wsgi_version, *k_wsgi_url_scheme,
    *k_wsgi_input, *k_wsgi_errors, *k_wsgi_multithread, *k_wsgi_multiprocess, *k_wsgi_run_once,
    *k_wsgi_input_terminated, *k_wsgi_file_wrapper, *k_SERVER_SOFTWARE;
static PyObject *s_close, *s_http, *s_https, *s_http11, *s_http10, *s_empty, *s_comma, *s_semicolon;
static PyObject *wsgi_version;

static struct {
    const char *name;
    size_t len;
    PyObject *obj;
} methods[] = {
    { "GET", 3, NULL }, { "POST", 4, NULL }, { "HEAD", 4, NULL }, { "PUT", 3, NULL },
    { "DELETE", 6, NULL }, { "PATCH", 5, NULL }, { "OPTIONS", 7, NULL },
};

static PyTypeObject sr_type, write_type;
static void tchar_init(void);

static PyObject *intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

int py_wsgi_init(void)
{
    struct {
        PyObject **slot;
        const char *s;
    } keys[] = {
        { &k_REQUEST_METHOD, "REQUEST_METHOD" }, { &k_SCRIPT_NAME, "SCRIPT_NAME" },
        { &k_PATH_INFO, "PATH_INFO" }, { &k_QUERY_STRING, "QUERY_STRING" },
        { &k_REQUEST_URI, "REQUEST_URI" }, { &k_SERVER_NAME, "SERVER_NAME" },
        { &k_SERVER_PORT, "SERVER_PORT" }, { &k_SERVER_PROTOCOL, "SERVER_PROTOCOL" },
        { &k_REMOTE_ADDR, "REMOTE_ADDR" }, { &k_REMOTE_PORT, "REMOTE_PORT" },
        { &k_CONTENT_TYPE, "CONTENT_TYPE" }, { &k_CONTENT_LENGTH, "CONTENT_LENGTH" },
        { &k_HTTP_X_REQUEST_ID, "HTTP_X_REQUEST_ID" }, { &k_wsgi_version, "wsgi.version" },
        { &k_wsgi_url_scheme, "wsgi.url_scheme" }, { &k_wsgi_input, "wsgi.input" },
        { &k_wsgi_errors, "wsgi.errors" }, { &k_wsgi_multithread, "wsgi.multithread" },
        { &k_wsgi_multiprocess, "wsgi.multiprocess" }, { &k_wsgi_run_once, "wsgi.run_once" },
        { &k_wsgi_input_terminated, "wsgi.input_terminated" },
        { &k_wsgi_file_wrapper, "wsgi.file_wrapper" }, { &k_SERVER_SOFTWARE, "SERVER_SOFTWARE" }, { &s_close, "close" }, { &s_http, "http" },
        { &s_https, "https" }, { &s_http11, "HTTP/1.1" }, { &s_http10, "HTTP/1.0" }, { &s_empty, "" },
        { &s_comma, "," }, { &s_semicolon, "; " },
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!(*keys[i].slot = intern(keys[i].s)))
            return -1;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!(methods[i].obj = intern(methods[i].name)))
            return -1;
    wsgi_version = Py_BuildValue("(ii)", 1, 0);
    if (!wsgi_version || PyType_Ready(&sr_type) < 0 || PyType_Ready(&write_type) < 0)
        return -1;
    tchar_init();
    return 0;
}

/* ------------------------------------------------------------ header names */

/* HTTP_* keys by header name, case-insensitive, filled as names are met
 * (bounded: a client inventing names only costs itself an allocation). */
enum hkind { HK_HTTP, HK_SKIP, HK_CONTENT_TYPE, HK_CONTENT_LENGTH, HK_COOKIE, HK_REQUEST_ID };

struct hkey {
    char name[56]; /* lower case */
    unsigned char len;
    unsigned char kind;
    PyObject *key;
};

#define HCACHE_SIZE 512
#define HCACHE_MAX 384
static struct hkey hcache[HCACHE_SIZE];
static unsigned hcache_used;

static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

static uint32_t hname_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ lower((unsigned char)s[i])) * 16777619u;
    return h;
}

/* Build the environ key for a header name.  Header names with '_' are
 * skipped (as gunicorn and nginx do): "X_Forwarded_For" must not pass for
 * "X-Forwarded-For". */
static enum hkind hname_make(const char *name, size_t n, PyObject **key)
{
    *key = NULL;
    if (memchr(name, '_', n))
        return HK_SKIP;
    char low[64];
    if (n < sizeof low) {
        for (size_t i = 0; i < n; i++)
            low[i] = (char)lower((unsigned char)name[i]);
        if (n == 12 && memcmp(low, "content-type", 12) == 0) {
            *key = Py_NewRef(k_CONTENT_TYPE);
            return HK_CONTENT_TYPE;
        }
        if (n == 14 && memcmp(low, "content-length", 14) == 0) {
            *key = Py_NewRef(k_CONTENT_LENGTH);
            return HK_CONTENT_LENGTH;
        }
    }
    PyObject *k = PyUnicode_New((Py_ssize_t)n + 5, 127);
    if (!k)
        return HK_HTTP;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(k);
    memcpy(d, "HTTP_", 5);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        /* the http plugin only lets token characters through; anything
         * else would make a non-ASCII key, so map it out */
        d[5 + i] = c == '-' ? '_' : c >= 'a' && c <= 'z' ? (Py_UCS1)(c - 32) : c < 128 ? c : '_';
    }
    PyUnicode_InternInPlace(&k);
    *key = k;
    if (n == 6 && strncasecmp(name, "cookie", 6) == 0)
        return HK_COOKIE;
    if (n == 12 && strncasecmp(name, "x-request-id", 12) == 0)
        return HK_REQUEST_ID;
    return HK_HTTP;
}

/* The key for a header name: borrowed from the cache, or new (*owned). */
static enum hkind hname_key(const char *name, size_t n, PyObject **key, bool *owned)
{
    *owned = false;
    *key = NULL;
    if (n < sizeof hcache[0].name) {
        uint32_t h = hname_hash(name, n);
        for (unsigned probe = 0; probe < HCACHE_SIZE; probe++) {
            struct hkey *e = &hcache[(h + probe) & (HCACHE_SIZE - 1)];
            if (e->len == 0 && !e->key) {
                if (hcache_used >= HCACHE_MAX)
                    break;
                enum hkind kind = hname_make(name, n, &e->key);
                if (kind != HK_SKIP && !e->key)
                    return kind; /* MemoryError set */
                for (size_t i = 0; i < n; i++)
                    e->name[i] = (char)lower((unsigned char)name[i]);
                e->len = (unsigned char)n;
                e->kind = (unsigned char)kind;
                hcache_used++;
                *key = e->key;
                return kind;
            }
            if (e->len == n) {
                size_t i = 0;
                while (i < n && e->name[i] == (char)lower((unsigned char)name[i]))
                    i++;
                if (i == n) {
                    *key = e->key;
                    return (enum hkind)e->kind;
                }
            }
        }
    }
    enum hkind kind = hname_make(name, n, key);
    *owned = *key != NULL;
    return kind;
}

/* "wharf.<name>" keys of request variables, cached the same way. */
static struct {
    char name[48];
    PyObject *key;
} vkeys[32];

static PyObject *var_key(const char *name, bool *owned)
{
    size_t n = strlen(name);
    *owned = false;
    if (n < sizeof vkeys[0].name)
        for (size_t i = 0; i < sizeof vkeys / sizeof vkeys[0]; i++) {
            if (!vkeys[i].key) {
                PyObject *k = PyUnicode_FromFormat("wharf.%s", name);
                if (!k)
                    return NULL;
                PyUnicode_InternInPlace(&k);
                memcpy(vkeys[i].name, name, n + 1);
                vkeys[i].key = k;
                return k;
            }
            if (strcmp(vkeys[i].name, name) == 0)
                return vkeys[i].key;
        }
    *owned = true;
    return PyUnicode_FromFormat("wharf.%s", name);
}

/* ------------------------------------------------------------ environ */

PyObject *py_environ_template(struct py_app *a)
{
    /* presized: the per-request copy keeps this table size (64 slots, 42
     * usable), so adding a request's headers rarely grows it */
    PyObject *d = _PyDict_NewPresized(40);
    if (!d)
        return NULL;
    PyObject *per_request[] = { k_REQUEST_METHOD, k_PATH_INFO, k_QUERY_STRING, k_REQUEST_URI,
                                k_SERVER_NAME, k_SERVER_PORT, k_SERVER_PROTOCOL, k_REMOTE_ADDR,
                                k_REMOTE_PORT, k_wsgi_url_scheme, k_wsgi_input };
    for (size_t i = 0; i < sizeof per_request / sizeof per_request[0]; i++)
        if (PyDict_SetItem(d, per_request[i], Py_None) < 0)
            goto fail;
    PyObject *script = PyUnicode_DecodeLatin1(a->mountpoint, (Py_ssize_t)a->mount_len, NULL);
    if (!script || PyDict_SetItem(d, k_SCRIPT_NAME, script) < 0) {
        Py_XDECREF(script);
        goto fail;
    }
    Py_DECREF(script);
    PyObject *software = PyUnicode_FromString("wharf/" WHARF_VERSION);
    if (!software || PyDict_SetItem(d, k_SERVER_SOFTWARE, software) < 0) {
        Py_XDECREF(software);
        goto fail;
    }
    Py_DECREF(software);
    if (PyDict_SetItem(d, k_wsgi_version, wsgi_version) < 0 ||
        PyDict_SetItem(d, k_wsgi_errors, py_errors) < 0 ||
        PyDict_SetItem(d, k_wsgi_multithread, py_g.threads > 1 ? Py_True : Py_False) < 0 ||
        PyDict_SetItem(d, k_wsgi_multiprocess, py_g.processes > 1 ? Py_True : Py_False) < 0 ||
        PyDict_SetItem(d, k_wsgi_run_once, Py_False) < 0 ||
        PyDict_SetItem(d, k_wsgi_input_terminated, Py_True) < 0 ||
        PyDict_SetItem(d, k_wsgi_file_wrapper, (PyObject *)&py_filewrapper_type) < 0)
        goto fail;
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

static inline int set_new(PyObject *d, PyObject *k, PyObject *v)
{
    if (!v)
        return -1;
    int rc = PyDict_SetItem(d, k, v);
    Py_DECREF(v);
    return rc;
}

static inline PyObject *latin1(const char *s, size_t n)
{
    return PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL);
}

/* A string that repeats from request to request (server name, client
 * address): the thread's last object when the text is the same.  New
 * reference. */
static PyObject *cached_str(PyObject **obj, char *c, size_t csize, const char *s)
{
    if (!s)
        s = "";
    if (*obj && strcmp(c, s) == 0)
        return Py_NewRef(*obj);
    size_t n = strlen(s);
    PyObject *o = latin1(s, n);
    if (o && n < csize) {
        memcpy(c, s, n + 1);
        Py_XSETREF(*obj, Py_NewRef(o));
    }
    return o;
}

/* The same for a port number, as text.  New reference. */
static PyObject *cached_port(PyObject **obj, unsigned *last, unsigned port)
{
    if (*obj && *last == port)
        return Py_NewRef(*obj);
    /* REMOTE_PORT changes with every connection: digits by hand, not
     * snprintf (4% of a hello-world request) */
    char buf[16];
    size_t i = sizeof buf;
    unsigned v = port;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    PyObject *o = PyUnicode_FromStringAndSize(buf + i, (Py_ssize_t)(sizeof buf - i));
    if (!o)
        return NULL;
    Py_XSETREF(*obj, Py_NewRef(o));
    *last = port;
    return o;
}

static int set_headers(PyObject *env, struct wharf_request *r)
{
    bool saw_request_id = false;
    for (size_t i = 0; i < r->header_count; i++) {
        const struct wharf_header *h = &r->headers[i];
        PyObject *key;
        bool owned;
        enum hkind kind = hname_key(h->name, h->name_len, &key, &owned);
        if (kind == HK_SKIP)
            continue;
        if (!key)
            return -1;
        PyObject *val = latin1(h->value, h->value_len);
        if (!val) {
            if (owned)
                Py_DECREF(key);
            return -1;
        }
        if (kind == HK_REQUEST_ID)
            saw_request_id = true;
        PyObject *old = PyDict_SetDefault(env, key, val); /* borrowed */
        int rc = old ? 0 : -1;
        if (old && old != val) {
            /* a repeated header: one value, comma-joined (RFC 9110 5.3);
             * cookies with "; " (RFC 6265 5.4) so they still parse */
            PyObject *sep = kind == HK_COOKIE ? s_semicolon : s_comma;
            PyObject *a = PyUnicode_Concat(old, sep);
            PyObject *b = a ? PyUnicode_Concat(a, val) : NULL;
            Py_XDECREF(a);
            rc = b ? set_new(env, key, b) : -1;
        }
        Py_DECREF(val);
        if (owned)
            Py_DECREF(key);
        if (rc < 0)
            return -1;
    }
    if (!saw_request_id && r->request_id)
        return set_new(env, k_HTTP_X_REQUEST_ID, latin1(r->request_id, strlen(r->request_id)));
    return 0;
}

static int set_vars(PyObject *env, struct wharf_request *r, PyObject **lazies)
{
    const char *name, *value;
    size_t vlen;
    const struct wharf_lazy_var_ops *ops;
    void *data;
    for (size_t i = 0; wharf_request_var_at(r, i, &name, &value, &vlen, &ops, &data); i++) {
        bool owned;
        PyObject *key = var_key(name, &owned);
        if (!key)
            return -1;
        PyObject *val;
        if (ops) {
            val = py_lazyvar_new(r, name, ops, data);
            if (val) {
                if (!*lazies)
                    *lazies = PyList_New(0);
                if (!*lazies || PyList_Append(*lazies, val) < 0)
                    Py_CLEAR(val);
            }
        } else {
            val = latin1(value ? value : "", value ? vlen : 0);
        }
        int rc = set_new(env, key, val);
        if (owned)
            Py_DECREF(key);
        if (rc < 0)
            return -1;
        /* uWSGI's basicauth sets the CGI REMOTE_USER, which apps (and
         * Django's RemoteUserMiddleware) read: give it under both names */
        if (!ops && value && strcmp(name, "REMOTE_USER") == 0) {
            PyObject *k = PyUnicode_InternFromString("REMOTE_USER");
            rc = k ? set_new(env, k, latin1(value, vlen)) : -1;
            Py_XDECREF(k);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static PyObject *build_environ(struct py_thread *t, struct py_app *app, struct wharf_request *r,
                               size_t script_len, PyObject *input, PyObject **lazies)
{
    PyObject *env = PyDict_Copy(app->environ);
    if (!env)
        return NULL;

    PyObject *method = NULL;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (r->method_len == methods[i].len && memcmp(r->method, methods[i].name, methods[i].len) == 0) {
            method = methods[i].obj;
            break;
        }
    if (method ? PyDict_SetItem(env, k_REQUEST_METHOD, method) < 0
               : set_new(env, k_REQUEST_METHOD, latin1(r->method, r->method_len)) < 0)
        goto fail;

    /* PATH_INFO: the percent-decoded path, bytes as latin-1 (PEP 3333) */
    const char *path = r->path ? r->path : "";
    size_t plen = r->path ? r->path_len : 0;
    if (script_len > plen)
        script_len = plen;
    PyObject *path_info = latin1(path + script_len, plen - script_len);
    if (!path_info)
        goto fail;
    if (PyDict_SetItem(env, k_PATH_INFO, path_info) < 0) {
        Py_DECREF(path_info);
        goto fail;
    }
    /* REQUEST_URI: the raw target; often the very same text */
    int rc;
    if (script_len == 0 && r->uri_len == plen && memcmp(r->uri, path, plen) == 0)
        rc = PyDict_SetItem(env, k_REQUEST_URI, path_info);
    else
        rc = set_new(env, k_REQUEST_URI, latin1(r->uri, r->uri_len));
    Py_DECREF(path_info);
    if (rc < 0)
        goto fail;
    if (r->query_len ? set_new(env, k_QUERY_STRING, latin1(r->query, r->query_len)) < 0
                     : PyDict_SetItem(env, k_QUERY_STRING, s_empty) < 0)
        goto fail;

    if (set_new(env, k_SERVER_NAME,
                cached_str(&t->server_name, t->server_name_c, sizeof t->server_name_c, r->server_name)) < 0 ||
        set_new(env, k_SERVER_PORT, cached_port(&t->server_port_obj, &t->server_port, r->server_port)) < 0)
        goto fail;
    PyObject *o;
    if (r->protocol && strcmp(r->protocol, "HTTP/1.1") == 0)
        o = s_http11;
    else if (r->protocol && strcmp(r->protocol, "HTTP/1.0") == 0)
        o = s_http10;
    else
        o = NULL;
    if (o ? PyDict_SetItem(env, k_SERVER_PROTOCOL, o) < 0
          : set_new(env, k_SERVER_PROTOCOL,
                    r->protocol ? latin1(r->protocol, strlen(r->protocol))
                                : Py_NewRef(r->version == 10 ? s_http10 : s_http11)) < 0)
        goto fail;
    if (set_new(env, k_REMOTE_ADDR,
                cached_str(&t->remote_addr, t->remote_addr_c, sizeof t->remote_addr_c, r->remote_addr)) < 0 ||
        set_new(env, k_REMOTE_PORT, cached_port(&t->remote_port_obj, &t->remote_port, r->remote_port)) < 0)
        goto fail;
    if (r->scheme && strcmp(r->scheme, "https") == 0)
        o = s_https;
    else if (!r->scheme || strcmp(r->scheme, "http") == 0)
        o = s_http;
    else
        o = NULL;
    if (o ? PyDict_SetItem(env, k_wsgi_url_scheme, o) < 0
          : set_new(env, k_wsgi_url_scheme, latin1(r->scheme, strlen(r->scheme))) < 0)
        goto fail;
    if (PyDict_SetItem(env, k_wsgi_input, input) < 0)
        goto fail;
    if (set_headers(env, r) < 0 || set_vars(env, r, lazies) < 0)
        goto fail;
    return env;
fail:
    Py_DECREF(env);
    return NULL;
}

/* ------------------------------------------------------------ sending */

static bool body_allowed(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* Send body bytes.  0, -1 with a Python exception, -2 when the client is
 * gone (no exception). */
static int send_iov(struct py_req *p, struct iovec *iov, int n)
{
    struct wharf_request *r = p->r;
    if (!p->started) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the app produced body data before calling start_response()");
        return -1;
    }
    if (p->client_gone)
        return -2;
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (r->response_length >= 0) {
        uint64_t cl = (uint64_t)r->response_length;
        uint64_t left = cl > r->bytes_sent ? cl - r->bytes_sent : 0;
        if (total > left) {
            if (!p->overflow_logged) {
                wharf_log(WHARF_LOG_WARN,
                          "%s %s: the app sent more than its Content-Length (%" PRIu64
                          "); the excess is dropped",
                          r->method, r->uri, cl);
                p->overflow_logged = true;
            }
            uint64_t keep = left;
            for (int i = 0; i < n; i++) {
                if (iov[i].iov_len > keep)
                    iov[i].iov_len = (size_t)keep;
                keep -= iov[i].iov_len;
            }
            total = left;
        }
    }
    if (total == 0)
        return 0;
    int rc;
    p->busy++;
    Py_BEGIN_ALLOW_THREADS
    rc = wharf_response_writev(r, iov, n);
    Py_END_ALLOW_THREADS
    p->busy--;
    if (rc < 0) {
        p->client_gone = true;
        return -2;
    }
    return 0;
}

static int add_content_length(struct wharf_request *r, uint64_t n)
{
    char buf[24];
    int len = snprintf(buf, sizeof buf, "%" PRIu64, n);
    return wharf_response_header(r, "Content-Length", 14, buf, (size_t)len);
}

static int not_bytes(PyObject *item)
{
    if (PyUnicode_Check(item))
        PyErr_SetString(PyExc_TypeError,
                        "the app produced str; a WSGI body is bytes (encode it, e.g. body.encode())");
    else
        PyErr_Format(PyExc_TypeError, "the app produced %.100s; a WSGI body is an iterable of bytes",
                     Py_TYPE(item)->tp_name);
    return -1;
}

#define IOV_BATCH 64
/* Bodies up to this size given as a list or tuple are sent after the GIL
 * is released (see struct py_tail). */
#define TAIL_MAX 16384

/* A list or tuple: the whole body is known, so it gets a Content-Length
 * (keep-alive without chunked encoding) and goes out in one writev. */
static int send_sequence(struct py_req *p, PyObject *seq)
{
    struct wharf_request *r = p->r;
    bool is_list = PyList_CheckExact(seq);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    uint64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i]))
            return not_bytes(items[i]);
        total += (uint64_t)PyBytes_GET_SIZE(items[i]);
    }
    if (total == 0)
        return 0;
    if (!p->started)
        return send_iov(p, NULL, 0); /* raises */
    if (!r->head_sent && r->response_length < 0 && body_allowed(p->status) &&
        add_content_length(r, total) < 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot set Content-Length");
        return -1;
    }
    if (p->tail && !r->head_sent && n <= IOV_BATCH && total <= TAIL_MAX && !p->client_gone) {
        /* small and complete: copy it and let the caller send it once the
         * GIL is released anyway (same bytes, same Content-Length cut) */
        uint64_t keep = total;
        if (r->response_length >= 0 && (uint64_t)r->response_length < keep) {
            wharf_log(WHARF_LOG_WARN,
                      "%s %s: the app sent more than its Content-Length (%" PRIu64
                      "); the excess is dropped",
                      r->method, r->uri, (uint64_t)r->response_length);
            p->overflow_logged = true;
            keep = (uint64_t)r->response_length;
        }
        char *buf = wharf_request_alloc(r, (size_t)keep + 1);
        size_t at = 0;
        for (Py_ssize_t k = 0; k < n && at < keep; k++) {
            size_t l = (size_t)PyBytes_GET_SIZE(items[k]);
            if (l > keep - at)
                l = (size_t)(keep - at);
            memcpy(buf + at, PyBytes_AS_STRING(items[k]), l);
            at += l;
        }
        p->tail->body = buf;
        p->tail->len = at;
        return 0;
    }
    struct iovec iov[IOV_BATCH];
    PyObject *held[IOV_BATCH];
    Py_ssize_t i = 0;
    while (i < PySequence_Fast_GET_SIZE(seq)) {
        int k = 0;
        items = PySequence_Fast_ITEMS(seq);
        for (; i < PySequence_Fast_GET_SIZE(seq) && k < IOV_BATCH; i++) {
            PyObject *b = items[i];
            if (!PyBytes_Check(b))
                return not_bytes(b); /* changed under us by another thread */
            if (PyBytes_GET_SIZE(b) == 0)
                continue;
            /* a list may be changed by another thread while the GIL is
             * released: hold the items being written */
            if (is_list)
                held[k] = Py_NewRef(b);
            iov[k].iov_base = PyBytes_AS_STRING(b);
            iov[k].iov_len = (size_t)PyBytes_GET_SIZE(b);
            k++;
        }
        int rc = send_iov(p, iov, k);
        if (is_list)
            for (int j = 0; j < k; j++)
                Py_DECREF(held[j]);
        if (rc)
            return rc;
    }
    return 0;
}

static int send_iterable(struct py_req *p, PyObject *result)
{
    PyObject *it = PyObject_GetIter(result);
    if (!it)
        return -1;
    iternextfunc next = Py_TYPE(it)->tp_iternext;
    int rc = 0;
    PyObject *item;
    while ((item = next(it))) {
        if (!PyBytes_Check(item)) {
            rc = not_bytes(item);
        } else if (PyBytes_GET_SIZE(item) > 0) {
            struct iovec iov = { PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item) };
            rc = send_iov(p, &iov, 1);
        }
        Py_DECREF(item);
        if (rc)
            break;
    }
    if (!item && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_StopIteration))
            PyErr_Clear();
        else
            rc = -1;
    }
    Py_DECREF(it);
    return rc;
}

static void release_fd(void *arg)
{
    close((int)(intptr_t)arg);
}

/* wsgi.file_wrapper: a regular file goes out with sendfile from its
 * current position to its end; anything else is read in blksize blocks. */
static int send_file_wrapper(struct py_req *p, PyObject *fw)
{
    struct wharf_request *r = p->r;
    PyObject *f = py_filewrapper_filelike(fw);
    if (!f || !p->started)
        return send_iterable(p, fw);
    PyObject *o = PyObject_CallMethod(f, "fileno", NULL);
    int fd = -1;
    if (o) {
        fd = PyLong_Check(o) ? (int)PyLong_AsLong(o) : -1;
        Py_DECREF(o);
    }
    PyErr_Clear();
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return send_iterable(p, fw);
    /* tell(), not lseek(): a buffered file knows its logical position */
    long long pos = -1;
    o = PyObject_CallMethod(f, "tell", NULL);
    if (o) {
        pos = PyLong_AsLongLong(o);
        Py_DECREF(o);
    }
    if (pos < 0) {
        PyErr_Clear();
        pos = (long long)lseek(fd, 0, SEEK_CUR);
        if (pos < 0)
            return send_iterable(p, fw);
    }
    uint64_t len = st.st_size > pos ? (uint64_t)(st.st_size - pos) : 0;
    if (!r->head_sent && r->response_length < 0 && body_allowed(p->status) &&
        add_content_length(r, len) < 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot set Content-Length");
        return -1;
    }
    if (r->response_length >= 0) {
        uint64_t cl = (uint64_t)r->response_length;
        uint64_t left = cl > r->bytes_sent ? cl - r->bytes_sent : 0;
        if (len > left) {
            wharf_log(WHARF_LOG_WARN, "%s %s: the file is longer than the Content-Length (%" PRIu64
                      "); the excess is not sent", r->method, r->uri, cl);
            len = left;
        }
    }
    if (len == 0)
        return 0;
    /* our own descriptor: the app may close its file as soon as we return */
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        return send_iterable(p, fw);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = wharf_response_sendfile(r, dfd, (off_t)pos, (size_t)len, release_fd, (void *)(intptr_t)dfd);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        p->client_gone = true;
        return -2;
    }
    return 0;
}

/* Call result.close() if it has one, whatever happened before (PEP 3333).
 * An exception from close() is logged when another error is already being
 * handled, else it becomes the error. */
static int close_result(struct py_req *p, PyObject *result, int rc)
{
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
        return rc;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    if (rc == -1)
        PyErr_Fetch(&et, &ev, &etb);
    PyObject *close;
    int found = _PyObject_LookupAttr(result, s_close, &close);
    int crc = 0;
    if (found > 0) {
        PyObject *res = PyObject_CallNoArgs(close);
        Py_DECREF(close);
        if (res)
            Py_DECREF(res);
        else
            crc = -1;
    } else if (found < 0) {
        crc = -1;
    }
    if (rc == -1) {
        if (crc)
            py_log_exception(false, "%s %s: the app's close() failed too", p->r->method, p->r->uri);
        PyErr_Restore(et, ev, etb);
        return rc;
    }
    return crc ? -1 : rc;
}

static int respond(struct py_req *p, PyObject *result)
{
    int rc;
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
        rc = send_sequence(p, result);
    else if (Py_IS_TYPE(result, &py_filewrapper_type))
        rc = send_file_wrapper(p, result);
    else if (PyBytes_Check(result) || PyUnicode_Check(result)) {
        /* iterating bytes gives ints: say what is wrong instead */
        PyErr_Format(PyExc_TypeError, "the app returned %.50s; a WSGI app returns an iterable of bytes, "
                     "e.g. [body]", Py_TYPE(result)->tp_name);
        rc = -1;
    } else if (result == Py_None) {
        PyErr_SetString(PyExc_TypeError, "the app returned None; a WSGI app returns an iterable of bytes");
        rc = -1;
    } else
        rc = send_iterable(p, result);
    return close_result(p, result, rc);
}

/* ------------------------------------------------------------ start_response */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    struct py_req *p;          /* NULL once the request is over */
} CallObject;

static bool tchar[256];

static void tchar_init(void)
{
    const char *extra = "!#$%&'*+-.^_`|~";
    for (int c = '0'; c <= '9'; c++)
        tchar[c] = true;
    for (int c = 'a'; c <= 'z'; c++)
        tchar[c] = tchar[c - 32] = true;
    for (const char *e = extra; *e; e++)
        tchar[(unsigned char)*e] = true;
}

static bool ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static bool name_is(const Py_UCS1 *s, Py_ssize_t n, const char *lc)
{
    size_t m = strlen(lc);
    if ((size_t)n != m)
        return false;
    for (size_t i = 0; i < m; i++)
        if (lower(s[i]) != (unsigned char)lc[i])
            return false;
    return true;
}

enum hop { HOP_NO, HOP_CONNECTION, HOP_FORBIDDEN };

/* Called twice for every response header: pick the candidates by length
 * first (a strlen per candidate was 2% of a hello-world request). */
static enum hop hop_by_hop(const Py_UCS1 *s, Py_ssize_t n)
{
    switch (n) {
    case 2: return name_is(s, n, "te") ? HOP_FORBIDDEN : HOP_NO;
    case 7: return name_is(s, n, "trailer") || name_is(s, n, "upgrade") ? HOP_FORBIDDEN : HOP_NO;
    case 10:
        if (name_is(s, n, "connection"))
            return HOP_CONNECTION;
        return name_is(s, n, "keep-alive") ? HOP_FORBIDDEN : HOP_NO;
    case 16: return name_is(s, n, "proxy-connection") ? HOP_FORBIDDEN : HOP_NO;
    case 17: return name_is(s, n, "transfer-encoding") ? HOP_FORBIDDEN : HOP_NO;
    case 18: return name_is(s, n, "proxy-authenticate") ? HOP_FORBIDDEN : HOP_NO;
    default: return HOP_NO;
    }
}

/* Check everything before changing anything: a bad header raises into the
 * app and leaves the response as it was. */
static int check_headers(PyObject *headers)
{
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError, "response headers must be a list of (name, value) tuples, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError, "response header %zd must be a (name, value) tuple, not %.200R",
                         i, item);
            return -1;
        }
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        if (!PyUnicode_Check(name) || !PyUnicode_Check(value)) {
            PyErr_Format(PyExc_TypeError, "response header %.200R: name and value must be str", item);
            return -1;
        }
        Py_ssize_t nn = PyUnicode_GET_LENGTH(name), vn = PyUnicode_GET_LENGTH(value);
        if (PyUnicode_KIND(name) != PyUnicode_1BYTE_KIND || nn == 0) {
            PyErr_Format(PyExc_ValueError, "invalid response header name %.200R", name);
            return -1;
        }
        const Py_UCS1 *ns = PyUnicode_1BYTE_DATA(name);
        for (Py_ssize_t k = 0; k < nn; k++)
            if (!tchar[ns[k]]) {
                PyErr_Format(PyExc_ValueError, "invalid character in response header name %.200R", name);
                return -1;
            }
        if (PyUnicode_KIND(value) != PyUnicode_1BYTE_KIND) {
            PyErr_Format(PyExc_ValueError, "response header %U: the value is not latin-1 encodable "
                         "(PEP 3333: encode non-latin-1 text, e.g. RFC 5987 for filenames)", name);
            return -1;
        }
        const Py_UCS1 *vs = PyUnicode_1BYTE_DATA(value);
        for (Py_ssize_t k = 0; k < vn; k++)
            if (ctl(vs[k])) {
                PyErr_Format(PyExc_ValueError, "response header %U: control character (CR, LF, ...) "
                             "in the value", name);
                return -1;
            }
        if (hop_by_hop(ns, nn) == HOP_FORBIDDEN) {
            PyErr_Format(PyExc_ValueError, "response header %U is hop-by-hop: the server handles it, "
                         "a WSGI app must not set it (PEP 3333)", name);
            return -1;
        }
        if (name_is(ns, nn, "content-length")) {
            bool ok = vn > 0 && vn <= 18;
            for (Py_ssize_t k = 0; k < vn && ok; k++)
                ok = vs[k] >= '0' && vs[k] <= '9';
            if (!ok) {
                PyErr_Format(PyExc_ValueError, "invalid Content-Length %R", value);
                return -1;
            }
        }
    }
    return 0;
}

/* Remove the headers an earlier start_response() added (exc_info re-call,
 * or the 500 that replaces a failed response). */
static void unapply_headers(struct py_req *p)
{
    PyObject *h = p->headers;
    if (!h || !PyList_Check(h))
        return;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(h); i++) {
        PyObject *item = PyList_GET_ITEM(h, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2)
            continue;
        PyObject *name = PyTuple_GET_ITEM(item, 0);
        if (!PyUnicode_Check(name) || PyUnicode_KIND(name) != PyUnicode_1BYTE_KIND)
            continue;
        char buf[256];
        Py_ssize_t n = PyUnicode_GET_LENGTH(name);
        if (n <= 0 || (size_t)n >= sizeof buf ||
            hop_by_hop(PyUnicode_1BYTE_DATA(name), n) == HOP_CONNECTION)
            continue;
        memcpy(buf, PyUnicode_1BYTE_DATA(name), (size_t)n);
        buf[n] = '\0';
        wharf_response_header_del(p->r, buf);
    }
}

static PyObject *sr_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    struct py_req *p = ((CallObject *)self)->p;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *status = NULL, *headers = NULL, *exc_info = Py_None;
    if (nargs > 3)
        return PyErr_Format(PyExc_TypeError, "start_response() takes at most 3 arguments (%zd given)", nargs);
    if (nargs > 0)
        status = args[0];
    if (nargs > 1)
        headers = args[1];
    if (nargs > 2)
        exc_info = args[2];
    if (kwnames)
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *kw = PyTuple_GET_ITEM(kwnames, i), *v = args[nargs + i];
            if (PyUnicode_CompareWithASCIIString(kw, "status") == 0 && !status)
                status = v;
            else if ((PyUnicode_CompareWithASCIIString(kw, "headers") == 0 ||
                      PyUnicode_CompareWithASCIIString(kw, "response_headers") == 0) && !headers)
                headers = v;
            else if (PyUnicode_CompareWithASCIIString(kw, "exc_info") == 0 && nargs < 3)
                exc_info = v;
            else
                return PyErr_Format(PyExc_TypeError, "start_response() got an unexpected keyword argument %R",
                                    kw);
        }
    if (!status || !headers)
        return PyErr_Format(PyExc_TypeError, "start_response() needs status and headers");
    if (!p)
        return PyErr_Format(PyExc_RuntimeError, "start_response() called after its request ended");
    struct wharf_request *r = p->r;

    if (exc_info != Py_None) {
        if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3)
            return PyErr_Format(PyExc_TypeError, "exc_info must be a (type, value, traceback) tuple");
        if (r->head_sent) {
            /* too late to change the response: re-raise the app's error
             * (PEP 3333); the connection will be cut */
            PyObject *et = PyTuple_GET_ITEM(exc_info, 0), *ev = PyTuple_GET_ITEM(exc_info, 1),
                     *tb = PyTuple_GET_ITEM(exc_info, 2);
            if (!PyExceptionClass_Check(et))
                return PyErr_Format(PyExc_TypeError, "exc_info[0] is not an exception class");
            PyErr_Restore(Py_NewRef(et), Py_NewRef(ev), tb == Py_None ? NULL : Py_NewRef(tb));
            return NULL;
        }
    } else if (p->started) {
        return PyErr_Format(PyExc_RuntimeError,
                            "start_response() called a second time without exc_info (PEP 3333)");
    }

    /* "200 OK": three digits, a space, a reason phrase */
    if (!PyUnicode_Check(status))
        return PyErr_Format(PyExc_TypeError, "status must be str, not %.100s", Py_TYPE(status)->tp_name);
    Py_ssize_t sn = PyUnicode_GET_LENGTH(status);
    const Py_UCS1 *ss = PyUnicode_KIND(status) == PyUnicode_1BYTE_KIND ? PyUnicode_1BYTE_DATA(status) : NULL;
    if (!ss || sn < 4 || ss[0] < '1' || ss[0] > '9' || ss[1] < '0' || ss[1] > '9' || ss[2] < '0' ||
        ss[2] > '9' || ss[3] != ' ')
        return PyErr_Format(PyExc_ValueError, "status must look like '200 OK', not %.100R", status);
    char reason[256];
    if ((size_t)(sn - 4) >= sizeof reason)
        return PyErr_Format(PyExc_ValueError, "status reason phrase too long (%zd characters)", sn - 4);
    for (Py_ssize_t i = 4; i < sn; i++) {
        if (ctl(ss[i]))
            return PyErr_Format(PyExc_ValueError, "control character in status %.100R", status);
        reason[i - 4] = (char)ss[i];
    }
    reason[sn - 4] = '\0';
    int code = (ss[0] - '0') * 100 + (ss[1] - '0') * 10 + (ss[2] - '0');
    if (check_headers(headers) < 0)
        return NULL;

    if (p->started)
        unapply_headers(p);
    const char *std = wharf_status_reason(code);
    if (wharf_response_start(r, code, strcmp(std, reason) == 0 ? NULL : reason) < 0)
        return PyErr_Format(PyExc_RuntimeError, "the server refused status %R", status);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        const Py_UCS1 *ns = PyUnicode_1BYTE_DATA(name), *vs = PyUnicode_1BYTE_DATA(value);
        Py_ssize_t nn = PyUnicode_GET_LENGTH(name), vn = PyUnicode_GET_LENGTH(value);
        if (hop_by_hop(ns, nn) == HOP_CONNECTION) {
            /* honoured, not forwarded: the transport writes Connection */
            for (Py_ssize_t k = 0; k + 5 <= vn; k++)
                if (name_is(vs + k, 5, "close"))
                    r->close_connection = true;
            continue;
        }
        if (wharf_response_header(r, (const char *)ns, (size_t)nn, (const char *)vs, (size_t)vn) < 0)
            return PyErr_Format(PyExc_ValueError, "the server refused response header %R", item);
    }
    Py_INCREF(headers);
    Py_XSETREF(p->headers, headers);
    p->status = code;
    p->started = true;
    return Py_NewRef(p->write);
}

static PyObject *write_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    struct py_req *p = ((CallObject *)self)->p;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames && PyTuple_GET_SIZE(kwnames)))
        return PyErr_Format(PyExc_TypeError, "write() takes exactly one argument");
    if (!p)
        return PyErr_Format(PyExc_RuntimeError, "write() called after its request ended");
    PyObject *data = args[0];
    if (!PyBytes_Check(data)) {
        not_bytes(data);
        return NULL;
    }
    if (PyBytes_GET_SIZE(data) == 0)
        Py_RETURN_NONE;
    struct iovec iov = { PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data) };
    Py_INCREF(data);
    int rc = send_iov(p, &iov, 1);
    Py_DECREF(data);
    if (rc == -2)
        return PyErr_Format(PyExc_OSError, "write(): the client went away");
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static void call_dealloc(PyObject *self)
{
    PyObject_Free(self);
}

static PyTypeObject sr_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wharf.StartResponse",
    .tp_basicsize = sizeof(CallObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "start_response(status, headers, exc_info=None) -> write",
    .tp_vectorcall_offset = offsetof(CallObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = call_dealloc,
};

static PyTypeObject write_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wharf.Write",
    .tp_basicsize = sizeof(CallObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "write(bytes): send body data now (PEP 3333's write callable)",
    .tp_vectorcall_offset = offsetof(CallObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = call_dealloc,
};

/* The thread's callable of `type`, reused unless the app still holds the
 * previous one. */
static CallObject *call_for(PyObject **slot, PyTypeObject *type, vectorcallfunc fn, struct py_req *p)
{
    CallObject *c = (CallObject *)*slot;
    if (!c || Py_REFCNT(c) != 1) {
        c = PyObject_New(CallObject, type);
        if (!c)
            return NULL;
        c->vectorcall = fn;
        Py_XSETREF(*slot, (PyObject *)c);
    }
    c->p = p;
    return c;
}

/* ------------------------------------------------------------ the request */

static void send_500(struct py_req *p)
{
    struct wharf_request *r = p->r;
    if (r->head_sent)
        return;
    if (p->started)
        unapply_headers(p);
    Py_BEGIN_ALLOW_THREADS
    wharf_response_simple(r, 500, "text/plain", "Internal Server Error\n", 22);
    Py_END_ALLOW_THREADS
}

/* After a successful iteration: empty bodies get Content-Length: 0, short
 * bodies are errors, then the response ends. */
static int finish_response(struct py_req *p)
{
    struct wharf_request *r = p->r;
    bool check = body_allowed(p->status) && !r->head_only;
    if (p->tail && p->tail->len) {
        /* a deferred body: as if it had been sent */
        if (check && r->response_length >= 0 && p->tail->len < (uint64_t)r->response_length) {
            struct iovec iov = { (void *)p->tail->body, p->tail->len };
            p->tail->len = 0;
            send_iov(p, &iov, 1);
            PyErr_Clear();
            wharf_log(WHARF_LOG_ERROR, "%s %s: the app declared Content-Length %" PRId64 " but sent %" PRIu64
                      " bytes; closing the connection", r->method, r->uri, r->response_length, r->bytes_sent);
            return WHARF_ERROR;
        }
        p->tail->end = true;
        return WHARF_DONE;
    }
    if (!r->head_sent) {
        if (check && r->response_length > 0) {
            wharf_log(WHARF_LOG_ERROR, "%s %s: the app declared Content-Length %" PRId64 " but sent no body",
                      r->method, r->uri, r->response_length);
            send_500(p);
            return WHARF_DONE;
        }
        if (r->response_length < 0 && body_allowed(p->status) && !r->head_only)
            add_content_length(r, 0);
    } else if (check && r->response_length >= 0 && r->bytes_sent < (uint64_t)r->response_length) {
        wharf_log(WHARF_LOG_ERROR, "%s %s: the app declared Content-Length %" PRId64 " but sent %" PRIu64
                  " bytes; closing the connection", r->method, r->uri, r->response_length, r->bytes_sent);
        return WHARF_ERROR;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = wharf_response_end(r);
    Py_END_ALLOW_THREADS
    (void)rc; /* -1: the client is gone; the core closes the connection */
    return WHARF_DONE;
}

void py_wsgi_finish_tail(struct wharf_request *r, struct py_tail *tail)
{
    if (tail->len && wharf_response_write(r, tail->body, tail->len) < 0) {
        wharf_log(WHARF_LOG_INFO, "%s %s: the client went away", r->method, r->uri);
        return;
    }
    wharf_response_end(r); /* -1: the client is gone; the core closes the connection */
}

int py_wsgi_run(struct py_thread *t, struct py_app *app, struct wharf_request *r, size_t script_len,
                struct py_tail *tail)
{
    struct py_req p = { .r = r, .tail = tail };
    PyObject *result = NULL, *lazies = NULL, *env = NULL;
    const char *stage = "building the environ";
    int st = -1; /* 0 ok, -1 Python exception, -2 client gone */
    int rc = WHARF_DONE;

    CallObject *sr = call_for(&t->start_response, &sr_type, sr_vectorcall, &p);
    CallObject *wr = call_for(&t->write, &write_type, write_vectorcall, &p);
    PyObject *input = py_input_for(t, r);
    if (sr && wr && input)
        env = build_environ(t, app, r, script_len, input, &lazies);
    if (env) {
        p.write = (PyObject *)wr;
        stage = "in the app";
        PyObject *args[2] = { env, (PyObject *)sr };
        result = PyObject_Vectorcall(app->callable, args, 2, NULL);
        if (result) {
            stage = "while sending the response";
            st = respond(&p, result);
        }
    }
    if (st == -1 || PyErr_Occurred()) {
        st = -1;
        if (py_input_failed(input) && PyErr_ExceptionMatches(PyExc_OSError)) {
            /* the transport already logged why (bad chunk, limit-post,
             * client gone) and answers the client itself: a client must
             * not be able to write ERROR lines at will */
            PyErr_Clear();
            wharf_log(WHARF_LOG_INFO, "%s %s: the app stopped: its request body could not be read",
                      r->method, r->uri);
        } else {
            py_log_exception(p.client_gone, "%s %s: unhandled exception %s", r->method, r->uri, stage);
        }
        if (p.client_gone)
            st = -2;
    } else if (st == -2) {
        wharf_log(WHARF_LOG_INFO, "%s %s: the client went away", r->method, r->uri);
    }
    /* The app is done with this request: cut the objects it may keep
     * (wsgi.input, start_response, write, wharf.LazyVar) loose from it
     * before the response ends, so that no other thread can use them once
     * the client may send its next request and the core may free this
     * one.  A call still blocked in I/O on another thread is waited for. */
    if (sr)
        sr->p = NULL;
    if (wr)
        wr->p = NULL;
    py_wait_idle(&p.busy);
    if (input)
        py_input_detach(input);
    if (lazies)
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(lazies); i++)
            py_lazyvar_detach(PyList_GET_ITEM(lazies, i));
    Py_XDECREF(input);
    Py_XDECREF(lazies);

    if (st == 0 && !p.started) {
        wharf_log(WHARF_LOG_ERROR, "%s %s: the app returned without calling start_response()", r->method,
                  r->uri);
        st = -1;
    }
    if (st == 0)
        rc = finish_response(&p);
    else if (st == -1) {
        if (!r->head_sent)
            send_500(&p);
        else
            rc = WHARF_ERROR; /* the head is out: only cutting the connection tells the client */
    }

    Py_XDECREF(result);
    Py_XDECREF(env);
    Py_CLEAR(p.headers);
    py_errors_flush_thread(t);
    if (PyErr_Occurred())
        py_log_exception(false, "%s %s: while cleaning up", r->method, r->uri);
    return rc;
}
