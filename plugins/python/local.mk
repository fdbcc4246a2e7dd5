# python plugin: embeds the CPython of python-3.11-embed (Debian's 3.11) and
# runs WSGI apps.  sys.executable is $(PYTHON) (configure: /usr/bin/python3),
# the interpreter this libpython belongs to.
if BUILD_PLUGIN_PYTHON
plugin_PROGRAMS += plugins/python_plugin.so
plugins_python_plugin_so_SOURCES = \
	plugins/python/pyplugin.h \
	plugins/python/plugin.c \
	plugins/python/interp.c \
	plugins/python/wsgi.c \
	plugins/python/input.c \
	plugins/python/objects.c
plugins_python_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS) $(PYTHON_DEPS_CFLAGS) \
	-DWHARF_PYTHON_EXECUTABLE='"$(PYTHON)"' -DWHARF_VERSION='"$(PACKAGE_VERSION)"' \
	-DWHARF_PYLIBDIR='"$(pylibdir)"' -DWHARF_PYLIB_SRCDIR='"$(abs_top_srcdir)/plugins/python/pylib"'
plugins_python_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
plugins_python_plugin_so_LDADD = $(PYTHON_DEPS_LIBS) -ldl
# Python helpers the apps import (wharf_session)
pylibdir = $(libdir)/wharf/python
dist_pylib_DATA = plugins/python/pylib/wharf_session.py
endif

# A test plugin that sets request variables (plain and lazy) for the python
# plugin's wharf.<name> environ entries; built beside the other fixtures,
# never installed.
if BUILD_PLUGIN_PYTHON
noinst_PROGRAMS += tests/fixtures/plugins/pyvars_plugin.so
tests_fixtures_plugins_pyvars_plugin_so_SOURCES = tests/fixtures/plugins/pyvars.c
tests_fixtures_plugins_pyvars_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS)
tests_fixtures_plugins_pyvars_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
endif

# the python plugin's tests, their apps and the example Flask app
EXTRA_DIST += \
	tests/integration/test_python_pep3333.py \
	tests/integration/test_python_loading.py \
	tests/integration/test_python_threads.py \
	tests/integration/test_python_flask.py \
	tests/integration/test_python_vars.py \
	tests/integration/apps/pyharness.py \
	tests/integration/apps/pepapp.py \
	tests/integration/apps/validated.py \
	tests/integration/apps/scriptapp.py \
	tests/integration/apps/sideeffect.py \
	tests/integration/apps/broken_import.py \
	tests/integration/apps/extmods.py \
	tests/integration/apps/filedir/app_file.py \
	tests/integration/apps/filedir/sibling.py \
	contrib/examples/flaskapp/uwsgi.ini \
	contrib/examples/flaskapp/wsgi.py \
	contrib/examples/flaskapp/app/__init__.py \
	contrib/examples/flaskapp/app/data/report.csv \
	contrib/examples/flaskapp/static/style.css
