/*
 * http_parser.c - see http_parser.h for the API and PARSER.md for the
 * choices made where RFC 9110/9112 leave room or where we deviate.
 *
 * How the head parser works.  It validates one line at a time, left to
 * right, and every check fires at the first byte that proves the request
 * wrong.  So the verdict on a prefix of the input is always the verdict on
 * the whole input (or NEED_MORE), whichever way the input is split.
 * A line is validated in one pass that also finds its end (no memchr
 * first, no strlen after); when the bytes run out in the middle of a line
 * the parser saves its phase and position and the next call goes on from
 * there, so no byte is examined twice however the input is split.
 * Nothing is written into the buffer until the whole head is known good;
 * then NULs go over the delimiters.
 */
#include "http_parser.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------------ */
/* Character classes                                                        */
/* ------------------------------------------------------------------------ */

enum {
    C_TCHAR = 0x01,  /* token char (RFC 9110 5.6.2) */
    C_VALUE = 0x02,  /* allowed inside a field value: VCHAR, obs-text, SP,
                        HTAB (also the quoted-pair set) */
    C_HOST = 0x04,   /* uri-host / port: unreserved, sub-delims, ':', '[',
                        ']', '%' */
    C_HEX = 0x08,
    C_SCHEME = 0x10, /* ALPHA DIGIT + - . */
    C_QDTEXT = 0x20, /* quoted-string text */
    C_CTL = 0x40,    /* 0x00-0x1f and DEL: ends a field value scan */
    C_TSTOP = 0x80,  /* <= 0x20 or DEL: ends a request-target scan */
};

static const unsigned char cls[256] = {
    /* 00 */ 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xe2, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0,
    /* 10 */ 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0,
    /* 20 */ 0xa2, 0x27, 0x02, 0x23, 0x27, 0x27, 0x27, 0x27, 0x26, 0x26, 0x27, 0x37, 0x26, 0x37, 0x37, 0x22,
    /* 30 */ 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x26, 0x26, 0x22, 0x26, 0x22, 0x22,
    /* 40 */ 0x22, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37,
    /* 50 */ 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x26, 0x02, 0x26, 0x23, 0x27,
    /* 60 */ 0x23, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37,
    /* 70 */ 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x22, 0x23, 0x22, 0x27, 0xc0,
    /* 80 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 90 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* a0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* b0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* c0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* d0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* e0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* f0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

static inline unsigned hexval(unsigned char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/*
 * Case-insensitive compare of n bytes against a lowercase literal made of
 * letters, digits and '-'.  `c | 0x20` is exact here because the input can
 * hold no control characters (refused before we get here): the only other
 * bytes that map onto a letter, digit or '-' that way are controls.
 */
static inline bool ci_eq(const unsigned char *a, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((a[i] | 0x20) != (unsigned char)lower[i])
            return false;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Scanners (SSE2 where available; 16 bytes per step, never reading past   */
/* `end`)                                                                   */
/* ------------------------------------------------------------------------ */

/* First byte in [p, end) that is <= 0x20 or DEL; `end` if none. */
static inline const unsigned char *find_tstop(const unsigned char *p,
                                              const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, sp), sp),
                                 _mm_cmpeq_epi8(v, del));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
    while (p < end && !IS(*p, C_TSTOP))
        p++;
    return p;
}

/* First control character (0x00-0x1f, DEL) in [p, end); `end` if none. */
static inline const unsigned char *find_ctl(const unsigned char *p,
                                            const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i us = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, us), us),
                                 _mm_cmpeq_epi8(v, del));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
    while (p < end && !IS(*p, C_CTL))
        p++;
    return p;
}

/*
 * End of a field name: the first byte in [p, end) that is not a tchar.
 * Fast path for the alphabet nearly every name uses, [A-Za-z0-9-], 16
 * bytes at a time; any other byte is looked up in the table.
 */
static inline const unsigned char *find_name_end(const unsigned char *p,
                                                 const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i x20 = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a'),
                  z = _mm_set1_epi8(25), d0 = _mm_set1_epi8('0'),
                  d9 = _mm_set1_epi8(9), dash = _mm_set1_epi8('-');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i l = _mm_sub_epi8(_mm_or_si128(v, x20), a);
        __m128i d = _mm_sub_epi8(v, d0);
        __m128i ok = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(l, z), z),
                         _mm_cmpeq_epi8(_mm_max_epu8(d, d9), d9)),
            _mm_cmpeq_epi8(v, dash));
        unsigned bits = (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;
        if (!bits) {
            p += 16;
            continue;
        }
        p += __builtin_ctz(bits);
        if (!IS(*p, C_TCHAR))
            return p;
        p++; /* a rarer tchar ('_', '.', ...): go on */
    }
#endif
    while (p < end && IS(*p, C_TCHAR))
        p++;
    return p;
}

/* First '%', '?' or '#' in [p, end); `end` if none. */
static inline const unsigned char *find_path_special(const unsigned char *p,
                                                     const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i pc = _mm_set1_epi8('%'), qm = _mm_set1_epi8('?'),
                  hs = _mm_set1_epi8('#');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, pc),
                                              _mm_cmpeq_epi8(v, qm)),
                                 _mm_cmpeq_epi8(v, hs));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
    while (p < end && *p != '%' && *p != '?' && *p != '#')
        p++;
    return p;
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */
/* ------------------------------------------------------------------------ */

void wharf_http_limits_default(struct wharf_http_limits *lim)
{
    lim->max_head = WHARF_HTTP_DEFAULT_MAX_HEAD;
    lim->max_target = 0;
    lim->max_headers = WHARF_HTTP_DEFAULT_MAX_HEADERS;
    lim->max_body = 0;
    lim->max_chunk_ext = WHARF_HTTP_DEFAULT_MAX_CHUNK_EXT;
    lim->max_trailer = 0;
}

/* The limits with defaults applied. */
struct lims {
    size_t head, target, headers, ext, trailer;
    uint64_t body;
};

static void norm_limits(struct lims *L, const struct wharf_http_limits *lim)
{
    struct wharf_http_limits d;
    if (!lim) {
        wharf_http_limits_default(&d);
        lim = &d;
    }
    L->head = lim->max_head ? lim->max_head : WHARF_HTTP_DEFAULT_MAX_HEAD;
    if (L->head > SIZE_MAX / 4)
        L->head = SIZE_MAX / 4; /* keeps offset + limit sums from wrapping */
    L->target = lim->max_target ? lim->max_target : L->head;
    if (L->target > L->head)
        L->target = L->head; /* cannot be longer than the head anyway */
    L->headers = lim->max_headers ? lim->max_headers
                                  : WHARF_HTTP_DEFAULT_MAX_HEADERS;
    L->ext = lim->max_chunk_ext ? lim->max_chunk_ext
                                : WHARF_HTTP_DEFAULT_MAX_CHUNK_EXT;
    L->trailer = lim->max_trailer ? lim->max_trailer : L->head;
    L->body = lim->max_body;
}

/* ------------------------------------------------------------------------ */
/* Head parser                                                              */
/* ------------------------------------------------------------------------ */

enum { ST_REQLINE = 0, ST_HEADERS, ST_DONE, ST_ERROR };

/* Results of the line parsers. */
enum { L_OK, L_MORE, L_ERR, L_END };

void wharf_http_request_init(struct wharf_http_request *r,
                             struct wharf_http_header *headers,
                             size_t header_cap, char *scratch,
                             size_t scratch_size)
{
    memset(r, 0, sizeof *r);
    r->headers = headers;
    r->header_cap = headers ? header_cap : 0;
    r->scratch = scratch;
    r->scratch_size = scratch ? scratch_size : 0;
    r->content_length = -1;
}

void wharf_http_request_reset(struct wharf_http_request *r)
{
    wharf_http_request_init(r, r->headers, r->header_cap, r->scratch,
                            r->scratch_size);
}

static int fail(struct wharf_http_request *r, int status, const char *reason)
{
    r->status = status;
    r->reason = reason;
    r->state_.stage = ST_ERROR;
    return L_ERR;
}

/* Out of bytes: wait for more, unless the window of max_head bytes is
 * exhausted (`hard`), in which case the head is too large. */
static int more(struct wharf_http_request *r, bool hard, int status,
                const char *reason)
{
    return hard ? fail(r, status, reason) : L_MORE;
}

#define TOO_LARGE 431, "request head too large"
#define LINE_TOO_LONG 414, "request line too long"

/*
 * b[q] is the CR or LF that ends a line; check the terminator against the
 * head's style (set by the request line: CRLF, or bare LF throughout) and
 * store the start of the next line in *next.
 */
static int eol(struct wharf_http_request *r, const unsigned char *b, size_t q,
               size_t end, bool hard, int status, const char *reason,
               size_t *next)
{
    if (b[q] == '\r') {
        if (r->state_.lf_only)
            return fail(r, 400, "CR in a head with bare-LF lines");
        if (q + 1 == end)
            return more(r, hard, status, reason);
        if (b[q + 1] != '\n')
            return fail(r, 400, "bare CR");
        *next = q + 2;
        return L_OK;
    }
    if (!r->state_.lf_only)
        return fail(r, 400, "bare LF in a head with CRLF lines");
    *next = q + 1;
    return L_OK;
}

/* Validate the request-target b[t0..t1) (no byte <= 0x20 or DEL in it). */
static int parse_target(struct wharf_http_request *r, const unsigned char *b,
                        size_t t0, size_t t1)
{
    struct wharf_http_state_ *s = &r->state_;
    const unsigned char *t = b + t0, *te = b + t1, *p;

    s->target_end = t1;
    if (*t == '/') {
        p = t; /* origin-form */
    } else if (*t == '*') {
        if (t1 - t0 != 1)
            return fail(r, 400, "invalid request-target");
        if (r->method_len != 7 || memcmp(r->method, "OPTIONS", 7) != 0)
            return fail(r, 400, "asterisk-form target without OPTIONS");
        s->path_start = t0;
        s->path_end = t1;
        return L_OK;
    } else if ((*t | 0x20) >= 'a' && (*t | 0x20) <= 'z') {
        /* absolute-form: scheme "://" authority path-abempty [ "?" query ] */
        const unsigned char *q = t, *a0;
        while (q < te && IS(*q, C_SCHEME))
            q++;
        if (q == te || *q != ':')
            return fail(r, 400, "invalid request-target");
        if (!((q - t == 4 && ci_eq(t, "http", 4)) ||
              (q - t == 5 && ci_eq(t, "https", 5))))
            return fail(r, 400, "unsupported URI scheme in request-target");
        if (te - q < 3 || q[1] != '/' || q[2] != '/')
            return fail(r, 400, "invalid absolute-form request-target");
        a0 = p = q + 3;
        while (p < te && *p != '/' && *p != '?' && *p != '#') {
            if (!IS(*p, C_HOST))
                return fail(r, 400, *p == '@' ? "userinfo in request-target"
                                              : "invalid host in request-target");
            p++;
        }
        if (p == a0)
            return fail(r, 400, "empty host in request-target");
        s->absolute = 1;
        s->auth_start = (size_t)(a0 - b);
        s->auth_len = (size_t)(p - a0);
    } else {
        return fail(r, 400, "invalid request-target");
    }

    s->path_start = (size_t)(p - b);
    for (;;) {
        p = find_path_special(p, te);
        if (p == te || *p == '?')
            break;
        if (*p == '#')
            return fail(r, 400, "fragment in request-target");
        /* '%' */
        if (te - p < 3 || !IS(p[1], C_HEX) || !IS(p[2], C_HEX))
            return fail(r, 400, "invalid percent-encoding in path");
        unsigned v = hexval(p[1]) << 4 | hexval(p[2]);
        if (v == 0)
            return fail(r, 400, "encoded NUL in path");
        if (v == '/')
            r->encoded_slash = true;
        s->pct = 1;
        p += 3;
    }
    s->path_end = (size_t)(p - b);
    if (p < te && memchr(p, '#', (size_t)(te - p)))
        return fail(r, 400, "fragment in request-target");
    return L_OK;
}

/*
 * The line parsers are resumable: on running out of bytes they save the
 * phase they are in and the position to go on from (state_.scan), and the
 * next call jumps back there.  Every byte of the head is examined once.
 */
#if defined(__GNUC__) && __GNUC__ >= 7 || defined(__clang__)
#define FALLTHROUGH __attribute__((fallthrough))
#else
#define FALLTHROUGH ((void)0)
#endif

enum { P_METHOD = 0, P_TARGET, P_VERSION, P_FIELD, P_NAME, P_OWS, P_VALUE };

/* Save where to resume, then wait (or fail when the window is full). */
static int suspend(struct wharf_http_request *r, unsigned phase, size_t at,
                   bool hard, int status, const char *reason)
{
    r->state_.phase = (unsigned char)phase;
    r->state_.scan = at;
    return more(r, hard, status, reason);
}

static int parse_request_line(struct wharf_http_request *r, char *buf,
                              size_t end, bool hard, const struct lims *L)
{
    struct wharf_http_state_ *s = &r->state_;
    const unsigned char *b = (const unsigned char *)buf;
    size_t p = s->scan, m0, t0, t1, v0, q, next;
    int rc;

    switch (s->phase) {
    case P_METHOD:
        /* RFC 9112 2.2: ignore empty lines (CRLF) before the
         * request-line. */
        while (p == s->pos && p < end && b[p] == '\r') {
            if (p + 1 == end)
                return suspend(r, P_METHOD, p, hard, TOO_LARGE);
            if (b[p + 1] != '\n')
                return fail(r, 400, "bare CR");
            p += 2;
            s->pos = p;
        }
        /* method SP */
        m0 = s->pos;
        size_t mlim = m0 + WHARF_HTTP_MAX_METHOD + 1;
        if (mlim > end)
            mlim = end;
        while (p < mlim && IS(b[p], C_TCHAR))
            p++;
        if (p - m0 > WHARF_HTTP_MAX_METHOD)
            return fail(r, 501, "method too long");
        if (p == end)
            return suspend(r, P_METHOD, p, hard, TOO_LARGE);
        if (b[p] != ' ')
            return fail(r, 400, p == m0 ? "invalid request line"
                                        : "invalid character in method");
        if (p == m0)
            return fail(r, 400, "empty method");
        r->method = buf + m0;
        r->method_len = p - m0;
        if (r->method_len == 7 && memcmp(r->method, "CONNECT", 7) == 0)
            return fail(r, 501, "CONNECT not supported");
        p++;
        FALLTHROUGH;

    case P_TARGET:
        /* request-target SP: the target ends at the first byte <= 0x20
         * or DEL, which must be the SP; length first, then content. */
        t0 = s->pos + r->method_len + 1;
        size_t tlim = t0 + L->target + 1;
        if (tlim > end)
            tlim = end;
        t1 = (size_t)(find_tstop(b + p, b + tlim) - b);
        if (t1 == tlim) {
            if (t1 - t0 > L->target)
                return fail(r, 414, "request-target too long");
            return suspend(r, P_TARGET, t1, hard, LINE_TOO_LONG);
        }
        if (b[t1] != ' ')
            return fail(r, 400, b[t1] == '\r' || b[t1] == '\n'
                                    ? "missing HTTP version"
                                    : "invalid character in request-target");
        if (t1 == t0)
            return fail(r, 400, "empty request-target");
        r->target = buf + t0;
        r->target_len = t1 - t0;
        rc = parse_target(r, b, t0, t1);
        if (rc != L_OK)
            return rc;
        p = t1 + 1;
        FALLTHROUGH;

    case P_VERSION:
        /* HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF or LF */
        v0 = s->target_end + 1;
        for (; p < v0 + 8; p++) {
            if (p == end)
                return suspend(r, P_VERSION, p, hard, LINE_TOO_LONG);
            unsigned char c = b[p], want = (unsigned char)"HTTP/9.9"[p - v0];
            if (want == '9' ? !(c >= '0' && c <= '9') : c != want)
                return fail(r, 400, "invalid HTTP version");
        }
        q = v0 + 8;
        if (q == end)
            return suspend(r, P_VERSION, q, hard, LINE_TOO_LONG);
        if (b[q] == '\n')
            s->lf_only = 1;
        else if (b[q] != '\r')
            return fail(r, 400, "invalid HTTP version");
        rc = eol(r, b, q, end, hard, LINE_TOO_LONG, &next);
        if (rc == L_MORE)
            s->phase = P_VERSION, s->scan = q;
        if (rc != L_OK)
            return rc;
        if (b[v0 + 5] != '1' || b[v0 + 7] > '1')
            return fail(r, 505, "HTTP version not supported");
        r->version = b[v0 + 7] == '1' ? 11 : 10;
        r->protocol = buf + v0;
        s->proto_end = q;
        s->pos = s->scan = next;
        s->phase = P_FIELD;
        s->stage = ST_HEADERS;
        return L_OK;
    }
    return fail(r, 500, "parser state corrupted");
}

/* Content-Length = 1*DIGIT, nothing else (no sign, no list, no spaces). */
static int field_content_length(struct wharf_http_request *r,
                                const unsigned char *v, size_t n)
{
    struct wharf_http_state_ *s = &r->state_;
    if (s->cl_count++)
        return fail(r, 400, "multiple Content-Length fields");
    if (n == 0)
        return fail(r, 400, "invalid Content-Length");
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return fail(r, 400, "invalid Content-Length");
        x = x * 10 + (uint64_t)(v[i] - '0');
        if (x > (uint64_t)INT64_MAX)
            return fail(r, 400, "Content-Length too large");
    }
    s->cl = (int64_t)x;
    return L_OK;
}

/*
 * Transfer-Encoding: the codings of all TE fields, in order.  We remember
 * whether something is wrong enough for a 400 (an empty element, a
 * non-token, or anything after "chunked": chunked must be last and applied
 * once, RFC 9112 6.3), whether a coding other than plain "chunked" was
 * seen (501 unless a 400 applies), and whether the last one is chunked.
 */
static void field_transfer_encoding(struct wharf_http_state_ *s,
                                    const unsigned char *v, size_t n)
{
    const unsigned char *p = v, *e = v + n;
    s->te_count = 1;
    for (;;) {
        const unsigned char *c = memchr(p, ',', (size_t)(e - p));
        const unsigned char *ee = c ? c : e;
        while (p < ee && (*p == ' ' || *p == '\t'))
            p++;
        while (ee > p && (ee[-1] == ' ' || ee[-1] == '\t'))
            ee--;
        if (p == ee) {
            s->te_bad = 1;
        } else {
            if (s->te_chunked_last)
                s->te_bad = 1;
            if (ee - p == 7 && ci_eq(p, "chunked", 7)) {
                s->te_chunked_last = 1;
            } else {
                s->te_chunked_last = 0;
                s->te_other = 1;
                if (!IS(*p, C_TCHAR))
                    s->te_bad = 1;
            }
        }
        if (!c)
            break;
        p = c + 1;
    }
}

/* Connection: a comma list of options; we only look for close and
 * keep-alive (case-insensitive, empty elements ignored). */
static void field_connection(struct wharf_http_state_ *s,
                             const unsigned char *v, size_t n)
{
    const unsigned char *p = v, *e = v + n;
    for (;;) {
        const unsigned char *c = memchr(p, ',', (size_t)(e - p));
        const unsigned char *ee = c ? c : e;
        while (p < ee && (*p == ' ' || *p == '\t'))
            p++;
        while (ee > p && (ee[-1] == ' ' || ee[-1] == '\t'))
            ee--;
        if (ee - p == 5 && ci_eq(p, "close", 5))
            s->conn_close = 1;
        else if (ee - p == 10 && ci_eq(p, "keep-alive", 10))
            s->conn_keep_alive = 1;
        if (!c)
            break;
        p = c + 1;
    }
}

/* Fields that change how the request is framed or routed. */
static int field_semantics(struct wharf_http_request *r,
                           const struct wharf_http_header *h)
{
    struct wharf_http_state_ *s = &r->state_;
    const unsigned char *n = (const unsigned char *)h->name;
    const unsigned char *v = (const unsigned char *)h->value;

    switch (h->name_len) {
    case 4:
        if (ci_eq(n, "host", 4)) {
            if (s->host_count++)
                return fail(r, 400, "multiple Host fields");
            for (size_t i = 0; i < h->value_len; i++)
                if (!IS(v[i], C_HOST))
                    return fail(r, 400, "invalid Host field");
            r->has_host = true;
            if (!s->absolute) {
                r->host = h->value;
                r->host_len = h->value_len;
            }
        }
        break;
    case 6:
        if (ci_eq(n, "expect", 6) && h->value_len) {
            if (h->value_len != 12 || !ci_eq(v, "100-continue", 12))
                return fail(r, 417, "unsupported expectation");
            s->expect = 1;
        }
        break;
    case 10:
        if (ci_eq(n, "connection", 10))
            field_connection(s, v, h->value_len);
        break;
    case 14:
        if (ci_eq(n, "content-length", 14))
            return field_content_length(r, v, h->value_len);
        break;
    case 17:
        if (ci_eq(n, "transfer-encoding", 17))
            field_transfer_encoding(s, v, h->value_len);
        break;
    }
    return L_OK;
}

/* One field line, or the empty line that ends the head (L_END). */
static int parse_header_line(struct wharf_http_request *r, char *buf,
                             size_t end, bool hard, const struct lims *L)
{
    struct wharf_http_state_ *s = &r->state_;
    const unsigned char *b = (const unsigned char *)buf;
    size_t p = s->scan, next;
    int rc;

    for (;;) switch (s->phase) {
    case P_FIELD:
        if (p == end)
            return suspend(r, P_FIELD, p, hard, TOO_LARGE);
        if (b[p] == '\r' || b[p] == '\n') {
            rc = eol(r, b, p, end, hard, TOO_LARGE, &next);
            if (rc == L_MORE)
                s->scan = p; /* resume at this line (phase P_FIELD) */
            if (rc != L_OK)
                return rc;
            s->pos = s->scan = next;
            return L_END;
        }
        if (b[p] == ' ' || b[p] == '\t')
            return fail(r, 400, r->header_count ? "obsolete line folding"
                                                : "whitespace before the first field");
        FALLTHROUGH;

    case P_NAME: /* field-name ":" */
        p = (size_t)(find_name_end(b + p, b + end) - b);
        if (p == end)
            return suspend(r, P_NAME, p, hard, TOO_LARGE);
        if (b[p] != ':')
            return fail(r, 400, b[p] == ' ' || b[p] == '\t'
                                    ? "whitespace before colon"
                                    : "invalid character in field name");
        if (p == s->pos)
            return fail(r, 400, "empty field name");
        s->colon = p++;
        FALLTHROUGH;

    case P_OWS:
        while (p < end && (b[p] == ' ' || b[p] == '\t'))
            p++;
        if (p == end)
            return suspend(r, P_OWS, p, hard, TOO_LARGE);
        s->vstart = p;
        FALLTHROUGH;

    case P_VALUE: { /* field-value OWS CRLF */
        const unsigned char *q = find_ctl(b + p, b + end);
        while (q < b + end && *q == '\t')
            q = find_ctl(q + 1, b + end);
        if (q == b + end)
            return suspend(r, P_VALUE, (size_t)(q - b), hard, TOO_LARGE);
        if (*q != '\r' && *q != '\n')
            return fail(r, 400, "invalid character in field value");
        size_t v0 = s->vstart, v1 = (size_t)(q - b);
        rc = eol(r, b, v1, end, hard, TOO_LARGE, &next);
        if (rc == L_MORE)
            s->phase = P_VALUE, s->scan = v1;
        if (rc != L_OK)
            return rc;
        while (v1 > v0 && (b[v1 - 1] == ' ' || b[v1 - 1] == '\t'))
            v1--;

        /* The line is complete. */
        if (r->header_count >= L->headers || r->header_count >= r->header_cap)
            return fail(r, 431, "too many header fields");
        struct wharf_http_header *h = &r->headers[r->header_count++];
        h->name = buf + s->pos;
        h->name_len = s->colon - s->pos;
        h->value = buf + v0;
        h->value_len = v1 - v0;
        rc = field_semantics(r, h);
        if (rc != L_OK)
            return rc;
        s->pos = p = next; /* on to the next line, without returning */
        s->phase = P_FIELD;
        break;
    }
    default:
        return fail(r, 500, "parser state corrupted");
    }
}

static enum wharf_http_result ferr(struct wharf_http_request *r, int status,
                                   const char *reason)
{
    fail(r, status, reason);
    return WHARF_HTTP_ERROR;
}

/* The empty line was read: framing decisions, path, then the NULs. */
static enum wharf_http_result finish(struct wharf_http_request *r, char *buf,
                                     const struct lims *L)
{
    struct wharf_http_state_ *s = &r->state_;

    if (r->version == 11 && !s->host_count)
        return ferr(r, 400, "missing Host field");
    if (s->te_count) {
        if (r->version == 10)
            return ferr(r, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (s->cl_count)
            return ferr(r, 400, "both Content-Length and Transfer-Encoding");
        if (s->te_bad)
            return ferr(r, 400, "invalid Transfer-Encoding");
        if (s->te_other || !s->te_chunked_last)
            return ferr(r, 501, "unsupported transfer coding");
        r->chunked = true;
    }
    if (s->cl_count) {
        if (L->body && (uint64_t)s->cl > L->body)
            return ferr(r, 413, "Content-Length exceeds limit");
        r->content_length = s->cl;
    }
    r->keep_alive = r->version == 11 ? !s->conn_close
                                     : (s->conn_keep_alive && !s->conn_close);
    r->expect_continue = s->expect && r->version == 11;
    r->absolute_form = s->absolute;

    /* Path: a slice of the target when it can be NUL-terminated in place
     * (no escapes, no query after it), else decoded into the scratch. */
    size_t raw = s->path_end - s->path_start;
    bool copy = raw && (s->pct || s->path_end != s->target_end);
    size_t need = (copy ? raw + 1 : 0) + (s->absolute ? s->auth_len + 1 : 0);
    if (need > r->scratch_size)
        return ferr(r, 500, "scratch buffer too small for the request-target");
    char *out = r->scratch;
    if (raw == 0) {
        r->path = "/";
        r->path_len = 1;
    } else if (!copy) {
        r->path = buf + s->path_start;
        r->path_len = raw;
    } else {
        const char *p = buf + s->path_start, *e = buf + s->path_end;
        char *o = out;
        while (p < e) {
            const char *pc = memchr(p, '%', (size_t)(e - p));
            size_t n = (size_t)((pc ? pc : e) - p);
            memcpy(o, p, n);
            o += n;
            if (!pc)
                break;
            *o++ = (char)(hexval((unsigned char)pc[1]) << 4 |
                          hexval((unsigned char)pc[2]));
            p = pc + 3;
        }
        *o = 0;
        r->path = out;
        r->path_len = (size_t)(o - out);
        out = o + 1;
    }
    if (s->absolute) {
        memcpy(out, buf + s->auth_start, s->auth_len);
        out[s->auth_len] = 0;
        r->host = out;
        r->host_len = s->auth_len;
    }
    if (s->path_end < s->target_end) {
        r->query = buf + s->path_end + 1;
        r->query_len = s->target_end - s->path_end - 1;
    } else {
        r->query = buf + s->target_end;
        r->query_len = 0;
    }

    /* NUL-terminate everything in place. */
    buf[(size_t)(r->method - buf) + r->method_len] = 0;
    buf[s->target_end] = 0;
    buf[s->proto_end] = 0;
    for (size_t i = 0; i < r->header_count; i++) {
        struct wharf_http_header *h = &r->headers[i];
        buf[(size_t)(h->name - buf) + h->name_len] = 0;
        buf[(size_t)(h->value - buf) + h->value_len] = 0;
    }
    r->head_len = s->pos;
    s->stage = ST_DONE;
    return WHARF_HTTP_COMPLETE;
}

enum wharf_http_result wharf_http_parse_head(struct wharf_http_request *r,
                                             const struct wharf_http_limits *lim,
                                             char *buf, size_t len)
{
    struct wharf_http_state_ *s = &r->state_;
    struct lims L;

    if (s->stage == ST_DONE)
        return WHARF_HTTP_COMPLETE;
    if (s->stage == ST_ERROR)
        return WHARF_HTTP_ERROR;
    /* The buffer moved or shrank: start over (nothing was written yet). */
    if (s->seen && (s->base != (uintptr_t)buf || len < s->seen))
        wharf_http_request_reset(r);
    s->base = (uintptr_t)buf;
    s->seen = len;

    norm_limits(&L, lim);
    size_t end = len < L.head ? len : L.head;
    bool hard = len >= L.head;

    for (;;) {
        int rc = s->stage == ST_REQLINE ? parse_request_line(r, buf, end, hard, &L)
                                        : parse_header_line(r, buf, end, hard, &L);
        switch (rc) {
        case L_OK:
            continue;
        case L_MORE:
            return WHARF_HTTP_NEED_MORE;
        case L_ERR:
            return WHARF_HTTP_ERROR;
        default:
            return finish(r, buf, &L);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Chunked decoder                                                          */
/* ------------------------------------------------------------------------ */

/*
 * chunked-body = *chunk last-chunk trailer-section CRLF
 * chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 * chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 * ext-val      = token / quoted-string
 */
enum {
    K_SIZE0,        /* first hex digit */
    K_SIZE,         /* more hex digits */
    K_EXT_WS,       /* BWS that must lead to ';' */
    K_EXT_NAME0,    /* after ';': BWS then ext-name */
    K_EXT_NAME,
    K_EXT_NAME_WS,  /* BWS after ext-name: '=' or ';' */
    K_EXT_VAL0,     /* after '=': BWS then token or quoted-string */
    K_EXT_VAL,
    K_EXT_QS,
    K_EXT_QP,       /* after '\' in a quoted-string */
    K_EXT_QS_END,
    K_SIZE_LF,
    K_DATA,
    K_DATA_CR,
    K_DATA_LF,
    K_TR_LINE,      /* start of a trailer line (or the final CRLF) */
    K_TR_NAME,
    K_TR_VALUE,
    K_TR_LF,
    K_TR_END_LF,
    K_DONE,
    K_ERROR,
};

void wharf_http_chunked_init(struct wharf_http_chunked *c)
{
    memset(c, 0, sizeof *c);
    c->st_ = K_SIZE0;
}

#define SPHT(ch) ((ch) == ' ' || (ch) == '\t')

/* One framing byte; returns 0, or the HTTP status of an error (reason set). */
static int chunk_byte(struct wharf_http_chunked *c, const struct lims *L,
                      unsigned char ch)
{
    switch (c->st_) {
    case K_SIZE0:
        if (!IS(ch, C_HEX))
            goto bad_size;
        c->size_ = hexval(ch);
        c->count_ = 1;
        c->st_ = K_SIZE;
        return 0;
    case K_SIZE:
        if (IS(ch, C_HEX)) {
            if (c->count_ == 16) {
                c->reason = "chunk size too long";
                return 400;
            }
            c->size_ = c->size_ << 4 | hexval(ch);
            c->count_++;
            if (c->size_ > (uint64_t)INT64_MAX) {
                c->reason = "chunk size overflow";
                return 400;
            }
            return 0;
        }
        if (ch != ';' && ch != '\r' && !SPHT(ch))
            goto bad_size;
        if (L->body && c->size_ > L->body - c->declared_) {
            c->reason = "chunked body exceeds limit";
            return 413;
        }
        c->declared_ += c->size_;
        c->count_ = 0;
        if (ch == '\r') {
            c->st_ = K_SIZE_LF;
            return 0;
        }
        c->st_ = ch == ';' ? K_EXT_NAME0 : K_EXT_WS;
        break; /* count the extension byte */
    case K_EXT_WS:
        if (ch == ';')
            c->st_ = K_EXT_NAME0;
        else if (!SPHT(ch))
            goto bad_ext;
        break;
    case K_EXT_NAME0:
        if (IS(ch, C_TCHAR))
            c->st_ = K_EXT_NAME;
        else if (!SPHT(ch))
            goto bad_ext;
        break;
    case K_EXT_NAME:
        if (ch == '\r') {
            c->st_ = K_SIZE_LF;
            return 0;
        }
        if (ch == '=')
            c->st_ = K_EXT_VAL0;
        else if (ch == ';')
            c->st_ = K_EXT_NAME0;
        else if (SPHT(ch))
            c->st_ = K_EXT_NAME_WS;
        else if (!IS(ch, C_TCHAR))
            goto bad_ext;
        break;
    case K_EXT_NAME_WS:
        if (ch == '=')
            c->st_ = K_EXT_VAL0;
        else if (ch == ';')
            c->st_ = K_EXT_NAME0;
        else if (!SPHT(ch))
            goto bad_ext;
        break;
    case K_EXT_VAL0:
        if (ch == '"')
            c->st_ = K_EXT_QS;
        else if (IS(ch, C_TCHAR))
            c->st_ = K_EXT_VAL;
        else if (!SPHT(ch))
            goto bad_ext;
        break;
    case K_EXT_VAL:
    case K_EXT_QS_END:
        if (ch == '\r') {
            c->st_ = K_SIZE_LF;
            return 0;
        }
        if (ch == ';')
            c->st_ = K_EXT_NAME0;
        else if (SPHT(ch))
            c->st_ = K_EXT_WS;
        else if (c->st_ == K_EXT_QS_END || !IS(ch, C_TCHAR))
            goto bad_ext;
        break;
    case K_EXT_QS:
        if (ch == '"')
            c->st_ = K_EXT_QS_END;
        else if (ch == '\\')
            c->st_ = K_EXT_QP;
        else if (!IS(ch, C_QDTEXT))
            goto bad_ext;
        break;
    case K_EXT_QP:
        if (!IS(ch, C_VALUE))
            goto bad_ext;
        c->st_ = K_EXT_QS;
        break;
    case K_SIZE_LF:
        if (ch != '\n') {
            c->reason = "chunk-size line not ended by CRLF";
            return 400;
        }
        if (c->size_ == 0) {
            c->st_ = K_TR_LINE;
            c->count_ = 0;
        } else {
            c->remaining_ = c->size_;
            c->st_ = K_DATA;
        }
        return 0;
    case K_DATA_CR:
    case K_DATA_LF:
        if (ch != (c->st_ == K_DATA_CR ? '\r' : '\n')) {
            c->reason = "chunk data not followed by CRLF";
            return 400;
        }
        c->st_ = c->st_ == K_DATA_CR ? K_DATA_LF : K_SIZE0;
        return 0;
    default: /* trailer section: the head's field rules, then discarded */
        if (++c->count_ > L->trailer) {
            c->reason = "trailer section too large";
            return 431;
        }
        switch (c->st_) {
        case K_TR_LINE:
            if (ch == '\r')
                c->st_ = K_TR_END_LF;
            else if (IS(ch, C_TCHAR))
                c->st_ = K_TR_NAME;
            else
                goto bad_trailer;
            return 0;
        case K_TR_NAME:
            if (ch == ':')
                c->st_ = K_TR_VALUE;
            else if (!IS(ch, C_TCHAR))
                goto bad_trailer;
            return 0;
        case K_TR_VALUE:
            if (ch == '\r')
                c->st_ = K_TR_LF;
            else if (!IS(ch, C_VALUE))
                goto bad_trailer;
            return 0;
        case K_TR_LF:
        case K_TR_END_LF:
            if (ch != '\n') {
                c->reason = "bare CR in trailer section";
                return 400;
            }
            c->st_ = c->st_ == K_TR_LF ? K_TR_LINE : K_DONE;
            return 0;
        }
        goto bad_trailer;
    }
    /* an extension byte */
    if (++c->count_ > L->ext) {
        c->reason = "chunk extension too long";
        return 400;
    }
    return 0;

bad_size:
    c->reason = "invalid chunk size";
    return 400;
bad_ext:
    c->reason = "invalid chunk extension";
    return 400;
bad_trailer:
    c->reason = "invalid trailer field";
    return 400;
}

enum wharf_http_result wharf_http_chunked_decode(struct wharf_http_chunked *c,
                                                 const struct wharf_http_limits *lim,
                                                 const char *in, size_t in_len,
                                                 size_t *consumed, char *out,
                                                 size_t out_size,
                                                 size_t *produced)
{
    struct lims L;
    size_t i = 0, o = 0;

    *consumed = 0;
    *produced = 0;
    if (c->st_ == K_DONE)
        return WHARF_HTTP_COMPLETE;
    if (c->st_ == K_ERROR)
        return WHARF_HTTP_ERROR;
    norm_limits(&L, lim);

    while (i < in_len) {
        if (c->st_ == K_DATA) {
            size_t n = in_len - i;
            if (n > c->remaining_)
                n = (size_t)c->remaining_;
            if (n > out_size - o)
                n = out_size - o;
            if (n == 0)
                break; /* out is full */
            if (out + o != in + i)
                memmove(out + o, in + i, n);
            i += n;
            o += n;
            c->remaining_ -= n;
            c->body_bytes += n;
            if (c->remaining_ == 0)
                c->st_ = K_DATA_CR;
            continue;
        }
        int status = chunk_byte(c, &L, (unsigned char)in[i++]);
        if (status) {
            c->status = status;
            c->st_ = K_ERROR;
            *consumed = i;
            *produced = o;
            return WHARF_HTTP_ERROR;
        }
        if (c->st_ == K_DONE)
            break;
    }
    *consumed = i;
    *produced = o;
    return c->st_ == K_DONE ? WHARF_HTTP_COMPLETE : WHARF_HTTP_NEED_MORE;
}
