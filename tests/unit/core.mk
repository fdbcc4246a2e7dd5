# Unit tests of core/ (Check).  Each program is built twice, against the
# plain core library and against the ASan/UBSan one (suffix _san), and
# `make check` runs both.  With --enable-sanitizers the whole build is
# sanitized already and libwharfcore_san.a does not exist: then the plain
# programs are the sanitized ones and the _san copies are not built.
if HAVE_CHECK
CORE_UNIT_TESTS = \
	tests/unit/test_options \
	tests/unit/test_plugin

if SANITIZERS
CORE_UNIT_SAN_TESTS =
else
CORE_UNIT_SAN_TESTS = $(CORE_UNIT_TESTS:=_san)
endif

check_PROGRAMS += $(CORE_UNIT_TESTS) $(CORE_UNIT_SAN_TESTS)
TESTS += $(CORE_UNIT_TESTS) $(CORE_UNIT_SAN_TESTS)

tests_unit_test_options_SOURCES = tests/unit/test_options.c
tests_unit_test_options_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_options_LDFLAGS = $(UNIT_LD_FLAGS)
tests_unit_test_options_LDADD = $(UNIT_LIBS)
tests_unit_test_options_DEPENDENCIES = libwharfcore.a

tests_unit_test_options_san_SOURCES = tests/unit/test_options.c
tests_unit_test_options_san_CFLAGS = $(UNIT_CC_FLAGS) $(SANITIZE_CFLAGS)
tests_unit_test_options_san_LDFLAGS = $(UNIT_LD_FLAGS) -fsanitize=address,undefined
tests_unit_test_options_san_LDADD = $(UNIT_SAN_LIBS)
tests_unit_test_options_san_DEPENDENCIES = libwharfcore_san.a

# test_plugin opens the fixture plugins from tests/fixtures/plugins/ in the
# build tree (built by `make check` before any test runs).
tests_unit_test_plugin_SOURCES = tests/unit/test_plugin.c
tests_unit_test_plugin_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_plugin_LDFLAGS = $(UNIT_LD_FLAGS)
tests_unit_test_plugin_LDADD = $(UNIT_LIBS)
tests_unit_test_plugin_DEPENDENCIES = libwharfcore.a $(FIXTURE_PLUGINS)

tests_unit_test_plugin_san_SOURCES = tests/unit/test_plugin.c
tests_unit_test_plugin_san_CFLAGS = $(UNIT_CC_FLAGS) $(SANITIZE_CFLAGS)
tests_unit_test_plugin_san_LDFLAGS = $(UNIT_LD_FLAGS) -fsanitize=address,undefined
tests_unit_test_plugin_san_LDADD = $(UNIT_SAN_LIBS)
tests_unit_test_plugin_san_DEPENDENCIES = libwharfcore_san.a $(FIXTURE_PLUGINS)
endif

# The core's integration tests ride along in the tarball (the harness
# itself is listed by tests/integration/local.mk).
EXTRA_DIST += tests/integration/test_core.py tests/integration/test_install.py
