# Unit tests (Check).  Every test program is built twice: against the plain
# core library and against the ASan/UBSan one (suffix _san); `make check`
# runs both.  Each area adds its programs through WHARF_UNIT_TESTS in its
# own fragment below.
if HAVE_CHECK
UNIT_CC_FLAGS = $(WHARF_CORE_CFLAGS) $(CHECK_CFLAGS) -DWHARF_TEST_SRCDIR='"$(abs_top_srcdir)"' -DWHARF_TEST_BUILDDIR='"$(abs_top_builddir)"'
UNIT_LIBS = libwharfcore.a $(WHARF_CORE_LIBS) $(CHECK_LIBS)
UNIT_SAN_LIBS = libwharfcore_san.a $(WHARF_CORE_LIBS) $(CHECK_LIBS)
UNIT_LD_FLAGS = -rdynamic -pthread
endif

include tests/unit/core.mk
include tests/unit/ini.mk
include tests/unit/static.mk
include tests/unit/route.mk
include tests/unit/http.mk
