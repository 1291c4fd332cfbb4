# tykky shell functions: `tykky activate NAME|PATH` and `tykky deactivate` change the current
# shell; every other `tykky ...` goes to the tykky program. POSIX sh, and bash and zsh too: no
# arrays, no `local`, no unquoted expansions; helper variables are _tykky_* and unset after use.
#
# activate: NAME is looked up in TYKKY_PATH (colon-separated, default ~/.tykky) and in the
# current directory (which wins, with a warning, when both have it); anything with a slash is a
# path. Puts <prefix>/bin first on PATH, exports TYKKY_PREFIX and prefixes the prompt with
# "(name) " unless TYKKY_CHANGE_PS1=0. deactivate removes exactly that PATH entry and prefix.

_tykky_is_installation() {
    [ -f "$1/_tykky/manifest.json" ] && [ -d "$1/bin" ]
}

_tykky_physical() {  # CDPATH off: cd would print the directory it found through it
    CDPATH= cd -P -- "$1" >/dev/null 2>&1 && pwd -P
}

_tykky_same_directory() {
    [ "$(_tykky_physical "$1")" = "$(_tykky_physical "$2")" ]
}

_tykky_search_path() {  # $1: NAME; sets _tykky_found to the first TYKKY_PATH entry that has it
    _tykky_rest=${TYKKY_PATH:-$HOME/.tykky}
    while [ -n "$_tykky_rest" ]; do
        _tykky_dir=${_tykky_rest%%:*}
        case $_tykky_rest in *:*) _tykky_rest=${_tykky_rest#*:} ;; *) _tykky_rest= ;; esac
        if [ -n "$_tykky_dir" ] && _tykky_is_installation "$_tykky_dir/$1"; then
            _tykky_found=${_tykky_dir%/}/$1
            break
        fi
    done
    unset _tykky_rest _tykky_dir
}

_tykky_find() {  # $1: NAME or PATH; sets _tykky_found, or says why there is none
    _tykky_found=
    case $1 in
    */*)
        _tykky_is_installation "$1" && _tykky_found=$1 ;;
    *)
        _tykky_search_path "$1"
        if _tykky_is_installation "./$1"; then
            if [ -n "$_tykky_found" ] && ! _tykky_same_directory "$_tykky_found" "./$1"; then
                echo "tykky: WARNING: '$1' is both $_tykky_found (from TYKKY_PATH) and $PWD/$1;" \
                    "activating the one in the current directory." >&2
            fi
            _tykky_found=./$1
        fi ;;
    esac
    [ -n "$_tykky_found" ] && return 0
    case $1 in
    */*) echo "tykky: $1 is not a tykky installation (it has no _tykky/manifest.json)." >&2 ;;
    *) echo "tykky: no tykky installation named '$1' in TYKKY_PATH (${TYKKY_PATH:-$HOME/.tykky})" \
        "or in the current directory. Give its path, or add its parent directory to TYKKY_PATH." >&2 ;;
    esac
    return 1
}

_tykky_set_label() {  # the prompt prefix for TYKKY_PREFIX; prompt-active characters are avoided
    _tykky_label=${TYKKY_PREFIX##*/}
    case $_tykky_label in *[\\\$\`%!]* | '') _tykky_label=tykky ;; esac
    _tykky_label="($_tykky_label) "
}

_tykky_activate() {
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        echo "usage: tykky activate NAME|PATH" >&2
        return 2
    fi
    _tykky_find "$1" || return 1
    _tykky_prefix=$(_tykky_physical "$_tykky_found") || return 1
    unset _tykky_found
    [ -z "${TYKKY_PREFIX-}" ] || _tykky_deactivate
    TYKKY_PREFIX=$_tykky_prefix
    export TYKKY_PREFIX
    PATH=$TYKKY_PREFIX/bin${PATH:+:$PATH}
    export PATH
    unset _tykky_prefix
    if [ "${TYKKY_CHANGE_PS1-}" != 0 ] && [ -n "${PS1-}" ]; then
        _tykky_set_label
        PS1=$_tykky_label$PS1
        unset _tykky_label
    fi
    hash -r 2>/dev/null || true
}

_tykky_deactivate() {
    if [ -z "${TYKKY_PREFIX-}" ]; then
        echo "tykky: no installation is active." >&2
        return 1
    fi
    # Rebuild PATH without the first occurrence of our entry, keeping every other entry (empty
    # ones included) in order.
    _tykky_entry=$TYKKY_PREFIX/bin _tykky_rest=${PATH-} _tykky_path= _tykky_separator= _tykky_removed=
    while :; do
        _tykky_dir=${_tykky_rest%%:*}
        if [ -z "$_tykky_removed" ] && [ "$_tykky_dir" = "$_tykky_entry" ]; then
            _tykky_removed=1
        else
            _tykky_path=$_tykky_path$_tykky_separator$_tykky_dir _tykky_separator=:
        fi
        case $_tykky_rest in *:*) _tykky_rest=${_tykky_rest#*:} ;; *) break ;; esac
    done
    PATH=$_tykky_path
    export PATH
    _tykky_set_label
    case ${PS1-} in "$_tykky_label"*) PS1=${PS1#"$_tykky_label"} ;; esac
    unset TYKKY_PREFIX _tykky_entry _tykky_rest _tykky_path _tykky_separator _tykky_removed _tykky_dir \
        _tykky_label
    hash -r 2>/dev/null || true
}

tykky() {
    case ${1-} in
    activate) shift; _tykky_activate "$@" ;;
    deactivate) shift; _tykky_deactivate "$@" ;;
    *)
        if [ -n "${_tykky_program-}" ]; then
            "$_tykky_program" "$@"
        else
            command tykky "$@"
        fi ;;
    esac
}
