# redis_session plugin: server-side sessions in Redis (hiredis)
if BUILD_PLUGIN_REDIS_SESSION
plugin_PROGRAMS += plugins/redis_session_plugin.so
plugins_redis_session_plugin_so_SOURCES = \
	plugins/redis_session/cookie.h \
	plugins/redis_session/cookie.c \
	plugins/redis_session/redis_session.c
plugins_redis_session_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS) $(REDIS_SESSION_DEPS_CFLAGS)
plugins_redis_session_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
plugins_redis_session_plugin_so_LDADD = $(REDIS_SESSION_DEPS_LIBS)

# Check tests of the cookie parser and session ids (no Redis needed); a
# plain and a sanitized build, like the core's unit tests.
if HAVE_CHECK
check_PROGRAMS += plugins/redis_session/test_cookie
TESTS += plugins/redis_session/test_cookie
plugins_redis_session_test_cookie_SOURCES = \
	plugins/redis_session/test_cookie.c \
	plugins/redis_session/cookie.c \
	plugins/redis_session/cookie.h
plugins_redis_session_test_cookie_CFLAGS = $(AM_CFLAGS) -D_GNU_SOURCE $(CHECK_CFLAGS)
plugins_redis_session_test_cookie_LDADD = $(CHECK_LIBS)
if !SANITIZERS
check_PROGRAMS += plugins/redis_session/test_cookie_san
TESTS += plugins/redis_session/test_cookie_san
plugins_redis_session_test_cookie_san_SOURCES = $(plugins_redis_session_test_cookie_SOURCES)
plugins_redis_session_test_cookie_san_CFLAGS = $(AM_CFLAGS) -D_GNU_SOURCE $(CHECK_CFLAGS) $(SANITIZE_CFLAGS)
plugins_redis_session_test_cookie_san_LDFLAGS = -fsanitize=address,undefined
plugins_redis_session_test_cookie_san_LDADD = $(CHECK_LIBS)
endif
endif
endif
# The Python side (Session mapping, Flask SessionInterface) is installed by
# the python plugin with its pylib; shipped in the tarball from here too.
EXTRA_DIST += plugins/redis_session/README.md
