/*
 * core/listen.c - listening sockets.  The core owns them (not the protocol
 * plugin) because they must outlive plugins: they are bound before
 * privileges are dropped, shared by every worker, handed to a new master
 * image on reload and binary upgrade (WHARF__FDS), taken over from systemd
 * socket activation (LISTEN_FDS), and removed by `vacuum`.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

union any_addr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
    struct sockaddr_storage ss;
};

static bool is_unix_address(const char *a)
{
    return strchr(a, '/') || a[0] == '@';
}

static int unix_addr(const char *address, union any_addr *u, socklen_t *len)
{
    memset(u, 0, sizeof *u);
    u->un.sun_family = AF_UNIX;
    size_t n = strlen(address);
    if (n >= sizeof u->un.sun_path) {
        wharf_log(WHARF_LOG_ERROR, "unix socket path too long (max %zu): %s",
                  sizeof u->un.sun_path - 1, address);
        return -1;
    }
    memcpy(u->un.sun_path, address, n);
    if (address[0] == '@') /* Linux abstract namespace */
        u->un.sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (address[0] == '@' ? 0 : 1));
    return 0;
}

/* "host:port", ":port", "[v6]:port" -> sockaddr.  An empty host means all
 * IPv4 interfaces, as in uWSGI (`:8000`). */
static int tcp_addr(const char *address, union any_addr *u, socklen_t *len)
{
    char host[256];
    const char *port;
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        size_t n = (size_t)(close - address - 1);
        if (n >= sizeof host)
            return -1;
        memcpy(host, address + 1, n);
        host[n] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(address, ':');
        size_t n = (size_t)(colon - address);
        if (n >= sizeof host)
            return -1;
        memcpy(host, address, n);
        host[n] = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
    hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0 || !res) {
        wharf_log(WHARF_LOG_ERROR, "cannot resolve '%s': %s", address, gai_strerror(rc));
        return -1;
    }
    memcpy(&u->ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int resolve(const char *address, union any_addr *u, socklen_t *len)
{
    return is_unix_address(address) ? unix_addr(address, u, len) : tcp_addr(address, u, len);
}

static bool same_addr(const union any_addr *a, socklen_t alen, const union any_addr *b, socklen_t blen)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    switch (a->sa.sa_family) {
    case AF_INET:
        return a->in4.sin_port == b->in4.sin_port &&
               a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
    case AF_INET6:
        return a->in6.sin6_port == b->in6.sin6_port &&
               memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof a->in6.sin6_addr) == 0;
    case AF_UNIX:
        return alen == blen && memcmp(a->un.sun_path, b->un.sun_path,
                                      alen - offsetof(struct sockaddr_un, sun_path)) == 0;
    default:
        return false;
    }
}

/* A leftover unix socket file from a crashed run is replaced; one that
 * somebody still answers on is not (two servers on one socket is a bug). */
static int clear_stale_unix(const char *path, const union any_addr *u, socklen_t len)
{
    struct stat st;
    if (path[0] == '@' || lstat(path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        wharf_log(WHARF_LOG_ERROR, "%s exists and is not a socket", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, &u->sa, len) == 0) {
        close(fd);
        wharf_log(WHARF_LOG_ERROR, "%s: another server is listening on it", path);
        return -1;
    }
    if (fd >= 0)
        close(fd);
    unlink(path);
    return 0;
}

/* `chmod-socket = 660` (octal); a bare `chmod-socket` means 666 (uWSGI). */
static unsigned socket_mode(struct wharf_server *s)
{
    const char *m = s->conf.chmod_socket;
    if (!m || !*m)
        return 0;
    bool flag;
    if (wharf_parse_bool(m, &flag) == 0)
        return flag ? 0666 : 0;
    return (unsigned)strtoul(m, NULL, 8);
}

static int open_listener(struct wharf_server *s, const char *address, struct wharf_listener *l)
{
    union any_addr u;
    socklen_t len;
    if (resolve(address, &u, &len) < 0)
        return -1;
    bool unix_sock = u.sa.sa_family == AF_UNIX;
    if (unix_sock && clear_stale_unix(address, &u, len) < 0)
        return -1;
    int fd = socket(u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        wharf_log(WHARF_LOG_ERROR, "socket for %s: %s", address, strerror(errno));
        return -1;
    }
    if (!unix_sock) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    if (bind(fd, &u.sa, len) < 0) {
        wharf_log(WHARF_LOG_ERROR, "cannot bind %s: %s", address, strerror(errno));
        close(fd);
        return -1;
    }
    unsigned mode = socket_mode(s);
    if (unix_sock && address[0] != '@' && mode && chmod(address, mode) < 0) {
        wharf_log(WHARF_LOG_ERROR, "chmod %s: %s", address, strerror(errno));
        close(fd);
        return -1;
    }
    int backlog = (int)s->conf.listen_backlog;
    if (listen(fd, backlog) < 0) {
        wharf_log(WHARF_LOG_ERROR, "listen %s: %s", address, strerror(errno));
        close(fd);
        return -1;
    }
    l->fd = fd;
    l->family = u.sa.sa_family;
    l->unix_path = unix_sock && address[0] != '@' ? wharf_xstrdup(address) : NULL;
    return 0;
}

/* Bind (or take over) one address into s->listeners, without a handler. */
static int bind_address(struct wharf_server *s, const char *address)
{
    for (size_t i = 0; i < s->nlisteners; i++)
        if (strcmp(s->listeners[i].address, address) == 0)
            return (int)i;
    if (s->nlisteners == WHARF_MAX_LISTENERS) {
        wharf_log(WHARF_LOG_ERROR, "too many sockets (at most %d)", WHARF_MAX_LISTENERS);
        return -1;
    }
    struct wharf_listener l = { .fd = -1 };
    union any_addr want;
    socklen_t wantlen;
    if (resolve(address, &want, &wantlen) < 0)
        return -1;
    if (!s->check_only) {
        /* a socket handed over by the previous master or systemd? */
        for (size_t i = 0; i < s->ninherited; i++) {
            struct wharf_listener *in = &s->inherited[i];
            if (in->fd < 0)
                continue;
            bool match = in->address && strcmp(in->address, address) == 0;
            if (!match) {
                union any_addr have;
                socklen_t havelen = sizeof have;
                if (getsockname(in->fd, &have.sa, &havelen) == 0)
                    match = same_addr(&have, havelen, &want, wantlen);
            }
            if (match) {
                l.fd = in->fd;
                l.family = want.sa.sa_family;
                l.inherited = true;
                l.from_systemd = in->from_systemd;
                l.unix_path = is_unix_address(address) && address[0] != '@'
                                  ? wharf_xstrdup(address) : NULL;
                in->fd = -1;
                wharf_set_cloexec(l.fd, true);
                break;
            }
        }
        if (l.fd < 0 && open_listener(s, address, &l) < 0)
            return -1;
        wharf_set_nonblock(l.fd, true);
    }
    l.address = wharf_xstrdup(address);
    s->listeners[s->nlisteners] = l;
    return (int)s->nlisteners++;
}

int wharf_listeners_prebind(struct wharf_server *s)
{
    for (size_t i = 0; i < s->options.count; i++) {
        const struct wharf_optdef *d = &s->options.defs[i];
        if (!(d->opt->type & WHARF_OPT_LISTEN) || d->opt != d->target)
            continue;
        if (d->opt->type & WHARF_OPT_LIST) {
            for (size_t k = 0; k < d->nitems; k++)
                if (bind_address(s, d->items[k].value) < 0) {
                    wharf_config_error(d->items[k].origin, d->opt->name, "cannot listen on %s",
                                       d->items[k].value);
                    return -1;
                }
        } else {
            const char *v = *(char **)((char *)d->conf + d->opt->offset);
            if (v && *v && bind_address(s, v) < 0) {
                wharf_config_error(d->origin, d->opt->name, "cannot listen on %s", v);
                return -1;
            }
        }
    }
    return 0;
}

WHARF_EXPORT int wharf_listen(struct wharf_server *s, const char *address,
                              wharf_accept_fn on_accept, void *arg)
{
    int i = bind_address(s, address);
    if (i < 0)
        return -1;
    if (s->listeners[i].on_accept) {
        wharf_log(WHARF_LOG_ERROR, "%s is claimed twice", address);
        return -1;
    }
    s->listeners[i].on_accept = on_accept;
    s->listeners[i].arg = arg;
    return i;
}

/* After setup(): a bound socket nobody claimed would accept connections
 * that hang forever; close it and say so. */
void wharf_listeners_close_unclaimed(struct wharf_server *s)
{
    for (size_t i = 0; i < s->nlisteners; i++)
        if (!s->listeners[i].on_accept && s->listeners[i].fd >= 0) {
            wharf_log(WHARF_LOG_WARN, "%s: no plugin serves this socket; closing it",
                      s->listeners[i].address);
            close(s->listeners[i].fd);
            s->listeners[i].fd = -1;
        }
}

WHARF_EXPORT const char *wharf_listener_address(struct wharf_server *s, int index)
{
    return index >= 0 && (size_t)index < s->nlisteners ? s->listeners[index].address : NULL;
}

WHARF_EXPORT int wharf_listener_fd(struct wharf_server *s, int index)
{
    return index >= 0 && (size_t)index < s->nlisteners ? s->listeners[index].fd : -1;
}

void wharf_listeners_inherit(struct wharf_server *s)
{
    /* our own hand-over: WHARF__FDS="addr=fd;addr=fd" */
    const char *own = getenv("WHARF__FDS");
    if (own && *own) {
        char *copy = wharf_xstrdup(own), *save = NULL;
        for (char *tok = strtok_r(copy, ";", &save); tok && s->ninherited < WHARF_MAX_LISTENERS;
             tok = strtok_r(NULL, ";", &save)) {
            char *eq = strrchr(tok, '=');
            if (!eq)
                continue;
            *eq = '\0';
            int fd = atoi(eq + 1);
            if (fd < 3)
                continue;
            s->inherited[s->ninherited].address = wharf_xstrdup(tok);
            s->inherited[s->ninherited].fd = fd;
            s->inherited[s->ninherited].from_systemd = strstr(eq + 1, ",systemd") != NULL;
            s->ninherited++;
        }
        free(copy);
        unsetenv("WHARF__FDS");
    }
    /* systemd socket activation: LISTEN_PID must be us */
    const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
    if (pid && nfds && atoi(pid) == (int)getpid()) {
        int n = atoi(nfds);
        for (int i = 0; i < n && s->ninherited < WHARF_MAX_LISTENERS; i++) {
            s->inherited[s->ninherited].address = NULL; /* matched by address */
            s->inherited[s->ninherited].fd = 3 + i;
            s->inherited[s->ninherited].from_systemd = true;
            s->ninherited++;
        }
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
    }
}

void wharf_listeners_close_unused(struct wharf_server *s)
{
    for (size_t i = 0; i < s->ninherited; i++) {
        if (s->inherited[i].fd >= 0) {
            wharf_log(WHARF_LOG_INFO, "closing inherited socket %s (no longer configured)",
                      s->inherited[i].address ? s->inherited[i].address : "(systemd)");
            close(s->inherited[i].fd);
            s->inherited[i].fd = -1;
        }
        free(s->inherited[i].address);
        s->inherited[i].address = NULL;
    }
    s->ninherited = 0;
}

char *wharf_listeners_export(struct wharf_server *s)
{
    size_t cap = 1;
    for (size_t i = 0; i < s->nlisteners; i++)
        cap += strlen(s->listeners[i].address) + 24;
    char *out = wharf_xmalloc(cap);
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < s->nlisteners; i++) {
        if (s->listeners[i].fd < 0)
            continue;
        wharf_set_cloexec(s->listeners[i].fd, false);
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%d%s", len ? ";" : "",
                                s->listeners[i].address, s->listeners[i].fd,
                                s->listeners[i].from_systemd ? ",systemd" : "");
    }
    return out;
}

void wharf_listeners_vacuum(struct wharf_server *s)
{
    for (size_t i = 0; i < s->nlisteners; i++)
        /* a socket systemd passed us is systemd's: its socket unit keeps
         * listening on it after we are gone */
        if (s->listeners[i].unix_path && !s->listeners[i].from_systemd) {
            if (unlink(s->listeners[i].unix_path) == 0)
                wharf_log(WHARF_LOG_INFO, "vacuum: removed %s", s->listeners[i].unix_path);
        }
}
