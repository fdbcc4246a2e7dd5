/*
 * Unit tests (Check) of redis_session's Cookie parsing and session ids.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cookie.h"

#define ID_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"   /* 43 x 'A' */
#define ID_B "abcdefghijklmnopqrstuvwxyz-_0123456789ABCDE"   /* 43, ends in 'E' (4 = 0b000100) */

static int pairs(const char *h, struct rs_cookie *out, int max)
{
    const char *pos = h, *end = h + strlen(h);
    int n = 0;
    while (n < max && rs_cookie_next(&pos, end, &out[n]))
        n++;
    return n;
}

static void eq(const char *s, size_t n, const char *want)
{
    ck_assert_uint_eq(n, strlen(want));
    ck_assert(memcmp(s, want, n) == 0);
}

START_TEST(several_cookies)
{
    struct rs_cookie c[8];
    int n = pairs("a=1; session=" ID_A ";theme=dark", c, 8);
    ck_assert_int_eq(n, 3);
    eq(c[0].name, c[0].name_len, "a");
    eq(c[0].value, c[0].value_len, "1");
    eq(c[1].name, c[1].name_len, "session");
    eq(c[1].value, c[1].value_len, ID_A);
    eq(c[2].name, c[2].name_len, "theme");
    eq(c[2].value, c[2].value_len, "dark");
}
END_TEST

START_TEST(quoted_and_spaces)
{
    struct rs_cookie c[4];
    int n = pairs("  x = \"quoted value\" ;\ty=\"\"", c, 4);
    ck_assert_int_eq(n, 2);
    eq(c[0].name, c[0].name_len, "x");
    eq(c[0].value, c[0].value_len, "quoted value");
    eq(c[1].name, c[1].name_len, "y");
    eq(c[1].value, c[1].value_len, "");
}
END_TEST

START_TEST(malformed_pairs_skipped)
{
    struct rs_cookie c[4];
    /* a flag without '=', an empty pair, a pair without a name */
    int n = pairs("flag; ;; =nameless; ok=1;", c, 4);
    ck_assert_int_eq(n, 1);
    eq(c[0].name, c[0].name_len, "ok");
    eq(c[0].value, c[0].value_len, "1");
    ck_assert_int_eq(pairs("", c, 4), 0);
    ck_assert_int_eq(pairs(";;;", c, 4), 0);
}
END_TEST

START_TEST(find_id)
{
    char id[RS_ID_LEN + 1];
    const char *h = "a=1; session=" ID_B "; b=2";
    ck_assert(rs_cookie_find_id(h, strlen(h), "session", id));
    ck_assert_str_eq(id, ID_B);
    /* quoted */
    h = "session=\"" ID_A "\"";
    ck_assert(rs_cookie_find_id(h, strlen(h), "session", id));
    ck_assert_str_eq(id, ID_A);
    /* the name must match exactly: no prefix/suffix matches */
    h = "xsession=" ID_A "; session2=" ID_A "; Session=" ID_A;
    ck_assert(!rs_cookie_find_id(h, strlen(h), "session", id));
    /* a malformed one first, then a good one: the good one */
    h = "session=short; session=" ID_A;
    ck_assert(rs_cookie_find_id(h, strlen(h), "session", id));
    ck_assert_str_eq(id, ID_A);
    /* only malformed ones: none (the client gets a fresh session) */
    h = "session=../../etc; session=" ID_A "x; session=" ID_A "; ";
    ck_assert(rs_cookie_find_id(h, strlen(h), "session", id)); /* last one is fine */
    h = "session=../../etc; session=" ID_A "x";
    ck_assert(!rs_cookie_find_id(h, strlen(h), "session", id));
    /* length is the header's, not strlen: a NUL-free slice */
    h = "session=" ID_A "; other=1";
    ck_assert(!rs_cookie_find_id(h, 20, "session", id));
}
END_TEST

START_TEST(id_validation)
{
    ck_assert(rs_id_valid(ID_A, 43));
    ck_assert(rs_id_valid(ID_B, 43));
    ck_assert(!rs_id_valid(ID_A, 42));
    ck_assert(!rs_id_valid(ID_A "A", 44));
    char bad[44];
    memcpy(bad, ID_A, 44);
    bad[10] = '+'; /* base64, not base64url */
    ck_assert(!rs_id_valid(bad, 43));
    bad[10] = '=';
    ck_assert(!rs_id_valid(bad, 43));
    memcpy(bad, ID_A, 44);
    bad[42] = 'B'; /* non-canonical: low bits of the last char set */
    ck_assert(!rs_id_valid(bad, 43));
    bad[42] = 'E';
    ck_assert(rs_id_valid(bad, 43));
}
END_TEST

START_TEST(encode_known)
{
    unsigned char raw[RS_ID_RAW];
    char out[RS_ID_LEN + 1];
    memset(raw, 0, sizeof raw);
    rs_id_encode(raw, out);
    ck_assert_str_eq(out, ID_A);
    memset(raw, 0xff, sizeof raw);
    rs_id_encode(raw, out);
    ck_assert_str_eq(out, "__________________________________________8");
    for (int i = 0; i < RS_ID_RAW; i++)
        raw[i] = (unsigned char)i;
    rs_id_encode(raw, out);
    /* python3 -c "import base64;print(base64.urlsafe_b64encode(bytes(range(32))).rstrip(b'='))" */
    ck_assert_str_eq(out, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
}
END_TEST

START_TEST(new_ids_valid_and_distinct)
{
    char a[RS_ID_LEN + 1], b[RS_ID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(rs_id_new(a), 0);
        ck_assert_int_eq(rs_id_new(b), 0);
        ck_assert_uint_eq(strlen(a), RS_ID_LEN);
        ck_assert(rs_id_valid(a, strlen(a)));
        ck_assert(rs_id_valid(b, strlen(b)));
        ck_assert_str_ne(a, b);
    }
}
END_TEST

START_TEST(cookie_names)
{
    ck_assert(rs_cookie_name_valid("session"));
    ck_assert(rs_cookie_name_valid("__Host-sid"));
    ck_assert(!rs_cookie_name_valid(""));
    ck_assert(!rs_cookie_name_valid("a b"));
    ck_assert(!rs_cookie_name_valid("a=b"));
    ck_assert(!rs_cookie_name_valid("a;b"));
    ck_assert(!rs_cookie_name_valid(NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_session cookie");
    TCase *tc = tcase_create("cookie");
    tcase_add_test(tc, several_cookies);
    tcase_add_test(tc, quoted_and_spaces);
    tcase_add_test(tc, malformed_pairs_skipped);
    tcase_add_test(tc, find_id);
    tcase_add_test(tc, id_validation);
    tcase_add_test(tc, encode_known);
    tcase_add_test(tc, new_ids_valid_and_distinct);
    tcase_add_test(tc, cookie_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
