#!/bin/bash
# Runs inside the build container: creates (or reuses) the venv and installs into it.
# Inputs come as TYKKY_* variables set by the builder.
set -euo pipefail
# Which step failed is said in one line the builder shows (a script's own output may not say).
phase="creating the virtual environment"
trap 'status=$?; [ "$status" -eq 0 ] || echo "ERROR: $phase failed (exit code $status)"' EXIT

venv=$TYKKY_VENV
if [ ! -x "$venv/bin/python" ]; then
    echo "[ INFO ] Creating the virtual environment with $TYKKY_PYTHON"
    site_flag=()
    [ "${TYKKY_SYSTEM_SITE_PACKAGES:-no}" = yes ] && site_flag=(--system-site-packages)
    "$TYKKY_PYTHON" -m venv "${site_flag[@]}" "$venv"
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
# --uv: the pre- and post-install commands can call uv too (it is not part of the installation).
if [ -n "${TYKKY_UV:-}" ]; then PATH="${TYKKY_UV%/*}:$PATH"; fi
cd "$TYKKY_WORKDIR"

if [ -n "${TYKKY_PRE_INSTALL:-}" ]; then
    echo "[ INFO ] Running the pre-install commands"
    phase="the pre-install commands"
    # shellcheck disable=SC1090
    source "$TYKKY_PRE_INSTALL"
fi

if [ -n "${TYKKY_REQUIREMENTS:-}" ]; then
    echo "[ INFO ] Installing the requirements"
    phase="installing the requirements"
    if [ -n "${TYKKY_UV:-}" ]; then
        cache=()
        [ "${TYKKY_NO_CACHE:-no}" = yes ] && cache=(--no-cache)
        "$TYKKY_UV" pip install "${cache[@]}" --python "$venv/bin/python" --compile-bytecode -r "$TYKKY_REQUIREMENTS"
    else
        cache=()
        [ "${TYKKY_NO_CACHE:-no}" = yes ] && cache=(--no-cache-dir)
        python -m pip install "${cache[@]}" --disable-pip-version-check -r "$TYKKY_REQUIREMENTS"
    fi
fi

if [ -n "${TYKKY_POST_INSTALL:-}" ]; then
    echo "[ INFO ] Running the post-install commands"
    phase="the post-install commands"
    cd "$TYKKY_WORKDIR"
    # shellcheck disable=SC1090
    source "$TYKKY_POST_INSTALL"
fi
