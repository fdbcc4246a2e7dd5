# unit tests of ini/ (the config reader): a plain and a sanitized build of
# the same source.  The seed's uwsgi.ini is a fixture it reads.
EXTRA_DIST += tests/data/seed-uwsgi.ini

if HAVE_CHECK
check_PROGRAMS += tests/unit/test_ini
tests_unit_test_ini_SOURCES = tests/unit/test_ini.c
tests_unit_test_ini_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_ini_LDADD = $(UNIT_LDADD)
tests_unit_test_ini_LDFLAGS = $(UNIT_LDFLAGS)
TESTS += tests/unit/test_ini
if !SANITIZERS
check_PROGRAMS += tests/unit/test_ini_san
tests_unit_test_ini_san_SOURCES = tests/unit/test_ini.c
tests_unit_test_ini_san_CFLAGS = $(UNIT_CFLAGS) $(SANITIZE_CFLAGS)
tests_unit_test_ini_san_LDADD = $(UNIT_SAN_LDADD)
tests_unit_test_ini_san_LDFLAGS = $(UNIT_LDFLAGS) $(SANITIZE_CFLAGS)
TESTS += tests/unit/test_ini_san
endif
endif
