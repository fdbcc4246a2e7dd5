# http plugin: HTTP/1.x sockets (http-socket), parser in http_parser.c
if BUILD_PLUGIN_HTTP
plugin_PROGRAMS += plugins/http_plugin.so
plugins_http_plugin_so_SOURCES = \
	plugins/http/http.h \
	plugins/http/http_plugin.c \
	plugins/http/http_conn.c \
	plugins/http/http_parser.h \
	plugins/http/http_parser.c
plugins_http_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS)
plugins_http_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
endif
EXTRA_DIST += plugins/http/PARSER.md
