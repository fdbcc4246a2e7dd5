/*
 * plugins/static/static_util.h - the pure parts of the static plugin:
 * request-path safety, Range, HTTP dates, entity tags, Accept-Encoding and
 * the MIME type table.  libc only (no wharf.h), so tests/unit can test them
 * one boundary at a time.
 */
#ifndef WHARF_STATIC_UTIL_H
#define WHARF_STATIC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when the decoded request path has a ".." segment, with '/' or '\\'
 * as separators (so "..\\x" and "a\\..\\b" count), or a NUL byte.  Such a
 * path is refused before the filesystem is touched. */
bool st_path_escapes(const char *path, size_t len);

/* Range (RFC 9110 14.1.2), for one representation of `size` bytes. */
enum st_range {
    ST_RANGE_NONE,          /* ignore the header: serve 200 (absent, bad
                               syntax, other unit, several ranges) */
    ST_RANGE_OK,            /* one satisfiable range: [*first, *last] */
    ST_RANGE_UNSATISFIABLE, /* 416 with Content-Range: bytes * /size */
};
enum st_range st_parse_range(const char *value, size_t len, uint64_t size,
                             uint64_t *first, uint64_t *last);

/* HTTP-date (RFC 9110 5.6.7): IMF-fixdate, and the obsolete RFC 850 and
 * asctime forms every recipient must accept.  Seconds since the epoch. */
bool st_parse_http_date(const char *s, size_t len, int64_t *out);
/* IMF-fixdate: exactly 29 characters, NUL-terminated. */
#define ST_HTTP_DATE_LEN 29
void st_format_http_date(int64_t t, char out[ST_HTTP_DATE_LEN + 1]);

/* If-None-Match: does the field value (a list of entity-tags, or "*")
 * match `etag` (with its quotes) by weak comparison? */
bool st_etag_list_match_weak(const char *list, size_t len, const char *etag,
                             size_t etag_len);
/* If-Range with an entity-tag: one strong tag equal to `etag`. */
bool st_etag_match_strong(const char *value, size_t len, const char *etag,
                          size_t etag_len);

/* Accept-Encoding: the qvalues (0..1000) the client gives br and gzip;
 * 0 means not acceptable.  No header at all means neither. */
void st_accept_encoding(const char *value, size_t len, int *q_br, int *q_gzip);

/* ------------------------------------------------------------------ MIME */

struct st_mime;
struct st_mime *st_mime_new(void);
void st_mime_free(struct st_mime *);
/* Read a mime.types file ("type ext ext ..." per line, '#' comments).
 * Later entries replace earlier ones for the same extension.  Returns the
 * number of extensions read, or -1 with errno set. */
long st_mime_load_file(struct st_mime *, const char *path);
/* Add the built-in table for extensions the files did not define. */
void st_mime_add_builtin(struct st_mime *);
/* Add or replace one extension (no dot; case-insensitive).  0 or -1. */
int st_mime_add(struct st_mime *, const char *ext, size_t ext_len,
                const char *type, size_t type_len);
/* The type for a file name, by its last extension, case-insensitively;
 * NULL when unknown. */
const char *st_mime_lookup(const struct st_mime *, const char *name,
                           size_t len);

#endif
