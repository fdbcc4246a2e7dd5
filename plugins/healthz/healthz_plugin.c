/*
 * plugins/healthz/healthz_plugin.c - Kubernetes probes and Prometheus
 * metrics answered on the worker's event loop (CONTENT phase), without
 * ever reaching the application:
 *
 *     healthz = /healthz        <prefix>/live, <prefix>/ready, <prefix>/startup
 *     metrics = /metrics        Prometheus text format 0.0.4
 *     metrics-allow = 10.0.0.0/8, 127.0.0.1
 *
 * `healthz` and `metrics` take a path, or `true` for their default path
 * (/healthz, /metrics), or `off`.  Loading the plugin (any of its options,
 * or `plugin = healthz`) turns the probes on at /healthz unless
 * `healthz = off`; /metrics is served only when `metrics` is set.  Only
 * those exact paths are answered here; anything else under the prefix goes
 * on to the app.  The probes read state the core keeps in shared memory
 * (readiness checks run once a second by the core's checker process), so a
 * probe costs no more than a `return 200` in nginx.
 *
 * This file: options, setup, and which path goes where.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "healthz.h"

#define OPT(f) offsetof(struct healthz_conf, f)

static const struct wharf_option healthz_options[] = {
    { "healthz", WHARF_OPT_STRING, OPT(healthz), "/healthz",
      "path prefix of the probes <prefix>/live, /ready and /startup ('true' = /healthz, 'off' = none)",
      0, 0 },
    { "metrics", WHARF_OPT_STRING, OPT(metrics), NULL,
      "serve Prometheus metrics at this path ('true' = /metrics, 'off' = none)", 0, 0 },
    { "metrics-allow", WHARF_OPT_STRING | WHARF_OPT_LIST, OPT(metrics_allow), NULL,
      "clients that may read the metrics: addresses, CIDR nets, 'unix' or '*' (default: everyone)",
      0, 0 },
    WHARF_OPTIONS_END
};

static bool word_in(const char *v, const char *const *words)
{
    for (; *words; words++)
        if (strcasecmp(v, *words) == 0)
            return true;
    return false;
}

/* The value of `healthz` or `metrics`: a path, a yes-word (the default
 * path) or a no-word.  *out is a malloc'd path without a trailing '/', or
 * NULL when the feature is off.  Returns 0, or -1 after a config error. */
static int parse_path_option(struct wharf_server *s, const char *option, const char *value,
                             const char *def, char **out)
{
    static const char *const yes[] = { "", "true", "yes", "on", "1", NULL };
    static const char *const no[] = { "false", "no", "off", "0", "none", NULL };
    *out = NULL;
    if (!value || word_in(value, no))
        return 0;
    if (word_in(value, yes))
        value = def;
    bool ok = value[0] == '/';
    for (const char *p = value; ok && *p; p++)
        ok = (unsigned char)*p > ' ' && (unsigned char)*p < 0x7f && !strchr("?#%", *p);
    if (!ok) {
        wharf_config_error(wharf_option_origin(s, option), option,
                           "'%s' is not a path: expected one such as %s (no spaces, '?', '#' "
                           "or '%%'), 'true' or 'off'",
                           value, def);
        return -1;
    }
    size_t len = strlen(value);
    while (len > 0 && value[len - 1] == '/')
        len--;
    *out = strndup(value, len);
    return *out ? 0 : -1;
}

static int setup_allow(struct healthz_conf *c)
{
    for (size_t i = 0; i < c->metrics_allow.count; i++) {
        const struct wharf_list_item *it = &c->metrics_allow.items[i];
        char *copy = strdup(it->value), *save = NULL;
        if (!copy)
            return -1;
        for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            struct healthz_net *n = realloc(c->allow, (c->nallow + 1) * sizeof *n);
            if (!n) {
                free(copy);
                return -1;
            }
            c->allow = n;
            if (healthz_parse_net(tok, &c->allow[c->nallow]) < 0) {
                wharf_config_error(it->origin, "metrics-allow",
                                   "'%s' is not an address, a CIDR network (10.0.0.0/8, fd00::/8), "
                                   "'unix' or '*'",
                                   tok);
                free(copy);
                return -1;
            }
            c->nallow++;
        }
        free(copy);
    }
    return 0;
}

static int healthz_setup(struct wharf_server *s, void *vconf)
{
    struct healthz_conf *c = vconf;
    if (parse_path_option(s, "healthz", c->healthz, "/healthz", &c->prefix) < 0 ||
        parse_path_option(s, "metrics", c->metrics, "/metrics", &c->metrics_path) < 0)
        return WHARF_ERROR;
    c->probes = c->prefix != NULL;
    c->prefix_len = c->prefix ? strlen(c->prefix) : 0;
    if (c->metrics_path) {
        c->metrics_path_len = strlen(c->metrics_path);
        if (c->metrics_path_len == 0) {
            wharf_config_error(wharf_option_origin(s, "metrics"), "metrics",
                               "'/' would hide the whole site: give a path such as /metrics");
            return WHARF_ERROR;
        }
        static const char *const probes[] = { "/live", "/ready", "/startup" };
        for (size_t i = 0; c->probes && i < 3; i++) {
            size_t pl = strlen(probes[i]);
            if (c->metrics_path_len == c->prefix_len + pl &&
                memcmp(c->metrics_path, c->prefix, c->prefix_len) == 0 &&
                memcmp(c->metrics_path + c->prefix_len, probes[i], pl) == 0) {
                wharf_config_error(wharf_option_origin(s, "metrics"), "metrics",
                                   "'%s' is also a probe of healthz = %s: pick another path",
                                   c->metrics, c->healthz);
                return WHARF_ERROR;
            }
        }
    }
    if (c->metrics_allow.count && !c->metrics_path) {
        wharf_config_error(wharf_option_origin(s, "metrics-allow"), "metrics-allow",
                           "set without 'metrics': there are no metrics to restrict");
        return WHARF_ERROR;
    }
    if (setup_allow(c) < 0)
        return WHARF_ERROR;
    if (!wharf_server_check_only(s)) {
        if (c->probes)
            wharf_log(WHARF_LOG_INFO, "healthz: probes at %s/live, %s/ready, %s/startup", c->prefix,
                      c->prefix, c->prefix);
        if (c->metrics_path)
            wharf_log(WHARF_LOG_INFO, "healthz: Prometheus metrics at %s%s", c->metrics_path,
                      c->nallow ? " (metrics-allow)" : "");
    }
    return WHARF_OK;
}

int healthz_reply(struct wharf_request *r, int status, const char *content_type, const char *body,
                  size_t len)
{
    /* probes and metrics describe this instant: no cache may keep them */
    wharf_response_header(r, "Cache-Control", 13, "no-store", 8);
    /* a failure means the client went away: nothing else to do */
    wharf_response_simple(r, status, content_type, body, len);
    return WHARF_DONE;
}

static int method_not_allowed(struct wharf_request *r)
{
    static const char body[] = "Method Not Allowed: use GET or HEAD\n";
    wharf_response_header(r, "Allow", 5, "GET, HEAD", 9);
    return healthz_reply(r, 405, "text/plain; charset=utf-8", body, sizeof body - 1);
}

static bool path_is(const struct wharf_request *r, size_t at, const char *s, size_t n)
{
    return r->path_len == at + n && memcmp(r->path + at, s, n) == 0;
}

static int healthz_handle(struct wharf_request *r, void *vconf)
{
    struct healthz_conf *c = vconf;
    int which = 0; /* 1 live, 2 ready, 3 startup, 4 metrics */
    if (c->metrics_path && path_is(r, 0, c->metrics_path, c->metrics_path_len))
        which = 4;
    else if (c->probes && r->path_len > c->prefix_len + 1 &&
             memcmp(r->path, c->prefix, c->prefix_len) == 0 && r->path[c->prefix_len] == '/') {
        size_t at = c->prefix_len + 1;
        if (path_is(r, at, "live", 4))
            which = 1;
        else if (path_is(r, at, "ready", 5))
            which = 2;
        else if (path_is(r, at, "startup", 7))
            which = 3;
    }
    if (!which)
        return WHARF_DECLINED;
    bool get = r->method_len == 3 && memcmp(r->method, "GET", 3) == 0;
    if (!get && !r->head_only)
        return method_not_allowed(r);
    switch (which) {
    case 1: return healthz_live(r);
    case 2: return healthz_ready(r);
    case 3: return healthz_startup(r);
    default: return healthz_metrics(r, c);
    }
}

static int healthz_worker_start(struct wharf_worker *w, void *vconf)
{
    struct healthz_conf *c = vconf;
    if (c->metrics_path)
        return healthz_metrics_worker_start(w);
    return WHARF_OK;
}

static void healthz_worker_stop(struct wharf_worker *w, void *vconf)
{
    (void)w;
    (void)vconf;
    healthz_metrics_worker_stop();
}

static void healthz_teardown(struct wharf_server *s, void *vconf)
{
    (void)s;
    struct healthz_conf *c = vconf;
    free(c->prefix);
    free(c->metrics_path);
    free(c->allow);
    c->prefix = c->metrics_path = NULL;
    c->allow = NULL;
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "healthz",
    .version = "1.0",
    .options = healthz_options,
    .config_size = sizeof(struct healthz_conf),
    .setup = healthz_setup,
    .worker_start = healthz_worker_start,
    .handle = healthz_handle,
    .phases = WHARF_PHASE_BIT(WHARF_PHASE_CONTENT),
    .worker_stop = healthz_worker_stop,
    .teardown = healthz_teardown,
};
