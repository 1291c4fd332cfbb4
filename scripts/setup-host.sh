#!/usr/bin/env bash
# Prepares a Debian 12 machine for building and testing tykky: Apptainer (which Debian 12 does
# not package), squashfs tools, a non-root test user, the cached base image and a Python 3.6 that
# both users can run (the oldest tykky runs on). Idempotent: every step checks whether its result
# is already there. Run as root.
set -euo pipefail

CACHE_DIR=${TYKKY_CI_DIR:-/opt/tykky-ci}
GLIBC_DIR="$CACHE_DIR/glibc"
IMAGE_DIR="$CACHE_DIR/images"
TEST_USER=${TYKKY_TEST_USER:-tykkytest}
PYTHON36_DIR="$CACHE_DIR/python3.6"
ARCH_TRIPLET=x86_64-linux-gnu

log() { printf '[setup-host] %s\n' "$*" >&2; }

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

apptainer_works() {
    command -v apptainer >/dev/null 2>&1 && apptainer --version >/dev/null 2>&1
}

download_apptainer_debs() {
    local workdir=$1 mirror
    mirror=$(debian_mirror)
    local extra=/etc/apt/sources.list.d/tykky-extra.sources pin=/etc/apt/preferences.d/tykky-extra
    cat > "$extra" <<SRC
Types: deb
URIs: $mirror
Suites: trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat > "$pin" <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 1

Package: *
Pin: release n=sid
Pin-Priority: 1
PIN
    local status=0
    chmod 755 "$workdir"
    apt-get update -qq && (cd "$workdir" && apt-get download -qq apptainer/sid libc6/trixie) || status=$?
    rm -f "$extra" "$pin"
    apt-get update -qq
    apt_updated=1
    return "$status"
}

install_apptainer() {
    apt_install libseccomp2 libsqlite3-0 patchelf ca-certificates
    local workdir
    workdir=$(mktemp -d)
    download_apptainer_debs "$workdir"
    mkdir -p "$workdir/apptainer" "$workdir/libc"
    dpkg -x "$workdir"/apptainer_*.deb "$workdir/apptainer"
    dpkg -x "$workdir"/libc6_*.deb "$workdir/libc"
    # Apptainer from sid needs a newer glibc than bookworm's: give it a private one.
    mkdir -p "$GLIBC_DIR"
    cp -a "$workdir/libc/usr/lib/$ARCH_TRIPLET/." "$GLIBC_DIR/"
    cp -a /usr/lib/$ARCH_TRIPLET/libseccomp.so.2* /usr/lib/$ARCH_TRIPLET/libsqlite3.so.0* "$GLIBC_DIR/"
    mkdir -p /etc/apptainer /usr/lib/$ARCH_TRIPLET/apptainer /var/lib/apptainer/mnt/session
    cp -a "$workdir/apptainer/etc/apptainer/." /etc/apptainer/
    cp -a "$workdir/apptainer/usr/lib/$ARCH_TRIPLET/apptainer/." /usr/lib/$ARCH_TRIPLET/apptainer/
    cp -a "$workdir/apptainer/usr/bin/apptainer" /usr/bin/apptainer
    # --force-rpath: apptainer sets LD_LIBRARY_PATH for its children, RUNPATH would lose to it.
    for binary in /usr/bin/apptainer /usr/lib/$ARCH_TRIPLET/apptainer/bin/starter; do
        patchelf --set-interpreter "$GLIBC_DIR/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$GLIBC_DIR" "$binary"
    done
    rm -rf "$workdir"
}

configure_apptainer() {
    local conf=/etc/apptainer/apptainer.conf
    # Root in these VMs lacks CAP_SYS_RESOURCE, which the default capability set asks for.
    if grep -q '^root default capabilities = full' "$conf"; then
        sed -i 's/^root default capabilities = full/root default capabilities = no/' "$conf"
    fi
}

ensure_test_user() {
    id "$TEST_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$TEST_USER"
    # Unprivileged squashfuse mounts need /dev/fuse; subuid ranges are for --fakeroot.
    [ -e /dev/fuse ] && chmod 666 /dev/fuse
    grep -q "^$TEST_USER:" /etc/subuid || usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$TEST_USER"
}

provide_python36() {
    # The oldest Python tykky runs on, for its tests as root and as the test user. This machine
    # image has pyenv's build in root's private home (its libpython found by an absolute RUNPATH
    # there): copied where both users can run it, its libpython found next to it.
    local python="$PYTHON36_DIR/bin/python3.6" source
    [ -x "$python" ] && "$python" -c 'import ssl, ctypes, venv' 2>/dev/null && return 0
    source=$(find "${PYENV_ROOT:-/root/.pyenv}/versions" -maxdepth 1 -name '3.6.*' 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$source" ]; then
        log "no Python 3.6 to copy (pyenv's ${PYENV_ROOT:-/root/.pyenv}/versions/3.6.*): the Python 3.6 tests will fail"
        return 0
    fi
    log "copying $source to $PYTHON36_DIR"
    rm -rf "$PYTHON36_DIR.tmp"
    cp -a "$source" "$PYTHON36_DIR.tmp"
    rm -rf "$PYTHON36_DIR.tmp"/lib/python3.6/{test,idlelib,tkinter,turtledemo,lib2to3/tests}
    patchelf --set-rpath '$ORIGIN/../lib' "$PYTHON36_DIR.tmp/bin/python3.6"
    chmod -R a+rX,go-w "$PYTHON36_DIR.tmp"
    rm -rf "$PYTHON36_DIR"
    mv "$PYTHON36_DIR.tmp" "$PYTHON36_DIR"
    "$python" -c 'import ssl, ctypes, venv'
}

main() {
    [ "$(id -u)" -eq 0 ] || { log "run as root"; exit 1; }
    apt_install squashfs-tools squashfuse fuse2fs uidmap patchelf debootstrap python3-venv python3-pip hyperfine git
    # Module files are tested by loading them with Lmod; the shell functions in zsh too.
    apt_install lmod zsh
    # The wrap-install tests compile a small program and library into the tree they wrap.
    apt_install gcc libc6-dev
    apptainer_works || install_apptainer
    configure_apptainer
    apptainer --version >&2
    ensure_test_user
    build_debian_image base python3,python3-venv,python3-pip,ca-certificates
    provide_python36
    log "ready: $(apptainer --version), base image $IMAGE_DIR/base.sif"
}

main "$@"
