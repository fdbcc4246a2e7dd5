/*
 * plugins/healthz/probes.c - the three Kubernetes probes:
 *
 *   live     200 as long as this worker's loop answers, also while it
 *            drains (a draining pod is alive; killing it would drop the
 *            requests it is finishing).
 *   ready    200 only if the server is not stopping (SIGTERM, also during
 *            shutdown-delay), the app is loaded in this worker and every
 *            readiness check passed
 *            (results cached by the core's checker, never run per probe;
 *            the core reports a result older than 5 s as failed); else 503.
 *   startup  200 once the app is loaded in this worker; else 503.
 *
 * Bodies are JSON.  live and startup are constant bytes; ready is built in
 * the request arena.
 */
#include <stdio.h>
#include <string.h>

#include "healthz.h"

#define JSON "application/json"

static const char live_body[] = "{\"status\":\"ok\"}\n";
static const char starting_body[] = "{\"status\":\"starting\"}\n";

int healthz_live(struct wharf_request *r)
{
    return healthz_reply(r, 200, JSON, live_body, sizeof live_body - 1);
}

int healthz_startup(struct wharf_request *r)
{
    if (wharf_worker_app_ready(r->worker))
        return healthz_reply(r, 200, JSON, live_body, sizeof live_body - 1);
    return healthz_reply(r, 503, JSON, starting_body, sizeof starting_body - 1);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* Worst case growth of json_string(): 6 output bytes per input byte
 * (\u00XX or \ufffd), plus the quotes. */
#define JSON_STRING_MAX(n) (6 * (n) + 2)

/* A JSON string literal of s; invalid UTF-8 bytes (a check message cut in
 * the middle of a character) become U+FFFD so the body always parses. */
static char *json_string(char *o, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            i++;
        } else if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                memcpy(o, "u00", 3);
                o += 3;
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
            i++;
        } else if (c < 0x80) {
            *o++ = (char)c;
            i++;
        } else {
            size_t len = utf8_len(s + i, n - i);
            if (len) {
                memcpy(o, s + i, len);
                o += len;
                i += len;
            } else {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                i++;
            }
        }
    }
    *o++ = '"';
    return o;
}

static char *put(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

#define LOCAL_CHECKS 32

int healthz_ready(struct wharf_request *r)
{
    struct wharf_worker *w = r->worker;
    struct wharf_server *s = wharf_worker_server(w);
    bool stopping = wharf_server_stopping(s);
    bool draining = wharf_worker_draining(w);
    bool app = wharf_worker_app_ready(w);

    struct wharf_check local[LOCAL_CHECKS], *checks = local;
    size_t n = wharf_checks(s, local, LOCAL_CHECKS);
    if (n > LOCAL_CHECKS) {
        checks = wharf_request_alloc(r, n * sizeof *checks);
        n = wharf_checks(s, checks, n);
    }

    /* A draining worker (reload, max-requests, reload-on-rss) still says
     * ready: the probe asks about the instance, whose other workers and
     * replacements keep accepting; a 503 here would take a healthy pod out
     * of its Service on every recycle.  "draining" stays in the body. */
    bool ok = !stopping && app;
    size_t cap = 128;
    for (size_t i = 0; i < n; i++) {
        ok = ok && checks[i].ok;
        cap += JSON_STRING_MAX(strnlen(checks[i].name, sizeof checks[i].name)) +
               JSON_STRING_MAX(strnlen(checks[i].message, sizeof checks[i].message)) + 48;
    }

    char *body = wharf_request_alloc(r, cap), *o = body;
    o = put(o, ok ? "{\"status\":\"ok\",\"checks\":{" : "{\"status\":\"unavailable\",\"checks\":{");
    for (size_t i = 0; i < n; i++) {
        const struct wharf_check *c = &checks[i];
        if (i)
            *o++ = ',';
        o = json_string(o, c->name, strnlen(c->name, sizeof c->name));
        o += sprintf(o, ":{\"ok\":%s,\"ms\":%u,\"error\":", c->ok ? "true" : "false",
                     (unsigned)c->latency_ms);
        if (c->ok)
            o = put(o, "null");
        else
            o = json_string(o, c->message, strnlen(c->message, sizeof c->message));
        *o++ = '}';
    }
    o = put(o, draining ? "},\"draining\":true" : "},\"draining\":false");
    o = put(o, stopping ? ",\"stopping\":true" : ",\"stopping\":false");
    o = put(o, app ? ",\"app\":true}\n" : ",\"app\":false}\n");
    return healthz_reply(r, ok ? 200 : 503, JSON, body, (size_t)(o - body));
}
