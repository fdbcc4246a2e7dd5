/*
 * plugins/http/http.h - what the http plugin's files share.
 */
#ifndef WHARF_HTTP_H
#define WHARF_HTTP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "http_parser.h"
#include "wharf.h"

/* A network allowed to set X-Forwarded-For/-Proto (forwarded-allow-ips). */
struct http_trusted_net {
    int family;            /* AF_INET, AF_INET6, or 0 = everybody ("*") */
    unsigned char addr[16];
    unsigned prefix;       /* bits */
    bool unix_peers;       /* "unix": peers on unix sockets */
};

struct http_conf {
    struct wharf_list sockets;   /* http-socket */
    int64_t keepalive_ms;        /* http-keepalive: idle time, 0 = off */
    size_t buffer_size;          /* buffer-size: max request head */
    size_t limit_post;           /* limit-post: max body, 0 = unlimited */
    int64_t header_timeout_ms;   /* http-timeout: whole head must arrive */
    int64_t socket_timeout_ms;   /* socket-timeout: per read/write wait */
    long max_headers;            /* http-max-headers */
    struct wharf_list forwarded_allow_ips;
    long max_connections;        /* per worker, 0 = unlimited */

    /* derived in setup */
    struct wharf_http_limits limits;
    struct http_trusted_net *trusted;
    size_t ntrusted;
};

struct http_listener {
    struct http_conf *conf;
    int index;          /* core listener index */
    bool unix_socket;
    char port[8];       /* SERVER_PORT */
};

/* http_conn.c */
void http_accept(struct wharf_worker *, int fd, const struct sockaddr *peer, unsigned peer_len,
                 void *arg);
int http_conn_worker_start(struct wharf_worker *, struct http_conf *);
void http_conn_worker_stop(struct wharf_worker *);

/* http_plugin.c */
bool http_peer_trusted(const struct http_conf *, const struct sockaddr *peer);

#endif
