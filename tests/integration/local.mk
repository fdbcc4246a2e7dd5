# Integration tests (pytest, real binary and servers).
TESTS += tests/integration/run-pytest.sh
dist_noinst_SCRIPTS += tests/integration/run-pytest.sh
EXTRA_DIST += tests/integration/wharfctl.py tests/integration/conftest.py
AM_TESTS_ENVIRONMENT = WHARF_BUILDDIR='$(abs_top_builddir)'; export WHARF_BUILDDIR;
EXTRA_DIST += tests/integration/services.py
EXTRA_DIST += tests/integration/test_migrate.py tests/integration/test_session.py \
	tests/integration/test_static.py
