#!/usr/bin/env bash
# Builds, once, the CPython that the conda-mode tests package as their channel's `python`:
# plain upstream CPython (the original tarball of Debian's python3.X source package, without
# Debian's patches, so site-packages is where conda packages put it) with a prefix-relative
# rpath, so it runs from whatever prefix a conda install puts it in. Idempotent: a finished
# build is kept in $TYKKY_CI_DIR/cpython and reused. Run as root; takes a few minutes once.
set -euo pipefail

CACHE_DIR=${TYKKY_CI_DIR:-/opt/tykky-ci}
SOURCE_PACKAGE=${TYKKY_TEST_PYTHON_PACKAGE:-python3.11}
# The build prefix is recorded in text files (sysconfig data, python-config), which the test
# package declares as prefix placeholders: a long, unmistakable path, as conda-build uses.
BUILD_PREFIX="$CACHE_DIR/cpython/placeholder_placeholder_placeholder_placeholder"
DONE_MARK="$BUILD_PREFIX/.tykky-complete"

log() { printf '[build-test-python] %s\n' "$*" >&2; }

[ -f "$DONE_MARK" ] && { log "already built: $BUILD_PREFIX"; exit 0; }
[ "$(id -u)" -eq 0 ] || { log "run as root"; exit 1; }

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

fetch_source() {
    local workdir=$1 mirror list
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
    list=/etc/apt/sources.list.d/tykky-src.sources
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" > "$list"
    local status=0
    apt-get update -qq && (cd "$workdir" && apt-get source --download-only -qq "$SOURCE_PACKAGE") || status=$?
    rm -f "$list"
    apt-get update -qq
    return "$status"
}

install_build_deps() {
    local missing=()
    for pkg in gcc make binutils libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

slim() {
    # Only what the tests use: a small package keeps the channel and every test build fast.
    local prefix=$1
    rm -rf "$prefix"/lib/python3.*/{test,idlelib,tkinter,turtledemo,lib2to3,pydoc_data} \
        "$prefix"/lib/python3.*/config-*/*.a "$prefix/share" "$prefix"/bin/idle3* "$prefix"/bin/2to3*
    find "$prefix" -name __pycache__ -type d -prune -exec rm -rf {} +
    find "$prefix" -type f \( -name '*.so*' -o -path '*/bin/python3.*' \) ! -name '*-config' \
        -exec strip --strip-debug {} + 2>/dev/null || true
}

main() {
    install_build_deps
    # global: the EXIT trap runs after main returns
    workdir=$(mktemp -d)
    trap 'rm -rf "$workdir"' EXIT
    chmod 755 "$workdir"
    log "fetching the $SOURCE_PACKAGE source package"
    fetch_source "$workdir"
    tar -C "$workdir" -xf "$workdir"/"${SOURCE_PACKAGE}"_*.orig.tar.*
    local src
    src=$(find "$workdir" -maxdepth 1 -type d -name 'Python-*' | head -n 1)
    rm -rf "$BUILD_PREFIX"
    log "building $(basename "$src") (a few minutes, once)"
    (
        cd "$src"
        # \$ORIGIN/../lib: the interpreter finds libpython next to it in any prefix.
        ./configure --prefix="$BUILD_PREFIX" --enable-shared --without-ensurepip \
            LDFLAGS="-Wl,-rpath,'\$\$ORIGIN/../lib'" >/dev/null
        make -j"$(nproc)" >/dev/null 2>"$workdir/make.log" || { tail -n 40 "$workdir/make.log" >&2; exit 1; }
        make install >/dev/null 2>&1
    )
    slim "$BUILD_PREFIX"
    "$BUILD_PREFIX/bin/python3" -c 'import ssl, zlib, ctypes, venv' || { log "the build lacks a module"; exit 1; }
    touch "$DONE_MARK"
    chmod -R a+rX "$CACHE_DIR/cpython"
    log "ready: $BUILD_PREFIX"
}

main "$@"
