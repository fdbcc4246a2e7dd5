/*
 * plugins/http/http_plugin.c - the http plugin's options and setup: which
 * sockets speak HTTP (`http-socket`), the limits every request is held to,
 * and which peers are trusted to tell us the client's address.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"

#define OPT(f) offsetof(struct http_conf, f)

static const struct wharf_option http_options[] = {
    { "http-socket", WHARF_OPT_ADDRESS | WHARF_OPT_LIST | WHARF_OPT_LISTEN, OPT(sockets), NULL,
      "serve HTTP on this address (host:port, :port, [v6]:port or a unix socket path)", 0, 0 },
    { "http11-socket", WHARF_OPT_ALIAS, 0, "http-socket",
      "alias of http-socket (uWSGI): HTTP/1.1 keep-alive is always on", 0, 0 },
    { "http-keepalive", WHARF_OPT_DURATION, OPT(keepalive_ms), "5",
      "close keep-alive connections idle this long (0 = no keep-alive)", 0, 86400000 },
    { "buffer-size", WHARF_OPT_SIZE, OPT(buffer_size), "8k",
      "largest request head (request line + headers); larger gets 431", 1024, 1048576 },
    { "limit-post", WHARF_OPT_SIZE, OPT(limit_post), "0",
      "largest request body (0 = no limit); larger gets 413", 0, 0 },
    { "http-timeout", WHARF_OPT_DURATION, OPT(header_timeout_ms), "60",
      "time a client has to send a request head (and a body that fits in buffer-size); slower gets 408", 100, 3600000 },
    { "socket-timeout", WHARF_OPT_DURATION, OPT(socket_timeout_ms), "30",
      "longest wait for a client to send body bytes or take response bytes", 100, 3600000 },
    { "http-max-headers", WHARF_OPT_INT, OPT(max_headers), "100",
      "most header fields in a request; more gets 431", 8, 10000 },
    { "forwarded-allow-ips", WHARF_OPT_STRING | WHARF_OPT_LIST, OPT(forwarded_allow_ips), "127.0.0.1,::1,unix",
      "peers trusted to set X-Forwarded-For/-Proto: addresses, CIDR nets, 'unix' or '*'", 0, 0 },
    { "max-connections", WHARF_OPT_INT, OPT(max_connections), "0",
      "open client connections per worker (0 = no limit); more are closed at once", 0, 10000000 },
    { "http-auto-chunked", WHARF_OPT_COMPAT, 0, NULL,
      "always on: HTTP/1.1 responses without Content-Length are chunked", 0, 0 },
    { "http-auto-gzip", WHARF_OPT_COMPAT, 0, NULL, "not supported: compress in the app or in nginx", 0, 0 },
    { "so-keepalive", WHARF_OPT_COMPAT, 0, NULL, "accepted; TCP keep-alive is left to the kernel default", 0, 0 },
    { "tcp-nodelay", WHARF_OPT_COMPAT, 0, NULL, "always on for HTTP sockets", 0, 0 },
    { "add-header", WHARF_OPT_COMPAT, 0, NULL, "not supported here: use route = .* addheader:...", 0, 0 },
    WHARF_OPTIONS_END
};

/* "10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8", "*", "unix" */
static int parse_net(const char *text, struct http_trusted_net *n)
{
    memset(n, 0, sizeof *n);
    if (strcmp(text, "*") == 0)
        return 0;
    if (strcmp(text, "unix") == 0) {
        n->unix_peers = true;
        n->family = -1;
        return 0;
    }
    char buf[INET6_ADDRSTRLEN + 8];
    snprintf(buf, sizeof buf, "%s", text);
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        prefix = strtol(slash + 1, &end, 10);
        if (*end || prefix < 0)
            return -1;
    }
    if (inet_pton(AF_INET, buf, n->addr) == 1) {
        n->family = AF_INET;
        n->prefix = prefix < 0 ? 32 : (unsigned)prefix;
        return n->prefix <= 32 ? 0 : -1;
    }
    if (inet_pton(AF_INET6, buf, n->addr) == 1) {
        n->family = AF_INET6;
        n->prefix = prefix < 0 ? 128 : (unsigned)prefix;
        return n->prefix <= 128 ? 0 : -1;
    }
    return -1;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool http_peer_trusted(const struct http_conf *c, const struct sockaddr *peer)
{
    for (size_t i = 0; i < c->ntrusted; i++) {
        const struct http_trusted_net *n = &c->trusted[i];
        if (n->family == 0)
            return true;
        if (n->unix_peers && peer->sa_family == AF_UNIX)
            return true;
        if (n->family == AF_INET && peer->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
            if (prefix_match((const unsigned char *)&in->sin_addr, n->addr, n->prefix))
                return true;
        }
        if (n->family == AF_INET6 && peer->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
            if (prefix_match((const unsigned char *)&in6->sin6_addr, n->addr, n->prefix))
                return true;
            /* an IPv4 client on a dual-stack socket: ::ffff:a.b.c.d */
        }
        if (n->family == AF_INET && peer->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
            if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
                prefix_match((const unsigned char *)&in6->sin6_addr + 12, n->addr, n->prefix))
                return true;
        }
    }
    return false;
}

static int setup_trusted(struct http_conf *c)
{
    size_t cap = 0;
    for (size_t i = 0; i < c->forwarded_allow_ips.count; i++) {
        const struct wharf_list_item *it = &c->forwarded_allow_ips.items[i];
        char *copy = strdup(it->value), *save = NULL;
        if (!copy)
            return -1;
        for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            if (c->ntrusted == cap) {
                cap = cap ? cap * 2 : 8;
                struct http_trusted_net *t = realloc(c->trusted, cap * sizeof *t);
                if (!t) {
                    free(copy);
                    return -1;
                }
                c->trusted = t;
            }
            if (parse_net(tok, &c->trusted[c->ntrusted]) < 0) {
                wharf_config_error(it->origin, "forwarded-allow-ips",
                                   "'%s' is not an address, a CIDR network, 'unix' or '*'", tok);
                free(copy);
                return -1;
            }
            c->ntrusted++;
        }
        free(copy);
    }
    return 0;
}

static const char *port_of(const char *address)
{
    const char *c = strrchr(address, ':');
    return c && !strchr(address, '/') ? c + 1 : "";
}

static int http_setup(struct wharf_server *s, void *confp)
{
    struct http_conf *c = confp;
    wharf_http_limits_default(&c->limits);
    c->limits.max_head = c->buffer_size;
    c->limits.max_target = c->buffer_size;
    c->limits.max_headers = (size_t)c->max_headers;
    c->limits.max_body = c->limit_post;
    c->limits.max_trailer = c->buffer_size;
    if (setup_trusted(c) < 0)
        return WHARF_ERROR;
    if (c->sockets.count == 0) {
        wharf_config_error(wharf_option_origin(s, "http-socket"), "http-socket",
                           "the http plugin is loaded but no http-socket is configured");
        return WHARF_ERROR;
    }
    for (size_t i = 0; i < c->sockets.count; i++) {
        const char *addr = c->sockets.items[i].value;
        struct http_listener *l = calloc(1, sizeof *l);
        if (!l)
            return WHARF_ERROR;
        l->conf = c;
        l->unix_socket = strchr(addr, '/') || addr[0] == '@';
        snprintf(l->port, sizeof l->port, "%s", port_of(addr));
        l->index = wharf_listen(s, addr, http_accept, l);
        if (l->index < 0) {
            wharf_config_error(c->sockets.items[i].origin, "http-socket", "cannot listen on %s", addr);
            free(l);
            return WHARF_ERROR;
        }
    }
    return WHARF_OK;
}

static int http_worker_start(struct wharf_worker *w, void *confp)
{
    return http_conn_worker_start(w, confp);
}

static void http_worker_stop(struct wharf_worker *w, void *confp)
{
    (void)confp;
    http_conn_worker_stop(w);
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "http",
    .version = "1.0",
    .options = http_options,
    .config_size = sizeof(struct http_conf),
    .setup = http_setup,
    .worker_start = http_worker_start,
    .worker_stop = http_worker_stop,
};
