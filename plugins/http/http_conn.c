/*
 * plugins/http/http_conn.c - one HTTP/1.x connection: reading and parsing
 * request heads on the event loop, handing each request to the core, the
 * transport the core writes responses through, keep-alive, pipelining and
 * the timeouts that keep slow or idle clients from holding a worker.
 *
 * Two ways of writing, chosen by who runs the request:
 *  - attached (loop thread: static files, probes, errors): never block;
 *    what the socket does not take is queued and flushed on EPOLLOUT;
 *  - detached (APP phase: inline or on an app thread): plain blocking
 *    writes, waiting with poll(2) up to socket-timeout per step, so the app
 *    sees backpressure and memory stays bounded.
 * While a request is detached the loop leaves its connection alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"

_Static_assert(sizeof(struct wharf_http_header) == sizeof(struct wharf_header) &&
                   offsetof(struct wharf_http_header, value_len) ==
                       offsetof(struct wharf_header, value_len),
               "the parser's header layout must match wharf.h");

/* Lingering close: how long to keep reading (and dropping) what a client
 * still sends after we answered it with an error and shut our side. */
#define LINGER_MS 2000

/* Room after the head for body bytes and pipelined requests. */
#define BODY_ROOM 16384
#define MAX_INLINE_DRAIN (1u << 20)

enum conn_state {
    C_HEAD,      /* reading a request head (or idle in keep-alive) */
    C_REQUEST,   /* a request is with the core (maybe detached) */
    C_FLUSH,     /* response done, queued output being flushed */
    C_DISCARD,   /* throwing away an unread request body */
    C_CLOSING,   /* flushing the last bytes, then close */
    C_LINGER,    /* response sent, write side shut: dropping what the
                    client still sends, then close (RFC 9112 9.6) */
    C_BODY,      /* head parsed, waiting on the loop for a small body */
};

struct out_seg {
    struct out_seg *next;
    int fd;                     /* -1 for memory */
    off_t off;                  /* file offset, or offset into data */
    size_t len;                 /* bytes left */
    void (*release)(void *);
    void *arg;
    char data[];                /* memory segment bytes */
};

struct conn {
    struct conn *prev, *next;   /* all connections of the worker */
    int fd;
    struct wharf_worker *w;
    struct http_conf *conf;
    struct http_listener *listener;
    enum conn_state state;

    char *buf;
    size_t cap, len;
    size_t start;               /* current request's head starts here */
    size_t body_pos;            /* next unread body byte in buf */
    size_t body_end;            /* end of body bytes buffered */

    struct wharf_http_request preq;
    struct wharf_http_header *hdrs;
    char *scratch;
    struct wharf_http_chunked chunk;
    struct wharf_request *req;

    /* request body */
    bool chunked;
    bool body_done;
    uint64_t body_left;         /* Content-Length bytes still to read */
    bool expect_continue;
    bool sent_continue;
    int body_error;             /* 400/413 found while reading the body */

    /* response */
    bool head_sent;
    bool resp_chunked;
    bool resp_close;            /* close after this response */
    bool resp_complete;         /* last piece written */
    bool linger;                /* close with conn_linger(): the client may
                                   still be sending (error, unread body) */
    bool detached;
    bool send_more;             /* the head goes out with MSG_MORE */
    int64_t resp_left;          /* Content-Length bytes still to send, -1 */

    /* output queue (attached mode) */
    struct out_seg *out_head, *out_tail;
    size_t out_bytes;

    int64_t deadline_ms;        /* head timeout / keep-alive idle / flush */
    int64_t idle_since_ms;      /* when it last became idle (keep-alive) */
    bool trusted;               /* peer may set X-Forwarded-* */
    char peer[INET6_ADDRSTRLEN + 1];
    unsigned peer_port;
    unsigned server_port;       /* the listener's port, as a number */
    char xff[INET6_ADDRSTRLEN + 1];
};

struct worker_state {
    struct wharf_worker *w;
    struct conn list;           /* sentinel */
    unsigned count;
    unsigned long refused;      /* over max-connections since the last warning */
    int64_t refused_warned_ms;
    char *free_bufs;            /* idle read buffers, linked through
                                   their first bytes */
    unsigned nfree;
};

static struct worker_state ws;

/* ------------------------------------------------------------ read buffers */

/* A connection holds a read buffer (one block: the parser's header array,
 * its scratch, then the bytes read) only while a request is on its way or
 * being answered.  A keep-alive connection that goes idle with nothing
 * buffered gives it back to a small per-worker stack: a thousand idle
 * connections then cost their struct conn (~0.7 KiB) instead of ~36 KiB
 * of buffers each, and busy connections keep reusing the same warm
 * blocks.  Loop thread only (app threads use the block of a request they
 * run, which is never released under them). */
#define FREE_BUFS_MAX 32

static size_t buf_hdrs_size(const struct http_conf *conf)
{
    return (size_t)conf->max_headers * sizeof(struct wharf_http_header);
}

static bool conn_get_buf(struct conn *c)
{
    if (c->buf)
        return true;
    const struct http_conf *conf = c->conf;
    size_t hsize = buf_hdrs_size(conf), ssize = WHARF_HTTP_SCRATCH_SIZE(&conf->limits);
    char *b = ws.free_bufs;
    if (b) {
        memcpy(&ws.free_bufs, b, sizeof(char *));
        ws.nfree--;
    } else if (!(b = malloc(hsize + ssize + c->cap))) {
        wharf_log(WHARF_LOG_ERROR, "out of memory for a read buffer: closing %s", c->peer);
        return false;
    }
    c->hdrs = (struct wharf_http_header *)b;
    c->scratch = b + hsize;
    c->buf = b + hsize + ssize;
    /* the parser was reset before the block went back; usually the stack
     * hands the same block back to the same connection */
    if (c->preq.headers != c->hdrs)
        wharf_http_request_init(&c->preq, c->hdrs, (size_t)conf->max_headers, c->scratch, ssize);
    return true;
}

static void conn_put_buf(struct conn *c)
{
    char *b = (char *)c->hdrs;
    if (!b)
        return;
    c->buf = c->scratch = NULL;
    c->hdrs = NULL;
    if (ws.nfree >= FREE_BUFS_MAX) {
        free(b);
        return;
    }
    memcpy(b, &ws.free_bufs, sizeof(char *));
    ws.free_bufs = b;
    ws.nfree++;
}

/* Waiting for a request with nothing buffered: no buffer needed. */
static void conn_idle_release(struct conn *c)
{
    if (c->state == C_HEAD && c->len == 0 && c->buf)
        conn_put_buf(c);
}

static void conn_read(struct wharf_worker *w, int fd, unsigned events, void *arg);
static void process_buffer(struct conn *c);
static int flush_detached_queue(struct conn *c);

static bool name_is(const char *name, size_t len, const char *lower)
{
    size_t n = strlen(lower);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != lower[i])
            return false;
    }
    return true;
}

/* Text building without printf: the response head is written for every
 * request, and snprintf was a fifth of the user-space instructions of a
 * hello-world request. */
static inline size_t put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}
#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static size_t put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(p, tmp + i, sizeof tmp - i);
}

/* A chunk-size line: hex digits and CRLF. */
static size_t put_chunk_size(char *p, uint64_t v)
{
    char tmp[16];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    size_t n = put(p, tmp + i, sizeof tmp - i);
    return n + PUT_LIT(p + n, "\r\n");
}

/* ------------------------------------------------------------ basics */

static int64_t now(struct conn *c)
{
    return wharf_now_ms(c->w);
}

static void conn_free(struct conn *c)
{
    for (struct out_seg *s = c->out_head; s;) {
        struct out_seg *n = s->next;
        if (s->release)
            s->release(s->arg);
        free(s);
        s = n;
    }
    if (c->req)
        wharf_request_free(c->req);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    ws.count--;
    conn_put_buf(c);
    free(c);
}

static void conn_close(struct conn *c)
{
    wharf_loop_del(c->w, c->fd);
    close(c->fd);
    conn_free(c);
}

/* Close after a complete exchange: FIN, then close. */
static void conn_shutdown(struct conn *c)
{
    shutdown(c->fd, SHUT_WR);
    conn_close(c);
}

/*
 * Close when the client may still be sending (we refused its request, or
 * did not read its body): closing a socket with unread input makes the
 * kernel send an RST, and an RST that reaches the client before it read our
 * response destroys that response in its receive buffer -- the client sees
 * "connection reset" instead of 400/413.  So, as RFC 9112 9.6 asks (and
 * nginx's lingering_close does), shut the write side only, read and drop
 * whatever still comes for up to LINGER_MS, and close on the client's FIN
 * or at that deadline.  Bounded in time; costs one fd meanwhile.
 */
static void conn_linger(struct conn *c)
{
    if (shutdown(c->fd, SHUT_WR) < 0) {
        conn_close(c);
        return;
    }
    c->state = C_LINGER;
    c->deadline_ms = now(c) + LINGER_MS;
    wharf_loop_mod(c->w, c->fd, WHARF_EV_READ);
}

static void conn_finish(struct conn *c)
{
    if (c->linger)
        conn_linger(c);
    else
        conn_shutdown(c);
}

/* C_LINGER: drop input until EOF (or an error), a bounded amount per
 * wake-up so one client cannot hog the loop. */
static void linger_read(struct conn *c)
{
    char sink[16384];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(c->fd, sink, sizeof sink);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_close(c);
        return;
    }
}

/* ------------------------------------------------------------ output */

static const char *status_line(int status)
{
    switch (status) {
    case 400: return "HTTP/1.1 400 Bad Request\r\n";
    case 404: return "HTTP/1.1 404 Not Found\r\n";
    case 405: return "HTTP/1.1 405 Method Not Allowed\r\n";
    case 408: return "HTTP/1.1 408 Request Timeout\r\n";
    case 413: return "HTTP/1.1 413 Content Too Large\r\n";
    case 414: return "HTTP/1.1 414 URI Too Long\r\n";
    case 417: return "HTTP/1.1 417 Expectation Failed\r\n";
    case 431: return "HTTP/1.1 431 Request Header Fields Too Large\r\n";
    case 501: return "HTTP/1.1 501 Not Implemented\r\n";
    case 503: return "HTTP/1.1 503 Service Unavailable\r\n";
    case 505: return "HTTP/1.1 505 HTTP Version Not Supported\r\n";
    default: return "HTTP/1.1 500 Internal Server Error\r\n";
    }
}

static struct out_seg *seg_new(size_t len)
{
    struct out_seg *s = malloc(sizeof *s + len);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->len = len;
    return s;
}

static void queue_seg(struct conn *c, struct out_seg *s)
{
    if (c->out_tail)
        c->out_tail->next = s;
    else
        c->out_head = s;
    c->out_tail = s;
    c->out_bytes += s->len;
}

/* Copy what is left of iov (after `skip` bytes) into one queued segment. */
static int queue_iov(struct conn *c, const struct iovec *iov, int n, size_t skip)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (skip >= total)
        return 0;
    struct out_seg *s = seg_new(total - skip);
    if (!s)
        return -1;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        const char *p = iov[i].iov_base;
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        p += skip;
        l -= skip;
        skip = 0;
        memcpy(s->data + pos, p, l);
        pos += l;
    }
    queue_seg(c, s);
    return 0;
}

/* writev(), or sendmsg(MSG_MORE) while c->send_more says the body follows
 * at once (a file): the kernel then holds the head back and sends it in
 * the same segment as the file's first bytes, as nginx's tcp_nopush does,
 * without its two TCP_CORK setsockopt calls per response. */
static ssize_t sock_writev(struct conn *c, const struct iovec *iov, int n)
{
    if (!c->send_more)
        return writev(c->fd, iov, n);
    struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
    return sendmsg(c->fd, &m, MSG_MORE);
}

/* Attached: write without blocking; returns bytes written or -1. */
static ssize_t try_writev(struct conn *c, const struct iovec *iov, int n)
{
    for (;;) {
        ssize_t w = sock_writev(c, iov, n);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -1;
    }
}

static int wait_fd(struct conn *c, short events)
{
    struct pollfd p = { c->fd, events, 0 };
    for (;;) {
        int r = poll(&p, 1, (int)c->conf->socket_timeout_ms);
        if (r > 0)
            return (p.revents & (POLLERR | POLLNVAL)) && !(p.revents & events) ? -1 : 0;
        if (r == 0) {
            wharf_log(WHARF_LOG_INFO, "client %s: no progress for %" PRId64 " ms (socket-timeout): closing",
                      c->peer, c->conf->socket_timeout_ms);
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

/* Detached: write everything, waiting for the socket as needed. */
static int blocking_writev(struct conn *c, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = sock_writev(c, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_fd(c, POLLOUT) < 0)
                    return -1;
                continue;
            }
            return -1;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Flush queued output (attached).  Returns 1 when empty, 0 when the socket
 * is full, -1 on error. */
static int flush_queue(struct conn *c)
{
    while (c->out_head) {
        struct out_seg *s = c->out_head;
        ssize_t w;
        if (s->fd >= 0) {
            off_t off = s->off;
            w = sendfile(c->fd, s->fd, &off, s->len > 0x7ffff000 ? 0x7ffff000 : s->len);
            if (w == 0 && s->len > 0) { /* file shrank under us */
                wharf_log(WHARF_LOG_WARN, "client %s: file ended early while sending", c->peer);
                return -1;
            }
        } else {
            w = write(c->fd, s->data + s->off, s->len);
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        s->off += w;
        s->len -= (size_t)w;
        c->out_bytes -= (size_t)w;
        c->deadline_ms = now(c) + c->conf->socket_timeout_ms;
        if (s->len == 0) {
            c->out_head = s->next;
            if (!c->out_head)
                c->out_tail = NULL;
            if (s->release)
                s->release(s->arg);
            free(s);
        }
    }
    return 1;
}

/* A complete small response written by the plugin itself (errors found
 * before the core sees a request).  Always closes the connection. */
static void send_error(struct conn *c, int status, const char *why)
{
    const char *reason = status_line(status) + 13;
    size_t rlen = strlen(reason) - 2;
    char head[256];
    int n = snprintf(head, sizeof head,
                     "%.*sContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n"
                     "%.*s\n",
                     (int)strlen(status_line(status)), status_line(status), rlen + 1, (int)rlen, reason);
    wharf_log(WHARF_LOG_INFO, "%d to %s: %s", status, c->peer, why);
    c->linger = true;
    struct iovec iov = { head, (size_t)n };
    ssize_t w = try_writev(c, &iov, 1);
    if (w >= 0 && (size_t)w < (size_t)n && queue_iov(c, &iov, 1, (size_t)w) == 0) {
        c->state = C_CLOSING;
        c->deadline_ms = now(c) + c->conf->socket_timeout_ms;
        wharf_loop_mod(c->w, c->fd, WHARF_EV_WRITE);
        return;
    }
    conn_linger(c);
}

/* ------------------------------------------------------------ response head */

static bool no_body_status(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* Build the head into `out` (or a malloc'd buffer when it does not fit). */
static size_t build_head(struct conn *c, struct wharf_request *r, bool last, size_t body_len,
                         char *out, size_t cap, char **heap)
{
    *heap = NULL;
    const char *reason = wharf_response_reason(r);
    size_t reason_len = strlen(reason);
    /* status line, Date, Content-Length, Transfer-Encoding, Connection and
     * the blank line take at most 160 bytes besides the reason phrase */
    size_t need = 160 + reason_len;
    struct wharf_header h;
    for (size_t i = 0; wharf_response_header_at(r, i, &h); i++)
        need += h.name_len + h.value_len + 4;
    char *p = out;
    if (need > cap) {
        p = *heap = malloc(need);
        if (!p)
            return 0;
        cap = need;
    }
    /* Framing: Content-Length when the app gave one or when the whole body
     * is known now; chunked for HTTP/1.1 otherwise; HTTP/1.0 delimits by
     * closing the connection. */
    int status = r->status;
    bool bodyless = no_body_status(status);
    c->resp_chunked = false;
    c->resp_left = -1;
    int64_t cl = r->response_length;
    if (!bodyless && cl < 0 && last && !r->head_only)
        cl = (int64_t)body_len;
    if (!bodyless && cl < 0 && !r->head_only) {
        if (r->version >= 11)
            c->resp_chunked = true;
        else
            c->resp_close = true;
    }
    if (r->close_connection || wharf_worker_draining(c->w) || c->conf->keepalive_ms == 0)
        c->resp_close = true;
    /* A body that was not read and will not be drained (held back behind
     * "Expect: 100-continue", or too big to read and drop): t_done()
     * closes the connection after this response, so the head says so. */
    if (!c->body_done && ((c->expect_continue && !c->sent_continue) ||
                          (!c->chunked && c->body_left > (c->body_end - c->body_pos) + MAX_INLINE_DRAIN)))
        c->resp_close = true;
    if (cl >= 0 && !bodyless)
        c->resp_left = r->head_only ? -1 : cl;

    size_t n = PUT_LIT(p, "HTTP/1.1 ");
    p[n++] = (char)('0' + status / 100);
    p[n++] = (char)('0' + status / 10 % 10);
    p[n++] = (char)('0' + status % 10);
    p[n++] = ' ';
    n += put(p + n, reason, reason_len);
    n += PUT_LIT(p + n, "\r\nDate: ");
    n += put(p + n, wharf_http_date(c->w), 29);
    n += PUT_LIT(p + n, "\r\n");
    for (size_t i = 0; wharf_response_header_at(r, i, &h); i++) {
        /* hop-by-hop fields are ours to set */
        if ((h.name_len == 10 && (name_is(h.name, h.name_len, "connection") ||
                                  name_is(h.name, h.name_len, "keep-alive"))) ||
            (h.name_len == 14 && name_is(h.name, h.name_len, "content-length")) ||
            (h.name_len == 17 && name_is(h.name, h.name_len, "transfer-encoding")))
            continue;
        memcpy(p + n, h.name, h.name_len);
        n += h.name_len;
        p[n++] = ':';
        p[n++] = ' ';
        memcpy(p + n, h.value, h.value_len);
        n += h.value_len;
        p[n++] = '\r';
        p[n++] = '\n';
    }
    if (cl >= 0 && !bodyless) {
        n += PUT_LIT(p + n, "Content-Length: ");
        n += put_u64(p + n, (uint64_t)cl);
        n += PUT_LIT(p + n, "\r\n");
    }
    if (c->resp_chunked)
        n += PUT_LIT(p + n, "Transfer-Encoding: chunked\r\n");
    if (c->resp_close)
        n += PUT_LIT(p + n, "Connection: close\r\n");
    else if (r->version < 11)
        n += PUT_LIT(p + n, "Connection: keep-alive\r\n");
    p[n++] = '\r';
    p[n++] = '\n';
    return n;
}

/* ------------------------------------------------------------ transport */

static struct conn *conn_of(struct wharf_request *r)
{
    return r->transport_data;
}

/* Body error (413 on a chunked body over limit-post, 400 on bad chunks):
 * the client gets that status instead of whatever the app answers. */
static int replace_with_error(struct conn *c, struct wharf_request *r)
{
    if (c->head_sent)
        return -1;
    c->head_sent = true;
    r->head_sent = true;
    r->status = c->body_error; /* what the client gets: access log, metrics */
    c->resp_close = true;
    c->resp_complete = true;
    char head[256];
    const char *sl = status_line(c->body_error);
    int n = snprintf(head, sizeof head, "%sContent-Length: 0\r\nConnection: close\r\n\r\n", sl);
    struct iovec iov = { head, (size_t)n };
    if (c->detached)
        blocking_writev(c, &iov, 1);
    else
        try_writev(c, &iov, 1);
    return -1;
}

static int t_write(struct wharf_request *r, const struct iovec *iov, int iovcnt, bool last)
{
    struct conn *c = conn_of(r);
    if (c->body_error)
        return replace_with_error(c, r);
    size_t body_len = 0;
    for (int i = 0; i < iovcnt; i++)
        body_len += iov[i].iov_len;

    char headbuf[2048], *heap = NULL;
    size_t headlen = 0;
    if (!c->head_sent) {
        headlen = build_head(c, r, last, body_len, headbuf, sizeof headbuf, &heap);
        if (!headlen)
            return -1;
        c->head_sent = true;
        r->head_sent = true;
    }
    bool send_body = !r->head_only && !no_body_status(r->status);
    if (!send_body)
        body_len = 0;
    if (c->resp_left >= 0 && body_len > (uint64_t)c->resp_left) {
        wharf_log(WHARF_LOG_WARN, "%s %s: the app sent more than its Content-Length; cutting the response",
                  r->method, r->uri);
        body_len = (size_t)c->resp_left;
        c->resp_close = true;
    }

    struct iovec stackv[64];
    int cap = iovcnt + 4;
    struct iovec *v = cap <= 64 ? stackv : malloc((size_t)cap * sizeof *v);
    if (!v) {
        free(heap);
        return -1;
    }
    int n = 0;
    if (headlen)
        v[n++] = (struct iovec){ heap ? heap : headbuf, headlen };
    char chunk_hdr[24];
    if (send_body && body_len > 0) {
        if (c->resp_chunked) {
            v[n++] = (struct iovec){ chunk_hdr, put_chunk_size(chunk_hdr, body_len) };
        }
        size_t left = body_len;
        for (int i = 0; i < iovcnt && left > 0; i++) {
            size_t l = iov[i].iov_len < left ? iov[i].iov_len : left;
            if (l)
                v[n++] = (struct iovec){ iov[i].iov_base, l };
            left -= l;
        }
        if (c->resp_chunked)
            v[n++] = (struct iovec){ "\r\n", 2 };
        if (c->resp_left >= 0)
            c->resp_left -= (int64_t)body_len;
    }
    if (last && c->resp_chunked)
        v[n++] = (struct iovec){ "0\r\n\r\n", 5 };
    if (last) {
        c->resp_complete = true;
        if (c->resp_left > 0) {
            wharf_log(WHARF_LOG_WARN, "%s %s: the app sent %" PRId64 " bytes less than its Content-Length",
                      r->method, r->uri, c->resp_left);
            c->resp_close = true;
        }
    }

    int rc = 0;
    if (n > 0) {
        if (c->detached && !c->out_head) {
            rc = blocking_writev(c, v, n);
        } else {
            ssize_t w = c->out_head ? 0 : try_writev(c, v, n);
            if (w < 0 || queue_iov(c, v, n, (size_t)w) < 0)
                rc = -1;
            else if (c->detached && flush_detached_queue(c) < 0)
                rc = -1;
        }
    }
    if (v != stackv)
        free(v);
    free(heap);
    if (rc < 0)
        c->resp_close = true;
    return rc;
}

static int t_sendfile(struct wharf_request *r, int fd, off_t offset, size_t len,
                      void (*release)(void *), void *arg)
{
    struct conn *c = conn_of(r);
    /* head first, through the normal path; on TCP it waits for the file's
     * first bytes to leave in one segment with them */
    if (!c->head_sent) {
        c->send_more = !c->listener->unix_socket && len > 0 && !r->head_only && !no_body_status(r->status);
        int rc = t_write(r, NULL, 0, false);
        c->send_more = false;
        if (rc < 0) {
            if (release)
                release(arg);
            return -1;
        }
    }
    if (r->head_only || no_body_status(r->status) || len == 0) {
        if (release)
            release(arg);
        return 0;
    }
    if (c->resp_left >= 0) {
        if (len > (uint64_t)c->resp_left)
            len = (size_t)c->resp_left;
        c->resp_left -= (int64_t)len;
    }
    if (c->resp_chunked) {
        char hdr[24];
        size_t k = put_chunk_size(hdr, len);
        struct out_seg *s = seg_new(k);
        if (!s)
            goto fail;
        memcpy(s->data, hdr, k);
        queue_seg(c, s);
    }
    struct out_seg *s = seg_new(0);
    if (!s)
        goto fail;
    s->fd = fd;
    s->off = offset;
    s->len = len;
    s->release = release;
    s->arg = arg;
    queue_seg(c, s);
    if (c->resp_chunked) {
        struct out_seg *t = seg_new(2);
        if (!t)
            return -1;
        memcpy(t->data, "\r\n", 2);
        queue_seg(c, t);
    }
    if (c->detached)
        return flush_detached_queue(c);
    if (flush_queue(c) < 0) {
        c->resp_close = true;
        return -1;
    }
    return 0;
fail:
    if (release)
        release(arg);
    return -1;
}

/* Detached mode with queued segments (file parts): flush them, waiting. */
static int flush_detached_queue(struct conn *c)
{
    for (;;) {
        int r = flush_queue(c);
        if (r == 1)
            return 0;
        if (r < 0 || wait_fd(c, POLLOUT) < 0) {
            c->resp_close = true;
            return -1;
        }
    }
}

/* ------------------------------------------------------------ body */

static int send_continue(struct conn *c)
{
    c->sent_continue = true;
    struct iovec iov = { "HTTP/1.1 100 Continue\r\n\r\n", 25 };
    return blocking_writev(c, &iov, 1);
}

/* Read more bytes from the socket into buf[body_end ..), waiting. */
static ssize_t fill_body(struct conn *c)
{
    if (c->body_pos == c->body_end) {
        /* everything buffered was consumed: reuse the room after the head */
        c->body_pos = c->body_end = c->len = c->start + c->preq.head_len;
    } else if (c->body_end == c->cap && c->body_pos > c->start + c->preq.head_len) {
        size_t keep = c->body_end - c->body_pos, base = c->start + c->preq.head_len;
        memmove(c->buf + base, c->buf + c->body_pos, keep);
        c->body_pos = base;
        c->body_end = c->len = base + keep;
    }
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->body_end, c->cap - c->body_end);
        if (n > 0) {
            c->body_end += (size_t)n;
            /* the buffer's valid bytes end here now: what follows the body
             * (a pipelined request) is found from c->len after the response */
            c->len = c->body_end;
            return n;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (wait_fd(c, POLLIN) < 0)
            return -1;
    }
}

static ssize_t t_read_body(struct wharf_request *r, void *dst, size_t len)
{
    struct conn *c = conn_of(r);
    if (c->body_done || len == 0)
        return 0;
    if (c->body_error)
        return -1;
    if (c->expect_continue && !c->sent_continue && !c->head_sent && send_continue(c) < 0)
        return -1;
    if (!c->chunked) {
        if (len > c->body_left)
            len = (size_t)c->body_left;
        size_t avail = c->body_end - c->body_pos;
        ssize_t got;
        if (avail > 0) {
            got = (ssize_t)(avail < len ? avail : len);
            memcpy(dst, c->buf + c->body_pos, (size_t)got);
            c->body_pos += (size_t)got;
        } else {
            /* big bodies go straight from the socket to the app's buffer */
            for (;;) {
                got = read(c->fd, dst, len);
                if (got > 0)
                    break;
                if (got == 0) {
                    wharf_log(WHARF_LOG_INFO, "client %s closed the connection in the middle of the body",
                              c->peer);
                    c->resp_close = true;
                    return -1;
                }
                if (errno == EINTR)
                    continue;
                if ((errno != EAGAIN && errno != EWOULDBLOCK) || wait_fd(c, POLLIN) < 0) {
                    c->resp_close = true;
                    return -1;
                }
            }
        }
        c->body_left -= (uint64_t)got;
        if (c->body_left == 0)
            c->body_done = true;
        return got;
    }
    for (;;) {
        size_t used = 0, produced = 0;
        enum wharf_http_result res = WHARF_HTTP_NEED_MORE;
        if (c->body_end > c->body_pos)
            res = wharf_http_chunked_decode(&c->chunk, &c->conf->limits, c->buf + c->body_pos,
                                            c->body_end - c->body_pos, &used, dst, len, &produced);
        c->body_pos += used;
        if (res == WHARF_HTTP_ERROR) {
            c->body_error = c->chunk.status;
            c->resp_close = true;
            wharf_log(WHARF_LOG_INFO, "%d to %s: request body: %s%s", c->chunk.status, c->peer,
                      c->chunk.reason, c->chunk.status == 413 ? " (limit-post)" : "");
            return -1;
        }
        if (res == WHARF_HTTP_COMPLETE)
            c->body_done = true;
        if (produced > 0 || c->body_done)
            return (ssize_t)produced;
        ssize_t n = fill_body(c);
        if (n <= 0) {
            c->resp_close = true;
            return -1;
        }
    }
}

/* ------------------------------------------------------------ request hand-off */

static void t_detach(struct wharf_request *r)
{
    struct conn *c = conn_of(r);
    c->detached = true;
    /* blocking I/O from here on: poll(2) does the waiting.  The loop's
     * interest is left as it is: a client waits for its answer, so the
     * socket rarely becomes readable meanwhile, and an app running inline
     * keeps the loop from looking anyway.  conn_read() mutes the fd the
     * first time an event does come (pipelined bytes, a hang-up), so the
     * common request costs no epoll_ctl at all. */
}

static void start_next(struct conn *c);

/* Decide what to do with the rest of the request body the app did not
 * read, before the connection can carry another request. */
static bool body_needs_discard(struct conn *c)
{
    if (c->body_done)
        return false;
    if (!c->chunked && c->body_left <= c->body_end - c->body_pos) {
        c->body_pos += (size_t)c->body_left;
        c->body_left = 0;
        c->body_done = true;
        return false;
    }
    return true;
}

static void t_done(struct wharf_request *r)
{
    struct conn *c = conn_of(r);
    bool close_now = c->resp_close || !c->resp_complete || r->close_connection;
    if (c->expect_continue && !c->sent_continue && !c->body_done)
        close_now = true; /* the client may still send the body it held back */
    wharf_request_free(r);
    c->req = NULL;
    c->detached = false;
    if (!close_now && body_needs_discard(c)) {
        /* a small leftover body is read and dropped on the loop; a big one
         * is not worth it */
        uint64_t left = c->chunked ? MAX_INLINE_DRAIN : c->body_left;
        close_now = left > MAX_INLINE_DRAIN;
        if (!close_now) {
            c->state = C_DISCARD;
            c->deadline_ms = now(c) + c->conf->socket_timeout_ms;
        }
    }
    if (close_now) {
        c->linger = !c->body_done; /* the client may still send it */
        if (c->out_head) {
            c->state = C_CLOSING;
            c->deadline_ms = now(c) + c->conf->socket_timeout_ms;
            wharf_loop_mod(c->w, c->fd, WHARF_EV_WRITE);
            return;
        }
        conn_finish(c);
        return;
    }
    if (c->state == C_DISCARD) {
        wharf_loop_mod(c->w, c->fd, WHARF_EV_READ | (c->out_head ? WHARF_EV_WRITE : 0));
        process_buffer(c);
        return;
    }
    if (c->out_head) {
        c->state = C_FLUSH;
        c->deadline_ms = now(c) + c->conf->socket_timeout_ms;
        wharf_loop_mod(c->w, c->fd, WHARF_EV_WRITE);
        return;
    }
    start_next(c);
}

static const struct wharf_transport http_transport = {
    .read_body = t_read_body,
    .write = t_write,
    .sendfile = t_sendfile,
    .detach = t_detach,
    .done = t_done,
};

/* X-Forwarded-For from a trusted proxy: the last address in the list is the
 * one the proxy itself saw (nginx's $proxy_add_x_forwarded_for appends it). */
static void apply_forwarded(struct conn *c, struct wharf_request *r)
{
    if (!c->trusted)
        return;
    size_t len;
    const char *xff = wharf_request_header(r, "X-Forwarded-For", &len);
    if (xff && len) {
        const char *end = xff + len, *p = end;
        while (p > xff && p[-1] != ',')
            p--;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t n = (size_t)(e - p);
        unsigned char tmp[16];
        char addr[INET6_ADDRSTRLEN + 1];
        if (n > 0 && n < sizeof addr) {
            memcpy(addr, p, n);
            addr[n] = '\0';
            /* only a well-formed address replaces the peer's */
            if (inet_pton(AF_INET, addr, tmp) == 1 || inet_pton(AF_INET6, addr, tmp) == 1) {
                memcpy(c->xff, addr, n + 1);
                r->remote_addr = c->xff;
                r->remote_port = 0;
            }
        }
    }
    const char *proto = wharf_request_header(r, "X-Forwarded-Proto", &len);
    if (proto && len == 5 && strncasecmp(proto, "https", 5) == 0)
        r->scheme = "https";
    else if (proto && len == 4 && strncasecmp(proto, "http", 4) == 0)
        r->scheme = "http";
}

static void dispatch(struct conn *c)
{
    struct wharf_http_request *p = &c->preq;
    struct wharf_request *r = wharf_request_new(c->w, &http_transport, c);
    c->req = r;
    r->method = p->method;
    r->method_len = p->method_len;
    r->uri = p->target;
    r->uri_len = p->target_len;
    r->path = p->path;
    r->path_len = p->path_len;
    r->query = p->query;
    r->query_len = p->query_len;
    r->protocol = p->protocol;
    r->version = p->version;
    r->headers = (struct wharf_header *)p->headers;
    r->header_count = p->header_count;
    r->content_length = p->chunked ? -1 : (p->content_length > 0 ? p->content_length : 0);
    r->remote_addr = c->peer;
    r->remote_port = c->peer_port;
    r->scheme = "http";
    r->server_port = c->server_port;
    /* SERVER_NAME: the host the client asked for (at most 255 bytes),
     * without its port */
    if (p->host && p->host_len) {
        const char *host = p->host;
        size_t n = p->host_len < 255 ? p->host_len : 255;
        if (host[0] == '[') {
            const char *rb = memchr(host, ']', n);
            if (rb && (size_t)(rb + 1 - host) < n && rb[1] == ':')
                n = (size_t)(rb + 1 - host);
        } else {
            const char *colon = memrchr(host, ':', n);
            if (colon)
                n = (size_t)(colon - host);
        }
        r->server_name = wharf_request_strndup(r, host, n);
    } else {
        r->server_name = "localhost";
    }
    r->close_connection = !p->keep_alive;
    apply_forwarded(c, r);

    c->chunked = p->chunked;
    c->body_left = p->chunked ? 0 : (uint64_t)r->content_length;
    c->body_done = !p->chunked && c->body_left == 0;
    c->body_pos = c->start + p->head_len;
    c->body_end = c->len;
    c->expect_continue = p->expect_continue;
    c->sent_continue = false;
    c->body_error = 0;
    c->head_sent = false;
    c->resp_close = false;
    c->resp_complete = false;
    c->detached = false;
    c->resp_left = -1;
    if (p->chunked)
        wharf_http_chunked_init(&c->chunk);
    c->state = C_REQUEST;
    c->deadline_ms = 0;
    wharf_request_process(r);
}

/* A small Content-Length body (one that fits in the connection's buffer)
 * is received on the event loop before the request goes to the core, as
 * nginx buffers request bodies: an app running inline on the loop thread
 * (threads = 1) or an app thread is then never held by a client that
 * sends its form slowly.  Bigger bodies, chunked bodies and bodies behind
 * "Expect: 100-continue" stream to the app as they come. */
static bool body_fits_and_is_missing(struct conn *c)
{
    const struct wharf_http_request *p = &c->preq;
    if (p->chunked || p->content_length <= 0 || p->expect_continue)
        return false;
    size_t body_start = c->start + p->head_len;
    if ((uint64_t)p->content_length > c->cap - body_start)
        return false;
    return c->len - body_start < (uint64_t)p->content_length;
}

/* Parse what is buffered; dispatch a complete request or answer an error. */
static void process_buffer(struct conn *c)
{
    if (c->state == C_DISCARD) {
        /* drop the unread body buffered so far */
        if (!c->chunked) {
            size_t avail = c->body_end - c->body_pos;
            size_t take = avail < c->body_left ? avail : (size_t)c->body_left;
            c->body_pos += take;
            c->body_left -= take;
            if (c->body_left == 0)
                c->body_done = true;
        } else {
            char sink[4096];
            while (!c->body_done && c->body_end > c->body_pos) {
                size_t used = 0, produced = 0;
                enum wharf_http_result res = wharf_http_chunked_decode(
                    &c->chunk, &c->conf->limits, c->buf + c->body_pos, c->body_end - c->body_pos, &used,
                    sink, sizeof sink, &produced);
                c->body_pos += used;
                if (res == WHARF_HTTP_ERROR) {
                    wharf_log(WHARF_LOG_INFO, "%d to %s: unread request body: %s: closing", c->chunk.status,
                              c->peer, c->chunk.reason);
                    c->linger = true;
                    if (c->out_head) { /* the response is still on its way */
                        c->state = C_CLOSING;
                        c->deadline_ms = now(c) + c->conf->socket_timeout_ms;
                        wharf_loop_mod(c->w, c->fd, WHARF_EV_WRITE);
                        return;
                    }
                    conn_linger(c);
                    return;
                }
                if (res == WHARF_HTTP_COMPLETE)
                    c->body_done = true;
                if (used == 0 && produced == 0)
                    break;
            }
        }
        if (!c->body_done) {
            /* keep only unparsed bytes; nothing of the old head is needed */
            size_t keep = c->body_end - c->body_pos;
            memmove(c->buf, c->buf + c->body_pos, keep);
            c->start = 0;
            c->preq.head_len = 0;
            c->body_pos = 0;
            c->body_end = c->len = keep;
            return;
        }
        c->len = c->body_end;
        start_next(c);
        return;
    }
    if (c->state == C_BODY) {
        if (!body_fits_and_is_missing(c))
            dispatch(c);
        return;
    }
    if (c->state != C_HEAD)
        return;
    enum wharf_http_result res =
        wharf_http_parse_head(&c->preq, &c->conf->limits, c->buf + c->start, c->len - c->start);
    if (res == WHARF_HTTP_NEED_MORE)
        return;
    if (res == WHARF_HTTP_ERROR) {
        char why[160];
        if (c->preq.status == 431)
            snprintf(why, sizeof why, "%s (the head exceeds buffer-size = %zu bytes or http-max-headers)",
                     c->preq.reason, c->conf->buffer_size);
        else if (c->preq.status == 413)
            snprintf(why, sizeof why, "%s (limit-post = %zu)", c->preq.reason, c->conf->limit_post);
        else
            snprintf(why, sizeof why, "%s", c->preq.reason);
        send_error(c, c->preq.status, why);
        return;
    }
    if (body_fits_and_is_missing(c)) {
        /* keeps the same deadline: head and small body within http-timeout */
        c->state = C_BODY;
        return;
    }
    dispatch(c);
}

/* After a response: move pipelined bytes to the front, go back to
 * reading heads (or close when the worker drains). */
static void start_next(struct conn *c)
{
    size_t next = c->body_pos > c->start + c->preq.head_len ? c->body_pos : c->start + c->preq.head_len;
    if (c->state == C_REQUEST || c->state == C_FLUSH) {
        if (c->chunked || c->body_left == 0)
            next = c->body_pos;
    }
    if (next > c->len)
        next = c->len;
    size_t keep = c->len - next;
    if (keep)
        memmove(c->buf, c->buf + next, keep);
    c->len = keep;
    c->start = 0;
    c->body_pos = c->body_end = 0;
    wharf_http_request_reset(&c->preq);
    c->state = C_HEAD;
    /* Draining or not, the response just sent promised keep-alive (a
     * response built while draining says Connection: close and t_done()
     * closes): the drain began while it was being made, and the client may
     * be sending its next request right now.  conn_timer() closes the
     * connection after DRAIN_IDLE_GRACE_MS of silence, or answers that
     * request with Connection: close. */
    c->deadline_ms = now(c) + (keep ? c->conf->header_timeout_ms : c->conf->keepalive_ms);
    c->idle_since_ms = now(c);
    wharf_loop_mod(c->w, c->fd, WHARF_EV_READ);
    if (keep)
        process_buffer(c);
    else
        conn_idle_release(c);
}

/* ------------------------------------------------------------ events */

static void conn_read(struct wharf_worker *w, int fd, unsigned events, void *arg)
{
    struct conn *c = arg;
    if (c->detached) {
        /* an app thread owns the socket: stop level-triggered wake-ups
         * until t_done() gives it back (start_next() re-arms READ) */
        wharf_loop_mod(w, fd, 0);
        return;
    }
    if (c->state == C_LINGER) {
        linger_read(c);
        return;
    }
    if (events & WHARF_EV_WRITE) {
        int r = flush_queue(c);
        if (r < 0) {
            conn_close(c);
            return;
        }
        if (r == 1) {
            if (c->state == C_CLOSING) {
                conn_finish(c);
                return;
            }
            if (c->state == C_FLUSH) {
                start_next(c);
                return;
            }
            if (c->state == C_DISCARD)
                wharf_loop_mod(c->w, c->fd, WHARF_EV_READ);
        }
    }
    if (!(events & (WHARF_EV_READ | WHARF_EV_ERROR)))
        return;
    if (c->state == C_CLOSING || c->state == C_FLUSH || c->state == C_REQUEST) {
        if (events & WHARF_EV_ERROR && !(events & WHARF_EV_READ))
            conn_close(c);
        return;
    }
    if (c->state == C_HEAD && c->len == 0 && c->preq.state_.seen == 0)
        c->deadline_ms = now(c) + c->conf->header_timeout_ms; /* first byte of a new head */
    if (!conn_get_buf(c)) {
        conn_close(c);
        return;
    }
    size_t room_end = c->cap;
    if (c->state == C_DISCARD) {
        if (c->len == c->cap) {
            c->len = c->body_pos = c->body_end = 0;
        }
    } else if (c->len == c->cap) {
        /* the head does not fit: the parser has seen buffer-size + 1 bytes
         * by now and said 431; this is a belt for the braces */
        send_error(c, 431, "request head larger than the buffer");
        return;
    }
    ssize_t n = read(c->fd, c->buf + c->len, room_end - c->len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (n < 0) {
        conn_idle_release(c); /* woken for nothing (or at accept) */
        return;
    }
    bool was_idle = c->state == C_HEAD && c->len == 0;
    c->len += (size_t)n;
    if (c->state == C_DISCARD)
        c->body_end = c->len;
    if (was_idle)
        c->deadline_ms = now(c) + c->conf->header_timeout_ms;
    process_buffer(c);
}

/* While draining, an idle keep-alive connection is closed only after it
 * stayed idle this long: a busy client's next request is usually already
 * on its way, and closing under it would fail that request.  It gets its
 * answer with "Connection: close" instead. */
#define DRAIN_IDLE_GRACE_MS 1000

/* Is there a request waiting on this idle connection? */
static bool has_pending_bytes(struct conn *c)
{
    char b;
    return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

/* Timeouts and drain, a few times a second.  Connections whose request is
 * with the app are left alone: harakiri is what limits apps. */
static void conn_timer(struct wharf_worker *w, void *arg)
{
    (void)arg;
    int64_t t = wharf_now_ms(w);
    bool draining = wharf_worker_draining(w);
    for (struct conn *c = ws.list.next, *next; c != &ws.list; c = next) {
        next = c->next;
        if (c->state == C_REQUEST)
            continue;
        bool idle = c->state == C_HEAD && c->len == 0;
        if (draining && idle && t - c->idle_since_ms >= DRAIN_IDLE_GRACE_MS) {
            if (has_pending_bytes(c))
                conn_read(w, c->fd, WHARF_EV_READ, c);
            else
                conn_shutdown(c);
            continue;
        }
        if (c->deadline_ms && t >= c->deadline_ms) {
            if (c->state == C_LINGER)
                conn_close(c);
            else if (c->state == C_HEAD && !idle)
                send_error(c, 408, "request head not received within http-timeout");
            else if (c->state == C_BODY)
                send_error(c, 408, "request body not received within http-timeout");
            else if (idle)
                conn_close(c);
            else {
                wharf_log(WHARF_LOG_INFO, "client %s: no progress for %" PRId64 " ms: closing", c->peer,
                          c->conf->socket_timeout_ms);
                conn_close(c);
            }
        }
    }
}

void http_accept(struct wharf_worker *w, int fd, const struct sockaddr *peer, unsigned peer_len,
                 void *arg)
{
    (void)peer_len;
    struct http_listener *l = arg;
    struct http_conf *conf = l->conf;
    if (conf->max_connections > 0 && ws.count >= (unsigned)conf->max_connections) {
        /* tell the operator, at most once a second */
        ws.refused++;
        int64_t t = wharf_now_ms(w);
        if (!ws.refused_warned_ms || t - ws.refused_warned_ms >= 1000) {
            wharf_log(WHARF_LOG_WARN,
                      "max-connections = %ld reached in worker %u: new connections are closed "
                      "(%lu since the last warning)",
                      conf->max_connections, wharf_worker_id(w), ws.refused);
            ws.refused_warned_ms = t;
            ws.refused = 0;
        }
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        wharf_log(WHARF_LOG_ERROR, "out of memory for a new connection");
        close(fd);
        return;
    }
    c->fd = fd;
    c->w = w;
    c->conf = conf;
    c->listener = l;
    c->server_port = (unsigned)atoi(l->port);
    c->cap = conf->buffer_size + 1 + BODY_ROOM;
    c->state = C_HEAD; /* the read buffer comes with the first read */
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        inet_ntop(AF_INET, &in->sin_addr, c->peer, sizeof c->peer);
        c->peer_port = ntohs(in->sin_port);
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, (const char *)&in6->sin6_addr + 12, c->peer, sizeof c->peer);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, c->peer, sizeof c->peer);
        c->peer_port = ntohs(in6->sin6_port);
    } else {
        c->peer[0] = '\0'; /* unix socket: no address, as uWSGI and gunicorn */
    }
    if (peer->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->trusted = http_peer_trusted(conf, peer);
    c->deadline_ms = wharf_now_ms(w) + conf->header_timeout_ms;
    c->idle_since_ms = wharf_now_ms(w);
    c->next = &ws.list;
    c->prev = ws.list.prev;
    ws.list.prev->next = c;
    ws.list.prev = c;
    ws.count++;
    if (wharf_loop_add(w, fd, WHARF_EV_READ, conn_read, c) < 0) {
        close(fd);
        conn_free(c);
        return;
    }
    /* the request usually came with the connection: try at once */
    conn_read(w, fd, WHARF_EV_READ, c);
}

int http_conn_worker_start(struct wharf_worker *w, struct http_conf *conf)
{
    (void)conf;
    if (ws.w)
        return WHARF_OK; /* one timer for every http-socket */
    ws.w = w;
    ws.list.next = ws.list.prev = &ws.list;
    return wharf_loop_every(w, 250, conn_timer, NULL);
}

void http_conn_worker_stop(struct wharf_worker *w)
{
    (void)w;
    while (ws.list.next != &ws.list)
        conn_close(ws.list.next);
    while (ws.free_bufs) {
        char *b = ws.free_bufs;
        memcpy(&ws.free_bufs, b, sizeof(char *));
        free(b);
    }
    ws.nfree = 0;
}
