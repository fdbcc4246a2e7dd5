/*
 * tests/fuzz/fuzz_route.c - libFuzzer harness for the route plugin's rule
 * language (plugins/route/rules.c): rule parsing, goto resolution, regex
 * matching and $N / ${VAR} expansion against a fixed fake request.
 *
 * Input: up to 8 lines; the first byte of a line picks the option (one of
 * the 33 route* names), the rest is its value.  Every rule that parses is
 * then run: its regex is matched against fixed subjects and each of its
 * templates expanded with the captures, into a full-size buffer and into a
 * tiny one (the overflow path).  The whole input is also compiled and
 * expanded as one template, and fed to the small helpers (Basic decoding,
 * URL decoding, Location encoding, header splitting, log escaping).
 * htpasswd paths are parsed but never opened.
 *
 * Build (not wired into make):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Iplugins/route tests/fuzz/fuzz_route.c plugins/route/rules.c \
 *     $(pkg-config --cflags --libs libpcre2-8) -lcrypt -o fuzz_route
 *   ./fuzz_route -max_len=4096 tests/fuzz/corpus/route
 */
#include "rules.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool fake_lookup(void *ctx, const char *name, size_t nlen, const char *arg, size_t alen,
                        char *scratch, size_t scratch_len, const char **val, size_t *len)
{
    (void)ctx;
    static const struct {
        const char *k, *v;
    } vars[] = {
        { "PATH_INFO", "/foo/bar/baz.php" },
        { "REQUEST_URI", "/foo/bar/baz.php?x=1&y=%41" },
        { "QUERY_STRING", "x=1&y=%41&=&z" },
        { "HTTP_HOST", "example.com:8080" },
        { "HTTP_COOKIE", "sid=abc123; theme=dark;=;x" },
        { "REMOTE_ADDR", "10.1.2.3" },
        { "REQUEST_METHOD", "GET" },
        { "DOLLARS", "${PATH_INFO}$1$" },
        { "EMPTY", "" },
    };
    if (arg) {
        /* a route var that writes into the scratch space */
        if (nlen == 5 && memcmp(name, "uwsgi", 5) == 0) {
            size_t n = alen < scratch_len ? alen : scratch_len;
            memset(scratch, 'u', n);
            *val = scratch;
            *len = n;
            return true;
        }
        return false;
    }
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (strlen(vars[i].k) == nlen && memcmp(vars[i].k, name, nlen) == 0) {
            *val = vars[i].v;
            *len = strlen(vars[i].v);
            return true;
        }
    return false;
}

static const char *const subjects[] = {
    "/foo/bar/baz.php",
    "",
    "example.com:8080",
    "/a/\xc3\xa9/%2e%2e/..\n\r\t$1${X}",
};

static char big[ROUTE_SUBST_MAX];

static void expand_all(const struct route_tmpl *t, const struct route_caps *caps)
{
    if (!t->text)
        return;
    ssize_t n = route_tmpl_expand(t, caps, fake_lookup, NULL, big, sizeof big);
    if (n >= 0 && (size_t)n != strlen(big) && !memchr(big, '\0', (size_t)n))
        abort(); /* the length must match the NUL-terminated text */
    char tiny[8];
    n = route_tmpl_expand(t, caps, fake_lookup, NULL, tiny, sizeof tiny);
    if (n >= (ssize_t)sizeof tiny)
        abort();
    if (n >= 0) {
        char enc[64];
        (void)route_location_encode(big, (size_t)n, enc, sizeof enc);
    }
}

static void run_rules(const struct route_config *cfg, pcre2_match_data *md,
                      pcre2_match_context *mctx)
{
    for (int c = 0; c < ROUTE_CHAINS; c++) {
        const struct route_table *t = &cfg->chain[c];
        for (size_t i = 0; i < t->count; i++) {
            const struct route_rule *r = &t->rules[i];
            struct route_caps caps;
            memset(&caps, 0, sizeof caps);
            if (r->re.code) {
                for (size_t s = 0; s < sizeof subjects / sizeof subjects[0]; s++) {
                    struct route_caps m;
                    if (route_regex_match(&r->re, subjects[s], strlen(subjects[s]), md, mctx,
                                          &m) == 1) {
                        caps = m;
                        for (unsigned g = 0; g < caps.n; g++)
                            if (caps.s[g] && (caps.s[g] < subjects[s] ||
                                              caps.s[g] + caps.len[g] >
                                                  subjects[s] + strlen(subjects[s])))
                                abort(); /* a capture outside its subject */
                    }
                }
            }
            expand_all(&r->cond_a, &caps);
            expand_all(&r->cond_b, &caps);
            expand_all(&r->arg, &caps);
            if (r->cond != ROUTE_COND_NONE && r->cond != ROUTE_COND_REGEXP &&
                r->cond > ROUTE_COND_EMPTY) /* no filesystem probes */
                (void)route_cond_eval(r->cond, "10.1.2.3", 8, r->cond_b.text ? r->cond_b.text : "",
                                      r->cond_b.text_len);
            size_t at;
            if (r->arg.text)
                (void)route_find_label(t, r->arg.text, r->arg.text_len, i + 1, &at);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pcre2_match_data *md;
    static pcre2_match_context *mctx;
    if (!md) {
        md = pcre2_match_data_create(ROUTE_MAX_GROUPS, NULL);
        mctx = pcre2_match_context_create(NULL);
        pcre2_set_match_limit(mctx, 20000);
        pcre2_set_depth_limit(mctx, 2000);
    }
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    struct route_config cfg;
    /* JIT for one input in eight: it is slow to compile */
    route_config_init(&cfg, size && (data[0] & 7) == 7);
    cfg.no_files = true;
    char err[1024];
    size_t nlines = 0;
    char *save = NULL;
    char *copy = strdup(text);
    for (char *line = strtok_r(copy, "\n", &save); line && nlines < 8;
         line = strtok_r(NULL, "\n", &save), nlines++) {
        if (!*line)
            continue;
        const char *option = route_option_names[(unsigned char)line[0] % 33];
        err[0] = '\0';
        if (route_config_add(&cfg, option, line + 1, "fuzz:1", err, sizeof err) < 0 &&
            !err[0])
            abort(); /* every refusal says why */
    }
    const struct route_rule *bad = NULL;
    err[0] = '\0';
    if (route_config_finish(&cfg, &bad, err, sizeof err) < 0) {
        if (!bad || !err[0])
            abort();
    } else {
        /* a resolved goto always jumps forward to a label or a rule */
        for (int c = 0; c < ROUTE_CHAINS; c++)
            for (size_t i = 0; i < cfg.chain[c].count; i++) {
                const struct route_rule *r = &cfg.chain[c].rules[i];
                if (r->action == ROUTE_ACT_GOTO && !r->goto_dynamic &&
                    (r->goto_target <= i || r->goto_target >= cfg.chain[c].count))
                    abort();
            }
    }
    run_rules(&cfg, md, mctx);
    route_config_free(&cfg);
    free(copy);

    /* the whole input as one template */
    struct route_tmpl t;
    if (route_tmpl_compile(&t, text, size) == 0) {
        struct route_caps caps;
        memset(&caps, 0, sizeof caps);
        caps.n = 3;
        caps.s[0] = "whole";
        caps.len[0] = 5;
        caps.s[1] = "one$2${HTTP_HOST}";
        caps.len[1] = 17;
        caps.s[2] = NULL; /* did not take part */
        expand_all(&t, &caps);
        route_tmpl_free(&t);
    }

    /* helpers on raw input */
    char out[4096 * 4 + 8];
    (void)route_basic_decode(text, size, out, ROUTE_AUTH_MAX + 1);
    if (route_url_decode(text, size, out) > size)
        abort();
    (void)route_location_encode(text, size, out, sizeof out);
    if (route_log_escape(text, size, out, sizeof out) >= sizeof out)
        abort();
    const char *n, *v;
    size_t nl, vl;
    if (route_header_split(text, size, &n, &nl, &v, &vl) &&
        (n < text || v < text || n + nl > text + size || v + vl > text + size))
        abort();
    free(text);
    return 0;
}
