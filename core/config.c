/*
 * core/config.c - from command line, environment and files to filled
 * option tables: reads every source (ini/), finds and loads the plugins the
 * config needs, applies each value with its typed setter, and implements
 * --help, --version and --show-config.
 */
#include "internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "../ini/cfg.h"

#ifndef WHARF_PLUGINDIR
#define WHARF_PLUGINDIR "/usr/lib/wharf/plugins"
#endif

#define CORE(field) offsetof(struct wharf_core_conf, field)

const struct wharf_option wharf_core_options[] = {
    { "processes", WHARF_OPT_INT, CORE(processes), "1", "number of worker processes", 1, 4096 },
    { "workers", WHARF_OPT_ALIAS, 0, "processes", "alias of processes (uWSGI, gunicorn)", 0, 0 },
    { "threads", WHARF_OPT_INT, CORE(threads), "1",
      "app threads per worker; 1 runs the app on the event-loop thread", 1, 1024 },
    { "plugin", WHARF_OPT_STRING | WHARF_OPT_LIST, CORE(plugins), NULL,
      "load a plugin by name (python3 = python); comma-separated names allowed", 0, 0 },
    { "plugins", WHARF_OPT_ALIAS, 0, "plugin", "alias of plugin (uWSGI)", 0, 0 },
    { "plugins-dir", WHARF_OPT_STRING, CORE(plugins_dir), WHARF_PLUGINDIR,
      "directory holding <name>_plugin.so files", 0, 0 },
    { "strict", WHARF_OPT_BOOL, CORE(strict), "true",
      "unknown options are errors (false: warnings)", 0, 0 },
    { "env", WHARF_OPT_STRING | WHARF_OPT_LIST, CORE(env), NULL,
      "set an environment variable KEY=VALUE before plugins and apps start", 0, 0 },
    { "chdir", WHARF_OPT_STRING, CORE(chdir_path), NULL,
      "change to this directory before loading apps", 0, 0 },
    { "logto", WHARF_OPT_STRING, CORE(logto), NULL, "log to this file instead of stderr", 0, 0 },
    { "log-format", WHARF_OPT_STRING, CORE(log_format), NULL,
      "access log line: uWSGI %(var) format, or 'json'", 0, 0 },
    { "disable-logging", WHARF_OPT_BOOL, CORE(disable_logging), "false",
      "no access log (errors are still logged)", 0, 0 },
    { "log-x-forwarded-for", WHARF_OPT_BOOL, CORE(log_x_forwarded_for), "false",
      "log the X-Forwarded-For address as the client address", 0, 0 },
    { "pidfile", WHARF_OPT_STRING, CORE(pidfile), NULL, "write the master pid to this file", 0, 0 },
    { "vacuum", WHARF_OPT_BOOL, CORE(vacuum), "false",
      "remove unix sockets and the pidfile on exit", 0, 0 },
    { "uid", WHARF_OPT_STRING, CORE(uid), NULL, "run as this user (name or number) after binding", 0, 0 },
    { "gid", WHARF_OPT_STRING, CORE(gid), NULL, "run as this group (name or number) after binding", 0, 0 },
    { "chmod-socket", WHARF_OPT_STRING, CORE(chmod_socket), NULL,
      "octal mode of unix sockets (bare flag: 666)", 0, 0 },
    { "listen", WHARF_OPT_INT, CORE(listen_backlog), "1024", "listen(2) backlog of sockets", 1, 65535 },
    { "graceful-timeout", WHARF_OPT_DURATION, CORE(graceful_timeout), "30",
      "on SIGTERM/reload, how long in-flight requests may take to finish", 0, 86400000 },
    { "worker-reload-mercy", WHARF_OPT_ALIAS, 0, "graceful-timeout", "alias of graceful-timeout (uWSGI)", 0, 0 },
    { "reload-mercy", WHARF_OPT_ALIAS, 0, "graceful-timeout", "alias of graceful-timeout (uWSGI)", 0, 0 },
    { "shutdown-delay", WHARF_OPT_DURATION, CORE(shutdown_delay), "0",
      "on SIGTERM, keep serving this long with readiness failing before closing the sockets", 0, 3600000 },
    { "max-requests", WHARF_OPT_INT, CORE(max_requests), "0",
      "replace a worker after this many requests (0 = never)", 0, 2000000000 },
    { "max-requests-delta", WHARF_OPT_INT, CORE(max_requests_delta), "0",
      "add worker id x delta to max-requests (uWSGI)", 0, 2000000000 },
    { "max-requests-jitter", WHARF_OPT_INT, CORE(max_requests_jitter), "0",
      "add a random 0..jitter to max-requests (gunicorn)", 0, 2000000000 },
    { "reload-on-rss", WHARF_OPT_INT, CORE(reload_on_rss), "0",
      "replace a worker whose RSS exceeds this many MB (0 = never)", 0, 1048576 },
    { "touch-reload", WHARF_OPT_STRING | WHARF_OPT_LIST, CORE(touch_reload), NULL,
      "reload gracefully when this file's mtime changes", 0, 0 },
    { "touch-chain-reload", WHARF_OPT_STRING | WHARF_OPT_LIST, CORE(touch_chain_reload), NULL,
      "same as touch-reload: reloads always replace workers one by one", 0, 0 },
    { "procname-prefix", WHARF_OPT_STRING, CORE(procname_prefix), NULL,
      "prefix of process names shown by ps", 0, 0 },

    /* uWSGI options whose behaviour wharf always has or does not need: a
     * working uwsgi.ini must not fail because wharf is better by default. */
    { "master", WHARF_OPT_COMPAT, 0, NULL, "always on: wharf always runs a master", 0, 0 },
    { "die-on-term", WHARF_OPT_COMPAT, 0, NULL, "always on: SIGTERM is a graceful stop", 0, 0 },
    { "enable-threads", WHARF_OPT_COMPAT, 0, NULL, "always on: app threads are always enabled", 0, 0 },
    { "thunder-lock", WHARF_OPT_COMPAT, 0, NULL, "not needed: workers accept with EPOLLEXCLUSIVE", 0, 0 },
    { "single-interpreter", WHARF_OPT_COMPAT, 0, NULL, "always on: one interpreter per worker", 0, 0 },
    { "offload-threads", WHARF_OPT_COMPAT, 0, NULL, "not needed: files are sent from the event loop", 0, 0 },
    { "honour-range", WHARF_OPT_COMPAT, 0, NULL, "always on: static files honour Range", 0, 0 },
    { "auto-procname", WHARF_OPT_COMPAT, 0, NULL, "always on: processes are named by role", 0, 0 },
    { "memory-report", WHARF_OPT_COMPAT, 0, NULL, "not needed: /metrics reports worker RSS", 0, 0 },
    { "no-orphans", WHARF_OPT_COMPAT, 0, NULL, "always on: workers exit with their master", 0, 0 },
    { "cheap", WHARF_OPT_COMPAT, 0, NULL, "not needed: workers start at once", 0, 0 },
    { "hook-master-start", WHARF_OPT_COMPAT, 0, NULL, "not supported; accepted and ignored", 0, 0 },

    /* command-line actions */
    { "help", WHARF_OPT_BOOL, CORE(help), "false", "(command line) print this help and exit", 0, 0 },
    { "version", WHARF_OPT_BOOL, CORE(version), "false", "(command line) print the version and exit", 0, 0 },
    { "show-config", WHARF_OPT_BOOL, CORE(show_config), "false",
      "(command line) print the merged config with each value's origin and exit", 0, 0 },
    { "check-config", WHARF_OPT_BOOL, CORE(check_config), "false",
      "(command line) validate the config and plugin setups, then exit 0 or 1", 0, 0 },
    WHARF_OPTIONS_END
};

static bool is_action(const char *name)
{
    return strcmp(name, "help") == 0 || strcmp(name, "version") == 0 ||
           strcmp(name, "show-config") == 0 || strcmp(name, "check-config") == 0;
}

/* Options of plugins that could not be found, so that "unknown option" can
 * say which plugin is missing instead of suggesting a typo.  Only the
 * options people meet first; the plugins' own tables stay the truth. */
static const struct {
    const char *option, *plugin, *package;
} known_owners[] = {
    { "http-socket", "http", "wharf" },
    { "module", "python", "wharf-plugin-python3" },
    { "wsgi-file", "python", "wharf-plugin-python3" },
    { "wsgi", "python", "wharf-plugin-python3" },
    { "static-map", "static", "wharf" },
    { "route", "route", "wharf" },
    { "harakiri", "harakiri", "wharf" },
    { "healthz", "healthz", "wharf" },
    { "metrics", "healthz", "wharf" },
    { "migrate-dsn", "migrate", "wharf-plugin-migrate" },
    { "session-redis", "redis_session", "wharf-plugin-redis-session" },
};

/* ------------------------------------------------------------ plugins */

static void index_free(struct wharf_server *s)
{
    for (size_t i = 0; i < s->nindex; i++) {
        struct wharf_plugin_index_entry *e = &s->index[i];
        bool loaded = false;
        for (size_t j = 0; j < s->nplugins; j++)
            if (s->plugins[j].handle == e->handle)
                loaded = true;
        if (e->handle && !loaded)
            dlclose(e->handle);
        free(e->name);
        free(e->path);
        free(e->unusable);
    }
    free(s->index);
    s->index = NULL;
    s->nindex = 0;
    s->indexed = false;
}

/* Open every *_plugin.so of plugins-dir to learn which options it owns.
 * Done once, only when a config uses an option no loaded plugin knows. */
static void index_plugins(struct wharf_server *s)
{
    if (s->indexed)
        return;
    s->indexed = true;
    DIR *d = opendir(s->conf.plugins_dir);
    if (!d)
        return;
    struct dirent *de;
    size_t cap = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 10 || strcmp(de->d_name + n - 10, "_plugin.so") != 0)
            continue;
        if (s->nindex == cap) {
            cap = cap ? cap * 2 : 16;
            s->index = wharf_xrealloc(s->index, cap * sizeof *s->index);
        }
        struct wharf_plugin_index_entry *e = &s->index[s->nindex++];
        memset(e, 0, sizeof *e);
        e->name = wharf_xstrndup(de->d_name, n - 10);
        e->path = wharf_xasprintf("%s/%s", s->conf.plugins_dir, de->d_name);
        char err[512];
        e->p = wharf_plugin_open(e->path, &e->handle, err, sizeof err);
        if (!e->p)
            e->unusable = wharf_xstrdup(err);
    }
    closedir(d);
}

void wharf_plugins_index_all(struct wharf_server *s)
{
    index_plugins(s);
}

static struct wharf_plugin_index_entry *index_owner(struct wharf_server *s, const char *option)
{
    index_plugins(s);
    for (size_t i = 0; i < s->nindex; i++) {
        const struct wharf_plugin *p = s->index[i].p;
        if (!p || !p->options)
            continue;
        for (const struct wharf_option *o = p->options; o->name; o++)
            if (strcmp(o->name, option) == 0)
                return &s->index[i];
    }
    return NULL;
}

static int find_loaded(struct wharf_server *s, const char *name)
{
    for (size_t i = 0; i < s->nplugins; i++)
        if (strcmp(s->plugins[i].p->name, name) == 0)
            return (int)i;
    return -1;
}

/* Load plugin `name` (canonical) unless loaded; returns its index or -1
 * after printing "<origin>: plugin 'x': <reason>". */
static int load_plugin(struct wharf_server *s, const char *name, const char *origin, bool explicit_load)
{
    name = wharf_plugin_canonical_name(name);
    int have = find_loaded(s, name);
    if (have >= 0) {
        s->plugins[have].explicit_load |= explicit_load;
        return have;
    }
    if (s->nplugins == WHARF_MAX_PLUGINS) {
        wharf_config_error(origin, "plugin", "too many plugins (at most %d)", WHARF_MAX_PLUGINS);
        return -1;
    }
    char *path = wharf_plugin_path(s->conf.plugins_dir, name);
    void *handle = NULL;
    const struct wharf_plugin *p = NULL;
    char err[600];
    for (size_t i = 0; i < s->nindex; i++)
        if (strcmp(s->index[i].path, path) == 0 && s->index[i].p) {
            p = s->index[i].p;
            handle = s->index[i].handle;
        }
    if (!p) {
        if (access(path, F_OK) != 0) {
            wharf_config_error(origin, "plugin", "'%s': %s not found (looked in %s)", name,
                               strrchr(path, '/') ? strrchr(path, '/') + 1 : path,
                               s->conf.plugins_dir);
            free(path);
            return -1;
        }
        p = wharf_plugin_open(path, &handle, err, sizeof err);
        if (!p) {
            wharf_config_error(origin, "plugin", "%s", err);
            free(path);
            return -1;
        }
    }
    if (find_loaded(s, p->name) >= 0) { /* file named differently from its plugin */
        free(path);
        return find_loaded(s, p->name);
    }
    size_t idx = s->nplugins;
    struct wharf_loaded_plugin *lp = &s->plugins[idx];
    lp->p = p;
    lp->handle = handle;
    lp->path = path;
    lp->conf = p->config_size ? wharf_xcalloc(1, p->config_size) : NULL;
    lp->explicit_load = explicit_load;
    size_t first = s->options.count;
    if (wharf_options_register(&s->options, p->options, (int)idx, p->name, lp->conf) < 0)
        return -1;
    s->nplugins++;
    /* defaults of the new options only */
    struct wharf_options sub = { s->options.defs + first, s->options.count - first, 0 };
    if (wharf_options_apply_defaults(&sub) < 0)
        return -1;
    return (int)idx;
}

/* ------------------------------------------------------------ entries */

static bool is_flag_cb(const char *key, void *arg)
{
    struct wharf_server *s = arg;
    struct wharf_optdef *d = wharf_options_find(&s->options, key);
    if (d) {
        unsigned t = d->target->type & WHARF_OPT_TYPE_MASK;
        return t == WHARF_OPT_BOOL || t == WHARF_OPT_COMPAT;
    }
    struct wharf_plugin_index_entry *e = index_owner(s, key);
    if (!e)
        return false;
    for (const struct wharf_option *o = e->p->options; o->name; o++)
        if (strcmp(o->name, key) == 0) {
            unsigned t = o->type & WHARF_OPT_TYPE_MASK;
            if (t == WHARF_OPT_ALIAS && o->def)
                return is_flag_cb(o->def, arg);
            return t == WHARF_OPT_BOOL || t == WHARF_OPT_COMPAT;
        }
    return false;
}

static const char *best_suggestion(struct wharf_server *s, const char *key)
{
    const char *best = NULL;
    unsigned bestd = 1000;
    size_t len = strlen(key);
    unsigned limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    for (size_t i = 0; i < s->options.count; i++) {
        unsigned dd = wharf_edit_distance(key, s->options.defs[i].opt->name);
        if (dd < bestd) {
            bestd = dd;
            best = s->options.defs[i].opt->name;
        }
    }
    for (size_t i = 0; i < s->nindex; i++) {
        if (!s->index[i].p || !s->index[i].p->options)
            continue;
        for (const struct wharf_option *o = s->index[i].p->options; o->name; o++) {
            unsigned dd = wharf_edit_distance(key, o->name);
            if (dd < bestd) {
                bestd = dd;
                best = o->name;
            }
        }
    }
    return bestd <= limit ? best : NULL;
}

static void unknown_option(struct wharf_server *s, const struct wharf_cfg_entry *e, bool warn_only)
{
    char msg[1024];
    const char *sugg = best_suggestion(s, e->key);
    const char *owner = NULL, *package = NULL;
    for (size_t i = 0; i < sizeof known_owners / sizeof known_owners[0]; i++)
        if (strcmp(known_owners[i].option, e->key) == 0) {
            owner = known_owners[i].plugin;
            package = known_owners[i].package;
        }
    /* the owner's file may be there but refused (ABI, not a plugin...):
     * then "not found" would send the user looking in the wrong place */
    const char *unusable = NULL;
    for (size_t i = 0; owner && i < s->nindex; i++)
        if (!s->index[i].p && strcmp(s->index[i].name, owner) == 0)
            unusable = s->index[i].unusable;
    if (unusable)
        snprintf(msg, sizeof msg, "option '%s' needs the %s plugin, which cannot be loaded: %s",
                 e->key, owner, unusable);
    else if (owner)
        snprintf(msg, sizeof msg,
                 "option '%s' needs the %s plugin, but %s_plugin.so was not found in %s "
                 "(install %s, or set plugins-dir)",
                 e->key, owner, owner, s->conf.plugins_dir, package);
    else if (sugg)
        snprintf(msg, sizeof msg, "unknown option '%s' (did you mean '%s'?)", e->key, sugg);
    else
        snprintf(msg, sizeof msg, "unknown option '%s'", e->key);
    if (warn_only)
        wharf_log(WHARF_LOG_WARN, "%s: %s (ignored%s)", e->origin, msg,
                  e->source == WHARF_CFG_ENV ? "" : ": strict = false");
    else
        wharf_config_error(e->origin, NULL, "%s", msg);
}

static int source_rank(const struct wharf_cfg_entry *e)
{
    return (int)e->source;
}

/* Stable order: files, then environment, then command line, each in
 * reading order.  Single values take the last one (default < file < env <
 * command line); list items accumulate in this order. */
static struct wharf_cfg_entry **order_entries(struct wharf_cfg *cfg)
{
    struct wharf_cfg_entry **v = wharf_xcalloc(cfg->count + 1, sizeof *v);
    size_t n = 0;
    for (int rank = WHARF_CFG_FILE; rank <= WHARF_CFG_CLI; rank++)
        for (size_t i = 0; i < cfg->count; i++)
            if (source_rank(&cfg->entries[i]) == rank)
                v[n++] = &cfg->entries[i];
    return v;
}

static int apply_entry(struct wharf_server *s, struct wharf_optdef *d, const struct wharf_cfg_entry *e)
{
    char err[1024];
    if (wharf_options_set(&s->options, d, e->value, e->origin, err, sizeof err) < 0) {
        wharf_config_error(e->origin, e->key, "%s", err);
        return -1;
    }
    return 0;
}

/* Keep the origin strings alive as long as the server: the cfg is freed. */
static char *keep(struct wharf_server *s, const char *str)
{
    (void)s;
    return wharf_xstrdup(str);
}

static int load_explicit_plugins(struct wharf_server *s)
{
    const struct wharf_optdef *d = wharf_options_find(&s->options, "plugin");
    for (size_t i = 0; i < d->nitems; i++) {
        char *names = wharf_xstrdup(d->items[i].value);
        char *save = NULL;
        for (char *tok = strtok_r(names, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            if (load_plugin(s, tok, d->items[i].origin, true) < 0) {
                free(names);
                return -1;
            }
        }
        free(names);
    }
    return 0;
}

static void build_phase_tables(struct wharf_server *s)
{
    memset(s->nphase_handlers, 0, sizeof s->nphase_handlers);
    s->nchecks = 0;
    for (size_t i = 0; i < s->nplugins; i++) {
        const struct wharf_plugin *p = s->plugins[i].p;
        for (unsigned ph = WHARF_PHASE_ROUTE; ph <= WHARF_PHASE_LOG; ph++)
            if (p->handle && (p->phases & WHARF_PHASE_BIT(ph)))
                s->phase_handlers[ph][s->nphase_handlers[ph]++] = i;
        /* hooks past the plugin's struct_size do not exist in older minors */
        if (p->check && s->nchecks < WHARF_MAX_CHECKS)
            s->check_plugins[s->nchecks++] = i;
    }
}

int wharf_config_load(struct wharf_server *s, int argc, char **argv, char **envp)
{
    wharf_options_init(&s->options);
    if (wharf_options_register(&s->options, wharf_core_options, -1, "core", &s->conf) < 0 ||
        wharf_options_apply_defaults(&s->options) < 0)
        return 1;
    /* plugins-dir may come from the environment before anything is read, so
     * that the command-line parser can ask plugins which options are flags */
    const char *envdir = getenv("WHARF_PLUGINS_DIR");
    if (envdir && *envdir)
        s->conf.plugins_dir = wharf_xstrdup(envdir);

    struct wharf_cfg cfg;
    wharf_cfg_init(&cfg);
    int rc = 1;
    struct wharf_cfg_entry **order = NULL;
    if (wharf_cfg_parse_args(&cfg, argc, argv, is_flag_cb, s) < 0 ||
        wharf_cfg_load_env(&cfg, envp) < 0 || wharf_cfg_finish(&cfg) < 0) {
        fprintf(stderr, "%s\n", cfg.error);
        goto out;
    }
    order = order_entries(&cfg);

    /* Pass 1: core options (they say where plugins are and which to load). */
    for (size_t i = 0; order[i]; i++) {
        struct wharf_cfg_entry *e = order[i];
        struct wharf_optdef *d = wharf_options_find(&s->options, e->key);
        if (d && d->owner < 0) {
            char *origin = keep(s, e->origin);
            struct wharf_cfg_entry copy = *e;
            copy.origin = origin;
            if (apply_entry(s, d, &copy) < 0)
                goto out;
        }
    }
    if (s->indexed && strcmp(s->conf.plugins_dir, envdir ? envdir : WHARF_PLUGINDIR) != 0)
        index_free(s); /* indexed the wrong directory for flags: start over */
    if (s->conf.help || s->conf.version) {
        rc = 2;
        goto out;
    }
    if (load_explicit_plugins(s) < 0)
        goto out;

    /* Pass 2: every other key finds its plugin, loading it on first use. */
    for (size_t i = 0; order[i]; i++) {
        struct wharf_cfg_entry *e = order[i];
        struct wharf_optdef *d = wharf_options_find(&s->options, e->key);
        if (d && d->owner < 0)
            continue;
        if (!d) {
            struct wharf_plugin_index_entry *ie = index_owner(s, e->key);
            if (ie) {
                if (load_plugin(s, ie->name, e->origin, false) < 0)
                    goto out;
                d = wharf_options_find(&s->options, e->key);
            }
        }
        if (!d) {
            if (e->placeholder_used)
                continue; /* a %(var) of the user's own, as uWSGI allows */
            /* The environment is shared with other programs (a base image
             * may set UWSGI_* for its own tools): there an unknown name
             * only warns.  Files and the command line are ours: strict. */
            bool warn_only = !s->conf.strict || e->source == WHARF_CFG_ENV;
            unknown_option(s, e, warn_only);
            if (!warn_only)
                goto out;
            continue;
        }
        struct wharf_cfg_entry copy = *e;
        copy.origin = keep(s, e->origin);
        if (apply_entry(s, d, &copy) < 0)
            goto out;
    }
    wharf_options_finish(&s->options);
    build_phase_tables(s);

    /* keep argv for re-executing on reload */
    s->argc = argc;
    s->argv = argv;
    rc = s->conf.show_config ? 2 : 0;
out:
    free(order);
    wharf_cfg_free(&cfg);
    if (s->indexed)
        index_free(s);
    return rc;
}

/* ------------------------------------------------------------ output */

static void print_table(FILE *f, const char *title, const struct wharf_option *t)
{
    fprintf(f, "\n%s:\n", title);
    for (const struct wharf_option *o = t; o && o->name; o++) {
        unsigned type = o->type & WHARF_OPT_TYPE_MASK;
        char head[96];
        if (type == WHARF_OPT_ALIAS)
            snprintf(head, sizeof head, "  --%s", o->name);
        else
            snprintf(head, sizeof head, "  --%s <%s>", o->name, wharf_option_type_name(o->type));
        fprintf(f, "%-40s %s", head, o->help ? o->help : "");
        if (o->def && type != WHARF_OPT_ALIAS && type != WHARF_OPT_BOOL)
            fprintf(f, " [default: %s]", o->def);
        else if (o->def && type == WHARF_OPT_BOOL && strcmp(o->def, "true") == 0)
            fprintf(f, " [default: true]");
        fputc('\n', f);
    }
}

void wharf_config_print_help(struct wharf_server *s, FILE *f)
{
    fprintf(f,
            "Usage: wharf [--ini FILE[:SECTION]] [--yaml FILE] [--OPTION VALUE ...]\n"
            "\n"
            "Runs WSGI apps from uWSGI-style config.  Every option can be given in an ini\n"
            "file ([uwsgi] or [wharf] section), as --option value, or as the environment\n"
            "variable WHARF_OPTION (or UWSGI_OPTION).  Single values: default < file <\n"
            "environment < command line; list options (repeatable) accumulate.\n"
            "Signals: TERM graceful stop, HUP reload, USR2 binary upgrade, INT/QUIT fast stop.\n");
    print_table(f, "core", wharf_core_options);
    index_plugins(s);
    for (size_t i = 0; i < s->nindex; i++) {
        char title[160];
        if (s->index[i].p) {
            snprintf(title, sizeof title, "%s plugin (%s)", s->index[i].p->name,
                     s->index[i].p->version ? s->index[i].p->version : "?");
            print_table(f, title, s->index[i].p->options);
        } else {
            fprintf(f, "\n%s plugin: unusable: %s\n", s->index[i].name, s->index[i].unusable);
        }
    }
    fprintf(f, "\nPlugins are looked up in %s.\n", s->conf.plugins_dir);
    index_free(s);
}

static void show_owner(struct wharf_server *s, FILE *f, int owner, const char *title)
{
    fprintf(f, "\n[%s]\n", title);
    for (size_t i = 0; i < s->options.count; i++) {
        const struct wharf_optdef *d = &s->options.defs[i];
        unsigned type = d->opt->type & WHARF_OPT_TYPE_MASK;
        if (d->owner != owner || type == WHARF_OPT_ALIAS || is_action(d->opt->name))
            continue;
        if (type == WHARF_OPT_COMPAT) {
            if (d->set)
                fprintf(f, "%-24s = %-32s ; %s (%s)\n", d->opt->name, "true", d->origin, d->opt->help);
            continue;
        }
        if (d->opt->type & WHARF_OPT_LIST) {
            if (d->nitems == 0) {
                fprintf(f, "%-24s = %-32s ; default (empty)\n", d->opt->name, "");
                continue;
            }
            for (size_t k = 0; k < d->nitems; k++)
                fprintf(f, "%-24s = %-32s ; %s\n", d->opt->name, d->items[k].value,
                        d->set ? d->items[k].origin : "default");
            continue;
        }
        char *v = wharf_option_value_text(d);
        fprintf(f, "%-24s = %-32s ; %s\n", d->opt->name, v, d->origin);
        free(v);
    }
}

void wharf_config_show(struct wharf_server *s, FILE *f)
{
    fprintf(f, "; wharf %s merged configuration: value ; origin\n", PACKAGE_VERSION);
    show_owner(s, f, -1, "core");
    for (size_t i = 0; i < s->nplugins; i++) {
        char title[128];
        snprintf(title, sizeof title, "%s plugin: %s", s->plugins[i].p->name, s->plugins[i].path);
        show_owner(s, f, (int)i, title);
    }
}

/* ------------------------------------------------------------ API */

WHARF_EXPORT const char *wharf_option_origin(struct wharf_server *s, const char *option)
{
    struct wharf_optdef *d = wharf_options_find(&s->options, option);
    return d ? d->origin : "unknown";
}

WHARF_EXPORT bool wharf_option_is_set(struct wharf_server *s, const char *option)
{
    struct wharf_optdef *d = wharf_options_find(&s->options, option);
    return d && d->set;
}

WHARF_EXPORT uint64_t wharf_list_item_seq(struct wharf_server *s, const struct wharf_list_item *item)
{
    for (size_t i = 0; i < s->options.count; i++) {
        const struct wharf_optdef *d = &s->options.defs[i];
        if (!(d->opt->type & WHARF_OPT_LIST) || !d->nitems)
            continue;
        if (item >= d->items && item < d->items + d->nitems)
            return d->item_seq[item - d->items];
    }
    return 0;
}

WHARF_EXPORT unsigned wharf_server_processes(struct wharf_server *s)
{
    return (unsigned)s->conf.processes;
}

WHARF_EXPORT unsigned wharf_server_threads(struct wharf_server *s)
{
    return (unsigned)s->conf.threads;
}

WHARF_EXPORT bool wharf_server_stopping(struct wharf_server *s)
{
    return s->sb && atomic_load(&s->sb->stopping);
}

WHARF_EXPORT bool wharf_server_check_only(struct wharf_server *s)
{
    return s->check_only;
}
