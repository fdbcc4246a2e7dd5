# unit tests of plugins/static: its pure helpers and its open-file cache,
# compiled straight from the plugin's sources (they use libc only).
if HAVE_CHECK
if BUILD_PLUGIN_STATIC
STATIC_UNIT_SOURCES = tests/unit/test_static.c plugins/static/static_util.c plugins/static/static_cache.c
STATIC_UNIT_CFLAGS = $(AM_CFLAGS) -D_GNU_SOURCE -I$(top_srcdir)/plugins/static $(CHECK_CFLAGS)
check_PROGRAMS += tests/unit/test_static
TESTS += tests/unit/test_static
tests_unit_test_static_SOURCES = $(STATIC_UNIT_SOURCES)
tests_unit_test_static_CFLAGS = $(STATIC_UNIT_CFLAGS)
tests_unit_test_static_LDADD = $(CHECK_LIBS)
if !SANITIZERS
check_PROGRAMS += tests/unit/test_static_san
TESTS += tests/unit/test_static_san
tests_unit_test_static_san_SOURCES = $(STATIC_UNIT_SOURCES)
tests_unit_test_static_san_CFLAGS = $(STATIC_UNIT_CFLAGS) $(SANITIZE_CFLAGS)
tests_unit_test_static_san_LDFLAGS = -fsanitize=address,undefined
tests_unit_test_static_san_LDADD = $(CHECK_LIBS)
endif
endif
endif
