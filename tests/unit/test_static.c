/*
 * tests/unit/test_static.c - the static plugin's pure helpers (path
 * safety, Range, HTTP dates, entity tags, Accept-Encoding, MIME types) and
 * its open-file cache, one boundary at a time.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "static_cache.h"
#include "static_util.h"

/* ------------------------------------------------------------ paths */

START_TEST(path_escapes)
{
    static const struct {
        const char *path;
        bool escapes;
    } cases[] = {
        { "/s/a.txt", false },
        { "/s/../etc/passwd", true },
        { "/s/..", true },
        { "..", true },
        { "/..", true },
        { "/s/foo/../../x", true },
        { "/s/..\\etc", true },
        { "/s/a\\..\\b", true },
        { "/s/\\..", true },
        { "/s/a..b", false },
        { "/s/...", false },
        { "/s/..a", false },
        { "/s/a..", false },
        { "/s/./a", false },
        { "//etc/passwd", false },
        { "/s/.git/config", false },
        { "/s/\xc0\xae\xc0\xae/x", false }, /* not dots: just a name */
        { "/", false },
        { "", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(st_path_escapes(cases[i].path, strlen(cases[i].path)) == cases[i].escapes,
                      "%s", cases[i].path);
    ck_assert(st_path_escapes("/s/a\0b", 6)); /* an embedded NUL */
}
END_TEST

/* ------------------------------------------------------------ Range */

struct range_case {
    const char *value;
    uint64_t size;
    enum st_range want;
    uint64_t first, last;
};

START_TEST(range_parsing)
{
    static const struct range_case cases[] = {
        { "bytes=0-0", 100, ST_RANGE_OK, 0, 0 },
        { "bytes=0-99", 100, ST_RANGE_OK, 0, 99 },
        { "bytes=0-1000", 100, ST_RANGE_OK, 0, 99 },
        { "bytes=99-", 100, ST_RANGE_OK, 99, 99 },
        { "bytes=10-", 100, ST_RANGE_OK, 10, 99 },
        { "bytes=-1", 100, ST_RANGE_OK, 99, 99 },
        { "bytes=-100", 100, ST_RANGE_OK, 0, 99 },
        { "bytes=-200", 100, ST_RANGE_OK, 0, 99 },
        { "BYTES=1-2", 100, ST_RANGE_OK, 1, 2 },
        { "bytes= 1-2 ", 100, ST_RANGE_OK, 1, 2 },
        { "bytes=1-2,", 100, ST_RANGE_OK, 1, 2 },
        { "bytes=,1-2", 100, ST_RANGE_OK, 1, 2 },
        { "bytes=5-99999999999999999999999999", 100, ST_RANGE_OK, 5, 99 },
        { "bytes=100-", 100, ST_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=100-200", 100, ST_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=99999999999999999999999-", 100, ST_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=-0", 100, ST_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=0-", 0, ST_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=-5", 0, ST_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=5-2", 100, ST_RANGE_NONE, 0, 0 },
        { "bytes=abc", 100, ST_RANGE_NONE, 0, 0 },
        { "bytes=-", 100, ST_RANGE_NONE, 0, 0 },
        { "bytes=", 100, ST_RANGE_NONE, 0, 0 },
        { "bytes", 100, ST_RANGE_NONE, 0, 0 },
        { "bytes =0-1", 100, ST_RANGE_NONE, 0, 0 },
        { "items=0-1", 100, ST_RANGE_NONE, 0, 0 },
        { "bytes=1-2x", 100, ST_RANGE_NONE, 0, 0 },
        { "bytes=1--2", 100, ST_RANGE_NONE, 0, 0 },
        { "bytes=0-1,3-4", 100, ST_RANGE_NONE, 0, 0 }, /* several: 200 */
        { "bytes=0-1,200-300", 100, ST_RANGE_NONE, 0, 0 },
        { "", 100, ST_RANGE_NONE, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct range_case *c = &cases[i];
        uint64_t first = 7777, last = 7777;
        enum st_range got = st_parse_range(c->value, strlen(c->value), c->size, &first, &last);
        ck_assert_msg(got == c->want, "'%s' size %llu: got %d want %d", c->value,
                      (unsigned long long)c->size, got, c->want);
        if (got == ST_RANGE_OK)
            ck_assert_msg(first == c->first && last == c->last, "'%s': %llu-%llu", c->value,
                          (unsigned long long)first, (unsigned long long)last);
    }
}
END_TEST

/* ------------------------------------------------------------ dates */

START_TEST(http_dates)
{
    int64_t t = 0;
    /* RFC 9110 5.6.7's example in its three forms */
    ck_assert(st_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t));
    ck_assert_int_eq(t, 784111777);
    t = 0;
    ck_assert(st_parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t));
    ck_assert_int_eq(t, 784111777);
    t = 0;
    ck_assert(st_parse_http_date("Sun Nov  6 08:49:37 1994", 24, &t));
    ck_assert_int_eq(t, 784111777);
    ck_assert(st_parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", 29, &t));
    ck_assert_int_eq(t, 0);
    ck_assert(st_parse_http_date("Thu, 29 Feb 1996 00:00:00 GMT", 29, &t));
    ck_assert(st_parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT", 29, &t));
    ck_assert_int_eq(t, 253402300799);
    ck_assert(st_parse_http_date("Wednesday, 01-Jan-25 00:00:00 GMT", 33, &t));
    ck_assert_int_eq(t, 1735689600);

    static const char *bad[] = {
        "Sun, 06 Nov 1994 08:49:37 GMX", "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 31 Apr 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:61:00 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT", "06 Nov 1994 08:49:37 GMT",
        "yesterday", "", "Sun Nov 6 08:49:37 1994", "Sunday, 06-Nov-94 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!st_parse_http_date(bad[i], strlen(bad[i]), &t), "accepted '%s'", bad[i]);

    char out[ST_HTTP_DATE_LEN + 1];
    st_format_http_date(784111777, out);
    ck_assert_str_eq(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    st_format_http_date(0, out);
    ck_assert_str_eq(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    st_format_http_date(253402300799, out);
    ck_assert_str_eq(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    /* round trip over a few years, including leap days */
    for (int64_t x = 946684800; x < 946684800 + 5 * 366 * 86400LL; x += 86400 + 3723) {
        st_format_http_date(x, out);
        ck_assert(st_parse_http_date(out, ST_HTTP_DATE_LEN, &t));
        ck_assert_int_eq(t, x);
    }
}
END_TEST

/* ------------------------------------------------------------ ETags */

START_TEST(etags)
{
    const char *tag = "\"5f-10\"";
    size_t n = strlen(tag);
#define WEAK(list) st_etag_list_match_weak(list, strlen(list), tag, n)
    ck_assert(WEAK("\"5f-10\""));
    ck_assert(WEAK("W/\"5f-10\""));
    ck_assert(WEAK("\"a\", W/\"5f-10\""));
    ck_assert(WEAK("\"a\",\"5f-10\""));
    ck_assert(WEAK(" , \"5f-10\" ,"));
    ck_assert(WEAK("*"));
    ck_assert(!WEAK("\"5f-11\""));
    ck_assert(!WEAK("\"5f-10"));
    ck_assert(!WEAK("5f-10"));
    ck_assert(!WEAK("\"5f-1\", \"5f-100\""));
    ck_assert(!WEAK(""));
    ck_assert(WEAK("junk, \"5f-10\""));
#undef WEAK
    ck_assert(st_etag_match_strong("\"5f-10\"", 7, tag, n));
    ck_assert(st_etag_match_strong(" \"5f-10\" ", 9, tag, n));
    ck_assert(!st_etag_match_strong("W/\"5f-10\"", 9, tag, n));
    ck_assert(!st_etag_match_strong("\"5f-1\"", 6, tag, n));
    ck_assert(!st_etag_match_strong("\"5f-10\"", 7, "W/\"5f-10\"", 9));
}
END_TEST

/* ------------------------------------------------------------ Accept-Encoding */

START_TEST(accept_encoding)
{
    static const struct {
        const char *value;
        int br, gz;
    } cases[] = {
        { "gzip, deflate, br", 1000, 1000 },
        { "gzip", 0, 1000 },
        { "br", 1000, 0 },
        { "GZIP", 0, 1000 },
        { "x-gzip", 0, 1000 },
        { "gzip;q=0", 0, 0 },
        { "gzip; q=0.5, br;q=0.25", 250, 500 },
        { "gzip;q=1.0, br;q=0.999", 999, 1000 },
        { "gzip;level=1;q=0.3", 0, 300 },
        { "*", 1000, 1000 },
        { "*;q=0, gzip", 0, 1000 },
        { "*;q=0.1, br;q=0", 0, 100 },
        { "identity", 0, 0 },
        { "", 0, 0 },
        { "gzip;q=2", 0, 0 },
        { "gzip;q=abc", 0, 0 },
        { "gzipx, brotli", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int br = -5, gz = -5;
        st_accept_encoding(cases[i].value, strlen(cases[i].value), &br, &gz);
        ck_assert_msg(br == cases[i].br && gz == cases[i].gz, "'%s': br %d gzip %d", cases[i].value, br, gz);
    }
}
END_TEST

/* ------------------------------------------------------------ MIME */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wharf-test-static-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[sizeof tmpdir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static size_t path_of(char *out, const char *name)
{
    size_t a = strlen(tmpdir), b = strlen(name);
    ck_assert(a + 1 + b < PATH_MAX);
    memcpy(out, tmpdir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return a + 1 + b;
}

static void write_file(const char *name, const char *content)
{
    char path[PATH_MAX];
    path_of(path, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
}

START_TEST(mime_types)
{
    make_tmpdir();
    write_file("mime.types", "# comment\n"
                             "text/css\t\tcss\n"
                             "text/x-weird   js   # the file wins\n"
                             "application/gzip gz\n"
                             "notatype foo\n"
                             "image/svg+xml svg svgz\n");
    struct st_mime *m = st_mime_new();
    char path[PATH_MAX];
    path_of(path, "mime.types");
    ck_assert_int_eq(st_mime_load_file(m, path), 5);
    st_mime_add_builtin(m);
#define LOOK(name) st_mime_lookup(m, name, strlen(name))
    ck_assert_str_eq(LOOK("/a/b.css"), "text/css");
    ck_assert_str_eq(LOOK("/a/B.CSS"), "text/css");
    ck_assert_str_eq(LOOK("/a/x.js"), "text/x-weird");          /* not the built-in */
    ck_assert_str_eq(LOOK("/a/x.woff2"), "font/woff2");          /* built-in fallback */
    ck_assert_str_eq(LOOK("/a/x.tar.gz"), "application/gzip");   /* last extension */
    ck_assert_str_eq(LOOK("/a/x.svgz"), "image/svg+xml");
    ck_assert_ptr_null(LOOK("/a/x.foo"));
    ck_assert_ptr_null(LOOK("/a/x.unknown"));
    ck_assert_ptr_null(LOOK("/a/README"));
    ck_assert_ptr_null(LOOK("/a/.css"));                         /* a dotfile */
    ck_assert_ptr_null(LOOK("/a.css/README"));
    ck_assert_ptr_null(LOOK("/a/x."));
#undef LOOK
    ck_assert_int_eq(st_mime_load_file(m, "/nonexistent/mime.types"), -1);
    ck_assert_int_eq(errno, ENOENT);
    st_mime_free(m);
    remove_tmpdir();
}
END_TEST

/* ------------------------------------------------------------ cache */

START_TEST(cache_hits_and_revalidation)
{
    make_tmpdir();
    write_file("a.txt", "hello");
    char p[PATH_MAX];
    size_t n = path_of(p, "a.txt");
    struct st_cache *c = st_cache_new(16, 1000);

    struct st_file *f = st_cache_get(c, p, n, 0, false);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->kind, ST_FILE);
    ck_assert_int_eq(f->size, 5);
    ck_assert(f->fd >= 0);
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(p, real));
    ck_assert_str_eq(f->real, real);
    ck_assert_int_eq(st_cache_count(c), 1);

    /* within the TTL: the same entry, even if the file changed */
    write_file("a.txt", "hello, world");
    struct st_file *g = st_cache_get(c, p, n, 999, false);
    ck_assert_ptr_eq(f, g);
    ck_assert_int_eq(g->size, 5);
    st_file_unref(g);

    /* after the TTL: one stat sees the change and the file is reopened;
     * the old entry lives on while a response still holds it */
    struct st_file *h = st_cache_get(c, p, n, 1000, false);
    ck_assert_ptr_ne(f, h);
    ck_assert_int_eq(h->size, 12);
    char buf[8] = { 0 };
    ck_assert_int_eq(pread(f->fd, buf, 5, 0), 5); /* still open */
    st_file_unref(f);
    st_file_unref(h);

    /* unchanged after the TTL: the same entry, revalidated */
    struct st_file *i = st_cache_get(c, p, n, 2500, false);
    ck_assert_ptr_eq(i, h);
    st_file_unref(i);
    i = st_cache_get(c, p, n, 3400, false); /* still within 1 s of 2500 */
    ck_assert_ptr_eq(i, h);
    st_file_unref(i);

    /* deleted: after the TTL it is missing */
    ck_assert_int_eq(unlink(p), 0);
    struct st_file *j = st_cache_get(c, p, n, 10000, false);
    ck_assert_int_eq(j->kind, ST_MISSING);
    st_file_unref(j);
    ck_assert_int_eq(st_cache_count(c), 0);
    st_cache_free(c);
    remove_tmpdir();
}
END_TEST

START_TEST(cache_missing_and_kinds)
{
    make_tmpdir();
    char p[PATH_MAX];
    struct st_cache *c = st_cache_new(16, 1000);

    /* a missing main file is not remembered: created, it is found at once */
    size_t n = path_of(p, "new.txt");
    struct st_file *f = st_cache_get(c, p, n, 0, false);
    ck_assert_int_eq(f->kind, ST_MISSING);
    st_file_unref(f);
    ck_assert_int_eq(st_cache_count(c), 0);
    write_file("new.txt", "x");
    f = st_cache_get(c, p, n, 1, false);
    ck_assert_int_eq(f->kind, ST_FILE);
    st_file_unref(f);

    /* a missing sibling is remembered for the TTL */
    n = path_of(p, "new.txt.gz");
    f = st_cache_get(c, p, n, 0, true);
    ck_assert_int_eq(f->kind, ST_MISSING);
    st_file_unref(f);
    ck_assert_int_eq(st_cache_count(c), 2);
    write_file("new.txt.gz", "x");
    f = st_cache_get(c, p, n, 500, true);
    ck_assert_int_eq(f->kind, ST_MISSING);
    st_file_unref(f);
    f = st_cache_get(c, p, n, 1000, true);
    ck_assert_int_eq(f->kind, ST_FILE);
    st_file_unref(f);

    /* a directory, a FIFO (opened without waiting for a writer), a path
     * through a file */
    n = path_of(p, "");
    f = st_cache_get(c, p, n, 0, false);
    ck_assert_int_eq(f->kind, ST_DIR);
    ck_assert_int_eq(f->fd, -1);
    st_file_unref(f);
    n = path_of(p, "fifo");
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    f = st_cache_get(c, p, n, 0, false);
    ck_assert_int_eq(f->kind, ST_OTHER);
    ck_assert_int_eq(f->fd, -1);
    st_file_unref(f);
    n = path_of(p, "new.txt/x");
    f = st_cache_get(c, p, n, 0, false);
    ck_assert_int_eq(f->kind, ST_MISSING);
    st_file_unref(f);

    /* a symlink: the real path is the target's */
    write_file("target.txt", "t");
    char target[PATH_MAX], real[PATH_MAX];
    path_of(target, "target.txt");
    n = path_of(p, "link.txt");
    ck_assert_int_eq(symlink(target, p), 0);
    f = st_cache_get(c, p, n, 0, false);
    ck_assert_int_eq(f->kind, ST_FILE);
    ck_assert_ptr_nonnull(realpath(target, real));
    ck_assert_str_eq(f->real, real);
    st_file_unref(f);

    st_cache_free(c);
    remove_tmpdir();
}
END_TEST

START_TEST(cache_lru_and_refs)
{
    make_tmpdir();
    write_file("a", "a");
    write_file("b", "b");
    write_file("c", "c");
    char pa[PATH_MAX], pb[PATH_MAX], pc[PATH_MAX];
    size_t na = path_of(pa, "a"), nb = path_of(pb, "b"), nc = path_of(pc, "c");
    struct st_cache *c = st_cache_new(2, 1000);
    struct st_file *a = st_cache_get(c, pa, na, 0, false);
    st_file_unref(st_cache_get(c, pb, nb, 0, false));
    /* touch a: b becomes the least recently used */
    st_file_unref(st_cache_get(c, pa, na, 1, false));
    st_file_unref(st_cache_get(c, pc, nc, 2, false));
    ck_assert_int_eq(st_cache_count(c), 2);
    struct st_file *a2 = st_cache_get(c, pa, na, 3, false);
    ck_assert_ptr_eq(a, a2); /* still cached */
    st_file_unref(a2);
    struct st_file *b = st_cache_get(c, pb, nb, 4, false); /* reopened; evicts c */
    ck_assert_int_eq(b->kind, ST_FILE);
    st_file_unref(b);
    ck_assert_int_eq(st_cache_count(c), 2);
    /* freeing the cache leaves a held entry usable until its last unref */
    st_cache_free(c);
    char ch = 0;
    ck_assert_int_eq(pread(a->fd, &ch, 1, 0), 1);
    ck_assert_int_eq(ch, 'a');
    st_file_unref(a);

    /* no cache (TTL 0): every lookup opens; nothing stays */
    c = st_cache_new(16, 0);
    struct st_file *x = st_cache_get(c, pa, na, 0, false);
    struct st_file *y = st_cache_get(c, pa, na, 0, false);
    ck_assert_ptr_ne(x, y);
    ck_assert_int_eq(st_cache_count(c), 0);
    st_file_unref(x);
    st_file_unref(y);
    st_cache_free(c);
    remove_tmpdir();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("static");
    TCase *t = tcase_create("util");
    tcase_add_test(t, path_escapes);
    tcase_add_test(t, range_parsing);
    tcase_add_test(t, http_dates);
    tcase_add_test(t, etags);
    tcase_add_test(t, accept_encoding);
    tcase_add_test(t, mime_types);
    suite_add_tcase(s, t);
    t = tcase_create("cache");
    tcase_add_test(t, cache_hits_and_revalidation);
    tcase_add_test(t, cache_missing_and_kinds);
    tcase_add_test(t, cache_lru_and_refs);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
