#!/bin/sh
# Runs inside the container once per build: reports the container's own environment and the
# programs under the paths to wrap, so the build lists the container once, not once per file.
# Usage: probe.sh WRAP_ALL PATH...   (WRAP_ALL is yes or no)
# With TYKKY_INFO_PYTHON set, also runs TYKKY_INFO_SCRIPT (python_info.py) with that Python
# (or the first runnable one of a colon-separated list).
# Output lines (tab-separated): ENV name value | SHELL path | TARGET path | MISSING path |
# LIBDIR path | PYTHON json
wrap_all=$1
shift
printf 'ENV\tPATH\t%s\n' "${PATH:-}"
printf 'ENV\tLD_LIBRARY_PATH\t%s\n' "${LD_LIBRARY_PATH:-}"
for shell in /bin/bash /usr/bin/bash /bin/sh; do
    if [ -x "$shell" ]; then printf 'SHELL\t%s\n' "$shell"; break; fi
done
for wrap_path in "$@"; do
    if [ -d "$wrap_path" ]; then
        for entry in "$wrap_path"/* "$wrap_path"/.[!.]*; do
            [ -e "$entry" ] || [ -L "$entry" ] || continue
            [ -d "$entry" ] && continue
            if [ "$wrap_all" = yes ] || [ -x "$entry" ]; then
                printf 'TARGET\t%s\n' "$entry"
            fi
        done
        parent=$(dirname "$wrap_path")
        for lib in "$parent/lib" "$parent/lib64"; do
            # Only directories that hold shared libraries: every entry costs each library load.
            if [ -d "$lib" ] && ls "$lib"/*.so* >/dev/null 2>&1; then printf 'LIBDIR\t%s\n' "$lib"; fi
        done
    elif [ -e "$wrap_path" ]; then
        printf 'TARGET\t%s\n' "$wrap_path"
    else
        printf 'MISSING\t%s\n' "$wrap_path"
    fi
done
if [ -n "${TYKKY_INFO_PYTHON:-}" ]; then
    # A colon-separated list of candidates (wrap modes guess): the first one that runs.
    saved_ifs=$IFS
    IFS=:
    for info_python in $TYKKY_INFO_PYTHON; do
        if [ -x "$info_python" ] && info=$("$info_python" -I -c "$TYKKY_INFO_SCRIPT" 2>/dev/null); then
            printf 'PYTHON\t%s\n' "$info"
            break
        fi
    done
    IFS=$saved_ifs
fi
exit 0
