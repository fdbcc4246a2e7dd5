# Unit tests of the route plugin's rule language (plugins/route/rules.c,
# which does not include wharf.h, so the test links it alone).  Built twice
# like every unit test: plain and with ASan/UBSan (suffix _san); with
# --enable-sanitizers the plain build is sanitized already and the _san copy
# is not built.
if HAVE_CHECK
if BUILD_PLUGIN_ROUTE
ROUTE_UNIT_TESTS = tests/unit/test_route
if SANITIZERS
ROUTE_UNIT_SAN_TESTS =
else
ROUTE_UNIT_SAN_TESTS = tests/unit/test_route_san
endif
check_PROGRAMS += $(ROUTE_UNIT_TESTS) $(ROUTE_UNIT_SAN_TESTS)
TESTS += $(ROUTE_UNIT_TESTS) $(ROUTE_UNIT_SAN_TESTS)

ROUTE_UNIT_SOURCES = tests/unit/test_route.c plugins/route/rules.c plugins/route/rules.h
ROUTE_UNIT_CFLAGS = $(AM_CFLAGS) -D_GNU_SOURCE -I$(top_srcdir)/plugins/route \
	$(ROUTE_DEPS_CFLAGS) $(CHECK_CFLAGS)
ROUTE_UNIT_LIBS = $(ROUTE_DEPS_LIBS) -lcrypt $(CHECK_LIBS)

tests_unit_test_route_SOURCES = $(ROUTE_UNIT_SOURCES)
tests_unit_test_route_CFLAGS = $(ROUTE_UNIT_CFLAGS)
tests_unit_test_route_LDADD = $(ROUTE_UNIT_LIBS)

tests_unit_test_route_san_SOURCES = $(ROUTE_UNIT_SOURCES)
tests_unit_test_route_san_CFLAGS = $(ROUTE_UNIT_CFLAGS) $(SANITIZE_CFLAGS)
tests_unit_test_route_san_LDFLAGS = -fsanitize=address,undefined
tests_unit_test_route_san_LDADD = $(ROUTE_UNIT_LIBS)
endif
endif
