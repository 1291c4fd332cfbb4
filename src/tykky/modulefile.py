"""Environment modules for installations: `module load NAME` puts the installation on PATH.

`--modulefile DIR` (or the config key modulefile_dir) writes DIR/NAME.lua for Lmod, and with
`--modulefile-tcl` (modulefile_tcl) also DIR/NAME, a Tcl module for Environment Modules. NAME is
the prefix's directory name. The help text lists the wrapped programs, so `module help NAME`
tells what the installation provides; every new/update rewrites the files.
"""
import os
import textwrap
from pathlib import Path
from typing import List, Sequence

from tykky import __version__, layout, log
from tykky import manifest as manifest_module
from tykky.config import Config
from tykky.errors import TykkyError

_TCL_SPECIAL = '\\"$[]{}'


def check(config: Config) -> None:
    """Before a build: the module directory must be creatable and writable by this user."""
    if not config.modulefile_dir:
        return
    directory = Path(config.modulefile_dir).expanduser()
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise TykkyError(f"Cannot write module files to {directory}: {existing} is not a writable "
                         "directory. Give a directory of yours with --modulefile, or change modulefile_dir.")


def lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def lua_long_string(text: str) -> str:
    """A Lua long bracket that the text cannot close early."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[\n{text}]{'=' * level}]"


def tcl_string(text: str) -> str:
    escaped = "".join("\\" + c if c in _TCL_SPECIAL else c for c in text).replace("\n", "\\n")
    return f'"{escaped}"'


def help_text(prefix: Path, mode: str, programs: Sequence[str]) -> str:
    listing = textwrap.fill(" ".join(programs) or "(none)", width=76, initial_indent="  ",
                            subsequent_indent="  ", break_on_hyphens=False)
    return (f"A {mode} installation made by tykky {__version__} at {prefix}.\n"
            "Its programs run inside an Apptainer container; use them like installed programs.\n"
            f"Programs ({len(programs)}):\n{listing}\n")


def whatis_lines(name: str, prefix: Path, mode: str, programs: Sequence[str]) -> List[str]:
    return [f"Name: {name}", f"Description: {mode} installation made by tykky, at {prefix}",
            f"Programs: {' '.join(programs)}"]


def lua_module(name: str, prefix: Path, mode: str, programs: Sequence[str]) -> str:
    lines = [f"-- Environment module of the tykky installation at {prefix}.",
             "-- Written by tykky; every new/update of the installation rewrites it.",
             f"help({lua_long_string(help_text(prefix, mode, programs))})"]
    lines += [f"whatis({lua_string(line)})" for line in whatis_lines(name, prefix, mode, programs)]
    lines.append(f'prepend_path("PATH", {lua_string(str(prefix / "bin"))})')
    return "\n".join(lines) + "\n"


def tcl_module(name: str, prefix: Path, mode: str, programs: Sequence[str]) -> str:
    lines = ["#%Module1.0",
             f"## Environment module of the tykky installation at {prefix}.".replace("\n", " "),
             "## Written by tykky; every new/update of the installation rewrites it.",
             "proc ModulesHelp { } {",
             f"    puts stderr {tcl_string(help_text(prefix, mode, programs))}",
             "}"]
    lines += [f"module-whatis {tcl_string(line)}" for line in whatis_lines(name, prefix, mode, programs)]
    lines.append(f"prepend-path PATH {tcl_string(str(prefix / 'bin'))}")
    return "\n".join(lines) + "\n"


def write_for(config: Config, prefix: Path) -> List[Path]:
    """Write the module files of the installation at prefix; returns what was written."""
    if not config.modulefile_dir:
        return []
    prefix = prefix.absolute()
    manifest = manifest_module.load(prefix)
    programs = sorted(manifest.targets)
    directory = Path(config.modulefile_dir).expanduser().absolute()
    name = prefix.name
    files = [(directory / f"{name}.lua", lua_module(name, prefix, manifest.mode, programs))]
    if config.modulefile_tcl:
        files.append((directory / name, tcl_module(name, prefix, manifest.mode, programs)))
    try:
        for path, text in files:
            layout.replace_file(path, text.encode())
    except OSError as exc:
        raise TykkyError(f"The installation at {prefix} is ready, but its module file could not be "
                         f"written to {directory}: {exc.strerror}. Make it writable and run an update with "
                         "--modulefile.") from None
    log.info(f"Module file: {files[0][0]} (module use {directory}; module load {name})")
    return [path for path, _text in files]
