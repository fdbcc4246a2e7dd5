/*
 * plugins/redis_session/redis_session.c - server-side sessions in Redis,
 * so that no deployment needs sticky sessions.
 *
 * ROUTE     read the session id from the Cookie header (no Redis call) and
 *           attach the lazy request variable `session`; the python plugin
 *           shows it as environ['wharf.session'].
 * load      (only when the app touches the session) GETEX key EX ttl: one
 *           round trip that also slides the expiry.
 * store     (only when the app changed it) SET key value EX ttl; a session
 *           that Redis did not know gets a NEW id (never adopt an id the
 *           client chose: no fixation).  WHARF_VAR_DELETE: DEL and an
 *           expired cookie (logout).  WHARF_VAR_REGENERATE: a new id for the
 *           same data (RENAME, or SET new + DEL old), e.g. after login.
 * RESPONSE  Set-Cookie when an id was issued, regenerated or deleted, and
 *           when a loaded session's expiry slid forward (sliding cookies,
 *           like Flask's SESSION_REFRESH_EACH_REQUEST): the cookie's
 *           Max-Age follows Redis' TTL, so an active user stays logged in
 *           and an idle one expires at the same time on both sides.
 *           Vary: Cookie whenever the session was read, and Cache-Control:
 *           private with a Set-Cookie (unless the app set Cache-Control), so
 *           no shared cache stores one user's cookie for everyone.
 *
 * Connections: the lazy callbacks run on whatever thread runs the request
 * (an app thread with threads > 1), so each worker keeps a small pool of
 * hiredis connections (at most one per concurrent request), each used by
 * one thread at a time.  Connect and every command have a timeout
 * (session-redis-timeout).  A connection that fails is dropped; one that
 * failed because the server closed it (Redis restarted) is replaced at
 * once and the command retried; a failed connect marks Redis down for a
 * back-off period (0.2 s doubling to 2 s) during which requests get an
 * empty, unsaved session without waiting.  Warnings are rate-limited: one
 * when Redis goes away, then at most one every 10 s, and one when it is
 * back.
 *
 * The readiness check (checker process) PINGs over its own connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis.h>

#include "cookie.h"
#include "wharf.h"

struct rs_conf {
    char *redis;        /* session-redis */
    char *cookie;       /* session-cookie */
    bool secure;        /* session-cookie-secure */
    bool httponly;      /* session-cookie-httponly */
    char *samesite;     /* session-cookie-samesite */
    int64_t ttl_ms;     /* session-ttl */
    char *prefix;       /* session-prefix */
    int64_t timeout_ms; /* session-redis-timeout */

    /* parsed in setup */
    char *host, *path, *user, *password;
    int port, db;
    long ttl;           /* seconds */
    char where[200];    /* for messages: host:port/db, never the password */
    int metric_errors;
};

#define OPT(f) offsetof(struct rs_conf, f)

static const struct wharf_option rs_options[] = {
    { "session-redis", WHARF_OPT_STRING, OPT(redis), NULL,
      "Redis for sessions: redis://[[user]:password@]host[:port][/db] or a unix socket path "
      "(unix:///path?db=N&password=P)", 0, 0 },
    { "session-cookie", WHARF_OPT_STRING, OPT(cookie), "session", "session cookie name", 0, 0 },
    { "session-cookie-secure", WHARF_OPT_BOOL, OPT(secure), "false",
      "always mark the cookie Secure (it is anyway when the request came over https)", 0, 0 },
    { "session-cookie-httponly", WHARF_OPT_BOOL, OPT(httponly), "true",
      "mark the cookie HttpOnly (JavaScript cannot read it)", 0, 0 },
    { "session-cookie-samesite", WHARF_OPT_STRING, OPT(samesite), "Lax",
      "SameSite attribute of the cookie: Lax, Strict or None (None needs Secure)", 0, 0 },
    { "session-ttl", WHARF_OPT_DURATION, OPT(ttl_ms), "1209600",
      "idle lifetime of a session (Redis TTL and cookie Max-Age), refreshed on use", 1000,
      31536000000LL },
    { "session-prefix", WHARF_OPT_STRING, OPT(prefix), "wharf:session:",
      "prefix of the Redis keys", 0, 0 },
    { "session-redis-timeout", WHARF_OPT_DURATION, OPT(timeout_ms), "1000ms",
      "connect and command timeout: the longest a request waits for Redis", 10, 60000 },
    WHARF_OPTIONS_END
};

/* ------------------------------------------------------------ time/log */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ URL */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char *pct_decode(const char *s, size_t n)
{
    char *d = malloc(n + 1), *o = d;
    if (!d)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return d;
}

static bool parse_int(const char *s, size_t n, long min, long max, long *out)
{
    if (n == 0 || n > 9)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ?db=N&password=P&user=U of a unix URL */
static const char *parse_query(struct rs_conf *c, const char *q)
{
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        if (!eq)
            return "query arguments are key=value";
        size_t kl = (size_t)(eq - q), vl = n - kl - 1;
        long v;
        if (kl == 2 && !memcmp(q, "db", 2)) {
            if (!parse_int(eq + 1, vl, 0, 1000000, &v))
                return "db must be a number";
            c->db = (int)v;
        } else if (kl == 8 && !memcmp(q, "password", 8)) {
            c->password = pct_decode(eq + 1, vl);
        } else if (kl == 4 && !memcmp(q, "user", 4)) {
            c->user = pct_decode(eq + 1, vl);
        } else {
            return "unknown query argument (db, password, user)";
        }
        q = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* Returns NULL or what is wrong. */
static const char *parse_url(struct rs_conf *c, const char *url)
{
    c->port = 6379;
    c->db = 0;
    if (url[0] == '/') {
        c->path = strdup(url);
    } else if (!strncmp(url, "unix://", 7)) {
        const char *p = url + 7, *q = strchr(p, '?');
        if (*p != '/')
            return "a unix URL needs an absolute path: unix:///run/redis.sock";
        c->path = q ? strndup(p, (size_t)(q - p)) : strdup(p);
        const char *e = parse_query(c, q ? q + 1 : NULL);
        if (e)
            return e;
    } else if (!strncmp(url, "rediss://", 9)) {
        return "TLS (rediss://) is not supported; use a local TLS proxy or a unix socket";
    } else if (!strncmp(url, "redis://", 8)) {
        const char *p = url + 8;
        const char *slash = strchr(p, '/');
        const char *hend = slash ? slash : p + strlen(p);
        const char *at = memrchr(p, '@', (size_t)(hend - p));
        if (at) {
            const char *colon = memchr(p, ':', (size_t)(at - p));
            if (colon) {
                if (colon > p)
                    c->user = pct_decode(p, (size_t)(colon - p));
                c->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
            } else {
                /* redis://password@host is how some clients write it */
                c->password = pct_decode(p, (size_t)(at - p));
            }
            p = at + 1;
        }
        const char *colon = NULL;
        if (*p == '[') {
            const char *rb = memchr(p, ']', (size_t)(hend - p));
            if (!rb)
                return "unterminated [IPv6] address";
            c->host = strndup(p + 1, (size_t)(rb - p - 1));
            colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
        } else {
            colon = memchr(p, ':', (size_t)(hend - p));
            size_t hl = (size_t)((colon ? colon : hend) - p);
            c->host = hl ? strndup(p, hl) : strdup("127.0.0.1");
        }
        if (colon) {
            long port;
            if (!parse_int(colon + 1, (size_t)(hend - colon - 1), 1, 65535, &port))
                return "the port must be a number from 1 to 65535";
            c->port = (int)port;
        }
        if (slash && slash[1]) {
            long db;
            const char *q = strchr(slash + 1, '?');
            size_t dl = q ? (size_t)(q - slash - 1) : strlen(slash + 1);
            if (dl && !parse_int(slash + 1, dl, 0, 1000000, &db))
                return "the database after '/' must be a number";
            if (dl)
                c->db = (int)db;
        }
    } else {
        return "expected redis://host:port/db or a unix socket path";
    }
    if (c->path)
        snprintf(c->where, sizeof c->where, "%s (db %d)", c->path, c->db);
    else
        snprintf(c->where, sizeof c->where, "%s:%d/%d", c->host, c->port, c->db);
    return NULL;
}

/* ------------------------------------------------------------ Redis */

static struct timeval tv_of(int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    return tv;
}

/* A connected, authenticated context with the command timeout set, or
 * NULL with the reason in err. */
static redisContext *rs_connect(const struct rs_conf *c, int64_t timeout_ms, char *err,
                                size_t errcap)
{
    struct timeval tv = tv_of(timeout_ms);
    redisContext *ctx = c->path ? redisConnectUnixWithTimeout(c->path, tv)
                                : redisConnectWithTimeout(c->host, c->port, tv);
    if (!ctx) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (ctx->err) {
        snprintf(err, errcap, "%s", ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    const char *argv[3];
    size_t argn = 0;
    if (c->password) {
        argv[argn++] = "AUTH";
        if (c->user)
            argv[argn++] = c->user;
        argv[argn++] = c->password;
    }
    for (int step = 0; step < 2; step++) {
        redisReply *r = NULL;
        if (step == 0 && argn)
            r = redisCommandArgv(ctx, (int)argn, argv, NULL);
        else if (step == 1 && c->db)
            r = redisCommand(ctx, "SELECT %d", c->db);
        else
            continue;
        if (!r) {
            snprintf(err, errcap, "%s", ctx->errstr);
            redisFree(ctx);
            return NULL;
        }
        bool bad = r->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(err, errcap, "%s: %.*s", step ? "SELECT" : "AUTH", (int)r->len, r->str);
        freeReplyObject(r);
        if (bad) {
            redisFree(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* Per worker: the connection pool and the up/down state. */
struct conn {
    redisContext *ctx;
    struct conn *next;
};

static struct {
    pthread_mutex_t mu;
    struct conn *idle;
    bool down;
    int64_t down_since, retry_at, backoff, last_warn;
    uint64_t failed_requests; /* since the last warning */
    char reason[160];
} P = { .mu = PTHREAD_MUTEX_INITIALIZER };

static struct wharf_worker *g_worker;

static struct conn *pool_take(void)
{
    pthread_mutex_lock(&P.mu);
    struct conn *cn = P.idle;
    if (cn)
        P.idle = cn->next;
    pthread_mutex_unlock(&P.mu);
    if (!cn) {
        cn = calloc(1, sizeof *cn);
        if (!cn)
            abort();
    }
    return cn;
}

static void pool_give(struct conn *cn)
{
    pthread_mutex_lock(&P.mu);
    cn->next = P.idle;
    P.idle = cn;
    pthread_mutex_unlock(&P.mu);
}

/* In a back-off period after a failure: do not even try. */
static bool pool_backing_off(void)
{
    pthread_mutex_lock(&P.mu);
    bool wait = P.down && now_ms() < P.retry_at;
    if (wait)
        P.failed_requests++;
    pthread_mutex_unlock(&P.mu);
    return wait;
}

static void mark_down(const struct rs_conf *c, const char *why)
{
    int64_t t = now_ms();
    char line[800] = "";
    pthread_mutex_lock(&P.mu);
    P.failed_requests++;
    snprintf(P.reason, sizeof P.reason, "%s", why);
    if (!P.down) {
        P.down = true;
        P.down_since = t;
        P.backoff = 200;
        P.last_warn = t;
        P.failed_requests = 0;
        snprintf(line, sizeof line,
                 "redis_session: Redis at %s unreachable (%s): sessions are empty and not saved "
                 "until it is back",
                 c->where, why);
    } else {
        P.backoff = P.backoff * 2 > 2000 ? 2000 : P.backoff * 2;
        if (t - P.last_warn >= 10000) {
            snprintf(line, sizeof line,
                     "redis_session: Redis at %s still unreachable after %.0f s (%s); %" PRIu64
                     " request(s) got an empty session since the last warning",
                     c->where, (double)(t - P.down_since) / 1000.0, why, P.failed_requests);
            P.last_warn = t;
            P.failed_requests = 0;
        }
    }
    P.retry_at = t + P.backoff;
    pthread_mutex_unlock(&P.mu);
    if (line[0])
        wharf_log(WHARF_LOG_WARN, "%s", line);
}

static void mark_up(const struct rs_conf *c)
{
    if (!__atomic_load_n(&P.down, __ATOMIC_RELAXED))
        return;
    char line[400] = "";
    pthread_mutex_lock(&P.mu);
    if (P.down) {
        P.down = false;
        snprintf(line, sizeof line, "redis_session: Redis at %s is reachable again (after %.1f s)",
                 c->where, (double)(now_ms() - P.down_since) / 1000.0);
    }
    pthread_mutex_unlock(&P.mu);
    if (line[0])
        wharf_log(WHARF_LOG_INFO, "%s", line);
}

/* The server closed the connection (restart, idle timeout): worth one
 * immediate retry on a new connection.  A timeout is not (it would double
 * the time a request waits). */
static bool retryable(const redisContext *ctx)
{
    return ctx->err == REDIS_ERR_EOF ||
           (ctx->err == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE));
}

struct cmd {
    int argc;
    const char *argv[6];
    size_t len[6];
};

/* Run `n` commands pipelined (one round trip); replies[i] must be freed
 * by the caller.  0, or -1 (Redis unreachable; logged, rate-limited). */
static int rs_exec(const struct rs_conf *c, struct cmd *cmds, int n, redisReply **replies)
{
    if (pool_backing_off()) {
        if (g_worker && c->metric_errors >= 0)
            wharf_metric_add(g_worker, c->metric_errors, 1);
        return -1;
    }
    struct conn *cn = pool_take();
    int rc = -1;
    char why[160] = "";
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = false;
        if (!cn->ctx) {
            cn->ctx = rs_connect(c, c->timeout_ms, why, sizeof why);
            if (!cn->ctx)
                break;
            fresh = true;
        }
        for (int i = 0; i < n; i++)
            redisAppendCommandArgv(cn->ctx, cmds[i].argc, cmds[i].argv, cmds[i].len);
        int got = 0;
        for (; got < n; got++)
            if (redisGetReply(cn->ctx, (void **)&replies[got]) != REDIS_OK)
                break;
        if (got == n) {
            rc = 0;
            break;
        }
        for (int i = 0; i < got; i++)
            freeReplyObject(replies[i]);
        bool again = !fresh && retryable(cn->ctx);
        snprintf(why, sizeof why, "%s", cn->ctx->errstr[0] ? cn->ctx->errstr : "I/O error");
        redisFree(cn->ctx); /* the stream may be out of step: never reuse */
        cn->ctx = NULL;
        if (!again)
            break;
    }
    pool_give(cn);
    if (rc == 0)
        mark_up(c);
    else
        mark_down(c, why);
    if (rc < 0 && g_worker && c->metric_errors >= 0)
        wharf_metric_add(g_worker, c->metric_errors, 1);
    return rc;
}

/* ------------------------------------------------------------ request */

struct rs_req {
    const struct rs_conf *conf;
    char client_id[RS_ID_LEN + 1]; /* from the Cookie header, well-formed */
    char id[RS_ID_LEN + 1];        /* the session's id, once confirmed */
    bool have_client_id;
    bool confirmed;     /* id exists in Redis (loaded, or created here) */
    bool read;          /* the app looked at the session */
    bool failed;        /* Redis failed this request: nothing is saved */
    bool send_cookie;   /* Set-Cookie with id */
    bool clear_cookie;  /* Set-Cookie that expires the cookie */
};

static void key_of(const struct rs_conf *c, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", c->prefix, id);
}

static void cmd_set(struct cmd *m, const char *argv0, const char *key, const char *value,
                    size_t len)
{
    m->argc = 0;
    m->argv[m->argc] = argv0;
    m->len[m->argc++] = strlen(argv0);
    m->argv[m->argc] = key;
    m->len[m->argc++] = strlen(key);
    if (value) {
        m->argv[m->argc] = value;
        m->len[m->argc++] = len;
    }
}

static void cmd_arg(struct cmd *m, const char *a)
{
    m->argv[m->argc] = a;
    m->len[m->argc++] = strlen(a);
}

static void warn_reply(struct rs_req *st, const char *what, const redisReply *r)
{
    (void)st;
    wharf_log(WHARF_LOG_WARN, "redis_session: %s: unexpected reply from Redis: %.*s", what,
              r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
              r->type == REDIS_REPLY_ERROR ? r->str : "");
}

static int rs_load(struct wharf_request *r, void *data, const char **value, size_t *len)
{
    struct rs_req *st = data;
    const struct rs_conf *c = st->conf;
    st->read = true;
    if (!st->have_client_id)
        return 1;
    char key[512], ttl[24];
    key_of(c, st->client_id, key, sizeof key);
    snprintf(ttl, sizeof ttl, "%ld", c->ttl);
    struct cmd m;
    cmd_set(&m, "GETEX", key, NULL, 0);
    cmd_arg(&m, "EX");
    cmd_arg(&m, ttl);
    redisReply *rep = NULL;
    if (rs_exec(c, &m, 1, &rep) < 0) {
        st->failed = true;
        return -1;
    }
    int rc;
    if (rep->type == REDIS_REPLY_STRING) {
        char *v = wharf_request_alloc(r, rep->len + 1);
        memcpy(v, rep->str, rep->len);
        v[rep->len] = '\0';
        *value = v;
        *len = rep->len;
        memcpy(st->id, st->client_id, sizeof st->id);
        st->confirmed = true;
        st->send_cookie = true; /* the expiry slid: so does the cookie's */
        rc = 0;
    } else if (rep->type == REDIS_REPLY_NIL) {
        rc = 1; /* unknown or expired id: a fresh session, under a new id */
        st->clear_cookie = true; /* unless a store issues one: stop sending it */
    } else {
        warn_reply(st, "GETEX", rep);
        st->failed = true;
        rc = -1;
    }
    freeReplyObject(rep);
    return rc;
}

/* Keys of the ids this request may drop: the confirmed one, or the
 * well-formed id the client sent (it can only name its own session). */
static const char *old_id(struct rs_req *st)
{
    if (st->confirmed)
        return st->id;
    return st->have_client_id ? st->client_id : NULL;
}

static int rs_delete(struct rs_req *st)
{
    const char *old = old_id(st);
    st->confirmed = false;
    st->send_cookie = false;
    st->clear_cookie = st->have_client_id || old;
    if (!old)
        return 0;
    char key[512];
    key_of(st->conf, old, key, sizeof key);
    struct cmd m;
    cmd_set(&m, "DEL", key, NULL, 0);
    redisReply *rep = NULL;
    if (rs_exec(st->conf, &m, 1, &rep) < 0)
        return -1;
    freeReplyObject(rep);
    return 0;
}

static int rs_regenerate(struct rs_req *st, const char *value, size_t len)
{
    const struct rs_conf *c = st->conf;
    const char *old = old_id(st);
    char nid[RS_ID_LEN + 1], nkey[512], okey[512], ttl[24];
    if (rs_id_new(nid) < 0) {
        wharf_log(WHARF_LOG_ERROR, "redis_session: getrandom: %s", strerror(errno));
        return -1;
    }
    key_of(c, nid, nkey, sizeof nkey);
    snprintf(ttl, sizeof ttl, "%ld", c->ttl);
    struct cmd m[2];
    int n = 0;
    if (value) {
        cmd_set(&m[n], "SET", nkey, value, len);
        cmd_arg(&m[n], "EX");
        cmd_arg(&m[n++], ttl);
        if (old) {
            key_of(c, old, okey, sizeof okey);
            cmd_set(&m[n++], "DEL", okey, NULL, 0);
        }
    } else if (old) {
        /* the stored data under a new name, TTL kept, old id gone */
        key_of(c, old, okey, sizeof okey);
        cmd_set(&m[n++], "RENAME", okey, nkey, strlen(nkey));
    } else {
        return 0; /* nothing stored yet: the first store issues a new id anyway */
    }
    redisReply *rep[2] = { NULL, NULL };
    if (rs_exec(c, m, n, rep) < 0)
        return -1;
    bool ok = rep[0]->type != REDIS_REPLY_ERROR;
    bool missing = !value && !ok && rep[0]->len && strstr(rep[0]->str, "no such key");
    if (!ok && !missing)
        warn_reply(st, value ? "SET" : "RENAME", rep[0]);
    for (int i = 0; i < n; i++)
        freeReplyObject(rep[i]);
    if (missing) { /* the old session had expired: nothing to carry over */
        st->confirmed = false;
        st->clear_cookie = true;
        return 0;
    }
    if (!ok)
        return -1;
    memcpy(st->id, nid, sizeof st->id);
    st->confirmed = true;
    st->send_cookie = true;
    st->clear_cookie = false;
    return 0;
}

static int rs_store(struct wharf_request *r, void *data, const char *value, size_t len,
                    unsigned flags)
{
    (void)r;
    struct rs_req *st = data;
    const struct rs_conf *c = st->conf;
    if (st->failed)
        return -1; /* Redis failed earlier in this request: the session is not saved */
    if (flags & WHARF_VAR_DELETE)
        return rs_delete(st);
    if (flags & WHARF_VAR_REGENERATE)
        return rs_regenerate(st, value, len);
    if (!value)
        return -1;
    char key[512], ttl[24], nid[RS_ID_LEN + 1];
    bool fresh = !st->confirmed;
    if (fresh) {
        if (rs_id_new(nid) < 0) {
            wharf_log(WHARF_LOG_ERROR, "redis_session: getrandom: %s", strerror(errno));
            return -1;
        }
    }
    key_of(c, fresh ? nid : st->id, key, sizeof key);
    snprintf(ttl, sizeof ttl, "%ld", c->ttl);
    struct cmd m;
    cmd_set(&m, "SET", key, value, len);
    cmd_arg(&m, "EX");
    cmd_arg(&m, ttl);
    if (fresh)
        cmd_arg(&m, "NX");
    redisReply *rep = NULL;
    if (rs_exec(c, &m, 1, &rep) < 0)
        return -1;
    bool ok = rep->type == REDIS_REPLY_STATUS;
    if (!ok)
        warn_reply(st, "SET", rep);
    freeReplyObject(rep);
    if (!ok)
        return -1;
    if (fresh) {
        memcpy(st->id, nid, sizeof st->id);
        st->confirmed = true;
    }
    st->send_cookie = true;
    st->clear_cookie = false;
    return 0;
}

static const struct wharf_lazy_var_ops rs_ops = { rs_load, rs_store };

static void route(struct wharf_request *r, struct rs_conf *c)
{
    struct rs_req *st = wharf_request_alloc(r, sizeof *st);
    memset(st, 0, sizeof *st);
    st->conf = c;
    for (size_t i = 0; i < r->header_count && !st->have_client_id; i++) {
        const struct wharf_header *h = &r->headers[i];
        if (h->name_len == 6 && !strncasecmp(h->name, "cookie", 6))
            st->have_client_id = rs_cookie_find_id(h->value, h->value_len, c->cookie,
                                                   st->client_id);
    }
    wharf_request_lazy_var_set(r, "session", &rs_ops, st);
}

static struct rs_req *find_state(struct wharf_request *r)
{
    const char *name, *value;
    const struct wharf_lazy_var_ops *ops;
    void *data;
    for (size_t i = 0; wharf_request_var_at(r, i, &name, &value, NULL, &ops, &data); i++)
        if (ops == &rs_ops)
            return data;
    return NULL;
}

static void add_vary_cookie(struct wharf_request *r)
{
    size_t len = 0;
    const char *v = wharf_response_header_get(r, "Vary", &len);
    if (!v) {
        wharf_response_header(r, "Vary", 4, "Cookie", 6);
        return;
    }
    for (size_t i = 0; i + 6 <= len; i++)
        if (!strncasecmp(v + i, "cookie", 6) || v[i] == '*')
            return;
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%.*s, Cookie", (int)(len > 400 ? 400 : len), v);
    wharf_response_header_del(r, "Vary");
    wharf_response_header(r, "Vary", 4, buf, (size_t)n);
}

static void response(struct wharf_request *r, struct rs_conf *c)
{
    struct rs_req *st = find_state(r);
    if (!st)
        return;
    if (st->read || st->send_cookie || st->clear_cookie)
        add_vary_cookie(r);
    if (!st->send_cookie && !st->clear_cookie)
        return;
    bool secure = c->secure || (r->scheme && !strcmp(r->scheme, "https"));
    char buf[512];
    int n;
    if (st->send_cookie)
        n = snprintf(buf, sizeof buf, "%s=%s; Path=/; Max-Age=%ld%s; SameSite=%s%s", c->cookie,
                     st->id, c->ttl, c->httponly ? "; HttpOnly" : "", c->samesite,
                     secure ? "; Secure" : "");
    else
        n = snprintf(buf, sizeof buf,
                     "%s=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT%s; "
                     "SameSite=%s%s",
                     c->cookie, c->httponly ? "; HttpOnly" : "", c->samesite,
                     secure ? "; Secure" : "");
    if (n > 0 && (size_t)n < sizeof buf)
        wharf_response_header(r, "Set-Cookie", 10, buf, (size_t)n);
    /* a cookie that carries a session must not be stored by shared caches */
    if (!wharf_response_header_get(r, "Cache-Control", NULL))
        wharf_response_header(r, "Cache-Control", 13, "private", 7);
}

static int rs_handle(struct wharf_request *r, void *confp)
{
    struct rs_conf *c = confp;
    switch (wharf_request_phase(r)) {
    case WHARF_PHASE_ROUTE:
        route(r, c);
        break;
    case WHARF_PHASE_RESPONSE:
        response(r, c);
        break;
    default:
        break;
    }
    return WHARF_DECLINED;
}

/* ------------------------------------------------------------ lifecycle */

static int rs_setup(struct wharf_server *s, void *confp)
{
    struct rs_conf *c = confp;
    c->metric_errors = -1;
    if (!c->redis || !c->redis[0]) {
        wharf_config_error(wharf_option_origin(s, "session-redis"), "session-redis",
                           "where is Redis? e.g. session-redis = redis://127.0.0.1:6379/0");
        return WHARF_ERROR;
    }
    const char *e = parse_url(c, c->redis);
    if (e) {
        wharf_config_error(wharf_option_origin(s, "session-redis"), "session-redis", "%s", e);
        return WHARF_ERROR;
    }
    if (!rs_cookie_name_valid(c->cookie)) {
        wharf_config_error(wharf_option_origin(s, "session-cookie"), "session-cookie",
                           "'%s' is not a valid cookie name (letters, digits, !#$%%&'*+-.^_`|~)",
                           c->cookie ? c->cookie : "");
        return WHARF_ERROR;
    }
    const char *ss[] = { "Lax", "Strict", "None" };
    bool ok = false;
    for (size_t i = 0; i < 3; i++)
        if (c->samesite && !strcasecmp(c->samesite, ss[i])) {
            c->samesite = (char *)ss[i];
            ok = true;
        }
    if (!ok) {
        wharf_config_error(wharf_option_origin(s, "session-cookie-samesite"),
                           "session-cookie-samesite", "'%s': expected Lax, Strict or None",
                           c->samesite ? c->samesite : "");
        return WHARF_ERROR;
    }
    if (!strcmp(c->samesite, "None") && !c->secure) {
        wharf_config_error(wharf_option_origin(s, "session-cookie-samesite"),
                           "session-cookie-samesite",
                           "SameSite=None needs session-cookie-secure = true (browsers drop it "
                           "otherwise)");
        return WHARF_ERROR;
    }
    if (!c->prefix)
        c->prefix = "";
    c->ttl = (long)((c->ttl_ms + 999) / 1000);
    if (!wharf_server_check_only(s))
        c->metric_errors =
            wharf_metric_register(s, "session_redis_errors",
                                  "session operations that failed because Redis was unreachable");
    return WHARF_OK;
}

static int rs_worker_start(struct wharf_worker *w, void *confp)
{
    (void)confp;
    g_worker = w;
    return WHARF_OK;
}

static void rs_worker_stop(struct wharf_worker *w, void *confp)
{
    (void)w;
    (void)confp;
    pthread_mutex_lock(&P.mu);
    struct conn *cn = P.idle;
    P.idle = NULL;
    pthread_mutex_unlock(&P.mu);
    while (cn) {
        struct conn *next = cn->next;
        if (cn->ctx)
            redisFree(cn->ctx);
        free(cn);
        cn = next;
    }
}

static redisContext *chk_ctx;

static int rs_check(void *confp, struct wharf_check *out)
{
    struct rs_conf *c = confp;
    char why[160] = "";
    int64_t timeout = c->timeout_ms < 1000 ? c->timeout_ms : 1000;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = false;
        if (!chk_ctx) {
            chk_ctx = rs_connect(c, timeout, why, sizeof why);
            if (!chk_ctx)
                break;
            fresh = true;
        }
        redisReply *rep = redisCommand(chk_ctx, "PING");
        if (rep) {
            bool pong = rep->type == REDIS_REPLY_STATUS;
            if (!pong)
                snprintf(why, sizeof why, "%.*s", (int)rep->len, rep->str ? rep->str : "");
            freeReplyObject(rep);
            if (pong) {
                out->ok = true;
                snprintf(out->message, sizeof out->message, "ok (%.140s)", c->where);
                return WHARF_OK;
            }
            break;
        }
        snprintf(why, sizeof why, "%s", chk_ctx->errstr);
        redisFree(chk_ctx);
        chk_ctx = NULL;
        if (fresh)
            break;
    }
    out->ok = false;
    snprintf(out->message, sizeof out->message, "unreachable: %.140s", why[0] ? why : "no answer");
    return WHARF_OK;
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "redis_session",
    .version = "1.0",
    .options = rs_options,
    .config_size = sizeof(struct rs_conf),
    .setup = rs_setup,
    .worker_start = rs_worker_start,
    .handle = rs_handle,
    .phases = WHARF_PHASE_BIT(WHARF_PHASE_ROUTE) | WHARF_PHASE_BIT(WHARF_PHASE_RESPONSE),
    .check = rs_check,
    .worker_stop = rs_worker_stop,
};
