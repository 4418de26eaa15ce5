# bash completion for mtasim                       -*- shell-script -*-
#
# Installed as PREFIX/share/bash-completion/completions/mtasim, where
# bash-completion loads it the first time "mtasim <TAB>" is typed.
#
# Completes the command (first word), then that command's options, then
# files: *.scn scenarios for run/check/live/serve/explore, *.json for report,
# captures for import, "show" then any file for trace.  The options are read from "mtasim COMMAND --help"
# of the mtasim being completed, so they never drift from the binary; an
# option's argument completes as a file name, or not at all for numbers.

_mtasim_options()
{
    "$1" "$2" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u
}

_mtasim()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi
    local commands="run check report import live serve bench explore trace help version"
    if [ "$cword" -eq 1 ]; then
        mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
        return 0
    fi
    local cmd=${words[1]}
    case $cmd in
        help)
            mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
            return 0 ;;
        version) return 0 ;;
    esac
    case $prev in
        --seed|--seeds|--timeout|--messages|--domains|--hours|--runs|--sessions|--duration|\
        --title|--remote|--listen|--server|--port|--jobs|--shard|--shrink-budget|--time-limit)
            return 0 ;;
        --mode)
            mapfile -t COMPREPLY < <(compgen -W "mix reuse queued" -- "$cur")
            return 0 ;;
        --trace-format)
            mapfile -t COMPREPLY < <(compgen -W "text bin" -- "$cur")
            return 0 ;;
        --trace|--json|--pcap|--junit|--html|--markdown|--html-dir|--github|--gitlab|-o|--plugin|\
        --out|--output|--tls-cert|--tls-key)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            compopt -o filenames 2>/dev/null
            return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_mtasim_options "${words[0]}" "$cmd")" -- "$cur")
        return 0
    fi
    if [ "$cmd" = trace ] && [ "$cword" -eq 2 ]; then
        mapfile -t COMPREPLY < <(compgen -W "show" -- "$cur")
        return 0
    fi
    local ext
    case $cmd in
        run|check|live|serve|explore) ext='*.scn' ;;
        report) ext='*.json' ;;
        import) ext='*.@(pcap|pcapng|cap)' ;;
        trace) ext='*' ;;
        *) return 0 ;;
    esac
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -X "!$ext" -- "$cur"; compgen -d -- "$cur")
    return 0
}
complete -F _mtasim mtasim
