# bash completion for tykky and its commands: the program itself answers (src/tykky/completion.py,
# through _TYKKY_COMPLETE), so completions always match the installed version.
_tykky_complete() {
    local IFS=$'\n' response completion kind value
    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD="$COMP_CWORD" _TYKKY_COMPLETE=bash_complete \
        "$1" 2>/dev/null)
    COMPREPLY=()
    for completion in $response; do
        kind=${completion%%,*} value=${completion#*,}
        case $kind in
        dir) compopt -o dirnames 2>/dev/null ;;
        file) compopt -o default 2>/dev/null ;;
        plain) COMPREPLY+=("$value") ;;
        esac
    done
    return 0
}
complete -o nosort -F _tykky_complete tykky pip-containerize conda-containerize wrap-container wrap-install \
    2>/dev/null || complete -F _tykky_complete tykky pip-containerize conda-containerize wrap-container wrap-install
