#!/bin/sh
# Build the wharf .debs from a clean export of the repository's HEAD commit
# (uncommitted changes are not included):
#     contrib/debian/build.sh [OUTDIR]        (default: _build-deb/)
# Copies contrib/debian/ to debian/ in the export, runs
# `dpkg-buildpackage -us -uc -b`, then lintian when installed.
# Needs: dpkg-dev, debhelper, and the Build-Depends of contrib/debian/control
# (contrib/quickstart.sh deps installs them).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/_build-deb}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac

VERSION=$(sed -n 's/^AC_INIT(\[wharf\], \[\([^]]*\)\].*/\1/p' "$ROOT/configure.ac")
DEBVERSION=$(dpkg-parsechangelog -l "$ROOT/contrib/debian/changelog" -S Version)
if [ "$VERSION" != "$DEBVERSION" ]; then
    echo "build.sh: configure.ac says $VERSION but contrib/debian/changelog says $DEBVERSION;" >&2
    echo "          add a changelog entry (dch -v $VERSION) first" >&2
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wharf-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SRC=$WORK/wharf-$VERSION
mkdir "$SRC"
git -C "$ROOT" archive --format=tar HEAD | tar -x -C "$SRC"
cp -r "$SRC/contrib/debian" "$SRC/debian"
rm -f "$SRC/debian/build.sh"

# A plugin whose sources are not in this tree yet (a branch before every
# plugin is merged) is left out with the build profile pkg.wharf.no<name>:
# configure gets --disable-<name>, its package (or its line of the core
# package) is skipped.  With every plugin present no profile is set and a
# missing library fails the build.
PROFILES=
for p in http harakiri healthz static route python migrate redis_session; do
    if ! grep -q "plugin_PROGRAMS += plugins/${p}_plugin.so" "$SRC/plugins/$p/local.mk" 2>/dev/null; then
        echo "build.sh: the $p plugin is not in this tree: building without it (profile pkg.wharf.no$p)"
        PROFILES="${PROFILES:+$PROFILES,}pkg.wharf.no$p"
    fi
done

cd "$SRC"
if [ -n "$PROFILES" ]; then
    dpkg-buildpackage -us -uc -b -P"$PROFILES"
else
    dpkg-buildpackage -us -uc -b
fi

mkdir -p "$OUT"
rm -f "$OUT"/*.deb "$OUT"/*.changes "$OUT"/*.buildinfo
cp "$WORK"/*.deb "$WORK"/*.changes "$WORK"/*.buildinfo "$OUT"/
echo "build.sh: packages in $OUT:"
ls -1 "$OUT"/*.deb

if command -v lintian >/dev/null 2>&1; then
    # lintian's exit status is 0 unless it found errors
    lintian --info --display-info "$OUT"/*.changes
fi
