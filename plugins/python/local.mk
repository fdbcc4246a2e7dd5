# python plugin
if BUILD_PLUGIN_PYTHON
endif
