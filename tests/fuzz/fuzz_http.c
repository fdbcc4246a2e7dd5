/*
 * libFuzzer harness: whole HTTP/1.x request streams (pipelined requests,
 * Content-Length and chunked bodies) through wharf_http_parse_head() and
 * wharf_http_chunked_decode().
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Iplugins/http tests/fuzz/fuzz_http.c plugins/http/http_parser.c \
 *       -o tests/fuzz/http_fuzzer
 *   tests/fuzz/http_fuzzer tests/fuzz/corpus/http
 *
 * Besides crashes and sanitizer reports it checks invariants and aborts
 * when one fails:
 *   - the verdict and every result are the same whether the input comes in
 *     one piece, split at a point derived from the input, byte by byte, or
 *     with the buffer moved between calls;
 *   - NEED_MORE never modifies the buffer; COMPLETE never writes past the
 *     head;
 *   - results respect the grammar and the limits (lengths match strlen,
 *     names are tokens, values are trimmed and free of controls, ...);
 *   - chunked decoding gives the same bytes and verdict however it is fed
 *     (split input, tiny output buffers, in place or not).
 * The limits are picked from a hash of the input so the limit paths are
 * exercised too.
 */
#include "http_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXH 128

static uint32_t hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void pick_limits(struct wharf_http_limits *lim, uint32_t h)
{
    wharf_http_limits_default(lim);
    switch (h % 4) {
    case 0:
        break;
    case 1: /* small: every limit reachable by short inputs */
        lim->max_head = 64 + h / 4 % 200;
        lim->max_target = 8 + h / 1024 % 64;
        lim->max_headers = 1 + h / 65536 % 8;
        lim->max_body = h / 8 % 100;
        lim->max_chunk_ext = 1 + h / 32 % 20;
        lim->max_trailer = 2 + h / 4096 % 40;
        break;
    case 2:
        lim->max_body = 1 + h / 4 % 5000;
        lim->max_headers = 20;
        break;
    default:
        lim->max_head = 512;
        lim->max_target = 100;
        lim->max_chunk_ext = 8;
        break;
    }
}

struct run {
    struct wharf_http_request req;
    struct wharf_http_header hdrs[MAXH];
    char scratch[70000];
    int rc;
};

static void start(struct run *r)
{
    wharf_http_request_init(&r->req, r->hdrs, MAXH, r->scratch,
                            sizeof r->scratch);
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Results that must hold for any COMPLETE head. */
static void check_complete(const struct run *r, const char *buf, size_t n,
                           const struct wharf_http_limits *lim)
{
    const struct wharf_http_request *q = &r->req;
    size_t max_head = lim->max_head ? lim->max_head : WHARF_HTTP_DEFAULT_MAX_HEAD;
    size_t max_target = lim->max_target ? lim->max_target : max_head;

    CHECK(q->head_len > 0 && q->head_len <= n && q->head_len <= max_head);
    CHECK(q->version == 10 || q->version == 11);
    CHECK(q->method_len > 0 && q->method_len <= WHARF_HTTP_MAX_METHOD);
    CHECK(strlen(q->method) == q->method_len);
    for (size_t i = 0; i < q->method_len; i++)
        CHECK(is_tchar((unsigned char)q->method[i]));
    CHECK(strcmp(q->method, "CONNECT") != 0);
    CHECK(q->target >= buf && q->target + q->target_len < buf + q->head_len);
    CHECK(strlen(q->target) == q->target_len && q->target_len <= max_target);
    CHECK(strlen(q->path) == q->path_len && q->path_len > 0);
    CHECK(q->path_len <= q->target_len);
    CHECK(strlen(q->query) == q->query_len);
    CHECK(memchr(q->target, '#', q->target_len) == NULL);
    CHECK(strcmp(q->protocol, q->version == 11 ? "HTTP/1.1" : "HTTP/1.0") == 0);
    if (q->target[0] == '*')
        CHECK(strcmp(q->method, "OPTIONS") == 0 && strcmp(q->path, "*") == 0);
    else
        CHECK(q->path[0] == '/');
    if (q->target[0] != '*' && q->target[0] != '/')
        CHECK(q->absolute_form && q->host && q->host_len > 0);
    if (q->version == 11)
        CHECK(q->has_host);
    if (q->host)
        CHECK(strlen(q->host) == q->host_len);
    CHECK(q->header_count <= MAXH);
    if (lim->max_headers)
        CHECK(q->header_count <= lim->max_headers);
    for (size_t i = 0; i < q->header_count; i++) {
        const struct wharf_http_header *h = &q->headers[i];
        CHECK(h->name >= buf && h->value + h->value_len < buf + q->head_len);
        CHECK(h->name_len > 0 && strlen(h->name) == h->name_len);
        CHECK(strlen(h->value) == h->value_len);
        for (size_t j = 0; j < h->name_len; j++)
            CHECK(is_tchar((unsigned char)h->name[j]));
        for (size_t j = 0; j < h->value_len; j++) {
            unsigned char c = (unsigned char)h->value[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h->value_len) {
            CHECK(h->value[0] != ' ' && h->value[0] != '\t');
            CHECK(h->value[h->value_len - 1] != ' ' &&
                  h->value[h->value_len - 1] != '\t');
        }
    }
    if (q->chunked)
        CHECK(q->content_length == -1 && q->version == 11);
    if (q->content_length >= 0 && lim->max_body)
        CHECK((uint64_t)q->content_length <= lim->max_body);
    if (q->expect_continue)
        CHECK(q->version == 11);
}

/* Two runs over the same input must agree on everything. */
static void same(const struct run *a, const struct run *b)
{
    const struct wharf_http_request *x = &a->req, *y = &b->req;
    CHECK(a->rc == b->rc);
    if (a->rc == WHARF_HTTP_ERROR) {
        CHECK(x->status == y->status);
        CHECK(strcmp(x->reason, y->reason) == 0);
        return;
    }
    if (a->rc != WHARF_HTTP_COMPLETE)
        return;
    CHECK(x->head_len == y->head_len);
    CHECK(x->version == y->version && x->header_count == y->header_count);
    CHECK(x->content_length == y->content_length);
    CHECK(x->chunked == y->chunked && x->keep_alive == y->keep_alive);
    CHECK(x->expect_continue == y->expect_continue);
    CHECK(x->has_host == y->has_host && x->encoded_slash == y->encoded_slash);
    CHECK(x->absolute_form == y->absolute_form);
    CHECK(strcmp(x->method, y->method) == 0);
    CHECK(strcmp(x->target, y->target) == 0);
    CHECK(x->path_len == y->path_len && memcmp(x->path, y->path, x->path_len) == 0);
    CHECK(strcmp(x->query, y->query) == 0);
    CHECK((x->host == NULL) == (y->host == NULL));
    if (x->host)
        CHECK(strcmp(x->host, y->host) == 0);
    for (size_t i = 0; i < x->header_count; i++) {
        CHECK(strcmp(x->headers[i].name, y->headers[i].name) == 0);
        CHECK(strcmp(x->headers[i].value, y->headers[i].value) == 0);
    }
}

/* Parse `src` (n bytes) fed in the pieces ending at cuts[0..ncuts), then
 * at n.  With `move`, each call gets a fresh copy of the buffer at a new
 * address (the parser must start over and still agree). */
static void parse_split(struct run *r, const uint8_t *src, size_t n,
                        const struct wharf_http_limits *lim,
                        const size_t *cuts, size_t ncuts, bool move,
                        char **bufp)
{
    char *buf = malloc(n ? n : 1);
    memcpy(buf, src, n);
    start(r);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t len = i < ncuts ? cuts[i] : n;
        if (move) {
            char *nb = malloc(n ? n : 1);
            memcpy(nb, buf, n);
            free(buf);
            buf = nb;
        }
        r->rc = wharf_http_parse_head(&r->req, lim, buf, len);
        if (r->rc == WHARF_HTTP_NEED_MORE)
            CHECK(memcmp(buf, src, n) == 0); /* nothing written */
        if (r->rc != WHARF_HTTP_NEED_MORE)
            break;
    }
    *bufp = buf;
}

static struct run whole, other;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    uint32_t h = hash(data, size);
    struct wharf_http_limits lim;
    pick_limits(&lim, h);

    char *stream = malloc(size ? size : 1);
    memcpy(stream, data, size);
    size_t off = 0;
    for (int nreq = 0; off < size && nreq < 64; nreq++) {
        const uint8_t *src = data + off;
        size_t n = size - off;
        h = h * 31 + (uint32_t)off;

        /* whole, in the stream buffer (the one the body is decoded in) */
        start(&whole);
        whole.rc = wharf_http_parse_head(&whole.req, &lim, stream + off, n);
        CHECK(whole.rc == wharf_http_parse_head(&whole.req, &lim, stream + off, n));
        if (whole.rc == WHARF_HTTP_NEED_MORE)
            CHECK(memcmp(stream + off, src, n) == 0);
        if (whole.rc == WHARF_HTTP_ERROR) {
            int s = whole.req.status;
            CHECK(whole.req.reason != NULL);
            CHECK(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 ||
                  s == 501 || s == 505);
        }
        if (whole.rc == WHARF_HTTP_COMPLETE) {
            check_complete(&whole, stream + off, n, &lim);
            /* nothing after the head was touched */
            CHECK(memcmp(stream + off + whole.req.head_len,
                         src + whole.req.head_len, n - whole.req.head_len) == 0);
        }

        /* split at one point; then at two points with the buffer moving */
        char *buf;
        size_t cuts[2] = { n ? h % (n + 1) : 0, 0 };
        parse_split(&other, src, n, &lim, cuts, 1, false, &buf);
        same(&whole, &other);
        free(buf);
        cuts[1] = cuts[0] + (n - cuts[0]) / 2;
        parse_split(&other, src, n, &lim, cuts, 2, true, &buf);
        same(&whole, &other);
        free(buf);

        /* byte by byte (linear thanks to the resumable scan) */
        if (n <= 2048) {
            char *bb = malloc(n ? n : 1);
            memcpy(bb, src, n);
            start(&other);
            other.rc = WHARF_HTTP_NEED_MORE;
            for (size_t len = 0; len <= n && other.rc == WHARF_HTTP_NEED_MORE; len++)
                other.rc = wharf_http_parse_head(&other.req, &lim, bb, len);
            same(&whole, &other);
            free(bb);
        }

        if (whole.rc != WHARF_HTTP_COMPLETE)
            break;
        off += whole.req.head_len;
        if (whole.req.chunked) {
            size_t used;
            if (chunked(&lim, stream + off, size - off, h, &used) !=
                WHARF_HTTP_COMPLETE)
                break;
            off += used;
        } else if (whole.req.content_length > 0) {
            if ((uint64_t)whole.req.content_length > size - off)
                break;
            off += (size_t)whole.req.content_length;
        }
        /* the next request is parsed from the untouched original bytes */
        memcpy(stream + off, data + off, size - off);
    }
    free(stream);
    return 0;
}
