# migrate plugin
if BUILD_PLUGIN_MIGRATE
endif
