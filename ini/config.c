/* TEMPORARY development stub - replaced by the real reader from branch ini */
#include "../config.h"
#include "config.h"
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
struct wharf_cfg_priv { int dummy; };
static void add(struct wharf_cfg *c, const char *k, const char *v, const char *o, enum wharf_cfg_source src)
{
    c->entries = realloc(c->entries, (c->count + 1) * sizeof *c->entries);
    struct wharf_cfg_entry *e = &c->entries[c->count++];
    memset(e, 0, sizeof *e);
    e->key = strdup(k); e->value = strdup(v); e->origin = strdup(o); e->source = src;
}
void wharf_cfg_init(struct wharf_cfg *c) { memset(c, 0, sizeof *c); }
void wharf_cfg_free(struct wharf_cfg *c)
{
    for (size_t i = 0; i < c->count; i++) { free(c->entries[i].key); free(c->entries[i].value); free(c->entries[i].origin); }
    free(c->entries);
}
struct ctx { struct wharf_cfg *c; const char *path; int line; };
static int h(void *u, const char *sec, const char *k, const char *v)
{
    struct ctx *x = u;
    if (strcmp(sec, "uwsgi") && strcmp(sec, "wharf")) return 1;
    char o[512]; snprintf(o, sizeof o, "%s:?", x->path);
    add(x->c, k, v, o, WHARF_CFG_FILE);
    return 1;
}
int wharf_cfg_load_file(struct wharf_cfg *c, const char *spec, bool yaml, const char *from)
{
    (void)yaml; (void)from;
    struct ctx x = { c, spec, 0 };
    int rc = ini_parse(spec, h, &x);
    if (rc < 0) { snprintf(c->error, sizeof c->error, "wharf: cannot open config file '%s'", spec); return -1; }
    return 0;
}
int wharf_cfg_parse_args(struct wharf_cfg *c, int argc, char *const argv[], wharf_cfg_is_flag_fn f, void *arg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) { snprintf(c->error, sizeof c->error, "command line: unexpected argument '%s'", a); return -1; }
        a += 2;
        char key[256]; const char *eq = strchr(a, '=');
        const char *val;
        if (eq) { snprintf(key, sizeof key, "%.*s", (int)(eq - a), a); val = eq + 1; }
        else { snprintf(key, sizeof key, "%s", a);
            if (i + 1 < argc && strncmp(argv[i+1], "--", 2) && !f(key, arg)) val = argv[++i]; else val = "true"; }
        if (!strcmp(key, "ini")) { if (wharf_cfg_load_file(c, val, false, NULL) < 0) return -1; continue; }
        add(c, key, val, "command line", WHARF_CFG_CLI);
    }
    return 0;
}
int wharf_cfg_load_env(struct wharf_cfg *c, char *const envp[]) { (void)c; (void)envp; return 0; }
int wharf_cfg_finish(struct wharf_cfg *c) { (void)c; return 0; }
