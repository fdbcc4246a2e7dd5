# static plugin
if BUILD_PLUGIN_STATIC
endif
