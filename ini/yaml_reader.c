/*
 * ini/yaml_reader.c - yaml config files through libyaml's event parser.
 *
 * The shape uWSGI reads (core/yaml.c): a top-level mapping whose keys are
 * section names; the wanted sections (`uwsgi:` and `wharf:`, or the one
 * named by file.yml:name) map option names to a value or to a list of
 * values, a list being the key repeated:
 *
 *     uwsgi:
 *       module: wsgi:app
 *       static-map:
 *         - /static=/app/static
 *         - /media=/app/media
 *
 * Scalars are taken as written ("true", "1", "~" are text; the core
 * interprets booleans); an empty value is "".  Other sections may hold
 * anything and are skipped.  Unlike uWSGI, which stops after the first
 * wanted section and quietly drops what it does not understand, every
 * wanted section is read and a nested mapping, a list of lists or an
 * alias in one is an error naming its line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* see config.c */
#endif

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cfg_internal.h"

struct yctx {
    struct cfg_load *lc;
    FILE *fp;
    yaml_parser_t p;
};

static unsigned long line_of(const yaml_event_t *ev)
{
    return (unsigned long)ev->start_mark.line + 1;
}

static const char *display(const struct yctx *y)
{
    return y->lc->file->display;
}

static int parse_error(struct yctx *y)
{
    const yaml_parser_t *p = &y->p;
    struct wharf_cfg *cfg = y->lc->cfg;

    if (p->error == YAML_MEMORY_ERROR)
        return wharf_cfg_oom(cfg);
    if (p->error == YAML_READER_ERROR) {
        /* libyaml knows only the byte offset of bad input (invalid UTF-8,
         * control characters): count the lines up to it. */
        unsigned long line = 1;
        int c;
        if (fseek(y->fp, 0, SEEK_SET) == 0)
            for (size_t i = 0; i < p->problem_offset && (c = getc(y->fp)) != EOF; i++)
                line += c == '\n';
        return wharf_cfg_fail(cfg, "%s:%lu: YAML error: %s (byte %zu)", display(y), line,
                              p->problem ? p->problem : "unreadable input", p->problem_offset);
    }
    return wharf_cfg_fail(cfg, "%s:%lu: YAML syntax error: %s%s%s%s", display(y),
                          (unsigned long)p->problem_mark.line + 1, p->problem ? p->problem : "invalid YAML",
                          p->context ? " (" : "", p->context ? p->context : "", p->context ? ")" : "");
}

static int next(struct yctx *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->p, ev))
        return parse_error(y);
    return 0;
}

/* The text of a scalar event, refusing NUL bytes ("\0" in quotes). */
static int scalar_text(struct yctx *y, const yaml_event_t *ev, char **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;

    *out = NULL;
    if (n && memchr(v, '\0', n))
        return wharf_cfg_fail(y->lc->cfg, "%s:%lu: a NUL byte in a value", display(y), line_of(ev));
    if (!(*out = strndup(v ? v : "", n)))
        return wharf_cfg_oom(y->lc->cfg);
    return 0;
}

static bool is_empty_plain(const yaml_event_t *ev)
{
    return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 && ev->data.scalar.plain_implicit;
}

/* Skip the node that starts with `ev` (already consumed). */
static int skip_node(struct yctx *y, yaml_event_type_t first)
{
    unsigned long depth = first == YAML_SEQUENCE_START_EVENT || first == YAML_MAPPING_START_EVENT;

    while (depth) {
        yaml_event_t ev;
        if (next(y, &ev) < 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
            depth++;
        else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
            depth--;
        yaml_event_delete(&ev);
    }
    return 0;
}

static int pair(struct yctx *y, const char *key, const yaml_event_t *ev)
{
    char *value;

    if (scalar_text(y, ev, &value) < 0)
        return -1;
    int rc = wharf_cfg_file_pair(y->lc, key, value, line_of(ev));
    free(value);
    return rc;
}

static int value_list(struct yctx *y, const char *key)
{
    for (;;) {
        yaml_event_t ev;
        int rc = 0;
        if (next(y, &ev) < 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type == YAML_SCALAR_EVENT)
            rc = pair(y, key, &ev);
        else
            rc = wharf_cfg_fail(y->lc->cfg, "%s:%lu: the list of '%s' may only hold plain values", display(y),
                                line_of(&ev), key);
        yaml_event_delete(&ev);
        if (rc < 0)
            return rc;
    }
}

static int option(struct yctx *y, const char *key)
{
    yaml_event_t ev;
    int rc;

    if (next(y, &ev) < 0)
        return -1;
    switch (ev.type) {
    case YAML_SCALAR_EVENT:
        rc = pair(y, key, &ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        rc = value_list(y, key);
        break;
    case YAML_ALIAS_EVENT:
        rc = wharf_cfg_fail(y->lc->cfg, "%s:%lu: aliases (*name) are not supported", display(y), line_of(&ev));
        break;
    default:
        rc = wharf_cfg_fail(y->lc->cfg, "%s:%lu: the value of '%s' must be a value or a list of values, not a mapping",
                            display(y), line_of(&ev), key);
        break;
    }
    yaml_event_delete(&ev);
    return rc;
}

static int options(struct yctx *y)
{
    for (;;) {
        yaml_event_t ev;
        char *key = NULL;
        int rc;
        if (next(y, &ev) < 0)
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type != YAML_SCALAR_EVENT)
            rc = wharf_cfg_fail(y->lc->cfg, "%s:%lu: option names must be plain text", display(y), line_of(&ev));
        else if ((rc = scalar_text(y, &ev, &key)) == 0 && !*key)
            rc = wharf_cfg_fail(y->lc->cfg, "%s:%lu: an empty option name", display(y), line_of(&ev));
        yaml_event_delete(&ev);
        if (rc == 0)
            rc = option(y, key);
        free(key);
        if (rc < 0)
            return rc;
    }
}

static int sections(struct yctx *y)
{
    for (;;) {
        yaml_event_t ev, val;
        char *name = NULL;
        bool wanted = false;
        int rc = 0;
        if (next(y, &ev) < 0)
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type == YAML_SCALAR_EVENT) {
            rc = scalar_text(y, &ev, &name);
            if (rc == 0)
                wanted = wharf_cfg_section_begin(y->lc, name);
        } else {
            rc = skip_node(y, ev.type); /* a section name that is not text: not ours */
        }
        yaml_event_delete(&ev);
        if (rc == 0 && (rc = next(y, &val)) == 0) {
            if (!wanted)
                rc = skip_node(y, val.type);
            else if (val.type == YAML_MAPPING_START_EVENT)
                rc = options(y);
            else if (!is_empty_plain(&val)) /* "uwsgi:" alone is an empty section */
                rc = wharf_cfg_fail(y->lc->cfg, "%s:%lu: the '%s' section must be a mapping of options", display(y),
                                    line_of(&val), name);
            yaml_event_delete(&val);
        }
        free(name);
        if (rc < 0)
            return rc;
    }
}

static int document(struct yctx *y)
{
    yaml_event_t ev;
    int rc = 0;

    if (next(y, &ev) < 0)
        return -1;
    if (ev.type == YAML_MAPPING_START_EVENT)
        rc = sections(y);
    else if (!is_empty_plain(&ev))
        rc = wharf_cfg_fail(y->lc->cfg, "%s:%lu: the top level must be a mapping of sections (uwsgi:, wharf:)",
                            display(y), line_of(&ev));
    yaml_event_delete(&ev);
    if (rc < 0)
        return rc;
    if (next(y, &ev) < 0) /* DOCUMENT-END: the parser guarantees it */
        return -1;
    yaml_event_delete(&ev);
    return 0;
}

int wharf_cfg_read_yaml(struct cfg_load *lc, FILE *fp)
{
    struct yctx y = {.lc = lc, .fp = fp};
    int rc = 0;

    if (!yaml_parser_initialize(&y.p))
        return wharf_cfg_oom(lc->cfg);
    yaml_parser_set_input_file(&y.p, fp);
    for (bool done = false; rc == 0 && !done;) {
        yaml_event_t ev;
        if ((rc = next(&y, &ev)) < 0)
            break;
        if (ev.type == YAML_STREAM_END_EVENT)
            done = true;
        yaml_event_type_t type = ev.type;
        yaml_event_delete(&ev);
        if (type == YAML_DOCUMENT_START_EVENT)
            rc = document(&y);
    }
    yaml_parser_delete(&y.p);
    return rc;
}
