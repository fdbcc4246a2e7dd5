/*
 * plugins/route/route_plugin.c - uWSGI's internal routing for wharf.
 *
 *   route = ^/healthz/live break:200
 *   route-host = ^old\.example\.com$ redirect-permanent:https://example.com${REQUEST_URI}
 *   route = ^/admin basicauth:Admin,admin:secret
 *   route-if = equal:${REQUEST_METHOD};TRACE return:405
 *   response-route = ^/api/ addheader:Cache-Control: no-store
 *   final-route = ^/slow log:slow request ${REQUEST_URI} status ${uwsgi[status]}
 *
 * Every route* line of every kind (route, route-host, route-if, route-label,
 * ...) goes into one table per chain in config order, as uWSGI builds them:
 * the request chain runs in the ROUTE phase (before static files and the
 * app), response-route* in the RESPONSE phase (just before the response
 * head goes out, any thread) and final-route* in the LOG phase.
 *
 * The rule language lives in rules.c; this file maps it onto requests.
 * Hot path: a rule that does not match costs one JIT regex match and no
 * allocation (per-thread match data, created once).
 */
#include "wharf.h"
#include "rules.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOPTS 33 /* 11 kinds x 3 chains, in route_option_names order */

struct route_conf {
    struct wharf_list lists[NOPTS];
    struct route_config cfg;
};

#define LIST_AT(i) (offsetof(struct route_conf, lists) + (i) * sizeof(struct wharf_list))
#define OPT(i, name, help) \
    { name, WHARF_OPT_STRING | WHARF_OPT_LIST, LIST_AT(i), NULL, help, 0, 0 }
#define CHAIN_OPTS(base, prefix, when)                                                       \
    OPT(base + 0, prefix, "REGEX ACTION: run ACTION when PATH_INFO matches (" when ")"),     \
    OPT(base + 1, prefix "-host", "REGEX ACTION on HTTP_HOST (" when ")"),                   \
    OPT(base + 2, prefix "-uri", "REGEX ACTION on REQUEST_URI (" when ")"),                  \
    OPT(base + 3, prefix "-qs", "REGEX ACTION on QUERY_STRING (" when ")"),                  \
    OPT(base + 4, prefix "-remote-addr", "REGEX ACTION on REMOTE_ADDR (" when ")"),          \
    OPT(base + 5, prefix "-user-agent", "REGEX ACTION on HTTP_USER_AGENT (" when ")"),       \
    OPT(base + 6, prefix "-referer", "REGEX ACTION on HTTP_REFERER (" when ")"),             \
    OPT(base + 7, prefix "-run", "ACTION: always run ACTION (" when ")"),                    \
    OPT(base + 8, prefix "-if", "COND:A[;B] ACTION, e.g. equal:${REQUEST_METHOD};POST (" when ")"), \
    OPT(base + 9, prefix "-if-not", "COND:A[;B] ACTION, when the condition is false (" when ")"), \
    OPT(base + 10, prefix "-label", "LABEL: a target for goto:LABEL (" when ")")

static const struct wharf_option route_options[] = {
    CHAIN_OPTS(0, "route", "request routing, before static files and the app"),
    CHAIN_OPTS(11, "response-route", "just before the response head is sent"),
    CHAIN_OPTS(22, "final-route", "after the response was sent"),
    WHARF_OPTIONS_END
};

/* ------------------------------------------------------------ per thread */

/* Match data and expansion buffers, one set per chain so that the
 * RESPONSE chain, which runs inside a request-chain action (break:200
 * sends the response), never touches what the request chain is using. */
enum { BUF_A, BUF_B, BUF_OUT, NBUFS };
struct chain_state {
    pcre2_match_data *md;
    char *buf[NBUFS];
};
struct thread_state {
    struct chain_state chain[ROUTE_CHAINS];
    unsigned limit_warnings;
};

static pthread_key_t state_key;
static bool state_key_ok;
static pcre2_match_context *match_ctx;
/* uWSGI's "routed requests": answered by the request chain itself */
static int answered_metric = -1;

static void state_free(void *p)
{
    struct thread_state *ts = p;
    for (int c = 0; c < ROUTE_CHAINS; c++) {
        if (ts->chain[c].md)
            pcre2_match_data_free(ts->chain[c].md);
        free(ts->chain[c].buf[0]);
    }
    free(ts);
}

static struct chain_state *chain_state(enum route_chain c)
{
    struct thread_state *ts = pthread_getspecific(state_key);
    if (!ts) {
        ts = calloc(1, sizeof *ts);
        if (!ts || pthread_setspecific(state_key, ts) != 0) {
            free(ts);
            return NULL;
        }
    }
    struct chain_state *cs = &ts->chain[c];
    if (!cs->md) {
        cs->md = pcre2_match_data_create(ROUTE_MAX_GROUPS, NULL);
        char *b = malloc((size_t)NBUFS * ROUTE_SUBST_MAX);
        if (!cs->md || !b) {
            if (cs->md)
                pcre2_match_data_free(cs->md);
            cs->md = NULL;
            free(b);
            return NULL;
        }
        for (int i = 0; i < NBUFS; i++)
            cs->buf[i] = b + (size_t)i * ROUTE_SUBST_MAX;
    }
    return cs;
}

/* A regex that hits PCRE2's match limit on hostile input would log once
 * per request; log the first and then every 1000th per thread. */
static void warn_limit(const struct route_rule *rule)
{
    struct thread_state *ts = pthread_getspecific(state_key);
    unsigned n = ts ? ts->limit_warnings++ : 0;
    if (n % 1000 == 0)
        wharf_log(WHARF_LOG_WARN,
                  "route: %s: regex '%s' hit the match limit; the rule did not apply "
                  "(%u times in this thread)",
                  rule->origin, rule->re.pattern, n + 1);
}

/* ------------------------------------------------------------ variables */

struct lookup_ctx {
    struct wharf_request *r;
};

static bool set_str(const char *s, const char **val, size_t *len)
{
    if (!s)
        return false;
    *val = s;
    *len = strlen(s);
    return true;
}

static bool set_num(uint64_t v, char *scratch, size_t scratch_len, const char **val,
                    size_t *len)
{
    int n = snprintf(scratch, scratch_len, "%" PRIu64, v);
    if (n < 0 || (size_t)n >= scratch_len)
        return false;
    *val = scratch;
    *len = (size_t)n;
    return true;
}

static bool eq(const char *a, size_t alen, const char *lit)
{
    return strlen(lit) == alen && memcmp(a, lit, alen) == 0;
}

/* ${uwsgi[...]} and ${time[...]}: the uWSGI route vars that make sense here */
static bool route_var(struct wharf_request *r, const char *name, size_t nlen, const char *arg,
                      size_t alen, char *scratch, size_t scratch_len, const char **val,
                      size_t *len)
{
    if (eq(name, nlen, "uwsgi") || eq(name, nlen, "wharf")) {
        if (eq(arg, alen, "wid"))
            return set_num(wharf_worker_id(r->worker), scratch, scratch_len, val, len);
        if (eq(arg, alen, "pid"))
            return set_num((uint64_t)getpid(), scratch, scratch_len, val, len);
        if (eq(arg, alen, "status"))
            return set_num((uint64_t)r->status, scratch, scratch_len, val, len);
        if (eq(arg, alen, "rsize"))
            return set_num(r->bytes_sent, scratch, scratch_len, val, len);
        if (eq(arg, alen, "rtime")) { /* microseconds since the request began */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
            return set_num((uint64_t)((now - r->start_ns) / 1000), scratch, scratch_len, val,
                           len);
        }
        if (eq(arg, alen, "request_id"))
            return set_str(r->request_id, val, len);
        return false;
    }
    if (eq(name, nlen, "time")) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (eq(arg, alen, "unix"))
            return set_num((uint64_t)ts.tv_sec, scratch, scratch_len, val, len);
        if (eq(arg, alen, "micros"))
            return set_num((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000,
                           scratch, scratch_len, val, len);
        return false;
    }
    return false;
}

/* HTTP_FOO_BAR -> the "Foo-Bar" request header (case-insensitive).  A
 * header sent with '_' in its name never matches (nginx drops those too). */
static const char *http_header(struct wharf_request *r, const char *name, size_t nlen,
                               size_t *vlen)
{
    char hname[128];
    if (nlen >= sizeof hname)
        return NULL;
    for (size_t i = 0; i < nlen; i++)
        hname[i] = name[i] == '_' ? '-' : name[i];
    hname[nlen] = '\0';
    return wharf_request_header(r, hname, vlen);
}

static bool lookup(void *vctx, const char *name, size_t nlen, const char *arg, size_t alen,
                   char *scratch, size_t scratch_len, const char **val, size_t *len)
{
    struct wharf_request *r = ((struct lookup_ctx *)vctx)->r;
    if (arg)
        return route_var(r, name, nlen, arg, alen, scratch, scratch_len, val, len);
    char key[128];
    if (nlen == 0 || nlen >= sizeof key)
        return false;
    memcpy(key, name, nlen);
    key[nlen] = '\0';
    /* vars set by addvar/setvar and basicauth (REMOTE_USER) first, as
     * uWSGI's uwsgi_get_var sees the variables routing added */
    const char *v = wharf_request_var_get(r, key, len);
    if (v) {
        *val = v;
        return true;
    }
    switch (key[0]) {
    case 'C':
        if (strcmp(key, "CONTENT_TYPE") == 0)
            return (*val = wharf_request_header(r, "Content-Type", len)) != NULL;
        if (strcmp(key, "CONTENT_LENGTH") == 0)
            return (*val = wharf_request_header(r, "Content-Length", len)) != NULL;
        break;
    case 'D':
        if (strcmp(key, "DOCUMENT_ROOT") == 0)
            return set_str("", val, len);
        break;
    case 'H':
        if (strcmp(key, "HTTPS") == 0)
            return r->scheme && strcmp(r->scheme, "https") == 0 && set_str("on", val, len);
        if (strcmp(key, "HTTP_X_REQUEST_ID") == 0 && r->request_id)
            return set_str(r->request_id, val, len);
        if (nlen > 5 && memcmp(key, "HTTP_", 5) == 0)
            return (*val = http_header(r, key + 5, nlen - 5, len)) != NULL;
        break;
    case 'P':
        if (strcmp(key, "PATH_INFO") == 0) {
            *val = r->path;
            *len = r->path_len;
            return r->path != NULL;
        }
        break;
    case 'Q':
        if (strcmp(key, "QUERY_STRING") == 0) {
            *val = r->query ? r->query : "";
            *len = r->query ? r->query_len : 0;
            return true;
        }
        break;
    case 'R':
        if (strcmp(key, "REQUEST_METHOD") == 0) {
            *val = r->method;
            *len = r->method_len;
            return r->method != NULL;
        }
        if (strcmp(key, "REQUEST_URI") == 0) {
            *val = r->uri;
            *len = r->uri_len;
            return r->uri != NULL;
        }
        if (strcmp(key, "REMOTE_ADDR") == 0)
            return set_str(r->remote_addr, val, len);
        if (strcmp(key, "REMOTE_PORT") == 0)
            return set_num(r->remote_port, scratch, scratch_len, val, len);
        if (strcmp(key, "REQUEST_SCHEME") == 0)
            return set_str(r->scheme, val, len);
        break;
    case 'S':
        if (strcmp(key, "SERVER_PROTOCOL") == 0)
            return set_str(r->protocol, val, len);
        if (strcmp(key, "SERVER_NAME") == 0)
            return set_str(r->server_name, val, len);
        if (strcmp(key, "SERVER_PORT") == 0)
            return set_num(r->server_port, scratch, scratch_len, val, len);
        if (strcmp(key, "SCRIPT_NAME") == 0)
            return set_str("", val, len);
        break;
    case 'U':
        if (strcmp(key, "UWSGI_SCHEME") == 0)
            return set_str(r->scheme, val, len);
        break;
    default:
        break;
    }
    return false;
}

/* ------------------------------------------------------------ running */

enum step {
    STEP_NEXT,     /* go on with the next rule */
    STEP_JUMP,     /* goto: *jump holds the rule index */
    STEP_STOP,     /* stop the chain, the request goes on (continue/last) */
    STEP_DONE,     /* a response was produced */
};

static const char *subject_of(struct wharf_request *r, enum route_subject s, size_t *len)
{
    const char *v = NULL;
    *len = 0;
    switch (s) {
    case ROUTE_SUBJ_PATH:
        *len = r->path_len;
        return r->path;
    case ROUTE_SUBJ_URI:
        *len = r->uri_len;
        return r->uri;
    case ROUTE_SUBJ_QS:
        *len = r->query ? r->query_len : 0;
        return r->query;
    case ROUTE_SUBJ_HOST:
        v = wharf_request_header(r, "Host", len);
        break;
    case ROUTE_SUBJ_USER_AGENT:
        v = wharf_request_header(r, "User-Agent", len);
        break;
    case ROUTE_SUBJ_REFERER:
        v = wharf_request_header(r, "Referer", len);
        break;
    case ROUTE_SUBJ_REMOTE_ADDR:
        v = r->remote_addr;
        *len = v ? strlen(v) : 0;
        break;
    default:
        break;
    }
    if (!v)
        *len = 0;
    return v;
}

/* Expand a template into `buf`; false (logged) when it does not fit. */
static bool expand(const struct route_rule *rule, const struct route_tmpl *t,
                   const struct route_caps *caps, struct wharf_request *r, char *buf,
                   size_t *len)
{
    struct lookup_ctx ctx = { r };
    ssize_t n = route_tmpl_expand(t, caps, lookup, &ctx, buf, ROUTE_SUBST_MAX);
    if (n < 0) {
        wharf_log(WHARF_LOG_WARN, "route: %s: %s: the expansion of '%s' is longer than %d bytes",
                  rule->origin, rule->option, t->text, ROUTE_SUBST_MAX);
        return false;
    }
    *len = (size_t)n;
    return true;
}

/* The request chain cannot go on after a failed expansion: answer 500
 * (uWSGI breaks the request); later chains just skip the action. */
static enum step failed(struct wharf_request *r, enum route_chain chain)
{
    if (chain != ROUTE_CHAIN_REQUEST)
        return STEP_NEXT;
    r->close_connection = true;
    wharf_response_simple(r, 500, "text/plain", "Internal Server Error\n", 22);
    return STEP_DONE;
}

static enum step do_rewrite(const struct route_rule *rule, struct wharf_request *r,
                            const char *s, size_t len)
{
    /* uWSGI's router_rewrite: the part before '?' is percent-decoded into
     * PATH_INFO; a '?' brings a new QUERY_STRING, with the old one appended
     * after '&'; without '?' the query string stays.  REQUEST_URI keeps
     * what the client sent. */
    const char *q = memchr(s, '?', len);
    size_t plen = q ? (size_t)(q - s) : len;
    char *path = wharf_request_alloc(r, plen + 1);
    size_t dlen = route_url_decode(s, plen, path);
    if (q) {
        size_t nq = len - plen - 1;
        size_t oq = r->query ? r->query_len : 0;
        char *query = wharf_request_alloc(r, nq + 1 + oq + 1);
        memcpy(query, q + 1, nq);
        size_t ql = nq;
        if (oq) {
            query[ql++] = '&';
            memcpy(query + ql, r->query, oq);
            ql += oq;
        }
        query[ql] = '\0';
        r->query = query;
        r->query_len = ql;
    }
    r->path = path;
    r->path_len = dlen;
    return rule->last ? STEP_STOP : STEP_NEXT;
}

static enum step send_401(const struct route_rule *rule, struct wharf_request *r)
{
    char hv[300];
    int n = snprintf(hv, sizeof hv, "Basic realm=\"%s\"", rule->realm);
    if (n < 0 || (size_t)n >= sizeof hv)
        n = snprintf(hv, sizeof hv, "Basic realm=\"restricted\"");
    wharf_response_header(r, "WWW-Authenticate", 16, hv, (size_t)n);
    wharf_response_simple(r, 401, "text/plain", "Unauthorized", 12);
    return STEP_DONE;
}

static enum step do_basicauth(const struct route_rule *rule, struct wharf_request *r)
{
    /* uWSGI: a request already authenticated by an earlier rule passes */
    if (wharf_request_var_get(r, "REMOTE_USER", NULL))
        return STEP_NEXT;
    size_t hlen = 0;
    const char *h = wharf_request_header(r, "Authorization", &hlen);
    if (!h || hlen > ROUTE_AUTH_MAX + 16 || (!rule->creds && !rule->htpasswd))
        return send_401(rule, r);
    char dec[ROUTE_AUTH_MAX + 1];
    ssize_t dlen = route_basic_decode(h, hlen, dec, sizeof dec);
    if (dlen < 0)
        return send_401(rule, r);
    size_t ulen = 0;
    if (rule->creds) {
        if (route_ct_equal(dec, (size_t)dlen, rule->creds, rule->creds_len))
            ulen = rule->user_len;
    } else {
        const char *colon = memchr(dec, ':', (size_t)dlen);
        if (colon)
            ulen = route_htpasswd_check(rule->htpasswd, dec, (size_t)(colon - dec), colon + 1,
                                        (size_t)dlen - (size_t)(colon - dec) - 1);
    }
    if (ulen)
        wharf_request_var_set(r, "REMOTE_USER", dec, ulen);
    memset(dec, 0, sizeof dec);
    if (ulen || rule->next)
        return STEP_NEXT; /* basicauth-next: a wrong password tries the next rule */
    return send_401(rule, r);
}

static enum step run_action(const struct route_table *t, size_t index, struct wharf_request *r,
                            const struct route_caps *caps, struct chain_state *cs,
                            size_t *jump)
{
    const struct route_rule *rule = &t->rules[index];
    char *out = cs->buf[BUF_OUT];
    size_t n = 0;
    switch (rule->action) {
    case ROUTE_ACT_CONTINUE:
        return STEP_STOP;
    case ROUTE_ACT_BREAK:
        if (rule->chain != ROUTE_CHAIN_REQUEST)
            return STEP_STOP;
        if (!rule->status) {
            /* uWSGI closes the request without any response; wharf always
             * answers, so a bare break is an empty 500 and a closed
             * connection */
            r->close_connection = true;
            wharf_response_simple(r, 500, "text/plain", "", 0);
        } else if (rule->reason) {
            if (wharf_response_start(r, rule->status, rule->reason) == 0) {
                wharf_response_header(r, "Content-Type", 12, "text/plain", 10);
                wharf_response_header(r, "Content-Length", 14, "0", 1);
                wharf_response_end(r);
            }
        } else {
            wharf_response_simple(r, rule->status, "text/plain", "", 0);
        }
        return STEP_DONE;
    case ROUTE_ACT_RETURN: {
        /* uWSGI's return: the reason phrase is the body */
        const char *reason = wharf_status_reason(rule->status);
        wharf_response_simple(r, rule->status, "text/plain", reason, strlen(reason));
        return STEP_DONE;
    }
    case ROUTE_ACT_REDIRECT: {
        char *raw = cs->buf[BUF_A];
        if (!expand(rule, &rule->arg, caps, r, raw, &n))
            return failed(r, rule->chain);
        ssize_t m = route_location_encode(raw, n, out, ROUTE_SUBST_MAX);
        if (m < 0) {
            wharf_log(WHARF_LOG_WARN, "route: %s: redirect URL longer than %d bytes",
                      rule->origin, ROUTE_SUBST_MAX);
            return failed(r, rule->chain);
        }
        const char *reason = wharf_status_reason(rule->status);
        wharf_response_header(r, "Location", 8, out, (size_t)m);
        wharf_response_simple(r, rule->status, "text/plain", reason, strlen(reason));
        return STEP_DONE;
    }
    case ROUTE_ACT_REWRITE:
        if (!expand(rule, &rule->arg, caps, r, out, &n))
            return failed(r, rule->chain);
        return do_rewrite(rule, r, out, n);
    case ROUTE_ACT_GOTO: {
        if (!rule->goto_dynamic) {
            *jump = rule->goto_target;
            return STEP_JUMP;
        }
        if (!expand(rule, &rule->arg, caps, r, out, &n))
            return failed(r, rule->chain);
        if (route_find_label(t, out, n, index + 1, jump))
            return STEP_JUMP;
        /* uWSGI: "goto can only jump forward", and the request breaks */
        char esc[256];
        route_log_escape(out, n, esc, sizeof esc);
        wharf_log(WHARF_LOG_ERROR, "route: %s: goto '%s': no label of that name after this rule",
                  rule->origin, esc);
        return failed(r, rule->chain);
    }
    case ROUTE_ACT_ADDHEADER: {
        if (!expand(rule, &rule->arg, caps, r, out, &n))
            return failed(r, rule->chain);
        const char *name, *value;
        size_t nl, vl;
        if (!route_header_split(out, n, &name, &nl, &value, &vl)) {
            /* a value built from request data may hold a CR/LF: never sent */
            wharf_log(WHARF_LOG_WARN, "route: %s: addheader: the expanded value is not a "
                                      "valid header value; header not added",
                      rule->origin);
            return STEP_NEXT;
        }
        if (!r->head_sent)
            wharf_response_header(r, name, nl, value, vl);
        return STEP_NEXT;
    }
    case ROUTE_ACT_DELHEADER:
        if (!expand(rule, &rule->arg, caps, r, out, &n))
            return failed(r, rule->chain);
        if (!r->head_sent)
            wharf_response_header_del(r, out);
        return STEP_NEXT;
    case ROUTE_ACT_SETVAR:
        if (!expand(rule, &rule->arg, caps, r, out, &n))
            return failed(r, rule->chain);
        wharf_request_var_set(r, rule->var_name, out, n);
        return STEP_NEXT;
    case ROUTE_ACT_LOG: {
        if (!expand(rule, &rule->arg, caps, r, out, &n))
            return failed(r, rule->chain);
        /* request data in the log: no forged lines, no terminal escapes */
        char *esc = cs->buf[BUF_A];
        route_log_escape(out, n, esc, ROUTE_SUBST_MAX);
        wharf_log(WHARF_LOG_INFO, "%s", esc);
        return STEP_NEXT;
    }
    case ROUTE_ACT_BASICAUTH:
        return do_basicauth(rule, r);
    default:
        return STEP_NEXT;
    }
}

/* route-if: expand the operands and test. */
static int eval_if(const struct route_rule *rule, struct wharf_request *r,
                   const struct route_caps *caps, struct chain_state *cs, struct route_caps *out)
{
    size_t alen = 0, blen = 0;
    char *a = cs->buf[BUF_A], *b = cs->buf[BUF_B];
    if (!expand(rule, &rule->cond_a, caps, r, a, &alen))
        return -1;
    if (rule->cond == ROUTE_COND_REGEXP) {
        /* captures point into `a`, which the action must not overwrite:
         * keep the subject in request memory */
        char *subj = wharf_request_strndup(r, a, alen);
        int m = route_regex_match(&rule->re, subj, alen, cs->md, match_ctx, out);
        if (m < 0)
            warn_limit(rule);
        return m == 1;
    }
    if (rule->cond_b.text && !expand(rule, &rule->cond_b, caps, r, b, &blen))
        return -1;
    return route_cond_eval(rule->cond, a, alen, b, blen);
}

static int run_chain(const struct route_table *t, enum route_chain chain,
                     struct wharf_request *r)
{
    struct chain_state *cs = chain_state(chain);
    if (!cs) {
        wharf_log(WHARF_LOG_ERROR, "route: out of memory");
        return WHARF_ERROR;
    }
    /* $1..$9 come from the last regex that matched (uWSGI: the rule's own
     * regex; rules without a regex keep the previous captures) */
    struct route_caps caps;
    caps.n = 0;
    size_t i = 0;
    while (i < t->count) {
        const struct route_rule *rule = &t->rules[i];
        if (rule->subject == ROUTE_SUBJ_LABEL) {
            i++;
            continue;
        }
        if (rule->subject < ROUTE_SUBJ_REGEX_END) {
            size_t len;
            const char *s = subject_of(r, rule->subject, &len);
            struct route_caps m;
            int rc = route_regex_match(&rule->re, s, len, cs->md, match_ctx, &m);
            if (rc != 1) {
                if (rc < 0)
                    warn_limit(rule);
                i++;
                continue;
            }
            caps = m;
        } else if (rule->subject == ROUTE_SUBJ_IF) {
            struct route_caps m;
            m.n = 0;
            int rc = eval_if(rule, r, &caps, cs, &m);
            if (rc < 0) {
                if (failed(r, chain) == STEP_DONE)
                    return WHARF_DONE;
                i++;
                continue;
            }
            if ((rc == 1) == rule->negate) {
                i++;
                continue;
            }
            if (m.n)
                caps = m;
        }
        size_t jump = 0;
        switch (run_action(t, i, r, &caps, cs, &jump)) {
        case STEP_NEXT:
            i++;
            break;
        case STEP_JUMP:
            i = jump; /* always forward: checked at load or just now */
            break;
        case STEP_STOP:
            return WHARF_DECLINED;
        case STEP_DONE:
            return WHARF_DONE;
        }
    }
    return WHARF_DECLINED;
}

static int route_handle(struct wharf_request *r, void *vconf)
{
    struct route_conf *conf = vconf;
    enum route_chain chain;
    switch (wharf_request_phase(r)) {
    case WHARF_PHASE_ROUTE:
        chain = ROUTE_CHAIN_REQUEST;
        break;
    case WHARF_PHASE_RESPONSE:
        chain = ROUTE_CHAIN_RESPONSE;
        break;
    case WHARF_PHASE_LOG:
        chain = ROUTE_CHAIN_FINAL;
        break;
    default:
        return WHARF_DECLINED;
    }
    const struct route_table *t = &conf->cfg.chain[chain];
    if (!t->count)
        return WHARF_DECLINED;
    int rc = run_chain(t, chain, r);
    if (chain != ROUTE_CHAIN_REQUEST)
        return WHARF_DECLINED;
    if (rc == WHARF_DONE)
        wharf_metric_add(r->worker, answered_metric, 1);
    return rc;
}

/* ------------------------------------------------------------ setup */

struct item_ref {
    const char *option;
    const struct wharf_list_item *item;
    uint64_t seq;
    size_t order; /* fallback when the core cannot tell the order */
};

static int by_seq(const void *a, const void *b)
{
    const struct item_ref *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int route_setup(struct wharf_server *s, void *vconf)
{
    struct route_conf *conf = vconf;
    for (size_t i = 0; i < NOPTS; i++)
        if (!route_option_names[i] || strcmp(route_option_names[i], route_options[i].name) != 0) {
            wharf_log(WHARF_LOG_ERROR, "route: option table out of sync with rules.c");
            return WHARF_ERROR;
        }
    size_t total = 0;
    for (size_t i = 0; i < NOPTS; i++)
        total += conf->lists[i].count;
    struct item_ref *refs = calloc(total ? total : 1, sizeof *refs);
    if (!refs)
        return WHARF_ERROR;
    size_t k = 0;
    for (size_t i = 0; i < NOPTS; i++)
        for (size_t j = 0; j < conf->lists[i].count; j++, k++) {
            refs[k].option = route_options[i].name;
            refs[k].item = &conf->lists[i].items[j];
            refs[k].seq = wharf_list_item_seq(s, refs[k].item);
            refs[k].order = k;
        }
    /* uWSGI builds each chain in file order across all route* options */
    qsort(refs, total, sizeof *refs, by_seq);

    route_config_init(&conf->cfg, true);
    char err[1024];
    int rc = WHARF_OK;
    for (k = 0; k < total; k++) {
        err[0] = '\0';
        if (route_config_add(&conf->cfg, refs[k].option, refs[k].item->value,
                             refs[k].item->origin, err, sizeof err) < 0) {
            wharf_config_error(refs[k].item->origin, refs[k].option, "%s", err);
            rc = WHARF_ERROR;
            break;
        }
    }
    free(refs);
    const struct route_rule *bad = NULL;
    if (rc == WHARF_OK && route_config_finish(&conf->cfg, &bad, err, sizeof err) < 0) {
        wharf_config_error(bad->origin, bad->option, "%s", err);
        rc = WHARF_ERROR;
    }
    if (rc != WHARF_OK)
        return rc;

    if (!state_key_ok) {
        if (pthread_key_create(&state_key, state_free) != 0) {
            wharf_log(WHARF_LOG_ERROR, "route: pthread_key_create failed");
            return WHARF_ERROR;
        }
        state_key_ok = true;
    }
    if (!match_ctx) {
        /* hostile subjects against a backtracking-prone regex: stop early
         * (PCRE2's default is 10 million steps) */
        match_ctx = pcre2_match_context_create(NULL);
        if (match_ctx)
            pcre2_set_match_limit(match_ctx, 1000000);
    }
    answered_metric = wharf_metric_register(
        s, "route_answered",
        "requests answered by a route rule (break, return, redirect, basicauth 401)");
    size_t rules[ROUTE_CHAINS] = { 0 }, labels = 0, jit = 0, regexes = 0;
    for (int c = 0; c < ROUTE_CHAINS; c++)
        for (size_t i = 0; i < conf->cfg.chain[c].count; i++) {
            const struct route_rule *r = &conf->cfg.chain[c].rules[i];
            if (r->subject == ROUTE_SUBJ_LABEL)
                labels++;
            else
                rules[c]++;
            regexes += r->re.code != NULL;
            jit += r->re.jit;
        }
    wharf_log(WHARF_LOG_INFO,
              "route: %zu request, %zu response and %zu final rules, %zu labels; "
              "%zu of %zu regexes JIT-compiled",
              rules[ROUTE_CHAIN_REQUEST], rules[ROUTE_CHAIN_RESPONSE], rules[ROUTE_CHAIN_FINAL],
              labels, jit, regexes);
    return WHARF_OK;
}

static void route_teardown(struct wharf_server *s, void *vconf)
{
    (void)s;
    struct route_conf *conf = vconf;
    route_config_free(&conf->cfg);
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "route",
    .version = "1.0",
    .options = route_options,
    .config_size = sizeof(struct route_conf),
    .setup = route_setup,
    .handle = route_handle,
    .phases = WHARF_PHASE_BIT(WHARF_PHASE_ROUTE) | WHARF_PHASE_BIT(WHARF_PHASE_RESPONSE) |
              WHARF_PHASE_BIT(WHARF_PHASE_LOG),
    .teardown = route_teardown,
};
