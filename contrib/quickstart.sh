#!/bin/sh
# wharf quick start on Debian 12.  Run from the repository root, as root (or
# with sudo available):
#   contrib/quickstart.sh serve   install dependencies, build, serve the example Flask app on :8000
#   contrib/quickstart.sh test    install dependencies, build, run every test (also under ASan/UBSan)
#   contrib/quickstart.sh deps|build   just that step
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc 2>/dev/null || echo 2)

# Everything comes from Debian: build tools, the libraries the plugins link,
# the interpreter the python plugin embeds (Debian's /usr/bin/python3), and
# the real servers the integration tests start (PostgreSQL, Redis, nginx).
BUILD_DEPS="build-essential autoconf automake pkg-config git ca-certificates
  libinih-dev libyaml-dev libpq-dev libhiredis-dev libpcre2-dev libjemalloc-dev
  python3.11-dev check clang media-types"
RUN_DEPS="python3 python3-flask python3-alembic python3-flask-migrate python3-psycopg2
  python3-sqlalchemy python3-redis curl"
# libclang-rt-14-dev: libFuzzer and clang's sanitizer runtimes for the fuzz run
# (clang installed without recommends does not bring them)
TEST_DEPS="python3-pytest python3-requests python3-prometheus-client postgresql redis-server nginx-light procps
  libclang-rt-14-dev
  curl netcat-openbsd yamllint systemd docker-compose"

PLUGINS="--enable-http --enable-python --enable-harakiri --enable-static --enable-route
  --enable-healthz --enable-migrate --enable-redis_session"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

deps() {
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    # shellcheck disable=SC2086
    as_root apt-get install -y -q --no-install-recommends $BUILD_DEPS $RUN_DEPS ${1:-}
}

# Builds live outside the source tree (_build, _build-sanitizers) so that
# the plain and the sanitized build can sit side by side.
build() {
    [ -x configure ] || autoreconf -fi
    mkdir -p _build
    # every plugin asked for by name: a missing library stops the build
    # here instead of leaving a plugin out
    [ -f _build/Makefile ] || (cd _build && ../configure --enable-werror $PLUGINS)
    make -C _build -j"$JOBS"
}

# Each step of `test` says how long it took (CI has a time limit).
step() {
    echo "quickstart: $1 done in $(( $(date +%s) - step_start )) s"
    step_start=$(date +%s)
}

case "${1:-}" in
deps)
    deps "$TEST_DEPS"
    ;;
build)
    build
    ;;
serve)
    deps
    build
    echo
    echo "Serving contrib/examples/flaskapp on http://127.0.0.1:8000/ (Ctrl-C stops)"
    echo "  try: curl http://127.0.0.1:8000/api/hello"
    echo
    exec env WHARF_PLUGINS_DIR="$ROOT/_build/plugins" _build/wharf --ini contrib/examples/flaskapp/uwsgi.ini
    ;;
test)
    deps "$TEST_DEPS"
    start=$(date +%s)
    step_start=$start
    build
    step "build"
    # 1. unit tests (plain and under ASan/UBSan) + integration tests
    make -C _build -j"$JOBS" check
    step "make check"
    # 2. the whole suite again with the server itself built with ASan/UBSan
    rm -rf _build-sanitizers
    mkdir _build-sanitizers
    (cd _build-sanitizers && ../configure --enable-werror --enable-sanitizers $PLUGINS >/dev/null &&
        make -j"$JOBS" >/dev/null && make -j"$JOBS" check)
    step "sanitizer build + make check"
    # 3. a short run of every fuzzer
    make -C _build fuzz-smoke
    step "fuzz-smoke"
    echo "quickstart: all tests passed in $(( $(date +%s) - start )) s"
    ;;
*)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
