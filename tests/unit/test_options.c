/*
 * tests/unit/test_options.c - the option registry and typed parsers of
 * core/options.c (internal API, core/internal.h): every type's parser with
 * edge values and overflow, registration (duplicates, aliases, bad rows),
 * defaults, list accumulation, range checks, COMPAT rows, the rendering
 * used by --show-config, the exact error texts users see, and the edit
 * distance behind "did you mean".
 */
#include "internal.h"

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

/* Capture what the code under test writes to fd 2 (wharf_log and
 * wharf_config_error write there). */
static int saved_stderr = -1;
static char capture_path[64];

static void capture_begin(void)
{
    snprintf(capture_path, sizeof capture_path, "/tmp/wharf-test-stderr-XXXXXX");
    int fd = mkstemp(capture_path);
    ck_assert_int_ge(fd, 0);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Returns the captured text (malloc'd) and restores fd 2. */
static char *capture_end(void)
{
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    FILE *f = fopen(capture_path, "r");
    ck_assert_ptr_nonnull(f);
    char *buf = calloc(1, 8192);
    size_t n = fread(buf, 1, 8191, f);
    buf[n] = '\0';
    fclose(f);
    unlink(capture_path);
    return buf;
}

/* The message part of a wharf_log line ("<time> [<role> <pid>] ERROR: msg\n"). */
static const char *log_message(const char *line, const char *level)
{
    char tag[16];
    snprintf(tag, sizeof tag, "] %s: ", level);
    const char *p = strstr(line, tag);
    ck_assert_msg(p != NULL, "no '%s' log line in: %s", level, line);
    return p + strlen(tag);
}

static void assert_logged(const char *captured, const char *level, const char *expected)
{
    const char *msg = log_message(captured, level);
    size_t n = strlen(expected);
    ck_assert_msg(strncmp(msg, expected, n) == 0 && (msg[n] == '\n' || msg[n] == '\0'),
                  "expected log message\n  %s\ngot\n  %s", expected, msg);
}

/* Free every string the registry allocated into fields and list items, then
 * the registry (the core keeps them for the life of the process; a test
 * frees them so that LeakSanitizer sees real leaks only). */
static void release(struct wharf_options *o)
{
    for (size_t i = 0; i < o->count; i++) {
        struct wharf_optdef *d = &o->defs[i];
        unsigned type = d->opt->type & WHARF_OPT_TYPE_MASK;
        if (type == WHARF_OPT_ALIAS || type == WHARF_OPT_COMPAT)
            continue;
        for (size_t k = 0; k < d->nitems; k++)
            free((char *)d->items[k].value);
        if (!(d->opt->type & WHARF_OPT_LIST) &&
            (type == WHARF_OPT_STRING || type == WHARF_OPT_ADDRESS)) {
            char **f = (char **)((char *)d->conf + d->opt->offset);
            free(*f);
            *f = NULL;
        }
    }
    wharf_options_free(o);
}

/* ------------------------------------------------------------ wharf_parse_size */

struct size_case {
    const char *in;
    int rc;
    size_t out;
};

static const struct size_case size_cases[] = {
    { "0", 0, 0 },
    { "1", 0, 1 },
    { "65535", 0, 65535 },
    { "65536", 0, 65536 },
    { "64k", 0, 65536 },
    { "64K", 0, 65536 },
    { "64kb", 0, 65536 },
    { "64KB", 0, 65536 },
    { "8m", 0, 8u << 20 },
    { "8M", 0, 8u << 20 },
    { "1g", 0, 1u << 30 },
    { "1G", 0, 1u << 30 },
    { "1gb", 0, 1u << 30 },         /* "gb" is accepted like nginx's and uWSGI's users write it */
    { "0k", 0, 0 },
    { " 64k ", 0, 65536 },          /* surrounding blanks are ignored */
    { "\t8m", 0, 8u << 20 },
    { "007", 0, 7 },                /* decimal, never octal */
    { "18446744073709551615", 0, SIZE_MAX },
    { "17179869183g", 0, SIZE_MAX - ((1ull << 30) - 1) }, /* largest whole g */
    { "17592186044415m", 0, SIZE_MAX - ((1ull << 20) - 1) },
    { "18014398509481983k", 0, SIZE_MAX - 1023 },
    /* errors */
    { "64q", -1, 0 },
    { "-1", -1, 0 },
    { "+1", -1, 0 },
    { "18446744073709551616", -1, 0 }, /* SIZE_MAX + 1 */
    { "99999999999999999999999", -1, 0 },
    { "17179869184g", -1, 0 },          /* 2^64: overflows after the shift */
    { "17592186044416m", -1, 0 },
    { "18014398509481984k", -1, 0 },
    { "", -1, 0 },
    { " ", -1, 0 },
    { "k", -1, 0 },
    { "64 k", -1, 0 },
    { "64kk", -1, 0 },
    { "64b", -1, 0 },                   /* a unit suffix b only after k/m/g */
    { "1t", -1, 0 },
    { "1.5m", -1, 0 },
    { "0x10", -1, 0 },
    { "1e3", -1, 0 },
    { "64k 1", -1, 0 },
};

START_TEST(test_parse_size)
{
    const struct size_case *c = &size_cases[_i];
    size_t out = 12345;
    int rc = wharf_parse_size(c->in, &out);
    ck_assert_msg(rc == c->rc, "wharf_parse_size(\"%s\") returned %d, expected %d", c->in, rc, c->rc);
    if (c->rc == 0)
        ck_assert_msg(out == c->out, "wharf_parse_size(\"%s\") = %zu, expected %zu", c->in, out, c->out);
    else
        ck_assert_msg(out == 12345, "wharf_parse_size(\"%s\") wrote its output on error", c->in);
}
END_TEST

/* ------------------------------------------------------------ wharf_parse_duration_ms */

struct duration_case {
    const char *in;
    int rc;
    int64_t ms;
};

static const struct duration_case duration_cases[] = {
    { "30", 0, 30000 },           /* a bare number is seconds, as in uWSGI */
    { "0", 0, 0 },
    { "1.5", 0, 1500 },
    { "0.25", 0, 250 },
    { "500ms", 0, 500 },
    { "500MS", 0, 500 },
    { "1.5ms", 0, 2 },            /* rounded to the nearest millisecond */
    { "10s", 0, 10000 },
    { "10S", 0, 10000 },
    { "2m", 0, 120000 },          /* m is minutes, ms milliseconds */
    { "2M", 0, 120000 },
    { "1h", 0, 3600000 },
    { "1.5h", 0, 5400000 },
    { "0ms", 0, 0 },
    { " 30 ", 0, 30000 },
    { "86400", 0, 86400000 },
    { "2500000h", 0, 9000000000000LL },
    /* errors */
    { "", -1, 0 },
    { " ", -1, 0 },
    { "junk", -1, 0 },
    { "ms", -1, 0 },
    { "-1", -1, 0 },
    { "+1", -1, 0 },
    { ".5", -1, 0 },
    { "30 s", -1, 0 },
    { "1d", -1, 0 },
    { "5mss", -1, 0 },
    { "1e400", -1, 0 },
    { "99999999999999999", -1, 0 }, /* ~1e17 s: beyond what int64 ms should hold */
    { "inf", -1, 0 },
    { "nan", -1, 0 },
    { "0x10", -1, 0 },             /* hex is not a duration */
    { "1e3", -1, 0 },              /* nor is an exponent */
    { "1.2.3", -1, 0 },
};

START_TEST(test_parse_duration)
{
    const struct duration_case *c = &duration_cases[_i];
    int64_t out = 12345;
    int rc = wharf_parse_duration_ms(c->in, &out);
    ck_assert_msg(rc == c->rc, "wharf_parse_duration_ms(\"%s\") returned %d, expected %d", c->in, rc,
                  c->rc);
    if (c->rc == 0)
        ck_assert_msg(out == c->ms, "wharf_parse_duration_ms(\"%s\") = %lld, expected %lld", c->in,
                      (long long)out, (long long)c->ms);
    else
        ck_assert_msg(out == 12345, "wharf_parse_duration_ms(\"%s\") wrote its output on error", c->in);
}
END_TEST

/* ------------------------------------------------------------ wharf_parse_bool */

struct bool_case {
    const char *in;
    int rc;
    bool out;
};

static const struct bool_case bool_cases[] = {
    { "true", 0, true }, { "TRUE", 0, true }, { "True", 0, true },
    { "1", 0, true },
    { "yes", 0, true }, { "YES", 0, true }, { "Yes", 0, true },
    { "on", 0, true }, { "ON", 0, true }, { "oN", 0, true },
    { "y", 0, true }, { "Y", 0, true }, { "t", 0, true },
    { "false", 0, false }, { "FALSE", 0, false }, { "False", 0, false },
    { "0", 0, false },
    { "no", 0, false }, { "NO", 0, false },
    { "off", 0, false }, { "OFF", 0, false }, { "Off", 0, false },
    { "n", 0, false }, { "f", 0, false },
    { "", 0, false },       /* `key =` with nothing: off */
    /* errors */
    { "2", -1, false }, { "-1", -1, false }, { "truee", -1, false }, { "tru", -1, false },
    { "yess", -1, false }, { "enable", -1, false }, { "maybe", -1, false }, { "00", -1, false },
    { " true", -1, false }, { "true ", -1, false }, { "o", -1, false },
};

START_TEST(test_parse_bool)
{
    const struct bool_case *c = &bool_cases[_i];
    bool out = !c->out;
    int rc = wharf_parse_bool(c->in, &out);
    ck_assert_msg(rc == c->rc, "wharf_parse_bool(\"%s\") returned %d, expected %d", c->in, rc, c->rc);
    if (c->rc == 0)
        ck_assert_msg(out == c->out, "wharf_parse_bool(\"%s\") = %d, expected %d", c->in, out, c->out);
}
END_TEST

/* ------------------------------------------------------------ wharf_parse_int */

struct int_case {
    const char *in;
    int rc;
    long out;
};

static const struct int_case int_cases[] = {
    { "0", 0, 0 },
    { "42", 0, 42 },
    { "-42", 0, -42 },
    { "+42", 0, 42 },
    { " 42", 0, 42 },
    { "42 ", 0, 42 },
    { "\t42\t", 0, 42 },
    { "007", 0, 7 },                       /* decimal, never octal */
    { "9223372036854775807", 0, LONG_MAX },
    { "-9223372036854775808", 0, LONG_MIN },
    /* errors */
    { "9223372036854775808", -1, 0 },      /* LONG_MAX + 1 */
    { "-9223372036854775809", -1, 0 },
    { "99999999999999999999999999", -1, 0 },
    { "", -1, 0 },
    { "   ", -1, 0 },
    { "abc", -1, 0 },
    { "42abc", -1, 0 },
    { "4 2", -1, 0 },
    { "0x10", -1, 0 },
    { "1.5", -1, 0 },
    { "1e3", -1, 0 },
    { "--1", -1, 0 },
    { "-", -1, 0 },
    { "64k", -1, 0 },
};

START_TEST(test_parse_int)
{
    const struct int_case *c = &int_cases[_i];
    long out = 12345;
    int rc = wharf_parse_int(c->in, &out);
    ck_assert_msg(rc == c->rc, "wharf_parse_int(\"%s\") returned %d, expected %d", c->in, rc, c->rc);
    if (c->rc == 0)
        ck_assert_msg(out == c->out, "wharf_parse_int(\"%s\") = %ld, expected %ld", c->in, out, c->out);
    else
        ck_assert_msg(out == 12345, "wharf_parse_int(\"%s\") wrote its output on error", c->in);
}
END_TEST

/* ------------------------------------------------------------ wharf_parse_address */

struct address_case {
    const char *in;
    const char *err; /* NULL: accepted */
};

static const struct address_case address_cases[] = {
    { "127.0.0.1:8080", NULL },
    { "localhost:80", NULL },
    { "0.0.0.0:0", NULL },
    { ":8000", NULL },                 /* all IPv4 interfaces, as in uWSGI */
    { "host:65535", NULL },
    { "[::1]:80", NULL },
    { "[::]:8000", NULL },
    { "[fe80::1%eth0]:80", NULL },
    { "/tmp/x.sock", NULL },
    { "./app.sock", NULL },
    { "@abstract", NULL },             /* Linux abstract namespace */
    { "", "empty address" },
    { "localhost", "'localhost' has no port (expected host:port, :port or a unix socket path)" },
    { "x.sock", "'x.sock' has no port (expected host:port, :port or a unix socket path)" },
    { "host:70000", "'host:70000' has an invalid port '70000' (expected 0-65535)" },
    { "host:65536", "'host:65536' has an invalid port '65536' (expected 0-65535)" },
    { "host:", "'host:' has an invalid port '' (expected 0-65535)" },
    { ":", "':' has an invalid port '' (expected 0-65535)" },
    { "host:-1", "'host:-1' has an invalid port '-1' (expected 0-65535)" },
    { "host:http", "'host:http' has an invalid port 'http' (expected 0-65535)" },
    { "host:80x", "'host:80x' has an invalid port '80x' (expected 0-65535)" },
    { "host:99999999999999999999", "'host:99999999999999999999' has an invalid port '99999999999999999999' (expected 0-65535)" },
    { "[::1]:70000", "'[::1]:70000' has an invalid port '70000' (expected 0-65535)" },
    { "[::1]", "'[::1]' is not [ipv6]:port" },
    { "[::1]80", "'[::1]80' is not [ipv6]:port" },
    { "[::1:80", "'[::1:80' is not [ipv6]:port" },
    { "::1", "'::1' is an IPv6 address without brackets (expected [ipv6]:port)" },
    { "::1:8080", "'::1:8080' is an IPv6 address without brackets (expected [ipv6]:port)" },
};

START_TEST(test_parse_address)
{
    const struct address_case *c = &address_cases[_i];
    char err[256] = "";
    int rc = wharf_parse_address(c->in, err, sizeof err);
    if (!c->err) {
        ck_assert_msg(rc == 0, "wharf_parse_address(\"%s\") refused it: %s", c->in, err);
    } else {
        ck_assert_msg(rc == -1, "wharf_parse_address(\"%s\") accepted it", c->in);
        ck_assert_str_eq(err, c->err);
    }
}
END_TEST

START_TEST(test_parse_address_small_buffer)
{
    /* the message is cut to the buffer, never written past it */
    char err[8];
    memset(err, 'X', sizeof err);
    ck_assert_int_eq(wharf_parse_address("localhost", err, sizeof err), -1);
    ck_assert_str_eq(err, "'localh");
}
END_TEST

/* ------------------------------------------------------------ type names and expectations */

START_TEST(test_type_names)
{
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_STRING), "string");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_STRING | WHARF_OPT_LIST), "list");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_INT), "int");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_BOOL), "bool");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_SIZE), "size");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_DURATION), "duration");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_ADDRESS), "address");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_ADDRESS | WHARF_OPT_LIST), "address list");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_ADDRESS | WHARF_OPT_LISTEN), "address");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_COMPAT), "compat");
    ck_assert_str_eq(wharf_option_type_name(WHARF_OPT_ALIAS), "alias");
    ck_assert_str_eq(wharf_option_type_name(0), "?");
    ck_assert_str_eq(wharf_option_type_name(0x42), "?");

    ck_assert_str_eq(wharf_option_expected(WHARF_OPT_INT), "a whole number");
    ck_assert_str_eq(wharf_option_expected(WHARF_OPT_BOOL), "true or false (also 1/0, yes/no, on/off)");
    ck_assert_str_eq(wharf_option_expected(WHARF_OPT_SIZE), "a size such as 65536, 64k, 8m or 1g");
    ck_assert_str_eq(wharf_option_expected(WHARF_OPT_DURATION),
                     "a duration such as 30 (seconds), 500ms, 2m or 1h");
    ck_assert_str_eq(wharf_option_expected(WHARF_OPT_ADDRESS),
                     "host:port, :port, [ipv6]:port or a unix socket path");
    ck_assert_str_eq(wharf_option_expected(WHARF_OPT_STRING), "a value");
}
END_TEST

/* ------------------------------------------------------------ a test table */

struct t_conf {
    char *str;
    long num;
    long ranged;
    bool flag;
    size_t size;
    size_t ranged_size;
    int64_t dur;
    int64_t ranged_dur;
    char *addr;
    struct wharf_list list;
    struct wharf_list list_nodef;
    struct wharf_list addrs;
};

#define T(field) offsetof(struct t_conf, field)

static const struct wharf_option t_options[] = {
    { "t-str", WHARF_OPT_STRING, T(str), "hello", "a string", 0, 0 },
    { "t-int", WHARF_OPT_INT, T(num), "7", "an int", 0, 0 },
    { "t-ranged", WHARF_OPT_INT, T(ranged), "5", "1..10", 1, 10 },
    { "t-negative", WHARF_OPT_INT, T(num), NULL, "-10..-1 (same field as t-int)", -10, -1 },
    { "t-bool", WHARF_OPT_BOOL, T(flag), "true", "a bool", 0, 0 },
    { "t-size", WHARF_OPT_SIZE, T(size), "64k", "a size", 0, 0 },
    { "t-ranged-size", WHARF_OPT_SIZE, T(ranged_size), NULL, "1k..1m", 1024, 1 << 20 },
    { "t-dur", WHARF_OPT_DURATION, T(dur), "30", "a duration", 0, 0 },
    { "t-ranged-dur", WHARF_OPT_DURATION, T(ranged_dur), NULL, "100ms..1m", 100, 60000 },
    { "t-addr", WHARF_OPT_ADDRESS, T(addr), NULL, "an address", 0, 0 },
    { "t-list", WHARF_OPT_STRING | WHARF_OPT_LIST, T(list), "builtin", "a list with a default", 0, 0 },
    { "t-list-nodef", WHARF_OPT_STRING | WHARF_OPT_LIST, T(list_nodef), NULL, "a list", 0, 0 },
    { "t-addrs", WHARF_OPT_ADDRESS | WHARF_OPT_LIST | WHARF_OPT_LISTEN, T(addrs), NULL, "listen here", 0, 0 },
    { "t-compat", WHARF_OPT_COMPAT, 0, NULL, "always on", 0, 0 },
    { "t-alias", WHARF_OPT_ALIAS, 0, "t-int", "alias of t-int", 0, 0 },
    { "t-list-alias", WHARF_OPT_ALIAS, 0, "t-list-nodef", "alias of t-list-nodef", 0, 0 },
    WHARF_OPTIONS_END
};

static struct wharf_options reg;
static struct t_conf tc;

static void t_setup(void)
{
    memset(&tc, 0, sizeof tc);
    wharf_options_init(&reg);
    ck_assert_int_eq(wharf_options_register(&reg, t_options, 0, "t", &tc), 0);
    ck_assert_int_eq(wharf_options_apply_defaults(&reg), 0);
}

static void t_teardown(void)
{
    release(&reg);
}

static struct wharf_optdef *def(const char *name)
{
    struct wharf_optdef *d = wharf_options_find(&reg, name);
    ck_assert_msg(d != NULL, "option %s not registered", name);
    return d;
}

/* Set and expect success. */
static void set_ok(const char *name, const char *value, const char *origin)
{
    char err[512] = "";
    int rc = wharf_options_set(&reg, def(name), value, origin, err, sizeof err);
    ck_assert_msg(rc == 0, "setting %s = '%s' failed: %s", name, value, err);
}

/* Set and expect the exact error text. */
static void set_err(const char *name, const char *value, const char *expected)
{
    char err[512] = "";
    int rc = wharf_options_set(&reg, def(name), value, "test.ini:1", err, sizeof err);
    ck_assert_msg(rc == -1, "setting %s = '%s' was accepted", name, value);
    ck_assert_str_eq(err, expected);
}

static void assert_text(const char *name, const char *expected)
{
    char *v = wharf_option_value_text(def(name));
    ck_assert_str_eq(v, expected);
    free(v);
}

/* ------------------------------------------------------------ defaults */

START_TEST(test_defaults_applied)
{
    ck_assert_str_eq(tc.str, "hello");
    ck_assert_int_eq(tc.num, 7);
    ck_assert_int_eq(tc.ranged, 5);
    ck_assert(tc.flag);
    ck_assert_uint_eq(tc.size, 65536);
    ck_assert_int_eq(tc.ranged_size, 0);   /* no default: left zero */
    ck_assert_int_eq(tc.dur, 30000);
    ck_assert_ptr_null(tc.addr);
    /* defaults are not "set" and say where they came from */
    for (size_t i = 0; i < reg.count; i++) {
        ck_assert_msg(!reg.defs[i].set, "%s is set after defaults", reg.defs[i].opt->name);
        ck_assert_str_eq(reg.defs[i].origin, "default");
    }
    /* list fields are written by finish(); the default is one item */
    wharf_options_finish(&reg);
    ck_assert_uint_eq(tc.list.count, 1);
    ck_assert_str_eq(tc.list.items[0].value, "builtin");
    ck_assert_str_eq(tc.list.items[0].origin, "default");
    ck_assert_uint_eq(tc.list_nodef.count, 0);
    ck_assert_uint_eq(tc.addrs.count, 0);
}
END_TEST

START_TEST(test_core_defaults)
{
    /* the core's own table registers and its defaults are valid values */
    struct wharf_core_conf conf;
    memset(&conf, 0, sizeof conf);
    struct wharf_options o;
    wharf_options_init(&o);
    ck_assert_int_eq(wharf_options_register(&o, wharf_core_options, -1, "core", &conf), 0);
    ck_assert_int_eq(wharf_options_apply_defaults(&o), 0);
    wharf_options_finish(&o);
    ck_assert_int_eq(conf.processes, 1);
    ck_assert_int_eq(conf.threads, 1);
    ck_assert(conf.strict);
    ck_assert(!conf.vacuum);
    ck_assert_int_eq(conf.listen_backlog, 1024);
    ck_assert_int_eq(conf.graceful_timeout, 30000);
    ck_assert_int_eq(conf.shutdown_delay, 0);
    ck_assert_int_eq(conf.max_requests, 0);
    ck_assert_str_eq(conf.plugins_dir, WHARF_PLUGINDIR);
    ck_assert_ptr_null(conf.pidfile);
    ck_assert_uint_eq(conf.plugins.count, 0);
    ck_assert(!conf.help && !conf.version && !conf.show_config && !conf.check_config);
    /* every row's help is there for --help and the README */
    for (const struct wharf_option *r = wharf_core_options; r->name; r++)
        ck_assert_msg(r->help && *r->help, "core option %s has no help", r->name);
    release(&o);
}
END_TEST

START_TEST(test_bad_builtin_default)
{
    static const struct wharf_option bad[] = {
        { "bad-int", WHARF_OPT_INT, 0, "many", "a broken default", 0, 0 },
        WHARF_OPTIONS_END
    };
    long field = 0;
    struct wharf_options o;
    wharf_options_init(&o);
    ck_assert_int_eq(wharf_options_register(&o, bad, 3, "broken", &field), 0);
    capture_begin();
    int rc = wharf_options_apply_defaults(&o);
    char *out = capture_end();
    ck_assert_int_eq(rc, -1);
    assert_logged(out, "ERROR",
                  "option 'bad-int': bad built-in default: invalid value 'many' (expected a whole number)");
    free(out);
    wharf_options_free(&o);
}
END_TEST

START_TEST(test_bad_builtin_list_default)
{
    static const struct wharf_option bad[] = {
        { "bad-addrs", WHARF_OPT_ADDRESS | WHARF_OPT_LIST, 0, "nowhere", "a broken default", 0, 0 },
        WHARF_OPTIONS_END
    };
    struct wharf_list field = { 0, NULL };
    struct wharf_options o;
    wharf_options_init(&o);
    ck_assert_int_eq(wharf_options_register(&o, bad, 3, "broken", &field), 0);
    capture_begin();
    int rc = wharf_options_apply_defaults(&o);
    char *out = capture_end();
    ck_assert_int_eq(rc, -1);
    assert_logged(out, "ERROR",
                  "option 'bad-addrs': bad built-in default: 'nowhere' has no port "
                  "(expected host:port, :port or a unix socket path)");
    free(out);
    wharf_options_free(&o);
}
END_TEST

/* ------------------------------------------------------------ setting values */

START_TEST(test_set_each_type)
{
    set_ok("t-str", "world", "a.ini:1");   /* frees the default it replaces */
    ck_assert_str_eq(tc.str, "world");
    set_ok("t-int", "-3", "a.ini:2");
    ck_assert_int_eq(tc.num, -3);
    set_ok("t-bool", "off", "a.ini:3");
    ck_assert(!tc.flag);
    set_ok("t-size", "8m", "a.ini:4");
    ck_assert_uint_eq(tc.size, 8u << 20);
    set_ok("t-dur", "500ms", "a.ini:5");
    ck_assert_int_eq(tc.dur, 500);
    set_ok("t-addr", "[::1]:8080", "a.ini:6");
    ck_assert_str_eq(tc.addr, "[::1]:8080");
    set_ok("t-addrs", "/run/app.sock", "a.ini:7");
    set_ok("t-addrs", ":8000", "a.ini:8");
    wharf_options_finish(&reg);
    ck_assert_uint_eq(tc.addrs.count, 2);
    ck_assert_str_eq(tc.addrs.items[0].value, "/run/app.sock");
    ck_assert_str_eq(tc.addrs.items[1].origin, "a.ini:8");

    struct wharf_optdef *d = def("t-size");
    ck_assert(d->set);
    ck_assert_str_eq(d->origin, "a.ini:4");
}
END_TEST

START_TEST(test_last_value_wins)
{
    set_ok("t-int", "1", "a.ini:1");
    set_ok("t-int", "2", "env WHARF_T_INT");
    set_ok("t-int", "3", "command line");
    ck_assert_int_eq(tc.num, 3);
    ck_assert_str_eq(def("t-int")->origin, "command line");
}
END_TEST

START_TEST(test_error_messages)
{
    set_err("t-int", "abc", "invalid value 'abc' (expected a whole number)");
    set_err("t-int", "9223372036854775808", "invalid value '9223372036854775808' (expected a whole number)");
    set_err("t-int", "", "invalid value '' (expected a whole number)");
    set_err("t-bool", "maybe", "invalid value 'maybe' (expected true or false (also 1/0, yes/no, on/off))");
    set_err("t-size", "64q", "invalid value '64q' (expected a size such as 65536, 64k, 8m or 1g)");
    set_err("t-size", "-1", "invalid value '-1' (expected a size such as 65536, 64k, 8m or 1g)");
    set_err("t-size", "18446744073709551616",
            "invalid value '18446744073709551616' (expected a size such as 65536, 64k, 8m or 1g)");
    set_err("t-dur", "soon", "invalid value 'soon' (expected a duration such as 30 (seconds), 500ms, 2m or 1h)");
    set_err("t-addr", "localhost", "'localhost' has no port (expected host:port, :port or a unix socket path)");
    set_err("t-addr", "host:70000", "'host:70000' has an invalid port '70000' (expected 0-65535)");
    set_err("t-addrs", "host:70000", "'host:70000' has an invalid port '70000' (expected 0-65535)");
    set_err("t-alias", "x", "invalid value 'x' (expected a whole number)");
    /* nothing changed, nothing counts as set */
    ck_assert_int_eq(tc.num, 7);
    ck_assert(tc.flag);
    ck_assert_uint_eq(tc.size, 65536);
    ck_assert_int_eq(tc.dur, 30000);
    ck_assert_ptr_null(tc.addr);
    ck_assert(!def("t-int")->set);
    ck_assert(!def("t-size")->set);
    ck_assert_str_eq(def("t-size")->origin, "default");
    ck_assert_uint_eq(def("t-addrs")->nitems, 0);
}
END_TEST

START_TEST(test_error_message_fits_buffer)
{
    char err[16];
    ck_assert_int_eq(wharf_options_set(&reg, def("t-size"), "64q", "x", err, sizeof err), -1);
    ck_assert_str_eq(err, "invalid value '");
}
END_TEST

START_TEST(test_ranges)
{
    set_ok("t-ranged", "1", "a");
    set_ok("t-ranged", "10", "a");
    ck_assert_int_eq(tc.ranged, 10);
    set_err("t-ranged", "0", "'0' is out of range (expected 1 to 10)");
    set_err("t-ranged", "11", "'11' is out of range (expected 1 to 10)");
    set_err("t-ranged", "-5", "'-5' is out of range (expected 1 to 10)");
    ck_assert_int_eq(tc.ranged, 10);

    set_ok("t-negative", "-10", "a");
    ck_assert_int_eq(tc.num, -10);
    set_err("t-negative", "0", "'0' is out of range (expected -10 to -1)");

    set_ok("t-ranged-size", "1k", "a");
    ck_assert_uint_eq(tc.ranged_size, 1024);
    set_ok("t-ranged-size", "1m", "a");
    ck_assert_uint_eq(tc.ranged_size, 1 << 20);
    set_err("t-ranged-size", "1023", "'1023' is out of range (expected 1024 to 1048576)");
    set_err("t-ranged-size", "1048577", "'1048577' is out of range (expected 1024 to 1048576)");
    set_err("t-ranged-size", "18446744073709551615",
            "'18446744073709551615' is out of range (expected 1024 to 1048576)");
    ck_assert_uint_eq(tc.ranged_size, 1 << 20);

    set_ok("t-ranged-dur", "100ms", "a");
    set_ok("t-ranged-dur", "1m", "a");
    ck_assert_int_eq(tc.ranged_dur, 60000);
    set_err("t-ranged-dur", "99ms", "'99ms' is out of range (expected 100 ms to 60000 ms)");
    set_err("t-ranged-dur", "61", "'61' is out of range (expected 100 ms to 60000 ms)");
    ck_assert_int_eq(tc.ranged_dur, 60000);

    /* min == max == 0: no range */
    set_ok("t-int", "-9223372036854775808", "a");
    ck_assert_int_eq(tc.num, LONG_MIN);
}
END_TEST

START_TEST(test_core_ranges)
{
    struct wharf_core_conf conf;
    memset(&conf, 0, sizeof conf);
    struct wharf_options o;
    wharf_options_init(&o);
    ck_assert_int_eq(wharf_options_register(&o, wharf_core_options, -1, "core", &conf), 0);
    ck_assert_int_eq(wharf_options_apply_defaults(&o), 0);
    char err[256];
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "processes"), "0", "a.ini:1", err, sizeof err), -1);
    ck_assert_str_eq(err, "'0' is out of range (expected 1 to 4096)");
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "workers"), "4097", "a.ini:1", err, sizeof err), -1);
    ck_assert_str_eq(err, "'4097' is out of range (expected 1 to 4096)");
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "graceful-timeout"), "86401", "a", err, sizeof err), -1);
    ck_assert_str_eq(err, "'86401' is out of range (expected 0 ms to 86400000 ms)");
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "listen"), "64q", "a", err, sizeof err), -1);
    ck_assert_str_eq(err, "invalid value '64q' (expected a whole number)");
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "processes"), "4096", "a", err, sizeof err), 0);
    ck_assert_int_eq(conf.processes, 4096);
    release(&o);
}
END_TEST

/* ------------------------------------------------------------ lists */

START_TEST(test_list_default_replaced)
{
    /* the first explicit item replaces a list default; later ones add */
    set_ok("t-list", "one", "a.ini:1");
    set_ok("t-list", "two", "a.ini:2");
    set_ok("t-list", "three", "command line");
    wharf_options_finish(&reg);
    ck_assert_uint_eq(tc.list.count, 3);
    ck_assert_str_eq(tc.list.items[0].value, "one");
    ck_assert_str_eq(tc.list.items[0].origin, "a.ini:1");
    ck_assert_str_eq(tc.list.items[1].value, "two");
    ck_assert_str_eq(tc.list.items[2].value, "three");
    ck_assert_str_eq(tc.list.items[2].origin, "command line");
    ck_assert(def("t-list")->set);
    assert_text("t-list", "one, two, three");
}
END_TEST

START_TEST(test_list_default_kept)
{
    wharf_options_finish(&reg);
    assert_text("t-list", "builtin");
    ck_assert(!def("t-list")->set);
}
END_TEST

START_TEST(test_list_accumulates)
{
    for (int i = 0; i < 20; i++) {
        char v[16];
        snprintf(v, sizeof v, "item%d", i);
        set_ok("t-list-nodef", v, "a.ini:1");
    }
    /* through the alias too, onto the same list */
    set_ok("t-list-alias", "via-alias", "command line");
    wharf_options_finish(&reg);
    ck_assert_uint_eq(tc.list_nodef.count, 21);
    ck_assert_str_eq(tc.list_nodef.items[0].value, "item0");
    ck_assert_str_eq(tc.list_nodef.items[19].value, "item19");
    ck_assert_str_eq(tc.list_nodef.items[20].value, "via-alias");
    ck_assert_str_eq(tc.list_nodef.items[20].origin, "command line");
    ck_assert_uint_eq(def("t-list-nodef")->nitems, 21);
}
END_TEST

START_TEST(test_list_empty_value)
{
    set_ok("t-list-nodef", "", "a.ini:1");
    wharf_options_finish(&reg);
    ck_assert_uint_eq(tc.list_nodef.count, 1);
    ck_assert_str_eq(tc.list_nodef.items[0].value, "");
}
END_TEST

/* ------------------------------------------------------------ aliases and compat */

START_TEST(test_alias)
{
    struct wharf_optdef *a = def("t-alias");
    ck_assert_ptr_eq(a->target, def("t-int")->opt);
    set_ok("t-alias", "42", "a.ini:9");
    ck_assert_int_eq(tc.num, 42);
    /* recorded on the target, so origin lookups see one option */
    ck_assert(def("t-int")->set);
    ck_assert_str_eq(def("t-int")->origin, "a.ini:9");
    assert_text("t-int", "42");
    assert_text("t-alias", "42");
}
END_TEST

START_TEST(test_core_aliases)
{
    struct wharf_core_conf conf;
    memset(&conf, 0, sizeof conf);
    struct wharf_options o;
    wharf_options_init(&o);
    ck_assert_int_eq(wharf_options_register(&o, wharf_core_options, -1, "core", &conf), 0);
    ck_assert_int_eq(wharf_options_apply_defaults(&o), 0);
    static const struct {
        const char *alias, *target;
    } aliases[] = {
        { "workers", "processes" },
        { "reload-mercy", "graceful-timeout" },
        { "worker-reload-mercy", "graceful-timeout" },
        { "plugins", "plugin" },
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        struct wharf_optdef *a = wharf_options_find(&o, aliases[i].alias);
        struct wharf_optdef *t = wharf_options_find(&o, aliases[i].target);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(a->target == t->opt, "%s does not resolve to %s", aliases[i].alias,
                      aliases[i].target);
    }
    char err[256];
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "workers"), "4", "app.ini:3", err, sizeof err), 0);
    ck_assert_int_eq(conf.processes, 4);
    ck_assert_str_eq(wharf_options_find(&o, "processes")->origin, "app.ini:3");
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "reload-mercy"), "2m", "app.ini:4", err, sizeof err), 0);
    ck_assert_int_eq(conf.graceful_timeout, 120000);
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "plugins"), "python3", "app.ini:5", err, sizeof err), 0);
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "plugin"), "http", "app.ini:6", err, sizeof err), 0);
    wharf_options_finish(&o);
    ck_assert_uint_eq(conf.plugins.count, 2);
    ck_assert_str_eq(conf.plugins.items[0].value, "python3");
    ck_assert_str_eq(conf.plugins.items[1].origin, "app.ini:6");
    release(&o);
}
END_TEST

START_TEST(test_compat)
{
    struct wharf_optdef *d = def("t-compat");
    assert_text("t-compat", "");
    ck_assert(!d->set);
    set_ok("t-compat", "true", "a.ini:3");
    ck_assert(d->set);
    ck_assert_str_eq(d->origin, "a.ini:3");
    assert_text("t-compat", "accepted");
    /* any value is accepted: the behaviour is always there */
    set_ok("t-compat", "false", "a.ini:4");
    set_ok("t-compat", "whatever 42", "a.ini:5");
    set_ok("t-compat", "", "a.ini:6");
}
END_TEST

START_TEST(test_core_compat)
{
    struct wharf_core_conf conf;
    memset(&conf, 0, sizeof conf);
    struct wharf_options o;
    wharf_options_init(&o);
    ck_assert_int_eq(wharf_options_register(&o, wharf_core_options, -1, "core", &conf), 0);
    static const char *const compat[] = { "master", "die-on-term", "enable-threads", "thunder-lock",
                                          "single-interpreter", "offload-threads", "honour-range" };
    char err[256];
    for (size_t i = 0; i < sizeof compat / sizeof compat[0]; i++) {
        struct wharf_optdef *d = wharf_options_find(&o, compat[i]);
        ck_assert_msg(d != NULL, "uWSGI option %s is not accepted", compat[i]);
        ck_assert_uint_eq(d->opt->type & WHARF_OPT_TYPE_MASK, WHARF_OPT_COMPAT);
        ck_assert_int_eq(wharf_options_set(&o, d, "true", "uwsgi.ini:1", err, sizeof err), 0);
        ck_assert_msg(strncmp(d->opt->help, "always on", 9) == 0 || strncmp(d->opt->help, "not needed", 10) == 0,
                      "%s: help should say why it is not needed: %s", compat[i], d->opt->help);
    }
    release(&o);
}
END_TEST

/* ------------------------------------------------------------ value text */

START_TEST(test_value_text)
{
    assert_text("t-str", "hello");
    assert_text("t-int", "7");
    assert_text("t-bool", "true");
    assert_text("t-size", "65536");
    assert_text("t-dur", "30s");
    assert_text("t-ranged-dur", "0s");
    assert_text("t-addr", "");          /* unset string: empty */
    set_ok("t-bool", "no", "a");
    assert_text("t-bool", "false");
    set_ok("t-dur", "1.5", "a");
    assert_text("t-dur", "1500ms");
    set_ok("t-dur", "2m", "a");
    assert_text("t-dur", "120s");
    set_ok("t-size", "18446744073709551615", "a");
    assert_text("t-size", "18446744073709551615");
    set_ok("t-int", "-9223372036854775808", "a");
    assert_text("t-int", "-9223372036854775808");
    set_ok("t-addr", "@abstract", "a");
    assert_text("t-addr", "@abstract");
    wharf_options_finish(&reg);
    assert_text("t-list-nodef", "");
    assert_text("t-addrs", "");
}
END_TEST

/* ------------------------------------------------------------ registration */

START_TEST(test_find)
{
    ck_assert_ptr_null(wharf_options_find(&reg, "t-nope"));
    ck_assert_ptr_null(wharf_options_find(&reg, ""));
    ck_assert_ptr_null(wharf_options_find(&reg, "T-INT")); /* names are exact */
    ck_assert_ptr_nonnull(wharf_options_find(&reg, "t-int"));
    ck_assert_int_eq(def("t-int")->owner, 0);
    ck_assert_ptr_eq(def("t-int")->conf, &tc);
}
END_TEST

START_TEST(test_register_null_table)
{
    size_t n = reg.count;
    ck_assert_int_eq(wharf_options_register(&reg, NULL, 1, "empty", NULL), 0);
    static const struct wharf_option none[] = { WHARF_OPTIONS_END };
    ck_assert_int_eq(wharf_options_register(&reg, none, 1, "none", NULL), 0);
    ck_assert_uint_eq(reg.count, n);
}
END_TEST

START_TEST(test_register_many)
{
    /* the registry grows past its first allocation and finds every row */
    static struct wharf_core_conf conf; /* outlives the test: t_teardown reads it */
    memset(&conf, 0, sizeof conf);
    ck_assert_int_eq(wharf_options_register(&reg, wharf_core_options, -1, "core", &conf), 0);
    for (const struct wharf_option *r = wharf_core_options; r->name; r++)
        ck_assert_ptr_eq(wharf_options_find(&reg, r->name)->opt, r);
    for (const struct wharf_option *r = t_options; r->name; r++)
        ck_assert_ptr_eq(wharf_options_find(&reg, r->name)->opt, r);
    /* aliases registered before the growth still point right */
    ck_assert_ptr_eq(def("t-alias")->target, def("t-int")->opt);
    ck_assert_ptr_eq(def("workers")->target, def("processes")->opt);
    ck_assert_int_eq(def("processes")->owner, -1);
}
END_TEST

START_TEST(test_duplicate_with_core)
{
    static const struct wharf_option dup[] = {
        { "processes", WHARF_OPT_INT, 0, NULL, "mine", 0, 0 },
        WHARF_OPTIONS_END
    };
    struct wharf_core_conf conf;
    long field;
    memset(&conf, 0, sizeof conf);
    struct wharf_options o;
    wharf_options_init(&o);
    ck_assert_int_eq(wharf_options_register(&o, wharf_core_options, -1, "core", &conf), 0);
    size_t n = o.count;
    capture_begin();
    int rc = wharf_options_register(&o, dup, 0, "dupopt", &field);
    char *out = capture_end();
    ck_assert_int_eq(rc, -1);
    assert_logged(out, "ERROR", "option 'processes' of plugin 'dupopt' is already declared by the core");
    free(out);
    ck_assert_uint_eq(o.count, n);
    ck_assert_int_eq(wharf_options_find(&o, "processes")->owner, -1);
    wharf_options_free(&o);
}
END_TEST

START_TEST(test_duplicate_between_plugins)
{
    static const struct wharf_option other[] = {
        { "t-size", WHARF_OPT_SIZE, 0, NULL, "mine", 0, 0 },
        WHARF_OPTIONS_END
    };
    size_t field;
    capture_begin();
    int rc = wharf_options_register(&reg, other, 1, "other", &field);
    char *out = capture_end();
    ck_assert_int_eq(rc, -1);
    assert_logged(out, "ERROR", "option 't-size' of plugin 'other' is already declared by another plugin");
    free(out);
    ck_assert_int_eq(def("t-size")->owner, 0);
}
END_TEST

START_TEST(test_invalid_types)
{
    static const struct {
        unsigned type;
        const char *msg;
    } bad[] = {
        { 0, "option 'x-bad' of 'bad' has an invalid type 0" },
        { WHARF_OPT_ALIAS + 1, "option 'x-bad' of 'bad' has an invalid type 0x9" },
        { WHARF_OPT_INT | WHARF_OPT_LIST, "option 'x-bad' of 'bad' has an invalid type 0x102" },
        { WHARF_OPT_BOOL | WHARF_OPT_LIST, "option 'x-bad' of 'bad' has an invalid type 0x103" },
        { WHARF_OPT_STRING | WHARF_OPT_LISTEN, "option 'x-bad' of 'bad' has an invalid type 0x201" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct wharf_option table[2] = { { "x-bad", bad[i].type, 0, NULL, "bad", 0, 0 }, WHARF_OPTIONS_END };
        struct wharf_options o;
        wharf_options_init(&o);
        long field;
        capture_begin();
        int rc = wharf_options_register(&o, table, 0, "bad", &field);
        char *out = capture_end();
        ck_assert_int_eq(rc, -1);
        assert_logged(out, "ERROR", bad[i].msg);
        free(out);
        wharf_options_free(&o);
    }
}
END_TEST

START_TEST(test_alias_errors)
{
    static const struct wharf_option to_unknown[] = {
        { "x-alias", WHARF_OPT_ALIAS, 0, "x-nothing", "broken", 0, 0 },
        WHARF_OPTIONS_END
    };
    static const struct wharf_option to_null[] = {
        { "x-alias", WHARF_OPT_ALIAS, 0, NULL, "broken", 0, 0 },
        WHARF_OPTIONS_END
    };
    static const struct wharf_option to_alias[] = {
        { "x-alias2", WHARF_OPT_ALIAS, 0, "t-alias", "an alias of an alias", 0, 0 },
        WHARF_OPTIONS_END
    };
    static const struct {
        const struct wharf_option *table;
        const char *msg;
    } cases[] = {
        { to_unknown, "alias 'x-alias' of 'x' points at unknown option 'x-nothing'" },
        { to_null, "alias 'x-alias' of 'x' points at unknown option '(null)'" },
        { to_alias, "alias 'x-alias2' of 'x' points at unknown option 't-alias'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* a fresh registry holding the test table each time: a refused
         * table may leave rows behind (startup stops there anyway) */
        struct wharf_options o;
        struct t_conf conf;
        memset(&conf, 0, sizeof conf);
        wharf_options_init(&o);
        ck_assert_int_eq(wharf_options_register(&o, t_options, 0, "t", &conf), 0);
        capture_begin();
        int rc = wharf_options_register(&o, cases[i].table, 5, "x", NULL);
        char *out = capture_end();
        ck_assert_int_eq(rc, -1);
        assert_logged(out, "ERROR", cases[i].msg);
        free(out);
        wharf_options_free(&o);
    }
}
END_TEST

START_TEST(test_alias_defined_before_target)
{
    /* an alias row may come before its target in the table */
    static const struct wharf_option table[] = {
        { "y-alias", WHARF_OPT_ALIAS, 0, "y-int", "alias first", 0, 0 },
        { "y-int", WHARF_OPT_INT, 0, "3", "target second", 0, 0 },
        WHARF_OPTIONS_END
    };
    long field = 0;
    struct wharf_options o;
    wharf_options_init(&o);
    ck_assert_int_eq(wharf_options_register(&o, table, 0, "y", &field), 0);
    ck_assert_int_eq(wharf_options_apply_defaults(&o), 0);
    ck_assert_int_eq(field, 3);
    char err[128];
    ck_assert_int_eq(wharf_options_set(&o, wharf_options_find(&o, "y-alias"), "9", "c", err, sizeof err), 0);
    ck_assert_int_eq(field, 9);
    wharf_options_free(&o);
}
END_TEST

/* ------------------------------------------------------------ edit distance */

START_TEST(test_edit_distance)
{
    ck_assert_uint_eq(wharf_edit_distance("harikiri", "harakiri"), 1);
    ck_assert_uint_eq(wharf_edit_distance("harakiri", "harakiri"), 0);
    ck_assert_uint_eq(wharf_edit_distance("", ""), 0);
    ck_assert_uint_eq(wharf_edit_distance("", "abc"), 3);
    ck_assert_uint_eq(wharf_edit_distance("abc", ""), 3);
    ck_assert_uint_eq(wharf_edit_distance("procesess", "processes"), 1); /* transposition */
    ck_assert_uint_eq(wharf_edit_distance("abcd", "acbd"), 1);
    ck_assert_uint_eq(wharf_edit_distance("ab", "ba"), 1);
    ck_assert_uint_eq(wharf_edit_distance("thraeds", "threads"), 1);
    ck_assert_uint_eq(wharf_edit_distance("proceses", "processes"), 1);   /* deletion */
    ck_assert_uint_eq(wharf_edit_distance("processess", "processes"), 1); /* insertion */
    ck_assert_uint_eq(wharf_edit_distance("kitten", "sitting"), 3);
    ck_assert_uint_eq(wharf_edit_distance("vaccum", "vacuum"), 1);
    /* optimal string alignment: no edit of a transposed pair (true
     * Damerau-Levenshtein would say 2) */
    ck_assert_uint_eq(wharf_edit_distance("ca", "abc"), 3);
    /* symmetric */
    ck_assert_uint_eq(wharf_edit_distance("static-map", "statik-mapp"),
                      wharf_edit_distance("statik-mapp", "static-map"));
    /* over-long names are "far" rather than a stack overflow */
    char longname[100];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_uint_ge(wharf_edit_distance(longname, "a"), 100);
    char sixtyfour[65];
    memset(sixtyfour, 'b', 64);
    sixtyfour[64] = '\0';
    ck_assert_uint_eq(wharf_edit_distance(sixtyfour, sixtyfour), 0);
}
END_TEST

/* ------------------------------------------------------------ suite */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *options_suite(void)
{
    Suite *s = suite_create("options");

    TCase *p = tcase_create("parsers");
    tcase_add_loop_test(p, test_parse_size, 0, N(size_cases));
    tcase_add_loop_test(p, test_parse_duration, 0, N(duration_cases));
    tcase_add_loop_test(p, test_parse_bool, 0, N(bool_cases));
    tcase_add_loop_test(p, test_parse_int, 0, N(int_cases));
    tcase_add_loop_test(p, test_parse_address, 0, N(address_cases));
    tcase_add_test(p, test_parse_address_small_buffer);
    tcase_add_test(p, test_type_names);
    tcase_add_test(p, test_edit_distance);
    suite_add_tcase(s, p);

    TCase *r = tcase_create("registry");
    tcase_add_checked_fixture(r, t_setup, t_teardown);
    tcase_add_test(r, test_defaults_applied);
    tcase_add_test(r, test_set_each_type);
    tcase_add_test(r, test_last_value_wins);
    tcase_add_test(r, test_error_messages);
    tcase_add_test(r, test_error_message_fits_buffer);
    tcase_add_test(r, test_ranges);
    tcase_add_test(r, test_list_default_replaced);
    tcase_add_test(r, test_list_default_kept);
    tcase_add_test(r, test_list_accumulates);
    tcase_add_test(r, test_list_empty_value);
    tcase_add_test(r, test_alias);
    tcase_add_test(r, test_compat);
    tcase_add_test(r, test_value_text);
    tcase_add_test(r, test_find);
    tcase_add_test(r, test_register_null_table);
    tcase_add_test(r, test_register_many);
    tcase_add_test(r, test_duplicate_between_plugins);
    tcase_add_test(r, test_alias_errors);
    suite_add_tcase(s, r);

    TCase *c = tcase_create("core table");
    tcase_add_test(c, test_core_defaults);
    tcase_add_test(c, test_core_ranges);
    tcase_add_test(c, test_core_aliases);
    tcase_add_test(c, test_core_compat);
    tcase_add_test(c, test_duplicate_with_core);
    tcase_add_test(c, test_bad_builtin_default);
    tcase_add_test(c, test_bad_builtin_list_default);
    tcase_add_test(c, test_invalid_types);
    tcase_add_test(c, test_alias_defined_before_target);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(options_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
