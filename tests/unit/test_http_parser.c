/*
 * Unit tests of plugins/http/http_parser.c (Check).
 *
 * Every request given to the head parser through parse() is parsed whole,
 * then again fed one byte at a time, split at every possible point, and
 * with the buffer moved between calls; all must give the same verdict and
 * the same results.  Statuses are exact.  The corpus test runs
 * tests/data/http-corpus.txt (RFC verdict vs ours, see that file).
 */
#include "http_parser.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef WHARF_TEST_SRCDIR
#define WHARF_TEST_SRCDIR "."
#endif

#define NH 64

static struct wharf_http_limits LIM;
static struct wharf_http_header H[NH];
static char SCRATCH[8192];
static struct wharf_http_request R;
static char BUF[65536];
static size_t BUFLEN;

static void setup(void)
{
    wharf_http_limits_default(&LIM);
    memset(BUF, 0, sizeof BUF);
}

/* A copy of the results that matter, to compare two parses. */
struct summary {
    int rc, status;
    size_t head_len, header_count;
    int64_t content_length;
    bool chunked, keep_alive, expect_continue, has_host, encoded_slash;
    char text[4096]; /* method, target, path, query, host, fields */
};

static void summarize(struct summary *s, int rc,
                      const struct wharf_http_request *r)
{
    memset(s, 0, sizeof *s);
    s->rc = rc;
    s->status = r->status;
    if (rc != WHARF_HTTP_COMPLETE)
        return;
    s->head_len = r->head_len;
    s->header_count = r->header_count;
    s->content_length = r->content_length;
    s->chunked = r->chunked;
    s->keep_alive = r->keep_alive;
    s->expect_continue = r->expect_continue;
    s->has_host = r->has_host;
    s->encoded_slash = r->encoded_slash;
    int n = snprintf(s->text, sizeof s->text, "%s|%s|%.*s|%s|%s|", r->method,
                     r->target, (int)r->path_len, r->path, r->query,
                     r->host ? r->host : "(none)");
    for (size_t i = 0; i < r->header_count && n > 0 && (size_t)n < sizeof s->text; i++)
        n += snprintf(s->text + n, sizeof s->text - (size_t)n, "%s=%s|",
                      r->headers[i].name, r->headers[i].value);
}

static void ck_same(const struct summary *a, const struct summary *b,
                    const char *how, size_t at)
{
    ck_assert_msg(a->rc == b->rc && a->status == b->status,
                  "%s (at %zu): rc %d/%d status %d/%d", how, at, a->rc, b->rc,
                  a->status, b->status);
    ck_assert_msg(memcmp(a, b, sizeof *a) == 0, "%s (at %zu): results differ:\n%s\n%s",
                  how, at, a->text, b->text);
}

/* Parse s[0..n) whole into R/BUF (the result kept for the caller), and
 * check every other way of feeding it agrees. */
static int parsen(const char *s, size_t n)
{
    static char tmp[65536], tmp2[65536];
    static struct wharf_http_request r2;
    static struct wharf_http_header h2[NH];
    static char sc2[8192];
    struct summary whole, other;

    ck_assert_uint_le(n, sizeof BUF);
    /* byte by byte */
    memcpy(tmp, s, n);
    wharf_http_request_init(&r2, h2, NH, sc2, sizeof sc2);
    int rc = WHARF_HTTP_NEED_MORE;
    for (size_t len = 0; len <= n && rc == WHARF_HTTP_NEED_MORE; len++) {
        rc = wharf_http_parse_head(&r2, &LIM, tmp, len);
        if (rc == WHARF_HTTP_NEED_MORE)
            ck_assert_msg(memcmp(tmp, s, n) == 0, "NEED_MORE wrote to the buffer");
    }
    summarize(&other, rc, &r2);

    /* whole */
    memcpy(BUF, s, n);
    BUFLEN = n;
    wharf_http_request_init(&R, H, NH, SCRATCH, sizeof SCRATCH);
    rc = wharf_http_parse_head(&R, &LIM, BUF, n);
    summarize(&whole, rc, &R);
    ck_same(&whole, &other, "byte by byte", 0);
    if (rc == WHARF_HTTP_COMPLETE)
        ck_assert_msg(memcmp(BUF + R.head_len, s + R.head_len, n - R.head_len) == 0,
                      "bytes after the head were modified");

    /* split at every point (short inputs), and moved at that point */
    if (n <= 1024) {
        for (size_t cut = 0; cut <= n; cut++) {
            for (int move = 0; move < 2; move++) {
                memcpy(tmp, s, n);
                wharf_http_request_init(&r2, h2, NH, sc2, sizeof sc2);
                int rc2 = wharf_http_parse_head(&r2, &LIM, tmp, cut);
                char *b2 = tmp;
                if (move) {
                    memcpy(tmp2, tmp, n);
                    b2 = tmp2;
                }
                if (rc2 == WHARF_HTTP_NEED_MORE)
                    rc2 = wharf_http_parse_head(&r2, &LIM, b2, n);
                summarize(&other, rc2, &r2);
                ck_same(&whole, &other, move ? "moved at" : "split at", cut);
            }
        }
    }
    return rc;
}

static int parse(const char *s)
{
    return parsen(s, strlen(s));
}

#define ck_ok(req)                                                           \
    do {                                                                     \
        int rc_ = parse(req);                                                \
        ck_assert_msg(rc_ == WHARF_HTTP_COMPLETE, "expected COMPLETE, got %d " \
                      "(%d %s) for %s", rc_, R.status,                       \
                      R.reason ? R.reason : "", #req);                       \
    } while (0)

#define ck_status(req, st)                                                   \
    do {                                                                     \
        int rc_ = parse(req);                                                \
        ck_assert_msg(rc_ == WHARF_HTTP_ERROR && R.status == (st),           \
                      "expected %d, got rc %d status %d (%s) for %s", (st),  \
                      rc_, R.status, R.reason ? R.reason : "", #req);        \
        ck_assert_ptr_nonnull(R.reason);                                     \
    } while (0)

#define ck_more(req)                                                         \
    ck_assert_int_eq(parse(req), WHARF_HTTP_NEED_MORE)

#define HOST "Host: h\r\n"
#define GET(target) "GET " target " HTTP/1.1\r\n" HOST "\r\n"
#define WITH(fields) "POST / HTTP/1.1\r\n" HOST fields "\r\n"

static const char *hdr(const char *name)
{
    for (size_t i = 0; i < R.header_count; i++)
        if (strcasecmp(R.headers[i].name, name) == 0)
            return R.headers[i].value;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Request line                                                             */
/* ------------------------------------------------------------------------ */

START_TEST(simple_get)
{
    const char *req = "GET /index.html HTTP/1.1\r\nHost: example.com\r\n"
                      "Accept: */*\r\n\r\n";
    ck_ok(req);
    ck_assert_str_eq(R.method, "GET");
    ck_assert_uint_eq(R.method_len, 3);
    ck_assert_str_eq(R.target, "/index.html");
    ck_assert_str_eq(R.path, "/index.html");
    ck_assert_uint_eq(R.path_len, 11);
    ck_assert_str_eq(R.query, "");
    ck_assert_uint_eq(R.query_len, 0);
    ck_assert_str_eq(R.protocol, "HTTP/1.1");
    ck_assert_int_eq(R.version, 11);
    ck_assert_str_eq(R.host, "example.com");
    ck_assert_uint_eq(R.host_len, 11);
    ck_assert(R.has_host);
    ck_assert_uint_eq(R.header_count, 2);
    ck_assert_str_eq(R.headers[0].name, "Host");
    ck_assert_str_eq(R.headers[1].value, "*/*");
    ck_assert_uint_eq(R.headers[1].value_len, 3);
    ck_assert_int_eq(R.content_length, -1);
    ck_assert(!R.chunked);
    ck_assert(R.keep_alive);
    ck_assert(!R.expect_continue && !R.encoded_slash && !R.absolute_form);
    ck_assert_uint_eq(R.head_len, strlen(req));
    /* zero copy: everything points into the buffer */
    ck_assert_ptr_eq(R.method, BUF);
    ck_assert_ptr_eq(R.path, R.target);
    ck_assert_ptr_eq(R.headers[0].name, BUF + 26);
}
END_TEST

START_TEST(query_and_percent_decoding)
{
    ck_ok(GET("/a%20b/c%41?x=1&y=%zz"));
    ck_assert_str_eq(R.target, "/a%20b/c%41?x=1&y=%zz");
    ck_assert_str_eq(R.path, "/a b/cA");
    ck_assert_uint_eq(R.path_len, 7);
    ck_assert_str_eq(R.query, "x=1&y=%zz"); /* raw, not checked */
    ck_assert_uint_eq(R.query_len, 9);
    ck_assert(!R.encoded_slash);
    ck_assert(R.path >= SCRATCH && R.path < SCRATCH + sizeof SCRATCH);

    ck_ok(GET("/p?"));
    ck_assert_str_eq(R.path, "/p");
    ck_assert_str_eq(R.query, "");
    ck_ok(GET("/p??a?b"));
    ck_assert_str_eq(R.query, "?a?b");
    ck_ok(GET("/caf%c3%A9"));
    ck_assert_str_eq(R.path, "/caf\xc3\xa9");
    ck_ok(GET("/a+b"));
    ck_assert_str_eq(R.path, "/a+b"); /* '+' is not a space in a path */
    ck_ok(GET("/a/../b/./c"));
    ck_assert_str_eq(R.path, "/a/../b/./c"); /* dot segments kept */
    ck_ok(GET("/%2e%2e/x"));
    ck_assert_str_eq(R.path, "/../x");
}
END_TEST

START_TEST(percent_errors)
{
    ck_status(GET("/a%00b"), 400);
    ck_status(GET("/a%zzb"), 400);
    ck_status(GET("/a%g0"), 400);
    ck_status(GET("/a%4"), 400);
    ck_status(GET("/a%"), 400);
    ck_status(GET("/%%41"), 400);
    ck_ok(GET("/a?%00")); /* query is raw: the app decodes it */
}
END_TEST

START_TEST(encoded_slash)
{
    ck_ok(GET("/a%2Fb"));
    ck_assert(R.encoded_slash);
    ck_assert_str_eq(R.path, "/a/b");
    ck_ok(GET("/a%2fb"));
    ck_assert(R.encoded_slash);
    ck_ok(GET("/a/b?x=%2F"));
    ck_assert(!R.encoded_slash); /* only the path counts */
    ck_ok(GET("/a%252Fb"));
    ck_assert(!R.encoded_slash);
    ck_assert_str_eq(R.path, "/a%2Fb"); /* decoded once only */
}
END_TEST

START_TEST(fragment_refused)
{
    ck_status(GET("/a#b"), 400);
    ck_status(GET("/a?x#b"), 400);
    ck_status(GET("/#"), 400);
}
END_TEST

START_TEST(absolute_form)
{
    ck_ok("GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    ck_assert(R.absolute_form);
    ck_assert_str_eq(R.host, "example.com:8080"); /* the target wins */
    ck_assert_uint_eq(R.host_len, 16);
    ck_assert_str_eq(R.path, "/p/q");
    ck_assert_str_eq(R.query, "x=1");
    ck_assert_str_eq(R.target, "http://example.com:8080/p/q?x=1");
    ck_assert(R.has_host);

    ck_ok("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_str_eq(R.path, "/");
    ck_assert_str_eq(R.host, "h");
    ck_ok("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_str_eq(R.path, "/");
    ck_assert_str_eq(R.query, "q");
    ck_ok("GET http://[::1]:80/%2F HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_str_eq(R.host, "[::1]:80");
    ck_assert(R.encoded_slash);
    ck_ok("GET http://h/p HTTP/1.0\r\n\r\n"); /* 1.0: no Host needed */
    ck_assert_str_eq(R.host, "h");
    ck_assert(!R.has_host);

    ck_status("GET http://h/p HTTP/1.1\r\n\r\n", 400); /* Host still required */
    ck_status("GET ftp://h/p HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET http://u:p@h/p HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET http:/h/p HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET http://h\\x/p HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET http://h#f HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}
END_TEST

START_TEST(asterisk_form)
{
    ck_ok("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_str_eq(R.target, "*");
    ck_assert_str_eq(R.path, "*");
    ck_assert_str_eq(R.query, "");
    ck_status("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("OPTIONS *?x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("options * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}
END_TEST

START_TEST(connect_refused)
{
    ck_status("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501);
    /* refused as soon as the method is known */
    ck_status("CONNECT ", 501);
    /* method names are case-sensitive: this is just an unknown method */
    ck_ok("connect / HTTP/1.1\r\nHost: h\r\n\r\n");
}
END_TEST

START_TEST(request_line_spaces)
{
    ck_status("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400);
    ck_status(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET /\tHTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET / x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET /\x0bHTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", 400);
}
END_TEST

START_TEST(versions)
{
    ck_status("GET /\r\nHost: h\r\n\r\n", 400);       /* HTTP/0.9 style */
    ck_status("GET / \r\nHost: h\r\n\r\n", 400);
    ck_status("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
    ck_status("GET / HTTP/1.9\r\nHost: h\r\n\r\n", 505);
    ck_status("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    ck_status("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505);
    ck_status("GET / HTTP/3.1\r\nHost: h\r\n\r\n", 505);
    ck_status("GET / http/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400);
    ck_status("GET / HTTP/1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET / HTTP/11\r\nHost: h\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400);
    ck_status("GET / HTTP/a.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET / HTTPS/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400); /* h2 preface */
    ck_ok("GET / HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(R.version, 10);
    ck_assert_str_eq(R.protocol, "HTTP/1.0");
    ck_assert(!R.keep_alive);
}
END_TEST

START_TEST(methods)
{
    ck_ok("PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_str_eq(R.method, "PROPFIND");
    ck_ok("M-SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_ok("get / HTTP/1.1\r\nHost: h\r\n\r\n"); /* a token: the app decides */
    ck_assert_str_eq(R.method, "get");
}
END_TEST

START_TEST(method_errors)
{
    ck_status("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GE\x01 / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("G\xc3\xa9T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET@ / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    /* length: 32 accepted, 33 refused with 501 (RFC 9112 section 3) */
    ck_ok("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF / HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_uint_eq(R.method_len, 32);
    ck_status("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\nHost: h\r\n\r\n", 501);
    ck_status("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG", 501); /* even unfinished */
}
END_TEST

START_TEST(target_characters)
{
    ck_status("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET /a\x1b[0m HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET /a\nb HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_assert_int_eq(parsen("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 30), WHARF_HTTP_ERROR);
    ck_assert_int_eq(R.status, 400);
    ck_status("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("GET ?a HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    /* lenient like nginx: non-URI printable bytes and UTF-8 */
    ck_ok(GET("/\xc3\xa9t\xc3\xa9/{x}|\"<>^`\\"));
    ck_assert_str_eq(R.path, "/\xc3\xa9t\xc3\xa9/{x}|\"<>^`\\");
}
END_TEST

START_TEST(leading_empty_lines)
{
    const char *req = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    ck_ok(req);
    ck_assert_str_eq(R.method, "GET");
    ck_assert_uint_eq(R.head_len, strlen(req));
    ck_more("\r\n");
    ck_more("\r\n\r");
    ck_status("\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status("\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    ck_status(" \r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Field lines                                                              */
/* ------------------------------------------------------------------------ */

START_TEST(field_values_trimmed)
{
    ck_ok(WITH("A:   x y  \t\r\nB:\r\nC: \t \r\nD:\tq\tr\t\r\nE: \x80\xff\r\n"));
    ck_assert_str_eq(hdr("A"), "x y");
    ck_assert_uint_eq(R.headers[1].value_len, 3);
    ck_assert_str_eq(hdr("B"), "");
    ck_assert_str_eq(hdr("C"), "");
    ck_assert_str_eq(hdr("D"), "q\tr");
    ck_assert_str_eq(hdr("E"), "\x80\xff");
    ck_assert_uint_eq(R.header_count, 6);
    ck_assert_str_eq(R.headers[1].name, "A"); /* case kept, NUL at ':' */
    ck_ok(WITH("X-CaSe: v\r\n"));
    ck_assert_str_eq(R.headers[1].name, "X-CaSe");
    ck_ok(WITH("!#$%&'*+-.^_`|~09az: v\r\n"));
}
END_TEST

START_TEST(field_syntax_errors)
{
    ck_status(WITH("X: a\r\n b\r\n"), 400);      /* obs-fold */
    ck_status(WITH("X: a\r\n\tb\r\n"), 400);
    ck_status("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400); /* ws before 1st */
    ck_status("GET / HTTP/1.1\r\n\tHost: h\r\n\r\n", 400);
    ck_status(WITH("Content-Length : 0\r\n"), 400); /* ws before colon */
    ck_status(WITH("X\t: a\r\n"), 400);
    ck_status(WITH(": a\r\n"), 400);              /* empty name */
    ck_status(WITH("X(y: 1\r\n"), 400);
    ck_status(WITH("X@y: 1\r\n"), 400);
    ck_status(WITH("X y: 1\r\n"), 400);
    ck_status(WITH("\xc3\xa9: 1\r\n"), 400);
    ck_status(WITH("X\r\n"), 400);                /* no colon */
    ck_status(WITH("X-no-colon\r\n"), 400);
}
END_TEST

START_TEST(field_control_characters)
{
    ck_status(WITH("X: a\x01" "b\r\n"), 400);
    ck_status(WITH("X: a\x7f\r\n"), 400);
    ck_status(WITH("X: \x0b" "a\r\n"), 400);
    ck_status(WITH("X: a\x0c\r\n"), 400);
    ck_status(WITH("X: a\rb\r\n"), 400);          /* bare CR */
    ck_status(WITH("X: a\r\r\n"), 400);
    ck_status(WITH("X: a\nb: c\r\n"), 400);       /* bare LF in a CRLF head */
    const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
    ck_assert_int_eq(parsen(nul, sizeof nul - 1), WHARF_HTTP_ERROR);
    ck_assert_int_eq(R.status, 400);
}
END_TEST

START_TEST(line_endings)
{
    /* bare LF throughout: accepted */
    ck_ok("GET /x HTTP/1.1\nHost: h\nA: b\n\n");
    ck_assert_str_eq(R.path, "/x");
    ck_assert_str_eq(hdr("A"), "b");
    ck_assert_uint_eq(R.head_len, 30);
    ck_ok("GET / HTTP/1.0\n\n");
    /* any mix: refused */
    ck_status("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
    ck_status("GET / HTTP/1.1\nHost: h\r\n\n", 400);
    ck_status("GET / HTTP/1.1\nHost: h\n\r\n", 400);
    ck_status("GET / HTTP/1.1\nHost: h\nX: a\rb\n\n", 400);
    /* bare CR never */
    ck_status("GET / HTTP/1.1\rHost: h\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\nHost: h\r\n\r\r", 400);
    /* fuzzer regression: split after the CR, the verdict must not wait */
    ck_status("GET /x HTTP/1.0\r\n\r\x02", 400);
}
END_TEST

START_TEST(host_field)
{
    ck_status("GET / HTTP/1.1\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", 400);
    ck_status("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", 400);
    ck_status("GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", 400);
    ck_ok("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    ck_assert_str_eq(R.host, "[::1]:8080");
    ck_ok("GET / HTTP/1.1\r\nhost:  Example.COM:80 \r\n\r\n");
    ck_assert_str_eq(R.host, "Example.COM:80");
    ck_ok("GET / HTTP/1.1\r\nHost:\r\n\r\n"); /* empty is allowed */
    ck_assert(R.has_host);
    ck_assert_str_eq(R.host, "");
    ck_ok("GET / HTTP/1.0\r\n\r\n");
    ck_assert(!R.has_host);
    ck_assert_ptr_null(R.host);
}
END_TEST

START_TEST(keep_alive)
{
    ck_ok("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert(R.keep_alive);
    ck_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    ck_assert(!R.keep_alive);
    ck_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n");
    ck_assert(!R.keep_alive);
    ck_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection:close\r\n\r\n");
    ck_assert(!R.keep_alive);
    ck_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, xclose\r\n\r\n");
    ck_assert(R.keep_alive);
    ck_ok("GET / HTTP/1.0\r\n\r\n");
    ck_assert(!R.keep_alive);
    ck_ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    ck_assert(R.keep_alive);
    ck_ok("GET / HTTP/1.0\r\nConnection: te, ,keep-alive ,\r\n\r\n");
    ck_assert(R.keep_alive);
    ck_ok("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    ck_assert(!R.keep_alive);
    ck_ok("GET / HTTP/1.0\r\nConnection: keep-alive-x\r\n\r\n");
    ck_assert(!R.keep_alive);
}
END_TEST

START_TEST(expect_continue)
{
    ck_ok(WITH("Expect: 100-continue\r\nContent-Length: 3\r\n"));
    ck_assert(R.expect_continue);
    ck_ok(WITH("Expect:  100-Continue \r\n"));
    ck_assert(R.expect_continue);
    ck_ok("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
    ck_assert(!R.expect_continue); /* RFC 9110 10.1.1: ignored in 1.0 */
    ck_ok(WITH("Expect:\r\n"));
    ck_assert(!R.expect_continue);
    ck_status(WITH("Expect: 200-ok\r\n"), 417);
    ck_status(WITH("Expect: 100-continue, x\r\n"), 417);
    ck_status(WITH("Expect: 100-continuex\r\n"), 417);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Framing and smuggling                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(content_length_ok)
{
    ck_ok(WITH("Content-Length: 42\r\n"));
    ck_assert_int_eq(R.content_length, 42);
    ck_ok(WITH("Content-Length: 0\r\n"));
    ck_assert_int_eq(R.content_length, 0);
    ck_ok(WITH("content-length:007\r\n"));
    ck_assert_int_eq(R.content_length, 7);
    ck_ok(WITH("Content-Length:  5 \t\r\n"));
    ck_assert_int_eq(R.content_length, 5);
    ck_ok(WITH("Content-Length: 9223372036854775807\r\n"));
    ck_assert_int_eq(R.content_length, INT64_MAX);
    ck_ok(WITH(""));
    ck_assert_int_eq(R.content_length, -1);
}
END_TEST

START_TEST(content_length_errors)
{
    ck_status(WITH("Content-Length: -1\r\n"), 400);
    ck_status(WITH("Content-Length: +1\r\n"), 400);
    ck_status(WITH("Content-Length: 1 2\r\n"), 400);
    ck_status(WITH("Content-Length: 1,1\r\n"), 400);
    ck_status(WITH("Content-Length: 1, 1\r\n"), 400);
    ck_status(WITH("Content-Length: 1,\r\n"), 400);
    ck_status(WITH("Content-Length:\r\n"), 400);
    ck_status(WITH("Content-Length: abc\r\n"), 400);
    ck_status(WITH("Content-Length: 0x10\r\n"), 400);
    ck_status(WITH("Content-Length: 1.0\r\n"), 400);
    ck_status(WITH("Content-Length: 1e3\r\n"), 400);
    ck_status(WITH("Content-Length: \"1\"\r\n"), 400);
    ck_status(WITH("Content-Length: \xd9\xa1\r\n"), 400); /* Arabic-Indic 1 */
    ck_status(WITH("Content-Length: 9223372036854775808\r\n"), 400);
    ck_status(WITH("Content-Length: 99999999999999999999999\r\n"), 400);
    ck_status(WITH("Content-Length: 5\r\nContent-Length: 5\r\n"), 400);
    ck_status(WITH("Content-Length: 5\r\nContent-Length: 6\r\n"), 400);
    ck_status(WITH("Content-Length: 5\r\ncontent-length: 5\r\n"), 400);
}
END_TEST

START_TEST(cl_and_te)
{
    ck_status(WITH("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: gzip\r\nContent-Length: 5\r\n"), 400);
    ck_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    ck_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400);
    ck_status("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
}
END_TEST

START_TEST(transfer_encoding_chunked)
{
    ck_ok(WITH("Transfer-Encoding: chunked\r\n"));
    ck_assert(R.chunked);
    ck_assert_int_eq(R.content_length, -1);
    ck_ok(WITH("Transfer-Encoding: Chunked\r\n"));
    ck_assert(R.chunked);
    ck_ok(WITH("transfer-encoding: CHUNKED\r\n"));
    ck_ok(WITH("Transfer-Encoding:  chunked \t\r\n"));
    ck_ok(WITH("Transfer-Encoding:\tchunked\r\n"));
}
END_TEST

START_TEST(transfer_encoding_refused)
{
    /* chunked not last, or twice: 400 (RFC 9112 6.3) */
    ck_status(WITH("Transfer-Encoding: chunked, identity\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: chunked, gzip\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: chunked, chunked\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"), 400);
    /* empty list elements, non-tokens, control characters: 400 */
    ck_status(WITH("Transfer-Encoding:\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: ,chunked\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: chunked,\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: gzip,,chunked\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: \"chunked\"\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: \x0b" "chunked\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: chunked\x0b\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: \x0c" "chunked\r\n"), 400);
    /* understood syntax, unsupported coding: 501 */
    ck_status(WITH("Transfer-Encoding: gzip, chunked\r\n"), 501);
    ck_status(WITH("Transfer-Encoding: gzip \t, chunked\r\n"), 501);
    ck_status(WITH("Transfer-Encoding: chunked , gzip\r\n"), 400);
    ck_status(WITH("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 501);
    ck_status(WITH("Transfer-Encoding: identity\r\n"), 501);
    ck_status(WITH("Transfer-Encoding: gzip\r\n"), 501);
    ck_status(WITH("Transfer-Encoding: xchunked\r\n"), 501);
    ck_status(WITH("Transfer-Encoding: chunkedx\r\n"), 501);
    ck_status(WITH("Transfer-Encoding: chunked;q=1\r\n"), 501);
    ck_status(WITH("Transfer-Encoding: chunk\r\n"), 501);
    ck_status(WITH("Transfer-Encoding: chunked chunked\r\n"), 501);
}
END_TEST

START_TEST(body_limit_at_head_time)
{
    LIM.max_body = 100;
    ck_ok(WITH("Content-Length: 100\r\n"));
    ck_assert_int_eq(R.content_length, 100);
    ck_status(WITH("Content-Length: 101\r\n"), 413);
    ck_status(WITH("Content-Length: 9223372036854775807\r\n"), 413);
    ck_ok(WITH("Transfer-Encoding: chunked\r\n")); /* checked while decoding */
    LIM.max_body = 0; /* unlimited */
    ck_ok(WITH("Content-Length: 9223372036854775807\r\n"));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Limits: exactly at the boundary and one past                             */
/* ------------------------------------------------------------------------ */

START_TEST(limit_head_size)
{
    const char *req = "GET / HTTP/1.1\r\nHost: h\r\nX: 0123456789\r\n\r\n";
    size_t n = strlen(req);
    LIM.max_head = n;
    ck_ok(req);
    ck_assert_uint_eq(R.head_len, n);
    LIM.max_head = n - 1;
    ck_status(req, 431);
    LIM.max_head = n - 2; /* the CR of the final line fits, its LF not */
    ck_status(req, 431);
    LIM.max_head = 20;    /* in the middle of a field line */
    ck_status(req, 431);
    /* the head limit does not count body bytes */
    LIM.max_head = n;
    char big[256];
    snprintf(big, sizeof big, "%.*sContent-Length: 0\r\n\r\n", (int)(n - 2), req);
    LIM.max_head = strlen(big);
    ck_ok(big);
    char body[512];
    snprintf(body, sizeof body, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n%0100d", 0);
    LIM.max_head = strlen(body) - 100;
    ck_ok(body);
    LIM.max_head = strlen(body) - 101;
    ck_status(body, 431);
    /* leading empty lines count */
    LIM.max_head = 4 + n;
    char lead[256];
    snprintf(lead, sizeof lead, "\r\n\r\n%s", req);
    ck_ok(lead);
    LIM.max_head = 3 + n;
    ck_status(lead, 431);
    LIM.max_head = 3;
    ck_status("\r\n\r\n\r\n", 431);
}
END_TEST

START_TEST(limit_head_size_in_request_line)
{
    /* a request line that does not fit: 414 (the target is what is long) */
    LIM.max_head = 16;
    ck_status("GET /0123456789ab HTTP/1.1\r\n", 414);
    ck_status("GET /0123456789a", 414);
    ck_more("GET /0123456789");
    ck_status("GET /01234567 HTTP/1.1\r\n", 414);
}
END_TEST

START_TEST(limit_target)
{
    LIM.max_target = 10;
    ck_ok(GET("/123456789"));                 /* exactly 10 */
    ck_assert_uint_eq(R.target_len, 10);
    ck_status(GET("/1234567890"), 414);       /* 11 */
    ck_status("GET /1234567890", 414);        /* known before the SP */
    ck_more("GET /123456789");
    ck_ok(GET("http://h/1"));                 /* absolute-form, 10 */
    ck_status(GET("http://h/12"), 414);
}
END_TEST

START_TEST(limit_headers)
{
    LIM.max_headers = 3;
    ck_ok("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n");
    ck_assert_uint_eq(R.header_count, 3);
    ck_status("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431);
    /* the caller's array is a limit too */
    LIM.max_headers = 100;
    struct wharf_http_header two[2];
    char buf[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    struct wharf_http_request r;
    wharf_http_request_init(&r, two, 2, NULL, 0);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, strlen(buf)), WHARF_HTTP_ERROR);
    ck_assert_int_eq(r.status, 431);
    wharf_http_request_init(&r, NULL, 0, NULL, 0);
    char buf2[] = "GET / HTTP/1.0\r\n\r\n";
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf2, strlen(buf2)), WHARF_HTTP_COMPLETE);
}
END_TEST

START_TEST(limits_null_and_defaults)
{
    char buf[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    struct wharf_http_request r;
    struct wharf_http_header h[4];
    wharf_http_request_init(&r, h, 4, NULL, 0);
    ck_assert_int_eq(wharf_http_parse_head(&r, NULL, buf, strlen(buf)), WHARF_HTTP_COMPLETE);
    struct wharf_http_limits zero;
    memset(&zero, 0, sizeof zero); /* all defaults, body unlimited */
    static char big[8192];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    wharf_http_request_init(&r, h, 4, NULL, 0);
    ck_assert_int_eq(wharf_http_parse_head(&r, &zero, big, sizeof big), WHARF_HTTP_ERROR);
    ck_assert_int_eq(r.status, 414);
    ck_assert_uint_eq(WHARF_HTTP_SCRATCH_SIZE(&zero), 4098);
    /* absurdly large limits behave as "unlimited", without wrapping */
    LIM.max_head = SIZE_MAX;
    LIM.max_target = SIZE_MAX;
    LIM.max_body = UINT64_MAX;
    ck_ok(GET("/x?y"));
    ck_assert_str_eq(R.path, "/x");
    char in[] = "7fffffffffffffff\r\nab";
    struct wharf_http_chunked c;
    size_t used, got;
    wharf_http_chunked_init(&c);
    ck_assert_int_eq(wharf_http_chunked_decode(&c, &LIM, in, 20, &used, in, 20, &got),
                     WHARF_HTTP_NEED_MORE);
    ck_assert_uint_eq(got, 2);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Incremental use, pipelining, in-place writes, scratch                    */
/* ------------------------------------------------------------------------ */

START_TEST(incremental_need_more)
{
    const char *req = "GET /a?b HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n";
    char buf[128];
    strcpy(buf, req);
    struct wharf_http_request r;
    struct wharf_http_header h[8];
    char sc[64];
    wharf_http_request_init(&r, h, 8, sc, sizeof sc);
    size_t n = strlen(req);
    for (size_t len = 0; len < n; len++)
        ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, len), WHARF_HTTP_NEED_MORE);
    ck_assert_str_eq(buf, req); /* nothing written before COMPLETE */
    /* a call without new bytes is harmless */
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, n - 1), WHARF_HTTP_NEED_MORE);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, n), WHARF_HTTP_COMPLETE);
    ck_assert_str_eq(r.path, "/a");
    /* sticky until reset */
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, n), WHARF_HTTP_COMPLETE);
    wharf_http_request_reset(&r);
    ck_assert_ptr_eq(r.headers, h);
    ck_assert_ptr_eq(r.scratch, sc);
    char bad[] = "GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\n";
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, bad, strlen(bad)), WHARF_HTTP_ERROR);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, bad, strlen(bad)), WHARF_HTTP_ERROR);
    ck_assert_int_eq(r.status, 400);
}
END_TEST

START_TEST(incremental_buffer_moves)
{
    const char *req = "GET /x HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n";
    size_t n = strlen(req);
    char *b1 = malloc(n), *b2;
    memcpy(b1, req, 10);
    struct wharf_http_request r;
    struct wharf_http_header h[8];
    wharf_http_request_init(&r, h, 8, NULL, 0);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, b1, 10), WHARF_HTTP_NEED_MORE);
    b2 = malloc(n);
    memcpy(b2, b1, 10);
    free(b1); /* realloc-like move */
    memcpy(b2 + 10, req + 10, n - 10);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, b2, 25), WHARF_HTTP_NEED_MORE);
    /* compaction: the same bytes further down */
    char *b3 = malloc(n + 7);
    memcpy(b3 + 7, b2, n);
    free(b2);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, b3 + 7, n), WHARF_HTTP_COMPLETE);
    ck_assert_str_eq(r.method, "GET");
    ck_assert_ptr_eq(r.method, b3 + 7);
    ck_assert_str_eq(h[1].value, "b");
    free(b3);
}
END_TEST

START_TEST(in_place_nul_terminators)
{
    char buf[] = "GET /p?q HTTP/1.1\r\nHost: h\r\nX:  v \r\n\r\nBODY";
    char orig[sizeof buf];
    memcpy(orig, buf, sizeof buf);
    struct wharf_http_request r;
    struct wharf_http_header h[8];
    char sc[32];
    wharf_http_request_init(&r, h, 8, sc, sizeof sc);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, sizeof buf - 1), WHARF_HTTP_COMPLETE);
    ck_assert_uint_eq(r.head_len, sizeof buf - 5);
    /* the NULs are exactly over the delimiters */
    for (size_t i = 0; i < sizeof buf; i++) {
        bool delim = i == 3 || i == 8 || i == 17 || i == 23 || i == 26 ||
                     i == 29 || i == 33;
        if (delim)
            ck_assert_msg(buf[i] == 0, "byte %zu not NUL", i);
        else
            ck_assert_msg(buf[i] == orig[i], "byte %zu changed", i);
    }
    ck_assert_str_eq(r.query, "q");
    ck_assert_str_eq(r.path, "/p");
    ck_assert_ptr_eq(r.path, sc);
    ck_assert_str_eq(buf + r.head_len, "BODY");
}
END_TEST

START_TEST(scratch_rules)
{
    char buf[128];
    struct wharf_http_request r;
    struct wharf_http_header h[8];
    char sc[8];
    /* no scratch needed: plain path, path+query needs one */
    strcpy(buf, "GET /plain HTTP/1.1\r\nHost: h\r\n\r\n");
    wharf_http_request_init(&r, h, 8, NULL, 0);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, strlen(buf)), WHARF_HTTP_COMPLETE);
    ck_assert_ptr_eq(r.path, buf + 4);
    strcpy(buf, "GET /p?q HTTP/1.1\r\nHost: h\r\n\r\n");
    wharf_http_request_init(&r, h, 8, NULL, 0);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, strlen(buf)), WHARF_HTTP_ERROR);
    ck_assert_int_eq(r.status, 500);
    /* exactly enough: path + NUL */
    strcpy(buf, "GET /a%20b?q HTTP/1.1\r\nHost: h\r\n\r\n");
    wharf_http_request_init(&r, h, 8, sc, 7);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, strlen(buf)), WHARF_HTTP_COMPLETE);
    ck_assert_str_eq(r.path, "/a b");
    strcpy(buf, "GET /a%20b?q HTTP/1.1\r\nHost: h\r\n\r\n");
    wharf_http_request_init(&r, h, 8, sc, 6);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, strlen(buf)), WHARF_HTTP_ERROR);
    ck_assert_int_eq(r.status, 500);
    /* absolute-form: path + host */
    strcpy(buf, "GET http://hh/p HTTP/1.1\r\nHost: h\r\n\r\n");
    wharf_http_request_init(&r, h, 8, sc, 3);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf, strlen(buf)), WHARF_HTTP_COMPLETE);
    ck_assert_str_eq(r.host, "hh");
    ck_assert_str_eq(r.path, "/p");
}
END_TEST

START_TEST(pipelined_requests)
{
    static char buf[] =
        "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
        "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
        "POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"
        "\r\nGET /4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        "GET /5 HTTP/1.1\r\n";
    size_t len = sizeof buf - 1, off = 0;
    struct wharf_http_request r;
    struct wharf_http_header h[8];
    char sc[64];
    const char *paths[] = { "/1", "/2", "/3", "/4" };
    wharf_http_request_init(&r, h, 8, sc, sizeof sc);
    for (int i = 0; i < 4; i++) {
        wharf_http_request_reset(&r);
        ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf + off, len - off), WHARF_HTTP_COMPLETE);
        ck_assert_str_eq(r.path, paths[i]);
        ck_assert(r.keep_alive);
        off += r.head_len;
        if (i == 1) {
            ck_assert_int_eq(r.content_length, 5);
            ck_assert(memcmp(buf + off, "hello", 5) == 0);
            off += 5;
        }
        if (i == 2) {
            struct wharf_http_chunked c;
            size_t used, got;
            ck_assert(r.chunked);
            wharf_http_chunked_init(&c);
            ck_assert_int_eq(wharf_http_chunked_decode(&c, &LIM, buf + off, len - off, &used,
                                                       buf + off, len - off, &got),
                             WHARF_HTTP_COMPLETE);
            ck_assert_uint_eq(got, 5);
            ck_assert(memcmp(buf + off, "abcde", 5) == 0);
            off += used;
        }
    }
    wharf_http_request_reset(&r);
    ck_assert_int_eq(wharf_http_parse_head(&r, &LIM, buf + off, len - off), WHARF_HTTP_NEED_MORE);
}
END_TEST

START_TEST(typical_browser_request)
{
    const char *req =
        "GET /static/app.js?v=3 HTTP/1.1\r\n"
        "Host: www.example.com\r\n"
        "Connection: keep-alive\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
        "Accept: */*\r\n"
        "Referer: https://www.example.com/\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Accept-Language: en-US,en;q=0.9\r\n"
        "Cookie: session=abc123; theme=dark\r\n\r\n";
    ck_ok(req);
    ck_assert_uint_eq(R.header_count, 8);
    ck_assert_str_eq(hdr("Accept-Encoding"), "gzip, deflate, br");
    ck_assert_str_eq(hdr("cookie"), "session=abc123; theme=dark");
    ck_assert_str_eq(R.query, "v=3");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Chunked decoder                                                          */
/* ------------------------------------------------------------------------ */

struct dres {
    int rc, status;
    size_t used, got;
    char out[4096];
};

/* Decode s[0..n) in place in one call, then again byte by byte, split at
 * every point, and into a 1-byte output buffer; all must agree. */
static struct dres dec(const char *s, size_t n)
{
    struct dres a;
    static char buf[4096], buf2[4096], out[4096];
    struct wharf_http_chunked c;

    ck_assert_uint_le(n, sizeof buf);
    memset(&a, 0, sizeof a);
    memcpy(buf, s, n);
    wharf_http_chunked_init(&c);
    a.rc = wharf_http_chunked_decode(&c, &LIM, buf, n, &a.used, buf, n, &a.got);
    a.status = a.rc == WHARF_HTTP_ERROR ? c.status : 0;
    if (a.rc == WHARF_HTTP_ERROR)
        ck_assert_ptr_nonnull(c.reason);
    if (a.rc == WHARF_HTTP_NEED_MORE)
        ck_assert_uint_eq(a.used, n);
    ck_assert_uint_eq(c.body_bytes, a.got);
    memcpy(a.out, buf, a.got);

    for (size_t cut = 0; cut <= n; cut++) {
        /* two pieces, in place */
        memcpy(buf2, s, n);
        wharf_http_chunked_init(&c);
        size_t u1, g1, u2 = 0, g2 = 0;
        int rc = wharf_http_chunked_decode(&c, &LIM, buf2, cut, &u1, buf2, cut, &g1);
        if (rc == WHARF_HTTP_NEED_MORE) {
            ck_assert_uint_eq(u1, cut);
            rc = wharf_http_chunked_decode(&c, &LIM, buf2 + cut, n - cut, &u2,
                                           buf2 + g1, n - g1, &g2);
        }
        ck_assert_msg(rc == a.rc, "split at %zu: rc %d vs %d", cut, rc, a.rc);
        if (rc == WHARF_HTTP_ERROR) {
            ck_assert_int_eq(c.status, a.status);
        } else {
            ck_assert_uint_eq(u1 + u2, a.used);
            ck_assert_uint_eq(g1 + g2, a.got);
            ck_assert(memcmp(buf2, a.out, a.got) == 0);
        }
    }
    /* byte by byte, 1-byte output buffer, separate output */
    wharf_http_chunked_init(&c);
    size_t i = 0, o = 0;
    int rc = WHARF_HTTP_NEED_MORE;
    while (i < n && rc == WHARF_HTTP_NEED_MORE) {
        size_t u, g;
        rc = wharf_http_chunked_decode(&c, &LIM, s + i, 1, &u, out + o, 1, &g);
        i += u;
        o += g;
    }
    ck_assert_int_eq(rc, a.rc);
    if (rc == WHARF_HTTP_ERROR) {
        ck_assert_int_eq(c.status, a.status);
    } else {
        ck_assert_uint_eq(i, a.used);
        ck_assert_uint_eq(o, a.got);
        ck_assert(memcmp(out, a.out, a.got) == 0);
    }
    return a;
}

#define DEC(lit) dec(lit, sizeof(lit) - 1)

#define ck_dec_ok(lit, body)                                                 \
    do {                                                                     \
        struct dres d_ = DEC(lit);                                           \
        ck_assert_msg(d_.rc == WHARF_HTTP_COMPLETE, "rc %d status %d: %s",   \
                      d_.rc, d_.status, #lit);                               \
        ck_assert_uint_eq(d_.got, sizeof(body) - 1);                         \
        ck_assert(memcmp(d_.out, body, d_.got) == 0);                        \
    } while (0)

#define ck_dec_status(lit, st)                                               \
    do {                                                                     \
        struct dres d_ = DEC(lit);                                           \
        ck_assert_msg(d_.rc == WHARF_HTTP_ERROR && d_.status == (st),        \
                      "expected %d, got rc %d status %d: %s", (st), d_.rc,   \
                      d_.status, #lit);                                      \
    } while (0)

START_TEST(chunked_basic)
{
    ck_dec_ok("5\r\nhello\r\n0\r\n\r\n", "hello");
    ck_dec_ok("0\r\n\r\n", "");
    ck_dec_ok("1\r\na\r\n1\r\nb\r\n0\r\n\r\n", "ab");
    ck_dec_ok("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
              "0123456789abcdefghij");
    ck_dec_ok("000005\r\nhello\r\n0000\r\n\r\n", "hello");
    ck_dec_ok("3\r\n\r\n\n\r\n0\r\n\r\n", "\r\n\n"); /* data is opaque */
    ck_dec_ok("2\r\n\0\xff\r\n0\r\n\r\n", "\0\xff");

    /* consumed stops at the end of the body */
    struct dres d = DEC("2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n");
    ck_assert_int_eq(d.rc, WHARF_HTTP_COMPLETE);
    ck_assert_uint_eq(d.used, 12);
    d = DEC("2\r\nhi\r\n0\r\n\r");
    ck_assert_int_eq(d.rc, WHARF_HTTP_NEED_MORE);
    ck_assert_uint_eq(d.got, 2);
}
END_TEST

START_TEST(chunked_sizes)
{
    ck_dec_ok("000000000000000a\r\n0123456789\r\n0\r\n\r\n", "0123456789");
    ck_dec_status("0000000000000000a\r\n", 400);      /* 17 digits */
    ck_dec_status("10000000000000000\r\n", 400);
    ck_dec_status("8000000000000000\r\n", 400);       /* > INT64_MAX */
    ck_dec_status("ffffffffffffffff\r\n", 400);
    struct dres d = DEC("7fffffffffffffff\r\nabc");     /* fine, needs data */
    ck_assert_int_eq(d.rc, WHARF_HTTP_NEED_MORE);
    ck_assert_uint_eq(d.got, 3);
    ck_dec_status("\r\n", 400);
    ck_dec_status("g\r\n", 400);
    ck_dec_status("-1\r\n", 400);
    ck_dec_status("+1\r\nx\r\n0\r\n\r\n", 400);
    ck_dec_status("0x5\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status(" 5\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5 \r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5\t\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status(";a\r\n", 400);
}
END_TEST

START_TEST(chunked_line_endings)
{
    ck_dec_status("5\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5\rhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5\r\nhello\n0\r\n\r\n", 400);
    ck_dec_status("5\r\nhello\r0\r\n\r\n", 400);
    ck_dec_status("5\r\nhelloX\r\n0\r\n\r\n", 400);   /* data longer */
    ck_dec_status("5\r\nhell\r\n0\r\n\r\n", 400);     /* data shorter */
    ck_dec_status("5\r\nhello\r\n\r\n0\r\n\r\n", 400);
    ck_dec_status("0\n\r\n", 400);
    ck_dec_status("0\r\n\n", 400);
    ck_dec_status("0\r\n\r\r", 400);
}
END_TEST

START_TEST(chunked_extensions)
{
    ck_dec_ok("5;a\r\nhello\r\n0\r\n\r\n", "hello");
    ck_dec_ok("5;a=b\r\nhello\r\n0\r\n\r\n", "hello");
    ck_dec_ok("5;a=b;c;d=e\r\nhello\r\n0;last=1\r\n\r\n", "hello");
    ck_dec_ok("5 ; a = b \t; c\r\nhello\r\n0\r\n\r\n", "hello");
    ck_dec_ok("5;a ;b\r\nhello\r\n0\r\n\r\n", "hello");
    ck_dec_ok("5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n", "hello");
    ck_dec_ok("5;a=\"q s;\\\"x\\\\\"\r\nhello\r\n0\r\n\r\n", "hello");
    ck_dec_ok("5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello");
    ck_dec_ok("5;a=\"\xc3\xa9\"\r\nhello\r\n0\r\n\r\n", "hello");
    ck_dec_status("5;\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a=\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;=b\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a b\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a=b c\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a \r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a=\"x\r\nhello\r\n0\r\n\r\n", 400);   /* CR in quotes */
    ck_dec_status("5;a=\"x\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a=\"\\\r\"\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a\nhello\r\n0\r\n\r\n", 400);          /* bare LF */
    ck_dec_status("5;a\rhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a=b\x01\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a=b,c\r\nhello\r\n0\r\n\r\n", 400);
    ck_dec_status("5;a=@\r\nhello\r\n0\r\n\r\n", 400);
    /* length limit: exactly max accepted, one more refused */
    LIM.max_chunk_ext = 8;
    ck_dec_ok("5;abcdefg\r\nhello\r\n0\r\n\r\n", "hello");     /* 8 */
    ck_dec_status("5;abcdefgh\r\nhello\r\n0\r\n\r\n", 400);    /* 9 */
    ck_dec_ok("5  ;a=\"b\"\r\nhello\r\n0\r\n\r\n", "hello");   /* 8 */
    ck_dec_status("5   ;a=\"b\"\r\nhello\r\n0\r\n\r\n", 400);
    /* the limit applies per line */
    ck_dec_ok("1;abcdefg\r\nx\r\n1;abcdefg\r\ny\r\n0;abcdefg\r\n\r\n", "xy");
}
END_TEST

START_TEST(chunked_trailers)
{
    ck_dec_ok("1\r\nx\r\n0\r\nA: b\r\n\r\n", "x");
    ck_dec_ok("1\r\nx\r\n0\r\nA:b\r\nC-D:  e f \r\nX:\r\n\r\n", "x");
    ck_dec_ok("0\r\nA: \xc3\xa9\t\r\n\r\n", "");
    ck_dec_status("0\r\nA: b\r\n c\r\n\r\n", 400);   /* obs-fold */
    ck_dec_status("0\r\n A: b\r\n\r\n", 400);
    ck_dec_status("0\r\nA : b\r\n\r\n", 400);
    ck_dec_status("0\r\n: b\r\n\r\n", 400);
    ck_dec_status("0\r\nA\r\n\r\n", 400);
    ck_dec_status("0\r\nA(: b\r\n\r\n", 400);
    ck_dec_status("0\r\nA: b\nC: d\r\n\r\n", 400);   /* bare LF */
    ck_dec_status("0\r\nA: b\rc\r\n\r\n", 400);
    ck_dec_status("0\r\nA: b\x01\r\n\r\n", 400);
    ck_dec_status("0\r\nA: b\x7f\r\n\r\n", 400);
    const char nul[] = "0\r\nA: \0\r\n\r\n";
    struct dres d = dec(nul, sizeof nul - 1);
    ck_assert_int_eq(d.status, 400);
    /* size limit: the trailer section including the final CRLF */
    LIM.max_trailer = 8;
    ck_dec_ok("0\r\nA: b\r\n\r\n", "");                 /* 6 + 2 */
    ck_dec_status("0\r\nA: bc\r\n\r\n", 431);           /* 7 + 2 */
    LIM.max_trailer = 2;
    ck_dec_ok("0\r\n\r\n", "");
    ck_dec_status("0\r\nA:\r\n\r\n", 431);
}
END_TEST

START_TEST(chunked_body_limit)
{
    LIM.max_body = 10;
    ck_dec_ok("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", "helloworld");
    ck_dec_status("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", 413);
    ck_dec_status("b\r\n", 413);                       /* refused at once */
    ck_dec_status("ffffffffffff\r\n", 413);
    struct dres d = DEC("5\r\nhello\r\n6;x\r\n");
    ck_assert_int_eq(d.status, 413);
    ck_assert_uint_eq(d.got, 5);
    LIM.max_body = 0;
    ck_dec_ok("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", "helloworld!");
}
END_TEST

START_TEST(chunked_output_space)
{
    char in[] = "a\r\n0123456789\r\n0\r\n\r\nNEXT";
    char out[4];
    struct wharf_http_chunked c;
    size_t used, got, total = 0, off = 0;
    wharf_http_chunked_init(&c);
    int rc;
    char body[16];
    do {
        rc = wharf_http_chunked_decode(&c, &LIM, in + off, sizeof in - 1 - off,
                                       &used, out, sizeof out, &got);
        memcpy(body + total, out, got);
        total += got;
        off += used;
        if (rc == WHARF_HTTP_NEED_MORE)
            ck_assert_uint_eq(got, sizeof out); /* stopped for lack of room */
    } while (rc == WHARF_HTTP_NEED_MORE);
    ck_assert_int_eq(rc, WHARF_HTTP_COMPLETE);
    ck_assert_uint_eq(total, 10);
    ck_assert(memcmp(body, "0123456789", 10) == 0);
    ck_assert_str_eq(in + off, "NEXT");
    ck_assert_uint_eq(c.body_bytes, 10);
    /* done is sticky and consumes nothing */
    ck_assert_int_eq(wharf_http_chunked_decode(&c, &LIM, in, 4, &used, out, 4, &got),
                     WHARF_HTTP_COMPLETE);
    ck_assert_uint_eq(used, 0);
    /* zero-size output: framing is still consumed */
    wharf_http_chunked_init(&c);
    ck_assert_int_eq(wharf_http_chunked_decode(&c, &LIM, "0\r\n\r\n", 5, &used, NULL, 0, &got),
                     WHARF_HTTP_COMPLETE);
    ck_assert_uint_eq(used, 5);
    wharf_http_chunked_init(&c);
    ck_assert_int_eq(wharf_http_chunked_decode(&c, &LIM, "3\r\nabc", 6, &used, NULL, 0, &got),
                     WHARF_HTTP_NEED_MORE);
    ck_assert_uint_eq(used, 3);
    /* errors are sticky */
    wharf_http_chunked_init(&c);
    ck_assert_int_eq(wharf_http_chunked_decode(&c, &LIM, "x", 1, &used, out, 4, &got),
                     WHARF_HTTP_ERROR);
    ck_assert_int_eq(wharf_http_chunked_decode(&c, &LIM, "0\r\n\r\n", 5, &used, out, 4, &got),
                     WHARF_HTTP_ERROR);
    ck_assert_int_eq(c.status, 400);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The corpus: tests/data/http-corpus.txt                                   */
/* ------------------------------------------------------------------------ */

/* C-style unescaping: \r \n \t \0 \\ \xHH. */
static size_t unescape(const char *s, char *out)
{
    size_t n = 0;
    while (*s) {
        if (*s != '\\') {
            out[n++] = *s++;
            continue;
        }
        s++;
        switch (*s) {
        case 'r': out[n++] = '\r'; s++; break;
        case 'n': out[n++] = '\n'; s++; break;
        case 't': out[n++] = '\t'; s++; break;
        case '0': out[n++] = '\0'; s++; break;
        case '\\': out[n++] = '\\'; s++; break;
        case 'x': {
            char hex[3] = { s[1], s[2], 0 };
            out[n++] = (char)strtol(hex, NULL, 16);
            s += 3;
            break;
        }
        default:
            ck_abort_msg("bad escape \\%c", *s);
        }
    }
    return n;
}

/* Run a request stream: heads, bodies, pipelined requests.  Returns "ok"
 * when all of it was consumed, "more" when it ends inside a request, or
 * the status of the first error. */
static const char *run_stream(char *buf, size_t n, char *verdict)
{
    size_t off = 0;
    struct wharf_http_request r;
    struct wharf_http_header h[NH];
    static char sc[8192];
    wharf_http_request_init(&r, h, NH, sc, sizeof sc);
    while (off < n) {
        wharf_http_request_reset(&r);
        int rc = wharf_http_parse_head(&r, &LIM, buf + off, n - off);
        if (rc == WHARF_HTTP_NEED_MORE)
            return strcpy(verdict, "more");
        if (rc == WHARF_HTTP_ERROR) {
            sprintf(verdict, "%d", r.status);
            return verdict;
        }
        off += r.head_len;
        if (r.chunked) {
            struct wharf_http_chunked c;
            size_t used, got;
            wharf_http_chunked_init(&c);
            rc = wharf_http_chunked_decode(&c, &LIM, buf + off, n - off, &used,
                                           buf + off, n - off, &got);
            if (rc == WHARF_HTTP_NEED_MORE)
                return strcpy(verdict, "more");
            if (rc == WHARF_HTTP_ERROR) {
                sprintf(verdict, "%d", c.status);
                return verdict;
            }
            off += used;
        } else if (r.content_length > 0) {
            if ((uint64_t)r.content_length > n - off)
                return strcpy(verdict, "more");
            off += (size_t)r.content_length;
        }
    }
    return strcpy(verdict, "ok");
}

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

START_TEST(corpus)
{
    char path[4096];
    const char *dir = getenv("WHARF_TEST_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/data/http-corpus.txt",
             dir ? dir : WHARF_TEST_SRCDIR);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char line[16384], req[16384];
    int cases = 0, deviations = 0, lineno = 0;
    LIM.max_body = 1000; /* the corpus's limit-post */
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || trim(line)[0] == 0)
            continue;
        /* id | rfc | wharf | request   [# deviation: ...] */
        char *f1 = strstr(line, " | ");
        ck_assert_msg(f1, "line %d: no fields", lineno);
        *f1 = 0;
        char *f2 = strstr(f1 + 3, " | ");
        ck_assert_msg(f2, "line %d: no wharf field", lineno);
        *f2 = 0;
        char *f3 = strstr(f2 + 3, " | ");
        ck_assert_msg(f3, "line %d: no request", lineno);
        *f3 = 0;
        char *id = trim(line), *rfc = trim(f1 + 3), *ours = trim(f2 + 3);
        char *text = f3 + 3, *note = strstr(text, "  # deviation");
        if (note)
            *note = 0;
        size_t n = unescape(trim(text), req);
        char verdict[16];
        run_stream(req, n, verdict);
        ck_assert_msg(strcmp(verdict, ours) == 0,
                      "corpus line %d (%s): expected %s, got %s", lineno, id,
                      ours, verdict);
        /* ours must be one of the verdicts the RFC allows, unless the line
         * is marked as a deliberate deviation (see PARSER.md) */
        bool allowed = false;
        char alts[64];
        snprintf(alts, sizeof alts, "%s", rfc);
        for (char *t = strtok(alts, "/"); t; t = strtok(NULL, "/"))
            if (strcmp(t, ours) == 0)
                allowed = true;
        ck_assert_msg(allowed || note, "corpus line %d (%s): %s not in RFC's %s "
                      "and not marked as a deviation", lineno, id, ours, rfc);
        ck_assert_msg(!allowed || !note, "corpus line %d (%s): marked as a "
                      "deviation but allowed by the RFC", lineno, id);
        deviations += note != NULL;
        cases++;
    }
    fclose(f);
    ck_assert_int_ge(cases, 80);
    fprintf(stderr, "corpus: %d cases, %d deliberate deviations\n", cases,
            deviations);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http_parser");
    TCase *tc;

    tc = tcase_create("request_line");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, simple_get);
    tcase_add_test(tc, query_and_percent_decoding);
    tcase_add_test(tc, percent_errors);
    tcase_add_test(tc, encoded_slash);
    tcase_add_test(tc, fragment_refused);
    tcase_add_test(tc, absolute_form);
    tcase_add_test(tc, asterisk_form);
    tcase_add_test(tc, connect_refused);
    tcase_add_test(tc, request_line_spaces);
    tcase_add_test(tc, versions);
    tcase_add_test(tc, methods);
    tcase_add_test(tc, method_errors);
    tcase_add_test(tc, target_characters);
    tcase_add_test(tc, leading_empty_lines);
    suite_add_tcase(s, tc);

    tc = tcase_create("fields");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, field_values_trimmed);
    tcase_add_test(tc, field_syntax_errors);
    tcase_add_test(tc, field_control_characters);
    tcase_add_test(tc, line_endings);
    tcase_add_test(tc, host_field);
    tcase_add_test(tc, keep_alive);
    tcase_add_test(tc, expect_continue);
    suite_add_tcase(s, tc);

    tc = tcase_create("framing");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, content_length_ok);
    tcase_add_test(tc, content_length_errors);
    tcase_add_test(tc, cl_and_te);
    tcase_add_test(tc, transfer_encoding_chunked);
    tcase_add_test(tc, transfer_encoding_refused);
    tcase_add_test(tc, body_limit_at_head_time);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, limit_head_size);
    tcase_add_test(tc, limit_head_size_in_request_line);
    tcase_add_test(tc, limit_target);
    tcase_add_test(tc, limit_headers);
    tcase_add_test(tc, limits_null_and_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("incremental");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, incremental_need_more);
    tcase_add_test(tc, incremental_buffer_moves);
    tcase_add_test(tc, in_place_nul_terminators);
    tcase_add_test(tc, scratch_rules);
    tcase_add_test(tc, pipelined_requests);
    tcase_add_test(tc, typical_browser_request);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, chunked_basic);
    tcase_add_test(tc, chunked_sizes);
    tcase_add_test(tc, chunked_line_endings);
    tcase_add_test(tc, chunked_extensions);
    tcase_add_test(tc, chunked_trailers);
    tcase_add_test(tc, chunked_body_limit);
    tcase_add_test(tc, chunked_output_space);
    suite_add_tcase(s, tc);

    tc = tcase_create("corpus");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, corpus);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
