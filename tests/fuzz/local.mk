# tests/fuzz: libFuzzer harnesses.  They need clang's -fsanitize=fuzzer, so
# they are built outside the normal build, only by these targets:
#
#   make fuzz-smoke                  every harness, FUZZ_SECONDS each (30)
#   make fuzz FUZZ_SECONDS=1800      the same, longer (default 600 s each)
#   make fuzz FUZZ_ONLY=http         one harness (fuzz_http)
#
# tests/fuzz/run-fuzz.sh copies each harness's checked-in corpus
# (tests/fuzz/corpus/<name>/) to tests/fuzz/run/<name>/ in the BUILD tree,
# so the source tree is never written; libFuzzer first replays every seed
# (the regression inputs of past crashes are seeds too), then mutates.  Any
# crash, leak, UBSan report, timeout or failed harness invariant fails the
# target; the input that did it is left in tests/fuzz/run/<name>/ and its
# path printed: fix the bug, then copy the input into the corpus.  Each
# harness prints its execution count.

FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer -D_GNU_SOURCE

FUZZ_HTTP_DEPS = $(srcdir)/plugins/http/http_parser.c \
	$(srcdir)/plugins/http/http_parser.h $(srcdir)/tests/fuzz/fuzz_check.h
FUZZ_INI_SRCS = $(srcdir)/ini/config.c $(srcdir)/ini/blocks.c \
	$(srcdir)/ini/expand.c $(srcdir)/ini/ini_reader.c \
	$(srcdir)/ini/yaml_reader.c

FUZZ_HARNESSES = tests/fuzz/fuzz_http tests/fuzz/fuzz_chunked tests/fuzz/fuzz_ini

tests/fuzz/fuzz_http: $(srcdir)/tests/fuzz/fuzz_http.c $(FUZZ_HTTP_DEPS)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) -I$(srcdir)/plugins/http \
		-o $@ $(srcdir)/tests/fuzz/fuzz_http.c $(srcdir)/plugins/http/http_parser.c

tests/fuzz/fuzz_chunked: $(srcdir)/tests/fuzz/fuzz_chunked.c $(FUZZ_HTTP_DEPS)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) -I$(srcdir)/plugins/http \
		-o $@ $(srcdir)/tests/fuzz/fuzz_chunked.c $(srcdir)/plugins/http/http_parser.c

tests/fuzz/fuzz_ini: $(srcdir)/tests/fuzz/fuzz_ini.c $(FUZZ_INI_SRCS) \
		$(srcdir)/ini/cfg.h $(srcdir)/ini/cfg_internal.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) -I$(srcdir)/ini $(INIH_CFLAGS) $(YAML_CFLAGS) \
		-o $@ $(srcdir)/tests/fuzz/fuzz_ini.c $(FUZZ_INI_SRCS) $(INIH_LIBS) $(YAML_LIBS)

# ---- route rules (plugins/route/rules.c) ----------------------------------
# The route plugin and its harness (tests/fuzz/fuzz_route.c) come from the
# `route` branch.  The harness is wired here already and switches itself on
# when both files are in the tree and the plugin is configured (PCRE2
# found): nothing to change in this file when route is merged.
FUZZ_ROUTE_SRC = $(wildcard $(srcdir)/tests/fuzz/fuzz_route.c)
FUZZ_ROUTE_RULES = $(wildcard $(srcdir)/plugins/route/rules.c)
if BUILD_PLUGIN_ROUTE
FUZZ_HARNESSES += $(if $(and $(FUZZ_ROUTE_SRC),$(FUZZ_ROUTE_RULES)),tests/fuzz/fuzz_route)
endif

tests/fuzz/fuzz_route: $(FUZZ_ROUTE_SRC) $(FUZZ_ROUTE_RULES) $(wildcard $(srcdir)/plugins/route/rules.h)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) -I$(srcdir)/plugins/route $(ROUTE_DEPS_CFLAGS) \
		-o $@ $(FUZZ_ROUTE_SRC) $(FUZZ_ROUTE_RULES) $(ROUTE_DEPS_LIBS) -lcrypt
# ---------------------------------------------------------------------------

FUZZ_RUN = $(SHELL) $(srcdir)/tests/fuzz/run-fuzz.sh
FUZZ_SELECTED = $(if $(FUZZ_ONLY),$(filter %/fuzz_$(FUZZ_ONLY),$(FUZZ_HARNESSES)),$(FUZZ_HARNESSES))

if HAVE_CLANG
fuzz-build: $(FUZZ_SELECTED)

fuzz-smoke: fuzz-build
	$(FUZZ_RUN) $(if $(FUZZ_SECONDS),$(FUZZ_SECONDS),30) $(srcdir) $(FUZZ_SELECTED)

fuzz: fuzz-build
	$(FUZZ_RUN) $(if $(FUZZ_SECONDS),$(FUZZ_SECONDS),600) $(srcdir) $(FUZZ_SELECTED)
else
fuzz-build fuzz-smoke fuzz:
	@echo "ERROR: make $@ needs clang with libFuzzer, and configure found none." >&2
	@echo "ERROR: install it (apt-get install clang) and run configure again." >&2
	@exit 1
endif
.PHONY: fuzz-build fuzz-smoke fuzz

clean-local: clean-fuzz
clean-fuzz:
	rm -rf tests/fuzz/run
	rm -f tests/fuzz/fuzz_http tests/fuzz/fuzz_chunked tests/fuzz/fuzz_ini tests/fuzz/fuzz_route
.PHONY: clean-fuzz

EXTRA_DIST += tests/fuzz/run-fuzz.sh tests/fuzz/fuzz_check.h \
	tests/fuzz/fuzz_http.c tests/fuzz/fuzz_chunked.c \
	tests/fuzz/fuzz_ini.c tests/fuzz/fuzz_ini.dict \
	tests/fuzz/corpus \
	$(patsubst $(srcdir)/%,%,$(FUZZ_ROUTE_SRC))
