/*
 * http_parser.h - HTTP/1.0 and HTTP/1.1 request-head parser and chunked
 * body decoder for wharf's http plugin.
 *
 * Self-contained (C11, libc only, no allocation, no global state, thread
 * safe as long as each object is used by one thread at a time).  Everything
 * is prefixed wharf_http_; nothing here depends on core/wharf.h, but the
 * output maps onto it one to one (struct wharf_http_header has the exact
 * layout of struct wharf_header).  Deliberate deviations from RFC 9110/9112
 * and the status chosen for every refusal: plugins/http/PARSER.md.
 *
 * ------------------------------------------------------------------------
 * Ownership and zero copy
 * ------------------------------------------------------------------------
 * The parser never allocates and never copies the head.  Every string it
 * returns points into the caller's read buffer, except two that need bytes
 * the buffer does not have:
 *   - `path` when it differs from a plain slice of the request-target (it
 *     had %XX escapes to decode, or a query follows it), and
 *   - `host` when it comes from an absolute-form target;
 * these are written to the caller's `scratch` area.  A scratch of
 * WHARF_HTTP_SCRATCH_SIZE(limits) bytes is always enough (NULL/0 is fine
 * if you accept a 500 for such requests).  `path` may also point to a
 * static "/" (absolute-form target without a path).
 * All returned pointers stay valid for as long as the buffer bytes (and
 * the scratch) are left alone.
 *
 * ------------------------------------------------------------------------
 * In-place writes
 * ------------------------------------------------------------------------
 * When (and only when) wharf_http_parse_head() returns WHARF_HTTP_COMPLETE
 * it writes NUL bytes into the head, over delimiters it has already
 * consumed: the SP after the method and after the request-target, the CR
 * (or LF) after the version, the ':' after each field name and the first
 * byte after each trimmed field value (trailing OWS, CR or LF).  So every
 * returned string is NUL-terminated and its length excludes the NUL; none
 * contains a NUL (they are refused).  Bytes after the head (body, next
 * pipelined request) are never touched.  Before COMPLETE nothing is
 * written, so a NEED_MORE call leaves the buffer exactly as it was.
 * wharf_http_chunked_decode() writes decoded body bytes to `out`, which
 * may be the input buffer itself (in-place decoding).
 *
 * ------------------------------------------------------------------------
 * Incremental use
 * ------------------------------------------------------------------------
 * Call wharf_http_parse_head() with the bytes received so far (from the
 * start of the request; leading empty lines included).  On NEED_MORE read
 * more, append, call again with the longer length.  The parser keeps its
 * place, down to the byte inside the unfinished line, so a later call never
 * rescans what an earlier one examined and feeding a head one byte at a
 * time costs O(head), not O(head^2).
 * Between calls the bytes already passed must not change.  The buffer may
 * move (realloc, compaction): the parser notices the new address and
 * starts over from the first byte, which is safe because nothing was
 * written yet, but costs a re-scan, so do not move it on every read.
 * The verdict never depends on how the input was split.
 *
 * After COMPLETE the head occupies buf[0 .. head_len); the body starts at
 * buf + head_len.  Body framing:
 *   chunked            decode with wharf_http_chunked_decode() until it
 *                      returns COMPLETE; the next request starts right
 *                      after the bytes it consumed.
 *   content_length > 0 exactly that many body bytes follow.
 *   otherwise          no body; the next request starts at head_len.
 * Then call wharf_http_request_reset() and parse the next (pipelined)
 * request from where the previous one ended.
 *
 * After WHARF_HTTP_ERROR send `status` (400, 413, 414, 417, 431, 500, 501
 * or 505), log `reason` (a short static string) and close the connection:
 * after a framing error the stream cannot be resynchronised.  Further calls
 * return ERROR again.
 *
 * ------------------------------------------------------------------------
 * Mapping onto struct wharf_request (core/wharf.h)
 * ------------------------------------------------------------------------
 *   method, path, query, protocol, version   field by field
 *   uri                                      target
 *   headers, header_count                    the same layout: copy, or after
 *                                            _Static_assert()s on offsetof
 *                                            and sizeof use the array as is
 *   content_length                           chunked ? -1 :
 *                                            content_length < 0 ? 0 :
 *                                            content_length
 *   server_name                              host (without the port)
 *
 * ------------------------------------------------------------------------
 * Example
 * ------------------------------------------------------------------------
 *     struct wharf_http_limits lim;
 *     wharf_http_limits_default(&lim);
 *     lim.max_body = 10 << 20;                          // limit-post
 *
 *     // per connection, allocated once by the plugin:
 *     struct wharf_http_header hdrs[64];
 *     size_t scratch_size = WHARF_HTTP_SCRATCH_SIZE(&lim);
 *     char *scratch = malloc(scratch_size);
 *     struct wharf_http_request req;
 *     wharf_http_request_init(&req, hdrs, 64, scratch, scratch_size);
 *
 *     for (;;) {                                        // on each read
 *         switch (wharf_http_parse_head(&req, &lim, c->buf, c->len)) {
 *         case WHARF_HTTP_NEED_MORE: return;            // wait for data
 *         case WHARF_HTTP_ERROR:
 *             log("%d %s", req.status, req.reason);
 *             send_error_and_close(c, req.status);
 *             return;
 *         case WHARF_HTTP_COMPLETE:
 *             if (req.expect_continue) send_100_continue(c);
 *             run(c, &req, c->buf + req.head_len);     // body follows
 *             ...
 *         }
 *     }
 *
 *     // chunked body, decoded in place:
 *     struct wharf_http_chunked ch;
 *     wharf_http_chunked_init(&ch);
 *     size_t used, got;
 *     r = wharf_http_chunked_decode(&ch, &lim, p, n, &used, p, n, &got);
 *     // p[0..got) is body data; on COMPLETE the next request is at
 *     // p + used, on NEED_MORE all n bytes were used (read more).
 */
#ifndef WHARF_HTTP_PARSER_H
#define WHARF_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return values of the parsing functions. */
enum wharf_http_result {
    WHARF_HTTP_ERROR = -1,    /* refuse: answer ->status, log ->reason */
    WHARF_HTTP_NEED_MORE = 0, /* incomplete: call again with more bytes */
    WHARF_HTTP_COMPLETE = 1,  /* head parsed / chunked body finished */
};

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */
/* ------------------------------------------------------------------------ */

#define WHARF_HTTP_DEFAULT_MAX_HEAD 4096      /* uWSGI's buffer-size */
#define WHARF_HTTP_DEFAULT_MAX_HEADERS 100
#define WHARF_HTTP_DEFAULT_MAX_CHUNK_EXT 256
/* Longest method accepted; longer ones get 501 (RFC 9112 section 3). */
#define WHARF_HTTP_MAX_METHOD 32

/*
 * Limits, usually one shared read-only struct built from the config.  A
 * size field of 0 means its default, except max_body where 0 means
 * unlimited (as uWSGI's limit-post).  Pass the same limits to every call
 * for one request.
 */
struct wharf_http_limits {
    size_t max_head;      /* `buffer-size`: request line + fields + the
                             empty line, leading empty lines included;
                             more -> 431 (414 while still in the request
                             line).  Default 4096. */
    size_t max_target;    /* request-target bytes; more -> 414.
                             Default (0): max_head. */
    size_t max_headers;   /* field lines; more -> 431.  Also capped by the
                             caller's header array.  Default 100. */
    uint64_t max_body;    /* `limit-post`: a Content-Length above it -> 413
                             at head time; chunked: 413 as soon as the
                             declared chunk sizes add up to more.
                             0 = unlimited. */
    size_t max_chunk_ext; /* bytes of chunk extensions on one chunk-size
                             line; more -> 400.  Default 256. */
    size_t max_trailer;   /* bytes of the trailer section, final CRLF
                             included; more -> 431.  Default: max_head. */
};

/* Fill `lim` with the defaults above. */
void wharf_http_limits_default(struct wharf_http_limits *lim);

/* Scratch bytes that always suffice for wharf_http_request.scratch. */
#define WHARF_HTTP_SCRATCH_SIZE(lim)                                        \
    (((lim)->max_target ? (lim)->max_target                                 \
      : (lim)->max_head ? (lim)->max_head : WHARF_HTTP_DEFAULT_MAX_HEAD) + 2)

/* ------------------------------------------------------------------------ */
/* Request head                                                             */
/* ------------------------------------------------------------------------ */

/* One field line, as received.  Same layout as struct wharf_header. */
struct wharf_http_header {
    const char *name;  /* case as sent, NUL-terminated */
    size_t name_len;
    const char *value; /* leading and trailing OWS removed, NUL-terminated */
    size_t value_len;
};

/* Parser state; private, do not touch. */
struct wharf_http_state_ {
    uintptr_t base;          /* address of the buffer at the last call */
    size_t seen;             /* length at the last call */
    size_t pos;              /* start of the line being parsed */
    size_t scan;             /* where to resume inside that line */
    size_t colon, vstart;    /* field line: ':' and value start */
    size_t target_end, proto_end;
    size_t path_start, path_end;
    size_t auth_start, auth_len;
    int64_t cl;
    unsigned char stage, phase, lf_only, absolute, pct;
    unsigned char cl_count, host_count, te_count, te_bad, te_other,
        te_chunked_last, conn_close, conn_keep_alive, expect;
};

struct wharf_http_request {
    /* ---- Set by wharf_http_request_init(), kept by _reset(). ---- */
    struct wharf_http_header *headers; /* field lines go here */
    size_t header_cap;
    char *scratch;                     /* see "Ownership" above */
    size_t scratch_size;

    /* ---- Results, valid after WHARF_HTTP_COMPLETE. ---- */
    const char *method;   size_t method_len;  /* "GET", case-sensitive */
    const char *target;   size_t target_len;  /* raw request-target */
    const char *path;     size_t path_len;    /* percent-decoded path, no
                                                 query; "*" for OPTIONS *.
                                                 ".." is NOT resolved. */
    const char *query;    size_t query_len;   /* raw, without '?'; "" if
                                                 none */
    const char *protocol;                     /* "HTTP/1.1" */
    int version;                              /* 10 or 11 */
    const char *host;     size_t host_len;    /* authority to use: from an
                                                 absolute-form target, else
                                                 the Host field value
                                                 (maybe ""); NULL if none */
    size_t header_count;                      /* headers[0..header_count) */
    int64_t content_length;                   /* Content-Length, or -1 when
                                                 absent */
    bool chunked;           /* Transfer-Encoding: chunked (content_length
                               is then -1) */
    bool keep_alive;        /* the connection may serve another request:
                               1.1 unless "Connection: close", 1.0 only with
                               "Connection: keep-alive" */
    bool expect_continue;   /* "Expect: 100-continue" in a 1.1 request:
                               send "100 Continue" before reading the body
                               (ignored in 1.0, as RFC 9110 requires) */
    bool has_host;          /* a Host field was present */
    bool absolute_form;     /* target was "http://host/..." */
    bool encoded_slash;     /* the raw path contained %2F (decoded to '/' in
                               `path`): static files and routing may want
                               to refuse or treat it specially */
    size_t head_len;        /* bytes of the head, final empty line
                               included; the body starts here */

    /* ---- Set on WHARF_HTTP_ERROR. ---- */
    int status;             /* HTTP status to answer */
    const char *reason;     /* short static text for the log */

    struct wharf_http_state_ state_; /* private */
};

/*
 * Prepare `req` for its first request.  `headers` (capacity `header_cap`)
 * and `scratch` (`scratch_size` bytes, may be NULL/0) are the caller's and
 * are reused for every request parsed with `req`.
 */
void wharf_http_request_init(struct wharf_http_request *req,
                             struct wharf_http_header *headers,
                             size_t header_cap, char *scratch,
                             size_t scratch_size);

/* Forget the previous request (keeps the caller's arrays) so `req` can
 * parse the next one, e.g. the next pipelined request. */
void wharf_http_request_reset(struct wharf_http_request *req);

/*
 * Parse the request head at buf[0..len).  `lim` may be NULL (defaults).
 *   NEED_MORE  the head is not complete yet (nothing written to buf)
 *   COMPLETE   req is filled in; req->head_len bytes belong to the head;
 *              delimiters inside the head were overwritten with NULs
 *   ERROR      req->status / req->reason say why; close after answering
 * Once COMPLETE or ERROR, further calls return the same result until
 * wharf_http_request_reset().
 */
enum wharf_http_result wharf_http_parse_head(struct wharf_http_request *req,
                                             const struct wharf_http_limits *lim,
                                             char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Chunked body                                                             */
/* ------------------------------------------------------------------------ */

struct wharf_http_chunked {
    uint64_t body_bytes;    /* decoded body bytes produced so far */
    int status;             /* on WHARF_HTTP_ERROR: 400, 413 or 431 */
    const char *reason;
    /* private */
    uint64_t remaining_;    /* data bytes left in the current chunk */
    uint64_t declared_;     /* sum of the chunk sizes seen so far */
    uint64_t size_;         /* chunk-size being read */
    size_t count_;          /* digits, extension or trailer bytes so far */
    unsigned char st_;
};

void wharf_http_chunked_init(struct wharf_http_chunked *c);

/*
 * Decode chunked data from in[0..in_len) into out[0..out_size).  `out` may
 * be `in` (in-place decoding: the body is compacted to the front of the
 * buffer); otherwise the two must not overlap.  `lim` may be NULL.
 * On return *consumed input bytes were used and *produced body bytes
 * written.
 *   COMPLETE   last chunk and trailer section read; in + *consumed is the
 *              first byte after the body (the next pipelined request)
 *   NEED_MORE  either all input was used (*consumed == in_len): read more;
 *              or `out` is full (*produced == out_size): make room, then
 *              call again with the rest of the input
 *   ERROR      c->status / c->reason; close the connection
 * Trailer fields are checked with the head's field rules and discarded.
 * Framing lines must end in CRLF; a bare LF or CR is an error.  Input can
 * be split anywhere: the decoder keeps its state byte by byte.
 */
enum wharf_http_result wharf_http_chunked_decode(struct wharf_http_chunked *c,
                                                 const struct wharf_http_limits *lim,
                                                 const char *in, size_t in_len,
                                                 size_t *consumed, char *out,
                                                 size_t out_size,
                                                 size_t *produced);

#ifdef __cplusplus
}
#endif

#endif /* WHARF_HTTP_PARSER_H */
