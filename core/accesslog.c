/*
 * core/accesslog.c - one line per request, in uWSGI's `log-format`
 * language (%(method) %(uri) %(status) ...) or as JSON (`log-format =
 * json`).  The format is compiled once at startup into a list of
 * literal/variable tokens; formatting a line allocates nothing.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum var_id {
    V_LITERAL,
    V_URI, V_METHOD, V_USER, V_ADDR, V_HOST, V_PROTO, V_UAGENT, V_REFERER,
    V_STATUS, V_MICROS, V_MSECS, V_TIME, V_EPOCH, V_CTIME, V_LTIME, V_ISO,
    V_SIZE, V_RSIZE, V_CL, V_PID, V_WID, V_REQUEST_ID, V_HEADER, V_VAR,
};

static const struct {
    const char *name;
    enum var_id id;
} var_names[] = {
    { "uri", V_URI }, { "method", V_METHOD }, { "user", V_USER }, { "addr", V_ADDR },
    { "host", V_HOST }, { "proto", V_PROTO }, { "uagent", V_UAGENT }, { "referer", V_REFERER },
    { "status", V_STATUS }, { "micros", V_MICROS }, { "msecs", V_MSECS }, { "time", V_TIME },
    { "epoch", V_EPOCH }, { "ctime", V_CTIME }, { "ltime", V_LTIME }, { "iso", V_ISO },
    { "size", V_SIZE }, { "rsize", V_RSIZE }, { "cl", V_CL }, { "pid", V_PID }, { "wid", V_WID },
    { "request_id", V_REQUEST_ID }, { "rid", V_REQUEST_ID },
};

struct token {
    enum var_id id;
    const char *text; /* literal text, or header/var name */
    size_t len;
};

static struct token *tokens;
static size_t ntokens;
static bool json_format;
static bool disabled;
static bool use_xff;

#define DEFAULT_FORMAT                                                                    \
    "%(addr) - %(user) [%(ltime)] \"%(method) %(uri) %(proto)\" %(status) %(size) "      \
    "\"%(referer)\" \"%(uagent)\" %(msecs)ms rid=%(request_id)"

static void add_token(enum var_id id, const char *text, size_t len)
{
    tokens = wharf_xrealloc(tokens, (ntokens + 1) * sizeof *tokens);
    tokens[ntokens].id = id;
    tokens[ntokens].text = text;
    tokens[ntokens].len = len;
    ntokens++;
}

static int compile(const char *fmt, const char *origin)
{
    const char *p = fmt, *lit = fmt;
    while (*p) {
        if (p[0] != '%' || p[1] != '(') {
            p++;
            continue;
        }
        const char *close = strchr(p + 2, ')');
        if (!close) {
            wharf_config_error(origin, "log-format", "unterminated %%( in '%s'", fmt);
            return -1;
        }
        if (p > lit)
            add_token(V_LITERAL, lit, (size_t)(p - lit));
        const char *name = p + 2;
        size_t nlen = (size_t)(close - name);
        bool found = false;
        for (size_t i = 0; i < sizeof var_names / sizeof var_names[0]; i++)
            if (strlen(var_names[i].name) == nlen && memcmp(var_names[i].name, name, nlen) == 0) {
                add_token(var_names[i].id, NULL, 0);
                found = true;
            }
        if (!found && nlen > 5 && memcmp(name, "var.", 4) == 0) {
            /* uWSGI's %(var.HTTP_X_FOO): a request header by its CGI name */
            add_token(V_VAR, name + 4, nlen - 4);
            found = true;
        }
        if (!found && nlen > 7 && memcmp(name, "header.", 7) == 0) {
            add_token(V_HEADER, name + 7, nlen - 7);
            found = true;
        }
        if (!found) {
            wharf_config_error(origin, "log-format", "unknown variable %%(%.*s)", (int)nlen, name);
            return -1;
        }
        p = lit = close + 1;
    }
    if (p > lit)
        add_token(V_LITERAL, lit, (size_t)(p - lit));
    return 0;
}

int wharf_accesslog_setup(struct wharf_server *s)
{
    disabled = s->conf.disable_logging;
    use_xff = s->conf.log_x_forwarded_for;
    free(tokens);
    tokens = NULL;
    ntokens = 0;
    json_format = s->conf.log_format && strcmp(s->conf.log_format, "json") == 0;
    if (json_format)
        return 0;
    return compile(s->conf.log_format ? s->conf.log_format : DEFAULT_FORMAT,
                   wharf_option_origin(s, "log-format"));
}

/* ------------------------------------------------------------ output */

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 2 > b->cap)
        n = b->cap > b->len + 2 ? b->cap - b->len - 2 : 0; /* cut, keep the line */
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putu(struct buf *b, uint64_t v)
{
    char t[24]; /* digits by hand: snprintf was ~500 instructions a number */
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, t + i, sizeof t - i);
}

/* JSON string body: quotes, backslashes and control characters escaped;
 * bytes >= 0x80 are copied (requests may carry any bytes: invalid UTF-8
 * is escaped as \u00XX so the line always parses). */
static void put_json_string(struct buf *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            int k = snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, (size_t)k);
        } else if (c >= 0x80) {
            /* accept well-formed UTF-8 sequences, escape stray bytes */
            size_t need = c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : 0;
            bool ok = need > 0 && i + need < n;
            for (size_t k = 1; ok && k <= need; k++)
                ok = i + k < n && ((unsigned char)s[i + k] & 0xc0) == 0x80;
            if (ok) {
                put(b, s + i, need + 1);
                i += need;
            } else {
                int k = snprintf(esc, sizeof esc, "\\u%04x", c);
                put(b, esc, (size_t)k);
            }
        } else {
            put(b, (const char *)&s[i], 1);
        }
    }
    put(b, "\"", 1);
}

static const char *header_or_dash(struct wharf_request *r, const char *name, size_t *len)
{
    const char *v = wharf_request_header(r, name, len);
    if (!v) {
        *len = 1;
        return "-";
    }
    return v;
}

static const char *client_addr(struct wharf_request *r, size_t *len)
{
    if (use_xff) {
        const char *x = wharf_request_header(r, "X-Forwarded-For", len);
        if (x) {
            const char *comma = memchr(x, ',', *len);
            if (comma)
                *len = (size_t)(comma - x);
            return x;
        }
    }
    const char *a = r->remote_addr ? r->remote_addr : "-";
    *len = strlen(a);
    return a;
}

/* %(var.HTTP_USER_AGENT) -> header "User-Agent" */
static const char *cgi_var(struct wharf_request *r, const char *name, size_t nlen, size_t *len)
{
    if (nlen > 5 && memcmp(name, "HTTP_", 5) == 0) {
        char h[128];
        size_t n = nlen - 5 < sizeof h - 1 ? nlen - 5 : sizeof h - 1;
        for (size_t i = 0; i < n; i++)
            h[i] = name[5 + i] == '_' ? '-' : name[5 + i];
        h[n] = '\0';
        return header_or_dash(r, h, len);
    }
    if (nlen == 11 && memcmp(name, "REMOTE_ADDR", 11) == 0)
        return client_addr(r, len);
    if (nlen == 12 && memcmp(name, "QUERY_STRING", 12) == 0) {
        *len = r->query_len;
        return r->query;
    }
    if (nlen == 9 && memcmp(name, "PATH_INFO", 9) == 0) {
        *len = r->path_len;
        return r->path;
    }
    *len = 1;
    return "-";
}

/* The formatted times change once a second: localtime_r + strftime ran
 * for every line before (~1700 instructions); now once a second per
 * format.  ISO keeps its milliseconds exact. */
static void format_time(char *out, size_t n, enum var_id id)
{
    static __thread struct {
        time_t sec;
        char text[48];  /* ltime, ctime; iso: the part before the ms */
        char tz[8];     /* iso: %z */
    } cache[3];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int k = id == V_ISO ? 0 : id == V_CTIME ? 1 : 2;
    if (cache[k].sec != tv.tv_sec || !cache[k].text[0]) {
        struct tm tm;
        localtime_r(&tv.tv_sec, &tm);
        if (id == V_ISO) {
            strftime(cache[k].text, sizeof cache[k].text, "%Y-%m-%dT%H:%M:%S", &tm);
            strftime(cache[k].tz, sizeof cache[k].tz, "%z", &tm);
        } else if (id == V_CTIME) {
            strftime(cache[k].text, sizeof cache[k].text, "%a %b %e %H:%M:%S %Y", &tm);
        } else {
            strftime(cache[k].text, sizeof cache[k].text, "%d/%b/%Y:%H:%M:%S %z", &tm);
        }
        cache[k].sec = tv.tv_sec;
    }
    /* out has room (64 bytes) for the longest of them */
    size_t l = strlen(cache[k].text);
    memcpy(out, cache[k].text, l);
    if (id == V_ISO) {
        int ms = (int)(tv.tv_usec / 1000);
        out[l++] = '.';
        out[l++] = (char)('0' + ms / 100);
        out[l++] = (char)('0' + ms / 10 % 10);
        out[l++] = (char)('0' + ms % 10);
        size_t z = strlen(cache[k].tz);
        memcpy(out + l, cache[k].tz, z);
        l += z;
    }
    out[l] = '\0';
    (void)n;
}

static void put_var(struct buf *b, struct wharf_request *r, const struct token *t, int64_t us)
{
    size_t len = 0;
    const char *v;
    char tmp[64];
    switch (t->id) {
    case V_LITERAL: put(b, t->text, t->len); return;
    case V_URI: put(b, r->uri, r->uri_len); return;
    case V_METHOD: put(b, r->method, r->method_len); return;
    case V_USER:
        v = wharf_request_var_get(r, "REMOTE_USER", &len);
        if (v)
            put(b, v, len);
        else
            put(b, "-", 1);
        return;
    case V_ADDR: v = client_addr(r, &len); put(b, v, len); return;
    case V_HOST: v = header_or_dash(r, "Host", &len); put(b, v, len); return;
    case V_PROTO: puts_(b, r->protocol ? r->protocol : "-"); return;
    case V_UAGENT: v = header_or_dash(r, "User-Agent", &len); put(b, v, len); return;
    case V_REFERER: v = header_or_dash(r, "Referer", &len); put(b, v, len); return;
    case V_STATUS: putu(b, (uint64_t)r->status); return;
    case V_MICROS: putu(b, (uint64_t)us); return;
    case V_MSECS: putu(b, (uint64_t)(us / 1000)); return;
    case V_TIME:
    case V_EPOCH: putu(b, (uint64_t)time(NULL)); return;
    case V_CTIME:
    case V_LTIME:
    case V_ISO: format_time(tmp, sizeof tmp, t->id); puts_(b, tmp); return;
    case V_SIZE: putu(b, r->bytes_sent); return;
    case V_RSIZE:
    case V_CL: putu(b, r->content_length > 0 ? (uint64_t)r->content_length : 0); return;
    case V_PID: putu(b, (uint64_t)getpid()); return;
    case V_WID: putu(b, r->worker->id); return;
    case V_REQUEST_ID: puts_(b, r->request_id ? r->request_id : "-"); return;
    case V_HEADER: {
        char h[128];
        snprintf(h, sizeof h, "%.*s", (int)t->len, t->text);
        v = header_or_dash(r, h, &len);
        put(b, v, len);
        return;
    }
    case V_VAR: v = cgi_var(r, t->text, t->len, &len); put(b, v, len); return;
    }
}

static void json_line(struct buf *b, struct wharf_request *r, int64_t us)
{
    char tmp[64];
    size_t len;
    const char *v;
    format_time(tmp, sizeof tmp, V_ISO);
    puts_(b, "{\"time\":");
    put_json_string(b, tmp, strlen(tmp));
    puts_(b, ",\"remote_addr\":");
    v = client_addr(r, &len);
    put_json_string(b, v, len);
    puts_(b, ",\"method\":");
    put_json_string(b, r->method, r->method_len);
    puts_(b, ",\"uri\":");
    put_json_string(b, r->uri, r->uri_len);
    puts_(b, ",\"proto\":");
    put_json_string(b, r->protocol ? r->protocol : "", r->protocol ? strlen(r->protocol) : 0);
    puts_(b, ",\"status\":");
    putu(b, (uint64_t)r->status);
    puts_(b, ",\"size\":");
    putu(b, r->bytes_sent);
    puts_(b, ",\"duration_ms\":");
    snprintf(tmp, sizeof tmp, "%.3f", (double)us / 1000.0);
    puts_(b, tmp);
    puts_(b, ",\"referer\":");
    v = wharf_request_header(r, "Referer", &len);
    if (v)
        put_json_string(b, v, len);
    else
        puts_(b, "null");
    puts_(b, ",\"user_agent\":");
    v = wharf_request_header(r, "User-Agent", &len);
    if (v)
        put_json_string(b, v, len);
    else
        puts_(b, "null");
    puts_(b, ",\"request_id\":");
    put_json_string(b, r->request_id ? r->request_id : "", r->request_id ? strlen(r->request_id) : 0);
    puts_(b, ",\"pid\":");
    putu(b, (uint64_t)getpid());
    puts_(b, ",\"worker\":");
    putu(b, r->worker->id);
    puts_(b, "}");
}

/* Lines are gathered and written together: once per turn of the event
 * loop (before it waits), when 4 KiB are pending, and before any other
 * log line.  A write(2) per request was a quarter of the CPU time of a
 * small request.  4 KiB is PIPE_BUF: a batch written to a pipe (journald,
 * docker) stays in one piece, as single lines did.  A line can wait for
 * the rest of its loop turn, which includes inline (threads = 1) app
 * calls of other requests; if the worker is killed meanwhile (harakiri's
 * SIGKILL) those pending lines are lost. */
#define BATCH_MAX 4096
static __thread char batch[BATCH_MAX];
static __thread size_t batch_len;

void wharf_accesslog_flush(void)
{
    if (batch_len) {
        size_t n = batch_len;
        batch_len = 0;
        wharf_log_write(batch, n);
    }
}

void wharf_accesslog_write(struct wharf_request *r, int64_t us)
{
    if (disabled)
        return;
    char line[8192];
    struct buf b = { line, 0, sizeof line };
    if (json_format) {
        json_line(&b, r, us);
    } else {
        for (size_t i = 0; i < ntokens; i++)
            put_var(&b, r, &tokens[i], us);
    }
    line[b.len++] = '\n';
    if (batch_len + b.len > BATCH_MAX)
        wharf_accesslog_flush();
    if (b.len > BATCH_MAX) {
        wharf_log_write(line, b.len);
        return;
    }
    memcpy(batch + batch_len, line, b.len);
    batch_len += b.len;
}
