/*
 * plugins/healthz/healthz.h - what the healthz plugin's files share.
 * Nothing here is exported: the .so exports only `wharf_plugin`.
 */
#ifndef WHARF_HEALTHZ_H
#define WHARF_HEALTHZ_H

#include <stdbool.h>
#include <stddef.h>

#include "wharf.h"

/* One entry of metrics-allow: an address or network, "unix" or "*". */
struct healthz_net {
    int family;              /* AF_INET, AF_INET6, 0 = any ("*"), -1 = unix */
    unsigned prefix;
    unsigned char addr[16];
};

struct healthz_conf {
    /* options, as written */
    char *healthz;
    char *metrics;
    struct wharf_list metrics_allow;

    /* derived in setup() */
    bool probes;             /* /live, /ready, /startup are served */
    char *prefix;            /* "/healthz" ("" for healthz = /) */
    size_t prefix_len;
    char *metrics_path;      /* NULL: no /metrics */
    size_t metrics_path_len;
    struct healthz_net *allow;
    size_t nallow;           /* 0: everyone may scrape */
};

/* probes.c */
int healthz_live(struct wharf_request *);
int healthz_ready(struct wharf_request *);
int healthz_startup(struct wharf_request *);

/* metrics.c */
int healthz_metrics(struct wharf_request *, struct healthz_conf *);
int healthz_metrics_worker_start(struct wharf_worker *);
void healthz_metrics_worker_stop(void);
int healthz_parse_net(const char *text, struct healthz_net *out);

/* healthz_plugin.c: a response with Cache-Control: no-store. */
int healthz_reply(struct wharf_request *, int status, const char *content_type,
                  const char *body, size_t len);

#endif
