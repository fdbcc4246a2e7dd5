# route plugin
if BUILD_PLUGIN_ROUTE
endif
