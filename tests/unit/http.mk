# unit tests of the http plugin's request parser (plugins/http/http_parser.c)
if HAVE_CHECK
# The parser is self-contained (libc only): no core library, just the
# warnings, Check, and where the corpus is (VPATH builds run elsewhere).
HTTP_UNIT_CFLAGS = $(AM_CFLAGS) -D_GNU_SOURCE $(CHECK_CFLAGS) -I$(top_srcdir)/plugins/http \
	-DWHARF_TEST_SRCDIR='"$(abs_top_srcdir)"'
check_PROGRAMS += tests/unit/test_http_parser
tests_unit_test_http_parser_SOURCES = tests/unit/test_http_parser.c plugins/http/http_parser.c
tests_unit_test_http_parser_CFLAGS = $(HTTP_UNIT_CFLAGS)
tests_unit_test_http_parser_LDADD = $(CHECK_LIBS)
TESTS += tests/unit/test_http_parser
if !SANITIZERS
check_PROGRAMS += tests/unit/test_http_parser_san
tests_unit_test_http_parser_san_SOURCES = tests/unit/test_http_parser.c plugins/http/http_parser.c
tests_unit_test_http_parser_san_CFLAGS = $(HTTP_UNIT_CFLAGS) $(SANITIZE_CFLAGS)
tests_unit_test_http_parser_san_LDADD = $(CHECK_LIBS)
tests_unit_test_http_parser_san_LDFLAGS = $(SANITIZE_CFLAGS)
TESTS += tests/unit/test_http_parser_san
endif
endif
EXTRA_DIST += tests/data/http-corpus.txt
