# healthz plugin
if BUILD_PLUGIN_HEALTHZ
endif
