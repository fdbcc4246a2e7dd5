/*
 * plugins/redis_session/cookie.c - Cookie header parsing and session ids
 * (see cookie.h).  No allocation: the parser points into the header.
 */
#include "cookie.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static const char B64URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_index(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool rs_cookie_next(const char **pos, const char *end, struct rs_cookie *out)
{
    const char *p = *pos;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pair_end = semi ? semi : end;
        const char *next = semi ? semi + 1 : end;
        while (p < pair_end && is_ows(*p))
            p++;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        if (!eq) { /* "flag" or empty between ";;": not a pair */
            p = next;
            continue;
        }
        const char *ne = eq;
        while (ne > p && is_ows(ne[-1]))
            ne--;
        const char *v = eq + 1, *ve = pair_end;
        while (v < ve && is_ows(*v))
            v++;
        while (ve > v && is_ows(ve[-1]))
            ve--;
        if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
            v++;
            ve--;
        }
        if (ne == p) { /* "=value": no name */
            p = next;
            continue;
        }
        out->name = p;
        out->name_len = (size_t)(ne - p);
        out->value = v;
        out->value_len = (size_t)(ve - v);
        *pos = next;
        return true;
    }
    *pos = end;
    return false;
}

bool rs_cookie_find_id(const char *header, size_t len, const char *name, char *id)
{
    size_t nlen = strlen(name);
    const char *pos = header, *end = header + len;
    struct rs_cookie c;
    while (rs_cookie_next(&pos, end, &c)) {
        if (c.name_len != nlen || memcmp(c.name, name, nlen) != 0)
            continue;
        if (!rs_id_valid(c.value, c.value_len))
            continue;
        memcpy(id, c.value, RS_ID_LEN);
        id[RS_ID_LEN] = '\0';
        return true;
    }
    return false;
}

bool rs_id_valid(const char *s, size_t len)
{
    if (len != RS_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        int v = b64_index((unsigned char)s[i]);
        if (v < 0)
            return false;
        /* 32 bytes = 256 bits; 43 characters carry 258: the last one's
         * two low bits are padding and must be zero */
        if (i == len - 1 && (v & 3))
            return false;
    }
    return true;
}

void rs_id_encode(const unsigned char *raw, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= RS_ID_RAW; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = B64URL[(v >> 18) & 63];
        out[o++] = B64URL[(v >> 12) & 63];
        out[o++] = B64URL[(v >> 6) & 63];
        out[o++] = B64URL[v & 63];
    }
    /* 32 = 30 + 2 remaining bytes: three characters */
    unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8;
    out[o++] = B64URL[(v >> 18) & 63];
    out[o++] = B64URL[(v >> 12) & 63];
    out[o++] = B64URL[(v >> 6) & 63];
    out[o] = '\0';
}

int rs_id_new(char *out)
{
    unsigned char raw[RS_ID_RAW];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    rs_id_encode(raw, out);
    return 0;
}

bool rs_cookie_name_valid(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?={}", c))
            return false;
    }
    return true;
}
