/*
 * tests/unit/test_plugin.c - the plugin loader (core/plugin.c) against the
 * fixture plugins of tests/fixtures/plugins/: every refusal gives one exact
 * line naming the file, a good plugin opens, and the core fills a real
 * plugin's config struct from its option table before calling its hooks.
 */
#include "internal.h"

#include <check.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef WHARF_TEST_BUILDDIR
#error "WHARF_TEST_BUILDDIR must be defined by the build"
#endif

#define FIXTURES WHARF_TEST_BUILDDIR "/tests/fixtures/plugins"

/* The hooks fixture calls these back; this program is linked -rdynamic, but
 * an archive member is only linked in when something refers to it. */
void *const core_symbols_for_plugins[] = {
    (void *)wharf_log,          (void *)wharf_config_error,     (void *)wharf_option_origin,
    (void *)wharf_option_is_set, (void *)wharf_server_processes, (void *)wharf_server_check_only,
    (void *)wharf_worker_id,
};

/* ------------------------------------------------------------ helpers */

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

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return calloc(1, 1);
    char *buf = calloc(1, 16384);
    size_t n = fread(buf, 1, 16383, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *capture_end(void)
{
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    char *buf = read_file(capture_path);
    unlink(capture_path);
    return buf;
}

static char *fixture(const char *name)
{
    return wharf_plugin_path(FIXTURES, name);
}

/* Open fixture `name` and expect refusal with exactly `expected`. */
static void expect_refused(const char *name, const char *expected)
{
    char *path = fixture(name);
    ck_assert_msg(access(path, R_OK) == 0, "fixture %s was not built", path);
    void *handle = (void *)&handle; /* sentinel: must stay untouched */
    char err[600] = "";
    const struct wharf_plugin *p = wharf_plugin_open(path, &handle, err, sizeof err);
    ck_assert_ptr_null(p);
    ck_assert_ptr_eq(handle, (void *)&handle);
    ck_assert_str_eq(err, expected);
    ck_assert_ptr_null(strchr(err, '\n')); /* one line */
    /* refused files are closed again, not left mapped */
    void *still = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    ck_assert_msg(still == NULL, "%s is still loaded after being refused", path);
    free(path);
}

/* ------------------------------------------------------------ refusals */

START_TEST(test_badabi)
{
    char expected[256];
    snprintf(expected, sizeof expected,
             "badabi_plugin.so: ABI %d.0, this wharf speaks %d.%d "
             "(rebuild the plugin against this wharf's wharf.h)",
             WHARF_ABI_MAJOR + 1, WHARF_ABI_MAJOR, WHARF_ABI_MINOR);
    expect_refused("badabi", expected);
#if WHARF_ABI_MAJOR == 1 && WHARF_ABI_MINOR == 0
    /* the text as the issue states it */
    expect_refused("badabi", "badabi_plugin.so: ABI 2.0, this wharf speaks 1.0 "
                             "(rebuild the plugin against this wharf's wharf.h)");
#endif
}
END_TEST

START_TEST(test_newminor)
{
    char expected[256];
    snprintf(expected, sizeof expected,
             "newminor_plugin.so: ABI %d.%d, this wharf speaks %d.%d "
             "(rebuild the plugin against this wharf's wharf.h)",
             WHARF_ABI_MAJOR, WHARF_ABI_MINOR + 1, WHARF_ABI_MAJOR, WHARF_ABI_MINOR);
    expect_refused("newminor", expected);
}
END_TEST

START_TEST(test_nomagic)
{
    expect_refused("nomagic", "nomagic_plugin.so: not a wharf plugin (bad magic 0xdeadbeef)");
}
END_TEST

START_TEST(test_nosymbol)
{
    expect_refused("nosymbol", "nosymbol_plugin.so: not a wharf plugin (no 'wharf_plugin' symbol)");
}
END_TEST

START_TEST(test_badsize)
{
    char expected[256];
    snprintf(expected, sizeof expected, "badsize_plugin.so: plugin descriptor has size %zu, expected %zu",
             sizeof(struct wharf_plugin) + 64, sizeof(struct wharf_plugin));
    expect_refused("badsize", expected);
}
END_TEST

START_TEST(test_badphase)
{
    char expected[256];
    snprintf(expected, sizeof expected, "badphase_plugin.so: plugin declares invalid phases %#x",
             WHARF_PHASE_BIT(WHARF_PHASE_CONTENT) | WHARF_PHASE_BIT(WHARF_PHASE_LOG + 1));
    expect_refused("badphase", expected);
    expect_refused("badphase", "badphase_plugin.so: plugin declares invalid phases 0x44");
}
END_TEST

START_TEST(test_missing_file)
{
    char *path = fixture("missing");
    void *handle = NULL;
    char err[600] = "";
    ck_assert_ptr_null(wharf_plugin_open(path, &handle, err, sizeof err));
    const char *prefix = "missing_plugin.so: cannot load plugin: ";
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "got: %s", err);
    ck_assert_msg(strstr(err, "No such file or directory") != NULL, "got: %s", err);
    ck_assert_ptr_null(strchr(err, '\n'));
    free(path);
}
END_TEST

START_TEST(test_not_elf)
{
    char dir[] = "/tmp/wharf-test-plugins-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *path = wharf_plugin_path(dir, "junk");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("this is not a shared object\n", f);
    fclose(f);
    void *handle = NULL;
    char err[600] = "";
    ck_assert_ptr_null(wharf_plugin_open(path, &handle, err, sizeof err));
    const char *prefix = "junk_plugin.so: cannot load plugin: ";
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "got: %s", err);
    unlink(path);
    rmdir(dir);
    free(path);
}
END_TEST

START_TEST(test_error_fits_buffer)
{
    char *path = fixture("badabi");
    void *handle = NULL;
    char err[10];
    memset(err, 'X', sizeof err);
    ck_assert_ptr_null(wharf_plugin_open(path, &handle, err, sizeof err));
    ck_assert_str_eq(err, "badabi_pl");
    free(path);
}
END_TEST

/* ------------------------------------------------------------ good plugins */

START_TEST(test_hooks_opens)
{
    char *path = fixture("hooks");
    void *handle = NULL;
    char err[600] = "";
    const struct wharf_plugin *p = wharf_plugin_open(path, &handle, err, sizeof err);
    ck_assert_msg(p != NULL, "hooks refused: %s", err);
    ck_assert_ptr_nonnull(handle);
    ck_assert_uint_eq(p->header.magic, WHARF_PLUGIN_MAGIC);
    ck_assert_uint_eq(p->header.abi_major, WHARF_ABI_MAJOR);
    ck_assert_uint_eq(p->header.abi_minor, WHARF_ABI_MINOR);
    ck_assert_uint_eq(p->header.struct_size, sizeof(struct wharf_plugin));
    ck_assert_str_eq(p->name, "hooks");
    ck_assert_str_eq(p->version, "1.0");
    ck_assert_ptr_nonnull(p->setup);
    ck_assert_ptr_nonnull(p->worker_start);
    ck_assert_ptr_nonnull(p->tick);
    ck_assert_ptr_nonnull(p->worker_stop);
    ck_assert_ptr_nonnull(p->teardown);
    ck_assert_ptr_null(p->handle);
    ck_assert_uint_eq(p->phases, 0);
    /* only the descriptor is exported (-fvisibility=hidden) */
    ck_assert_ptr_eq(dlsym(handle, "wharf_plugin"), p);
    ck_assert_ptr_null(dlsym(handle, "hooks_setup"));
    ck_assert_ptr_null(dlsym(handle, "trace"));
    dlclose(handle);
    free(path);
}
END_TEST

START_TEST(test_dupopt_refused_at_registration)
{
    /* the file itself is fine; its option table clashes with the core's */
    char *path = fixture("dupopt");
    void *handle = NULL;
    char err[600] = "";
    const struct wharf_plugin *p = wharf_plugin_open(path, &handle, err, sizeof err);
    ck_assert_msg(p != NULL, "dupopt refused at open: %s", err);

    static struct wharf_core_conf core;
    struct wharf_options o;
    wharf_options_init(&o);
    ck_assert_int_eq(wharf_options_register(&o, wharf_core_options, -1, "core", &core), 0);
    void *conf = calloc(1, p->config_size);
    capture_begin();
    int rc = wharf_options_register(&o, p->options, 0, p->name, conf);
    char *out = capture_end();
    ck_assert_int_eq(rc, -1);
    const char *msg = strstr(out, "] ERROR: ");
    ck_assert_msg(msg != NULL, "no error logged: %s", out);
    ck_assert_str_eq(msg + 9, "option 'processes' of plugin 'dupopt' is already declared by the core\n");
    ck_assert_int_eq(wharf_options_find(&o, "processes")->owner, -1);
    free(out);
    free(conf);
    wharf_options_free(&o);
    dlclose(handle);
    free(path);
}
END_TEST

/* ------------------------------------------------------------ names and paths */

START_TEST(test_canonical_name)
{
    ck_assert_str_eq(wharf_plugin_canonical_name("python3"), "python");
    ck_assert_str_eq(wharf_plugin_canonical_name("python311"), "python");
    ck_assert_str_eq(wharf_plugin_canonical_name("python"), "python");
    ck_assert_str_eq(wharf_plugin_canonical_name("router_static"), "static");
    ck_assert_str_eq(wharf_plugin_canonical_name("router_rewrite"), "route");
    ck_assert_str_eq(wharf_plugin_canonical_name("router_basicauth"), "route");
    ck_assert_str_eq(wharf_plugin_canonical_name("http"), "http");
    ck_assert_str_eq(wharf_plugin_canonical_name("hooks"), "hooks");
    ck_assert_str_eq(wharf_plugin_canonical_name(""), "");
}
END_TEST

START_TEST(test_plugin_path)
{
    static const struct {
        const char *dir, *name, *path;
    } cases[] = {
        { "/usr/lib/wharf/plugins", "http", "/usr/lib/wharf/plugins/http_plugin.so" },
        { "/d", "x.so", "/d/x.so" },
        { "/d", "/abs/y_plugin.so", "/abs/y_plugin.so" },
        { "/d", "./rel/z_plugin.so", "./rel/z_plugin.so" },
        { "rel", "a", "rel/a_plugin.so" },
        { "/d", ".so", "/d/.so_plugin.so" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = wharf_plugin_path(cases[i].dir, cases[i].name);
        ck_assert_str_eq(p, cases[i].path);
        free(p);
    }
}
END_TEST

/* ------------------------------------------------------------ hooks, in process */

/* The core's job before setup(): allocate the plugin's config, apply its
 * defaults, then the values, then finish the lists.  Done here with the
 * registry by hand, the hooks are called directly, and the fixture's trace
 * shows what the plugin saw. */
static struct wharf_server srv;
static const struct wharf_plugin *hp;
static void *hhandle;
static void *hconf;
static char trace_path[64];

static void hooks_setup(void)
{
    memset(&srv, 0, sizeof srv);
    char *path = fixture("hooks");
    char err[600] = "";
    hp = wharf_plugin_open(path, &hhandle, err, sizeof err);
    ck_assert_msg(hp != NULL, "hooks refused: %s", err);
    free(path);
    hconf = calloc(1, hp->config_size);
    wharf_options_init(&srv.options);
    ck_assert_int_eq(wharf_options_register(&srv.options, wharf_core_options, -1, "core", &srv.conf), 0);
    ck_assert_int_eq(wharf_options_register(&srv.options, hp->options, 0, hp->name, hconf), 0);
    ck_assert_int_eq(wharf_options_apply_defaults(&srv.options), 0);
    snprintf(trace_path, sizeof trace_path, "/tmp/wharf-test-trace-XXXXXX");
    int fd = mkstemp(trace_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void release(struct wharf_options *o)
{
    for (size_t i = 0; i < o->count; i++) {
        struct wharf_optdef *d = &o->defs[i];
        unsigned type = d->opt->type & WHARF_OPT_TYPE_MASK;
        if (type == WHARF_OPT_ALIAS || type == WHARF_OPT_COMPAT)
            continue;
        for (size_t k = 0; k < d->nitems; k++)
            free((char *)d->items[k].value);
        if (!(d->opt->type & WHARF_OPT_LIST) && (type == WHARF_OPT_STRING || type == WHARF_OPT_ADDRESS)) {
            char **f = (char **)((char *)d->conf + d->opt->offset);
            free(*f);
            *f = NULL;
        }
    }
    wharf_options_free(o);
}

static void hooks_teardown(void)
{
    release(&srv.options);
    free(hconf);
    dlclose(hhandle);
    unlink(trace_path);
}

static void hset(const char *name, const char *value, const char *origin)
{
    char err[512] = "";
    struct wharf_optdef *d = wharf_options_find(&srv.options, name);
    ck_assert_msg(d != NULL, "%s is not registered", name);
    ck_assert_msg(wharf_options_set(&srv.options, d, value, origin, err, sizeof err) == 0,
                  "%s = %s: %s", name, value, err);
}

static void htext(const char *name, const char *expected)
{
    char *v = wharf_option_value_text(wharf_options_find(&srv.options, name));
    ck_assert_str_eq(v, expected);
    free(v);
}

START_TEST(test_hooks_defaults)
{
    wharf_options_finish(&srv.options);
    htext("hooks-string", "hello");
    htext("hooks-int", "7");
    htext("hooks-number", "7");
    htext("hooks-bool", "false");
    htext("hooks-size", "65536");
    htext("hooks-duration", "1500ms");
    htext("hooks-address", "127.0.0.1:9");
    htext("hooks-list", "builtin");
    htext("hooks-addresses", "");
    htext("hooks-compat", "");
}
END_TEST

START_TEST(test_hooks_config_filled)
{
    hset("hooks-trace", trace_path, "t.ini:1");
    hset("hooks-string", "from file", "t.ini:2");
    hset("hooks-number", "42", "t.ini:3");      /* via the alias */
    hset("hooks-bool", "yes", "t.ini:4");
    hset("hooks-size", "8m", "t.ini:5");
    hset("hooks-duration", "2m", "t.ini:6");
    hset("hooks-address", "[::1]:8080", "t.ini:7");
    hset("hooks-list", "a", "t.ini:8");
    hset("hooks-list", "b", "command line");
    hset("hooks-addresses", "/run/a.sock", "t.ini:9");
    hset("hooks-addresses", ":8000", "t.ini:10");
    hset("hooks-compat", "true", "t.ini:11");
    wharf_options_finish(&srv.options);
    srv.conf.processes = 3;
    srv.check_only = true;

    ck_assert_int_eq(hp->setup(&srv, hconf), WHARF_OK);
    char *t = read_file(trace_path);
    char expected[1024];
    snprintf(expected, sizeof expected,
             "setup %d check_only=1 processes=3\n"
             "conf string=from file int=42 bool=true size=8388608 duration=120000 address=[::1]:8080 "
             "list=a|b addresses=/run/a.sock|:8000 empty=0\n"
             "origin hooks-int=t.ini:3 hooks-string=t.ini:2 set=1\n",
             (int)getpid());
    ck_assert_str_eq(t, expected);
    free(t);
}
END_TEST

START_TEST(test_hooks_defaults_seen_by_setup)
{
    hset("hooks-trace", trace_path, "command line");
    wharf_options_finish(&srv.options);
    srv.conf.processes = 1;
    ck_assert_int_eq(hp->setup(&srv, hconf), WHARF_OK);
    char *t = read_file(trace_path);
    char expected[1024];
    snprintf(expected, sizeof expected,
             "setup %d check_only=0 processes=1\n"
             "conf string=hello int=7 bool=false size=65536 duration=1500 address=127.0.0.1:9 "
             "list=builtin addresses= empty=0\n"
             "origin hooks-int=default hooks-string=default set=0\n",
             (int)getpid());
    ck_assert_str_eq(t, expected);
    free(t);
}
END_TEST

START_TEST(test_hooks_setup_failure_message)
{
    hset("hooks-trace", trace_path, "t.ini:1");
    hset("hooks-fail", "setup", "t.ini:9");
    wharf_options_finish(&srv.options);
    capture_begin();
    int rc = hp->setup(&srv, hconf);
    char *out = capture_end();
    ck_assert_int_eq(rc, WHARF_ERROR);
    /* wharf_config_error: bare "<origin>: <option>: <message>" */
    ck_assert_str_eq(out, "t.ini:9: hooks-fail: setup fails on purpose\n");
    free(out);
}
END_TEST

START_TEST(test_hooks_all_hooks)
{
    hset("hooks-trace", trace_path, "t.ini:1");
    wharf_options_finish(&srv.options);
    struct wharf_worker w;
    memset(&w, 0, sizeof w);
    w.server = &srv;
    w.id = 2;
    ck_assert_int_eq(hp->setup(&srv, hconf), WHARF_OK);
    ck_assert_int_eq(hp->worker_start(&w, hconf), WHARF_OK);
    hp->tick(&srv, hconf);
    hp->worker_stop(&w, hconf);
    hp->teardown(&srv, hconf);
    char *t = read_file(trace_path);
    const char *order[] = { "setup ", "conf ", "origin ", "worker_start ", "tick ", "worker_stop ", "teardown " };
    const char *line = t;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        ck_assert_msg(strncmp(line, order[i], strlen(order[i])) == 0, "line %zu: expected '%s...', got: %s",
                      i, order[i], line);
        line = strchr(line, '\n');
        ck_assert_ptr_nonnull(line);
        line++;
    }
    ck_assert_str_eq(line, "");
    ck_assert_ptr_nonnull(strstr(t, " id=2\n"));
    free(t);
}
END_TEST

/* ------------------------------------------------------------ suite */

static Suite *plugin_suite(void)
{
    Suite *s = suite_create("plugin");
    TCase *o = tcase_create("open");
    tcase_add_test(o, test_badabi);
    tcase_add_test(o, test_newminor);
    tcase_add_test(o, test_nomagic);
    tcase_add_test(o, test_nosymbol);
    tcase_add_test(o, test_badsize);
    tcase_add_test(o, test_badphase);
    tcase_add_test(o, test_missing_file);
    tcase_add_test(o, test_not_elf);
    tcase_add_test(o, test_error_fits_buffer);
    tcase_add_test(o, test_hooks_opens);
    tcase_add_test(o, test_dupopt_refused_at_registration);
    tcase_add_test(o, test_canonical_name);
    tcase_add_test(o, test_plugin_path);
    suite_add_tcase(s, o);

    TCase *h = tcase_create("hooks");
    tcase_add_checked_fixture(h, hooks_setup, hooks_teardown);
    tcase_add_test(h, test_hooks_defaults);
    tcase_add_test(h, test_hooks_config_filled);
    tcase_add_test(h, test_hooks_defaults_seen_by_setup);
    tcase_add_test(h, test_hooks_setup_failure_message);
    tcase_add_test(h, test_hooks_all_hooks);
    suite_add_tcase(s, h);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(plugin_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
