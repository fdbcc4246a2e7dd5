# http plugin
if BUILD_PLUGIN_HTTP
endif
