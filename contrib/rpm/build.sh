#!/bin/sh
# Build the wharf RPMs from the `make dist` tarball of the repository's HEAD
# commit (uncommitted changes are not included):
#     contrib/rpm/build.sh [OUTDIR]        (default: _build-rpm/)
# Works on Fedora/RHEL and on Debian with Debian's `rpm` package.  On a
# non-RPM system the BuildRequires (Fedora package names) cannot be checked
# against an RPM database, so the build runs with --nodeps there, and without
# debuginfo subpackages (Debian lacks Fedora's debuginfo tooling).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/_build-rpm}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac

VERSION=$(sed -n 's/^AC_INIT(\[wharf\], \[\([^]]*\)\].*/\1/p' "$ROOT/configure.ac")
SPECVERSION=$(sed -n 's/^Version:[[:space:]]*//p' "$ROOT/contrib/rpm/wharf.spec")
if [ "$VERSION" != "$SPECVERSION" ]; then
    echo "build.sh: configure.ac says $VERSION but wharf.spec says $SPECVERSION" >&2
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wharf-rpm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/export" "$WORK/rpmbuild/SOURCES" "$WORK/rpmbuild/SPECS"
git -C "$ROOT" archive --format=tar HEAD | tar -x -C "$WORK/export"
(cd "$WORK/export" && autoreconf -fi >/dev/null 2>&1 && ./configure >/dev/null && make dist >/dev/null)
cp "$WORK/export/wharf-$VERSION.tar.xz" "$WORK/rpmbuild/SOURCES/"
cp "$WORK/export/contrib/rpm/wharf.spec" "$WORK/rpmbuild/SPECS/"

# A plugin whose sources are not in this tree yet is left out (--without).
WITHOUT=
for p in static route python migrate redis_session; do
    if ! grep -q "plugin_PROGRAMS += plugins/${p}_plugin.so" "$WORK/export/plugins/$p/local.mk" 2>/dev/null; then
        echo "build.sh: the $p plugin is not in this tree: building without it (--without $p)"
        WITHOUT="$WITHOUT --without $p"
    fi
done

EXTRA=
if ! rpm -q rpm >/dev/null 2>&1; then
    echo "build.sh: no RPM database here: --nodeps (BuildRequires not checked), no debuginfo"
    EXTRA="--nodeps"
    set -- --define "debug_package %{nil}"
else
    set --
fi
# shellcheck disable=SC2086
rpmbuild -bb $EXTRA $WITHOUT "$@" \
    --define "_topdir $WORK/rpmbuild" \
    "$WORK/rpmbuild/SPECS/wharf.spec"

mkdir -p "$OUT"
rm -f "$OUT"/*.rpm
find "$WORK/rpmbuild/RPMS" -name '*.rpm' -exec cp {} "$OUT"/ \;
for r in "$OUT"/*.rpm; do
    echo "== $(basename "$r")"
    rpm -qp --provides "$r" | grep -i 'wharf(abi)' | sed 's/^/   provides /' || true
    rpm -qp --requires "$r" | grep -i 'wharf(abi)' | sed 's/^/   requires /' || true
    rpm -qpl "$r" | sed 's/^/   /'
done
if command -v rpmlint >/dev/null 2>&1; then
    rpmlint "$OUT"/*.rpm || true
fi
