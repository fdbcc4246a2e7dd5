/*
 * plugins/redis_session/cookie.h - the parts of redis_session that need no
 * Redis and no server: Cookie header parsing and session ids.  Kept apart
 * so the unit tests (test_cookie.c) exercise them directly.
 */
#ifndef WHARF_RS_COOKIE_H
#define WHARF_RS_COOKIE_H

#include <stdbool.h>
#include <stddef.h>

/* 32 random bytes, base64url without padding: 43 characters. */
#define RS_ID_RAW 32
#define RS_ID_LEN 43

/* One cookie-pair of a Cookie header.  Values in double quotes are given
 * without the quotes. */
struct rs_cookie {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Iterate over the pairs of one Cookie header value: *pos starts at the
 * header's first byte; returns false at the end.  Pairs without '=' or
 * with an empty name are skipped, as browsers do. */
bool rs_cookie_next(const char **pos, const char *end, struct rs_cookie *out);

/* The first well-formed session id under cookie `name` in this header
 * value; copies it (NUL-terminated) to id[RS_ID_LEN + 1]. */
bool rs_cookie_find_id(const char *header, size_t len, const char *name, char *id);

/* A well-formed id: exactly RS_ID_LEN base64url characters, canonical
 * (the unused low bits of the last character are zero). */
bool rs_id_valid(const char *s, size_t len);

/* Encode RS_ID_RAW bytes; out has room for RS_ID_LEN + 1. */
void rs_id_encode(const unsigned char *raw, char *out);

/* A new id from getrandom(2); 0, or -1 with errno. */
int rs_id_new(char *out);

/* A valid cookie name (an RFC 6265 token). */
bool rs_cookie_name_valid(const char *name);

#endif
