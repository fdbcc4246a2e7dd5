/*
 * core/options.c - options are declared in tables (struct wharf_option) and
 * filled by generic typed setters, nginx-style (offsetof + slot setters):
 * no plugin parses its own config text.  The same registry answers --help,
 * --show-config and the did-you-mean of unknown-option errors.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void wharf_options_init(struct wharf_options *o)
{
    memset(o, 0, sizeof *o);
}

void wharf_options_free(struct wharf_options *o)
{
    for (size_t i = 0; i < o->count; i++) {
        free(o->defs[i].items);
        free(o->defs[i].item_seq);
    }
    free(o->defs);
    memset(o, 0, sizeof *o);
}

struct wharf_optdef *wharf_options_find(struct wharf_options *o, const char *name)
{
    for (size_t i = 0; i < o->count; i++)
        if (strcmp(o->defs[i].opt->name, name) == 0)
            return &o->defs[i];
    return NULL;
}

int wharf_options_register(struct wharf_options *o, const struct wharf_option *table,
                           int owner, const char *owner_name, void *conf)
{
    if (!table)
        return 0;
    for (const struct wharf_option *row = table; row->name; row++) {
        struct wharf_optdef *dup = wharf_options_find(o, row->name);
        if (dup) {
            wharf_log(WHARF_LOG_ERROR,
                      "option '%s' of plugin '%s' is already declared by %s",
                      row->name, owner_name,
                      dup->owner < 0 ? "the core" : "another plugin");
            return -1;
        }
        unsigned type = row->type & WHARF_OPT_TYPE_MASK;
        if (type < WHARF_OPT_STRING || type > WHARF_OPT_ALIAS ||
            ((row->type & WHARF_OPT_LIST) && type != WHARF_OPT_STRING &&
             type != WHARF_OPT_ADDRESS) ||
            ((row->type & WHARF_OPT_LISTEN) && type != WHARF_OPT_ADDRESS) ||
            ((row->type & WHARF_OPT_ACTION) && type != WHARF_OPT_BOOL)) {
            wharf_log(WHARF_LOG_ERROR, "option '%s' of '%s' has an invalid type %#x",
                      row->name, owner_name, row->type);
            return -1;
        }
        if (o->count == o->cap) {
            o->cap = o->cap ? o->cap * 2 : 64;
            o->defs = wharf_xrealloc(o->defs, o->cap * sizeof *o->defs);
        }
        struct wharf_optdef *d = &o->defs[o->count++];
        memset(d, 0, sizeof *d);
        d->opt = row;
        d->target = row;
        d->owner = owner;
        d->conf = conf;
        d->origin = "default";
    }
    /* Resolve aliases now that the whole table is known.  An alias may
     * point at an option of the same owner only (keeps tables local). */
    for (size_t i = 0; i < o->count; i++) {
        struct wharf_optdef *d = &o->defs[i];
        if ((d->opt->type & WHARF_OPT_TYPE_MASK) != WHARF_OPT_ALIAS || d->target != d->opt)
            continue;
        struct wharf_optdef *t = d->opt->def ? wharf_options_find(o, d->opt->def) : NULL;
        if (!t || (t->opt->type & WHARF_OPT_TYPE_MASK) == WHARF_OPT_ALIAS) {
            if (d->owner != owner)
                continue; /* resolved when registered earlier */
            wharf_log(WHARF_LOG_ERROR, "alias '%s' of '%s' points at unknown option '%s'",
                      d->opt->name, owner_name, d->opt->def ? d->opt->def : "(null)");
            return -1;
        }
        d->target = t->opt;
    }
    return 0;
}

/* ------------------------------------------------------------ parsers */

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

int wharf_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "1", "yes", "on", "y", "t", NULL };
    static const char *const no[] = { "false", "0", "no", "off", "n", "f", "", NULL };
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
    for (int i = 0; no[i]; i++)
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    return -1;
}

int wharf_parse_int(const char *s, long *out)
{
    s = skip_space(s);
    if (!*s)
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || end == s)
        return -1;
    end = (char *)skip_space(end);
    if (*end)
        return -1;
    *out = v;
    return 0;
}

/* Sizes are binary multiples, as in uWSGI and nginx: 64k = 65536. */
int wharf_parse_size(const char *s, size_t *out)
{
    s = skip_space(s);
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (tolower((unsigned char)*end)) {
    case 'k': shift = 10; end++; break;
    case 'm': shift = 20; end++; break;
    case 'g': shift = 30; end++; break;
    default: break;
    }
    if (shift && (*end == 'b' || *end == 'B'))
        end++;
    end = (char *)skip_space(end);
    if (*end)
        return -1;
    if (shift && v > (SIZE_MAX >> shift))
        return -1;
    v <<= shift;
    if (v > SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* A bare number is seconds (uWSGI's harakiri = 60, gunicorn's timeout). */
int wharf_parse_duration_ms(const char *s, int64_t *out)
{
    s = skip_space(s);
    if (!isdigit((unsigned char)*s))
        return -1;
    /* digits with an optional fraction only: strtod alone would also take
     * hex ("0x10") and exponents ("1e3") */
    const char *num_end = s;
    while (isdigit((unsigned char)*num_end))
        num_end++;
    if (*num_end == '.')
        for (num_end++; isdigit((unsigned char)*num_end);)
            num_end++;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end != num_end || v < 0)
        return -1;
    double mult = 1000;
    if (strncasecmp(end, "ms", 2) == 0) {
        mult = 1;
        end += 2;
    } else if (*end == 's' || *end == 'S') {
        end++;
    } else if (*end == 'm' || *end == 'M') {
        mult = 60000;
        end++;
    } else if (*end == 'h' || *end == 'H') {
        mult = 3600000;
        end++;
    }
    end = (char *)skip_space(end);
    if (*end)
        return -1;
    double ms = v * mult;
    if (ms > 9.0e15)
        return -1;
    *out = (int64_t)(ms + 0.5);
    return 0;
}

int wharf_parse_address(const char *s, char *err, size_t errlen)
{
    if (!*s) {
        snprintf(err, errlen, "empty address");
        return -1;
    }
    if (strchr(s, '/') || s[0] == '@') /* unix socket (path or abstract) */
        return 0;
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "'%s' is not [ipv6]:port", s);
            return -1;
        }
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "'%s' has no port (expected host:port, :port or a unix socket path)", s);
            return -1;
        }
        /* "::1" would be host ":" port 1, failing only at bind time */
        if (memchr(s, ':', (size_t)(colon - s))) {
            snprintf(err, errlen, "'%s' is an IPv6 address without brackets (expected [ipv6]:port)", s);
            return -1;
        }
    }
    const char *port = colon + 1;
    char *end;
    errno = 0;
    long p = strtol(port, &end, 10);
    if (!*port || *end || errno || p < 0 || p > 65535) {
        snprintf(err, errlen, "'%s' has an invalid port '%s' (expected 0-65535)", s, port);
        return -1;
    }
    return 0;
}

const char *wharf_option_type_name(unsigned type)
{
    switch (type & WHARF_OPT_TYPE_MASK) {
    case WHARF_OPT_STRING: return (type & WHARF_OPT_LIST) ? "list" : "string";
    case WHARF_OPT_INT: return "int";
    case WHARF_OPT_BOOL: return "bool";
    case WHARF_OPT_SIZE: return "size";
    case WHARF_OPT_DURATION: return "duration";
    case WHARF_OPT_ADDRESS: return (type & WHARF_OPT_LIST) ? "address list" : "address";
    case WHARF_OPT_COMPAT: return "compat";
    case WHARF_OPT_ALIAS: return "alias";
    default: return "?";
    }
}

const char *wharf_option_expected(unsigned type)
{
    switch (type & WHARF_OPT_TYPE_MASK) {
    case WHARF_OPT_INT: return "a whole number";
    case WHARF_OPT_BOOL: return "true or false (also 1/0, yes/no, on/off)";
    case WHARF_OPT_SIZE: return "a size such as 65536, 64k, 8m or 1g";
    case WHARF_OPT_DURATION: return "a duration such as 30 (seconds), 500ms, 2m or 1h";
    case WHARF_OPT_ADDRESS: return "host:port, :port, [ipv6]:port or a unix socket path";
    default: return "a value";
    }
}

/* ------------------------------------------------------------ setting */

static void *field(const struct wharf_optdef *d)
{
    return (char *)d->conf + d->target->offset;
}

static bool out_of_range(const struct wharf_option *o, long long v)
{
    return o->max > o->min && (v < o->min || v > o->max);
}

static void range_error(const struct wharf_option *o, char *err, size_t errlen,
                        const char *value)
{
    if ((o->type & WHARF_OPT_TYPE_MASK) == WHARF_OPT_DURATION)
        snprintf(err, errlen, "'%s' is out of range (expected %lld ms to %lld ms)", value,
                 o->min, o->max);
    else
        snprintf(err, errlen, "'%s' is out of range (expected %lld to %lld)", value, o->min,
                 o->max);
}

/* Parse `value` for row `o` into `dst` (the field).  Shared by defaults and
 * config values so a default can never be something a user could not write. */
static int set_field(const struct wharf_option *o, void *dst, const char *value,
                     char *err, size_t errlen)
{
    unsigned type = o->type & WHARF_OPT_TYPE_MASK;
    switch (type) {
    case WHARF_OPT_STRING:
        /* a later value (file < env < command line) replaces the default
         * or an earlier one, which nobody else holds yet */
        free(*(char **)dst);
        *(char **)dst = wharf_xstrdup(value);
        return 0;
    case WHARF_OPT_ADDRESS:
        if (wharf_parse_address(value, err, errlen) < 0)
            return -1;
        free(*(char **)dst);
        *(char **)dst = wharf_xstrdup(value);
        return 0;
    case WHARF_OPT_INT: {
        long v;
        if (wharf_parse_int(value, &v) < 0)
            goto bad;
        if (out_of_range(o, v)) {
            range_error(o, err, errlen, value);
            return -1;
        }
        *(long *)dst = v;
        return 0;
    }
    case WHARF_OPT_BOOL: {
        bool v;
        if (wharf_parse_bool(value, &v) < 0)
            goto bad;
        *(bool *)dst = v;
        return 0;
    }
    case WHARF_OPT_SIZE: {
        size_t v;
        if (wharf_parse_size(value, &v) < 0)
            goto bad;
        if (o->max > o->min && (v < (unsigned long long)o->min || v > (unsigned long long)o->max)) {
            range_error(o, err, errlen, value);
            return -1;
        }
        *(size_t *)dst = v;
        return 0;
    }
    case WHARF_OPT_DURATION: {
        int64_t v;
        if (wharf_parse_duration_ms(value, &v) < 0)
            goto bad;
        if (out_of_range(o, v)) {
            range_error(o, err, errlen, value);
            return -1;
        }
        *(int64_t *)dst = v;
        return 0;
    }
    default:
        return 0;
    }
bad:
    snprintf(err, errlen, "invalid value '%s' (expected %s)", value, wharf_option_expected(type));
    return -1;
}

int wharf_options_apply_defaults(struct wharf_options *o)
{
    for (size_t i = 0; i < o->count; i++) {
        struct wharf_optdef *d = &o->defs[i];
        unsigned type = d->opt->type & WHARF_OPT_TYPE_MASK;
        if (type == WHARF_OPT_ALIAS || type == WHARF_OPT_COMPAT || !d->opt->def)
            continue;
        /* one buffer for both paths: the goto below must land where the
         * message was written */
        char err[256];
        if (d->opt->type & WHARF_OPT_LIST) {
            /* a list default is one item */
            if (wharf_options_set(o, d, d->opt->def, "default", err, sizeof err) < 0)
                goto bad_default;
            d->set = false;
            continue;
        }
        if (set_field(d->opt, field(d), d->opt->def, err, sizeof err) < 0) {
bad_default:
            wharf_log(WHARF_LOG_ERROR, "option '%s': bad built-in default: %s", d->opt->name, err);
            return -1;
        }
    }
    return 0;
}

int wharf_options_set(struct wharf_options *o, struct wharf_optdef *d, const char *value,
                      const char *origin, char *err, size_t errlen)
{
    unsigned type = d->opt->type & WHARF_OPT_TYPE_MASK;
    if (type == WHARF_OPT_COMPAT) {
        d->set = true;
        d->origin = origin;
        return 0;
    }
    if (type == WHARF_OPT_ALIAS) {
        /* record on the target, so --show-config and origin lookups see one
         * option however it was spelled */
        struct wharf_optdef *t = wharf_options_find(o, d->target->name);
        d->set = true;
        d->origin = origin;
        return t ? wharf_options_set(o, t, value, origin, err, errlen) : -1;
    }
    if (d->opt->type & WHARF_OPT_LIST) {
        if (type == WHARF_OPT_ADDRESS && wharf_parse_address(value, err, errlen) < 0)
            return -1;
        /* the first explicit item replaces a list default */
        if (!d->set && d->nitems && strcmp(origin, "default") != 0) {
            for (size_t k = 0; k < d->nitems; k++)
                free((char *)d->items[k].value);
            d->nitems = 0;
        }
        if (d->nitems == d->capitems) {
            d->capitems = d->capitems ? d->capitems * 2 : 4;
            d->items = wharf_xrealloc(d->items, d->capitems * sizeof *d->items);
            d->item_seq = wharf_xrealloc(d->item_seq, d->capitems * sizeof *d->item_seq);
        }
        d->items[d->nitems].value = wharf_xstrdup(value);
        d->items[d->nitems].origin = origin;
        /* entries are applied in config order, so one counter over every
         * list option gives one order across options (wharf_list_item_seq);
         * process-wide because plugin defaults are applied through a
         * sub-registry */
        static uint64_t list_seq;
        d->item_seq[d->nitems] = ++list_seq;
        d->nitems++;
        d->set = true;
        d->origin = origin;
        return 0;
    }
    if (set_field(d->opt, field(d), value, err, errlen) < 0)
        return -1;
    d->set = true;
    d->origin = origin;
    return 0;
}

void wharf_options_finish(struct wharf_options *o)
{
    for (size_t i = 0; i < o->count; i++) {
        struct wharf_optdef *d = &o->defs[i];
        if (!(d->opt->type & WHARF_OPT_LIST))
            continue;
        struct wharf_list *l = field(d);
        l->count = d->nitems;
        l->items = d->items;
    }
}

char *wharf_option_value_text(const struct wharf_optdef *d)
{
    const struct wharf_option *o = d->target;
    unsigned type = o->type & WHARF_OPT_TYPE_MASK;
    if ((d->opt->type & WHARF_OPT_TYPE_MASK) == WHARF_OPT_COMPAT)
        return wharf_xstrdup(d->set ? "accepted" : "");
    void *f = field(d);
    switch (type) {
    case WHARF_OPT_STRING:
    case WHARF_OPT_ADDRESS:
        if (o->type & WHARF_OPT_LIST) {
            const struct wharf_list *l = f;
            size_t len = 1;
            for (size_t i = 0; i < l->count; i++)
                len += strlen(l->items[i].value) + 2;
            char *s = wharf_xmalloc(len);
            s[0] = '\0';
            for (size_t i = 0; i < l->count; i++) {
                if (i)
                    strcat(s, ", ");
                strcat(s, l->items[i].value);
            }
            return s;
        }
        return wharf_xstrdup(*(char **)f ? *(char **)f : "");
    case WHARF_OPT_INT:
        return wharf_xasprintf("%ld", *(long *)f);
    case WHARF_OPT_BOOL:
        return wharf_xstrdup(*(bool *)f ? "true" : "false");
    case WHARF_OPT_SIZE:
        return wharf_xasprintf("%zu", *(size_t *)f);
    case WHARF_OPT_DURATION: {
        int64_t ms = *(int64_t *)f;
        if (ms % 1000 == 0)
            return wharf_xasprintf("%" PRId64 "s", ms / 1000);
        return wharf_xasprintf("%" PRId64 "ms", ms);
    }
    default:
        return wharf_xstrdup("");
    }
}
