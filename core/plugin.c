/*
 * core/plugin.c - opening plugin files and checking their ABI before
 * anything else is read from them (as Redis modules check the API version
 * in OnLoad).  Which plugins to load is decided in config.c.
 */
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

const char *wharf_plugin_canonical_name(const char *name)
{
    /* uWSGI's ini files say `plugin = python3` (or python311); they mean
     * our python plugin. */
    if (strcmp(name, "python3") == 0 || strcmp(name, "python311") == 0 ||
        strcmp(name, "python311_plugin") == 0)
        return "python";
    if (strcmp(name, "router_static") == 0)
        return "static";
    if (strcmp(name, "router_basicauth") == 0 || strcmp(name, "router_rewrite") == 0 ||
        strcmp(name, "router_redirect") == 0)
        return "route";
    return name;
}

char *wharf_plugin_path(const char *dir, const char *name)
{
    if (strchr(name, '/'))
        return wharf_xstrdup(name); /* an explicit path */
    size_t n = strlen(name);
    if (n > 3 && strcmp(name + n - 3, ".so") == 0)
        return wharf_xasprintf("%s/%s", dir, name);
    return wharf_xasprintf("%s/%s_plugin.so", dir, name);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

const struct wharf_plugin *wharf_plugin_open(const char *path, void **handle,
                                             char *err, size_t errlen)
{
    /* RTLD_LOCAL: plugins must not see each other's symbols (they talk
     * through wharf.h only).  RTLD_NOW: a missing symbol is reported here,
     * at startup, not in the middle of a request. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, errlen, "%s: cannot load plugin: %s", base_name(path),
                 why ? why : "unknown error");
        return NULL;
    }
    const struct wharf_plugin *p = dlsym(h, "wharf_plugin");
    if (!p) {
        snprintf(err, errlen, "%s: not a wharf plugin (no 'wharf_plugin' symbol)", base_name(path));
        dlclose(h);
        return NULL;
    }
    const struct wharf_plugin_header *hd = &p->header;
    if (hd->magic != WHARF_PLUGIN_MAGIC) {
        snprintf(err, errlen, "%s: not a wharf plugin (bad magic %#x)", base_name(path), hd->magic);
        dlclose(h);
        return NULL;
    }
    if (hd->abi_major != WHARF_ABI_MAJOR || hd->abi_minor > WHARF_ABI_MINOR) {
        snprintf(err, errlen, "%s: ABI %u.%u, this wharf speaks %u.%u (rebuild the plugin against this wharf's wharf.h)",
                 base_name(path), hd->abi_major, hd->abi_minor, WHARF_ABI_MAJOR, WHARF_ABI_MINOR);
        dlclose(h);
        return NULL;
    }
    /* The struct only grows within a major: an older minor may be shorter,
     * never longer than what we know. */
    if (hd->struct_size < offsetof(struct wharf_plugin, teardown) + sizeof(void *) ||
        hd->struct_size > sizeof(struct wharf_plugin)) {
        snprintf(err, errlen, "%s: plugin descriptor has size %u, expected %zu",
                 base_name(path), hd->struct_size, sizeof(struct wharf_plugin));
        dlclose(h);
        return NULL;
    }
    if (!p->name || !*p->name) {
        snprintf(err, errlen, "%s: plugin has no name", base_name(path));
        dlclose(h);
        return NULL;
    }
    unsigned valid = 0;
    for (unsigned ph = WHARF_PHASE_ROUTE; ph <= WHARF_PHASE_LOG; ph++)
        valid |= WHARF_PHASE_BIT(ph);
    if ((p->phases & ~valid) || (p->handle && !p->phases) || (!p->handle && p->phases)) {
        snprintf(err, errlen, "%s: plugin declares invalid phases %#x", base_name(path), p->phases);
        dlclose(h);
        return NULL;
    }
    *handle = h;
    return p;
}
