/*
 * plugins/route/rules.c - the routing language itself (see rules.h).
 *
 * Semantics follow uWSGI's core/routing.c and its router_* plugins; every
 * deliberate difference is marked "wharf:" in a comment.
 */
#include "rules.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ======================================================== templates */

/* uWSGI's grammar (uwsgi_routing_translate + uwsgi_regexp_apply_ovec):
 *   $D        group D (one digit); a group the regex does not have is empty
 *   ${NAME}   request variable; ${name[arg]} a "route var" (cookie, qs...)
 *   ${...     without '}' stays literal, as does '$' before anything else.
 * There is no escape for a literal "$1" (uWSGI has none either). */
int route_tmpl_compile(struct route_tmpl *t, const char *text, size_t len)
{
    memset(t, 0, sizeof *t);
    t->text = xstrndup(text, len);
    if (!t->text)
        return -1;
    t->text_len = len;
    /* at most one token per byte, plus one */
    t->toks = calloc(len + 1, sizeof *t->toks);
    if (!t->toks) {
        free(t->text);
        t->text = NULL;
        return -1;
    }
    const char *s = t->text, *end = s + len;
    const char *lit = s;
    t->is_static = true;
#define FLUSH_LIT(upto)                                                   \
    do {                                                                  \
        if ((upto) > lit) {                                               \
            struct route_tok *k = &t->toks[t->ntoks++];                   \
            k->kind = ROUTE_TOK_LIT;                                      \
            k->s = lit;                                                   \
            k->len = (size_t)((upto) - lit);                              \
        }                                                                 \
    } while (0)
    const char *p = s;
    while (p < end) {
        if (*p != '$' || p + 1 >= end) {
            p++;
            continue;
        }
        char c = p[1];
        if (c >= '0' && c <= '9') {
            FLUSH_LIT(p);
            struct route_tok *k = &t->toks[t->ntoks++];
            k->kind = ROUTE_TOK_GROUP;
            k->group = (uint8_t)(c - '0');
            t->is_static = false;
            p += 2;
            lit = p;
            continue;
        }
        if (c == '{') {
            const char *close = memchr(p + 2, '}', (size_t)(end - (p + 2)));
            if (!close) { /* unterminated: the rest is literal */
                p = end;
                break;
            }
            FLUSH_LIT(p);
            struct route_tok *k = &t->toks[t->ntoks++];
            k->kind = ROUTE_TOK_VAR;
            const char *key = p + 2;
            size_t klen = (size_t)(close - key);
            const char *br = memchr(key, '[', klen);
            if (br && klen > 0 && key[klen - 1] == ']') {
                k->s = key;
                k->len = (size_t)(br - key);
                k->arg = br + 1;
                k->arg_len = klen - k->len - 2;
            } else {
                k->s = key;
                k->len = klen;
            }
            /* uWSGI replaces $N before it expands ${..}, so a group can
             * name the variable: ${qs[$1]} */
            for (size_t i = 0; i + 1 < klen; i++)
                if (key[i] == '$' && key[i + 1] >= '0' && key[i + 1] <= '9')
                    k->dynamic = true;
            t->is_static = false;
            p = close + 1;
            lit = p;
            continue;
        }
        p += 2; /* "$x": literal, x is not looked at again */
    }
    FLUSH_LIT(end);
#undef FLUSH_LIT
    return 0;
}

void route_tmpl_free(struct route_tmpl *t)
{
    free(t->text);
    free(t->toks);
    memset(t, 0, sizeof *t);
}

struct outbuf {
    char *p;
    size_t len, cap;
    bool overflow;
};

static void out_put(struct outbuf *o, const char *s, size_t n)
{
    if (o->overflow)
        return;
    if (n >= o->cap - o->len) { /* keep room for the NUL */
        o->overflow = true;
        return;
    }
    if (n)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_group(struct outbuf *o, const struct route_caps *caps, unsigned g)
{
    if (caps && g < caps->n && caps->s[g])
        out_put(o, caps->s[g], caps->len[g]);
}

/* "$N" inside a variable name or argument (dynamic ${..}). */
static bool expand_groups(const char *s, size_t len, const struct route_caps *caps,
                          char *out, size_t cap, size_t *outlen)
{
    struct outbuf o = { out, 0, cap, false };
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '$' && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9') {
            put_group(&o, caps, (unsigned)(s[i + 1] - '0'));
            i++;
        } else {
            out_put(&o, s + i, 1);
        }
    }
    if (o.overflow)
        return false;
    out[o.len] = '\0';
    *outlen = o.len;
    return true;
}

/* The value of `key` in "k1=v1; k2=v2" (cookies, sep ';') or
 * "k1=v1&k2=v2" (query string, sep '&'); leading spaces of an item are
 * skipped.  uWSGI returns the raw (still encoded) value too. */
static bool find_pair(const char *s, size_t len, char sep, const char *key, size_t klen,
                      const char **val, size_t *vlen)
{
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *item_end = memchr(p, sep, (size_t)(end - p));
        if (!item_end)
            item_end = end;
        const char *q = p;
        while (q < item_end && (*q == ' ' || *q == '\t'))
            q++;
        const char *eq = memchr(q, '=', (size_t)(item_end - q));
        if (eq && (size_t)(eq - q) == klen && memcmp(q, key, klen) == 0) {
            *val = eq + 1;
            *vlen = (size_t)(item_end - (eq + 1));
            return true;
        }
        if (item_end == end)
            break;
        p = item_end + 1;
    }
    return false;
}

static bool lookup_var(const struct route_tok *k, const struct route_caps *caps,
                       route_lookup_fn lookup, void *ctx, char *scratch, size_t scratch_len,
                       const char **val, size_t *vlen)
{
    if (!lookup)
        return false;
    const char *name = k->s, *arg = k->arg;
    size_t nlen = k->len, alen = k->arg_len;
    char nbuf[256], abuf[512];
    if (k->dynamic) {
        if (!expand_groups(k->s, k->len, caps, nbuf, sizeof nbuf, &nlen))
            return false;
        name = nbuf;
        if (arg) {
            if (!expand_groups(k->arg, k->arg_len, caps, abuf, sizeof abuf, &alen))
                return false;
            arg = abuf;
        }
    }
    if (arg && nlen == 6 && memcmp(name, "cookie", 6) == 0) {
        const char *c;
        size_t clen;
        if (!lookup(ctx, "HTTP_COOKIE", 11, NULL, 0, scratch, scratch_len, &c, &clen))
            return false;
        return find_pair(c, clen, ';', arg, alen, val, vlen);
    }
    if (arg && nlen == 2 && memcmp(name, "qs", 2) == 0) {
        const char *q;
        size_t qlen;
        if (!lookup(ctx, "QUERY_STRING", 12, NULL, 0, scratch, scratch_len, &q, &qlen))
            return false;
        return find_pair(q, qlen, '&', arg, alen, val, vlen);
    }
    return lookup(ctx, name, nlen, arg, alen, scratch, scratch_len, val, vlen);
}

ssize_t route_tmpl_expand(const struct route_tmpl *t, const struct route_caps *caps,
                          route_lookup_fn lookup, void *ctx, char *out, size_t cap)
{
    if (cap == 0)
        return -1;
    struct outbuf o = { out, 0, cap, false };
    for (size_t i = 0; i < t->ntoks && !o.overflow; i++) {
        const struct route_tok *k = &t->toks[i];
        switch (k->kind) {
        case ROUTE_TOK_LIT:
            out_put(&o, k->s, k->len);
            break;
        case ROUTE_TOK_GROUP:
            put_group(&o, caps, k->group);
            break;
        case ROUTE_TOK_VAR: {
            char scratch[64];
            const char *v = NULL;
            size_t vlen = 0;
            if (lookup_var(k, caps, lookup, ctx, scratch, sizeof scratch, &v, &vlen) && v)
                out_put(&o, v, vlen);
            break;
        }
        default:
            break;
        }
    }
    if (o.overflow)
        return -1;
    out[o.len] = '\0';
    return (ssize_t)o.len;
}

/* ======================================================== regexes */

int route_regex_compile(struct route_regex *re, const char *pattern, bool use_jit, char *err,
                        size_t errlen)
{
    memset(re, 0, sizeof *re);
    int code = 0;
    PCRE2_SIZE off = 0;
    re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (!re->code) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", code);
        set_err(err, errlen, "bad regex '%s': %s at offset %zu", pattern, (const char *)msg,
                (size_t)off);
        return -1;
    }
    /* JIT can be refused (no executable memory under some sandboxes):
     * then the interpreter runs the same pattern. */
    re->jit = use_jit && pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
    re->pattern = strdup(pattern);
    if (!re->pattern) {
        pcre2_code_free(re->code);
        re->code = NULL;
        set_err(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void route_regex_free(struct route_regex *re)
{
    if (re->code)
        pcre2_code_free(re->code);
    free(re->pattern);
    memset(re, 0, sizeof *re);
}

int route_regex_match(const struct route_regex *re, const char *subject, size_t len,
                      pcre2_match_data *md, pcre2_match_context *mctx, struct route_caps *caps)
{
    if (!subject) {
        subject = "";
        len = 0;
    }
    int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)subject, len, 0, 0, md, mctx)
                     : pcre2_match(re->code, (PCRE2_SPTR)subject, len, 0, 0, md, mctx);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0)
        return -1;
    if (caps) {
        /* rc == 0: more groups than the match data holds; the first
         * ROUTE_MAX_GROUPS are there */
        uint32_t n = rc == 0 ? pcre2_get_ovector_count(md) : (uint32_t)rc;
        if (n > ROUTE_MAX_GROUPS)
            n = ROUTE_MAX_GROUPS;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        caps->n = n;
        for (uint32_t i = 0; i < n; i++) {
            if (ov[2 * i] == PCRE2_UNSET || ov[2 * i + 1] < ov[2 * i]) {
                caps->s[i] = NULL;
                caps->len[i] = 0;
            } else {
                caps->s[i] = subject + ov[2 * i];
                caps->len[i] = ov[2 * i + 1] - ov[2 * i];
            }
        }
    }
    return 1;
}

/* ======================================================== basic auth */

bool route_ct_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
    volatile unsigned char diff = a_len != b_len;
    for (size_t i = 0; i < b_len; i++) {
        unsigned char x = i < a_len ? (unsigned char)a[i] : 0;
        diff |= x ^ (unsigned char)b[i];
    }
    return diff == 0;
}

/* SHA-1 (FIPS 180-4), only for Apache's {SHA} htpasswd entries. */
struct sha1_ctx {
    uint32_t h[5];
    uint64_t bytes;
    unsigned char block[64];
    size_t fill;
};

static uint32_t rol32(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(struct sha1_ctx *c, const unsigned char *b)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | (uint32_t)b[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = c->h[0], bb = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (bb & cc) | (~bb & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = bb ^ cc ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (bb & cc) | (bb & d) | (cc & d);
            k = 0x8F1BBCDC;
        } else {
            f = bb ^ cc ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t tmp = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = cc;
        cc = rol32(bb, 30);
        bb = a;
        a = tmp;
    }
    c->h[0] += a;
    c->h[1] += bb;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
}

static void sha1_update(struct sha1_ctx *c, const unsigned char *p, size_t len)
{
    c->bytes += len;
    while (len) {
        size_t n = 64 - c->fill < len ? 64 - c->fill : len;
        memcpy(c->block + c->fill, p, n);
        c->fill += n;
        p += n;
        len -= n;
        if (c->fill == 64) {
            sha1_block(c, c->block);
            c->fill = 0;
        }
    }
}

void route_sha1(const void *data, size_t len, unsigned char out[20])
{
    struct sha1_ctx c = { { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 }, 0, { 0 }, 0 };
    sha1_update(&c, data, len);
    uint64_t bits = c.bytes * 8;
    unsigned char pad = 0x80;
    sha1_update(&c, &pad, 1);
    unsigned char zero = 0;
    while (c.fill != 56)
        sha1_update(&c, &zero, 1);
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_update(&c, lenb, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(c.h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c.h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c.h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c.h[i];
    }
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t route_base64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ssize_t route_basic_decode(const char *value, size_t len, char *out, size_t cap)
{
    /* RFC 7617: the scheme is case-insensitive (uWSGI wants "Basic ") */
    if (len < 6 || strncasecmp(value, "basic", 5) != 0 || (value[5] != ' ' && value[5] != '\t'))
        return -1;
    const char *p = value + 6, *end = value + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - p);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 >= cap)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)p[i + j];
            if (c == '=') {
                /* padding only at the very end, "xx==" or "xxx=" */
                if (i + 4 != n || j < 2 || (j == 2 && p[i + 3] != '='))
                    return -1;
                v[j] = -2;
            } else {
                v[j] = b64val(c);
                if (v[j] < 0)
                    return -1;
            }
        }
        out[o++] = (char)(v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0)
            out[o++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
        if (v[3] >= 0)
            out[o++] = (char)((v[2] & 3) << 6 | v[3]);
    }
    out[o] = '\0';
    return (ssize_t)o;
}

void route_htpasswd_free(struct route_htpasswd *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++) {
        free(h->entries[i].user);
        if (h->entries[i].hash) {
            /* the hash is a secret of sorts: do not leave it in freed memory */
            memset(h->entries[i].hash, 0, strlen(h->entries[i].hash));
            free(h->entries[i].hash);
        }
    }
    free(h->entries);
    free(h->path);
    memset(h, 0, sizeof *h);
}

static bool crypt_hash_ok(const char *hash)
{
    /* traditional DES: exactly 13 characters of the crypt alphabet;
     * otherwise "$id$..." (or BSDi "_...") for crypt_checksalt */
    if (hash[0] != '$' && hash[0] != '_') {
        if (strlen(hash) != 13)
            return false;
        for (const char *p = hash; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '/')
                return false;
    }
#ifdef CRYPT_CHECKSALT_AVAILABLE
    int r = crypt_checksalt(hash);
    return r == CRYPT_SALT_OK || r == CRYPT_SALT_METHOD_LEGACY || r == CRYPT_SALT_TOO_CHEAP;
#else
    return hash[0] != '\0';
#endif
}

int route_htpasswd_load(struct route_htpasswd *h, const char *path, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, errlen, "cannot read htpasswd file %s: %s", path, strerror(errno));
        return -1;
    }
    h->path = strdup(path);
    char *line = NULL;
    size_t cap = 0, cap_entries = 0;
    unsigned lineno = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                         line[n - 1] == '\t'))
            line[--n] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        char *colon = strchr(s, ':');
        if (!colon || colon == s || !colon[1]) {
            set_err(err, errlen, "%s:%u: expected user:hash", path, lineno);
            rc = -1;
            break;
        }
        *colon = '\0';
        const char *hash = colon + 1;
        bool sha1 = strncmp(hash, "{SHA}", 5) == 0;
        if (strncmp(hash, "$apr1$", 6) == 0) {
            set_err(err, errlen,
                    "%s:%u: user '%s': Apache MD5 ($apr1$) hashes are not supported "
                    "(create the file with htpasswd -B for bcrypt)",
                    path, lineno, s);
            rc = -1;
            break;
        }
        if (!sha1 && !crypt_hash_ok(hash)) {
            set_err(err, errlen,
                    "%s:%u: user '%s': unsupported password hash (use bcrypt: htpasswd -B)",
                    path, lineno, s);
            rc = -1;
            break;
        }
        if (h->count == cap_entries) {
            cap_entries = cap_entries ? cap_entries * 2 : 8;
            struct route_htpasswd_entry *e =
                realloc(h->entries, cap_entries * sizeof *h->entries);
            if (!e) {
                rc = -1;
                set_err(err, errlen, "out of memory");
                break;
            }
            h->entries = e;
        }
        struct route_htpasswd_entry *e = &h->entries[h->count++];
        e->user = strdup(s);
        e->hash = strdup(sha1 ? hash + 5 : hash);
        e->sha1 = sha1;
        if (!e->user || !e->hash) {
            rc = -1;
            set_err(err, errlen, "out of memory");
            break;
        }
    }
    if (line) {
        memset(line, 0, cap);
        free(line);
    }
    fclose(f);
    if (rc == 0 && h->count == 0) {
        set_err(err, errlen, "htpasswd file %s has no user", path);
        rc = -1;
    }
    if (rc < 0)
        route_htpasswd_free(h);
    return rc;
}

static bool verify_entry(const struct route_htpasswd_entry *e, const char *pass, size_t plen)
{
    if (e->sha1) {
        unsigned char d[20];
        char b64[32];
        route_sha1(pass, plen, d);
        size_t n = route_base64_encode(d, sizeof d, b64);
        return route_ct_equal(b64, n, e->hash, strlen(e->hash));
    }
    /* crypt_ra reuses one buffer per thread (struct crypt_data is ~32 KiB:
     * not for the stack).  basicauth runs in the request chain, on the
     * worker's loop thread only. */
    static __thread void *data;
    static __thread int size;
    char pw[ROUTE_AUTH_MAX + 1];
    if (plen > ROUTE_AUTH_MAX || memchr(pass, '\0', plen))
        return false;
    memcpy(pw, pass, plen);
    pw[plen] = '\0';
    const char *out = crypt_ra(pw, e->hash, &data, &size);
    memset(pw, 0, sizeof pw);
    if (!out || out[0] == '*')
        return false;
    return route_ct_equal(out, strlen(out), e->hash, strlen(e->hash));
}

size_t route_htpasswd_check(const struct route_htpasswd *h, const char *user, size_t ulen,
                            const char *pass, size_t plen)
{
    if (!h || !h->count)
        return 0;
    for (size_t i = 0; i < h->count; i++) {
        const struct route_htpasswd_entry *e = &h->entries[i];
        if (strlen(e->user) == ulen && memcmp(e->user, user, ulen) == 0)
            return verify_entry(e, pass, plen) ? ulen : 0;
    }
    /* an unknown user costs one hash too, so timing does not tell which
     * user names exist */
    (void)verify_entry(&h->entries[0], pass, plen);
    return 0;
}

/* ======================================================== options */

struct kind {
    const char *suffix;
    enum route_subject subject;
    bool negate;
};

static const struct kind kinds[] = {
    { "", ROUTE_SUBJ_PATH, false },
    { "-host", ROUTE_SUBJ_HOST, false },
    { "-uri", ROUTE_SUBJ_URI, false },
    { "-qs", ROUTE_SUBJ_QS, false },
    { "-remote-addr", ROUTE_SUBJ_REMOTE_ADDR, false },
    { "-user-agent", ROUTE_SUBJ_USER_AGENT, false },
    { "-referer", ROUTE_SUBJ_REFERER, false },
    { "-run", ROUTE_SUBJ_RUN, false },
    { "-if", ROUTE_SUBJ_IF, false },
    { "-if-not", ROUTE_SUBJ_IF, true },
    { "-label", ROUTE_SUBJ_LABEL, false },
};

#define KIND_NAMES(prefix)                                                              \
    prefix, prefix "-host", prefix "-uri", prefix "-qs", prefix "-remote-addr",         \
        prefix "-user-agent", prefix "-referer", prefix "-run", prefix "-if",           \
        prefix "-if-not", prefix "-label"

const char *const route_option_names[] = {
    KIND_NAMES("route"), KIND_NAMES("response-route"), KIND_NAMES("final-route"), NULL
};

static const char *const chain_prefixes[ROUTE_CHAINS] = { "route", "response-route",
                                                          "final-route" };

const char *route_chain_prefix(enum route_chain c)
{
    return c < ROUTE_CHAINS ? chain_prefixes[c] : "?";
}

bool route_option_kind(const char *option, enum route_chain *chain, enum route_subject *subject,
                       bool *negate)
{
    /* longest prefix first: "response-route" and "final-route" end in "route" */
    for (int c = ROUTE_CHAINS - 1; c >= 0; c--) {
        size_t pl = strlen(chain_prefixes[c]);
        if (strncmp(option, chain_prefixes[c], pl) != 0)
            continue;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (strcmp(option + pl, kinds[k].suffix) == 0) {
                *chain = (enum route_chain)c;
                *subject = kinds[k].subject;
                *negate = kinds[k].negate;
                return true;
            }
    }
    return false;
}

/* ======================================================== conditions */

static const struct {
    const char *name;
    enum route_cond cond;
} conds[] = {
    { "exists", ROUTE_COND_EXISTS },
    { "isfile", ROUTE_COND_ISFILE },
    { "isdir", ROUTE_COND_ISDIR },
    { "islink", ROUTE_COND_ISLINK },
    { "isexec", ROUTE_COND_ISEXEC },
    { "empty", ROUTE_COND_EMPTY },
    { "equal", ROUTE_COND_EQUAL },
    { "isequal", ROUTE_COND_EQUAL },
    { "eq", ROUTE_COND_EQUAL },
    { "==", ROUTE_COND_EQUAL },
    { "startswith", ROUTE_COND_STARTSWITH },
    { "endswith", ROUTE_COND_ENDSWITH },
    { "contains", ROUTE_COND_CONTAINS },
    { "contain", ROUTE_COND_CONTAINS },
    { "regexp", ROUTE_COND_REGEXP },
    { "re", ROUTE_COND_REGEXP },
    { "ishigher", ROUTE_COND_HIGHER },
    { ">", ROUTE_COND_HIGHER },
    { "ishigherequal", ROUTE_COND_HIGHEREQUAL },
    { ">=", ROUTE_COND_HIGHEREQUAL },
    { "islower", ROUTE_COND_LOWER },
    { "<", ROUTE_COND_LOWER },
    { "islowerequal", ROUTE_COND_LOWEREQUAL },
    { "<=", ROUTE_COND_LOWEREQUAL },
    { "ipv4in", ROUTE_COND_IPV4IN },
    { "ipv6in", ROUTE_COND_IPV6IN },
};

const char *route_cond_name(enum route_cond c)
{
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
        if (conds[i].cond == c)
            return conds[i].name;
    return "?";
}

static bool cond_two_operands(enum route_cond c)
{
    return c >= ROUTE_COND_EQUAL;
}

/* strtol on a counted string, as uWSGI's strtol on the expanded text */
static long num_of(const char *s, size_t len)
{
    char buf[32];
    size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

static bool ip_in(int af, const char *a, size_t alen, const char *b, size_t blen)
{
    char ip[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN + 8];
    if (alen >= sizeof ip || blen >= sizeof net)
        return false;
    memcpy(ip, a, alen);
    ip[alen] = '\0';
    memcpy(net, b, blen);
    net[blen] = '\0';
    int maxbits = af == AF_INET ? 32 : 128;
    int bits = maxbits;
    char *slash = strchr(net, '/');
    if (slash) {
        *slash = '\0';
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || v < 0 || v > maxbits)
            return false;
        bits = (int)v;
    }
    unsigned char x[16], y[16];
    if (inet_pton(af, ip, x) != 1 || inet_pton(af, net, y) != 1)
        return false;
    int full = bits / 8, rest = bits % 8;
    if (memcmp(x, y, (size_t)full) != 0)
        return false;
    if (rest) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if ((x[full] & mask) != (y[full] & mask))
            return false;
    }
    return true;
}

static bool path_check(enum route_cond c, const char *a, size_t alen)
{
    char path[4096];
    if (alen == 0 || alen >= sizeof path || memchr(a, '\0', alen))
        return false;
    memcpy(path, a, alen);
    path[alen] = '\0';
    struct stat st;
    switch (c) {
    case ROUTE_COND_EXISTS:
        return stat(path, &st) == 0;
    case ROUTE_COND_ISFILE:
        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
    case ROUTE_COND_ISDIR:
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    case ROUTE_COND_ISLINK:
        return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
    case ROUTE_COND_ISEXEC:
        return access(path, X_OK) == 0;
    default:
        return false;
    }
}

bool route_cond_eval(enum route_cond c, const char *a, size_t alen, const char *b, size_t blen)
{
    switch (c) {
    case ROUTE_COND_EXISTS:
    case ROUTE_COND_ISFILE:
    case ROUTE_COND_ISDIR:
    case ROUTE_COND_ISLINK:
    case ROUTE_COND_ISEXEC:
        return path_check(c, a, alen);
    case ROUTE_COND_EMPTY:
        return alen == 0;
    case ROUTE_COND_EQUAL:
        return alen == blen && memcmp(a, b, alen) == 0;
    case ROUTE_COND_STARTSWITH:
        return blen <= alen && memcmp(a, b, blen) == 0;
    case ROUTE_COND_ENDSWITH:
        return blen <= alen && memcmp(a + alen - blen, b, blen) == 0;
    case ROUTE_COND_CONTAINS:
        return blen == 0 || (blen <= alen && memmem(a, alen, b, blen) != NULL);
    case ROUTE_COND_HIGHER:
        return num_of(a, alen) > num_of(b, blen);
    case ROUTE_COND_HIGHEREQUAL:
        return num_of(a, alen) >= num_of(b, blen);
    case ROUTE_COND_LOWER:
        return num_of(a, alen) < num_of(b, blen);
    case ROUTE_COND_LOWEREQUAL:
        return num_of(a, alen) <= num_of(b, blen);
    case ROUTE_COND_IPV4IN:
        return ip_in(AF_INET, a, alen, b, blen);
    case ROUTE_COND_IPV6IN:
        return ip_in(AF_INET6, a, alen, b, blen);
    default:
        return false;
    }
}

/* ======================================================== helpers */

static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
    ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

bool route_is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!tchar[(unsigned char)s[i]])
            return false;
    return true;
}

bool route_header_split(const char *line, size_t len, const char **name, size_t *nlen,
                        const char **value, size_t *vlen)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return false;
    const char *n0 = line, *n1 = colon;
    while (n0 < n1 && (*n0 == ' ' || *n0 == '\t'))
        n0++;
    while (n1 > n0 && (n1[-1] == ' ' || n1[-1] == '\t'))
        n1--;
    if (!route_is_token(n0, (size_t)(n1 - n0)))
        return false;
    const char *v0 = colon + 1, *v1 = line + len;
    while (v0 < v1 && (*v0 == ' ' || *v0 == '\t'))
        v0++;
    while (v1 > v0 && (v1[-1] == ' ' || v1[-1] == '\t'))
        v1--;
    for (const char *p = v0; p < v1; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    *name = n0;
    *nlen = (size_t)(n1 - n0);
    *value = v0;
    *vlen = (size_t)(v1 - v0);
    return true;
}

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

size_t route_url_decode(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%' && i + 2 < len) {
            int h = hexv((unsigned char)in[i + 1]);
            int l = hexv((unsigned char)in[i + 2]);
            /* %00 stays as is: a NUL would cut every C string after it */
            if (h >= 0 && l >= 0 && (h | l) != 0) {
                out[o++] = (char)(h << 4 | l);
                i += 2;
                continue;
            }
        }
        out[o++] = in[i];
    }
    out[o] = '\0';
    return o;
}

ssize_t route_location_encode(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= 0x20 || c >= 0x7f) {
            if (o + 3 >= cap)
                return -1;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)c;
        }
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return (ssize_t)o;
}

size_t route_log_escape(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            if (o + 4 >= cap)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            if (o + 1 >= cap)
                break;
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

/* ======================================================== rule parsing */

struct action_def {
    const char *name;
    enum route_action action;
    int status;      /* redirects */
    bool flag;       /* rewrite-last, basicauth-next */
};

static const struct action_def actions[] = {
    { "continue", ROUTE_ACT_CONTINUE, 0, false },
    { "last", ROUTE_ACT_CONTINUE, 0, false },
    { "break", ROUTE_ACT_BREAK, 0, false },
    { "return", ROUTE_ACT_RETURN, 0, false },
    { "break-with-status", ROUTE_ACT_RETURN, 0, false },
    { "redirect", ROUTE_ACT_REDIRECT, 302, false },
    { "redirect-302", ROUTE_ACT_REDIRECT, 302, false },
    { "redirect-permanent", ROUTE_ACT_REDIRECT, 301, false },
    { "redirect-301", ROUTE_ACT_REDIRECT, 301, false },
    { "redirect-303", ROUTE_ACT_REDIRECT, 303, false },
    { "redirect-307", ROUTE_ACT_REDIRECT, 307, false },
    { "redirect-308", ROUTE_ACT_REDIRECT, 308, false },
    { "rewrite", ROUTE_ACT_REWRITE, 0, false },
    { "rewrite-last", ROUTE_ACT_REWRITE, 0, true },
    { "goto", ROUTE_ACT_GOTO, 0, false },
    { "addheader", ROUTE_ACT_ADDHEADER, 0, false },
    { "delheader", ROUTE_ACT_DELHEADER, 0, false },
    { "remheader", ROUTE_ACT_DELHEADER, 0, false },
    { "addvar", ROUTE_ACT_SETVAR, 0, false },
    { "setvar", ROUTE_ACT_SETVAR, 0, false },
    { "log", ROUTE_ACT_LOG, 0, false },
    { "basicauth", ROUTE_ACT_BASICAUTH, 0, false },
    { "basicauth-next", ROUTE_ACT_BASICAUTH, 0, true },
};

/* uWSGI actions wharf does not have, for a clearer message than
 * "unknown action". */
static const char *const uwsgi_only_actions[] = {
    "logvar", "donotlog", "donotoffload", "clearheaders", "resetheaders", "disableheaders",
    "signal", "send", "send-crnl", "chdir", "setapp", "setuser", "sethome", "setfile",
    "setscriptname", "setmethod", "seturi", "setremoteaddr", "setpathinfo", "fixpathinfo",
    "setdocroot", "setscheme", "setprocname", "alarm", "setmodifier1", "setmodifier2", "flush",
    "fixcl", "forcecl", "harakiri", "goon", "static", "file", "cache", "cachestore",
    "cache-store", "cachevar", "cacheset", "cacheinc", "cachedec", "cachemul", "cachediv",
    "cache-continue", "memcached", "memcached-continue", "memcachedstore", "rpc", "call",
    "rpcret", "rpcnext", "rpcraw", "rpcblob", "uwsgi", "http", "proxyhttp", "proxyuwsgi",
    "xslt", "ssi", "gridfs", "cgi", "cgihelper", "access", "ldapauth", "ldapauth-next",
    "redis", "redisstore", "spnego", "radius", "sendfile", "fastfile", "+", "-", "*", "/",
    NULL
};

static const char valid_actions_text[] =
    "continue, last, break, return, break-with-status, redirect, redirect-301, "
    "redirect-302, redirect-303, redirect-307, redirect-308, redirect-permanent, rewrite, "
    "rewrite-last, goto, addheader, delheader, remheader, addvar, setvar, log, basicauth, "
    "basicauth-next";

/* What each later chain may do: the response head is being sent
 * (response-route) or the response is over (final-route). */
static bool action_allowed(enum route_chain chain, const struct route_rule *r)
{
    if (chain == ROUTE_CHAIN_REQUEST)
        return true;
    switch (r->action) {
    case ROUTE_ACT_CONTINUE:
    case ROUTE_ACT_GOTO:
    case ROUTE_ACT_SETVAR:
    case ROUTE_ACT_LOG:
        return true;
    case ROUTE_ACT_BREAK:
        return r->status == 0; /* stops the chain, changes nothing */
    case ROUTE_ACT_ADDHEADER:
    case ROUTE_ACT_DELHEADER:
        return chain == ROUTE_CHAIN_RESPONSE;
    default:
        return false;
    }
}

static int parse_status(const char *s, size_t len, int *status)
{
    if (len != 3 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
        !isdigit((unsigned char)s[2]))
        return -1;
    int v = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (v < 100 || v > 599)
        return -1;
    *status = v;
    return 0;
}

static bool printable(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static bool has_subst(const char *s, size_t len)
{
    struct route_tmpl t;
    if (route_tmpl_compile(&t, s, len) < 0)
        return true;
    bool st = t.is_static;
    route_tmpl_free(&t);
    return !st;
}

static int parse_action(struct route_config *cfg, struct route_rule *r, const char *text,
                        char *err, size_t errlen)
{
    const char *colon = strchr(text, ':');
    size_t nlen = colon ? (size_t)(colon - text) : strlen(text);
    const char *arg = colon ? colon + 1 : "";
    size_t alen = strlen(arg);
    const struct action_def *def = NULL;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strlen(actions[i].name) == nlen && memcmp(actions[i].name, text, nlen) == 0)
            def = &actions[i];
    if (!def) {
        for (size_t i = 0; uwsgi_only_actions[i]; i++)
            if (strlen(uwsgi_only_actions[i]) == nlen &&
                memcmp(uwsgi_only_actions[i], text, nlen) == 0) {
                set_err(err, errlen,
                        "the uWSGI action '%.*s' is not supported by wharf (actions: %s)",
                        (int)nlen, text, valid_actions_text);
                return -1;
            }
        set_err(err, errlen, "unknown action '%.*s' (expected one of: %s)",
                (int)(nlen > 64 ? 64 : nlen), text, valid_actions_text);
        return -1;
    }
    r->action = def->action;
    r->action_text = strdup(text);
    if (!r->action_text)
        goto oom;
    /* wharf: actions without an argument may omit the ':' ("continue");
     * uWSGI insists on "continue:". */
    switch (def->action) {
    case ROUTE_ACT_CONTINUE:
        if (alen) {
            set_err(err, errlen, "'%s' takes no argument (got '%s')", def->name, arg);
            return -1;
        }
        break;
    case ROUTE_ACT_BREAK: {
        /* break, break:CODE, break:CODE REASON (uWSGI's "403 Forbidden") */
        if (!alen)
            break;
        const char *sp = strchr(arg, ' ');
        size_t clen = sp ? (size_t)(sp - arg) : alen;
        if (parse_status(arg, clen, &r->status) < 0) {
            set_err(err, errlen, "break: '%s' is not a status code (expected break:CODE or "
                                 "break:CODE REASON, CODE 100-599)", arg);
            return -1;
        }
        if (sp) {
            while (*sp == ' ')
                sp++;
            if (*sp) {
                if (!printable(sp)) {
                    set_err(err, errlen, "break: the reason phrase holds a control character");
                    return -1;
                }
                r->reason = strdup(sp);
                if (!r->reason)
                    goto oom;
            }
        }
        break;
    }
    case ROUTE_ACT_RETURN:
        if (parse_status(arg, alen, &r->status) < 0) {
            set_err(err, errlen, "%s: '%s' is not a status code (expected %s:CODE, CODE 100-599)",
                    def->name, arg, def->name);
            return -1;
        }
        break;
    case ROUTE_ACT_REDIRECT: {
        r->status = def->status;
        /* wharf: redirect:CODE:URL picks the status ("301:/new" cannot be
         * a URL: a scheme starts with a letter) */
        if (def->status == 302 && alen > 4 && isdigit((unsigned char)arg[0]) && arg[3] == ':') {
            int st;
            if (parse_status(arg, 3, &st) < 0 ||
                (st != 301 && st != 302 && st != 303 && st != 307 && st != 308)) {
                set_err(err, errlen, "redirect: status %.3s is not a redirect "
                                     "(expected 301, 302, 303, 307 or 308)", arg);
                return -1;
            }
            r->status = st;
            arg += 4;
            alen -= 4;
        }
        if (!alen) {
            set_err(err, errlen, "%s needs a URL (%s:https://example.com/path)", def->name,
                    def->name);
            return -1;
        }
        if (route_tmpl_compile(&r->arg, arg, alen) < 0)
            goto oom;
        break;
    }
    case ROUTE_ACT_REWRITE:
        r->last = def->flag;
        if (!alen) {
            set_err(err, errlen, "%s needs a path (%s:/index.php?page=$1)", def->name,
                    def->name);
            return -1;
        }
        if (route_tmpl_compile(&r->arg, arg, alen) < 0)
            goto oom;
        break;
    case ROUTE_ACT_GOTO:
        if (!alen) {
            set_err(err, errlen, "goto needs a label (goto:LABEL, with route-label = LABEL "
                                 "further down)");
            return -1;
        }
        if (route_tmpl_compile(&r->arg, arg, alen) < 0)
            goto oom;
        r->goto_dynamic = !r->arg.is_static;
        break;
    case ROUTE_ACT_ADDHEADER: {
        if (route_tmpl_compile(&r->arg, arg, alen) < 0)
            goto oom;
        const char *n, *v;
        size_t nl, vl;
        const char *colon2 = memchr(arg, ':', alen);
        /* the name must be fixed and valid at load; a value with $N/${VAR}
         * is checked per request */
        if (!colon2 || has_subst(arg, (size_t)(colon2 - arg)) ||
            (r->arg.is_static && !route_header_split(arg, alen, &n, &nl, &v, &vl)) ||
            (!r->arg.is_static && !route_header_split(arg, (size_t)(colon2 - arg + 1), &n, &nl,
                                                      &v, &vl))) {
            set_err(err, errlen, "addheader: '%s' is not 'Name: value' with a valid header "
                                 "name", arg);
            return -1;
        }
        break;
    }
    case ROUTE_ACT_DELHEADER:
        if (!alen || (!has_subst(arg, alen) && !route_is_token(arg, alen))) {
            set_err(err, errlen, "%s: '%s' is not a header name", def->name, arg);
            return -1;
        }
        if (route_tmpl_compile(&r->arg, arg, alen) < 0)
            goto oom;
        break;
    case ROUTE_ACT_SETVAR: {
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg || !route_is_token(arg, (size_t)(eq - arg))) {
            set_err(err, errlen, "%s: '%s' is not NAME=VALUE", def->name, arg);
            return -1;
        }
        r->var_name = xstrndup(arg, (size_t)(eq - arg));
        if (!r->var_name || route_tmpl_compile(&r->arg, eq + 1, strlen(eq + 1)) < 0)
            goto oom;
        break;
    }
    case ROUTE_ACT_LOG:
        if (route_tmpl_compile(&r->arg, arg, alen) < 0)
            goto oom;
        break;
    case ROUTE_ACT_BASICAUTH: {
        r->next = def->flag;
        const char *comma = strchr(arg, ',');
        if (!comma) {
            set_err(err, errlen, "%s: expected REALM,user:password or REALM,/path/to/htpasswd "
                                 "(got '%s')", def->name, arg);
            return -1;
        }
        r->realm = xstrndup(arg, (size_t)(comma - arg));
        if (!r->realm)
            goto oom;
        for (const char *p = r->realm; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\') {
                set_err(err, errlen, "%s: the realm may not hold quotes, backslashes or "
                                     "control characters", def->name);
                return -1;
            }
        const char *creds = comma + 1;
        if (strchr(creds, ':')) {
            r->creds = strdup(creds);
            if (!r->creds)
                goto oom;
            r->creds_len = strlen(creds);
            r->user_len = (size_t)(strchr(creds, ':') - creds);
        } else if (*creds) {
            r->htpasswd = calloc(1, sizeof *r->htpasswd);
            if (!r->htpasswd)
                goto oom;
            if (cfg->no_files) {
                r->htpasswd->path = strdup(creds);
            } else if (route_htpasswd_load(r->htpasswd, creds, err, errlen) < 0) {
                free(r->htpasswd);
                r->htpasswd = NULL;
                return -1;
            }
        }
        /* empty credentials: "REALM," always answers 401 (uWSGI) */
        break;
    }
    default:
        break;
    }
    if (!action_allowed(r->chain, r)) {
        set_err(err, errlen,
                "action '%s' cannot run in %s (%s); allowed there: continue, last, break, "
                "goto, log, addvar, setvar%s",
                def->name, route_chain_prefix(r->chain),
                r->chain == ROUTE_CHAIN_RESPONSE ? "the response is already on its way"
                                                 : "the response was already sent",
                r->chain == ROUTE_CHAIN_RESPONSE ? ", addheader, delheader" : "");
        return -1;
    }
    return 0;
oom:
    set_err(err, errlen, "out of memory");
    return -1;
}

static void rule_free(struct route_rule *r)
{
    free(r->value);
    route_regex_free(&r->re);
    route_tmpl_free(&r->cond_a);
    route_tmpl_free(&r->cond_b);
    free(r->label);
    free(r->action_text);
    route_tmpl_free(&r->arg);
    free(r->reason);
    free(r->var_name);
    free(r->realm);
    if (r->creds) {
        memset(r->creds, 0, r->creds_len);
        free(r->creds);
    }
    if (r->htpasswd) {
        route_htpasswd_free(r->htpasswd);
        free(r->htpasswd);
    }
    memset(r, 0, sizeof *r);
}

static int parse_condition(struct route_config *cfg, struct route_rule *r, const char *text,
                           char *err, size_t errlen)
{
    const char *colon = strchr(text, ':');
    if (!colon) {
        set_err(err, errlen, "expected CONDITION:ARGS ACTION (e.g. equal:${PATH_INFO};/x "
                             "break:404), got '%s'", text);
        return -1;
    }
    size_t nlen = (size_t)(colon - text);
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
        if (strlen(conds[i].name) == nlen && memcmp(conds[i].name, text, nlen) == 0)
            r->cond = conds[i].cond;
    if (r->cond == ROUTE_COND_NONE) {
        set_err(err, errlen, "unknown condition '%.*s' (expected one of: exists, isfile, "
                             "isdir, islink, isexec, empty, equal, startswith, endswith, "
                             "contains, regexp, ishigher, ishigherequal, islower, "
                             "islowerequal, ipv4in, ipv6in)",
                (int)(nlen > 64 ? 64 : nlen), text);
        return -1;
    }
    const char *args = colon + 1;
    if (!cond_two_operands(r->cond))
        return route_tmpl_compile(&r->cond_a, args, strlen(args)) < 0 ? -1 : 0;
    /* uWSGI splits the operands at the first ';' */
    const char *semi = strchr(args, ';');
    if (!semi) {
        /* uWSGI: never true; wharf: a config error, it is always a typo */
        set_err(err, errlen, "condition '%s' needs two operands A;B (got '%s')",
                route_cond_name(r->cond), args);
        return -1;
    }
    if (route_tmpl_compile(&r->cond_a, args, (size_t)(semi - args)) < 0)
        return -1;
    if (r->cond == ROUTE_COND_REGEXP)
        /* wharf: compiled once here; uWSGI compiles it for every request */
        return route_regex_compile(&r->re, semi + 1, cfg->use_jit, err, errlen);
    return route_tmpl_compile(&r->cond_b, semi + 1, strlen(semi + 1)) < 0 ? -1 : 0;
}

void route_config_init(struct route_config *cfg, bool use_jit)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->use_jit = use_jit;
}

static bool find_label_any(const struct route_table *t, const char *name, size_t len,
                           size_t *index)
{
    for (size_t i = 0; i < t->count; i++)
        if (t->rules[i].subject == ROUTE_SUBJ_LABEL && strlen(t->rules[i].label) == len &&
            memcmp(t->rules[i].label, name, len) == 0) {
            *index = i;
            return true;
        }
    return false;
}

int route_config_add(struct route_config *cfg, const char *option, const char *value,
                     const char *origin, char *err, size_t errlen)
{
    enum route_chain chain;
    enum route_subject subject;
    bool negate;
    if (!route_option_kind(option, &chain, &subject, &negate)) {
        set_err(err, errlen, "'%s' is not a route option", option);
        return -1;
    }
    struct route_table *t = &cfg->chain[chain];
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct route_rule *n = realloc(t->rules, cap * sizeof *n);
        if (!n) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
        t->rules = n;
        t->cap = cap;
    }
    struct route_rule *r = &t->rules[t->count];
    memset(r, 0, sizeof *r);
    r->chain = chain;
    r->subject = subject;
    r->negate = negate;
    r->option = option;
    r->origin = origin;
    r->pos = (unsigned)t->count;
    /* the value as the ini reader left it, minus surrounding blanks */
    const char *v = value;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vlen = strlen(v);
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    r->value = xstrndup(v, vlen);
    if (!r->value) {
        set_err(err, errlen, "out of memory");
        return -1;
    }

    int rc = 0;
    if (subject == ROUTE_SUBJ_LABEL) {
        size_t dummy;
        if (!vlen || strpbrk(r->value, " \t")) {
            set_err(err, errlen, "a label is one word (got '%s')", r->value);
            rc = -1;
        } else if (find_label_any(t, r->value, vlen, &dummy)) {
            set_err(err, errlen, "label '%s' is defined twice in %s", r->value,
                    route_chain_prefix(chain));
            rc = -1;
        } else if (!(r->label = strdup(r->value))) {
            set_err(err, errlen, "out of memory");
            rc = -1;
        }
    } else if (subject == ROUTE_SUBJ_RUN) {
        if (!vlen) {
            set_err(err, errlen, "expected an action (e.g. log:hello)");
            rc = -1;
        } else {
            rc = parse_action(cfg, r, r->value, err, errlen);
        }
    } else {
        /* "<condition> <action>", split at the first blank (uWSGI: the first
         * space; a regex that needs one writes \s or \x20) */
        char *sp = strpbrk(r->value, " \t");
        if (!sp) {
            set_err(err, errlen, "expected '%s ACTION' (e.g. '%s break:404'), got '%s'",
                    subject == ROUTE_SUBJ_IF ? "CONDITION:ARGS" : "REGEX",
                    subject == ROUTE_SUBJ_IF ? "equal:${PATH_INFO};/x" : "^/old/", r->value);
            rc = -1;
        } else {
            char *cond = xstrndup(r->value, (size_t)(sp - r->value));
            const char *act = sp;
            while (*act == ' ' || *act == '\t')
                act++;
            if (!cond) {
                set_err(err, errlen, "out of memory");
                rc = -1;
            } else if (subject == ROUTE_SUBJ_IF) {
                rc = parse_condition(cfg, r, cond, err, errlen);
            } else {
                rc = route_regex_compile(&r->re, cond, cfg->use_jit, err, errlen);
            }
            free(cond);
            if (rc == 0)
                rc = parse_action(cfg, r, act, err, errlen);
        }
    }
    if (rc < 0) {
        if (!err[0])
            set_err(err, errlen, "out of memory");
        rule_free(r);
        return -1;
    }
    t->count++;
    return 0;
}

bool route_find_label(const struct route_table *t, const char *name, size_t len, size_t from,
                      size_t *index)
{
    for (size_t i = from; i < t->count; i++)
        if (t->rules[i].subject == ROUTE_SUBJ_LABEL && strlen(t->rules[i].label) == len &&
            memcmp(t->rules[i].label, name, len) == 0) {
            *index = i;
            return true;
        }
    return false;
}

int route_config_finish(struct route_config *cfg, const struct route_rule **bad, char *err,
                        size_t errlen)
{
    for (int c = 0; c < ROUTE_CHAINS; c++) {
        struct route_table *t = &cfg->chain[c];
        for (size_t i = 0; i < t->count; i++) {
            struct route_rule *r = &t->rules[i];
            if (r->action != ROUTE_ACT_GOTO || r->goto_dynamic)
                continue;
            const char *name = r->arg.text;
            size_t len = r->arg.text_len;
            size_t at;
            if (route_find_label(t, name, len, i + 1, &at)) {
                r->goto_target = at;
                continue;
            }
            if (find_label_any(t, name, len, &at)) {
                set_err(err, errlen,
                        "goto '%s' jumps backward to the label at %s (goto only jumps "
                        "forward, so routing always ends)",
                        name, t->rules[at].origin ? t->rules[at].origin : "?");
                *bad = r;
                return -1;
            }
            /* uWSGI also jumps to a rule number */
            char *end;
            long n = strtol(name, &end, 10);
            if (end != name && !*end && n > (long)i && (size_t)n < t->count) {
                r->goto_target = (size_t)n;
                continue;
            }
            if (end != name && !*end) {
                set_err(err, errlen, "goto %s: rule %s of %s %s (goto only jumps forward)",
                        name, name, route_chain_prefix(r->chain),
                        n <= (long)i && n >= 0 ? "is not after this one" : "does not exist");
            } else {
                set_err(err, errlen, "goto '%s': no %s-label '%s' after this rule", name,
                        route_chain_prefix(r->chain), name);
            }
            *bad = r;
            return -1;
        }
    }
    return 0;
}

void route_config_free(struct route_config *cfg)
{
    for (int c = 0; c < ROUTE_CHAINS; c++) {
        struct route_table *t = &cfg->chain[c];
        for (size_t i = 0; i < t->count; i++)
            rule_free(&t->rules[i]);
        free(t->rules);
        t->rules = NULL;
        t->count = t->cap = 0;
    }
}
