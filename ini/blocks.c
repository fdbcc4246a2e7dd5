/*
 * ini/blocks.c - uWSGI's for/if blocks in config files ("logic" options,
 * core/config.c in uWSGI), and the dispatch of every key a file reader
 * finds: block keys here, everything else to wharf_cfg_pair().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* see config.c */
#endif

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_internal.h"

/*
 * uWSGI feeds every line of an open block through the block's function,
 * which adds it once per item with %(_) replaced (for), or once or not at
 * all (if).  Like uWSGI, blocks do not nest, any of end/endfor/endif
 * closes one, and only values get %(_).  Unlike uWSGI (whose block state is
 * global and silently runs on into the next file or the command line), a
 * block must close in the file that opens it, a stray end is an error, and
 * the block's argument gets $( ) and %( ) expansion like an include path.
 */
enum block_kind {
    BK_FOR, BK_FOR_GLOB, BK_FOR_TIMES, BK_FOR_READLINE,
    BK_IF_ENV, BK_IF_NOT_ENV, BK_IF_EXISTS, BK_IF_NOT_EXISTS,
    BK_IF_FILE, BK_IF_NOT_FILE, BK_IF_DIR, BK_IF_NOT_DIR,
    BK_IF_OPT, BK_IF_NOT_OPT, BK_IF_HOSTNAME, BK_IF_NOT_HOSTNAME,
};

static const struct {
    const char *name;
    enum block_kind kind;
} block_keys[] = {
    {"for", BK_FOR},
    {"for-glob", BK_FOR_GLOB},
    {"for-times", BK_FOR_TIMES},
    {"for-readline", BK_FOR_READLINE},
    {"if-env", BK_IF_ENV},
    {"ifenv", BK_IF_ENV},
    {"if-not-env", BK_IF_NOT_ENV},
    {"if-exists", BK_IF_EXISTS},
    {"ifexists", BK_IF_EXISTS},
    {"if-not-exists", BK_IF_NOT_EXISTS},
    {"if-file", BK_IF_FILE},
    {"if-not-file", BK_IF_NOT_FILE},
    {"if-dir", BK_IF_DIR},
    {"ifdir", BK_IF_DIR},
    {"if-directory", BK_IF_DIR},
    {"if-not-dir", BK_IF_NOT_DIR},
    {"if-opt", BK_IF_OPT},
    {"if-not-opt", BK_IF_NOT_OPT},
    {"if-hostname", BK_IF_HOSTNAME},
    {"if-not-hostname", BK_IF_NOT_HOSTNAME},
};

/* uWSGI blocks that need what only the core knows (plugins, reloads) or a
 * regex engine: refused by name rather than passed on as unknown options. */
static const char *const unsupported_blocks[] = {
    "if-plugin", "if-not-plugin", "ifplugin", "if-reload", "if-not-reload",
    "if-hostname-match", "if-not-hostname-match",
};

static const char *const end_keys[] = {"end", "endfor", "end-for", "endif", "end-if"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int block_of(const char *key)
{
    for (size_t i = 0; i < COUNT(block_keys); i++)
        if (strcmp(key, block_keys[i].name) == 0)
            return (int)i;
    return -1;
}

static bool in_list(const char *key, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

bool wharf_cfg_is_block_key(const char *key)
{
    return block_of(key) >= 0 || in_list(key, end_keys, COUNT(end_keys)) ||
           in_list(key, unsupported_blocks, COUNT(unsupported_blocks));
}

void wharf_cfg_block_clear(struct cfg_load *lc)
{
    for (size_t i = 0; i < lc->block_nvals; i++)
        free(lc->block_vals[i]);
    free(lc->block_vals);
    free(lc->block_key);
    lc->block_vals = NULL;
    lc->block_nvals = 0;
    lc->block_key = NULL;
}

/* Add one emission to the open block; `v` NULL emits without %(_). */
static int block_push(struct cfg_load *lc, const char *origin, const char *v, size_t n)
{
    if (lc->block_nvals >= WHARF_CFG_MAX_LOOP)
        return wharf_cfg_fail(lc->cfg, "%s: the '%s' block runs more than %d times", origin,
                              lc->block_key, WHARF_CFG_MAX_LOOP);
    char **nv = realloc(lc->block_vals, (lc->block_nvals + 1) * sizeof *nv);
    if (!nv)
        return wharf_cfg_oom(lc->cfg);
    lc->block_vals = nv;
    nv[lc->block_nvals] = NULL;
    if (v && !(nv[lc->block_nvals] = strndup(v, n)))
        return wharf_cfg_oom(lc->cfg);
    lc->block_nvals++;
    return 0;
}

static int block_push_str(struct cfg_load *lc, const char *origin, const char *v)
{
    return block_push(lc, origin, v, v ? strlen(v) : 0);
}

static int for_glob(struct cfg_load *lc, const char *origin, const char *pattern)
{
    glob_t g;
    char *alt = NULL;
    int r = glob(pattern, GLOB_MARK, NULL, &g);

    if (r == GLOB_NOMATCH && pattern[0] != '/' && (alt = wharf_cfg_resolve(lc->file->dir, pattern))) {
        globfree(&g);
        r = glob(alt, GLOB_MARK, NULL, &g);
    }
    free(alt);
    if (r == GLOB_NOMATCH) {
        /* uWSGI globs with GLOB_NOCHECK: no match runs the block once
         * with the pattern itself. */
        globfree(&g);
        return block_push_str(lc, origin, pattern);
    }
    if (r != 0) {
        globfree(&g);
        return wharf_cfg_fail(lc->cfg, "%s: for-glob '%s' failed: %s", origin, pattern,
                              r == GLOB_NOSPACE ? "out of memory" : "a directory could not be read");
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++)
        rc = block_push_str(lc, origin, g.gl_pathv[i]);
    globfree(&g);
    return rc;
}

static int for_readline(struct cfg_load *lc, const char *origin, const char *arg)
{
    char *path = wharf_cfg_resolve(lc->file->dir, arg);
    if (!path)
        return wharf_cfg_oom(lc->cfg);
    FILE *fp = fopen(path, "re");
    if (!fp) {
        int rc = wharf_cfg_fail(lc->cfg, "%s: for-readline: cannot read %s: %s", origin, path, strerror(errno));
        free(path);
        return rc;
    }
    struct cfg_buf line = {0};
    bool too_long;
    int r, rc = 0;
    while (rc == 0 && (r = wharf_cfg_read_line(fp, &line, &too_long)) > 0) {
        if (too_long || memchr(line.s, '\0', line.len))
            rc = wharf_cfg_fail(lc->cfg, "%s: for-readline: %s has a line that is too long or holds a NUL byte",
                                origin, path);
        else {
            if (line.len && line.s[line.len - 1] == '\r')
                line.s[--line.len] = '\0';
            rc = block_push(lc, origin, line.s, line.len);
        }
    }
    if (rc == 0 && r < 0)
        rc = wharf_cfg_fail(lc->cfg, "%s: for-readline: cannot read %s: %s", origin, path, strerror(errno));
    free(line.s);
    fclose(fp);
    free(path);
    return rc;
}

static bool path_test(struct cfg_load *lc, const char *arg, enum block_kind kind, bool *ok)
{
    char *path = wharf_cfg_resolve(lc->file->dir, arg);
    struct stat st;

    if (!path)
        return false;
    switch (kind) {
    case BK_IF_EXISTS:
    case BK_IF_NOT_EXISTS:
        *ok = access(path, R_OK) == 0; /* as uwsgi_file_exists() */
        break;
    case BK_IF_FILE:
    case BK_IF_NOT_FILE:
        *ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        break;
    default:
        *ok = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
        break;
    }
    if (kind == BK_IF_NOT_EXISTS || kind == BK_IF_NOT_FILE || kind == BK_IF_NOT_DIR)
        *ok = !*ok;
    free(path);
    return true;
}

/* if-env / if-opt with "NAME" or "NAME=VALUE"; `found` is the current
 * value or NULL.  uWSGI's rules, including %(_) = the value found. */
static int if_value(struct cfg_load *lc, const char *origin, const char *want, const char *found,
                    bool negate)
{
    if (!negate) {
        if (found && (!want || strcmp(want, found) == 0))
            return block_push_str(lc, origin, found);
        return 0;
    }
    if (!found)
        return block_push_str(lc, origin, NULL);
    if (want && strcmp(want, found) != 0)
        return block_push_str(lc, origin, found);
    return 0;
}

static int block_open(struct cfg_load *lc, int which, const char *raw, const char *origin,
                      unsigned long line)
{
    struct wharf_cfg *cfg = lc->cfg;
    enum block_kind kind = block_keys[which].kind;
    char *arg = NULL;
    int rc = 0;

    if (wharf_cfg_expand_now(cfg, lc->file, lc->section, origin, raw, &arg) < 0)
        return -1;
    if (!(lc->block_key = strdup(block_keys[which].name))) {
        free(arg);
        return wharf_cfg_oom(cfg);
    }
    lc->block_line = line;

    switch (kind) {
    case BK_FOR: {
        const char *p = arg;
        while (rc == 0 && *p) {
            size_t n = strcspn(p, " \t");
            if (n)
                rc = block_push(lc, origin, p, n);
            p += n;
            p += strspn(p, " \t");
        }
        break;
    }
    case BK_FOR_GLOB:
        rc = for_glob(lc, origin, arg);
        break;
    case BK_FOR_TIMES: {
        char *end;
        errno = 0;
        long n = strtol(arg, &end, 10);
        if (end == arg || *end || n < 0 || errno)
            rc = wharf_cfg_fail(cfg, "%s: for-times needs a whole number, not '%s'", origin, arg);
        else if (n > WHARF_CFG_MAX_LOOP)
            rc = wharf_cfg_fail(cfg, "%s: for-times = %ld is more than %d iterations", origin, n,
                                WHARF_CFG_MAX_LOOP);
        for (long i = 1; rc == 0 && i <= n; i++) {
            char num[24];
            snprintf(num, sizeof num, "%ld", i);
            rc = block_push_str(lc, origin, num);
        }
        break;
    }
    case BK_FOR_READLINE:
        rc = for_readline(lc, origin, arg);
        break;
    case BK_IF_ENV:
    case BK_IF_NOT_ENV:
    case BK_IF_OPT:
    case BK_IF_NOT_OPT: {
        char *eq = strchr(arg, '=');
        if (eq)
            *eq = '\0';
        const char *found;
        if (kind == BK_IF_ENV || kind == BK_IF_NOT_ENV) {
            found = getenv(arg);
        } else {
            size_t idx = wharf_cfg_lookup(cfg, arg);
            found = idx == WHARF_CFG_NONE ? NULL : cfg->priv->items[idx].raw;
            wharf_cfg_mark_used(cfg, arg); /* a variable tested like a placeholder */
        }
        rc = if_value(lc, origin, eq ? eq + 1 : NULL, found, kind == BK_IF_NOT_ENV || kind == BK_IF_NOT_OPT);
        break;
    }
    case BK_IF_EXISTS:
    case BK_IF_NOT_EXISTS:
    case BK_IF_FILE:
    case BK_IF_NOT_FILE:
    case BK_IF_DIR:
    case BK_IF_NOT_DIR: {
        bool ok;
        if (!path_test(lc, arg, kind, &ok))
            rc = wharf_cfg_oom(cfg);
        else if (ok)
            rc = block_push_str(lc, origin, arg);
        break;
    }
    case BK_IF_HOSTNAME:
    case BK_IF_NOT_HOSTNAME: {
        const char *host = wharf_cfg_hostname(cfg);
        if (!host)
            rc = wharf_cfg_oom(cfg);
        else if ((strcmp(host, arg) == 0) == (kind == BK_IF_HOSTNAME))
            rc = block_push_str(lc, origin, arg);
        break;
    }
    }
    free(arg);
    return rc;
}

/* "%(_)" replaced by `with` everywhere in `s` (uwsgi_substitute). */
static char *substitute(const char *s, const char *with)
{
    struct cfg_buf b = {0};
    const char *p;

    if (wharf_cfg_buf_add(&b, "", 0) < 0)
        return NULL;
    while ((p = strstr(s, "%(_)"))) {
        if (wharf_cfg_buf_add(&b, s, (size_t)(p - s)) < 0 || wharf_cfg_buf_add(&b, with, strlen(with)) < 0) {
            free(b.s);
            return NULL;
        }
        s = p + 4;
    }
    if (wharf_cfg_buf_add(&b, s, strlen(s)) < 0) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static int file_pair(struct cfg_load *lc, const char *key, const char *value, const char *origin,
                     unsigned long line)
{
    struct wharf_cfg *cfg = lc->cfg;

    if (in_list(key, end_keys, COUNT(end_keys))) {
        if (!lc->block_key)
            return wharf_cfg_fail(cfg, "%s: '%s' without an open for or if block", origin, key);
        wharf_cfg_block_clear(lc);
        return 0;
    }
    int which = block_of(key);
    if (which >= 0) {
        if (lc->block_key)
            return wharf_cfg_fail(cfg, "%s: '%s' inside the '%s' block of line %lu: for/if blocks do not nest",
                                  origin, key, lc->block_key, lc->block_line);
        return block_open(lc, which, value ? value : "", origin, line);
    }
    if (in_list(key, unsupported_blocks, COUNT(unsupported_blocks)))
        return wharf_cfg_fail(cfg, "%s: '%s' blocks are not supported by wharf", origin, key);
    if (!lc->block_key)
        return wharf_cfg_pair(cfg, lc, key, value, origin, WHARF_CFG_FILE);

    for (size_t i = 0; i < lc->block_nvals; i++) {
        char *v = NULL;
        if (value && lc->block_vals[i] && !(v = substitute(value, lc->block_vals[i])))
            return wharf_cfg_oom(cfg);
        int rc = wharf_cfg_pair(cfg, lc, key, v ? v : value, origin, WHARF_CFG_FILE);
        free(v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Readers: one key from a wanted section; `value` NULL for a bare key. */
int wharf_cfg_file_pair(struct cfg_load *lc, const char *key, const char *value, unsigned long line)
{
    char *origin;

    if (!lc->section)
        return wharf_cfg_oom(lc->cfg); /* wharf_cfg_section_begin() could not copy it */
    if (asprintf(&origin, "%s:%lu", lc->file->display, line) < 0)
        return wharf_cfg_oom(lc->cfg);
    int rc = *key ? file_pair(lc, key, value, origin, line)
                  : wharf_cfg_fail(lc->cfg, "%s: a value with no key before it", origin);
    free(origin);
    return rc;
}
