/*
 * plugins/static/static_util.c - request-path safety, Range, HTTP dates,
 * entity tags, Accept-Encoding and MIME types for the static plugin.
 * Pure functions over byte ranges; nothing here touches the filesystem
 * except st_mime_load_file().
 */
#include "static_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != b[i])
            return false;
    return true;
}

static const char *skip_ows(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* ------------------------------------------------------------------ path */

bool st_path_escapes(const char *p, size_t n)
{
    if (memchr(p, '\0', n))
        return true;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && p[j] != '/' && p[j] != '\\')
            j++;
        if (j - i == 2 && p[i] == '.' && p[i + 1] == '.')
            return true;
        i = j + 1;
    }
    return false;
}

/* ------------------------------------------------------------------ Range */

/* Digits, saturating at UINT64_MAX (a first-byte-pos that large is simply
 * unsatisfiable, a last-byte-pos is clamped to the size anyway). */
static const char *parse_u64(const char *p, const char *e, uint64_t *out)
{
    uint64_t v = 0;
    while (p < e && is_digit(*p)) {
        unsigned d = (unsigned)(*p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        p++;
    }
    *out = v;
    return p;
}

enum st_range st_parse_range(const char *value, size_t len, uint64_t size, uint64_t *first,
                             uint64_t *last)
{
    const char *p = value, *e = value + len;
    /* range-unit is case-insensitive; no whitespace around '=' */
    if (len < 6 || !ieq(p, 5, "bytes") || p[5] != '=')
        return ST_RANGE_NONE;
    p += 6;
    int count = 0;
    bool suffix = false;
    uint64_t a = 0, b = 0;
    for (;;) {
        p = skip_ows(p, e);
        if (p < e && *p == ',') { /* empty list elements are allowed */
            p++;
            continue;
        }
        if (p == e)
            break;
        if (++count > 1)
            return ST_RANGE_NONE; /* several ranges: we answer 200 in full */
        bool has_a = p < e && is_digit(*p);
        if (has_a)
            p = parse_u64(p, e, &a);
        if (p == e || *p != '-')
            return ST_RANGE_NONE;
        p++;
        bool has_b = p < e && is_digit(*p);
        if (has_b)
            p = parse_u64(p, e, &b);
        if (!has_a && !has_b)
            return ST_RANGE_NONE;
        if (has_a && has_b && b < a)
            return ST_RANGE_NONE; /* invalid: the whole header is ignored */
        suffix = !has_a;
        if (has_a && !has_b)
            b = UINT64_MAX;
        p = skip_ows(p, e);
        if (p < e && *p != ',')
            return ST_RANGE_NONE;
    }
    if (count == 0)
        return ST_RANGE_NONE;
    if (suffix) {
        if (b == 0 || size == 0)
            return ST_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return ST_RANGE_OK;
    }
    if (a >= size)
        return ST_RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return ST_RANGE_OK;
}

/* ------------------------------------------------------------------ dates */

static const char wdays[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int month_of(const char *p)
{
    for (int i = 0; i < 12; i++)
        if (p[0] == months[i][0] && p[1] == months[i][1] && p[2] == months[i][2])
            return i + 1;
    return 0;
}

static bool num(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* "08:49:37" */
static bool hms(const char *p, int *h, int *m, int *s)
{
    return num(p, 2, h) && p[2] == ':' && num(p + 3, 2, m) && p[5] == ':' && num(p + 6, 2, s) &&
           *h < 24 && *m < 60 && *s <= 60;
}

static bool finish_date(int y, int mon, int d, int h, int mi, int s, int64_t *out)
{
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (mon < 1 || d < 1 || d > mdays[mon - 1])
        return false;
    *out = days_from_civil(y, (unsigned)mon, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
    return true;
}

bool st_parse_http_date(const char *s, size_t len, int64_t *out)
{
    int y, mon, d, h, mi, sec;
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (len == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' && s[11] == ' ' && s[16] == ' ' &&
        memcmp(s + 25, " GMT", 4) == 0) {
        if (!num(s + 5, 2, &d) || !(mon = month_of(s + 8)) || !num(s + 12, 4, &y) ||
            !hms(s + 17, &h, &mi, &sec))
            return false;
        return finish_date(y, mon, d, h, mi, sec, out);
    }
    /* asctime: "Sun Nov  6 08:49:37 1994" */
    if (len == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ') {
        if (!(mon = month_of(s + 4)))
            return false;
        if (s[8] == ' ') {
            if (!num(s + 9, 1, &d))
                return false;
        } else if (!num(s + 8, 2, &d)) {
            return false;
        }
        if (!hms(s + 11, &h, &mi, &sec) || !num(s + 20, 4, &y))
            return false;
        return finish_date(y, mon, d, h, mi, sec, out);
    }
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    const char *comma = memchr(s, ',', len < 11 ? len : 11);
    if (comma) {
        size_t rest = len - (size_t)(comma - s);
        const char *p = comma;
        if (rest != 24 || p[1] != ' ' || p[4] != '-' || p[8] != '-' || p[11] != ' ' ||
            p[20] != ' ' || memcmp(p + 21, "GMT", 3) != 0)
            return false;
        if (!num(p + 2, 2, &d) || !(mon = month_of(p + 5)) || !num(p + 9, 2, &y) ||
            !hms(p + 12, &h, &mi, &sec))
            return false;
        /* two-digit years: 70..99 are 19xx, the rest 20xx */
        y += y >= 70 ? 1900 : 2000;
        return finish_date(y, mon, d, h, mi, sec, out);
    }
    return false;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void st_format_http_date(int64_t t, char out[ST_HTTP_DATE_LEN + 1])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", ST_HTTP_DATE_LEN + 1);
        return;
    }
    memcpy(out, wdays[tm.tm_wday], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, tm.tm_mday);
    out[7] = ' ';
    memcpy(out + 8, months[tm.tm_mon], 3);
    out[11] = ' ';
    int y = tm.tm_year + 1900;
    put2(out + 12, y / 100);
    put2(out + 14, y % 100);
    out[16] = ' ';
    put2(out + 17, tm.tm_hour);
    out[19] = ':';
    put2(out + 20, tm.tm_min);
    out[22] = ':';
    put2(out + 23, tm.tm_sec);
    memcpy(out + 25, " GMT", 5);
}

/* ------------------------------------------------------------------ ETags */

bool st_etag_list_match_weak(const char *list, size_t len, const char *etag, size_t etag_len)
{
    const char *p = list, *e = list + len;
    /* our tag without a W/ prefix, quotes included */
    if (etag_len >= 2 && etag[0] == 'W' && etag[1] == '/') {
        etag += 2;
        etag_len -= 2;
    }
    for (;;) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == e)
            return false;
        if (*p == '*')
            return true;
        if (e - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if (p < e && *p == '"') {
            const char *q = memchr(p + 1, '"', (size_t)(e - p - 1));
            if (!q)
                return false;
            if ((size_t)(q + 1 - p) == etag_len && memcmp(p, etag, etag_len) == 0)
                return true;
            p = q + 1;
            continue;
        }
        /* not an entity-tag: skip this element */
        while (p < e && *p != ',')
            p++;
    }
}

bool st_etag_match_strong(const char *value, size_t len, const char *etag, size_t etag_len)
{
    const char *p = skip_ows(value, value + len), *e = value + len;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (etag_len < 2 || etag[0] != '"')
        return false; /* a weak validator never matches strongly */
    return (size_t)(e - p) == etag_len && memcmp(p, etag, etag_len) == 0;
}

/* ------------------------------------------------------------------ Accept-Encoding */

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ); -1 if bad */
static int parse_q(const char *p, const char *e)
{
    if (p == e || (*p != '0' && *p != '1'))
        return -1;
    int v = (*p - '0') * 1000;
    p++;
    if (p < e && *p == '.') {
        p++;
        int scale = 100;
        for (int i = 0; i < 3 && p < e && is_digit(*p); i++, p++, scale /= 10)
            v += (*p - '0') * scale;
    }
    if (p != e || v > 1000)
        return -1;
    return v;
}

void st_accept_encoding(const char *value, size_t len, int *q_br, int *q_gzip)
{
    int br = -1, gz = -1, star = -1;
    const char *p = value, *e = value + len;
    while (p < e) {
        const char *ee = memchr(p, ',', (size_t)(e - p));
        if (!ee)
            ee = e;
        const char *t = skip_ows(p, ee);
        const char *te = t;
        while (te < ee && *te != ';' && *te != ' ' && *te != '\t')
            te++;
        int q = 1000;
        const char *pp = te;
        while (pp < ee) {
            const char *semi = memchr(pp, ';', (size_t)(ee - pp));
            if (!semi)
                break;
            const char *ps = skip_ows(semi + 1, ee);
            const char *pe = ps;
            while (pe < ee && *pe != ';')
                pe++;
            const char *ve = pe;
            while (ve > ps && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ve - ps >= 2 && lower(ps[0]) == 'q' && ps[1] == '=') {
                q = parse_q(ps + 2, ve);
                if (q < 0)
                    q = 0; /* a malformed weight does not enable anything */
            }
            pp = pe;
        }
        size_t tl = (size_t)(te - t);
        if (ieq(t, tl, "br"))
            br = q;
        else if (ieq(t, tl, "gzip") || ieq(t, tl, "x-gzip"))
            gz = q > gz ? q : gz;
        else if (tl == 1 && *t == '*')
            star = q;
        p = ee + 1;
    }
    *q_br = br >= 0 ? br : (star >= 0 ? star : 0);
    *q_gzip = gz >= 0 ? gz : (star >= 0 ? star : 0);
}

/* ------------------------------------------------------------------ MIME */

#define MIME_BUCKETS 4096 /* power of two; /etc/mime.types has ~1500 */
#define MIME_EXT_MAX 32

struct mime_entry {
    struct mime_entry *next;
    char *type;
    char ext[];
};

struct st_mime {
    struct mime_entry *b[MIME_BUCKETS];
};

static uint32_t ext_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)lower(s[i])) * 16777619u;
    return h;
}

struct st_mime *st_mime_new(void)
{
    return calloc(1, sizeof(struct st_mime));
}

void st_mime_free(struct st_mime *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < MIME_BUCKETS; i++)
        for (struct mime_entry *e = m->b[i], *n; e; e = n) {
            n = e->next;
            free(e->type);
            free(e);
        }
    free(m);
}

static struct mime_entry *find(const struct st_mime *m, const char *ext, size_t n, uint32_t h)
{
    for (struct mime_entry *e = m->b[h & (MIME_BUCKETS - 1)]; e; e = e->next)
        if (ieq(ext, n, e->ext))
            return e;
    return NULL;
}

static int add(struct st_mime *m, const char *ext, size_t n, const char *type, size_t tlen,
               bool replace)
{
    if (n == 0 || n > MIME_EXT_MAX || tlen == 0)
        return 0;
    uint32_t h = ext_hash(ext, n);
    struct mime_entry *e = find(m, ext, n, h);
    if (e && !replace)
        return 0;
    char *t = malloc(tlen + 1);
    if (!t)
        return -1;
    memcpy(t, type, tlen);
    t[tlen] = '\0';
    if (e) {
        free(e->type);
        e->type = t;
        return 0;
    }
    e = malloc(sizeof *e + n + 1);
    if (!e) {
        free(t);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        e->ext[i] = lower(ext[i]);
    e->ext[n] = '\0';
    e->type = t;
    e->next = m->b[h & (MIME_BUCKETS - 1)];
    m->b[h & (MIME_BUCKETS - 1)] = e;
    return 0;
}

int st_mime_add(struct st_mime *m, const char *ext, size_t ext_len, const char *type,
                size_t type_len)
{
    return add(m, ext, ext_len, type, type_len, true);
}

long st_mime_load_file(struct st_mime *m, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[4096];
    long count = 0;
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL;
        char *type = strtok_r(line, " \t\r\n", &save);
        if (!type || !strchr(type, '/'))
            continue;
        for (char *ext = strtok_r(NULL, " \t\r\n", &save); ext; ext = strtok_r(NULL, " \t\r\n", &save)) {
            if (add(m, ext, strlen(ext), type, strlen(type), true) < 0) {
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            count++;
        }
    }
    int err = ferror(f) ? EIO : 0;
    fclose(f);
    if (err) {
        errno = err;
        return -1;
    }
    return count;
}

/* The types a web app's static directory usually holds, for systems
 * without /etc/mime.types (or with an old one). */
static const char *const builtin[][2] = {
    { "html", "text/html" },          { "htm", "text/html" },
    { "css", "text/css" },            { "js", "text/javascript" },
    { "mjs", "text/javascript" },     { "json", "application/json" },
    { "map", "application/json" },    { "xml", "application/xml" },
    { "txt", "text/plain" },          { "csv", "text/csv" },
    { "md", "text/markdown" },        { "svg", "image/svg+xml" },
    { "png", "image/png" },           { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },         { "gif", "image/gif" },
    { "webp", "image/webp" },         { "avif", "image/avif" },
    { "ico", "image/x-icon" },        { "bmp", "image/bmp" },
    { "woff", "font/woff" },          { "woff2", "font/woff2" },
    { "ttf", "font/ttf" },            { "otf", "font/otf" },
    { "eot", "application/vnd.ms-fontobject" },
    { "wasm", "application/wasm" },   { "pdf", "application/pdf" },
    { "zip", "application/zip" },     { "gz", "application/gzip" },
    { "tar", "application/x-tar" },   { "mp4", "video/mp4" },
    { "webm", "video/webm" },         { "mp3", "audio/mpeg" },
    { "ogg", "audio/ogg" },           { "wav", "audio/wav" },
    { "webmanifest", "application/manifest+json" },
    { "xhtml", "application/xhtml+xml" },
    { "rss", "application/rss+xml" }, { "atom", "application/atom+xml" },
};

void st_mime_add_builtin(struct st_mime *m)
{
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        add(m, builtin[i][0], strlen(builtin[i][0]), builtin[i][1], strlen(builtin[i][1]), false);
}

const char *st_mime_lookup(const struct st_mime *m, const char *name, size_t len)
{
    if (!m)
        return NULL;
    size_t i = len;
    while (i > 0 && name[i - 1] != '.' && name[i - 1] != '/')
        i--;
    if (i == 0 || name[i - 1] != '.' || i == len)
        return NULL;
    /* a dotfile's name (".bashrc") is not an extension */
    if (i == 1 || name[i - 2] == '/')
        return NULL;
    size_t n = len - i;
    if (n > MIME_EXT_MAX)
        return NULL;
    struct mime_entry *e = find(m, name + i, n, ext_hash(name + i, n));
    return e ? e->type : NULL;
}
