#!/bin/sh
# Integration tests: the real wharf binary, real sockets, real PostgreSQL and
# Redis where a test needs them.  Always Debian's interpreter.
srcdir=${srcdir:-$(dirname "$0")/../..}
export WHARF_SRCDIR=$(cd "$srcdir" && pwd)
export WHARF_BUILDDIR=${WHARF_BUILDDIR:-$(pwd)}
exec /usr/bin/python3 -m pytest -p no:cacheprovider -q -ra "$WHARF_SRCDIR/tests/integration" ${PYTEST_ARGS}
