# redis_session plugin
if BUILD_PLUGIN_REDIS_SESSION
endif
