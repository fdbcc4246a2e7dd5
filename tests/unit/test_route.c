/*
 * tests/unit/test_route.c - the route plugin's rule language (plugins/route/
 * rules.c) without a server: every action and condition parses, bad lines
 * are refused with a message that says what is wrong, goto only jumps
 * forward, and $N / ${VAR} expand as uWSGI does (bounded).
 */
#include "rules.h"

#include <check.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static struct route_config cfg;
static char err[1024];

static void setup_cfg(void)
{
    route_config_init(&cfg, true);
    err[0] = '\0';
}

static void teardown_cfg(void)
{
    route_config_free(&cfg);
}

static int add(const char *option, const char *value)
{
    err[0] = '\0';
    return route_config_add(&cfg, option, value, "test.ini:1", err, sizeof err);
}

static const struct route_rule *last_rule(enum route_chain c)
{
    ck_assert_uint_gt(cfg.chain[c].count, 0);
    return &cfg.chain[c].rules[cfg.chain[c].count - 1];
}

#define ck_ok(opt, val)                                                                 \
    do {                                                                                \
        int rc_ = add(opt, val);                                                        \
        ck_assert_msg(rc_ == 0, "%s = %s: unexpected error: %s", opt, val, err);        \
    } while (0)

#define ck_bad(opt, val, needle)                                                        \
    do {                                                                                \
        int rc_ = add(opt, val);                                                        \
        ck_assert_msg(rc_ < 0, "%s = %s: accepted, expected an error", opt, val);        \
        ck_assert_msg(strstr(err, needle) != NULL, "%s = %s: error '%s' lacks '%s'", opt, \
                      val, err, needle);                                                \
    } while (0)

/* A fake request for ${VAR}. */
static bool fake_lookup(void *ctx, const char *name, size_t nlen, const char *arg, size_t alen,
                        char *scratch, size_t scratch_len, const char **val, size_t *len)
{
    (void)ctx;
    static const struct {
        const char *k, *v;
    } vars[] = {
        { "PATH_INFO", "/foo/bar" },
        { "REQUEST_URI", "/foo/bar?x=1" },
        { "QUERY_STRING", "a=1&b=two&c" },
        { "HTTP_HOST", "example.com" },
        { "HTTP_COOKIE", "sid=abc123; theme=dark" },
        { "EVIL", "${HTTP_HOST}" },
        { "EMPTY", "" },
        { "K1", "kay-one" },
    };
    if (arg) {
        if (nlen == 4 && memcmp(name, "echo", 4) == 0) {
            size_t n = alen < scratch_len ? alen : scratch_len - 1;
            memcpy(scratch, arg, n);
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

static char out[ROUTE_SUBST_MAX];

static const char *expand_caps(const char *tmpl, const struct route_caps *caps)
{
    struct route_tmpl t;
    ck_assert_int_eq(route_tmpl_compile(&t, tmpl, strlen(tmpl)), 0);
    ssize_t n = route_tmpl_expand(&t, caps, fake_lookup, NULL, out, sizeof out);
    route_tmpl_free(&t);
    ck_assert_msg(n >= 0, "'%s' did not fit", tmpl);
    ck_assert_uint_eq((size_t)n, strlen(out));
    return out;
}

static struct route_caps caps_of(const char *subject, const char *pattern)
{
    struct route_regex re;
    char e[256];
    ck_assert_int_eq(route_regex_compile(&re, pattern, true, e, sizeof e), 0);
    pcre2_match_data *md = pcre2_match_data_create(ROUTE_MAX_GROUPS, NULL);
    struct route_caps caps;
    memset(&caps, 0, sizeof caps);
    ck_assert_int_eq(route_regex_match(&re, subject, strlen(subject), md, NULL, &caps), 1);
    pcre2_match_data_free(md);
    route_regex_free(&re);
    return caps;
}

/* ------------------------------------------------------------ option names */

START_TEST(option_kinds)
{
    enum route_chain c;
    enum route_subject s;
    bool neg;
    ck_assert(route_option_kind("route", &c, &s, &neg));
    ck_assert(c == ROUTE_CHAIN_REQUEST && s == ROUTE_SUBJ_PATH && !neg);
    ck_assert(route_option_kind("route-host", &c, &s, &neg) && s == ROUTE_SUBJ_HOST);
    ck_assert(route_option_kind("route-qs", &c, &s, &neg) && s == ROUTE_SUBJ_QS);
    ck_assert(route_option_kind("route-uri", &c, &s, &neg) && s == ROUTE_SUBJ_URI);
    ck_assert(route_option_kind("route-if-not", &c, &s, &neg) && s == ROUTE_SUBJ_IF && neg);
    ck_assert(route_option_kind("response-route", &c, &s, &neg));
    ck_assert(c == ROUTE_CHAIN_RESPONSE && s == ROUTE_SUBJ_PATH);
    ck_assert(route_option_kind("final-route-label", &c, &s, &neg));
    ck_assert(c == ROUTE_CHAIN_FINAL && s == ROUTE_SUBJ_LABEL);
    ck_assert(!route_option_kind("route-bogus", &c, &s, &neg));
    ck_assert(!route_option_kind("static-map", &c, &s, &neg));
    size_t n = 0;
    for (; route_option_names[n]; n++)
        ck_assert(route_option_kind(route_option_names[n], &c, &s, &neg));
    ck_assert_uint_eq(n, 33);
}
END_TEST

/* ------------------------------------------------------------ actions */

START_TEST(parse_every_action)
{
    ck_ok("route", "^/healthz/live break:200");
    const struct route_rule *r = last_rule(ROUTE_CHAIN_REQUEST);
    ck_assert_int_eq(r->action, ROUTE_ACT_BREAK);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_null(r->reason);
    ck_assert_str_eq(r->re.pattern, "^/healthz/live");
    ck_assert_str_eq(r->origin, "test.ini:1");

    ck_ok("route", "^/nf break:404 Not Here");
    r = last_rule(ROUTE_CHAIN_REQUEST);
    ck_assert_int_eq(r->status, 404);
    ck_assert_str_eq(r->reason, "Not Here");

    ck_ok("route", "^/bad break");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->status, 0);
    ck_ok("route", "^/bad2 break:");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->status, 0);

    ck_ok("route", "^/c continue");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->action, ROUTE_ACT_CONTINUE);
    ck_ok("route", "^/c continue:");
    ck_ok("route", "^/l last:");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->action, ROUTE_ACT_CONTINUE);

    ck_ok("route", "^/r return:403");
    r = last_rule(ROUTE_CHAIN_REQUEST);
    ck_assert(r->action == ROUTE_ACT_RETURN && r->status == 403);
    ck_ok("route", "^/r break-with-status:503");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->status, 503);

    static const struct {
        const char *line;
        int status;
        const char *url;
    } redirects[] = {
        { "^/a redirect:https://example.com/", 302, "https://example.com/" },
        { "^/a redirect-302:/x", 302, "/x" },
        { "^/a redirect-permanent:/y", 301, "/y" },
        { "^/a redirect-301:/y", 301, "/y" },
        { "^/a redirect-303:/y", 303, "/y" },
        { "^/a redirect-307:/y", 307, "/y" },
        { "^/a redirect-308:/y", 308, "/y" },
        { "^/a redirect:308:/z/$1", 308, "/z/$1" },
        { "^/a redirect:301:https://x/", 301, "https://x/" },
    };
    for (size_t i = 0; i < sizeof redirects / sizeof redirects[0]; i++) {
        ck_ok("route", redirects[i].line);
        r = last_rule(ROUTE_CHAIN_REQUEST);
        ck_assert_int_eq(r->action, ROUTE_ACT_REDIRECT);
        ck_assert_int_eq(r->status, redirects[i].status);
        ck_assert_str_eq(r->arg.text, redirects[i].url);
    }

    ck_ok("route", "\\.php$ rewrite:/index.php?page=$1");
    r = last_rule(ROUTE_CHAIN_REQUEST);
    ck_assert(r->action == ROUTE_ACT_REWRITE && !r->last);
    ck_ok("route", "^/x rewrite-last:/y");
    ck_assert(last_rule(ROUTE_CHAIN_REQUEST)->last);

    ck_ok("route", ".* addheader:Server: my uWSGI server");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->action, ROUTE_ACT_ADDHEADER);
    ck_ok("route", ".* addheader:X-Path: ${PATH_INFO} $1");
    ck_ok("route", ".* delheader:Server");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->action, ROUTE_ACT_DELHEADER);
    ck_ok("route", ".* remheader:X-Powered-By");

    ck_ok("route", "^/foo/(.) addvar:FOOVAR=prefix$1suffix");
    r = last_rule(ROUTE_CHAIN_REQUEST);
    ck_assert(r->action == ROUTE_ACT_SETVAR);
    ck_assert_str_eq(r->var_name, "FOOVAR");
    ck_assert_str_eq(r->arg.text, "prefix$1suffix");
    ck_ok("route", "^/foo setvar:EMPTY=");

    ck_ok("route", "^/logme/(.) log:hey i am printing $1");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->action, ROUTE_ACT_LOG);

    ck_ok("route", "^/admin basicauth:Admin Area,admin:s3cret");
    r = last_rule(ROUTE_CHAIN_REQUEST);
    ck_assert(r->action == ROUTE_ACT_BASICAUTH && !r->next);
    ck_assert_str_eq(r->realm, "Admin Area");
    ck_assert_str_eq(r->creds, "admin:s3cret");
    ck_assert_uint_eq(r->user_len, 5);
    ck_ok("route", "^/admin basicauth-next:Admin,other:pw");
    ck_assert(last_rule(ROUTE_CHAIN_REQUEST)->next);
    ck_ok("route", "^/closed basicauth:Closed,");
    r = last_rule(ROUTE_CHAIN_REQUEST);
    ck_assert(!r->creds && !r->htpasswd);
    ck_ok("route", "^/u basicauth:Users,kratos:");
    ck_assert_uint_eq(last_rule(ROUTE_CHAIN_REQUEST)->user_len, 6);

    ck_ok("route-run", "log:always");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->subject, ROUTE_SUBJ_RUN);

    ck_ok("route", "^/g goto:there");
    ck_ok("route-label", "there");
    const struct route_rule *bad = NULL;
    ck_assert_int_eq(route_config_finish(&cfg, &bad, err, sizeof err), 0);
}
END_TEST

START_TEST(subjects_and_blanks)
{
    ck_ok("route-host", "^(www\\.)?example\\.com$ log:host");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->subject, ROUTE_SUBJ_HOST);
    ck_ok("route-qs", "debug=1 break:403");
    ck_assert_int_eq(last_rule(ROUTE_CHAIN_REQUEST)->subject, ROUTE_SUBJ_QS);
    ck_ok("route-uri", "^/x\\?y break:403");
    ck_ok("route-remote-addr", "^127\\.0\\.0\\.1$ break:403 Forbidden");
    ck_ok("route-user-agent", ".*curl.* redirect:http://uwsgi.it");
    ck_ok("route-referer", "spam break:403");
    /* extra blanks between the parts, and around the line */
    ck_ok("route", "  ^/x \t  break:200  ");
    const struct route_rule *r = last_rule(ROUTE_CHAIN_REQUEST);
    ck_assert_str_eq(r->re.pattern, "^/x");
    ck_assert_int_eq(r->status, 200);
}
END_TEST

START_TEST(bad_actions)
{
    ck_bad("route", "^/x", "expected 'REGEX ACTION'");
    ck_bad("route", "^/x frobnicate:1", "unknown action 'frobnicate'");
    ck_bad("route", "^/x frobnicate:1", "basicauth"); /* lists the valid ones */
    ck_bad("route", "^/x cache:key=$1", "uWSGI action 'cache' is not supported");
    ck_bad("route", "^/x break:abc", "not a status code");
    ck_bad("route", "^/x break:99", "not a status code");
    ck_bad("route", "^/x break:2000", "not a status code");
    ck_bad("route", "^/x break:404 Bad\x01Reason", "control character");
    ck_bad("route", "^/x return", "not a status code");
    ck_bad("route", "^/x return:700", "not a status code");
    ck_bad("route", "^/x return:404 Nope", "not a status code");
    ck_bad("route", "^/x continue:now", "takes no argument");
    ck_bad("route", "^/x redirect:", "needs a URL");
    ck_bad("route", "^/x redirect-permanent", "needs a URL");
    ck_bad("route", "^/x redirect:399:/y", "not a redirect");
    ck_bad("route", "^/x redirect:200:/y", "not a redirect");
    ck_bad("route", "^/x rewrite:", "needs a path");
    ck_bad("route", "^/x goto:", "needs a label");
    ck_bad("route", "^/x addheader:NoColonHere", "Name: value");
    ck_bad("route", "^/x addheader:Bad Name: v", "Name: value");
    ck_bad("route", "^/x addheader:${HTTP_X}: v", "Name: value");
    ck_bad("route", "^/x addheader:X-Ctl: a\x01b", "Name: value");
    ck_bad("route", "^/x delheader:", "not a header name");
    ck_bad("route", "^/x delheader:Bad Name", "not a header name");
    ck_bad("route", "^/x addvar:novalue", "NAME=VALUE");
    ck_bad("route", "^/x setvar:=x", "NAME=VALUE");
    ck_bad("route", "^/x setvar:bad name=x", "NAME=VALUE");
    ck_bad("route", "^/x basicauth:realm-without-comma", "REALM,user:password");
    ck_bad("route", "^/x basicauth:Re\"alm,u:p", "realm may not hold quotes");
    ck_bad("route", "^/x basicauth:Realm,/nonexistent/htpasswd", "cannot read htpasswd file");
    ck_bad("route-run", "", "expected an action");
    ck_bad("route-label", "", "one word");
    ck_bad("route-label", "two words", "one word");
    /* later chains cannot answer the request */
    ck_bad("final-route", "^/x redirect:/y", "cannot run in final-route");
    ck_bad("final-route", "^/x addheader:X: y", "cannot run in final-route");
    ck_bad("final-route", "^/x break:200", "cannot run in final-route");
    ck_bad("response-route", "^/x break:200", "cannot run in response-route");
    ck_bad("response-route", "^/x basicauth:R,u:p", "cannot run in response-route");
    ck_bad("response-route", "^/x rewrite:/y", "cannot run in response-route");
    ck_ok("response-route", "^/x addheader:X: y");
    ck_ok("response-route", "^/x delheader:Server");
    ck_ok("final-route", "^/x log:done ${uwsgi[status]}");
    ck_ok("final-route", "^/x break");
    /* nothing was added by the failures */
    ck_assert_uint_eq(cfg.chain[ROUTE_CHAIN_REQUEST].count, 0);
}
END_TEST

START_TEST(bad_regexes)
{
    ck_bad("route", "^/(x break:200", "bad regex '^/(x'");
    ck_bad("route", "^/(x break:200", "missing closing parenthesis");
    ck_bad("route", "^/(x break:200", "at offset 4");
    ck_bad("route", "[z-a] break:200", "range out of order");
    ck_bad("route-host", "*.example.com log:x", "bad regex");
    ck_bad("route-if", "regexp:${PATH_INFO};(unclosed log:x", "bad regex '(unclosed'");
}
END_TEST

/* ------------------------------------------------------------ conditions */

START_TEST(conditions_parse)
{
    static const char *const ok[] = {
        "equal:${PATH_INFO};/bad break:500",
        "isequal:a;b log:x",
        "eq:a;b log:x",
        "==:a;b log:x",
        "startswith:${PATH_INFO};/api log:x",
        "endswith:${PATH_INFO};.php log:x",
        "contains:${HTTP_USER_AGENT};bot break:403",
        "contain:a;b log:x",
        "regexp:${PATH_INFO};^/f(o+) log:$1",
        "re:${PATH_INFO};^/ log:x",
        "exists:/etc/passwd log:x",
        "isfile:/etc/passwd log:x",
        "isdir:/tmp log:x",
        "islink:/tmp log:x",
        "isexec:/bin/sh log:x",
        "empty:${QUERY_STRING} log:x",
        "ishigher:${CONTENT_LENGTH};100 break:413",
        ">:1;2 log:x",
        ">=:1;2 log:x",
        "<:1;2 log:x",
        "<=:1;2 log:x",
        "islower:1;2 log:x",
        "ishigherequal:1;2 log:x",
        "islowerequal:1;2 log:x",
        "ipv4in:${REMOTE_ADDR};10.0.0.0/8 break:403",
        "ipv6in:${REMOTE_ADDR};fd00::/8 break:403",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ck_ok("route-if", ok[i]);
    ck_ok("route-if-not", "equal:${REQUEST_METHOD};GET return:405");
    ck_assert(last_rule(ROUTE_CHAIN_REQUEST)->negate);
    ck_bad("route-if", "nonsense:a;b log:x", "unknown condition 'nonsense'");
    ck_bad("route-if", "equal:a log:x", "needs two operands");
    ck_bad("route-if", "equal log:x", "expected CONDITION:ARGS");
    ck_bad("route-if", "equal:a;b", "expected 'CONDITION:ARGS ACTION'");
}
END_TEST

START_TEST(conditions_eval)
{
    ck_assert(route_cond_eval(ROUTE_COND_EQUAL, "abc", 3, "abc", 3));
    ck_assert(!route_cond_eval(ROUTE_COND_EQUAL, "abc", 3, "abd", 3));
    ck_assert(!route_cond_eval(ROUTE_COND_EQUAL, "abc", 3, "ab", 2));
    ck_assert(route_cond_eval(ROUTE_COND_STARTSWITH, "/api/x", 6, "/api", 4));
    ck_assert(!route_cond_eval(ROUTE_COND_STARTSWITH, "/ap", 3, "/api", 4));
    ck_assert(route_cond_eval(ROUTE_COND_ENDSWITH, "a.php", 5, ".php", 4));
    ck_assert(!route_cond_eval(ROUTE_COND_ENDSWITH, "php", 3, ".php", 4));
    ck_assert(route_cond_eval(ROUTE_COND_CONTAINS, "Googlebot/2", 11, "bot", 3));
    ck_assert(!route_cond_eval(ROUTE_COND_CONTAINS, "curl", 4, "bot", 3));
    ck_assert(route_cond_eval(ROUTE_COND_EMPTY, "", 0, NULL, 0));
    ck_assert(!route_cond_eval(ROUTE_COND_EMPTY, "x", 1, NULL, 0));
    ck_assert(route_cond_eval(ROUTE_COND_HIGHER, "101", 3, "100", 3));
    ck_assert(!route_cond_eval(ROUTE_COND_HIGHER, "100", 3, "100", 3));
    ck_assert(route_cond_eval(ROUTE_COND_HIGHEREQUAL, "100", 3, "100", 3));
    ck_assert(route_cond_eval(ROUTE_COND_LOWER, "-5", 2, "3", 1));
    ck_assert(route_cond_eval(ROUTE_COND_LOWEREQUAL, "3", 1, "3", 1));
    ck_assert(route_cond_eval(ROUTE_COND_IPV4IN, "10.1.2.3", 8, "10.0.0.0/8", 10));
    ck_assert(!route_cond_eval(ROUTE_COND_IPV4IN, "11.1.2.3", 8, "10.0.0.0/8", 10));
    ck_assert(route_cond_eval(ROUTE_COND_IPV4IN, "192.168.1.77", 12, "192.168.1.64/26", 15));
    ck_assert(!route_cond_eval(ROUTE_COND_IPV4IN, "192.168.1.128", 13, "192.168.1.64/26", 15));
    ck_assert(route_cond_eval(ROUTE_COND_IPV4IN, "1.2.3.4", 7, "1.2.3.4", 7));
    ck_assert(!route_cond_eval(ROUTE_COND_IPV4IN, "garbage", 7, "1.2.3.4/8", 9));
    ck_assert(!route_cond_eval(ROUTE_COND_IPV4IN, "1.2.3.4", 7, "1.2.3.4/33", 10));
    ck_assert(route_cond_eval(ROUTE_COND_IPV6IN, "fd00::1", 7, "fd00::/8", 8));
    ck_assert(!route_cond_eval(ROUTE_COND_IPV6IN, "2001:db8::1", 11, "fd00::/8", 8));
    char dir[] = "/tmp/route-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char file[64];
    snprintf(file, sizeof file, "%s/f", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert(route_cond_eval(ROUTE_COND_EXISTS, file, strlen(file), NULL, 0));
    ck_assert(route_cond_eval(ROUTE_COND_ISFILE, file, strlen(file), NULL, 0));
    ck_assert(!route_cond_eval(ROUTE_COND_ISDIR, file, strlen(file), NULL, 0));
    ck_assert(route_cond_eval(ROUTE_COND_ISDIR, dir, strlen(dir), NULL, 0));
    ck_assert(!route_cond_eval(ROUTE_COND_ISEXEC, file, strlen(file), NULL, 0));
    ck_assert(!route_cond_eval(ROUTE_COND_EXISTS, "/nonexistent/x", 14, NULL, 0));
    ck_assert(!route_cond_eval(ROUTE_COND_EXISTS, "", 0, NULL, 0));
    unlink(file);
    rmdir(dir);
}
END_TEST

/* ------------------------------------------------------------ goto */

START_TEST(goto_forward_only)
{
    ck_ok("route-label", "top");
    ck_ok("route", "^/x log:x");
    ck_ok("route", "^/y goto:top");
    const struct route_rule *bad = NULL;
    ck_assert_int_eq(route_config_finish(&cfg, &bad, err, sizeof err), -1);
    ck_assert_ptr_nonnull(bad);
    ck_assert_str_eq(bad->value, "^/y goto:top");
    ck_assert_msg(strstr(err, "jumps backward") && strstr(err, "only jumps forward"), "%s", err);
}
END_TEST

START_TEST(goto_unknown_label)
{
    ck_ok("route", "^/y goto:nowhere");
    const struct route_rule *bad = NULL;
    ck_assert_int_eq(route_config_finish(&cfg, &bad, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no route-label 'nowhere'"), "%s", err);
}
END_TEST

START_TEST(goto_resolves)
{
    ck_ok("route", "^/a goto:b");          /* 0 */
    ck_ok("route", "^/a log:skipped");     /* 1 */
    ck_ok("route-label", "b");             /* 2 */
    ck_ok("route", "^/a goto:4");          /* 3: uWSGI's rule number */
    ck_ok("route", "^/a log:four");        /* 4 */
    ck_ok("route-host", "(.*) goto:$1");   /* 5: resolved per request */
    ck_ok("route-label", "example.com");   /* 6 */
    ck_ok("response-route-label", "b");    /* labels are per chain */
    ck_bad("route-label", "b", "defined twice");
    const struct route_rule *bad = NULL;
    ck_assert_int_eq(route_config_finish(&cfg, &bad, err, sizeof err), 0);
    const struct route_table *t = &cfg.chain[ROUTE_CHAIN_REQUEST];
    ck_assert_uint_eq(t->rules[0].goto_target, 2);
    ck_assert_uint_eq(t->rules[3].goto_target, 4);
    ck_assert(t->rules[5].goto_dynamic);
    size_t at = 0;
    ck_assert(route_find_label(t, "example.com", 11, 6, &at));
    ck_assert_uint_eq(at, 6);
    ck_assert(!route_find_label(t, "b", 1, 3, &at)); /* only forward */
}
END_TEST

START_TEST(goto_number_backward)
{
    ck_ok("route", "^/a log:x");
    ck_ok("route", "^/a goto:0");
    const struct route_rule *bad = NULL;
    ck_assert_int_eq(route_config_finish(&cfg, &bad, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "is not after this one"), "%s", err);
}
END_TEST

START_TEST(goto_in_other_chain)
{
    ck_ok("route-label", "x");
    ck_ok("final-route", "^/ goto:x"); /* the request chain's label is not visible */
    const struct route_rule *bad = NULL;
    ck_assert_int_eq(route_config_finish(&cfg, &bad, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no final-route-label 'x'"), "%s", err);
}
END_TEST

/* ------------------------------------------------------------ substitution */

START_TEST(subst_groups)
{
    struct route_caps c = caps_of("/foo/bar.php", "^/(\\w+)/(\\w+)\\.php$");
    ck_assert_uint_eq(c.n, 3);
    ck_assert_str_eq(expand_caps("/index.php?page=$1&x=$2", &c), "/index.php?page=foo&x=bar");
    ck_assert_str_eq(expand_caps("[$0]", &c), "[/foo/bar.php]");
    /* groups the regex does not have expand to nothing (uWSGI) */
    ck_assert_str_eq(expand_caps("a$3b$9c", &c), "abc");
    /* no captures at all */
    ck_assert_str_eq(expand_caps("a$1b", NULL), "ab");
    /* a group that did not take part */
    struct route_caps u = caps_of("/x", "^/(y)?(x)");
    ck_assert_str_eq(expand_caps("<$1|$2>", &u), "<|x>");
    /* $10 is $1 then '0' */
    ck_assert_str_eq(expand_caps("$10", &c), "foo0");
}
END_TEST

START_TEST(subst_vars)
{
    ck_assert_str_eq(expand_caps("${PATH_INFO}", NULL), "/foo/bar");
    ck_assert_str_eq(expand_caps("http://${HTTP_HOST}${REQUEST_URI}", NULL),
                     "http://example.com/foo/bar?x=1");
    ck_assert_str_eq(expand_caps("[${MISSING}]", NULL), "[]");
    ck_assert_str_eq(expand_caps("[${}]", NULL), "[]");
    ck_assert_str_eq(expand_caps("[${EMPTY}]", NULL), "[]");
    ck_assert_str_eq(expand_caps("${cookie[theme]}/${cookie[sid]}", NULL), "dark/abc123");
    ck_assert_str_eq(expand_caps("[${cookie[none]}]", NULL), "[]");
    ck_assert_str_eq(expand_caps("${qs[b]}-${qs[a]}-[${qs[c]}]-[${qs[zz]}]", NULL), "two-1-[]-[]");
    ck_assert_str_eq(expand_caps("${echo[hi there]}", NULL), "hi there");
    ck_assert_str_eq(expand_caps("[${unknown[x]}]", NULL), "[]");
    /* a value is inserted as is, never expanded again */
    ck_assert_str_eq(expand_caps("${EVIL}", NULL), "${HTTP_HOST}");
    /* dynamic names: $N inside ${...} (uWSGI replaces groups first) */
    struct route_caps c = caps_of("/p/b", "^/p/(\\w+)$");
    ck_assert_str_eq(expand_caps("${qs[$1]}", &c), "two");
    struct route_caps k = caps_of("K1", "^(K)(1)$");
    ck_assert_str_eq(expand_caps("${$1$2}", &k), "kay-one");
}
END_TEST

START_TEST(subst_literal_dollars)
{
    /* uWSGI has no escape: what is not $D or ${..} stays as written */
    ck_assert_str_eq(expand_caps("cost: $5.00", NULL), "cost: .00");
    ck_assert_str_eq(expand_caps("a$b", NULL), "a$b");
    ck_assert_str_eq(expand_caps("end$", NULL), "end$");
    ck_assert_str_eq(expand_caps("$$1", NULL), "$$1");
    ck_assert_str_eq(expand_caps("x${PATH_INFO", NULL), "x${PATH_INFO");
    ck_assert_str_eq(expand_caps("${", NULL), "${");
    ck_assert_str_eq(expand_caps("$}{", NULL), "$}{");
    ck_assert_str_eq(expand_caps("", NULL), "");
    /* captured text with '$' or '${..}' is inserted literally */
    struct route_caps c = caps_of("/a/${HTTP_HOST}/$1", "^/a/(.*)$");
    ck_assert_str_eq(expand_caps("<$1>", &c), "<${HTTP_HOST}/$1>");
    struct route_tmpl t;
    ck_assert_int_eq(route_tmpl_compile(&t, "plain text", 10), 0);
    ck_assert(t.is_static);
    route_tmpl_free(&t);
    ck_assert_int_eq(route_tmpl_compile(&t, "a$1", 3), 0);
    ck_assert(!t.is_static);
    route_tmpl_free(&t);
}
END_TEST

START_TEST(subst_bounded)
{
    /* a 1000-byte capture repeated past the limit: refused, not grown */
    char subject[1001];
    memset(subject, 'a', 1000);
    subject[1000] = '\0';
    struct route_caps c = caps_of(subject, "^(a+)$");
    char tmpl[64 * 2 + 1];
    for (int i = 0; i < 64; i++)
        memcpy(tmpl + 2 * i, "$1", 2);
    tmpl[128] = '\0';
    struct route_tmpl t;
    ck_assert_int_eq(route_tmpl_compile(&t, tmpl, strlen(tmpl)), 0);
    ck_assert_int_eq(route_tmpl_expand(&t, &c, fake_lookup, NULL, out, sizeof out), -1);
    /* exactly what fits: 16 x 1000 bytes + NUL */
    char small[17 * 2 + 1];
    memcpy(small, tmpl, 32);
    small[32] = '\0';
    route_tmpl_free(&t);
    ck_assert_int_eq(route_tmpl_compile(&t, small, 32), 0);
    char buf[16001];
    ck_assert_int_eq(route_tmpl_expand(&t, &c, NULL, NULL, buf, sizeof buf), 16000);
    ck_assert_int_eq(route_tmpl_expand(&t, &c, NULL, NULL, buf, 16000), -1);
    ck_assert_int_eq(route_tmpl_expand(&t, &c, NULL, NULL, buf, 0), -1);
    route_tmpl_free(&t);
}
END_TEST

START_TEST(regex_jit_and_interpreter)
{
    for (int jit = 0; jit <= 1; jit++) {
        struct route_regex re;
        char e[256];
        ck_assert_int_eq(route_regex_compile(&re, "^/healthz/(live|ready)$", jit, e, sizeof e), 0);
        if (!jit)
            ck_assert(!re.jit);
        pcre2_match_data *md = pcre2_match_data_create(ROUTE_MAX_GROUPS, NULL);
        struct route_caps c;
        ck_assert_int_eq(route_regex_match(&re, "/healthz/live", 13, md, NULL, &c), 1);
        ck_assert_uint_eq(c.n, 2);
        ck_assert_uint_eq(c.len[1], 4);
        ck_assert_int_eq(memcmp(c.s[1], "live", 4), 0);
        ck_assert_int_eq(route_regex_match(&re, "/healthz/livex", 14, md, NULL, &c), 0);
        /* the subject is length-bounded, not NUL-terminated */
        ck_assert_int_eq(route_regex_match(&re, "/healthz/readyXYZ", 14, md, NULL, NULL), 1);
        ck_assert_int_eq(route_regex_match(&re, NULL, 0, md, NULL, NULL), 0);
        pcre2_match_data_free(md);
        route_regex_free(&re);
    }
    /* more than ROUTE_MAX_GROUPS groups: the first ten are kept */
    struct route_caps c = caps_of("abcdefghijkl", "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)");
    ck_assert_uint_eq(c.n, ROUTE_MAX_GROUPS);
    ck_assert_str_eq(expand_caps("$9$1", &c), "ia");
    /* a resource limit is an error, not a match */
    struct route_regex re;
    char e[256];
    ck_assert_int_eq(route_regex_compile(&re, "^(a+)+$", false, e, sizeof e), 0);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(mc, 1000);
    pcre2_match_data *md = pcre2_match_data_create(ROUTE_MAX_GROUPS, NULL);
    const char *evil = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";
    ck_assert_int_eq(route_regex_match(&re, evil, strlen(evil), md, mc, NULL), -1);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    route_regex_free(&re);
}
END_TEST

/* ------------------------------------------------------------ helpers */

START_TEST(url_decode)
{
    char o[64];
    ck_assert_uint_eq(route_url_decode("/a%20b%2Fc", 10, o), 6);
    ck_assert_str_eq(o, "/a b/c");
    route_url_decode("%00x%zz%4", 9, o);
    ck_assert_str_eq(o, "%00x%zz%4");
    route_url_decode("%41%4a%4A", 9, o);
    ck_assert_str_eq(o, "AJJ");
    route_url_decode("%", 1, o);
    ck_assert_str_eq(o, "%");
}
END_TEST

START_TEST(location_encode)
{
    char o[64];
    ck_assert_int_eq(route_location_encode("/a b\r\nSet-Cookie: x", 19, o, sizeof o), 27);
    ck_assert_str_eq(o, "/a%20b%0D%0ASet-Cookie:%20x");
    ck_assert_int_eq(route_location_encode("/\xc3\xa9%41", 6, o, sizeof o), 10);
    ck_assert_str_eq(o, "/%C3%A9%41");
    ck_assert_int_eq(route_location_encode("abc", 3, o, 3), -1);
    ck_assert_int_eq(route_location_encode("abc", 3, o, 4), 3);
    ck_assert_int_eq(route_location_encode(" ", 1, o, 3), -1);
}
END_TEST

START_TEST(header_split)
{
    const char *n, *v;
    size_t nl, vl;
    ck_assert(route_header_split("X-A:  v 1 ", 10, &n, &nl, &v, &vl));
    ck_assert_uint_eq(nl, 3);
    ck_assert_int_eq(memcmp(n, "X-A", 3), 0);
    ck_assert_uint_eq(vl, 3);
    ck_assert_int_eq(memcmp(v, "v 1", 3), 0);
    ck_assert(route_header_split("X:", 2, &n, &nl, &v, &vl) && vl == 0);
    ck_assert(!route_header_split("X-A v", 5, &n, &nl, &v, &vl));
    ck_assert(!route_header_split("X A: v", 6, &n, &nl, &v, &vl));
    ck_assert(!route_header_split(": v", 3, &n, &nl, &v, &vl));
    ck_assert(!route_header_split("X: a\r\nY: b", 10, &n, &nl, &v, &vl));
    ck_assert(!route_header_split("X: a\0b", 6, &n, &nl, &v, &vl));
    ck_assert(route_header_split("X: a\tb", 6, &n, &nl, &v, &vl));
}
END_TEST

START_TEST(log_escape)
{
    char o[64];
    route_log_escape("a\nb\x1b[31m\\", 9, o, sizeof o);
    ck_assert_str_eq(o, "a\\x0ab\\x1b[31m\\x5c");
    ck_assert_uint_eq(route_log_escape("abcdef", 6, o, 4), 3);
    ck_assert_str_eq(o, "abc");
    ck_assert_uint_eq(route_log_escape("\n\n", 2, o, 6), 4);
}
END_TEST

START_TEST(basic_decode)
{
    char o[64];
    ck_assert_int_eq(route_basic_decode("Basic YWRtaW46czNjcmV0", 22, o, sizeof o), 12);
    ck_assert_str_eq(o, "admin:s3cret");
    ck_assert_int_eq(route_basic_decode("basic   YTpi  ", 14, o, sizeof o), 3);
    ck_assert_str_eq(o, "a:b");
    ck_assert_int_eq(route_basic_decode("Basic YQ==", 10, o, sizeof o), 1);
    ck_assert_int_eq(route_basic_decode("Basic YWI=", 10, o, sizeof o), 2);
    ck_assert_int_eq(route_basic_decode("Bearer YTpi", 11, o, sizeof o), -1);
    ck_assert_int_eq(route_basic_decode("Basic", 5, o, sizeof o), -1);
    ck_assert_int_eq(route_basic_decode("Basic ", 6, o, sizeof o), -1);
    ck_assert_int_eq(route_basic_decode("Basic YTp", 9, o, sizeof o), -1);
    ck_assert_int_eq(route_basic_decode("Basic Y=pi", 10, o, sizeof o), -1);
    ck_assert_int_eq(route_basic_decode("Basic YT=i", 10, o, sizeof o), -1);
    ck_assert_int_eq(route_basic_decode("Basic YQ==YQ==", 14, o, sizeof o), -1);
    ck_assert_int_eq(route_basic_decode("Basic YT!i", 10, o, sizeof o), -1);
    ck_assert_int_eq(route_basic_decode("BasicYTpi", 9, o, sizeof o), -1);
    /* too long for the buffer */
    ck_assert_int_eq(route_basic_decode("Basic YWRtaW46czNjcmV0", 22, o, 12), -1);
    ck_assert(route_ct_equal("abc", 3, "abc", 3));
    ck_assert(!route_ct_equal("abc", 3, "abd", 3));
    ck_assert(!route_ct_equal("ab", 2, "abc", 3));
    ck_assert(!route_ct_equal("abcd", 4, "abc", 3));
    ck_assert(route_ct_equal("", 0, "", 0));
}
END_TEST

START_TEST(sha1_vectors)
{
    unsigned char d[20];
    char hex[41];
    route_sha1("abc", 3, d);
    for (int i = 0; i < 20; i++)
        sprintf(hex + 2 * i, "%02x", d[i]);
    ck_assert_str_eq(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    route_sha1("", 0, d);
    for (int i = 0; i < 20; i++)
        sprintf(hex + 2 * i, "%02x", d[i]);
    ck_assert_str_eq(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    route_sha1(two, strlen(two), d);
    for (int i = 0; i < 20; i++)
        sprintf(hex + 2 * i, "%02x", d[i]);
    ck_assert_str_eq(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}
END_TEST

static char htfile[64];

static void write_htpasswd(const char *content)
{
    strcpy(htfile, "/tmp/route-htpasswd-XXXXXX");
    int fd = mkstemp(htfile);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

START_TEST(htpasswd_file)
{
    /* {SHA} of "password" (htpasswd -s) and a bcrypt hash made here */
    char salt[] = "$2b$05$abcdefghijklmnopqrstuu";
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *bc = crypt_r("hunter2", salt, &cd);
    ck_assert_ptr_nonnull(bc);
    ck_assert(strncmp(bc, "$2b$", 4) == 0);
    char content[512];
    snprintf(content, sizeof content,
             "# users\n\nsha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nbob:%s\r\n", bc);
    write_htpasswd(content);
    struct route_htpasswd h;
    ck_assert_int_eq(route_htpasswd_load(&h, htfile, err, sizeof err), 0);
    ck_assert_uint_eq(h.count, 2);
    ck_assert_uint_eq(route_htpasswd_check(&h, "sha", 3, "password", 8), 3);
    ck_assert_uint_eq(route_htpasswd_check(&h, "sha", 3, "passwore", 8), 0);
    ck_assert_uint_eq(route_htpasswd_check(&h, "bob", 3, "hunter2", 7), 3);
    ck_assert_uint_eq(route_htpasswd_check(&h, "bob", 3, "hunter3", 7), 0);
    ck_assert_uint_eq(route_htpasswd_check(&h, "bo", 2, "hunter2", 7), 0);
    ck_assert_uint_eq(route_htpasswd_check(&h, "eve", 3, "password", 8), 0);
    route_htpasswd_free(&h);

    /* the basicauth action loads it at parse time */
    char line[128];
    snprintf(line, sizeof line, "^/ basicauth:Files,%s", htfile);
    ck_ok("route", line);
    ck_assert_ptr_nonnull(last_rule(ROUTE_CHAIN_REQUEST)->htpasswd);
    unlink(htfile);
}
END_TEST

START_TEST(htpasswd_bad)
{
    write_htpasswd("alice:$apr1$abc$defghijklmnopqrstuv\n");
    struct route_htpasswd h;
    ck_assert_int_eq(route_htpasswd_load(&h, htfile, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ":1: user 'alice'") && strstr(err, "$apr1$"), "%s", err);
    unlink(htfile);
    write_htpasswd("ok:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nbroken line\n");
    ck_assert_int_eq(route_htpasswd_load(&h, htfile, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ":2: expected user:hash"), "%s", err);
    unlink(htfile);
    write_htpasswd("x:notahash!\n");
    ck_assert_int_eq(route_htpasswd_load(&h, htfile, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unsupported password hash"), "%s", err);
    unlink(htfile);
    write_htpasswd("# nobody\n");
    ck_assert_int_eq(route_htpasswd_load(&h, htfile, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "has no user"), "%s", err);
    unlink(htfile);
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup_cfg, teardown_cfg);
    tcase_add_test(tc, option_kinds);
    tcase_add_test(tc, parse_every_action);
    tcase_add_test(tc, subjects_and_blanks);
    tcase_add_test(tc, bad_actions);
    tcase_add_test(tc, bad_regexes);
    tcase_add_test(tc, conditions_parse);
    tcase_add_test(tc, conditions_eval);
    tcase_add_test(tc, goto_forward_only);
    tcase_add_test(tc, goto_unknown_label);
    tcase_add_test(tc, goto_resolves);
    tcase_add_test(tc, goto_number_backward);
    tcase_add_test(tc, goto_in_other_chain);
    tcase_add_test(tc, htpasswd_file);
    tcase_add_test(tc, htpasswd_bad);
    suite_add_tcase(s, tc);
    TCase *ts = tcase_create("substitution");
    tcase_add_test(ts, subst_groups);
    tcase_add_test(ts, subst_vars);
    tcase_add_test(ts, subst_literal_dollars);
    tcase_add_test(ts, subst_bounded);
    tcase_add_test(ts, regex_jit_and_interpreter);
    suite_add_tcase(s, ts);
    TCase *th = tcase_create("helpers");
    tcase_add_test(th, url_decode);
    tcase_add_test(th, location_encode);
    tcase_add_test(th, header_split);
    tcase_add_test(th, log_escape);
    tcase_add_test(th, basic_decode);
    tcase_add_test(th, sha1_vectors);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(route_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
