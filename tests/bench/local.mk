# tests/bench: the benchmark against uWSGI, gunicorn and nginx (`make bench`;
# not part of `make check`: it takes minutes and its numbers are not tests).
EXTRA_DIST += tests/bench/run.sh tests/bench/idle_conns.py tests/bench/RESULTS.md \
	tests/bench/apps/hello.py tests/bench/apps/flaskjson.py tests/bench/apps/upload.py \
	tests/integration/test_fastpaths.py tests/integration/apps/fastapp.py

bench: all
	WHARF_BUILDDIR='$(abs_top_builddir)' bash $(top_srcdir)/tests/bench/run.sh

.PHONY: bench
