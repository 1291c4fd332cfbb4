"""Shell completion answered by the program itself, from its own parser.

shell/completion.bash sets _TYKKY_COMPLETE, COMP_WORDS and COMP_CWORD and runs the command; it
prints one `kind,value` line per candidate (kind: plain, or file to let bash complete file
names), so completions always match the installed version.
"""
import argparse
import shlex
from typing import List, Mapping, Optional, Sequence, Tuple

VARIABLE = "_TYKKY_COMPLETE"


def requested(environ: Mapping[str, str]) -> bool:
    return VARIABLE in environ


def _subcommands(parser: argparse.ArgumentParser) -> Optional[argparse._SubParsersAction]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _option(parser: argparse.ArgumentParser, word: str) -> Optional[argparse.Action]:
    """The option a word names, abbreviations included (as the parser itself resolves them)."""
    name = word.split("=", 1)[0]
    actions = parser._option_string_actions
    if name in actions:
        return actions[name]
    matches = {actions[o] for o in actions if name.startswith("--") and o.startswith(name)}
    return matches.pop() if len(matches) == 1 else None


def _walk(parser: argparse.ArgumentParser, words: Sequence[str]) -> Tuple[argparse.ArgumentParser, bool]:
    """The parser the words lead to, and whether the last of them is an option that wants a value."""
    wants_value = False
    for word in words:
        if wants_value:
            wants_value = False
        elif word.startswith("-"):
            action = _option(parser, word)
            wants_value = action is not None and action.nargs != 0 and "=" not in word
        else:
            subcommands = _subcommands(parser)
            if subcommands and word in subcommands.choices:
                parser = subcommands.choices[word]
    return parser, wants_value


def candidates(parser: argparse.ArgumentParser, words: Sequence[str], incomplete: str) -> List[str]:
    """`kind,value` lines for the word being completed after `words`."""
    parser, wants_value = _walk(parser, words)
    if wants_value:
        return ["file,"]
    if incomplete.startswith("-"):
        return [f"plain,{name}" for action in parser._actions for name in action.option_strings
                if name.startswith(incomplete)]
    subcommands = _subcommands(parser)
    if subcommands:
        return [f"plain,{name}" for name in subcommands.choices if name.startswith(incomplete)]
    for action in parser._actions:
        completer = getattr(action, "completer", None)
        if not action.option_strings and completer:
            return [f"plain,{name}" for name in completer(incomplete)]
    return ["file,"]


def answer(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    line = environ.get("COMP_WORDS", "")
    try:
        words = shlex.split(line)
    except ValueError:  # an open quote in the word being completed
        words = line.split()
    position = int(environ.get("COMP_CWORD") or 0)
    incomplete = words[position] if position < len(words) else ""
    for candidate in candidates(parser, words[1:position], incomplete):
        print(candidate)
