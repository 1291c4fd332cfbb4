"""tykky activate / deactivate, reached as a program instead of the shell function.

A program cannot change the shell that started it, so these only say how to get the shell
function (shell/tykky.sh, installed by `tykky setup`), and list installation names for
completion.
"""
import os
import shlex
from pathlib import Path
from typing import List, Mapping, Optional

from tykky import program
from tykky.commands.setup import PROFILE
from tykky.errors import TykkyError
from tykky.manifest import MANIFEST_PATH


def search_directories(environ: Mapping[str, str]) -> List[Path]:
    """TYKKY_PATH (default ~/.tykky), then the current directory: where the shell function looks."""
    entries = environ.get("TYKKY_PATH") or str(Path("~/.tykky").expanduser())
    return [Path(entry) for entry in entries.split(":") if entry] + [Path(".")]


def installation_names(incomplete: str, environ: Optional[Mapping[str, str]] = None) -> List[str]:
    environ = os.environ if environ is None else environ
    names = set()
    for directory in search_directories(environ):
        try:
            entries = list(directory.iterdir())
        except OSError:
            continue
        names.update(entry.name for entry in entries
                     if entry.name.startswith(incomplete) and (entry / MANIFEST_PATH).is_file())
    return sorted(names)


def needs_shell_function(command: str) -> None:
    setup = program.find_setup()
    profile = setup.directory / PROFILE if setup else None
    how = (f"source {shlex.quote(str(profile))}" if profile and profile.is_file()
           else "set tykky up with `tykky setup --config NAME` and source the etc/profile.d/tykky.sh it writes")
    raise TykkyError(f"`tykky {command}` changes the current shell, so it works only as the shell "
                     f"function `tykky`: {how} (add it to ~/.bashrc), then run `tykky {command}` again.",
                     exit_code=2)
