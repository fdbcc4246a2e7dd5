# static plugin: files from disk on the event loop (static-map and friends).
# PCRE2 for uWSGI's static-expires / static-gzip regular expressions.
if BUILD_PLUGIN_STATIC
plugin_PROGRAMS += plugins/static_plugin.so
plugins_static_plugin_so_SOURCES = \
	plugins/static/static_plugin.c \
	plugins/static/static_cache.h \
	plugins/static/static_cache.c \
	plugins/static/static_util.h \
	plugins/static/static_util.c
plugins_static_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS) $(STATIC_DEPS_CFLAGS)
plugins_static_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
plugins_static_plugin_so_LDADD = $(STATIC_DEPS_LIBS)
endif
EXTRA_DIST += plugins/static/STATIC.md
