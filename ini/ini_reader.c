/*
 * ini/ini_reader.c - ini files, read through inih with uWSGI's rules
 * (core/ini.c).
 *
 * Why inih gets stand-ins instead of the real lines.  Debian's libinih is
 * built with INI_MAX_LINE 200 on the stack, INI_ALLOW_MULTILINE 1, section
 * names cut to 49 bytes, ':' accepted as a separator, only ';' as an
 * inline comment and no line numbers for the handler.  Fed real lines it
 * would silently split a 300-byte value into two lines, glue an indented
 * line onto the previous value (uWSGI reads it as its own key), cut long
 * section names, read "a:b = c" as key "a", and leave "# comment" in
 * values.  So our reader function (ini_parse_stream() takes one) reads
 * each whole physical line itself, counts it, splits it the way uWSGI does
 * and keeps the result in `struct ini_state` (the side table); inih gets a
 * short line of fixed shape that means the same thing: "" for a blank or
 * comment line, "[sN]" for a section header, "k=N" for a key line, N being
 * the line number.  None of these is ever long, indented or ambiguous.
 * inih calls the handler for a key line before it asks for the next line,
 * so the handler finds that line's key and value in the state; it checks N
 * to be sure the two never get out of step.
 *
 * The line rules, uWSGI's unless noted:
 *  - keys and values are trimmed of spaces, tabs and CRs;
 *  - lines whose first non-blank is ';' or '#' are comments;
 *  - a key line without '=' is a flag: `master` is `master = true`;
 *  - the key ends at the first '=' (':' is no separator);
 *  - every section with the wanted name is read, in file order, also when
 *    it appears more than once; lines before the first header are not;
 *  - (wharf) a ';' or '#' that follows a value and a space or tab starts
 *    a comment: `static-map = /static=/app/static  ; (if needed)` is
 *    "/static=/app/static".  uWSGI keeps the comment in the value, which
 *    no one means (inih cuts at " ;" too).  A ';' or '#' right after a
 *    non-blank stays ("a;b"), and so does one that starts the value
 *    (`color = #fff`, as uWSGI); a value that needs " ;" or " #" inside
 *    can come from $(ENV) or @(file), which are expanded after this;
 *  - (wharf) a header must end with ']' (uWSGI drops its last character,
 *    whatever it is), a UTF-8 BOM is skipped, a NUL byte is an error, and
 *    a line may be up to 1 MiB long (longer is an error, never a cut).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* see config.c */
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "cfg_internal.h"

enum line_kind { LINE_NONE, LINE_SECTION, LINE_PAIR };

struct ini_state {
    struct cfg_load *lc;
    FILE *fp;
    struct cfg_buf line;   /* the current physical line, whole */
    unsigned long lineno;
    enum line_kind kind;
    const char *key;       /* LINE_PAIR: into line.s */
    const char *value;     /* LINE_PAIR: into line.s; NULL for a bare key */
    bool wanted;           /* inside a section we read */
    bool stop;             /* an error is recorded: give inih no more lines */
};

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static char *lstrip(char *s)
{
    while (blank(*s))
        s++;
    return s;
}

static char *rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Cut at the first ';' or '#' that follows a space or tab (never at the
 * first character: callers pass text that starts with a non-blank). */
static void cut_comment(char *s)
{
    for (char *p = s; *p; p++) {
        if ((*p == ';' || *p == '#') && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
    }
}

static int lex_line(struct ini_state *st)
{
    struct wharf_cfg *cfg = st->lc->cfg;
    const char *display = st->lc->file->display;
    char *s = st->line.s;

    st->kind = LINE_NONE;
    if (memchr(s, '\0', st->line.len))
        return wharf_cfg_fail(cfg, "%s:%lu: the line contains a NUL byte", display, st->lineno);
    if (st->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    s = rstrip(lstrip(s));
    if (!*s || *s == ';' || *s == '#')
        return 0;
    if (*s == '[') {
        cut_comment(s);
        rstrip(s);
        size_t n = strlen(s);
        if (n < 2 || s[n - 1] != ']')
            return wharf_cfg_fail(cfg, "%s:%lu: the section header '%s' has no closing ']'", display,
                                  st->lineno, s);
        s[n - 1] = '\0';
        st->wanted = wharf_cfg_section_begin(st->lc, s + 1);
        st->kind = LINE_SECTION;
        return 0;
    }
    char *eq = strchr(s, '=');
    if (eq) {
        *eq = '\0';
        st->key = rstrip(s);
        /* lstrip first: a value that starts with ';' or '#' is a value */
        char *v = lstrip(eq + 1);
        cut_comment(v);
        st->value = rstrip(v);
    } else {
        cut_comment(s);
        st->key = rstrip(s);
        st->value = NULL;
    }
    if (!*st->key)
        return wharf_cfg_fail(cfg, "%s:%lu: '=' with no key before it", display, st->lineno);
    st->kind = LINE_PAIR;
    return 0;
}

static char *line_reader(char *buf, int num, void *stream)
{
    struct ini_state *st = stream;
    bool too_long;

    if (st->stop)
        return NULL;
    if (num < 32) {
        wharf_cfg_fail(st->lc->cfg, "%s: internal error: inih offers a %d-byte line buffer",
                       st->lc->file->display, num);
        st->stop = true;
        return NULL;
    }
    int r = wharf_cfg_read_line(st->fp, &st->line, &too_long);
    if (r == 0)
        return NULL;
    if (r < 0) {
        wharf_cfg_fail(st->lc->cfg, "%s: read error after line %lu: %s", st->lc->file->display, st->lineno,
                       strerror(errno));
        st->stop = true;
        return NULL;
    }
    st->lineno++;
    if (too_long) {
        wharf_cfg_fail(st->lc->cfg, "%s:%lu: the line is longer than %d bytes", st->lc->file->display,
                       st->lineno, WHARF_CFG_MAX_VALUE);
        st->stop = true;
        return NULL;
    }
    if (lex_line(st) < 0) {
        st->stop = true;
        return NULL;
    }
    switch (st->kind) {
    case LINE_NONE:
        buf[0] = '\0';
        break;
    case LINE_SECTION:
        snprintf(buf, (size_t)num, "[s%lu]", st->lineno);
        break;
    case LINE_PAIR:
        snprintf(buf, (size_t)num, "k=%lu", st->lineno);
        break;
    }
    return buf;
}

static int pair_handler(void *user, const char *section, const char *name, const char *value)
{
    struct ini_state *st = user;
    char *end;

    (void)section;
    if (st->stop)
        return 0;
    if (st->kind != LINE_PAIR || strcmp(name, "k") != 0 || strtoul(value, &end, 10) != st->lineno || *end) {
        wharf_cfg_fail(st->lc->cfg, "%s:%lu: internal error: inih and the line reader are out of step",
                       st->lc->file->display, st->lineno);
        st->stop = true;
        return 0;
    }
    if (!st->wanted)
        return 1;
    if (wharf_cfg_file_pair(st->lc, st->key, st->value, st->lineno) < 0) {
        st->stop = true;
        return 0;
    }
    return 1;
}

int wharf_cfg_read_ini(struct cfg_load *lc, FILE *fp)
{
    struct ini_state st = {.lc = lc, .fp = fp};

    int ret = ini_parse_stream(line_reader, &st, pair_handler, &st);
    free(st.line.s);
    if (st.stop)
        return -1;
    if (ret != 0) /* cannot happen with our stand-ins, but never ignore it */
        return wharf_cfg_fail(lc->cfg, "%s:%d: inih could not parse this line", lc->file->display, ret);
    return 0;
}
