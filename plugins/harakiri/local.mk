# harakiri plugin: kill workers stuck on one request
if BUILD_PLUGIN_HARAKIRI
plugin_PROGRAMS += plugins/harakiri_plugin.so
plugins_harakiri_plugin_so_SOURCES = plugins/harakiri/harakiri.c
plugins_harakiri_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS)
plugins_harakiri_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
endif
