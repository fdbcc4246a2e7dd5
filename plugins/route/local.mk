# route plugin: uWSGI's internal routing (route, route-if, response-route,
# final-route ...).  rules.c is the language itself, free of wharf.h, so the
# unit tests and the fuzzer link it alone; route_plugin.c maps it onto
# requests.  PCRE2 (JIT) for the regexes, libcrypt for htpasswd hashes.
if BUILD_PLUGIN_ROUTE
plugin_PROGRAMS += plugins/route_plugin.so
plugins_route_plugin_so_SOURCES = \
	plugins/route/rules.h \
	plugins/route/rules.c \
	plugins/route/route_plugin.c
plugins_route_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS) $(ROUTE_DEPS_CFLAGS)
plugins_route_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
plugins_route_plugin_so_LDADD = $(ROUTE_DEPS_LIBS) -lcrypt
endif

# A stand-in app for tests/integration/test_route.py (see the file).
if BUILD_PLUGIN_ROUTE
check_PROGRAMS += tests/fixtures/plugins/routeecho_plugin.so
tests_fixtures_plugins_routeecho_plugin_so_SOURCES = tests/fixtures/plugins/routeecho.c
tests_fixtures_plugins_routeecho_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS)
tests_fixtures_plugins_routeecho_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
endif

EXTRA_DIST += plugins/route/ROUTING.md tests/integration/test_route.py
