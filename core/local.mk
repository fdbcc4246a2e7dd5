# core: the wharf binary.  The core is built as a static library so unit
# tests link the same objects; the binary pulls in the whole archive and
# exports the public API (default-visibility symbols only, everything else
# is compiled -fvisibility=hidden) for plugins to bind against.
WHARF_CORE_SOURCES = \
	core/internal.h \
	core/log.c \
	core/util.c \
	core/options.c \
	core/plugin.c \
	core/config.c \
	core/scoreboard.c \
	core/listen.c \
	core/loop.c \
	core/request.c \
	core/accesslog.c \
	core/threadpool.c \
	core/worker.c \
	core/master.c \
	core/notify.c

WHARF_CORE_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -pthread $(INIH_CFLAGS) $(YAML_CFLAGS) $(JEMALLOC_CFLAGS)
WHARF_CORE_LIBS = $(INIH_LIBS) $(YAML_LIBS)

noinst_LIBRARIES += libwharfcore.a
libwharfcore_a_SOURCES = $(WHARF_CORE_SOURCES) $(WHARF_INI_SOURCES)
libwharfcore_a_CFLAGS = $(WHARF_CORE_CFLAGS)

bin_PROGRAMS += wharf
wharf_SOURCES = core/main.c
wharf_CFLAGS = $(WHARF_CORE_CFLAGS)
wharf_LDFLAGS = -rdynamic -pthread -Wl,--whole-archive,libwharfcore.a,--no-whole-archive
wharf_LDADD = $(WHARF_CORE_LIBS) $(JEMALLOC_LIBS)
wharf_DEPENDENCIES = libwharfcore.a

# The same objects with ASan + UBSan, for `make check` to run the unit tests
# a second time (not needed when the whole build is sanitized).
if !SANITIZERS
noinst_LIBRARIES += libwharfcore_san.a
libwharfcore_san_a_SOURCES = $(WHARF_CORE_SOURCES) $(WHARF_INI_SOURCES)
libwharfcore_san_a_CFLAGS = $(WHARF_CORE_CFLAGS) $(SANITIZE_CFLAGS)
endif
