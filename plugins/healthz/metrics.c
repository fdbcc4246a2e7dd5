/*
 * plugins/healthz/metrics.c - /metrics in the Prometheus text exposition
 * format 0.0.4, read from the core's scoreboard (shared memory: every
 * worker answers for the whole server, whichever one gets the scrape).
 *
 * Counters come from per-slot cumulative fields that the core never resets
 * when a worker is replaced, so sums over slots never go backwards.  Every
 * request the core answers is counted, probes and scrapes included (as
 * nginx and uWSGI count them); a scrape sees the requests finished before
 * it, not itself, and counts itself in wharf_requests_in_flight.
 *
 * Numbers are formatted with integer arithmetic only: no floating point,
 * no locale.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "healthz.h"

#define TEXT_FORMAT "text/plain; version=0.0.4; charset=utf-8"

/* ------------------------------------------------------------ output buffer */

/* One per worker process, reused by every scrape (loop thread only). */
static struct {
    char *p;
    size_t len, cap;
    bool failed;
} out;

static void reserve(size_t more)
{
    if (out.failed || out.len + more <= out.cap)
        return;
    size_t cap = out.cap ? out.cap : 8192;
    while (cap < out.len + more)
        cap *= 2;
    char *p = realloc(out.p, cap);
    if (!p) {
        out.failed = true;
        return;
    }
    out.p = p;
    out.cap = cap;
}

static void emit(const char *s, size_t n)
{
    reserve(n);
    if (out.failed)
        return;
    memcpy(out.p + out.len, s, n);
    out.len += n;
}

static void emits(const char *s)
{
    emit(s, strlen(s));
}

__attribute__((format(printf, 1, 2))) static void emitf(const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !out.failed; attempt++) {
        size_t room = out.cap - out.len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(out.p ? out.p + out.len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            out.failed = true;
            return;
        }
        if ((size_t)n < room) {
            out.len += (size_t)n;
            return;
        }
        reserve((size_t)n + 1);
    }
}

/* A fixed-point number: `value` in units of 1/`scale` (scale 1000 or
 * 1000000), trailing zeros dropped: 2500/1000 -> "2.5", 10000 -> "10". */
static void emit_fixed(uint64_t value, uint64_t scale, int digits)
{
    uint64_t whole = value / scale, frac = value % scale;
    if (!frac) {
        emitf("%" PRIu64, whole);
        return;
    }
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    emitf("%" PRIu64 ".%0*" PRIu64, whole, digits, frac);
}

/* A label value: backslash, double quote and newline escaped. */
static void emit_label_value(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            emit("\\\\", 2);
        else if (s[i] == '"')
            emit("\\\"", 2);
        else if (s[i] == '\n')
            emit("\\n", 2);
        else
            emit(&s[i], 1);
    }
}

static void family(const char *name, const char *type, const char *help)
{
    emitf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ------------------------------------------------------------ plugin counters */

/* Each plugin counter's exposition name and escaped help, worked out once
 * per worker: the set is fixed once the master's setup is over. */
struct plugin_counter {
    char *name; /* wharf_<name>_total */
    char *help;
};
static struct plugin_counter *counters;
static size_t ncounters;

/* The names this file writes itself; a plugin counter may not take one. */
static const char *const builtin_names[] = {
    "wharf_requests_total", "wharf_request_duration_seconds", "wharf_requests_in_flight",
    "wharf_connections_open", "wharf_response_body_bytes_total", "wharf_workers",
    "wharf_workers_configured", "wharf_worker_rss_bytes", "wharf_worker_requests_total",
    "wharf_worker_respawns_total", "wharf_check_ok", "wharf_check_duration_seconds", NULL
};

static bool name_taken(const char *name, size_t upto)
{
    for (const char *const *b = builtin_names; *b; b++)
        if (strcmp(*b, name) == 0)
            return true;
    for (size_t i = 0; i < upto; i++)
        if (strcmp(counters[i].name, name) == 0)
            return true;
    return false;
}

/* "static.hits" -> "wharf_static_hits_total"; `suffix` (>= 0) makes a
 * clashing name unique. */
static char *counter_name(const char *name, long suffix)
{
    size_t n = strlen(name);
    if (n > 6 && strcmp(name + n - 6, "_total") == 0)
        n -= 6;
    char *s = malloc(n + 48);
    if (!s)
        return NULL;
    memcpy(s, "wharf_", 6);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_';
        s[6 + i] = ok ? c : '_';
    }
    if (suffix >= 0)
        snprintf(s + 6 + n, 42, "_%ld_total", suffix);
    else
        memcpy(s + 6 + n, "_total", 7);
    return s;
}

/* HELP text: backslash and newline escaped. */
static char *help_text(const char *help)
{
    size_t n = strlen(help);
    char *h = malloc(2 * n + 1), *o = h;
    if (!h)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (help[i] == '\\' || help[i] == '\n') {
            *o++ = '\\';
            *o++ = help[i] == '\n' ? 'n' : '\\';
        } else {
            *o++ = help[i];
        }
    }
    *o = '\0';
    return h;
}

int healthz_metrics_worker_start(struct wharf_worker *w)
{
    struct wharf_server *s = wharf_worker_server(w);
    const char *name, *help;
    uint64_t value;
    size_t n = 0;
    while (wharf_metric_at(s, n, &name, &help, &value))
        n++;
    if (!n)
        return WHARF_OK;
    counters = calloc(n, sizeof *counters);
    if (!counters)
        return WHARF_ERROR;
    for (size_t i = 0; i < n; i++) {
        wharf_metric_at(s, i, &name, &help, &value);
        char *full = counter_name(name, -1);
        if (full && name_taken(full, i)) {
            free(full);
            full = counter_name(name, (long)i);
            if (wharf_worker_id(w) == 1)
                wharf_log(WHARF_LOG_WARN, "healthz: plugin counter '%s' clashes with another metric name; "
                          "shown as %s", name, full ? full : "?");
        }
        counters[i].name = full;
        counters[i].help = help_text(help && *help ? help : name);
        if (!counters[i].name || !counters[i].help)
            return WHARF_ERROR;
        ncounters = i + 1;
    }
    return WHARF_OK;
}

void healthz_metrics_worker_stop(void)
{
    for (size_t i = 0; i < ncounters; i++) {
        free(counters[i].name);
        free(counters[i].help);
    }
    free(counters);
    counters = NULL;
    ncounters = 0;
    free(out.p);
    out.p = NULL;
    out.len = out.cap = 0;
}

/* ------------------------------------------------------------ access */

int healthz_parse_net(const char *text, struct healthz_net *n)
{
    memset(n, 0, sizeof *n);
    if (strcmp(text, "*") == 0)
        return 0;
    if (strcmp(text, "unix") == 0) {
        n->family = -1;
        return 0;
    }
    char buf[INET6_ADDRSTRLEN + 8];
    if (strlen(text) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", text);
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        prefix = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || prefix < 0)
            return -1;
    }
    if (inet_pton(AF_INET, buf, n->addr) == 1) {
        n->family = AF_INET;
        n->prefix = prefix < 0 ? 32 : (unsigned)prefix;
        return prefix <= 32 ? 0 : -1;
    }
    if (inet_pton(AF_INET6, buf, n->addr) == 1) {
        n->family = AF_INET6;
        n->prefix = prefix < 0 ? 128 : (unsigned)prefix;
        return prefix <= 128 ? 0 : -1;
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

/* remote_addr is the client as the http plugin sees it: the peer, or the
 * X-Forwarded-For address when the peer is a trusted proxy; "" for a unix
 * socket peer. */
static bool allowed(const struct healthz_conf *c, const char *addr)
{
    unsigned char a[16];
    int family = 0;
    if (!addr || !*addr)
        family = -1;
    else if (inet_pton(AF_INET, addr, a) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, addr, a) == 1)
        family = AF_INET6;
    for (size_t i = 0; i < c->nallow; i++) {
        const struct healthz_net *n = &c->allow[i];
        if (n->family == 0)
            return true;
        if (n->family == family &&
            (family == -1 || prefix_match(a, n->addr, n->prefix)))
            return true;
        /* an IPv4 net also matches ::ffff:a.b.c.d */
        if (n->family == AF_INET && family == AF_INET6 &&
            IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a) &&
            prefix_match(a + 12, n->addr, n->prefix))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ the page */

struct totals {
    uint64_t status_class[6];
    uint64_t bucket[WHARF_LATENCY_BUCKETS];
    uint64_t latency_sum_us;
    uint64_t bytes_sent;
    uint64_t respawns;
    uint64_t in_flight;
    uint64_t connections;
    uint64_t states[WHARF_WORKER_STOPPED + 1];
};

static const char *const state_names[] = {
    [WHARF_WORKER_STARTING] = "starting",
    [WHARF_WORKER_READY] = "ready",
    [WHARF_WORKER_DRAINING] = "draining",
    [WHARF_WORKER_STOPPED] = "stopped",
};

static bool slot_alive(const struct wharf_worker_info *wi)
{
    return wi->pid > 0 && wi->state > WHARF_WORKER_EMPTY && wi->state <= WHARF_WORKER_STOPPED;
}

static void emit_requests(const struct totals *t)
{
    static const char *const classes[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
    family("wharf_requests_total", "counter",
           "Requests answered, by status class (probes and scrapes included).");
    for (int c = 1; c <= 6; c++)
        emitf("wharf_requests_total{code=\"%s\"} %" PRIu64 "\n", classes[c % 6], t->status_class[c % 6]);

    static const unsigned bounds_ms[] = WHARF_LATENCY_BUCKETS_MS;
    _Static_assert(sizeof bounds_ms / sizeof bounds_ms[0] + 1 == WHARF_LATENCY_BUCKETS,
                   "one bucket per bound, plus +Inf");
    family("wharf_request_duration_seconds", "histogram",
           "Time from the request head to the end of the response.");
    uint64_t cumulative = 0;
    for (int b = 0; b < WHARF_LATENCY_BUCKETS; b++) {
        cumulative += t->bucket[b];
        emits("wharf_request_duration_seconds_bucket{le=\"");
        if (b < WHARF_LATENCY_BUCKETS - 1)
            emit_fixed(bounds_ms[b], 1000, 3);
        else
            emits("+Inf");
        emitf("\"} %" PRIu64 "\n", cumulative);
    }
    emits("wharf_request_duration_seconds_sum ");
    emit_fixed(t->latency_sum_us, 1000000, 6);
    emitf("\nwharf_request_duration_seconds_count %" PRIu64 "\n", cumulative);

    family("wharf_requests_in_flight", "gauge", "Requests being processed now (this scrape included).");
    emitf("wharf_requests_in_flight %" PRIu64 "\n", t->in_flight);
    family("wharf_connections_open", "gauge", "Open client connections.");
    emitf("wharf_connections_open %" PRIu64 "\n", t->connections);
    family("wharf_response_body_bytes_total", "counter", "Response body bytes sent.");
    emitf("wharf_response_body_bytes_total %" PRIu64 "\n", t->bytes_sent);
}

static void emit_workers(struct wharf_server *s, const struct totals *t)
{
    family("wharf_workers", "gauge", "Worker processes by state.");
    for (int st = WHARF_WORKER_STARTING; st <= WHARF_WORKER_STOPPED; st++)
        emitf("wharf_workers{state=\"%s\"} %" PRIu64 "\n", state_names[st], t->states[st]);
    family("wharf_workers_configured", "gauge", "Worker processes configured (processes).");
    emitf("wharf_workers_configured %u\n", wharf_server_processes(s));

    /* Slots 2N-2 and 2N-1 belong to worker N (see wharf_worker_info). */
    family("wharf_worker_rss_bytes", "gauge",
           "Resident memory of each worker (both processes while one replaces the other), "
           "sampled every second.");
    struct wharf_worker_info a, b;
    for (unsigned i = 0; wharf_worker_info(s, i, &a); i += 2) {
        if (!wharf_worker_info(s, i + 1, &b))
            memset(&b, 0, sizeof b);
        uint64_t rss = (slot_alive(&a) ? a.rss_bytes : 0) + (slot_alive(&b) ? b.rss_bytes : 0);
        emitf("wharf_worker_rss_bytes{worker=\"%u\"} %" PRIu64 "\n", i / 2 + 1, rss);
    }
    family("wharf_worker_requests_total", "counter", "Requests answered by each worker, across respawns.");
    for (unsigned i = 0; wharf_worker_info(s, i, &a); i += 2) {
        if (!wharf_worker_info(s, i + 1, &b))
            memset(&b, 0, sizeof b);
        emitf("wharf_worker_requests_total{worker=\"%u\"} %" PRIu64 "\n", i / 2 + 1,
              a.total_requests + b.total_requests);
    }
    family("wharf_worker_respawns_total", "counter",
           "Worker processes started again in a used slot (crash, kill, recycle or reload).");
    emitf("wharf_worker_respawns_total %" PRIu64 "\n", t->respawns);
}

static void emit_checks(struct wharf_server *s)
{
    struct wharf_check local[32], *checks = local;
    size_t n = wharf_checks(s, local, 32);
    if (n > 32) {
        checks = calloc(n, sizeof *checks);
        if (!checks)
            return;
        n = wharf_checks(s, checks, n);
    }
    if (n) {
        family("wharf_check_ok", "gauge", "1 if the readiness check passed, 0 if it failed or is stale.");
        for (size_t i = 0; i < n; i++) {
            emits("wharf_check_ok{check=\"");
            emit_label_value(checks[i].name, strnlen(checks[i].name, sizeof checks[i].name));
            emitf("\"} %d\n", checks[i].ok ? 1 : 0);
        }
        family("wharf_check_duration_seconds", "gauge", "Time the last run of the readiness check took.");
        for (size_t i = 0; i < n; i++) {
            emits("wharf_check_duration_seconds{check=\"");
            emit_label_value(checks[i].name, strnlen(checks[i].name, sizeof checks[i].name));
            emits("\"} ");
            emit_fixed(checks[i].latency_ms, 1000, 3);
            emits("\n");
        }
    }
    if (checks != local)
        free(checks);
}

static void emit_plugin_counters(struct wharf_server *s)
{
    for (size_t i = 0; i < ncounters; i++) {
        const char *name, *help;
        uint64_t value;
        if (!wharf_metric_at(s, i, &name, &help, &value))
            break;
        family(counters[i].name, "counter", counters[i].help);
        emitf("%s %" PRIu64 "\n", counters[i].name, value);
    }
}

int healthz_metrics(struct wharf_request *r, struct healthz_conf *c)
{
    if (c->nallow && !allowed(c, r->remote_addr)) {
        static const char body[] = "Forbidden: this client is not in metrics-allow\n";
        return healthz_reply(r, 403, "text/plain; charset=utf-8", body, sizeof body - 1);
    }
    struct wharf_server *s = wharf_worker_server(r->worker);
    struct totals t;
    memset(&t, 0, sizeof t);
    struct wharf_worker_info wi;
    for (unsigned i = 0; wharf_worker_info(s, i, &wi); i++) {
        for (int k = 0; k < 6; k++)
            t.status_class[k] += wi.status_class[k];
        for (int b = 0; b < WHARF_LATENCY_BUCKETS; b++)
            t.bucket[b] += wi.latency_bucket[b];
        t.latency_sum_us += wi.latency_sum_us;
        t.bytes_sent += wi.bytes_sent;
        t.respawns += wi.respawns;
        if (slot_alive(&wi)) {
            t.in_flight += wi.in_flight;
            t.connections += wi.connections;
            t.states[wi.state]++;
        }
    }
    out.len = 0;
    out.failed = false;
    emit_requests(&t);
    emit_workers(s, &t);
    emit_checks(s);
    emit_plugin_counters(s);
    if (out.failed)
        return WHARF_ERROR;
    return healthz_reply(r, 200, TEXT_FORMAT, out.p, out.len);
}
