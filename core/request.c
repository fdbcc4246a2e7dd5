/*
 * core/request.c - a request's life in the core: allocation (with a
 * per-request arena, recycled per worker), the phase walk
 * ROUTE -> CONTENT -> APP -> (RESPONSE) -> LOG, the response functions
 * plugins call, request variables, and the statistics the scoreboard
 * shows.  The wire format belongs to the protocol plugin's transport.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_INLINE 4096
#define POOL_MAX 256

struct arena_block {
    struct arena_block *next;
    size_t size, used;
    char data[];
};

struct resp_header {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
};

struct req_var {
    const char *name;
    const char *value;
    size_t len;
    const struct wharf_lazy_var_ops *ops;
    void *data;
};

struct req_priv {
    struct wharf_request pub; /* first: a request pointer is a priv pointer */
    struct req_priv *next_free;
    struct resp_header *headers;
    size_t nheaders, capheaders;
    struct req_var *vars;
    size_t nvars, capvars;
    const char *reason;
    unsigned thread_slot;
    enum wharf_phase phase;
    bool on_pool_thread;
    bool detached;
    bool response_phase_done;
    bool ended;
    bool aborted;
    char request_id[40];
    size_t request_id_len;
    struct arena_block *blocks;
    size_t inline_used;
    _Alignas(16) char inline_arena[ARENA_INLINE];
};

static struct req_priv *pool_head;
static size_t pool_count;

static struct req_priv *priv(struct wharf_request *r)
{
    return (struct req_priv *)r;
}

/* ------------------------------------------------------------ arena */

WHARF_EXPORT void *wharf_request_alloc(struct wharf_request *r, size_t size)
{
    struct req_priv *p = priv(r);
    size = (size + 15) & ~(size_t)15;
    if (p->inline_used + size <= ARENA_INLINE) {
        void *m = p->inline_arena + p->inline_used;
        p->inline_used += size;
        return m;
    }
    struct arena_block *b = p->blocks;
    if (!b || b->used + size > b->size) {
        size_t bs = size > 16384 ? size : 16384;
        b = wharf_xmalloc(sizeof *b + bs);
        b->size = bs;
        b->used = 0;
        b->next = p->blocks;
        p->blocks = b;
    }
    void *m = b->data + b->used;
    b->used += size;
    return m;
}

WHARF_EXPORT char *wharf_request_strndup(struct wharf_request *r, const char *s, size_t len)
{
    char *d = wharf_request_alloc(r, len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* ------------------------------------------------------------ lifecycle */

WHARF_EXPORT struct wharf_request *wharf_request_new(struct wharf_worker *w,
                                                     const struct wharf_transport *t, void *data)
{
    struct req_priv *p = pool_head;
    if (p) {
        pool_head = p->next_free;
        pool_count--;
    } else {
        p = wharf_xcalloc(1, sizeof *p);
    }
    struct resp_header *h = p->headers;
    size_t caph = p->capheaders;
    struct req_var *v = p->vars;
    size_t capv = p->capvars;
    memset(p, 0, offsetof(struct req_priv, inline_arena));
    p->headers = h;
    p->capheaders = caph;
    p->vars = v;
    p->capvars = capv;
    p->pub.worker = w;
    p->pub.transport = t;
    p->pub.transport_data = data;
    p->pub.content_length = 0;
    p->pub.response_length = -1;
    p->pub.query = "";
    p->pub.scheme = "http";
    p->pub.version = 11;
    return &p->pub;
}

WHARF_EXPORT void wharf_request_free(struct wharf_request *r)
{
    if (!r)
        return;
    struct req_priv *p = priv(r);
    while (p->blocks) {
        struct arena_block *b = p->blocks;
        p->blocks = b->next;
        free(b);
    }
    if (pool_count >= POOL_MAX) {
        free(p->headers);
        free(p->vars);
        free(p);
        return;
    }
    p->next_free = pool_head;
    pool_head = p;
    pool_count++;
}

/* ------------------------------------------------------------ headers */

WHARF_EXPORT const char *wharf_request_header(const struct wharf_request *r, const char *name,
                                              size_t *len)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < r->header_count; i++) {
        const struct wharf_header *h = &r->headers[i];
        if (wharf_strcaseeq(h->name, h->name_len, name, nlen)) {
            if (len)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

WHARF_EXPORT ssize_t wharf_request_read(struct wharf_request *r, void *buf, size_t len)
{
    if (!r->transport->read_body)
        return 0;
    return r->transport->read_body(r, buf, len);
}

/* ------------------------------------------------------------ variables */

static struct req_var *var_slot(struct wharf_request *r, const char *name)
{
    struct req_priv *p = priv(r);
    for (size_t i = 0; i < p->nvars; i++)
        if (strcmp(p->vars[i].name, name) == 0)
            return &p->vars[i];
    if (p->nvars == p->capvars) {
        p->capvars = p->capvars ? p->capvars * 2 : 8;
        p->vars = wharf_xrealloc(p->vars, p->capvars * sizeof *p->vars);
    }
    struct req_var *v = &p->vars[p->nvars++];
    memset(v, 0, sizeof *v);
    v->name = wharf_request_strndup(r, name, strlen(name));
    return v;
}

WHARF_EXPORT int wharf_request_var_set(struct wharf_request *r, const char *name, const char *value,
                                       size_t len)
{
    struct req_var *v = var_slot(r, name);
    v->value = wharf_request_strndup(r, value, len);
    v->len = len;
    v->ops = NULL;
    v->data = NULL;
    return 0;
}

WHARF_EXPORT const char *wharf_request_var_get(struct wharf_request *r, const char *name, size_t *len)
{
    struct req_priv *p = priv(r);
    for (size_t i = 0; i < p->nvars; i++)
        if (strcmp(p->vars[i].name, name) == 0 && !p->vars[i].ops) {
            if (len)
                *len = p->vars[i].len;
            return p->vars[i].value;
        }
    return NULL;
}

WHARF_EXPORT int wharf_request_lazy_var_set(struct wharf_request *r, const char *name,
                                            const struct wharf_lazy_var_ops *ops, void *data)
{
    struct req_var *v = var_slot(r, name);
    v->value = NULL;
    v->len = 0;
    v->ops = ops;
    v->data = data;
    return 0;
}

WHARF_EXPORT bool wharf_request_var_at(struct wharf_request *r, size_t index, const char **name,
                                       const char **value, size_t *value_len,
                                       const struct wharf_lazy_var_ops **ops, void **data)
{
    struct req_priv *p = priv(r);
    if (index >= p->nvars)
        return false;
    const struct req_var *v = &p->vars[index];
    *name = v->name;
    *value = v->value;
    if (value_len)
        *value_len = v->len;
    *ops = v->ops;
    *data = v->data;
    return true;
}

/* ------------------------------------------------------------ responses */

WHARF_EXPORT const char *wharf_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:
        if (status >= 100 && status < 200) return "Informational";
        if (status >= 200 && status < 300) return "OK";
        if (status >= 300 && status < 400) return "Redirection";
        if (status >= 400 && status < 500) return "Client Error";
        return "Server Error";
    }
}

WHARF_EXPORT int wharf_response_start(struct wharf_request *r, int status, const char *reason)
{
    struct req_priv *p = priv(r);
    if (r->head_sent || p->ended) {
        wharf_log(WHARF_LOG_ERROR, "%s %s: response started twice", r->method, r->uri);
        return -1;
    }
    if (status < 100 || status > 999) {
        wharf_log(WHARF_LOG_ERROR, "%s %s: invalid status %d", r->method, r->uri, status);
        return -1;
    }
    r->status = status;
    p->reason = reason ? wharf_request_strndup(r, reason, strlen(reason)) : NULL;
    return 0;
}

/* Header values must not smuggle a second header or a body into the
 * response: CR, LF and NUL are refused. */
static bool header_ok(const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (nlen == 0)
        return false;
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 32 || c >= 127 || c == ':')
            return false;
    }
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\r' || c == '\n' || c == '\0')
            return false;
    }
    return true;
}

/* Append a header whose strings outlive the request's response. */
static void push_header(struct req_priv *p, const char *name, size_t name_len, const char *value,
                        size_t value_len)
{
    if (p->nheaders == p->capheaders) {
        p->capheaders = p->capheaders ? p->capheaders * 2 : 16;
        p->headers = wharf_xrealloc(p->headers, p->capheaders * sizeof *p->headers);
    }
    struct resp_header *h = &p->headers[p->nheaders++];
    h->name = (char *)name;
    h->name_len = name_len;
    h->value = (char *)value;
    h->value_len = value_len;
}

WHARF_EXPORT int wharf_response_header(struct wharf_request *r, const char *name, size_t name_len,
                                       const char *value, size_t value_len)
{
    struct req_priv *p = priv(r);
    if (r->head_sent) {
        wharf_log(WHARF_LOG_ERROR, "%s %s: header '%.*s' added after the response head was sent",
                  r->method, r->uri, (int)name_len, name);
        return -1;
    }
    if (!header_ok(name, name_len, value, value_len)) {
        wharf_log(WHARF_LOG_ERROR, "%s %s: invalid response header '%.*s'", r->method, r->uri,
                  (int)(name_len > 64 ? 64 : name_len), name);
        return -1;
    }
    if (name_len == 14 && wharf_strcaseeq(name, name_len, "content-length", 14)) {
        int64_t v = 0;
        size_t i = 0;
        for (; i < value_len && isdigit((unsigned char)value[i]) && v < INT64_MAX / 10; i++)
            v = v * 10 + (value[i] - '0');
        if (i == 0 || i != value_len) {
            wharf_log(WHARF_LOG_ERROR, "%s %s: invalid Content-Length '%.*s'", r->method, r->uri,
                      (int)(value_len > 32 ? 32 : value_len), value);
            return -1;
        }
        /* one Content-Length: the last one given wins */
        wharf_response_header_del(r, "Content-Length");
        r->response_length = v;
    }
    push_header(p, wharf_request_strndup(r, name, name_len), name_len,
                wharf_request_strndup(r, value, value_len), value_len);
    return 0;
}

WHARF_EXPORT int wharf_response_header_del(struct wharf_request *r, const char *name)
{
    struct req_priv *p = priv(r);
    size_t nlen = strlen(name), out = 0;
    int removed = 0;
    for (size_t i = 0; i < p->nheaders; i++) {
        if (wharf_strcaseeq(p->headers[i].name, p->headers[i].name_len, name, nlen)) {
            removed++;
            continue;
        }
        p->headers[out++] = p->headers[i];
    }
    p->nheaders = out;
    if (removed && wharf_strcaseeq(name, nlen, "content-length", 14))
        r->response_length = -1;
    return removed;
}

WHARF_EXPORT const char *wharf_response_header_get(struct wharf_request *r, const char *name,
                                                   size_t *len)
{
    struct req_priv *p = priv(r);
    size_t nlen = strlen(name);
    for (size_t i = 0; i < p->nheaders; i++)
        if (wharf_strcaseeq(p->headers[i].name, p->headers[i].name_len, name, nlen)) {
            if (len)
                *len = p->headers[i].value_len;
            return p->headers[i].value;
        }
    return NULL;
}

WHARF_EXPORT bool wharf_response_header_at(struct wharf_request *r, size_t index,
                                           struct wharf_header *out)
{
    struct req_priv *p = priv(r);
    if (index >= p->nheaders)
        return false;
    out->name = p->headers[index].name;
    out->name_len = p->headers[index].name_len;
    out->value = p->headers[index].value;
    out->value_len = p->headers[index].value_len;
    return true;
}

/* The reason phrase the transport writes in the status line. */
WHARF_EXPORT const char *wharf_response_reason(struct wharf_request *r)
{
    struct req_priv *p = priv(r);
    return p->reason ? p->reason : wharf_status_reason(r->status);
}

/* Just before the head goes out: RESPONSE-phase plugins (session cookie,
 * added headers) and the request id echo. */
static void response_phase(struct wharf_request *r)
{
    struct req_priv *p = priv(r);
    if (p->response_phase_done)
        return;
    p->response_phase_done = true;
    enum wharf_phase was = p->phase;
    p->phase = WHARF_PHASE_RESPONSE;
    struct wharf_server *s = r->worker->server;
    for (size_t i = 0; i < s->nphase_handlers[WHARF_PHASE_RESPONSE]; i++) {
        struct wharf_loaded_plugin *lp = &s->plugins[s->phase_handlers[WHARF_PHASE_RESPONSE][i]];
        if (lp->p->handle(r, lp->conf) == WHARF_ERROR)
            wharf_log(WHARF_LOG_WARN, "%s %s: %s response hook failed", r->method, r->uri,
                      lp->p->name);
    }
    p->phase = was;
    if (r->request_id && !wharf_response_header_get(r, "X-Request-ID", NULL)) {
        /* our own id was checked (or generated) and lives as long as the
         * request: no validation and no copy */
        if (r->request_id == p->request_id)
            push_header(p, "X-Request-ID", 12, p->request_id, p->request_id_len);
        else
            wharf_response_header(r, "X-Request-ID", 12, r->request_id, strlen(r->request_id));
    }
}

WHARF_EXPORT enum wharf_phase wharf_request_phase(const struct wharf_request *r)
{
    return ((const struct req_priv *)r)->phase;
}

static int ready_to_send(struct wharf_request *r)
{
    struct req_priv *p = priv(r);
    if (!r->status) {
        wharf_log(WHARF_LOG_ERROR, "%s %s: body written before wharf_response_start()", r->method,
                  r->uri);
        return -1;
    }
    if (p->ended || p->aborted)
        return -1;
    response_phase(r);
    return 0;
}

WHARF_EXPORT int wharf_response_writev(struct wharf_request *r, const struct iovec *iov, int iovcnt)
{
    if (ready_to_send(r) < 0)
        return -1;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total == 0 && r->head_sent)
        return 0;
    if (r->transport->write(r, iov, iovcnt, false) < 0) {
        priv(r)->aborted = true;
        return -1;
    }
    r->bytes_sent += total;
    return 0;
}

WHARF_EXPORT int wharf_response_write(struct wharf_request *r, const void *buf, size_t len)
{
    struct iovec iov = { (void *)buf, len };
    return wharf_response_writev(r, &iov, 1);
}

WHARF_EXPORT int wharf_response_sendfile(struct wharf_request *r, int fd, off_t offset, size_t len,
                                         void (*release)(void *), void *arg)
{
    if (ready_to_send(r) < 0) {
        if (release)
            release(arg);
        return -1;
    }
    if (r->transport->sendfile(r, fd, offset, len, release, arg) < 0) {
        priv(r)->aborted = true;
        return -1;
    }
    r->bytes_sent += len;
    return 0;
}

WHARF_EXPORT int wharf_response_end(struct wharf_request *r)
{
    struct req_priv *p = priv(r);
    if (p->ended)
        return 0;
    if (p->aborted) {
        p->ended = true;
        return -1;
    }
    if (ready_to_send(r) < 0) {
        p->aborted = true;
        p->ended = true;
        return -1;
    }
    p->ended = true;
    if (r->transport->write(r, NULL, 0, true) < 0) {
        p->aborted = true;
        return -1;
    }
    return 0;
}

WHARF_EXPORT int wharf_response_simple(struct wharf_request *r, int status, const char *content_type,
                                       const char *body, size_t len)
{
    if (wharf_response_start(r, status, NULL) < 0)
        return -1;
    if (content_type)
        wharf_response_header(r, "Content-Type", 12, content_type, strlen(content_type));
    char cl[24];
    size_t i = sizeof cl;
    size_t v = len;
    do {
        cl[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    wharf_response_header(r, "Content-Length", 14, cl + i, sizeof cl - i);
    if (len && wharf_response_write(r, body, len) < 0)
        return -1;
    return wharf_response_end(r);
}

/* ------------------------------------------------------------ phases */

/* The X-Request-ID a client or proxy sent is kept when it is sane (so one
 * id follows a request through nginx and wharf); otherwise a new one. */
static void assign_request_id(struct wharf_request *r)
{
    struct req_priv *p = priv(r);
    size_t len = 0;
    const char *given = wharf_request_header(r, "X-Request-ID", &len);
    if (given && len > 0 && len < sizeof p->request_id) {
        bool ok = true;
        for (size_t i = 0; i < len && ok; i++)
            ok = isalnum((unsigned char)given[i]) || strchr("-_.:+/=", given[i]);
        if (ok) {
            memcpy(p->request_id, given, len);
            p->request_id[len] = '\0';
            p->request_id_len = len;
            r->request_id = p->request_id;
            return;
        }
    }
    static __thread uint64_t state[2];
    if (!state[0] && !state[1])
        wharf_random_bytes(state, sizeof state);
    /* xorshift128+: cheap and unique enough for correlation ids */
    uint64_t a = state[0], b = state[1];
    state[0] = b;
    a ^= a << 23;
    state[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    uint64_t x = state[1] + b;
    /* 16 hex digits by hand: snprintf cost ~900 instructions here, on
     * every request */
    for (int i = 15; i >= 0; i--, x >>= 4)
        p->request_id[i] = "0123456789abcdef"[x & 15];
    p->request_id[16] = '\0';
    p->request_id_len = 16;
    r->request_id = p->request_id;
}

static void slot_begin(struct wharf_request *r, unsigned thread)
{
    struct wharf_sb_thread *t = wharf_sb_thread_slot(r->worker->sb, thread);
    size_t m = r->method_len < sizeof t->method - 1 ? r->method_len : sizeof t->method - 1;
    memcpy(t->method, r->method, m);
    t->method[m] = '\0';
    size_t u = r->uri_len < sizeof t->uri - 1 ? r->uri_len : sizeof t->uri - 1;
    memcpy(t->uri, r->uri, u);
    t->uri[u] = '\0';
    atomic_store_explicit(&t->start_ns, r->start_ns, memory_order_release);
}

static void slot_end(struct wharf_request *r, unsigned thread)
{
    struct wharf_sb_thread *t = wharf_sb_thread_slot(r->worker->sb, thread);
    atomic_store_explicit(&t->start_ns, 0, memory_order_release);
}

/* The request counters of a scoreboard slot have one writer: the loop
 * thread of the worker owning the slot (requests start and finish there;
 * the master only resets a slot before it forks its worker).  Readers use
 * atomic loads, so a relaxed load and store is enough: no lock-prefixed
 * read-modify-write (seven per request) on a shared cache line. */
static inline void bump64(_Atomic uint64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d, memory_order_relaxed);
}

static void record_stats(struct wharf_request *r, int64_t us)
{
    struct wharf_sb_worker *sb = r->worker->sb;
    int cls = r->status / 100;
    if (cls < 1 || cls > 5)
        cls = 0;
    static const unsigned bounds[] = WHARF_LATENCY_BUCKETS_MS;
    int b = 0;
    while (b < WHARF_LATENCY_BUCKETS - 1 && us > (int64_t)bounds[b] * 1000)
        b++;
    bump64(&sb->status_class[cls], 1);
    bump64(&sb->latency_bucket[b], 1);
    bump64(&sb->latency_sum_us, (uint64_t)us);
    bump64(&sb->bytes_sent, r->bytes_sent);
    bump64(&sb->total_requests, 1);
    bump64(&sb->requests, 1);
    atomic_store_explicit(&sb->in_flight, atomic_load_explicit(&sb->in_flight, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

/* Loop thread: everything after the response: LOG phase, statistics,
 * access log, then the transport takes the connection back. */
static void finish(struct wharf_request *r)
{
    struct req_priv *p = priv(r);
    struct wharf_worker *w = r->worker;
    if (!p->ended) {
        if (!r->head_sent && !p->aborted) {
            if (!r->status)
                wharf_response_simple(r, 500, "text/plain", "Internal Server Error\n", 22);
            else
                wharf_response_end(r);
        } else {
            p->aborted = true;
        }
    }
    if (p->aborted)
        r->close_connection = true;
    int64_t us = (wharf_monotonic_ns() - r->start_ns) / 1000;
    struct wharf_server *s = w->server;
    p->phase = WHARF_PHASE_LOG;
    for (size_t i = 0; i < s->nphase_handlers[WHARF_PHASE_LOG]; i++) {
        struct wharf_loaded_plugin *lp = &s->plugins[s->phase_handlers[WHARF_PHASE_LOG][i]];
        lp->p->handle(r, lp->conf);
    }
    record_stats(r, us);
    wharf_accesslog_write(r, us);
    uint64_t served = atomic_load_explicit(&w->sb->requests, memory_order_relaxed);
    if (w->recycle_after && served >= w->recycle_after && !w->recycle_requested) {
        w->recycle_requested = true;
        wharf_log(WHARF_LOG_INFO, "worker %u served %" PRIu64 " requests (max-requests): asking to be replaced",
                  w->id, served);
        wharf_worker_tell_master(w, WHARF_MSG_RECYCLE);
    }
    r->transport->done(r);
}

void wharf_request_finish_on_loop(struct wharf_worker *w, void *arg)
{
    (void)w;
    finish(arg);
}

/* Run one phase's handlers; returns true when the request is answered. */
static bool run_phase(struct wharf_request *r, unsigned phase)
{
    struct req_priv *p = priv(r);
    struct wharf_server *s = r->worker->server;
    p->phase = (enum wharf_phase)phase;
    for (size_t i = 0; i < s->nphase_handlers[phase]; i++) {
        struct wharf_loaded_plugin *lp = &s->plugins[s->phase_handlers[phase][i]];
        int rc = lp->p->handle(r, lp->conf);
        if (rc == WHARF_DECLINED && !r->status && !p->ended)
            continue;
        if (rc == WHARF_ERROR) {
            wharf_log(WHARF_LOG_ERROR, "%s %s: %s failed", r->method, r->uri, lp->p->name);
            if (!r->head_sent && !p->ended) {
                wharf_response_header_del(r, "Content-Type");
                r->response_length = -1;
                r->status = 0;
                wharf_response_simple(r, 500, "text/plain", "Internal Server Error\n", 22);
            } else {
                p->aborted = true;
            }
        }
        if (!p->ended && !p->aborted && r->status)
            wharf_response_end(r);
        return true;
    }
    return false;
}

/* APP phase: may block.  On a pool thread or inline on the loop thread. */
void wharf_request_run_app(struct wharf_request *r)
{
    struct req_priv *p = priv(r);
    unsigned slot = wharf_thread_slot;
    slot_begin(r, slot);
    if (!run_phase(r, WHARF_PHASE_APP) && !p->ended)
        wharf_response_simple(r, 404, "text/plain", "Not Found\n", 10);
    slot_end(r, slot);
    if (p->on_pool_thread)
        wharf_loop_post(r->worker, wharf_request_finish_on_loop, r);
    else
        finish(r);
}

WHARF_EXPORT void wharf_request_process(struct wharf_request *r)
{
    struct req_priv *p = priv(r);
    struct wharf_worker *w = r->worker;
    r->start_ns = wharf_monotonic_ns();
    r->head_only = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    assign_request_id(r);
    atomic_store_explicit(&w->sb->in_flight, atomic_load_explicit(&w->sb->in_flight, memory_order_relaxed) + 1,
                          memory_order_relaxed); /* single writer, see bump64() */
    if (w->draining)
        r->close_connection = true;

    if (run_phase(r, WHARF_PHASE_ROUTE) || run_phase(r, WHARF_PHASE_CONTENT)) {
        finish(r);
        return;
    }
    struct wharf_server *s = w->server;
    if (s->nphase_handlers[WHARF_PHASE_APP] == 0) {
        wharf_response_simple(r, 404, "text/plain", "Not Found\n", 10);
        finish(r);
        return;
    }
    p->detached = true;
    if (r->transport->detach)
        r->transport->detach(r);
    if (w->pool) {
        p->on_pool_thread = true;
        wharf_threadpool_submit(w->pool, r);
        return;
    }
    wharf_request_run_app(r);
}
