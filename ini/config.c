/*
 * ini/config.c - the ordered list of entries, and everything that feeds
 * it: the command line, the environment, config files (the ini and yaml
 * readers call wharf_cfg_file_pair() for each key), includes, and uWSGI's
 * for/if blocks.  Expansion of values is in expand.c.
 *
 * uWSGI (core/uwsgi.c, core/config.c) keeps one list of "exported
 * options" in reading order and applies it at the end; so do we.  Keys
 * that act at the moment they are read (`ini = x`, `set-placeholder`,
 * `for`...) are uWSGI's "immediate" options; they never become entries.
 */
#ifndef _GNU_SOURCE
/* The reader builds standalone too (fuzzing), without autoconf's
 * config.h: ask for the GNU/POSIX interfaces ourselves. */
#define _GNU_SOURCE 1
#endif

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cfg_internal.h"

/* ------------------------------------------------------------------ */
/* errors and small helpers                                            */
/* ------------------------------------------------------------------ */

int wharf_cfg_fail(struct wharf_cfg *cfg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(cfg->error, sizeof cfg->error, fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(cfg->error, sizeof cfg->error, "configuration error (its message could not be formatted)");
    } else if ((size_t)n >= sizeof cfg->error) {
        /* The message did not fit: say so instead of cutting it silently,
         * and cut on a UTF-8 character boundary. */
        size_t cut = sizeof cfg->error - 4;
        while (cut > 0 && ((unsigned char)cfg->error[cut] & 0xC0) == 0x80)
            cut--;
        memcpy(cfg->error + cut, "...", 4);
    }
    /* One line, whatever the file names or values contained. */
    for (char *p = cfg->error; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return -1;
}

int wharf_cfg_oom(struct wharf_cfg *cfg)
{
    return wharf_cfg_fail(cfg, "out of memory while reading the configuration");
}

int wharf_cfg_buf_add(struct cfg_buf *b, const char *p, size_t n)
{
    if (n > SIZE_MAX / 4 || b->len > SIZE_MAX / 4)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return -1;
        b->s = s;
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

/* One line of any length up to WHARF_CFG_MAX_VALUE, without its "\n".
 * Returns 1 for a line, 0 at the end of the file, -1 on a read error or
 * when out of memory (errno says which).  NUL bytes are kept so callers
 * can refuse them rather than cut the line at one.  getline() is not used
 * because it has no limit: `ini = /dev/zero` would eat all memory. */
int wharf_cfg_read_line(FILE *fp, struct cfg_buf *b, bool *too_long)
{
    int c;
    bool any = false;

    *too_long = false;
    b->len = 0;
    if (wharf_cfg_buf_add(b, "", 0) < 0) {
        errno = ENOMEM;
        return -1;
    }
    while ((c = getc(fp)) != EOF) {
        any = true;
        if (c == '\n')
            return 1;
        if (b->len >= WHARF_CFG_MAX_VALUE) {
            *too_long = true;
            return 1;
        }
        char ch = (char)c;
        if (wharf_cfg_buf_add(b, &ch, 1) < 0) {
            errno = ENOMEM;
            return -1;
        }
    }
    if (ferror(fp))
        return -1;
    return any ? 1 : 0;
}

/* Relative paths in includes, @(file), for-readline and the if-exists
 * family.  uWSGI opens them from the current directory; when no such file
 * exists there, wharf looks in base_dir (next to the config file that
 * names them), so `ini = base.ini` beside app.ini works whatever directory
 * wharf was started from (systemd starts services in /), as nginx
 * includes do.  A file in the current directory still wins, so a config
 * that uWSGI reads reads the same way here. */
char *wharf_cfg_resolve(const char *base_dir, const char *path)
{
    char *out;

    if (path[0] == '/' || !base_dir || !*base_dir || access(path, F_OK) == 0)
        return strdup(path);
    size_t bl = strlen(base_dir);
    if (asprintf(&out, "%s%s%s", base_dir, base_dir[bl - 1] == '/' ? "" : "/", path) < 0)
        return NULL;
    return out;
}

/* The directory part of a path as written ("conf/app.ini" -> "conf"), or
 * NULL for the current directory. */
static char *display_dir(const char *display)
{
    const char *slash = strrchr(display, '/');
    if (!slash)
        return NULL;
    if (slash == display)
        return strdup("/");
    return strndup(display, (size_t)(slash - display));
}

static char *trimmed_copy(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t' || *s == '\r'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return strndup(s, n);
}

static bool has_ext(const char *path, const char *ext)
{
    size_t pl = strlen(path), el = strlen(ext);
    return pl > el && strcasecmp(path + pl - el, ext) == 0;
}

/* ------------------------------------------------------------------ */
/* items, entries and the key index                                    */
/* ------------------------------------------------------------------ */

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct cfg_slot *find_slot(const struct wharf_cfg_priv *pv, const char *key)
{
    if (!pv || !pv->nslots)
        return NULL;
    size_t mask = pv->nslots - 1;
    for (size_t i = (size_t)hash_key(key) & mask;; i = (i + 1) & mask) {
        struct cfg_slot *s = &pv->slots[i];
        if (s->item == WHARF_CFG_NONE)
            return NULL;
        if (strcmp(pv->items[s->item].key, key) == 0)
            return s;
    }
}

/* The first item (entry or placeholder) with this key, or WHARF_CFG_NONE:
 * uWSGI's uwsgi_get_exported_opt() rule for %(key). */
size_t wharf_cfg_lookup(const struct wharf_cfg *cfg, const char *key)
{
    const struct cfg_slot *s = find_slot(cfg->priv, key);
    return s ? s->item : WHARF_CFG_NONE;
}

void wharf_cfg_mark_used(struct wharf_cfg *cfg, const char *key)
{
    struct cfg_slot *s = find_slot(cfg->priv, key);
    if (s)
        s->used = true;
}

static void slot_put(struct cfg_slot *slots, size_t nslots, const struct wharf_cfg_priv *pv,
                     struct cfg_slot in)
{
    size_t mask = nslots - 1;
    size_t i = (size_t)hash_key(pv->items[in.item].key) & mask;
    while (slots[i].item != WHARF_CFG_NONE)
        i = (i + 1) & mask;
    slots[i] = in;
}

/* Index item `idx` under its key unless an earlier item has that key. */
static int index_item(struct wharf_cfg_priv *pv, size_t idx)
{
    if (find_slot(pv, pv->items[idx].key))
        return 0;
    if ((pv->slots_used + 1) * 2 > pv->nslots) {
        size_t n = pv->nslots ? pv->nslots * 2 : 64;
        struct cfg_slot *ns = malloc(n * sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < n; i++)
            ns[i] = (struct cfg_slot){WHARF_CFG_NONE, false};
        for (size_t i = 0; i < pv->nslots; i++)
            if (pv->slots[i].item != WHARF_CFG_NONE)
                slot_put(ns, n, pv, pv->slots[i]);
        free(pv->slots);
        pv->slots = ns;
        pv->nslots = n;
    }
    slot_put(pv->slots, pv->nslots, pv, (struct cfg_slot){idx, false});
    pv->slots_used++;
    return 0;
}

static void free_item(struct cfg_item *it)
{
    free(it->key);
    free(it->raw);
    free(it->origin);
    free(it->section);
    free(it->value);
}

/* Append one item; `hidden` ones (set-placeholder) are no entry. */
static int add_item(struct wharf_cfg *cfg, const char *key, const char *value, const char *origin,
                    const struct cfg_file *file, const char *section,
                    enum wharf_cfg_source source, bool hidden)
{
    struct wharf_cfg_priv *pv = cfg->priv;

    if (pv->nitems >= WHARF_CFG_MAX_ITEMS)
        return wharf_cfg_fail(cfg, "%s: more than %d configuration entries (a runaway for block or include?)",
                              origin, WHARF_CFG_MAX_ITEMS);
    if (pv->nitems == pv->items_cap) {
        size_t n = pv->items_cap ? pv->items_cap * 2 : 32;
        struct cfg_item *ni = realloc(pv->items, n * sizeof *ni);
        if (!ni)
            return wharf_cfg_oom(cfg);
        pv->items = ni;
        pv->items_cap = n;
    }
    if (!hidden && cfg->count == pv->entries_cap) {
        size_t n = pv->entries_cap ? pv->entries_cap * 2 : 32;
        struct wharf_cfg_entry *ne = realloc(cfg->entries, n * sizeof *ne);
        if (!ne)
            return wharf_cfg_oom(cfg);
        cfg->entries = ne;
        pv->entries_cap = n;
    }

    struct cfg_item it = {
        .key = strdup(key),
        .raw = strdup(value),
        .origin = strdup(origin),
        .file = file,
        .section = section ? strdup(section) : NULL,
        .entry = WHARF_CFG_NONE,
    };
    if (!it.key || !it.raw || !it.origin || (section && !it.section)) {
        free_item(&it);
        return wharf_cfg_oom(cfg);
    }
    if (!hidden) {
        struct wharf_cfg_entry e = {
            .key = strdup(key),
            .value = strdup(value),
            .origin = strdup(origin),
            .source = source,
        };
        if (!e.key || !e.value || !e.origin) {
            free(e.key);
            free(e.value);
            free(e.origin);
            free_item(&it);
            return wharf_cfg_oom(cfg);
        }
        it.entry = cfg->count;
        cfg->entries[cfg->count++] = e;
    }
    pv->items[pv->nitems] = it;
    if (index_item(pv, pv->nitems) < 0) {
        if (!hidden) {
            cfg->count--;
            free(cfg->entries[cfg->count].key);
            free(cfg->entries[cfg->count].value);
            free(cfg->entries[cfg->count].origin);
        }
        free_item(&it);
        return wharf_cfg_oom(cfg);
    }
    pv->nitems++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* files                                                               */
/* ------------------------------------------------------------------ */

enum load_kind { LOAD_AUTO, LOAD_INI, LOAD_YAML };

static void free_file(struct cfg_file *f)
{
    free(f->display);
    free(f->real);
    free(f->section);
    free(f->abs);
    free(f->dir);
    free(f->stem);
    free(f->dirname);
    free(f);
}

/* The magic variables of a file.  %p keeps the file's own name and only
 * resolves its directory: uWSGI does not follow a symlinked config either,
 * so a symlinked vassal keeps its own %n. */
static struct cfg_file *file_new(struct wharf_cfg *cfg, const char *display, char *real,
                                 const char *section, bool yaml)
{
    struct cfg_file *f = calloc(1, sizeof *f);
    char *dpart = NULL, *rdir = NULL;

    if (!f) {
        free(real);
        return NULL;
    }
    f->real = real;
    f->yaml = yaml;
    f->display = strdup(display);
    if (section)
        f->section = strdup(section);
    dpart = display_dir(display);
    const char *slash = strrchr(display, '/');
    const char *base = slash ? slash + 1 : display;
    rdir = realpath(dpart ? dpart : ".", NULL);
    if (!rdir && dpart && dpart[0] == '/')
        rdir = strdup(dpart);
    if (!rdir) {
        char *cwd = getcwd(NULL, 0);
        if (cwd && asprintf(&rdir, "%s/%s", cwd, dpart ? dpart : ".") < 0)
            rdir = NULL;
        free(cwd);
    }
    if (!f->display || (section && !f->section) || !rdir)
        goto fail;
    size_t rl = strlen(rdir);
    if (asprintf(&f->dir, "%s%s", rdir, rdir[rl - 1] == '/' ? "" : "/") < 0) {
        f->dir = NULL;
        goto fail;
    }
    if (asprintf(&f->abs, "%s%s", f->dir, base) < 0) {
        f->abs = NULL;
        goto fail;
    }
    f->name = f->abs + strlen(f->dir);
    const char *dot = strrchr(f->name, '.');
    if (dot && dot != f->name) {
        f->ext = dot + 1;
        f->stem = strndup(f->name, (size_t)(dot - f->name));
    } else {
        /* uWSGI leaves %n empty for a name without a dot; the whole name
         * is what /run/%n.sock means. */
        f->ext = "";
        f->stem = strdup(f->name);
    }
    /* %c: the name of the directory holding the file ("" for /). */
    size_t dl = strlen(f->dir) - 1; /* without the trailing '/' */
    size_t start = dl;
    while (start > 0 && f->dir[start - 1] != '/')
        start--;
    f->dirname = strndup(f->dir + start, dl - start);
    if (!f->stem || !f->dirname)
        goto fail;
    free(dpart);
    free(rdir);
    f->next = cfg->priv->files;
    cfg->priv->files = f;
    return f;
fail:
    free(dpart);
    free(rdir);
    free_file(f);
    return NULL;
}

static int split_spec(const char *spec, char **path, char **section)
{
    /* "path:section", the last ':' (as uWSGI), unless a '/' follows it. */
    const char *colon = strrchr(spec, ':');

    *section = NULL;
    if (colon && !strchr(colon + 1, '/')) {
        *path = strndup(spec, (size_t)(colon - spec));
        if (colon[1]) {
            *section = strdup(colon + 1);
            if (!*section) {
                free(*path);
                *path = NULL;
            }
        }
    } else {
        *path = strdup(spec);
    }
    return *path ? 0 : -1;
}

static bool same_section(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int add_file_name(struct cfg_buf *b, const char *display, const char *section)
{
    if (b->len && wharf_cfg_buf_add(b, " -> ", 4) < 0)
        return -1;
    if (wharf_cfg_buf_add(b, display, strlen(display)) < 0)
        return -1;
    if (section && (wharf_cfg_buf_add(b, ":", 1) < 0 || wharf_cfg_buf_add(b, section, strlen(section)) < 0))
        return -1;
    return 0;
}

/* "a.ini -> b.ini -> a.ini", from the file that is opened again. */
static int cycle_error(struct wharf_cfg *cfg, const char *from, const struct cfg_load *again,
                       const struct cfg_load *includer, const char *display, const char *section)
{
    const struct cfg_load *chain[WHARF_CFG_MAX_INCLUDE_DEPTH + 2];
    size_t n = 0;
    struct cfg_buf b = {0};
    int rc;

    for (const struct cfg_load *l = includer; l && n < WHARF_CFG_MAX_INCLUDE_DEPTH + 1; l = l->includer) {
        chain[n++] = l;
        if (l == again)
            break;
    }
    rc = wharf_cfg_buf_add(&b, "", 0);
    while (rc == 0 && n > 0) {
        n--;
        rc = add_file_name(&b, chain[n]->file->display, chain[n]->file->section);
    }
    if (rc == 0)
        rc = add_file_name(&b, display, section);
    if (rc < 0)
        rc = wharf_cfg_oom(cfg);
    else
        rc = wharf_cfg_fail(cfg, "%s: include cycle: %s", from, b.s);
    free(b.s);
    return rc;
}

static void load_clear(struct cfg_load *lc)
{
    free(lc->section);
    free(lc->seen);
    wharf_cfg_block_clear(lc);
}

static int missing_section(struct wharf_cfg *cfg, const char *from, const struct cfg_load *lc)
{
    const struct cfg_file *f = lc->file;
    const char *pfx = from ? from : "", *sep = from ? ": " : "";
    char *want = NULL;
    int rc;

    if (f->section)
        rc = f->yaml ? asprintf(&want, "no top-level '%s:' mapping", f->section)
                     : asprintf(&want, "no [%s] section", f->section);
    else
        rc = asprintf(&want, "%s", f->yaml ? "no top-level 'uwsgi:' or 'wharf:' mapping"
                                           : "no [uwsgi] or [wharf] section");
    if (rc < 0)
        return wharf_cfg_oom(cfg);
    rc = wharf_cfg_fail(cfg, "%s%s%s: %s (%s%s)", pfx, sep, f->display, want,
                        lc->seen ? "found " : "it has none at all", lc->seen ? lc->seen : "");
    free(want);
    return rc;
}

/* Load `spec` ("path" or "path:section").  `from` is the origin of the
 * request (for messages); `includer` the file whose line asked for it. */
static int load(struct wharf_cfg *cfg, const char *spec, enum load_kind kind, const char *from,
                struct cfg_load *includer)
{
    struct wharf_cfg_priv *pv = cfg->priv;
    const char *pfx = from ? from : "", *sep = from ? ": " : "";
    char *path = NULL, *section = NULL, *chosen = NULL, *real = NULL;
    int fd = -1, rc = -1;
    FILE *fp = NULL;
    struct stat st;

    if (split_spec(spec, &path, &section) < 0)
        return wharf_cfg_oom(cfg);
    if (!*path) {
        /* "ini = :app1": another section of the including file (uWSGI
         * takes the last file it read, which is rarely what was meant). */
        const struct cfg_file *base = includer ? includer->file : pv->last_top;
        if (!base) {
            rc = wharf_cfg_fail(cfg, "%s%s'%s' names no file, and no config file was read before it",
                                pfx, sep, spec);
            goto out;
        }
        free(path);
        if (!(path = strdup(base->display))) {
            rc = wharf_cfg_oom(cfg);
            goto out;
        }
        if (kind == LOAD_AUTO)
            kind = base->yaml ? LOAD_YAML : LOAD_INI;
    }
    if (includer) {
        char *bd = display_dir(includer->file->display);
        chosen = wharf_cfg_resolve(bd, path);
        free(bd);
    } else {
        chosen = strdup(path);
    }
    if (!chosen) {
        rc = wharf_cfg_oom(cfg);
        goto out;
    }
    bool yaml = kind == LOAD_YAML || (kind == LOAD_AUTO && (has_ext(path, ".yml") || has_ext(path, ".yaml")));

    fd = open(chosen, O_RDONLY | O_CLOEXEC);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0 && fstat(fd, &st) < 0)
        err = errno;
    else if (fd >= 0 && S_ISDIR(st.st_mode))
        err = EISDIR;
    if (err) {
        rc = wharf_cfg_fail(cfg, "%s%scannot open config file '%s': %s", pfx, sep, chosen, strerror(err));
        goto out;
    }

    real = realpath(chosen, NULL);
    if (!real && !(real = strdup(chosen))) {
        rc = wharf_cfg_oom(cfg);
        goto out;
    }
    for (struct cfg_load *l = includer; l; l = l->includer) {
        if (strcmp(l->file->real, real) == 0 && same_section(l->file->section, section)) {
            rc = cycle_error(cfg, pfx, l, includer, chosen, section);
            goto out;
        }
    }
    unsigned depth = includer ? includer->depth + 1 : 1;
    if (depth > WHARF_CFG_MAX_INCLUDE_DEPTH) {
        rc = wharf_cfg_fail(cfg, "%s%sincludes nested more than %d files deep (at '%s')", pfx, sep,
                            WHARF_CFG_MAX_INCLUDE_DEPTH, chosen);
        goto out;
    }

    struct cfg_file *file = file_new(cfg, chosen, real, section, yaml);
    real = NULL; /* owned by file_new() now, freed on its failure too */
    if (!file) {
        rc = wharf_cfg_oom(cfg);
        goto out;
    }
    if (!includer) {
        if (!pv->first)
            pv->first = file;
        pv->last_top = file;
    }
    fp = fdopen(fd, "r");
    if (!fp) {
        rc = wharf_cfg_fail(cfg, "%s%scannot read config file '%s': %s", pfx, sep, chosen, strerror(errno));
        goto out;
    }
    fd = -1;

    struct cfg_load lc = {.cfg = cfg, .file = file, .includer = includer, .depth = depth};
    rc = yaml ? wharf_cfg_read_yaml(&lc, fp) : wharf_cfg_read_ini(&lc, fp);
    if (rc == 0 && lc.block_key)
        rc = wharf_cfg_fail(cfg, "%s:%lu: the '%s' block is not closed (end it with 'endfor' or 'endif')",
                            file->display, lc.block_line, lc.block_key);
    if (rc == 0 && !lc.found)
        rc = missing_section(cfg, from, &lc);
    load_clear(&lc);
out:
    if (fp)
        fclose(fp);
    if (fd >= 0)
        close(fd);
    free(path);
    free(section);
    free(chosen);
    free(real);
    return rc;
}

/* Readers call this at each section header: is it one we read?  It also
 * becomes the section of the lines that follow (%x). */
bool wharf_cfg_section_begin(struct cfg_load *lc, const char *name)
{
    const struct cfg_file *f = lc->file;
    bool wanted = f->section ? strcmp(name, f->section) == 0
                             : (strcmp(name, "uwsgi") == 0 || strcmp(name, "wharf") == 0);

    free(lc->section);
    lc->section = strdup(name);
    if (!lc->section)
        wanted = false; /* %x needs it; the caller reports the failure */
    if (wanted)
        lc->found = true;

    /* Remember the first few section names for the "no such section"
     * message; this is best effort and never fails the read. */
    char *quoted = NULL;
    if (asprintf(&quoted, f->yaml ? "'%s'" : "[%s]", name) >= 0) {
        if (!lc->seen || !strstr(lc->seen, quoted)) {
            size_t ql = strlen(quoted);
            if (lc->seen_len + ql < 300) {
                char *ns = realloc(lc->seen, lc->seen_len + ql + 3);
                if (ns) {
                    if (lc->seen_len)
                        memcpy(ns + lc->seen_len, ", ", 2), lc->seen_len += 2;
                    memcpy(ns + lc->seen_len, quoted, ql + 1);
                    lc->seen_len += ql;
                    lc->seen = ns;
                }
            }
        }
        free(quoted);
    }
    return wanted;
}

/* ------------------------------------------------------------------ */
/* immediate keys: includes, placeholders                              */
/* ------------------------------------------------------------------ */

static int include_kind(const char *key)
{
    if (strcmp(key, "ini") == 0)
        return LOAD_INI;
    if (strcmp(key, "yaml") == 0 || strcmp(key, "yml") == 0)
        return LOAD_YAML;
    if (strcmp(key, "include") == 0) /* uWSGI: any format, by extension */
        return LOAD_AUTO;
    return -1;
}

/* One key = value from any source, after for/if blocks.  `lc` is the file
 * it came from, or NULL for the environment and the command line. */
int wharf_cfg_pair(struct wharf_cfg *cfg, struct cfg_load *lc, const char *key, const char *value,
                   const char *origin, enum wharf_cfg_source source)
{
    const struct cfg_file *file = lc ? lc->file : NULL;
    const char *section = lc ? lc->section : NULL;
    int kind = include_kind(key);

    if (kind >= 0) {
        /* Loaded here and now, so its entries sit where the line is; the
         * path needs its $(ENV), %d and placeholders known so far now. */
        char *path = NULL;
        if (!value || !*value)
            return wharf_cfg_fail(cfg, "%s: '%s' needs the name of a config file", origin, key);
        if (wharf_cfg_expand_now(cfg, file, section, origin, value, &path) < 0)
            return -1;
        int rc = load(cfg, path, (enum load_kind)kind, origin, lc);
        free(path);
        return rc;
    }
    if (strcmp(key, "set-placeholder") == 0 || strcmp(key, "set-ph") == 0 || strcmp(key, "set") == 0) {
        /* `set-placeholder = name=value` defines %(name) without an
         * option; uWSGI's `set` defines an option (or, in its strict mode,
         * a placeholder) - here always the option. */
        const char *eq = value ? strchr(value, '=') : NULL;
        if (!eq)
            return wharf_cfg_fail(cfg, "%s: '%s' needs name=value, not '%s'", origin, key, value ? value : "");
        char *name = trimmed_copy(value, (size_t)(eq - value));
        char *val = trimmed_copy(eq + 1, strlen(eq + 1));
        int rc;
        if (!name || !val)
            rc = wharf_cfg_oom(cfg);
        else if (!*name)
            rc = wharf_cfg_fail(cfg, "%s: '%s' needs a name before '=' in '%s'", origin, key, value);
        else
            rc = add_item(cfg, name, val, origin, file, section, source, strcmp(key, "set") != 0);
        free(name);
        free(val);
        return rc;
    }
    /* A key without "=" is a flag: uWSGI documents `master` as `master = true`. */
    return add_item(cfg, key, value ? value : "true", origin, file, section, source, false);
}

/* ------------------------------------------------------------------ */
/* the public interface                                                */
/* ------------------------------------------------------------------ */

void wharf_cfg_init(struct wharf_cfg *cfg)
{
    struct timeval tv;

    memset(cfg, 0, sizeof *cfg);
    cfg->priv = calloc(1, sizeof *cfg->priv);
    if (cfg->priv) {
        gettimeofday(&tv, NULL);
        cfg->priv->start_sec = (long long)tv.tv_sec;
        cfg->priv->start_usec = (long long)tv.tv_sec * 1000000LL + tv.tv_usec;
    }
}

void wharf_cfg_free(struct wharf_cfg *cfg)
{
    struct wharf_cfg_priv *pv = cfg->priv;

    for (size_t i = 0; i < cfg->count; i++) {
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
        free(cfg->entries[i].origin);
    }
    free(cfg->entries);
    if (pv) {
        for (size_t i = 0; i < pv->nitems; i++)
            free_item(&pv->items[i]);
        free(pv->items);
        free(pv->slots);
        while (pv->files) {
            struct cfg_file *f = pv->files;
            pv->files = f->next;
            free_file(f);
        }
        wharf_cfg_free_host(pv);
        free(pv);
    }
    memset(cfg, 0, sizeof *cfg);
}

static int ready(struct wharf_cfg *cfg)
{
    if (!cfg->priv)
        return wharf_cfg_oom(cfg);
    if (cfg->priv->finished)
        return wharf_cfg_fail(cfg, "internal error: a configuration source was read after wharf_cfg_finish()");
    return 0;
}

int wharf_cfg_load_file(struct wharf_cfg *cfg, const char *spec, bool yaml, const char *from)
{
    if (ready(cfg) < 0)
        return -1;
    return load(cfg, spec, yaml ? LOAD_YAML : LOAD_AUTO, from, NULL);
}

/* Is this argument a config file to load, as in `uwsgi app.ini`? */
static bool config_arg(const char *arg)
{
    char *path, *section;
    bool yes = false;

    if (split_spec(arg, &path, &section) < 0)
        return false;
    yes = has_ext(path, ".ini") || has_ext(path, ".yml") || has_ext(path, ".yaml");
    free(path);
    free(section);
    return yes;
}

/* Keys from the environment and the command line: '_' is '-'. */
static void dashes(char *key)
{
    for (; *key; key++)
        if (*key == '_')
            *key = '-';
}

static int env_or_cli_pair(struct wharf_cfg *cfg, const char *key, const char *value, const char *origin,
                           enum wharf_cfg_source source)
{
    if (wharf_cfg_is_block_key(key))
        return wharf_cfg_fail(cfg, "%s: '%s' is a for/if block key; blocks only work inside config files",
                              origin, key);
    return wharf_cfg_pair(cfg, NULL, key, value, origin, source);
}

int wharf_cfg_parse_args(struct wharf_cfg *cfg, int argc, char *const argv[], wharf_cfg_is_flag_fn is_flag,
                         void *arg)
{
    static const char origin[] = "command line";

    if (ready(cfg) < 0)
        return -1;
    for (int i = 1; i < argc && argv[i]; i++) {
        const char *a = argv[i];
        int rc;

        if (a[0] == '-' && a[1] == '-' && a[2]) {
            const char *body = a + 2, *eq = strchr(body, '=');
            const char *value = NULL;
            char *key = eq ? strndup(body, (size_t)(eq - body)) : strdup(body);
            if (!key)
                return wharf_cfg_oom(cfg);
            dashes(key);
            if (!*key || key[0] == '-') {
                rc = wharf_cfg_fail(cfg, "%s: '%s' is not an option name", origin, a);
                free(key);
                return rc;
            }
            bool next_is_value = i + 1 < argc && argv[i + 1] && !(argv[i + 1][0] == '-' && argv[i + 1][1] == '-');
            if (eq) {
                value = eq + 1;
            } else if (include_kind(key) >= 0 || strcmp(key, "set") == 0 ||
                       strcmp(key, "set-placeholder") == 0 || strcmp(key, "set-ph") == 0) {
                /* --ini, --set-placeholder...: always take the next argument */
                if (i + 1 < argc && argv[i + 1])
                    value = argv[++i];
            } else if (is_flag && is_flag(key, arg)) {
                value = NULL;
            } else if (next_is_value) {
                value = argv[++i];
            }
            rc = env_or_cli_pair(cfg, key, value, origin, WHARF_CFG_CLI);
            free(key);
        } else if (strcmp(a, "-h") == 0) {
            rc = add_item(cfg, "help", "true", origin, NULL, NULL, WHARF_CFG_CLI, false);
        } else if (strcmp(a, "-V") == 0) {
            rc = add_item(cfg, "version", "true", origin, NULL, NULL, WHARF_CFG_CLI, false);
        } else if (a[0] == '-' && a[1] && a[1] != '-') {
            rc = wharf_cfg_fail(cfg, "%s: unknown option '%s' (options are --name or --name=value; the only short ones are -h and -V)",
                                origin, a);
        } else if (config_arg(a)) {
            rc = load(cfg, a, LOAD_AUTO, origin, NULL);
        } else {
            rc = wharf_cfg_fail(cfg, "%s: unexpected argument '%s' (options start with --, config files end in .ini, .yml or .yaml)",
                                origin, a);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Set by uWSGI itself for its children and the Emperor's vassals, never
 * options (core/utils.c parse_sys_envs()). */
static bool uwsgi_internal_env(const char *name)
{
    static const char *const names[] = {
        "UWSGI_RELOADS", "UWSGI_VASSALS_DIR", "UWSGI_EMPEROR_FD", "UWSGI_BROODLORD_NUM",
        "UWSGI_EMPEROR_FD_CONFIG", "UWSGI_EMPEROR_PROXY", "UWSGI_JAIL_PID", "UWSGI_ORIGINAL_PROC_NAME",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

int wharf_cfg_load_env(struct wharf_cfg *cfg, char *const envp[])
{
    if (ready(cfg) < 0)
        return -1;
    if (!envp)
        envp = environ;
    for (size_t i = 0; envp[i]; i++) {
        const char *e = envp[i], *eq = strchr(e, '=');
        if (!eq || strncmp(e, "WHARF__", 7) == 0) /* the core's own state */
            continue;
        if (strncmp(e, "WHARF_", 6) != 0 && strncmp(e, "UWSGI_", 6) != 0)
            continue;
        if (eq - e == 6)
            continue; /* "WHARF_=x": no key */
        char *name = strndup(e, (size_t)(eq - e));
        char *origin = NULL, *key = NULL;
        int rc = 0;
        if (!name)
            return wharf_cfg_oom(cfg);
        if (uwsgi_internal_env(name)) {
            free(name);
            continue;
        }
        if (asprintf(&origin, "env %s", name) < 0)
            origin = NULL;
        key = strdup(name + 6);
        if (!origin || !key) {
            rc = wharf_cfg_oom(cfg);
        } else {
            for (char *p = key; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            dashes(key);
            rc = env_or_cli_pair(cfg, key, eq + 1, origin, WHARF_CFG_ENV);
        }
        free(name);
        free(origin);
        free(key);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int wharf_cfg_finish(struct wharf_cfg *cfg)
{
    struct wharf_cfg_priv *pv = cfg->priv;

    if (!pv)
        return wharf_cfg_oom(cfg);
    if (pv->finished)
        return 0;
    if (wharf_cfg_expand_all(cfg) < 0)
        return -1;
    for (size_t i = 0; i < cfg->count; i++) {
        const struct cfg_slot *s = find_slot(pv, cfg->entries[i].key);
        cfg->entries[i].placeholder_used = s && s->used;
    }
    pv->finished = true;
    return 0;
}
