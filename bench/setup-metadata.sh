#!/bin/bash
# Once, as root, before bench/metadata.py: fusermount3 (Debian's fuse3; libfuse3 alone cannot
# mount as an unprivileged user), allow_other for users (the runtime's and the container's
# processes read the stand-in's mount), and the bench's Python dependencies in the repository's
# .venv (created if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[setup-metadata] $*"; }
. scripts/lib.sh
apt_install fuse3
grep -qx user_allow_other /etc/fuse.conf || echo user_allow_other >> /etc/fuse.conf
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test,bench]'
log "ready: .venv/bin/python bench/metadata.py --help"
