/*
 * Shared by the fuzz harnesses: CHECK() and the chunked-decoding
 * consistency check.
 */
#ifndef WHARF_FUZZ_CHECK_H
#define WHARF_FUZZ_CHECK_H

#include "http_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond,         \
                    __FILE__, __LINE__);                                     \
            abort();                                                         \
        }                                                                    \
    } while (0)

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/*
 * A naive reference for input the decoder accepted: take the chunk sizes,
 * skip extensions up to CRLF, copy the data, skip trailers up to the empty
 * line.  Returns the body length (body copied to `out`) and the bytes
 * used in *used.
 */
static size_t naive_decode(const char *in, size_t n, char *out, size_t *used)
{
    size_t i = 0, o = 0;
    for (;;) {
        uint64_t sz = 0;
        while (hexv((unsigned char)in[i]) >= 0)
            sz = sz * 16 + (uint64_t)hexv((unsigned char)in[i++]);
        while (in[i] != '\r')
            i++;
        i += 2;
        if (sz == 0)
            break;
        memcpy(out + o, in + i, (size_t)sz);
        o += (size_t)sz;
        i += (size_t)sz + 2;
    }
    while (in[i] != '\r') { /* trailer lines */
        while (in[i] != '\r')
            i++;
        i += 2;
    }
    *used = i + 2;
    CHECK(*used <= n);
    return o;
}

/* Decode a chunked body at p[0..n): in place, and again fed in other ways;
 * all must agree.  Returns the result, *used = bytes consumed. */
static int chunked(const struct wharf_http_limits *lim, char *p, size_t n,
                   uint32_t h, size_t *used)
{
    char *orig = malloc(n ? n : 1), *out = malloc(n ? n : 1);
    memcpy(orig, p, n);

    struct wharf_http_chunked c;
    size_t got;
    wharf_http_chunked_init(&c);
    int rc = wharf_http_chunked_decode(&c, lim, p, n, used, p, n, &got);
    CHECK(*used <= n && got <= *used);
    CHECK(c.body_bytes == got);
    if (rc == WHARF_HTTP_NEED_MORE)
        CHECK(*used == n);
    if (rc == WHARF_HTTP_ERROR)
        CHECK(c.reason && (c.status == 400 || c.status == 413 || c.status == 431));
    if (rc == WHARF_HTTP_COMPLETE && lim->max_body)
        CHECK(got <= lim->max_body);
    /* bytes after the body are untouched */
    if (rc == WHARF_HTTP_COMPLETE) {
        CHECK(memcmp(p + *used, orig + *used, n - *used) == 0);
        size_t nused, nlen = naive_decode(orig, n, out, &nused);
        CHECK(nused == *used && nlen == got && memcmp(out, p, got) == 0);
    }

    /* The same input, split at one point, into a separate small output
     * buffer that forces NEED_MORE for lack of room. */
    size_t step = 1 + h % 7, cut = n ? (h >> 3) % (n + 1) : 0;
    struct wharf_http_chunked d;
    wharf_http_chunked_init(&d);
    size_t i = 0, o = 0;
    int rc2;
    for (;;) {
        size_t avail = (i < cut ? cut : n) - i, u, g;
        size_t room = step < n - o ? step : n - o;
        rc2 = wharf_http_chunked_decode(&d, lim, orig + i, avail, &u, out + o,
                                        room, &g);
        CHECK(u <= avail && g <= room);
        i += u;
        o += g;
        if (rc2 != WHARF_HTTP_NEED_MORE || (u == avail && i == n))
            break;
        /* NEED_MORE: either the output was full or the cut was reached */
        CHECK(g == room || (u == avail && i == cut));
    }
    CHECK(rc2 == rc);
    if (rc == WHARF_HTTP_ERROR) {
        CHECK(d.status == c.status && strcmp(d.reason, c.reason) == 0);
    } else {
        CHECK(i == *used && o == got && memcmp(out, p, got) == 0);
    }

    /* Byte by byte, in place. */
    if (n <= 2048) {
        struct wharf_http_chunked e;
        wharf_http_chunked_init(&e);
        char *buf = malloc(n ? n : 1);
        memcpy(buf, orig, n);
        size_t oo = 0, ii = 0;
        int rc3 = WHARF_HTTP_NEED_MORE;
        for (; ii < n && rc3 == WHARF_HTTP_NEED_MORE; ii++) {
            size_t u, g;
            rc3 = wharf_http_chunked_decode(&e, lim, buf + ii, 1, &u, buf + oo,
                                            1, &g);
            CHECK(u == 1);
            oo += g;
        }
        CHECK(rc3 == rc);
        if (rc == WHARF_HTTP_ERROR)
            CHECK(e.status == c.status && strcmp(e.reason, c.reason) == 0);
        else
            CHECK(ii == *used && oo == got && memcmp(buf, p, got) == 0);
        free(buf);
    }
    free(orig);
    free(out);
    return rc;
}

#endif
