/*
 * tests/unit/test_ini.c - the config reader (ini/): every source, the
 * uWSGI line rules, includes, blocks and expansions, and the exact error
 * messages.  Uses only ini/config.h and libc, so it links unchanged
 * against the core library.  Fixture files live in a mkdtemp() directory
 * that each test gets fresh and that is removed afterwards.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../ini/cfg.h"

#ifndef WHARF_TEST_SRCDIR
#define WHARF_TEST_SRCDIR "."
#endif

static char base[PATH_MAX]; /* per test case, removed by the parent process */
static char tmp[PATH_MAX];  /* per test, inside base, as created */
static char rtmp[PATH_MAX]; /* the same, realpath() (what %d shows) */
static char oldcwd[PATH_MAX];
static struct wharf_cfg cfg;

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

/* printf into one of a ring of buffers: for paths and expected texts. */
__attribute__((format(printf, 1, 2))) static const char *S(const char *fmt, ...)
{
    static char ring[16][8192];
    static unsigned n;
    char *b = ring[n++ % 16];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b, sizeof ring[0], fmt, ap);
    va_end(ap);
    return b;
}

static const char *P(const char *name)
{
    return S("%s/%s", tmp, name);
}

static const char *RP(const char *name)
{
    return S("%s/%s", rtmp, name);
}

static void wfile(const char *name, const char *content)
{
    const char *path = P(name);
    char dir[PATH_MAX];

    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    *slash = '\0';
    mkdir(dir, 0700); /* one level of subdirectory is enough here */
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    fputs(content, f);
    fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Unchecked fixture: runs in the parent, so the directory goes away even
 * when a test fails (Check ends a forked test at its first failure, before
 * the checked teardown). */
static void case_setup(void)
{
    snprintf(base, sizeof base, "/tmp/wharf-test-ini-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        abort();
    }
}

static void case_teardown(void)
{
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(getcwd(oldcwd, sizeof oldcwd));
    ck_assert_int_lt(snprintf(tmp, sizeof tmp, "%s/t-XXXXXX", base), (int)sizeof tmp);
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    ck_assert_ptr_nonnull(realpath(tmp, rtmp));
    /* start away from the fixtures, so nothing resolves by accident */
    ck_assert_int_eq(chdir("/"), 0);
    wharf_cfg_init(&cfg);
}

static void teardown(void)
{
    wharf_cfg_free(&cfg);
    if (chdir(oldcwd) != 0)
        perror("chdir");
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#define OK(expr)                                                                   \
    do {                                                                           \
        int rc_ = (expr);                                                          \
        ck_assert_msg(rc_ == 0, "%s returned %d: %s", #expr, rc_, cfg.error);      \
    } while (0)

#define FAILS(expr, msg)                                                           \
    do {                                                                           \
        int rc_ = (expr);                                                          \
        ck_assert_msg(rc_ == -1, "%s returned %d, not -1", #expr, rc_);            \
        ck_assert_str_eq(cfg.error, (msg));                                        \
    } while (0)

#define ENTRY(i, k, v)                                                             \
    do {                                                                           \
        ck_assert_msg(cfg.count > (size_t)(i), "only %zu entries", cfg.count);     \
        ck_assert_str_eq(cfg.entries[i].key, (k));                                 \
        ck_assert_str_eq(cfg.entries[i].value, (v));                               \
    } while (0)

#define ORIGIN(i, o) ck_assert_str_eq(cfg.entries[i].origin, (o))

/* Load one fixture file (by name) and finish. */
static int load_finish(const char *name)
{
    int rc = wharf_cfg_load_file(&cfg, P(name), false, NULL);
    return rc ? rc : wharf_cfg_finish(&cfg);
}

/* Write `content` as `name`, load and finish it. */
static int ini(const char *name, const char *content)
{
    wfile(name, content);
    return load_finish(name);
}

static bool flag_cb(const char *key, void *arg)
{
    (void)arg;
    return strcmp(key, "vacuum") == 0 || strcmp(key, "master") == 0;
}

static int args(int argc, char *const argv[])
{
    int rc = wharf_cfg_parse_args(&cfg, argc, argv, flag_cb, NULL);
    return rc ? rc : wharf_cfg_finish(&cfg);
}

/* ------------------------------------------------------------------ */
/* the seed's uwsgi.ini                                                */
/* ------------------------------------------------------------------ */

START_TEST(seed_uwsgi_ini)
{
    static const char *const want[][2] = {
        {"module", "wsgi:app"},
        {"http-socket", "0.0.0.0:8000"},
        {"processes", "2"},
        {"threads", "8"},
        {"die-on-term", "true"},
        {"vacuum", "true"},
        {"buffer-size", "65535"},
        {"harakiri", "60"},
        {"static-map", "/static=/app/static"},
        {"route", "^/healthz/live break:200"},
    };
    const char *path = WHARF_TEST_SRCDIR "/tests/data/seed-uwsgi.ini";

    OK(wharf_cfg_load_file(&cfg, path, false, NULL));
    OK(wharf_cfg_finish(&cfg));
    ck_assert_uint_eq(cfg.count, 10);
    for (size_t i = 0; i < 10; i++) {
        ENTRY(i, want[i][0], want[i][1]);
        ORIGIN(i, S("%s:%zu", path, i + 2));
        ck_assert_int_eq(cfg.entries[i].source, WHARF_CFG_FILE);
        ck_assert(!cfg.entries[i].placeholder_used);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* ini line rules                                                      */
/* ------------------------------------------------------------------ */

START_TEST(inline_comments)
{
    OK(ini("a.ini", "[uwsgi]\n"
                    "static-map = /static=/app/static  ; (필요시)\n"
                    "route = ^/healthz/live break:200  ; 초경량 라이브니스\n"
                    "hash = a # comment\n"
                    "tab = a\t; comment\n"
                    "semi = a;b\n"
                    "color = #fff\n"
                    "starts = ; a value, as in uWSGI\n"
                    "glued =;kept\n"
                    "bare ; a flag with a comment\n"
                    "; whole-line comment\n"
                    "# another\n"
                    "   ; indented comment\n"));
    ck_assert_uint_eq(cfg.count, 9);
    ENTRY(0, "static-map", "/static=/app/static");
    ENTRY(1, "route", "^/healthz/live break:200");
    ENTRY(2, "hash", "a");
    ENTRY(3, "tab", "a");
    ENTRY(4, "semi", "a;b");
    ENTRY(5, "color", "#fff");
    ENTRY(6, "starts", "; a value, as in uWSGI");
    ENTRY(7, "glued", ";kept");
    ENTRY(8, "bare", "true");
}
END_TEST

START_TEST(trimming_crlf_utf8_bom)
{
    OK(ini("a.ini", "\xEF\xBB\xBF[uwsgi]\r\n"
                    "  key\t=\t value with  inner  spaces \t\r\n"
                    "\r\n"
                    "이름 = 값 ünïcödé\r\n"
                    "quoted = \"kept as is\"\r\n"
                    "colon:key = v\r\n"
                    "eq = a=b=c\r\n"
                    "master"));
    ck_assert_uint_eq(cfg.count, 6);
    ENTRY(0, "key", "value with  inner  spaces");
    ENTRY(1, "이름", "값 ünïcödé");
    ENTRY(2, "quoted", "\"kept as is\"");
    ENTRY(3, "colon:key", "v"); /* '=' splits, ':' does not (inih would) */
    ENTRY(4, "eq", "a=b=c");
    ENTRY(5, "master", "true"); /* no newline at the end of the file */
    ORIGIN(5, S("%s:8", P("a.ini")));
}
END_TEST

START_TEST(repeated_keys_keep_order)
{
    OK(ini("a.ini", "[uwsgi]\nsocket = a\nprocesses = 1\nsocket = b\nsocket = c\nprocesses = 2\n"));
    ck_assert_uint_eq(cfg.count, 5);
    ENTRY(0, "socket", "a");
    ENTRY(1, "processes", "1");
    ENTRY(2, "socket", "b");
    ENTRY(3, "socket", "c");
    ENTRY(4, "processes", "2");
    ORIGIN(3, S("%s:5", P("a.ini")));
}
END_TEST

START_TEST(long_lines)
{
    /* Debian's inih has a 200-byte line buffer: nothing may be cut. */
    static char content[16384], value[5001], key[301], section[151];
    memset(value, 'v', 5000);
    value[0] = '<';
    value[4999] = '>';
    memset(key, 'k', 300);
    memset(section, 's', 150);
    snprintf(content, sizeof content, "[uwsgi]\nlong = %s\n%s = x\nafter = 1\n[%s]\nother = 2\n", value, key,
             section);
    wfile("a.ini", content);
    OK(wharf_cfg_load_file(&cfg, P("a.ini"), false, NULL));
    OK(wharf_cfg_load_file(&cfg, S("%s:%s", P("a.ini"), section), false, NULL));
    OK(wharf_cfg_finish(&cfg));
    ck_assert_uint_eq(cfg.count, 4);
    ENTRY(0, "long", value);
    ck_assert_uint_eq(strlen(cfg.entries[0].value), 5000);
    ENTRY(1, key, "x");
    ENTRY(2, "after", "1");
    ORIGIN(2, S("%s:4", P("a.ini")));
    ENTRY(3, "other", "2");
    ORIGIN(3, S("%s:6", P("a.ini")));
}
END_TEST

START_TEST(continuation_lines_are_own_keys)
{
    /* inih (INI_ALLOW_MULTILINE) would glue these onto `module`. */
    OK(ini("a.ini", "[uwsgi]\nmodule = wsgi:app\n    threads = 4\n\tharakiri = 30\n    more text\n"));
    ck_assert_uint_eq(cfg.count, 4);
    ENTRY(0, "module", "wsgi:app");
    ENTRY(1, "threads", "4");
    ORIGIN(1, S("%s:3", P("a.ini")));
    ENTRY(2, "harakiri", "30");
    ENTRY(3, "more text", "true");
}
END_TEST

START_TEST(line_errors)
{
    FAILS(ini("a.ini", "[uwsgi]\n= value\n"), S("%s:2: '=' with no key before it", P("a.ini")));
    FAILS(ini("b.ini", "[uwsgi\nk = v\n"), S("%s:1: the section header '[uwsgi' has no closing ']'", P("b.ini")));
    wfile("c.ini", "");
    FILE *f = fopen(P("c.ini"), "w");
    fwrite("[uwsgi]\nk = a\0b\n", 1, 16, f);
    fclose(f);
    FAILS(load_finish("c.ini"), S("%s:2: the line contains a NUL byte", P("c.ini")));
}
END_TEST

START_TEST(error_is_one_line)
{
    FAILS(ini("a.ini", "[uwsgi]\n[bad\x01\x1b header\n"),
          S("%s:2: the section header '[bad?? header' has no closing ']'", P("a.ini")));
    ck_assert_ptr_null(strchr(cfg.error, '\n'));
}
END_TEST

/* ------------------------------------------------------------------ */
/* sections                                                            */
/* ------------------------------------------------------------------ */

START_TEST(sections_uwsgi_and_wharf)
{
    OK(ini("a.ini", "before = ignored\n"
                    "[wharf]\nw1 = 1\n"
                    "[paste]\np = skipped\n"
                    "[uwsgi]\nu1 = 2\n"
                    "[uwsgi] ; again, with a comment\nu2 = 3\n"
                    "[wharf]\nw2 = 4\n"));
    ck_assert_uint_eq(cfg.count, 4);
    ENTRY(0, "w1", "1");
    ENTRY(1, "u1", "2");
    ENTRY(2, "u2", "3");
    ENTRY(3, "w2", "4");
    ORIGIN(3, S("%s:11", P("a.ini")));
}
END_TEST

START_TEST(named_section)
{
    wfile("a.ini", "[uwsgi]\nu = 1\n[app1]\na = 2\n[wharf]\nw = 3\n[app1]\nb = 4\n");
    OK(wharf_cfg_load_file(&cfg, S("%s:app1", P("a.ini")), false, NULL));
    OK(wharf_cfg_finish(&cfg));
    ck_assert_uint_eq(cfg.count, 2);
    ENTRY(0, "a", "2");
    ENTRY(1, "b", "4");
}
END_TEST

START_TEST(missing_sections)
{
    wfile("a.ini", "[db]\nx = 1\n[cache]\n[db]\n");
    FAILS(wharf_cfg_load_file(&cfg, P("a.ini"), false, NULL),
          S("%s: no [uwsgi] or [wharf] section (found [db], [cache])", P("a.ini")));
    FAILS(wharf_cfg_load_file(&cfg, S("%s:prod", P("a.ini")), false, "command line"),
          S("command line: %s: no [prod] section (found [db], [cache])", P("a.ini")));
    wfile("empty.ini", "; nothing here\n");
    FAILS(wharf_cfg_load_file(&cfg, P("empty.ini"), false, NULL),
          S("%s: no [uwsgi] or [wharf] section (it has none at all)", P("empty.ini")));
}
END_TEST

START_TEST(missing_file)
{
    FAILS(wharf_cfg_load_file(&cfg, P("nope.ini"), false, NULL),
          S("cannot open config file '%s': No such file or directory", P("nope.ini")));
    FAILS(wharf_cfg_load_file(&cfg, "nope.ini", false, "command line"),
          "command line: cannot open config file 'nope.ini': No such file or directory");
    mkdir(P("dir.ini"), 0700);
    FAILS(wharf_cfg_load_file(&cfg, P("dir.ini"), false, NULL),
          S("cannot open config file '%s': Is a directory", P("dir.ini")));
}
END_TEST

/* ------------------------------------------------------------------ */
/* magic variables                                                     */
/* ------------------------------------------------------------------ */

START_TEST(magic_file_variables)
{
    wfile("conf/app.prod.ini", "[wharf]\n"
                               "d = %d\np = %p\ns = %s\nn = %n\ne = %e\nc = %c\nx = %x\no = %o\n"
                               "pct = 100%% %%d\nunknown = %q %y %\n"
                               "c0 = %0\n");
    OK(load_finish("conf/app.prod.ini"));
    ENTRY(0, "d", RP("conf/"));
    ENTRY(1, "p", RP("conf/app.prod.ini"));
    ENTRY(2, "s", "app.prod.ini");
    ENTRY(3, "n", "app.prod");
    ENTRY(4, "e", "ini");
    ENTRY(5, "c", "conf");
    ENTRY(6, "x", "wharf");
    ENTRY(7, "o", P("conf/app.prod.ini"));
    ENTRY(8, "pct", "100% %d");
    ENTRY(9, "unknown", "%q %y %"); /* uWSGI would drop them; we keep them */
    char first[PATH_MAX];
    snprintf(first, sizeof first, "%s", rtmp + 1);
    *strchrnul(first, '/') = '\0';
    ENTRY(10, "c0", first);
}
END_TEST

START_TEST(magic_name_without_extension_and_symlink)
{
    wfile("real.ini", "[uwsgi]\nn = %n\ns = %s\ne = [%e]\n");
    ck_assert_int_eq(symlink(P("real.ini"), P("myapp")), 0);
    OK(wharf_cfg_load_file(&cfg, P("myapp"), false, NULL));
    OK(wharf_cfg_finish(&cfg));
    /* the symlink's own name, as uWSGI keeps it for vassals */
    ENTRY(0, "n", "myapp");
    ENTRY(1, "s", "myapp");
    ENTRY(2, "e", "[]");
}
END_TEST

START_TEST(magic_host_variables)
{
    char host[256] = "", cwd[PATH_MAX], num[64], exe[PATH_MAX] = "";
    struct passwd *pw = getpwuid(getuid());

    gethostname(host, sizeof host);
    ck_assert_int_eq(chdir(tmp), 0);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0)
        exe[n] = '\0';
    time_t before = time(NULL);
    OK(ini("a.ini", "[uwsgi]\nh = %h\nk = %k\nu = %u\nU = %U\ng = %g\nG = %G\nv = %v\nt = %t\nT = %T\n"
                    "esc = %[[0m\nb = %b\n"));
    ENTRY(0, "h", host);
    snprintf(num, sizeof num, "%ld", sysconf(_SC_NPROCESSORS_ONLN));
    ENTRY(1, "k", num);
    snprintf(num, sizeof num, "%u", (unsigned)getuid());
    ENTRY(2, "u", num);
    ENTRY(3, "U", pw ? pw->pw_name : num);
    snprintf(num, sizeof num, "%u", (unsigned)getgid());
    ENTRY(4, "g", num);
    ck_assert_str_ne(cfg.entries[5].value, "");
    ENTRY(6, "v", cwd);
    long long t = atoll(cfg.entries[7].value);
    ck_assert(t >= (long long)before - 5 && t <= (long long)before + 5);
    ck_assert_uint_ge(strlen(cfg.entries[8].value), 16);
    ENTRY(9, "esc", "\033[0m");
    ENTRY(10, "b", exe);
}
END_TEST

START_TEST(magic_first_file_and_per_file)
{
    /* %n is the file the line is in; %N the first file read (templates) */
    wfile("top.ini", "[uwsgi]\nme = %n\nini = sub/inc.ini\n");
    wfile("sub/inc.ini", "[uwsgi]\nme = %n %c\nfirst = %N %C\n");
    OK(load_finish("top.ini"));
    ck_assert_uint_eq(cfg.count, 3);
    ENTRY(0, "me", "top");
    ENTRY(1, "me", "inc sub");
    char want[PATH_MAX];
    snprintf(want, sizeof want, "top %s", strrchr(rtmp, '/') + 1);
    ENTRY(2, "first", want);
}
END_TEST

START_TEST(no_magic_outside_files)
{
    char *argv[] = {"wharf", "--a=%d %n", "--b=100%%", NULL};
    OK(args(3, argv));
    ENTRY(0, "a", "%d %n"); /* uWSGI substitutes magic only in files */
    ENTRY(1, "b", "100%");
}
END_TEST

/* ------------------------------------------------------------------ */
/* placeholders                                                        */
/* ------------------------------------------------------------------ */

START_TEST(placeholder_first_value)
{
    OK(ini("a.ini", "[uwsgi]\n"
                    "early = %(later)\n"
                    "base = /srv\n"
                    "base = /other\n"
                    "chdir = %(base)/app\n"
                    "later = %(base)/late\n"
                    "plain = 1\n"));
    ck_assert_uint_eq(cfg.count, 6);
    ENTRY(0, "early", "/srv/late"); /* placeholders see the whole list */
    ENTRY(3, "chdir", "/srv/app");
    ck_assert(cfg.entries[1].placeholder_used);
    ck_assert(cfg.entries[2].placeholder_used); /* every entry of a used key */
    ck_assert(cfg.entries[4].placeholder_used);
    ck_assert(!cfg.entries[0].placeholder_used);
    ck_assert(!cfg.entries[3].placeholder_used);
    ck_assert(!cfg.entries[5].placeholder_used);
}
END_TEST

START_TEST(set_placeholder)
{
    OK(ini("a.ini", "[uwsgi]\n"
                    "set-placeholder = customers = /var/www\n"
                    "set-ph = domain=uwsgi.it\n"
                    "chdir = %(customers)/%(domain)\n"
                    "set = processes=4\n"
                    "set-ph = empty=\n"
                    "e = [%(empty)]\n"));
    ck_assert_uint_eq(cfg.count, 3);
    ENTRY(0, "chdir", "/var/www/uwsgi.it");
    ENTRY(1, "processes", "4");
    ORIGIN(1, S("%s:5", P("a.ini")));
    ENTRY(2, "e", "[]");
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    FAILS(ini("b.ini", "[uwsgi]\nset-placeholder = novalue\n"),
          S("%s:2: 'set-placeholder' needs name=value, not 'novalue'", P("b.ini")));
}
END_TEST

START_TEST(placeholder_unknown_stays)
{
    /* log-format relies on this: %(uri) is a log variable, not a key */
    OK(ini("a.ini", "[uwsgi]\nlog-format = %(addr) \"%(method) %(uri)\" %(status)\nouter = %(_)\n"));
    ENTRY(0, "log-format", "%(addr) \"%(method) %(uri)\" %(status)");
    ENTRY(1, "outer", "%(_)");
    ck_assert(!cfg.entries[0].placeholder_used);
}
END_TEST

START_TEST(placeholder_nested_and_own_context)
{
    /* a placeholder's value is expanded where it was written */
    wfile("sub/defs.ini", "[uwsgi]\nset-ph = home=%d\nset-ph = lib=%(home)lib\n");
    OK(ini("a.ini", "[uwsgi]\nini = sub/defs.ini\npythonpath = %(lib) %d\nname = %(%(which))\nwhich = home\n"));
    ck_assert_uint_eq(cfg.count, 3);
    ENTRY(0, "pythonpath", S("%s %s/", RP("sub/lib"), rtmp));
    ENTRY(1, "name", RP("sub/"));
}
END_TEST

START_TEST(placeholder_cycles)
{
    FAILS(ini("a.ini", "[uwsgi]\na = %(b)\nb = x%(a)\n"),
          S("%s:3: placeholder cycle: %%(a) -> %%(b) -> %%(a)", P("a.ini")));
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    FAILS(ini("b.ini", "[uwsgi]\nself = %(self)\n"), S("%s:2: placeholder cycle: %%(self) -> %%(self)", P("b.ini")));
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    OK(ini("c.ini", "[uwsgi]\nself = 1\nself = x%(self)\n")); /* the first value, no cycle */
    ENTRY(1, "self", "x1");
}
END_TEST

START_TEST(placeholder_growth_is_bounded)
{
    /* each level doubles: 2^21 > 1 MiB */
    char content[4096] = "[uwsgi]\nv0 = x\n";
    for (int i = 1; i <= 21; i++)
        snprintf(content + strlen(content), sizeof content - strlen(content), "v%d = %%(v%d)%%(v%d)\n", i, i - 1,
                 i - 1);
    wfile("a.ini", content);
    OK(wharf_cfg_load_file(&cfg, P("a.ini"), false, NULL));
    ck_assert_int_eq(wharf_cfg_finish(&cfg), -1);
    ck_assert_msg(strstr(cfg.error, "is longer than 1048576 bytes once") != NULL, "%s", cfg.error);
}
END_TEST

/* ------------------------------------------------------------------ */
/* $(ENV) and @(file)                                                  */
/* ------------------------------------------------------------------ */

START_TEST(env_expansion)
{
    setenv("WHARF_TEST_DB", "postgres://db/app", 1);
    setenv("WHARF_TEST_TRICKY", "%(base) $(HOME) @(x)", 1);
    setenv("WHARF_TEST_NAME", "WHARF_TEST_DB", 1);
    unsetenv("WHARF_TEST_UNSET");
    OK(ini("a.ini", "[uwsgi]\n"
                    "dsn = $(WHARF_TEST_DB)\n"
                    "unset = [$(WHARF_TEST_UNSET)]\n"
                    "tricky = $(WHARF_TEST_TRICKY)\n"
                    "indirect = $($(WHARF_TEST_NAME))\n"
                    "base = no\n"
                    "unbalanced = $(WHARF_TEST_DB\n"));
    ENTRY(0, "dsn", "postgres://db/app");
    ENTRY(1, "unset", "[$(WHARF_TEST_UNSET)]"); /* uWSGI leaves it as written */
    ENTRY(2, "tricky", "%(base) $(HOME) @(x)"); /* results are not rescanned */
    ENTRY(3, "indirect", "postgres://db/app");
    ENTRY(5, "unbalanced", "$(WHARF_TEST_DB");
}
END_TEST

START_TEST(file_expansion)
{
    wfile("secret.txt", "s3cr%(et)$(HOME)\n\n");
    wfile("crlf.txt", "line\r\n");
    wfile("none.txt", "");
    wfile("conf/key.pem", "KEY");
    OK(ini("conf/app.ini", "[uwsgi]\n"
                           "pw = @(../secret.txt)\n"
                           "crlf = [@(%d../crlf.txt)]\n"
                           "none = [@(../none.txt)]\n"
                           "key = @(key.pem)\n"));
    ENTRY(0, "pw", "s3cr%(et)$(HOME)\n"); /* one newline removed, nothing rescanned */
    ENTRY(1, "crlf", "[line]");
    ENTRY(2, "none", "[]");
    ENTRY(3, "key", "KEY"); /* relative to the config file's directory */
}
END_TEST

START_TEST(file_expansion_errors)
{
    FAILS(ini("app.ini", "[uwsgi]\n\n\n\n\n\npassword = @(secret.txt)\n"),
          S("%s:7: @(secret.txt): cannot read %s: No such file or directory", P("app.ini"), RP("secret.txt")));
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    mkdir(P("adir"), 0700);
    FAILS(ini("b.ini", "[uwsgi]\nx = @(adir)\n"),
          S("%s:2: @(adir): cannot read %s: Is a directory", P("b.ini"), RP("adir")));
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    FAILS(ini("c.ini", "[uwsgi]\nx = @()\n"), S("%s:2: @() needs a file name", P("c.ini")));
}
END_TEST

START_TEST(file_expansion_from_command_line)
{
    wfile("token", "abc\n");
    ck_assert_int_eq(chdir(tmp), 0);
    char *argv[] = {"wharf", "--token", "@(token)", NULL};
    OK(args(3, argv));
    ENTRY(0, "token", "abc");
}
END_TEST

/* ------------------------------------------------------------------ */
/* includes                                                            */
/* ------------------------------------------------------------------ */

START_TEST(include_relative_nested)
{
    wfile("a.ini", "[uwsgi]\nfirst = a\nini = conf/b.ini\nlast = a\n");
    wfile("conf/b.ini", "[uwsgi]\nb = 1\ninclude = c.yml\nb = 2\n");
    wfile("conf/c.yml", "uwsgi:\n  c: 3\n  ini: d.ini\n");
    wfile("conf/d.ini", "[wharf]\nd = %n\n");
    OK(load_finish("a.ini"));
    ck_assert_uint_eq(cfg.count, 6);
    ENTRY(0, "first", "a");
    ENTRY(1, "b", "1");
    ORIGIN(1, S("%s:2", P("conf/b.ini")));
    ENTRY(2, "c", "3");
    ORIGIN(2, S("%s:2", P("conf/c.yml")));
    ENTRY(3, "d", "d");
    ORIGIN(3, S("%s:2", P("conf/d.ini")));
    ENTRY(4, "b", "2");
    ENTRY(5, "last", "a");
    ck_assert_int_eq(cfg.entries[3].source, WHARF_CFG_FILE);
}
END_TEST

START_TEST(include_cwd_first)
{
    /* uWSGI opens relative includes from the current directory: a file
     * there wins over the one next to the including file. */
    wfile("a.ini", "[uwsgi]\nini = b.ini\n");
    wfile("b.ini", "[uwsgi]\nwhich = beside\n");
    wfile("cwd/b.ini", "[uwsgi]\nwhich = cwd\n");
    ck_assert_int_eq(chdir(P("cwd")), 0);
    OK(load_finish("a.ini"));
    ENTRY(0, "which", "cwd");
    ORIGIN(0, "b.ini:2");
}
END_TEST

START_TEST(include_magic_env_placeholder)
{
    /* include paths get %d, $(ENV) and the placeholders read so far */
    setenv("WHARF_TEST_ENVNAME", "e", 1);
    wfile("a.ini", "[uwsgi]\nini = %dx.ini\nini = $(WHARF_TEST_ENVNAME).ini\nname = p\nyaml = %(name).txt\n");
    wfile("x.ini", "[uwsgi]\nx = 1\n");
    wfile("e.ini", "[uwsgi]\ne = 1\n");
    wfile("p.txt", "uwsgi:\n  p: 1\n"); /* yaml = forces the yaml reader */
    OK(load_finish("a.ini"));
    ck_assert_uint_eq(cfg.count, 4);
    ENTRY(0, "x", "1");
    ENTRY(1, "e", "1");
    ENTRY(2, "name", "p");
    ck_assert(cfg.entries[2].placeholder_used);
    ENTRY(3, "p", "1");
}
END_TEST

START_TEST(include_same_file_section)
{
    wfile("a.ini", "[uwsgi]\nu = 1\nini = :app1\nu = 2\n[app1]\napp = rack\n");
    OK(load_finish("a.ini"));
    ck_assert_uint_eq(cfg.count, 3);
    ENTRY(1, "app", "rack");
    ORIGIN(1, S("%s:6", P("a.ini")));
}
END_TEST

START_TEST(include_cycle)
{
    wfile("a.ini", "[uwsgi]\nx = 1\nini = b.ini\n");
    wfile("b.ini", "[uwsgi]\nini = a.ini\n");
    FAILS(load_finish("a.ini"), S("%s:2: include cycle: %s -> %s -> %s", P("b.ini"), P("a.ini"), P("b.ini"),
                                  P("a.ini")));
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    wfile("self.ini", "[uwsgi]\n\n\ninclude = %p\n");
    FAILS(load_finish("self.ini"), S("%s:4: include cycle: %s -> %s", P("self.ini"), P("self.ini"), RP("self.ini")));
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    wfile("s.ini", "[uwsgi]\nini = :two\n[two]\nini = :uwsgi\n");
    FAILS(load_finish("s.ini"),
          S("%s:2: include cycle: %s:two -> %s:uwsgi -> %s:two", P("s.ini"), P("s.ini"), P("s.ini"), P("s.ini")));
}
END_TEST

START_TEST(include_missing)
{
    FAILS(ini("a.ini", "[uwsgi]\nini = nope.ini\n"),
          S("%s:2: cannot open config file '%s': No such file or directory", P("a.ini"), P("nope.ini")));
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    FAILS(ini("b.ini", "[uwsgi]\nini =\n"), S("%s:2: 'ini' needs the name of a config file", P("b.ini")));
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    wfile("c.ini", "[uwsgi]\nini = d.ini:nosuch\n");
    wfile("d.ini", "[uwsgi]\n");
    FAILS(load_finish("c.ini"), S("%s:2: %s: no [nosuch] section (found [uwsgi])", P("c.ini"), P("d.ini")));
}
END_TEST

START_TEST(include_depth_limit)
{
    for (int i = 0; i < 40; i++)
        wfile(S("f%d.ini", i), S("[uwsgi]\nini = f%d.ini\n", i + 1));
    ck_assert_int_eq(load_finish("f0.ini"), -1);
    ck_assert_str_eq(cfg.error, S("%s:2: includes nested more than 32 files deep (at '%s')", P("f31.ini"),
                                  P("f32.ini")));
}
END_TEST

/* ------------------------------------------------------------------ */
/* yaml                                                                */
/* ------------------------------------------------------------------ */

START_TEST(yaml_basic)
{
    OK(ini("a.yml", "# comment\n"
                    "other:\n  deep: {a: [1, 2, {b: c}]}\n"
                    "uwsgi:\n"
                    "  module: wsgi:app\n"
                    "  socket:\n"
                    "    - /tmp/a.sock\n"
                    "    - 127.0.0.1:8000\n"
                    "  master: true\n"
                    "  empty:\n"
                    "  quoted: \"a ; b # c\"\n"
                    "  flow: [x, y]\n"
                    "  dir: \"%d\"\n"
                    "  sec: '%x'\n"
                    "  module: again\n"
                    "wharf:\n"
                    "  w: 1\n"));
    ck_assert_uint_eq(cfg.count, 12);
    ENTRY(0, "module", "wsgi:app");
    ORIGIN(0, S("%s:5", P("a.yml")));
    ENTRY(1, "socket", "/tmp/a.sock");
    ORIGIN(1, S("%s:7", P("a.yml")));
    ENTRY(2, "socket", "127.0.0.1:8000");
    ORIGIN(2, S("%s:8", P("a.yml")));
    ENTRY(3, "master", "true");
    ENTRY(4, "empty", "");
    ENTRY(5, "quoted", "a ; b # c");
    ENTRY(6, "flow", "x");
    ENTRY(7, "flow", "y");
    ENTRY(8, "dir", S("%s/", rtmp));
    ENTRY(9, "sec", "uwsgi");
    ENTRY(10, "module", "again");
    ENTRY(11, "w", "1");
}
END_TEST

START_TEST(yaml_sections_and_errors)
{
    wfile("a.yaml", "uwsgi:\n  u: 1\napp2:\n  plugin: php\n");
    OK(wharf_cfg_load_file(&cfg, S("%s:app2", P("a.yaml")), false, NULL));
    OK(wharf_cfg_finish(&cfg));
    ck_assert_uint_eq(cfg.count, 1);
    ENTRY(0, "plugin", "php");
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    FAILS(ini("b.yml", "db:\n  x: 1\n"), S("%s: no top-level 'uwsgi:' or 'wharf:' mapping (found 'db')", P("b.yml")));
    FAILS(ini("c.yml", "uwsgi:\n  a: 1\n  b:\n    c: d\n"),
          S("%s:4: the value of 'b' must be a value or a list of values, not a mapping", P("c.yml")));
    FAILS(ini("d.yml", "uwsgi:\n  a: [1, [2]]\n"), S("%s:2: the list of 'a' may only hold plain values", P("d.yml")));
    FAILS(ini("e.yml", "uwsgi:\n  a: b: c\n"),
          S("%s:2: YAML syntax error: mapping values are not allowed in this context", P("e.yml")));
    FAILS(ini("f.yml", "- a\n- b\n"), S("%s:1: the top level must be a mapping of sections (uwsgi:, wharf:)", P("f.yml")));
    FAILS(ini("g.yml", "x: &a 1\nuwsgi:\n  y: *a\n"), S("%s:3: aliases (*name) are not supported", P("g.yml")));
    FAILS(ini("h.yml", "uwsgi: text\n"), S("%s:1: the 'uwsgi' section must be a mapping of options", P("h.yml")));
    FAILS(ini("i.yml", "uwsgi:\n  a: 1\n  b: \xff\n"),
          S("%s:3: YAML error: invalid leading UTF-8 octet (byte 19)", P("i.yml")));
}
END_TEST

START_TEST(yaml_forced_and_empty)
{
    wfile("conf.txt", "wharf:\n  a: 1\n");
    OK(wharf_cfg_load_file(&cfg, P("conf.txt"), true, NULL));
    wfile("e.yml", "uwsgi:\n");
    OK(wharf_cfg_load_file(&cfg, P("e.yml"), false, NULL));
    OK(wharf_cfg_finish(&cfg));
    ck_assert_uint_eq(cfg.count, 1);
    ENTRY(0, "a", "1");
}
END_TEST

/* ------------------------------------------------------------------ */
/* command line                                                        */
/* ------------------------------------------------------------------ */

START_TEST(argv_forms)
{
    char *argv[] = {"wharf",   "--http-socket", ":8000",       "--processes=4", "--x=",     "--vacuum",
                    "-V",      "--thunder-lock", "--harakiri", "--master",      "--callable", "-h",
                    "--n",     "-1",            "--http_timeout", "5",          "--end-flag", NULL};
    OK(args(17, argv));
    static const char *const want[][2] = {
        {"http-socket", ":8000"},  {"processes", "4"},     {"x", ""},              /* --x= is empty */
        {"vacuum", "true"},        {"version", "true"},    /* a flag leaves -V be */
        {"thunder-lock", "true"},  {"harakiri", "true"},   /* followed by --other */
        {"master", "true"},        {"callable", "-h"},     /* not a flag: takes it */
        {"n", "-1"},               {"http-timeout", "5"},  {"end-flag", "true"},
    };
    ck_assert_uint_eq(cfg.count, 12);
    for (size_t i = 0; i < 12; i++) {
        ENTRY(i, want[i][0], want[i][1]);
        ORIGIN(i, "command line");
        ck_assert_int_eq(cfg.entries[i].source, WHARF_CFG_CLI);
    }
}
END_TEST

START_TEST(argv_short_help)
{
    char *argv[] = {"wharf", "-h", "-V", NULL};
    OK(args(3, argv));
    ENTRY(0, "help", "true");
    ENTRY(1, "version", "true");
}
END_TEST

START_TEST(argv_config_files_in_order)
{
    wfile("a.ini", "[uwsgi]\nfrom-ini = 1\n");
    wfile("b.yml", "uwsgi:\n  from-yaml: 2\n");
    wfile("c.ini", "[prod]\nfrom-bare = 3\n");
    const char *a = P("a.ini"), *b = P("b.yml"), *c = S("%s:prod", P("c.ini"));
    char *argv[] = {"wharf", "--before", "0", "--ini", (char *)a, "--middle=m", "--yaml", (char *)b, (char *)c,
                    "--after", NULL};
    OK(args(10, argv));
    ck_assert_uint_eq(cfg.count, 6);
    ENTRY(0, "before", "0");
    ENTRY(1, "from-ini", "1");
    ORIGIN(1, S("%s:2", a));
    ck_assert_int_eq(cfg.entries[1].source, WHARF_CFG_FILE);
    ENTRY(2, "middle", "m");
    ENTRY(3, "from-yaml", "2");
    ENTRY(4, "from-bare", "3");
    ENTRY(5, "after", "true");
}
END_TEST

START_TEST(argv_section_of_last_file)
{
    /* `--ini :name` reads another section of the last file given */
    wfile("a.ini", "[uwsgi]\nu = 1\n[extra]\ne = 2\n");
    const char *a = P("a.ini");
    char *argv[] = {"wharf", (char *)a, "--ini", ":extra", NULL};
    OK(args(4, argv));
    ck_assert_uint_eq(cfg.count, 2);
    ENTRY(1, "e", "2");
    ORIGIN(1, S("%s:4", a));
    wharf_cfg_free(&cfg);
    wharf_cfg_init(&cfg);
    char *none[] = {"wharf", "--ini", ":extra", NULL};
    FAILS(args(3, none), "command line: ':extra' names no file, and no config file was read before it");
}
END_TEST

START_TEST(argv_errors)
{
    char *bare[] = {"wharf", "--a", "1", "app.py", NULL};
    FAILS(args(4, bare),
          "command line: unexpected argument 'app.py' (options start with --, config files end in .ini, .yml or .yaml)");
    char *shortopt[] = {"wharf", "-p", "4", NULL};
    FAILS(wharf_cfg_parse_args(&cfg, 3, shortopt, NULL, NULL),
          "command line: unknown option '-p' (options are --name or --name=value; the only short ones are -h and -V)");
    char *noini[] = {"wharf", "--ini", NULL};
    FAILS(wharf_cfg_parse_args(&cfg, 2, noini, NULL, NULL), "command line: 'ini' needs the name of a config file");
    char *missing[] = {"wharf", "missing.ini", NULL};
    FAILS(wharf_cfg_parse_args(&cfg, 2, missing, NULL, NULL),
          "command line: cannot open config file 'missing.ini': No such file or directory");
    char *block[] = {"wharf", "--for", "a b", NULL};
    FAILS(wharf_cfg_parse_args(&cfg, 3, block, NULL, NULL),
          "command line: 'for' is a for/if block key; blocks only work inside config files");
    char *dashes[] = {"wharf", "---x", NULL};
    FAILS(wharf_cfg_parse_args(&cfg, 2, dashes, NULL, NULL), "command line: '---x' is not an option name");
    char *lone[] = {"wharf", "--", NULL};
    FAILS(wharf_cfg_parse_args(&cfg, 2, lone, NULL, NULL),
          "command line: unexpected argument '--' (options start with --, config files end in .ini, .yml or .yaml)");
}
END_TEST

START_TEST(argv_placeholders)
{
    char *argv[] = {"wharf", "--set-placeholder", "root=/srv", "--chdir", "%(root)/app", "--set", "k=v", NULL};
    OK(args(7, argv));
    ck_assert_uint_eq(cfg.count, 2);
    ENTRY(0, "chdir", "/srv/app");
    ENTRY(1, "k", "v");
}
END_TEST

/* ------------------------------------------------------------------ */
/* environment                                                         */
/* ------------------------------------------------------------------ */

START_TEST(env_mapping)
{
    wfile("e.ini", "[uwsgi]\nfrom-file = 1\n");
    char *ini_var = strdup(S("UWSGI_INI=%s", P("e.ini")));
    char *envp[] = {"PATH=/usr/bin",
                    "WHARF_HTTP_SOCKET=:8000",
                    "WHARF__MASTER_FD=7",
                    "UWSGI_PROCESSES=2",
                    "UWSGI_RELOADS=3",
                    "WHARF_=nokey",
                    "wharf_lower=no",
                    ini_var,
                    "WHARF_Mixed_Case=x=y",
                    "WHARF_EMPTY=",
                    NULL};
    OK(wharf_cfg_load_env(&cfg, envp));
    OK(wharf_cfg_finish(&cfg));
    free(ini_var);
    ck_assert_uint_eq(cfg.count, 5);
    ENTRY(0, "http-socket", ":8000");
    ORIGIN(0, "env WHARF_HTTP_SOCKET");
    ck_assert_int_eq(cfg.entries[0].source, WHARF_CFG_ENV);
    ENTRY(1, "processes", "2");
    ORIGIN(1, "env UWSGI_PROCESSES");
    ENTRY(2, "from-file", "1");
    ORIGIN(2, S("%s:2", P("e.ini")));
    ck_assert_int_eq(cfg.entries[2].source, WHARF_CFG_FILE);
    ENTRY(3, "mixed-case", "x=y");
    ENTRY(4, "empty", "");
}
END_TEST

START_TEST(env_errors)
{
    char *envp[] = {"WHARF_INI=/nonexistent/x.ini", NULL};
    FAILS(wharf_cfg_load_env(&cfg, envp),
          "env WHARF_INI: cannot open config file '/nonexistent/x.ini': No such file or directory");
}
END_TEST

START_TEST(sources_share_placeholders)
{
    char *envp[] = {"WHARF_BASE=/from-env", NULL};
    char *argv[] = {"wharf", "--base", "/from-cli", "--path", "%(base)/x", NULL};
    OK(wharf_cfg_load_env(&cfg, envp));
    OK(wharf_cfg_parse_args(&cfg, 5, argv, NULL, NULL));
    OK(wharf_cfg_finish(&cfg));
    ENTRY(2, "path", "/from-env/x"); /* the first value in reading order */
    ck_assert(cfg.entries[0].placeholder_used && cfg.entries[1].placeholder_used);
}
END_TEST

/* ------------------------------------------------------------------ */
/* for / if blocks                                                     */
/* ------------------------------------------------------------------ */

START_TEST(for_blocks)
{
    wfile("list.txt", "one\r\ntwo\n\nthree");
    wfile("g/b.conf", "");
    wfile("g/a.conf", "");
    OK(ini("a.ini", "[uwsgi]\n"
                    "for = a  b\tc\n"
                    "socket = /tmp/%(_).sock\n"
                    "flag\n"
                    "endfor =\n"
                    "for-times = 2\n"
                    "worker = %(_)\n"
                    "end\n"
                    "for-readline = list.txt\n"
                    "line = [%(_)]\n"
                    "end-for\n"
                    "for-glob = g/*.conf\n"
                    "conf = %(_)\n"
                    "endfor\n"
                    "for =\n"
                    "never = 1\n"
                    "endfor\n"));
    static const char *const want[][2] = {
        {"socket", "/tmp/a.sock"}, {"socket", "/tmp/b.sock"}, {"socket", "/tmp/c.sock"},
        {"flag", "true"},          {"flag", "true"},          {"flag", "true"},
        {"worker", "1"},           {"worker", "2"},
        {"line", "[one]"},         {"line", "[two]"},         {"line", "[]"},   {"line", "[three]"},
    };
    ck_assert_uint_eq(cfg.count, 14);
    for (size_t i = 0; i < 12; i++)
        ENTRY(i, want[i][0], want[i][1]);
    ENTRY(12, "conf", RP("g/a.conf"));
    ENTRY(13, "conf", RP("g/b.conf"));
    ORIGIN(1, S("%s:3", P("a.ini")));
}
END_TEST

START_TEST(for_with_include)
{
    wfile("a.ini", "[uwsgi]\nfor = x y\nini = %(_).ini\nendfor\n");
    wfile("x.ini", "[uwsgi]\nv = x\n");
    wfile("y.ini", "[uwsgi]\nv = y\n");
    OK(load_finish("a.ini"));
    ck_assert_uint_eq(cfg.count, 2);
    ENTRY(0, "v", "x");
    ENTRY(1, "v", "y");
}
END_TEST

START_TEST(if_blocks)
{
    setenv("WHARF_TEST_MODE", "prod", 1);
    unsetenv("WHARF_TEST_NOPE");
    wfile("exists.txt", "");
    mkdir(P("adir"), 0700);
    OK(ini("a.ini", "[uwsgi]\n"
                    "if-env = WHARF_TEST_MODE\nmode = %(_)\nendif\n"
                    "if-env = WHARF_TEST_MODE=dev\nno = 1\nendif\n"
                    "if-env = WHARF_TEST_MODE=prod\nprod = yes\nendif\n"
                    "if-not-env = WHARF_TEST_NOPE\nnot-env = %(_)\nendif\n"
                    "if-not-env = WHARF_TEST_MODE=dev\nnot-dev = %(_)\nendif\n"
                    "if-exists = exists.txt\nexists = %(_)\nendif\n"
                    "if-not-exists = missing.txt\nmissing = yes\nendif\n"
                    "if-file = adir\nno = 2\nendif\n"
                    "if-dir = adir\ndir = yes\nendif\n"
                    "if-not-file = exists.txt\nno = 3\nendif\n"
                    "processes = 4\n"
                    "if-opt = processes=4\nopt = %(_)\nendif\n"
                    "if-not-opt = threads\nno-threads = yes\nendif\n"));
    static const char *const want[][2] = {
        {"mode", "prod"},   {"prod", "yes"}, {"not-env", "%(_)"}, {"not-dev", "prod"}, {"exists", "exists.txt"},
        {"missing", "yes"}, {"dir", "yes"},  {"processes", "4"},  {"opt", "4"},        {"no-threads", "yes"},
    };
    ck_assert_uint_eq(cfg.count, 10);
    for (size_t i = 0; i < 10; i++)
        ENTRY(i, want[i][0], want[i][1]);
    ck_assert(cfg.entries[7].placeholder_used); /* tested by if-opt */
}
END_TEST

START_TEST(block_errors)
{
    FAILS(ini("a.ini", "[uwsgi]\nfor = a\nif-env = X\nendif\n"),
          S("%s:3: 'if-env' inside the 'for' block of line 2: for/if blocks do not nest", P("a.ini")));
    FAILS(ini("b.ini", "[uwsgi]\nx = 1\nendfor\n"), S("%s:3: 'endfor' without an open for or if block", P("b.ini")));
    FAILS(ini("c.ini", "[uwsgi]\nfor = a b\nx = 1\n"),
          S("%s:2: the 'for' block is not closed (end it with 'endfor' or 'endif')", P("c.ini")));
    FAILS(ini("d.ini", "[uwsgi]\nif-plugin = python\n"), S("%s:2: 'if-plugin' blocks are not supported by wharf", P("d.ini")));
    FAILS(ini("e.ini", "[uwsgi]\nfor-times = 20000\n"), S("%s:2: for-times = 20000 is more than 10000 iterations", P("e.ini")));
    FAILS(ini("f.ini", "[uwsgi]\nfor-times = two\n"), S("%s:2: for-times needs a whole number, not 'two'", P("f.ini")));
    FAILS(ini("g.ini", "[uwsgi]\nfor-readline = nope.txt\nendfor\n"),
          S("%s:2: for-readline: cannot read %s: No such file or directory", P("g.ini"), RP("nope.txt")));
}
END_TEST

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

START_TEST(lifecycle)
{
    struct wharf_cfg c;
    wharf_cfg_init(&c);
    ck_assert_int_eq(wharf_cfg_finish(&c), 0);
    ck_assert_int_eq(wharf_cfg_finish(&c), 0); /* once is enough, twice is harmless */
    ck_assert_uint_eq(c.count, 0);
    char *argv[] = {"wharf", "--late", NULL};
    ck_assert_int_eq(wharf_cfg_parse_args(&c, 2, argv, NULL, NULL), -1);
    wharf_cfg_free(&c);
    wharf_cfg_free(&c); /* freeing a freed (zeroed) config is a no-op */
    wharf_cfg_init(&c);
    wharf_cfg_free(&c);
}
END_TEST

static Suite *ini_suite(void)
{
    Suite *s = suite_create("ini");
    struct {
        const char *name;
        const TTest *test;
    } groups[] = {
        {"seed", seed_uwsgi_ini},
        {"lines", inline_comments},
        {"lines", trimming_crlf_utf8_bom},
        {"lines", repeated_keys_keep_order},
        {"lines", long_lines},
        {"lines", continuation_lines_are_own_keys},
        {"lines", line_errors},
        {"lines", error_is_one_line},
        {"sections", sections_uwsgi_and_wharf},
        {"sections", named_section},
        {"sections", missing_sections},
        {"sections", missing_file},
        {"magic", magic_file_variables},
        {"magic", magic_name_without_extension_and_symlink},
        {"magic", magic_host_variables},
        {"magic", magic_first_file_and_per_file},
        {"magic", no_magic_outside_files},
        {"placeholders", placeholder_first_value},
        {"placeholders", set_placeholder},
        {"placeholders", placeholder_unknown_stays},
        {"placeholders", placeholder_nested_and_own_context},
        {"placeholders", placeholder_cycles},
        {"placeholders", placeholder_growth_is_bounded},
        {"env-file", env_expansion},
        {"env-file", file_expansion},
        {"env-file", file_expansion_errors},
        {"env-file", file_expansion_from_command_line},
        {"includes", include_relative_nested},
        {"includes", include_cwd_first},
        {"includes", include_magic_env_placeholder},
        {"includes", include_same_file_section},
        {"includes", include_cycle},
        {"includes", include_missing},
        {"includes", include_depth_limit},
        {"yaml", yaml_basic},
        {"yaml", yaml_sections_and_errors},
        {"yaml", yaml_forced_and_empty},
        {"argv", argv_forms},
        {"argv", argv_short_help},
        {"argv", argv_config_files_in_order},
        {"argv", argv_section_of_last_file},
        {"argv", argv_errors},
        {"argv", argv_placeholders},
        {"env", env_mapping},
        {"env", env_errors},
        {"env", sources_share_placeholders},
        {"blocks", for_blocks},
        {"blocks", for_with_include},
        {"blocks", if_blocks},
        {"blocks", block_errors},
        {"lifecycle", lifecycle},
    };
    TCase *tc = NULL;
    const char *current = NULL;

    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        if (!current || strcmp(current, groups[i].name) != 0) {
            current = groups[i].name;
            tc = tcase_create(current);
            tcase_add_unchecked_fixture(tc, case_setup, case_teardown);
            tcase_add_checked_fixture(tc, setup, teardown);
            suite_add_tcase(s, tc);
        }
        tcase_add_test(tc, groups[i].test);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ini_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
