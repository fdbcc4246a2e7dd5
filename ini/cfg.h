/*
 * ini/cfg.h - reading configuration sources into one ordered list of
 * key = value entries, with uWSGI's semantics.  Internal to wharf (not part
 * of the plugin API).
 *
 * The reader knows nothing about option types or plugins: it turns ini and
 * yaml files, the command line and the environment into entries, resolves
 * includes, and expands $(ENV), @(file), %(placeholder) and the magic %x
 * variables once everything is read.  The core then applies the entries to
 * the option tables (core/options.c), where single-valued options take the
 * last value by precedence (file < env < command line) and list options
 * get one item per entry.
 */
#ifndef WHARF_INI_CONFIG_H
#define WHARF_INI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum wharf_cfg_source {
    WHARF_CFG_FILE = 1, /* ini or yaml file (also when named on the command line) */
    WHARF_CFG_ENV = 2,  /* WHARF_<OPTION> / UWSGI_<OPTION> */
    WHARF_CFG_CLI = 3,  /* --option value */
};

struct wharf_cfg_entry {
    char *key;      /* option name as written, with '_' turned into '-' for
                       env and command line ("http-socket") */
    char *value;    /* fully expanded value; "true" for a bare --flag */
    char *origin;   /* "app.ini:12", "env WHARF_PROCESSES", "command line" */
    enum wharf_cfg_source source;
    bool placeholder_used; /* some %(key) referred to this key: in strict
                              mode such a key need not be an option */
};

struct wharf_cfg_priv;

struct wharf_cfg {
    struct wharf_cfg_entry *entries; /* in reading order */
    size_t count;
    char error[1024];                /* one line, set when a call fails */
    struct wharf_cfg_priv *priv;
};

/* Tells the command-line parser whether `--key` takes no value (a bool
 * option): then `--key next` keeps `next` as the next argument. */
typedef bool (*wharf_cfg_is_flag_fn)(const char *key, void *arg);

void wharf_cfg_init(struct wharf_cfg *);
void wharf_cfg_free(struct wharf_cfg *);

/* Command line (argv[0] skipped): `--key value`, `--key=value`, `--flag`,
 * `--ini file[:section]`, `--yaml file[:section]` (loaded at that point,
 * entries of source FILE), and a bare argument ending in .ini/.yml/.yaml is
 * loaded as a config file (as `uwsgi app.ini`).  -h is --help, -V is
 * --version.  Returns 0, or -1 with cfg->error set. */
int wharf_cfg_parse_args(struct wharf_cfg *, int argc, char *const argv[],
                         wharf_cfg_is_flag_fn is_flag, void *arg);

/* Environment: every WHARF_<KEY>=v and UWSGI_<KEY>=v (KEY upper-case with
 * '_' for '-') becomes an entry of source ENV; WHARF_INI / UWSGI_INI (and
 * _YAML) load files.  Names starting with WHARF__ (two underscores) are the
 * core's internal state and are skipped.  Returns 0 or -1. */
int wharf_cfg_load_env(struct wharf_cfg *, char *const envp[]);

/* Load one file.  `spec` is "path" or "path:section"; without a section
 * the [uwsgi] and [wharf] sections are read (yaml: the `uwsgi:` and
 * `wharf:` mappings).  `yaml` selects the yaml reader (otherwise chosen by
 * the .yml/.yaml extension).  `from` is the origin of the request to load
 * it (for error messages), or NULL.  Returns 0 or -1. */
int wharf_cfg_load_file(struct wharf_cfg *, const char *spec, bool yaml,
                        const char *from);

/* Expand $(ENV), @(file), %(placeholder) and magic variables in every
 * entry.  Call once, after all sources are read.  Returns 0 or -1. */
int wharf_cfg_finish(struct wharf_cfg *);

#endif
