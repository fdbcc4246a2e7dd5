/*
 * plugins/static/static_plugin.c - static files from the worker's event
 * loop: uWSGI's static-map family of options with nginx's behaviour
 * (validators, 304, single Range, precompressed siblings, an open-file
 * cache, sendfile).  Operators' reference: plugins/static/STATIC.md.
 *
 * Where we follow uWSGI (core/static.c) and where we differ, on purpose:
 *  - static-map strips the prefix, static-map2 keeps it, check-static is a
 *    static-map2 of "/"; several maps may match a path: the longest prefix
 *    first, then configuration order, and a file missing under one is
 *    looked for under the next (uWSGI's fallbacks).  Unlike uWSGI a prefix
 *    matches whole path segments only ("/static" does not match
 *    "/staticfoo").
 *  - A missing file, a directory without index file, an extension in
 *    static-skip-ext and a method other than GET/HEAD fall through to the
 *    app (WHARF_DECLINED), as in uWSGI.
 *  - A path with a ".." segment ('/' or '\\' separated) is answered 403
 *    without touching the disk (uWSGI resolves it and falls through when it
 *    leaves the root); a file whose real location (symlinks resolved) is
 *    outside its mapped root and outside every static-safe directory is
 *    answered 403 too and logged (uWSGI logs "security error" and falls
 *    through).  Never the file.
 *  - A directory asked for without its trailing slash is redirected (301)
 *    to the slash form when it has an index file, as nginx does, so that
 *    relative links in the index work; uWSGI serves the index in place.
 *  - static-expires* set one Expires header and a matching
 *    Cache-Control: max-age (uWSGI sets Expires only, once per matching
 *    list); the first matching rule wins, in the order filename,
 *    path-info, uri, type.  The filename is the real path of the file
 *    asked for (not of its .gz sibling).
 *  - static-gzip* choose a precompressed sibling (x.br, then x.gz unless
 *    the client prefers gzip) by the client's Accept-Encoding, qvalues
 *    honoured; the rules match the file's real path as in uWSGI.  Such a
 *    file is answered with Vary: Accept-Encoding whichever variant is sent.
 *  - Several ranges in one Range header are answered 200 with the whole
 *    file (allowed by RFC 9110; nginx does the same beyond max_ranges).
 *  - No charset parameter is added to Content-Type (neither nginx nor
 *    uWSGI do by default; guessing one can corrupt non-UTF-8 files).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wharf.h"
#include "static_cache.h"
#include "static_util.h"

#define DEFAULT_MIME_FILE "/etc/mime.types"
#define ROOT_RECHECK_MS 1000

struct st_map {
    const char *prefix;     /* normalized: no trailing '/', except "/" */
    size_t prefix_len;
    size_t strip;           /* bytes of the path removed (0 for map2) */
    char *root;             /* absolute, no trailing '/' ("" for "/") */
    size_t root_len;
    char *root_real;        /* canonical root, re-resolved when needed */
    size_t root_real_len;
    int64_t root_checked_ms;
    size_t order;
};

struct st_dir {
    char *path;
    size_t len;
};

enum exp_source { EXP_FILE, EXP_PATH, EXP_URI, EXP_TYPE };

struct st_expires {
    enum exp_source source;
    bool from_mtime;
    pcre2_code *re;
    char *type;
    int64_t seconds;
};

struct static_conf {
    /* options */
    struct wharf_list map, map2, check_static, index, skip_ext, safe, mime_files;
    struct wharf_list expires, expires_mtime, expires_uri, expires_uri_mtime, expires_path,
        expires_path_mtime, expires_type, expires_type_mtime;
    struct wharf_list gzip, gzip_dir, gzip_ext;
    bool gzip_all;
    int64_t cache_ttl_ms;
    long cache_size;

    /* built by setup() */
    struct st_map *maps;
    size_t nmaps;
    struct st_dir *safe_dirs;
    size_t nsafe;
    struct st_expires *exp;
    size_t nexp;
    pcre2_code **gzip_re;
    size_t ngzip_re;
    pcre2_match_data *md;
    struct st_mime *mime;
    int metric;

    /* per worker */
    struct wharf_worker *worker;
    struct st_cache *cache;
};

#define OPT(f) offsetof(struct static_conf, f)
#define LIST (WHARF_OPT_STRING | WHARF_OPT_LIST)

static const struct wharf_option static_options[] = {
    { "static-map", LIST, OPT(map), NULL,
      "serve files: /prefix=/dir (the prefix is removed: /prefix/x is /dir/x); longest prefix first", 0, 0 },
    { "static-map2", LIST, OPT(map2), NULL,
      "like static-map but the path is kept: /prefix=/dir serves /prefix/x from /dir/prefix/x", 0, 0 },
    { "check-static", LIST, OPT(check_static), NULL,
      "serve any path that exists under this directory (static-map2 = /=DIR)", 0, 0 },
    { "static-check", WHARF_OPT_ALIAS, 0, "check-static", "alias of check-static (uWSGI)", 0, 0 },
    { "static-index", LIST, OPT(index), NULL,
      "file names served for a directory, tried in order (e.g. index.html)", 0, 0 },
    { "static-skip-ext", LIST, OPT(skip_ext), NULL,
      "never serve files ending with this (e.g. .py); such requests go to the app", 0, 0 },
    { "static-safe", LIST, OPT(safe), NULL,
      "a directory symlinks in mapped directories may point into", 0, 0 },
    { "mime-file", LIST, OPT(mime_files), NULL,
      "mime.types file(s) giving Content-Type by extension (default " DEFAULT_MIME_FILE ", if present)", 0, 0 },
    { "static-expires", LIST, OPT(expires), NULL,
      "'REGEX SECONDS': Expires/Cache-Control for files whose real path matches", 0, 0 },
    { "static-expires-mtime", LIST, OPT(expires_mtime), NULL,
      "'REGEX SECONDS': like static-expires, counted from the file's mtime", 0, 0 },
    { "static-expires-uri", LIST, OPT(expires_uri), NULL,
      "'REGEX SECONDS': Expires/Cache-Control when the request URI matches", 0, 0 },
    { "static-expires-uri-mtime", LIST, OPT(expires_uri_mtime), NULL,
      "'REGEX SECONDS': like static-expires-uri, counted from the file's mtime", 0, 0 },
    { "static-expires-path-info", LIST, OPT(expires_path), NULL,
      "'REGEX SECONDS': Expires/Cache-Control when the decoded path matches", 0, 0 },
    { "static-expires-path-info-mtime", LIST, OPT(expires_path_mtime), NULL,
      "'REGEX SECONDS': like static-expires-path-info, counted from the file's mtime", 0, 0 },
    { "static-expires-type", LIST, OPT(expires_type), NULL,
      "'TYPE=SECONDS': Expires/Cache-Control for this Content-Type", 0, 0 },
    { "static-expires-type-mtime", LIST, OPT(expires_type_mtime), NULL,
      "'TYPE=SECONDS': like static-expires-type, counted from the file's mtime", 0, 0 },
    { "static-gzip", LIST, OPT(gzip), NULL,
      "regex of real file paths that may be answered from a precompressed x.br/x.gz sibling", 0, 0 },
    { "static-gzip-all", WHARF_OPT_BOOL, OPT(gzip_all), "false",
      "every static file may be answered from a precompressed x.br/x.gz sibling", 0, 0 },
    { "static-gzip-dir", LIST, OPT(gzip_dir), NULL,
      "directory whose files may be answered from precompressed siblings", 0, 0 },
    { "static-gzip-prefix", WHARF_OPT_ALIAS, 0, "static-gzip-dir", "alias of static-gzip-dir (uWSGI)", 0, 0 },
    { "static-gzip-ext", LIST, OPT(gzip_ext), NULL,
      "file ending (e.g. .css) that may be answered from precompressed siblings", 0, 0 },
    { "static-gzip-suffix", WHARF_OPT_ALIAS, 0, "static-gzip-ext", "alias of static-gzip-ext (uWSGI)", 0, 0 },
    { "static-cache-paths", WHARF_OPT_DURATION, OPT(cache_ttl_ms), "1",
      "how long an open cached file is trusted before one stat() checks it again (0 = no cache)", 0,
      3600000 },
    { "static-cache-size", WHARF_OPT_INT, OPT(cache_size), "256",
      "files each worker keeps open in its cache (capped at a quarter of the fd limit)", 0, 1000000 },
    { "static-cache-paths-name", WHARF_OPT_COMPAT, 0, NULL,
      "not needed: each worker keeps its own open-file cache", 0, 0 },
    { "static-offload-to-thread", WHARF_OPT_COMPAT, 0, NULL,
      "not needed: files are sent from the event loop without blocking", 0, 0 },
    WHARF_OPTIONS_END
};

/* ------------------------------------------------------------ helpers */

static bool under(const char *real, size_t rlen, const char *dir, size_t dlen)
{
    if (dlen == 1 && dir[0] == '/')
        return true;
    return rlen >= dlen && memcmp(real, dir, dlen) == 0 && (rlen == dlen || real[dlen] == '/');
}

/* Request text in a log line: printable ASCII as is, the rest \xHH, so a
 * decoded %0a cannot forge log lines. */
static const char *log_safe(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
    }
    if (o + 5 >= cap && o >= 3)
        memcpy(out + o - 3, "...", 3);
    out[o] = '\0';
    return out;
}

static bool regex_match(struct static_conf *c, pcre2_code *re, const char *s, size_t n)
{
    return pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, c->md, NULL) >= 0;
}

static int64_t now_ms(struct static_conf *c)
{
    return wharf_now_ms(c->worker);
}

static int add_header(struct wharf_request *r, const char *name, const char *value, size_t len)
{
    return wharf_response_header(r, name, strlen(name), value, len);
}

/* A small complete answer with an optional extra header. */
static int respond(struct wharf_request *r, int status, const char *hname, const char *hvalue,
                   size_t hlen, const char *body)
{
    if (wharf_response_start(r, status, NULL) < 0)
        return WHARF_ERROR;
    if (hname)
        add_header(r, hname, hvalue, hlen);
    size_t blen = strlen(body);
    char cl[24];
    int n = snprintf(cl, sizeof cl, "%zu", blen);
    if (blen)
        add_header(r, "Content-Type", "text/plain", 10);
    add_header(r, "Content-Length", cl, (size_t)n);
    if (blen && !r->head_only)
        wharf_response_write(r, body, blen);
    wharf_response_end(r);
    return WHARF_DONE;
}

static int forbidden(struct wharf_request *r)
{
    return respond(r, 403, NULL, NULL, 0, "Forbidden\n");
}

/* ------------------------------------------------------------ roots */

/* Is the file's real location under the map's root or a static-safe
 * directory?  The root's own canonical path is looked up again (at most
 * once a second) before saying no, so a root that is a symlink switched
 * by a deploy keeps working. */
static bool allowed(struct static_conf *c, struct st_map *m, const struct st_file *f)
{
    if (!f->real)
        return false;
    if (under(f->real, f->real_len, m->root_real, m->root_real_len))
        return true;
    for (size_t i = 0; i < c->nsafe; i++)
        if (under(f->real, f->real_len, c->safe_dirs[i].path, c->safe_dirs[i].len))
            return true;
    int64_t t = now_ms(c);
    if (t - m->root_checked_ms >= ROOT_RECHECK_MS) {
        m->root_checked_ms = t;
        char *real = realpath(m->root[0] ? m->root : "/", NULL);
        if (real && strcmp(real, m->root_real) != 0) {
            free(m->root_real);
            m->root_real = real;
            m->root_real_len = strlen(real);
            return under(f->real, f->real_len, m->root_real, m->root_real_len);
        }
        free(real);
    }
    return false;
}

static int refuse_escape(struct wharf_request *r, const struct st_map *m, const struct st_file *f)
{
    char p[256], real[256];
    wharf_log(WHARF_LOG_WARN, "static: refused %s: it resolves to %s, outside %s and every static-safe directory",
              log_safe(r->path, r->path_len, p, sizeof p), log_safe(f->real, f->real_len, real, sizeof real),
              m->root_real);
    return forbidden(r);
}

/* ------------------------------------------------------------ files */

static struct st_file *lookup(struct static_conf *c, const char *path, size_t len, bool cache_missing)
{
    return st_cache_get(c->cache, path, len, now_ms(c), cache_missing);
}

/* Strings every response for this file needs, made once per cache entry. */
static void prepare(struct static_conf *c, struct st_file *f)
{
    if (f->prepared)
        return;
    f->prepared = true;
    f->mime = st_mime_lookup(c->mime, f->path, f->path_len);
    if (!f->mime)
        f->mime = "application/octet-stream";
    f->mime_len = strlen(f->mime);
    /* nginx's format, so a cache warmed by nginx stays valid */
    f->etag_len = (size_t)snprintf(f->etag, sizeof f->etag, "\"%" PRIx64 "-%" PRIx64 "\"",
                                   (uint64_t)f->mtime, f->size);
    st_format_http_date(f->mtime, f->last_modified);
    f->length_len = (size_t)snprintf(f->length, sizeof f->length, "%" PRIu64, f->size);
}

static bool skipped(struct static_conf *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->skip_ext.count; i++) {
        const char *ext = c->skip_ext.items[i].value;
        size_t n = strlen(ext);
        if (n <= len && strncasecmp(name + len - n, ext, n) == 0)
            return true;
    }
    return false;
}

static bool gzip_eligible(struct static_conf *c, const struct st_file *f)
{
    if (c->gzip_all)
        return true;
    for (size_t i = 0; i < c->gzip_dir.count; i++) {
        const char *d = c->gzip_dir.items[i].value;
        size_t n = strlen(d);
        if (n <= f->real_len && memcmp(f->real, d, n) == 0)
            return true;
    }
    for (size_t i = 0; i < c->gzip_ext.count; i++) {
        const char *e = c->gzip_ext.items[i].value;
        size_t n = strlen(e);
        if (n <= f->real_len && memcmp(f->real + f->real_len - n, e, n) == 0)
            return true;
    }
    for (size_t i = 0; i < c->ngzip_re; i++)
        if (regex_match(c, c->gzip_re[i], f->real, f->real_len))
            return true;
    return false;
}

/* The request headers the static plugin reads, in one pass. */
struct req_hdrs {
    const char *inm, *ims, *range, *if_range, *ae;
    size_t inm_len, ims_len, range_len, if_range_len, ae_len;
    unsigned inm_count, range_count;
};

static bool hname(const struct wharf_header *h, const char *name, size_t n)
{
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

static void scan_headers(const struct wharf_request *r, struct req_hdrs *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < r->header_count; i++) {
        const struct wharf_header *h = &r->headers[i];
        switch (h->name_len) {
        case 5:
            if (hname(h, "range", 5) && !out->range_count++) {
                out->range = h->value;
                out->range_len = h->value_len;
            }
            break;
        case 8:
            if (hname(h, "if-range", 8) && !out->if_range) {
                out->if_range = h->value;
                out->if_range_len = h->value_len;
            }
            break;
        case 13:
            if (hname(h, "if-none-match", 13) && !out->inm_count++) {
                out->inm = h->value;
                out->inm_len = h->value_len;
            }
            break;
        case 15:
            if (hname(h, "accept-encoding", 15) && !out->ae) {
                out->ae = h->value;
                out->ae_len = h->value_len;
            }
            break;
        case 17:
            if (hname(h, "if-modified-since", 17) && !out->ims) {
                out->ims = h->value;
                out->ims_len = h->value_len;
            }
            break;
        default:
            break;
        }
    }
}

/* If-None-Match may come as several field lines: any of them matching
 * counts. */
static bool none_match_hit(const struct wharf_request *r, const struct req_hdrs *h,
                           const struct st_file *f)
{
    if (h->inm_count == 1)
        return st_etag_list_match_weak(h->inm, h->inm_len, f->etag, f->etag_len);
    for (size_t i = 0; i < r->header_count; i++) {
        const struct wharf_header *x = &r->headers[i];
        if (hname(x, "if-none-match", 13) &&
            st_etag_list_match_weak(x->value, x->value_len, f->etag, f->etag_len))
            return true;
    }
    return false;
}

/* If-Range: an entity-tag must match strongly, a date must be the file's
 * Last-Modified exactly; otherwise the Range is ignored (200 in full). */
static bool if_range_holds(const struct req_hdrs *h, const struct st_file *f)
{
    const char *v = h->if_range;
    size_t n = h->if_range_len;
    if ((n && v[0] == '"') || (n >= 2 && v[0] == 'W' && v[1] == '/'))
        return st_etag_match_strong(v, n, f->etag, f->etag_len);
    int64_t t;
    return st_parse_http_date(v, n, &t) && t == f->mtime;
}

/* Expires and Cache-Control from the first matching static-expires* rule. */
static void add_expires(struct static_conf *c, struct wharf_request *r, const struct st_file *f,
                        const struct st_file *body)
{
    for (size_t i = 0; i < c->nexp; i++) {
        const struct st_expires *e = &c->exp[i];
        bool hit = false;
        switch (e->source) {
        case EXP_FILE: hit = regex_match(c, e->re, f->real, f->real_len); break;
        case EXP_PATH: hit = regex_match(c, e->re, r->path, r->path_len); break;
        case EXP_URI: hit = regex_match(c, e->re, r->uri, r->uri_len); break;
        case EXP_TYPE: hit = strcmp(e->type, f->mime) == 0; break;
        }
        if (!hit)
            continue;
        int64_t now = (int64_t)time(NULL);
        int64_t at = (e->from_mtime ? body->mtime : now) + e->seconds;
        char date[ST_HTTP_DATE_LEN + 1], cc[40];
        st_format_http_date(at, date);
        add_header(r, "Expires", date, ST_HTTP_DATE_LEN);
        if (!wharf_response_header_get(r, "Cache-Control", NULL)) {
            int n = snprintf(cc, sizeof cc, "max-age=%" PRId64, at > now ? at - now : 0);
            add_header(r, "Cache-Control", cc, (size_t)n);
        }
        return;
    }
}

static void release_file(void *arg)
{
    st_file_unref(arg);
}

/* A precompressed sibling the client accepts, with a reference; or NULL. */
static struct st_file *pick_sibling(struct static_conf *c, struct st_map *m, struct st_file *f,
                                    const struct req_hdrs *h, const char **encoding)
{
    if (!h->ae)
        return NULL;
    int qbr, qgz;
    st_accept_encoding(h->ae, h->ae_len, &qbr, &qgz);
    const char *order[2];
    int n = 0;
    if (qbr > 0 && qbr >= qgz)
        order[n++] = "br";
    if (qgz > 0)
        order[n++] = "gz";
    if (qbr > 0 && qbr < qgz)
        order[n++] = "br";
    char path[PATH_MAX + 8];
    if (f->path_len + 4 > sizeof path)
        return NULL;
    memcpy(path, f->path, f->path_len);
    for (int i = 0; i < n; i++) {
        path[f->path_len] = '.';
        memcpy(path + f->path_len + 1, order[i], 3); /* with the NUL */
        struct st_file *s = lookup(c, path, f->path_len + 3, true);
        if (!s)
            continue;
        if (s->kind == ST_FILE && allowed(c, m, s)) {
            *encoding = order[i][0] == 'b' ? "br" : "gzip";
            return s;
        }
        st_file_unref(s);
    }
    return NULL;
}

static int send_file(struct static_conf *c, struct wharf_request *r, struct st_map *m,
                     struct st_file *f)
{
    if (skipped(c, f->path, f->path_len) || skipped(c, f->real, f->real_len))
        return WHARF_DECLINED;
    prepare(c, f);
    struct req_hdrs h;
    scan_headers(r, &h);

    bool vary = (c->gzip_all || c->ngzip_re || c->gzip_dir.count || c->gzip_ext.count) &&
                gzip_eligible(c, f);
    const char *encoding = NULL;
    struct st_file *sibling = vary ? pick_sibling(c, m, f, &h, &encoding) : NULL;
    struct st_file *body = sibling ? sibling : f;
    if (sibling)
        prepare(c, sibling);

    /* RFC 9110 13.2.2: If-None-Match, else If-Modified-Since */
    bool not_modified = false;
    if (h.inm_count) {
        not_modified = none_match_hit(r, &h, body);
    } else if (h.ims) {
        int64_t t;
        not_modified = st_parse_http_date(h.ims, h.ims_len, &t) && body->mtime <= t;
    }

    int status = 200;
    uint64_t first = 0, last = body->size ? body->size - 1 : 0, len = body->size;
    if (!not_modified && h.range_count == 1 && (!h.if_range || if_range_holds(&h, body))) {
        switch (st_parse_range(h.range, h.range_len, body->size, &first, &last)) {
        case ST_RANGE_OK:
            status = 206;
            len = last - first + 1;
            break;
        case ST_RANGE_UNSATISFIABLE: {
            char cr[48];
            int n = snprintf(cr, sizeof cr, "bytes */%" PRIu64, body->size);
            if (sibling)
                st_file_unref(sibling);
            return respond(r, 416, "Content-Range", cr, (size_t)n, "");
        }
        case ST_RANGE_NONE:
            break;
        }
    }

    if (wharf_response_start(r, not_modified ? 304 : status, NULL) < 0) {
        if (sibling)
            st_file_unref(sibling);
        return WHARF_ERROR;
    }
    add_header(r, "ETag", body->etag, body->etag_len);
    add_header(r, "Last-Modified", body->last_modified, ST_HTTP_DATE_LEN);
    if (vary)
        add_header(r, "Vary", "Accept-Encoding", 15);
    add_expires(c, r, f, body);
    if (c->metric >= 0)
        wharf_metric_add(r->worker, c->metric, 1);
    if (not_modified) {
        if (sibling)
            st_file_unref(sibling);
        wharf_response_end(r);
        return WHARF_DONE;
    }
    add_header(r, "Content-Type", f->mime, f->mime_len);
    if (encoding)
        add_header(r, "Content-Encoding", encoding, strlen(encoding));
    add_header(r, "Accept-Ranges", "bytes", 5);
    if (status == 206) {
        char cr[80], cl[24];
        int n = snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, body->size);
        add_header(r, "Content-Range", cr, (size_t)n);
        n = snprintf(cl, sizeof cl, "%" PRIu64, len);
        add_header(r, "Content-Length", cl, (size_t)n);
    } else {
        add_header(r, "Content-Length", body->length, body->length_len);
    }
    if (!r->head_only && len > 0) {
        st_file_ref(body); /* dropped by the transport when it is done */
        wharf_response_sendfile(r, body->fd, (off_t)first, (size_t)len, release_file, body);
    }
    if (sibling)
        st_file_unref(sibling);
    wharf_response_end(r);
    return WHARF_DONE;
}

/* 301 to the directory's slash form: the decoded path percent-encoded
 * again, then the query as it came. */
static int redirect_to_slash(struct wharf_request *r)
{
    static const char keep[] = "-._~!$&'()*+,;=:@/";
    size_t cap = r->path_len * 3 + r->query_len + 3;
    char *loc = wharf_request_alloc(r, cap);
    size_t n = 0;
    for (size_t i = 0; i < r->path_len; i++) {
        unsigned char ch = (unsigned char)r->path[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            (ch && strchr(keep, ch))) {
            loc[n++] = (char)ch;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            loc[n++] = '%';
            loc[n++] = hex[ch >> 4];
            loc[n++] = hex[ch & 15];
        }
    }
    loc[n++] = '/';
    if (r->query_len) {
        loc[n++] = '?';
        memcpy(loc + n, r->query, r->query_len);
        n += r->query_len;
    }
    return respond(r, 301, "Location", loc, n, "Moved Permanently\n");
}

/* What one map makes of the request: WHARF_DONE (answered),
 * WHARF_DECLINED (let the app have it) or 2 (nothing here, try the next
 * map). */
#define NEXT_MAP 2

static int serve_dir(struct static_conf *c, struct wharf_request *r, struct st_map *m,
                     const char *full, size_t n)
{
    char path[PATH_MAX + 1];
    for (size_t i = 0; i < c->index.count; i++) {
        const char *name = c->index.items[i].value;
        size_t nl = strlen(name);
        size_t sep = n && full[n - 1] == '/' ? 0 : 1;
        if (n + sep + nl >= sizeof path)
            continue;
        memcpy(path, full, n);
        if (sep)
            path[n] = '/';
        memcpy(path + n + sep, name, nl + 1);
        struct st_file *f = lookup(c, path, n + sep + nl, false);
        if (!f) {
            wharf_log(WHARF_LOG_WARN, "static: cannot open %s: %s", path, strerror(errno));
            return WHARF_ERROR;
        }
        int rc = NEXT_MAP;
        if (f->kind == ST_FILE) {
            if (!allowed(c, m, f))
                rc = refuse_escape(r, m, f);
            else if (r->path_len == 0 || r->path[r->path_len - 1] != '/')
                rc = redirect_to_slash(r);
            else
                rc = send_file(c, r, m, f);
        } else if (f->kind == ST_NOACCESS) {
            rc = forbidden(r);
        }
        st_file_unref(f);
        if (rc != NEXT_MAP)
            return rc;
    }
    return NEXT_MAP; /* no index: uWSGI lets the app answer */
}

static int serve_from(struct static_conf *c, struct wharf_request *r, struct st_map *m)
{
    const char *rel = r->path + m->strip;
    size_t rlen = r->path_len - m->strip;
    char full[PATH_MAX + 1];
    if (m->root_len + rlen >= sizeof full)
        return NEXT_MAP;
    memcpy(full, m->root, m->root_len);
    memcpy(full + m->root_len, rel, rlen);
    size_t n = m->root_len + rlen;
    full[n] = '\0';
    if (n == 0) { /* map2 of "/" onto "/" */
        full[0] = '/';
        full[1] = '\0';
        n = 1;
    }
    struct st_file *f = lookup(c, full, n, false);
    if (!f) {
        char p[256];
        wharf_log(WHARF_LOG_WARN, "static: cannot open %s: %s", log_safe(full, n, p, sizeof p),
                  strerror(errno));
        return WHARF_ERROR;
    }
    int rc = NEXT_MAP;
    switch (f->kind) {
    case ST_FILE:
        rc = allowed(c, m, f) ? send_file(c, r, m, f) : refuse_escape(r, m, f);
        break;
    case ST_DIR:
        rc = allowed(c, m, f) ? serve_dir(c, r, m, full, n) : refuse_escape(r, m, f);
        break;
    case ST_NOACCESS:
        rc = forbidden(r);
        break;
    case ST_MISSING:
    case ST_OTHER:
        break;
    }
    st_file_unref(f);
    return rc;
}

static bool map_matches(const struct st_map *m, const char *path, size_t len)
{
    if (m->prefix_len == 1)
        return len > 0 && path[0] == '/';
    return len >= m->prefix_len && memcmp(path, m->prefix, m->prefix_len) == 0 &&
           (len == m->prefix_len || path[m->prefix_len] == '/');
}

static int static_handle(struct wharf_request *r, void *confp)
{
    struct static_conf *c = confp;
    if (!c->nmaps || !c->cache)
        return WHARF_DECLINED;
    if (!(r->method_len == 3 && memcmp(r->method, "GET", 3) == 0) &&
        !(r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0))
        return WHARF_DECLINED; /* uWSGI: other methods are the app's */
    size_t i = 0;
    while (i < c->nmaps && !map_matches(&c->maps[i], r->path, r->path_len))
        i++;
    if (i == c->nmaps)
        return WHARF_DECLINED;
    if (st_path_escapes(r->path, r->path_len)) {
        char p[256];
        wharf_log(WHARF_LOG_INFO, "static: refused %s: '..' in the path",
                  log_safe(r->path, r->path_len, p, sizeof p));
        return forbidden(r);
    }
    for (; i < c->nmaps; i++) {
        if (!map_matches(&c->maps[i], r->path, r->path_len))
            continue;
        int rc = serve_from(c, r, &c->maps[i]);
        if (rc != NEXT_MAP)
            return rc;
    }
    return WHARF_DECLINED;
}

/* ------------------------------------------------------------ setup */

static char *absolute(const char *dir, size_t len)
{
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (dir[0] == '/') {
        char *s = strndup(dir, len);
        if (s && len == 1)
            s[0] = '\0'; /* "/" is the empty prefix of every absolute path */
        return s;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    char *s = NULL;
    if (asprintf(&s, "%s%s%.*s", strcmp(cwd, "/") ? cwd : "", "/", (int)len, dir) < 0)
        return NULL;
    return s;
}

static int add_map(struct static_conf *c, const struct wharf_list_item *it, const char *option,
                   const char *value, bool keep_prefix)
{
    const char *eq = strchr(value, '=');
    if (!eq || eq == value || !eq[1]) {
        wharf_config_error(it->origin, option, "expected /prefix=/directory, got '%s'", value);
        return -1;
    }
    if (value[0] != '/') {
        wharf_config_error(it->origin, option, "the prefix must start with '/': '%s'", value);
        return -1;
    }
    size_t plen = (size_t)(eq - value);
    while (plen > 1 && value[plen - 1] == '/')
        plen--;
    struct st_map *m = &c->maps[c->nmaps];
    memset(m, 0, sizeof *m);
    m->prefix = strndup(value, plen);
    m->prefix_len = plen;
    m->strip = keep_prefix || plen == 1 ? 0 : plen;
    m->root = absolute(eq + 1, strlen(eq + 1));
    if (!m->prefix || !m->root) {
        wharf_config_error(it->origin, option, "out of memory");
        return -1;
    }
    m->root_len = strlen(m->root);
    struct stat st;
    m->root_real = realpath(m->root[0] ? m->root : "/", NULL);
    if (!m->root_real || stat(m->root_real, &st) < 0) {
        wharf_config_error(it->origin, option, "'%s': cannot open '%s': %s", it->value, eq + 1,
                           strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        wharf_config_error(it->origin, option, "'%s': '%s' is neither a directory nor a file", it->value,
                           eq + 1);
        return -1;
    }
    m->root_real_len = strlen(m->root_real);
    m->order = c->nmaps++;
    return 0;
}

static int by_prefix(const void *a, const void *b)
{
    const struct st_map *x = a, *y = b;
    if (x->prefix_len != y->prefix_len)
        return x->prefix_len > y->prefix_len ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static pcre2_code *compile(const struct wharf_list_item *it, const char *option, const char *re,
                           size_t len)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, len, 0, &err, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        wharf_config_error(it->origin, option, "invalid regular expression '%.*s' at offset %zu: %s",
                           (int)len, re, (size_t)off, (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* an interpreter fallback is fine */
    return code;
}

static int parse_seconds(const char *s, int64_t *out)
{
    if (!*s)
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10 / 2)
            return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 0;
}

static int add_expires_list(struct static_conf *c, const struct wharf_list *l, const char *option,
                            enum exp_source source, bool from_mtime)
{
    for (size_t i = 0; i < l->count; i++) {
        const struct wharf_list_item *it = &l->items[i];
        const char *v = it->value;
        size_t n = strlen(v);
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        /* the last space (or '=' for types) separates the seconds */
        size_t sep = n;
        while (sep && v[sep - 1] != (source == EXP_TYPE ? '=' : ' ') && v[sep - 1] != '\t')
            sep--;
        struct st_expires *e = &c->exp[c->nexp];
        memset(e, 0, sizeof *e);
        char secs[32];
        size_t key_end = sep ? sep - 1 : 0;
        while (key_end && (v[key_end - 1] == ' ' || v[key_end - 1] == '\t'))
            key_end--;
        if (!sep || key_end == 0 || n - sep >= sizeof secs) {
            wharf_config_error(it->origin, option, "expected '%s', got '%s'",
                               source == EXP_TYPE ? "TYPE=SECONDS" : "REGEX SECONDS", v);
            return -1;
        }
        memcpy(secs, v + sep, n - sep);
        secs[n - sep] = '\0';
        if (parse_seconds(secs, &e->seconds) < 0) {
            wharf_config_error(it->origin, option, "'%s' is not a number of seconds (in '%s')", secs, v);
            return -1;
        }
        e->source = source;
        e->from_mtime = from_mtime;
        if (source == EXP_TYPE) {
            e->type = strndup(v, key_end);
        } else if (!(e->re = compile(it, option, v, key_end))) {
            return -1;
        }
        c->nexp++;
    }
    return 0;
}

static int setup_mime(struct wharf_server *s, struct static_conf *c)
{
    (void)s;
    c->mime = st_mime_new();
    if (!c->mime)
        return -1;
    if (c->mime_files.count == 0) {
        if (st_mime_load_file(c->mime, DEFAULT_MIME_FILE) < 0)
            wharf_log(WHARF_LOG_INFO, "static: %s: %s; using the built-in MIME types", DEFAULT_MIME_FILE,
                      strerror(errno));
    }
    for (size_t i = 0; i < c->mime_files.count; i++) {
        const struct wharf_list_item *it = &c->mime_files.items[i];
        if (st_mime_load_file(c->mime, it->value) < 0) {
            wharf_config_error(it->origin, "mime-file", "cannot read '%s': %s", it->value, strerror(errno));
            return -1;
        }
    }
    st_mime_add_builtin(c->mime);
    return 0;
}

static int static_setup(struct wharf_server *s, void *confp)
{
    struct static_conf *c = confp;
    c->metric = -1;
    size_t total = c->map.count + c->map2.count + c->check_static.count;
    c->maps = calloc(total ? total : 1, sizeof *c->maps);
    if (!c->maps)
        return WHARF_ERROR;
    for (size_t i = 0; i < c->map.count; i++)
        if (add_map(c, &c->map.items[i], "static-map", c->map.items[i].value, false) < 0)
            return WHARF_ERROR;
    for (size_t i = 0; i < c->map2.count; i++)
        if (add_map(c, &c->map2.items[i], "static-map2", c->map2.items[i].value, true) < 0)
            return WHARF_ERROR;
    for (size_t i = 0; i < c->check_static.count; i++) {
        const struct wharf_list_item *it = &c->check_static.items[i];
        char *v = NULL;
        if (asprintf(&v, "/=%s", it->value) < 0)
            return WHARF_ERROR;
        int rc = add_map(c, it, "check-static", v, true);
        free(v);
        if (rc < 0)
            return WHARF_ERROR;
    }
    qsort(c->maps, c->nmaps, sizeof *c->maps, by_prefix);

    for (size_t i = 0; i < c->index.count; i++) {
        const struct wharf_list_item *it = &c->index.items[i];
        if (!it->value[0] || strchr(it->value, '/') || strcmp(it->value, ".") == 0 ||
            strcmp(it->value, "..") == 0) {
            wharf_config_error(it->origin, "static-index", "expected a file name (like index.html), got '%s'",
                               it->value);
            return WHARF_ERROR;
        }
    }
    for (size_t i = 0; i < c->skip_ext.count; i++)
        if (!c->skip_ext.items[i].value[0]) {
            wharf_config_error(c->skip_ext.items[i].origin, "static-skip-ext", "empty extension");
            return WHARF_ERROR;
        }

    c->safe_dirs = calloc(c->safe.count ? c->safe.count : 1, sizeof *c->safe_dirs);
    if (!c->safe_dirs)
        return WHARF_ERROR;
    for (size_t i = 0; i < c->safe.count; i++) {
        const struct wharf_list_item *it = &c->safe.items[i];
        char *real = realpath(it->value, NULL);
        if (!real) {
            wharf_config_error(it->origin, "static-safe", "cannot use '%s': %s", it->value, strerror(errno));
            return WHARF_ERROR;
        }
        c->safe_dirs[c->nsafe].path = real;
        c->safe_dirs[c->nsafe++].len = strlen(real);
    }

    size_t nexp = c->expires.count + c->expires_mtime.count + c->expires_path.count +
                  c->expires_path_mtime.count + c->expires_uri.count + c->expires_uri_mtime.count +
                  c->expires_type.count + c->expires_type_mtime.count;
    c->exp = calloc(nexp ? nexp : 1, sizeof *c->exp);
    if (!c->exp)
        return WHARF_ERROR;
    if (add_expires_list(c, &c->expires, "static-expires", EXP_FILE, false) < 0 ||
        add_expires_list(c, &c->expires_mtime, "static-expires-mtime", EXP_FILE, true) < 0 ||
        add_expires_list(c, &c->expires_path, "static-expires-path-info", EXP_PATH, false) < 0 ||
        add_expires_list(c, &c->expires_path_mtime, "static-expires-path-info-mtime", EXP_PATH, true) < 0 ||
        add_expires_list(c, &c->expires_uri, "static-expires-uri", EXP_URI, false) < 0 ||
        add_expires_list(c, &c->expires_uri_mtime, "static-expires-uri-mtime", EXP_URI, true) < 0 ||
        add_expires_list(c, &c->expires_type, "static-expires-type", EXP_TYPE, false) < 0 ||
        add_expires_list(c, &c->expires_type_mtime, "static-expires-type-mtime", EXP_TYPE, true) < 0)
        return WHARF_ERROR;

    c->gzip_re = calloc(c->gzip.count ? c->gzip.count : 1, sizeof *c->gzip_re);
    if (!c->gzip_re)
        return WHARF_ERROR;
    for (size_t i = 0; i < c->gzip.count; i++) {
        const struct wharf_list_item *it = &c->gzip.items[i];
        if (!(c->gzip_re[c->ngzip_re] = compile(it, "static-gzip", it->value, strlen(it->value))))
            return WHARF_ERROR;
        c->ngzip_re++;
    }
    c->md = pcre2_match_data_create(1, NULL);
    if (!c->md || setup_mime(s, c) < 0)
        return WHARF_ERROR;
    c->metric = wharf_metric_register(s, "static_hits", "static files served (200, 206 and 304 answers)");
    return WHARF_OK;
}

static int static_worker_start(struct wharf_worker *w, void *confp)
{
    struct static_conf *c = confp;
    c->worker = w;
    size_t max = (size_t)c->cache_size;
    struct rlimit rl;
    /* cached files hold descriptors: leave most of them to connections */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && max > rl.rlim_cur / 4)
        max = (size_t)(rl.rlim_cur / 4);
    c->cache = st_cache_new(max, c->cache_ttl_ms);
    if (!c->cache) {
        wharf_log(WHARF_LOG_ERROR, "static: out of memory for the file cache");
        return WHARF_ERROR;
    }
    return WHARF_OK;
}

static void static_worker_stop(struct wharf_worker *w, void *confp)
{
    (void)w;
    struct static_conf *c = confp;
    st_cache_free(c->cache); /* files still being sent close on release */
    c->cache = NULL;
}

static void static_teardown(struct wharf_server *s, void *confp)
{
    (void)s;
    struct static_conf *c = confp;
    for (size_t i = 0; i < c->nmaps; i++) {
        free((char *)c->maps[i].prefix);
        free(c->maps[i].root);
        free(c->maps[i].root_real);
    }
    free(c->maps);
    for (size_t i = 0; i < c->nsafe; i++)
        free(c->safe_dirs[i].path);
    free(c->safe_dirs);
    for (size_t i = 0; i < c->nexp; i++) {
        pcre2_code_free(c->exp[i].re);
        free(c->exp[i].type);
    }
    free(c->exp);
    for (size_t i = 0; i < c->ngzip_re; i++)
        pcre2_code_free(c->gzip_re[i]);
    free(c->gzip_re);
    pcre2_match_data_free(c->md);
    st_mime_free(c->mime);
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "static",
    .version = "1.0",
    .options = static_options,
    .config_size = sizeof(struct static_conf),
    .setup = static_setup,
    .worker_start = static_worker_start,
    .handle = static_handle,
    .phases = WHARF_PHASE_BIT(WHARF_PHASE_CONTENT),
    .worker_stop = static_worker_stop,
    .teardown = static_teardown,
};
