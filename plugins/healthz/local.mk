# healthz plugin: Kubernetes probes and Prometheus /metrics from the event loop
if BUILD_PLUGIN_HEALTHZ
plugin_PROGRAMS += plugins/healthz_plugin.so
plugins_healthz_plugin_so_SOURCES = \
	plugins/healthz/healthz.h \
	plugins/healthz/healthz_plugin.c \
	plugins/healthz/probes.c \
	plugins/healthz/metrics.c
plugins_healthz_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS)
plugins_healthz_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
endif

EXTRA_DIST += plugins/healthz/README.md tests/integration/test_healthz.py
