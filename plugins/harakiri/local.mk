# harakiri plugin
if BUILD_PLUGIN_HARAKIRI
endif
