# unit tests of the http plugin's request parser (plugins/http/http_parser.c)
if HAVE_CHECK
check_PROGRAMS += tests/unit/test_http_parser
tests_unit_test_http_parser_SOURCES = tests/unit/test_http_parser.c plugins/http/http_parser.c
tests_unit_test_http_parser_CFLAGS = $(UNIT_CC_FLAGS) -I$(top_srcdir)/plugins/http
tests_unit_test_http_parser_LDADD = $(CHECK_LIBS)
TESTS += tests/unit/test_http_parser
if !SANITIZERS
check_PROGRAMS += tests/unit/test_http_parser_san
tests_unit_test_http_parser_san_SOURCES = tests/unit/test_http_parser.c plugins/http/http_parser.c
tests_unit_test_http_parser_san_CFLAGS = $(UNIT_CC_FLAGS) -I$(top_srcdir)/plugins/http $(SANITIZE_CFLAGS)
tests_unit_test_http_parser_san_LDADD = $(CHECK_LIBS)
tests_unit_test_http_parser_san_LDFLAGS = $(SANITIZE_CFLAGS)
TESTS += tests/unit/test_http_parser_san
endif
endif
EXTRA_DIST += tests/data/http-corpus.txt
