/*
 * ini/expand.c - $(ENV), @(file), %(placeholder) and the magic %x
 * variables of uWSGI config values.
 *
 * uWSGI substitutes the magic variables into the whole file text as it
 * reads it, then runs three passes over every value once all sources are
 * read: $( ), then @( ), then %( ) (core/uwsgi.c, uwsgi_apply_config_pass),
 * each pass rescanning what the previous ones produced.  We expand each
 * value in one left-to-right scan instead, at the same moment (after
 * everything is read, in wharf_cfg_finish()), with the same results for
 * every ordinary config and these deliberate differences:
 *
 *  - the argument of $( ), @( ) and %( ) is expanded first, so
 *    @(%d/secret) and $(%(name)) work in any order;
 *  - what $( ) and @( ) produce is not expanded again: a password read by
 *    @(file) or taken from the environment that contains "%(" or "$(" is
 *    used as it is;
 *  - %% is a literal % everywhere (uWSGI has no escape on the command
 *    line), and its result is not rescanned (in uWSGI "%%(x)" becomes
 *    "%(x)" and then a placeholder);
 *  - a placeholder's value is itself expanded, in its own file's context,
 *    with cycles reported instead of looping forever;
 *  - an unknown magic letter (%q) is left as it is; uWSGI replaces it with
 *    nothing, which quietly eats "%2F"-style text.
 *
 * Kept as uWSGI does: an unknown %(name) and an unset $(NAME) are left
 * verbatim (log-format's %(uri), %(status)... rely on the first), the
 * magic variables only apply to lines from config files, and a
 * placeholder is the first value of a key anywhere in the list.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* see config.c */
#endif

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_internal.h"

struct xp {
    struct wharf_cfg *cfg;
    bool final;     /* wharf_cfg_finish(): values are cached in the items */
    unsigned depth; /* nesting of constructs and placeholders */
    size_t stack[WHARF_CFG_MAX_NESTING + 1]; /* items being expanded */
    size_t nstack;
};

/* The value being expanded and where it came from. */
struct xsrc {
    const char *s;
    size_t len;
    size_t *match; /* match[i]: index of the ')' closing the '(' at i */
    const struct cfg_file *file;
    const char *section;
    const char *origin;
};

static int expand_value(struct xp *, const char *raw, const struct cfg_file *, const char *section,
                        const char *origin, struct cfg_buf *out);

static int emit(struct xp *xp, const struct xsrc *src, struct cfg_buf *out, const char *p, size_t n)
{
    if (out->len + n > WHARF_CFG_MAX_VALUE)
        return wharf_cfg_fail(xp->cfg, "%s: the value is longer than %d bytes once $( ), @( ) and %%( ) are expanded",
                              src->origin, WHARF_CFG_MAX_VALUE);
    if (wharf_cfg_buf_add(out, p, n) < 0)
        return wharf_cfg_oom(xp->cfg);
    return 0;
}

static int emit_str(struct xp *xp, const struct xsrc *src, struct cfg_buf *out, const char *p)
{
    return emit(xp, src, out, p, strlen(p));
}

/* Matching parentheses of the whole value in one pass, so that an
 * unbalanced "$($($(..." costs linear time, not quadratic. */
static int match_parens(const char *s, size_t len, size_t **out)
{
    *out = NULL;
    if (!memchr(s, '(', len))
        return 0;
    size_t *m = malloc(len * sizeof *m), *stack = malloc(len * sizeof *stack), sp = 0;
    if (!m || !stack) {
        free(m);
        free(stack);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        m[i] = WHARF_CFG_NONE;
        if (s[i] == '(')
            stack[sp++] = i;
        else if (s[i] == ')' && sp)
            m[stack[--sp]] = i;
    }
    free(stack);
    *out = m;
    return 0;
}

/* ------------------------------------------------------------------ */
/* host magic variables                                                */
/* ------------------------------------------------------------------ */

void wharf_cfg_free_host(struct wharf_cfg_priv *pv)
{
    free(pv->hostname);
    free(pv->user);
    free(pv->group);
    free(pv->cwd);
    free(pv->binary);
}

const char *wharf_cfg_hostname(struct wharf_cfg *cfg)
{
    struct wharf_cfg_priv *pv = cfg->priv;
    if (!pv->hostname) {
        long max = sysconf(_SC_HOST_NAME_MAX);
        size_t n = (max > 0 ? (size_t)max : 255) + 1;
        pv->hostname = calloc(1, n + 1);
        if (pv->hostname && gethostname(pv->hostname, n) < 0)
            pv->hostname[0] = '\0';
    }
    return pv->hostname;
}

static char *id_name(bool user, unsigned id)
{
    long max = sysconf(user ? _SC_GETPW_R_SIZE_MAX : _SC_GETGR_R_SIZE_MAX);
    size_t n = max > 0 ? (size_t)max : 4096;
    char *out = NULL;

    for (int tries = 0; tries < 8 && !out; tries++, n *= 2) {
        char *buf = malloc(n);
        int r;
        if (!buf)
            return NULL;
        if (user) {
            struct passwd pw, *res = NULL;
            r = getpwuid_r((uid_t)id, &pw, buf, n, &res);
            if (r == 0 && res)
                out = strdup(res->pw_name);
        } else {
            struct group gr, *res = NULL;
            r = getgrgid_r((gid_t)id, &gr, buf, n, &res);
            if (r == 0 && res)
                out = strdup(res->gr_name);
        }
        free(buf);
        if (r != ERANGE)
            break;
    }
    if (!out && asprintf(&out, "%u", id) < 0) /* uWSGI: the number without a name */
        out = NULL;
    return out;
}

static const char *binary_path(struct wharf_cfg_priv *pv)
{
    for (size_t n = 256; !pv->binary && n <= 65536; n *= 2) {
        char *buf = malloc(n);
        if (!buf)
            return NULL;
        ssize_t r = readlink("/proc/self/exe", buf, n);
        if (r < 0) {
            free(buf);
            pv->binary = strdup("");
        } else if ((size_t)r < n) {
            buf[r] = '\0';
            pv->binary = buf;
        } else {
            free(buf);
        }
    }
    return pv->binary ? pv->binary : "";
}

/* The n-th (0-based) component of an absolute directory, as %0..%9. */
static void component(const char *dir, int n, const char **p, size_t *len)
{
    const char *s = dir;
    *p = "";
    *len = 0;
    for (int k = 0; *s; k++) {
        s += strspn(s, "/");
        size_t l = strcspn(s, "/");
        if (!l)
            return;
        if (k == n) {
            *p = s;
            *len = l;
            return;
        }
        s += l;
    }
}

/* Append magic variable %c of a file line.  1: done, 0: not a magic
 * letter (the text stays), -1: error. */
static int put_magic(struct xp *xp, const struct xsrc *src, char c, struct cfg_buf *out)
{
    struct wharf_cfg_priv *pv = xp->cfg->priv;
    const struct cfg_file *f = src->file;
    char num[32];
    const char *v = NULL;
    size_t vl = (size_t)-1;

    if (c >= 'A' && c <= 'Z' && c != 'G' && c != 'U' && c != 'T') {
        /* %O %P %S %D %E %N %C: the first config file read, for templates */
        if (pv->first)
            f = pv->first;
        c = (char)(c - 'A' + 'a');
        if (!strchr("opsdenc", c))
            return 0;
    }
    switch (c) {
    case 'o': v = f->display; break;
    case 'p': v = f->abs; break;
    case 's': v = f->name; break;
    case 'd': v = f->dir; break;
    case 'e': v = f->ext; break;
    case 'n': v = f->stem; break;
    case 'c': v = f->dirname; break;
    case 'x': v = src->section ? src->section : ""; break;
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        component(f->dir, c - '0', &v, &vl);
        break;
    case 'v':
        if (!pv->cwd && !(pv->cwd = getcwd(NULL, 0)))
            pv->cwd = strdup("");
        v = pv->cwd;
        break;
    case 'h': v = wharf_cfg_hostname(xp->cfg); break;
    case 'k': {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        snprintf(num, sizeof num, "%ld", n > 0 ? n : 1L);
        v = num;
        break;
    }
    case 'u': snprintf(num, sizeof num, "%u", (unsigned)getuid()); v = num; break;
    case 'g': snprintf(num, sizeof num, "%u", (unsigned)getgid()); v = num; break;
    case 'U':
        if (!pv->user)
            pv->user = id_name(true, (unsigned)getuid());
        v = pv->user;
        break;
    case 'G':
        if (!pv->group)
            pv->group = id_name(false, (unsigned)getgid());
        v = pv->group;
        break;
    case 't': snprintf(num, sizeof num, "%lld", pv->start_sec); v = num; break;
    case 'T': snprintf(num, sizeof num, "%lld", pv->start_usec); v = num; break;
    case '[': v = "\033"; break;
    case 'b': v = binary_path(pv); break;
    default:
        return 0;
    }
    if (!v)
        return wharf_cfg_oom(xp->cfg);
    if (emit(xp, src, out, v, vl == (size_t)-1 ? strlen(v) : vl) < 0)
        return -1;
    return 1;
}

/* ------------------------------------------------------------------ */
/* $( ) @( ) %( )                                                      */
/* ------------------------------------------------------------------ */

static int read_file(struct xp *xp, const struct xsrc *src, const char *arg, const char *shown, size_t shown_len,
                     struct cfg_buf *out)
{
    /* uWSGI reads @(file) from the current directory; we also look next
     * to the config file (see wharf_cfg_resolve). */
    char *path = src->file ? wharf_cfg_resolve(src->file->dir, arg) : strdup(arg);
    struct cfg_buf b = {0};
    struct stat st;
    int rc = -1, err = 0;

    if (!path)
        return wharf_cfg_oom(xp->cfg);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        err = errno;
    else if (fstat(fd, &st) < 0)
        err = errno;
    else if (S_ISDIR(st.st_mode))
        err = EISDIR;
    while (!err) {
        char chunk[4096];
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = errno;
        if (r <= 0)
            break;
        if (b.len + (size_t)r > WHARF_CFG_MAX_VALUE) {
            rc = wharf_cfg_fail(xp->cfg, "%s: @(%.*s): %s is larger than %d bytes", src->origin, (int)shown_len,
                                shown, path, WHARF_CFG_MAX_VALUE);
            goto out;
        }
        if (wharf_cfg_buf_add(&b, chunk, (size_t)r) < 0) {
            rc = wharf_cfg_oom(xp->cfg);
            goto out;
        }
    }
    if (err) {
        rc = wharf_cfg_fail(xp->cfg, "%s: @(%.*s): cannot read %s: %s", src->origin, (int)shown_len, shown, path,
                            strerror(err));
        goto out;
    }
    if (b.len && memchr(b.s, '\0', b.len)) {
        rc = wharf_cfg_fail(xp->cfg, "%s: @(%.*s): %s contains a NUL byte", src->origin, (int)shown_len, shown,
                            path);
        goto out;
    }
    /* "the file's content, without its final newline" */
    if (b.len && b.s[b.len - 1] == '\n')
        b.len--;
    if (b.len && b.s[b.len - 1] == '\r')
        b.len--;
    rc = emit(xp, src, out, b.s ? b.s : "", b.len);
out:
    if (fd >= 0)
        close(fd);
    free(b.s);
    free(path);
    return rc;
}

static int cycle_error(struct xp *xp, size_t idx, const char *origin)
{
    const struct cfg_item *items = xp->cfg->priv->items;
    struct cfg_buf b = {0};
    size_t from = 0;
    int bad = 0;

    while (from < xp->nstack && xp->stack[from] != idx)
        from++;
    for (size_t i = from; i <= xp->nstack; i++) {
        const char *k = items[i < xp->nstack ? xp->stack[i] : idx].key;
        bad |= wharf_cfg_buf_add(&b, i > from ? " -> %(" : "%(", i > from ? 6 : 2);
        bad |= wharf_cfg_buf_add(&b, k, strlen(k));
        bad |= wharf_cfg_buf_add(&b, ")", 1);
    }
    int rc = bad ? wharf_cfg_oom(xp->cfg) : wharf_cfg_fail(xp->cfg, "%s: placeholder cycle: %s", origin, b.s);
    free(b.s);
    return rc;
}

/* Expand item `idx`, the value of a %(key).  In wharf_cfg_finish() the
 * result is kept in the item; while reading (include paths) the item may
 * still change meaning, so nothing is cached. */
static int placeholder(struct xp *xp, const struct xsrc *src, size_t idx, struct cfg_buf *out)
{
    struct cfg_item *it = &xp->cfg->priv->items[idx];

    if (it->done)
        return emit_str(xp, src, out, it->value);
    for (size_t i = 0; i < xp->nstack; i++)
        if (xp->stack[i] == idx)
            return cycle_error(xp, idx, src->origin);
    if (xp->nstack >= WHARF_CFG_MAX_NESTING)
        return wharf_cfg_fail(xp->cfg, "%s: placeholders nested more than %d deep", src->origin,
                              WHARF_CFG_MAX_NESTING);

    struct cfg_buf v = {0};
    xp->stack[xp->nstack++] = idx;
    int rc = expand_value(xp, it->raw, it->file, it->section, it->origin, &v);
    xp->nstack--;
    if (rc == 0)
        rc = emit(xp, src, out, v.s, v.len);
    if (rc == 0 && xp->final) {
        it->value = v.s;
        it->done = true;
    } else {
        free(v.s);
    }
    return rc;
}

/* One $( ), @( ) or %( ) whose argument expanded to `arg`; [at, close] is
 * the construct in the raw value, copied verbatim when it stays. */
static int construct(struct xp *xp, const struct xsrc *src, char kind, const char *arg, size_t at, size_t close,
                     struct cfg_buf *out)
{
    const char *raw = src->s + at;
    size_t raw_len = close - at + 1;

    if (kind == '$') {
        const char *v = getenv(arg);
        return v ? emit_str(xp, src, out, v) : emit(xp, src, out, raw, raw_len);
    }
    if (kind == '@') {
        if (!*arg)
            return wharf_cfg_fail(xp->cfg, "%s: @() needs a file name", src->origin);
        return read_file(xp, src, arg, raw + 2, raw_len - 3, out);
    }
    size_t idx = wharf_cfg_lookup(xp->cfg, arg);
    if (idx == WHARF_CFG_NONE)
        return emit(xp, src, out, raw, raw_len);
    wharf_cfg_mark_used(xp->cfg, arg);
    return placeholder(xp, src, idx, out);
}

static int expand_range(struct xp *xp, const struct xsrc *src, size_t a, size_t b, struct cfg_buf *out)
{
    const char *s = src->s;
    size_t lit = a, i = a;
    int rc = 0;

    if (++xp->depth > WHARF_CFG_MAX_NESTING) {
        xp->depth--;
        return wharf_cfg_fail(xp->cfg, "%s: $( ), @( ) and %%( ) nested more than %d deep", src->origin,
                              WHARF_CFG_MAX_NESTING);
    }
    while (rc == 0 && i < b) {
        char c = s[i];
        if ((c == '%' || c == '$' || c == '@') && i + 1 < b && s[i + 1] == '(' && src->match &&
            src->match[i + 1] != WHARF_CFG_NONE && src->match[i + 1] < b) {
            size_t close = src->match[i + 1];
            struct cfg_buf arg = {0};
            if ((rc = emit(xp, src, out, s + lit, i - lit)) < 0)
                break;
            if (wharf_cfg_buf_add(&arg, "", 0) < 0)
                rc = wharf_cfg_oom(xp->cfg);
            if (rc == 0)
                rc = expand_range(xp, src, i + 2, close, &arg);
            if (rc == 0 && memchr(arg.s, '\0', arg.len))
                rc = wharf_cfg_fail(xp->cfg, "%s: a NUL byte in the name of %c( )", src->origin, c);
            if (rc == 0)
                rc = construct(xp, src, c, arg.s, i, close, out);
            free(arg.s);
            i = lit = close + 1;
            continue;
        }
        if (c == '%' && i + 1 < b && (s[i + 1] == '%' || src->file)) {
            if ((rc = emit(xp, src, out, s + lit, i - lit)) < 0)
                break;
            lit = i;
            int r = s[i + 1] == '%' ? (emit(xp, src, out, "%", 1) < 0 ? -1 : 1) : put_magic(xp, src, s[i + 1], out);
            if (r < 0) {
                rc = -1;
                break;
            }
            if (r > 0) {
                i = lit = i + 2;
                continue;
            }
        }
        i++;
    }
    if (rc == 0)
        rc = emit(xp, src, out, s + lit, b - lit);
    xp->depth--;
    return rc;
}

static int expand_value(struct xp *xp, const char *raw, const struct cfg_file *file, const char *section,
                        const char *origin, struct cfg_buf *out)
{
    struct xsrc src = {raw, strlen(raw), NULL, file, section, origin};

    if (wharf_cfg_buf_add(out, "", 0) < 0 || match_parens(raw, src.len, &src.match) < 0)
        return wharf_cfg_oom(xp->cfg);
    int rc = expand_range(xp, &src, 0, src.len, out);
    free(src.match);
    return rc;
}

/* While reading: include paths and for/if arguments.  Placeholders are
 * the keys read so far; those not known yet stay as written. */
int wharf_cfg_expand_now(struct wharf_cfg *cfg, const struct cfg_file *file, const char *section,
                         const char *origin, const char *in, char **out)
{
    struct xp xp = {.cfg = cfg};
    struct cfg_buf b = {0};

    *out = NULL;
    if (expand_value(&xp, in, file, section, origin, &b) < 0) {
        free(b.s);
        return -1;
    }
    *out = b.s;
    return 0;
}

/* wharf_cfg_finish(): every entry's value, in reading order.  Placeholder
 * definitions are expanded only when some %(key) uses them, as in uWSGI,
 * where a set-placeholder value is never expanded on its own. */
int wharf_cfg_expand_all(struct wharf_cfg *cfg)
{
    struct wharf_cfg_priv *pv = cfg->priv;
    struct xp xp = {.cfg = cfg, .final = true};

    for (size_t i = 0; i < pv->nitems; i++) {
        struct cfg_item *it = &pv->items[i];
        if (it->entry == WHARF_CFG_NONE || it->done)
            continue;
        struct cfg_buf v = {0};
        xp.stack[0] = i;
        xp.nstack = 1;
        int rc = expand_value(&xp, it->raw, it->file, it->section, it->origin, &v);
        xp.nstack = 0;
        if (rc < 0) {
            free(v.s);
            return -1;
        }
        it->value = v.s;
        it->done = true;
    }
    for (size_t i = 0; i < pv->nitems; i++) {
        struct cfg_item *it = &pv->items[i];
        if (it->entry == WHARF_CFG_NONE)
            continue;
        struct wharf_cfg_entry *e = &cfg->entries[it->entry];
        char *copy = strdup(it->value);
        if (!copy)
            return wharf_cfg_oom(cfg);
        free(e->value);
        e->value = copy;
    }
    return 0;
}
