# unit tests of ini/ (the config reader): a plain and a sanitized build of
# the same source.  The seed's uwsgi.ini is a fixture it reads.
EXTRA_DIST += tests/data/seed-uwsgi.ini

if HAVE_CHECK
check_PROGRAMS += tests/unit/test_ini
tests_unit_test_ini_SOURCES = tests/unit/test_ini.c
tests_unit_test_ini_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_ini_LDADD = $(UNIT_LIBS)
tests_unit_test_ini_LDFLAGS = $(UNIT_LD_FLAGS)
TESTS += tests/unit/test_ini
if !SANITIZERS
check_PROGRAMS += tests/unit/test_ini_san
tests_unit_test_ini_san_SOURCES = tests/unit/test_ini.c
tests_unit_test_ini_san_CFLAGS = $(UNIT_CC_FLAGS) $(SANITIZE_CFLAGS)
tests_unit_test_ini_san_LDADD = $(UNIT_SAN_LIBS)
tests_unit_test_ini_san_LDFLAGS = $(UNIT_LD_FLAGS) $(SANITIZE_CFLAGS)
TESTS += tests/unit/test_ini_san
endif
endif
