#!/bin/sh
# tykky.pyz is this POSIX sh preamble followed by a Python zip archive (sh reads from the top,
# Python's zipimport from the end). It picks an interpreter and runs the archive with it:
#   1. the interpreter pinned when the archive was built, if it exists here;
#   2. else $TYKKY_PYTHON;
#   3. else the newest python3.X (3.@MINIMUM_MINOR@ or newer) on PATH and in /usr/bin, never from a
#      pyenv-style shims directory (each call through a shim costs ~60 ms);
#   4. else a python3 there that reports a recent enough version.
# -E -s -S (what -I does, but any Python accepts it, so a too old one can say so): the caller's
# PYTHONPATH, PYTHONHOME and user or system site-packages never reach tykky.
# Runs before every command: no external programs on the common path.
_tykky_pinned='@PINNED_PYTHON@'
_tykky_minimum=@MINIMUM_MINOR@
_tykky_system_dirs=/usr/bin

_tykky_python= _tykky_from= _tykky_found= _tykky_seen=: _tykky_best_minor=-1

_tykky_usable_dir() {
    case $1 in /*) ;; *) return 1 ;; esac  # empty or relative entries mean the current directory
    case ${1%/} in */shims) return 1 ;; esac
    case $_tykky_seen in *":$1:"*) return 1 ;; esac
    _tykky_seen="$_tykky_seen$1:"
}

_tykky_scan_versioned() {
    for _tykky_candidate in "$1"/python3.[0-9]*; do
        _tykky_minor=${_tykky_candidate##*/python3.}
        case $_tykky_minor in '' | *[!0-9]*) continue ;; esac
        [ -f "$_tykky_candidate" ] && [ -x "$_tykky_candidate" ] || continue
        _tykky_found="$_tykky_found $_tykky_candidate"
        if [ "$_tykky_minor" -ge "$_tykky_minimum" ] && [ "$_tykky_minor" -gt "$_tykky_best_minor" ]; then
            _tykky_python=$_tykky_candidate _tykky_best_minor=$_tykky_minor
        fi
    done
}

_tykky_scan_unversioned() {
    _tykky_candidate=$1/python3
    [ -z "$_tykky_python" ] && [ -f "$_tykky_candidate" ] && [ -x "$_tykky_candidate" ] || return 0
    _tykky_found="$_tykky_found $_tykky_candidate"
    if "$_tykky_candidate" -I -S -c "import sys; sys.exit(sys.version_info[:2] < (3, $_tykky_minimum))" \
            >/dev/null 2>&1; then
        _tykky_python=$_tykky_candidate
    fi
}

_tykky_search() {  # $1: the scan function, run on every usable directory of PATH and the system
    _tykky_seen=: _tykky_rest=${PATH-}:$_tykky_system_dirs
    while :; do
        _tykky_dir=${_tykky_rest%%:*}
        _tykky_usable_dir "$_tykky_dir" && "$1" "${_tykky_dir%/}"
        case $_tykky_rest in *:*) _tykky_rest=${_tykky_rest#*:} ;; *) break ;; esac
    done
}

if [ -n "$_tykky_pinned" ] && [ -f "$_tykky_pinned" ] && [ -x "$_tykky_pinned" ]; then
    _tykky_python=$_tykky_pinned _tykky_from=pinned
elif [ -n "${TYKKY_PYTHON-}" ]; then
    if [ ! -f "$TYKKY_PYTHON" ] || [ ! -x "$TYKKY_PYTHON" ]; then
        echo "tykky: TYKKY_PYTHON=$TYKKY_PYTHON is not an executable file. Point it at a Python" \
            "3.$_tykky_minimum or newer (an absolute path), or unset it to let tykky search." >&2
        exit 1
    fi
    _tykky_python=$TYKKY_PYTHON _tykky_from=TYKKY_PYTHON
else
    _tykky_search _tykky_scan_versioned
    [ -n "$_tykky_python" ] || _tykky_search _tykky_scan_unversioned
    _tykky_from=search
fi
if [ -z "$_tykky_python" ]; then
    echo "tykky: no Python 3.$_tykky_minimum or newer found on PATH or in $_tykky_system_dirs" \
        "(found:${_tykky_found:- none}; shims directories are skipped). Load a newer Python" \
        "(for example with 'module load python') or set TYKKY_PYTHON to one, then run it again." >&2
    exit 1
fi
_TYKKY_PYTHON_FROM=$_tykky_from
export _TYKKY_PYTHON_FROM
exec "$_tykky_python" -E -s -S "$0" "$@"
exit 1
