# ini: configuration readers (ini via inih, yaml via libyaml, command line,
# environment) and uWSGI-style expansions.  Linked into the core library.
WHARF_INI_SOURCES = \
	ini/cfg.h \
	ini/cfg_internal.h \
	ini/config.c \
	ini/blocks.c \
	ini/expand.c \
	ini/ini_reader.c \
	ini/yaml_reader.c
