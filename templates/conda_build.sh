#!/bin/bash
# Runs inside the build container for conda mode; the packages themselves are installed on the
# host by the solver, with their prefix already patched for $TYKKY_ENV.
# Usage: conda_build.sh pre      the pre-install commands (env active when it exists: updates)
#        conda_build.sh post     post-link scripts, pip section, -r, post-install, activation capture
#        conda_build.sh capture OUTER   (internal) activation diff, from the environment saved in OUTER
# Inputs come as TYKKY_* variables set by the builder.
set -euo pipefail

phase=$1
# The name Tykky's own build scripts give the environment: post-install scripts use it.
export env_root="${TYKKY_ENV:-}/"

source_quietly() {
    # Activation scripts are written for interactive shells: no -e, no -u while they run.
    set +eu
    # shellcheck disable=SC1090
    . "$1"
    set -eu
}

activate() {
    activate_standard
    run_activate_scripts
}

activate_standard() {
    export CONDA_PREFIX="$TYKKY_ENV" CONDA_DEFAULT_ENV="$TYKKY_ENV_NAME" CONDA_SHLVL=1
    export CONDA_PROMPT_MODIFIER="($TYKKY_ENV_NAME) "
    local path_head="$TYKKY_ENV/bin"
    if [ -n "${TYKKY_CONDA_BASE:-}" ]; then
        export CONDA_EXE="$TYKKY_CONDA_BASE/bin/conda" MAMBA_EXE="$TYKKY_CONDA_BASE/bin/mamba"
        export MAMBA_ROOT_PREFIX="$TYKKY_CONDA_BASE" CONDA_ROOT_PREFIX="$TYKKY_CONDA_BASE"
        path_head="$path_head:$TYKKY_CONDA_BASE/bin"
    fi
    export PATH="$path_head:$PATH"
    if [ -n "${TYKKY_ENV_VARIABLES:-}" ] && [ -f "$TYKKY_ENV_VARIABLES" ]; then
        source_quietly "$TYKKY_ENV_VARIABLES"
    fi
}

run_activate_scripts() {
    local script
    for script in "$TYKKY_ENV"/etc/conda/activate.d/*.sh; do
        [ -f "$script" ] && source_quietly "$script"
    done
    return 0
}

pip_install() {
    # pip_install REQUIREMENTS_FILE: pip (or uv with --uv) of the active environment.
    local cache=()
    if [ -n "${TYKKY_UV:-}" ]; then
        [ "${TYKKY_NO_CACHE:-no}" = yes ] && cache=(--no-cache)
        "$TYKKY_UV" pip install "${cache[@]}" --python "$TYKKY_ENV/bin/python" -r "$1"
    else
        [ "${TYKKY_NO_CACHE:-no}" = yes ] && cache=(--no-cache-dir)
        "$TYKKY_ENV/bin/python" -m pip install "${cache[@]}" --disable-pip-version-check -r "$1"
    fi
}

run_post_link_scripts() {
    # conda runs these after linking; the host-side installer leaves them to the container.
    local name script
    for name in ${TYKKY_NEW_PACKAGES:-}; do
        script="$TYKKY_ENV/bin/.$name-post-link.sh"
        [ -f "$script" ] || continue
        echo "[ INFO ] Running the post-link script of $name"
        PREFIX="$TYKKY_ENV" PKG_NAME="$name" ROOT_PREFIX="${TYKKY_CONDA_BASE:-$TYKKY_ENV}" /bin/bash "$script"
    done
    if [ -f "$TYKKY_ENV/.messages.txt" ]; then cat "$TYKKY_ENV/.messages.txt"; rm -f "$TYKKY_ENV/.messages.txt"; fi
}

capture() {
    # Called through `env -i`: restore the environment the build started with, then activate.
    while IFS= read -r -d '' assignment; do
        export "${assignment?}" 2>/dev/null || true
    done < "$1"
    env -0 > "$TYKKY_OUT/before.env"
    activate_standard
    env -0 > "$TYKKY_OUT/standard.env"
    run_activate_scripts
    env -0 > "$TYKKY_OUT/after.env"
}

case "$phase" in
    pre)
        if [ -d "$TYKKY_ENV/conda-meta" ]; then activate; fi
        cd "$TYKKY_WORKDIR"
        echo "[ INFO ] Running the pre-install commands"
        # shellcheck disable=SC1090
        source "$TYKKY_PRE_INSTALL"
        ;;
    post)
        env -0 > "$TYKKY_OUT/outer.env"
        run_post_link_scripts
        activate
        if [ -n "${TYKKY_PIP_SECTION:-}" ]; then
            echo "[ INFO ] Installing the pip: section of the environment file"
            (cd "$TYKKY_ENV_FILE_DIR" && pip_install "$TYKKY_PIP_SECTION")
        fi
        if [ -n "${TYKKY_REQUIREMENTS:-}" ]; then
            echo "[ INFO ] Installing the requirements"
            (cd "$TYKKY_WORKDIR" && pip_install "$TYKKY_REQUIREMENTS")
        fi
        if [ -n "${TYKKY_POST_INSTALL:-}" ]; then
            echo "[ INFO ] Running the post-install commands"
            # --uv: the commands can call uv (outer.env, without it, is what activation is taken from).
            if [ -n "${TYKKY_UV:-}" ]; then PATH="${TYKKY_UV%/*}:$PATH"; fi
            cd "$TYKKY_WORKDIR"
            # shellcheck disable=SC1090
            source "$TYKKY_POST_INSTALL"
        fi
        env -i /bin/bash --noprofile --norc "$TYKKY_SCRIPT" capture "$TYKKY_OUT/outer.env"
        ;;
    capture)
        capture "$2"
        ;;
    *)
        echo "conda_build.sh: unknown phase $phase" >&2
        exit 2
        ;;
esac
