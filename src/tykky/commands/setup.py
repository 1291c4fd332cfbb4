"""tykky setup: make tykky.pyz the tool of a site, like the reference tool's install.sh.

    D/bin/{tykky,conda-containerize,pip-containerize,wrap-container,wrap-install} -> tykky.pyz
    D/etc/profile.d/tykky.sh          PATH, the `tykky` shell function (activate/deactivate)
    D/etc/bash_completion.d/tykky     completion of every command
    D/etc/tykky.conf                  the chosen site configuration, found by every later run
    D/etc/tykky/site.yaml             a copy of the site configuration, when given as a file

D defaults to the directory of tykky.pyz. Running setup again (another config, a newer
tykky.pyz) replaces these files, each atomically.
"""
import shlex
from pathlib import Path
from typing import List, Optional, Tuple

from tykky import __version__, layout, program
from tykky._compat import resources
from tykky.config import read_site_config, shipped_site_configs
from tykky.errors import TykkyError

COMMANDS = ("tykky", "conda-containerize", "pip-containerize", "wrap-container", "wrap-install")
PROFILE = Path("etc") / "profile.d" / "tykky.sh"
COMPLETION = Path("etc") / "bash_completion.d" / "tykky"
SITE_COPY = Path("etc") / "tykky" / "site.yaml"


def shell_file(name: str) -> str:
    return resources.files("tykky_shell").joinpath(name).read_text()


def the_archive() -> Path:
    archive = program.archive_path()
    if archive is None:
        raise TykkyError("tykky setup links the commands to tykky.pyz, so run it from there: "
                         "`python3 tykky.pyz setup --config NAME|FILE`.")
    return archive


def choose_site(choice: str) -> Tuple[str, Optional[Path]]:
    """(what to record, the file to copy into the setup or None for a shipped config)."""
    shipped = shipped_site_configs()
    if choice in shipped:
        return choice, None
    path = Path(choice).expanduser()
    if not path.is_file():
        raise TykkyError(f"The site configuration '{choice}' is neither a file nor one of the shipped "
                         f"configurations ({', '.join(sorted(shipped))}). Give one of those names or "
                         "the path of a YAML file.")
    read_site_config(path)  # a broken file fails here, not at the first build
    return str(path.absolute()), path


def check_links(directory: Path, archive: Path) -> None:
    """Refuse to replace a file that setup did not make (a link we replace, the archive we keep)."""
    for name in COMMANDS:
        path = directory / "bin" / name
        if path.exists() and not path.is_symlink() and not path.samefile(archive):
            raise TykkyError(f"{path} exists and is not a link made by tykky setup. Remove it, or "
                             "set up in another directory with --dir.")


def link_commands(directory: Path, archive: Path) -> List[Path]:
    links = []
    for name in COMMANDS:
        path = directory / "bin" / name
        if path.exists() and not path.is_symlink():
            continue  # the archive itself, installed under this name
        layout.replace_symlink(path, str(archive))
        links.append(path)
    return links


def profile_text(directory: Path) -> str:
    program_path = shlex.quote(str(directory / "bin" / "tykky"))
    completion = shlex.quote(str(directory / COMPLETION))
    header = (f"# tykky {__version__} for this site, written by `tykky setup`. Source it from ~/.bashrc\n"
              "# (or ~/.zshrc, ~/.profile), or link it into /etc/profile.d: it puts the tykky commands\n"
              "# on PATH and defines the `tykky` shell function (tykky activate / deactivate).\n"
              f"_tykky_program={program_path}\n"
              'case ":${PATH-}:" in\n'
              '*":${_tykky_program%/tykky}:"*) ;;\n'
              '*) PATH=${_tykky_program%/tykky}${PATH:+:$PATH}; export PATH ;;\n'
              "esac\n\n")
    footer = ("\n# Completion in interactive bash.\n"
              f'case $- in *i*) [ -n "${{BASH_VERSION-}}" ] && [ -f {completion} ] && . {completion} ;; esac\n')
    return header + shell_file("tykky.sh") + footer


def record_text(site: str) -> str:
    return ("# Written by `tykky setup`: the site configuration of every tykky command started from\n"
            "# this directory's bin/ or tykky.pyz. CW_GLOBAL_YAML still overrides it.\n"
            f"{program.SITE_KEY}={site}\n")


def run(choice: str, directory: Optional[str]) -> Path:
    """Set up in directory (default: next to tykky.pyz) for the site configuration `choice`."""
    archive = the_archive()
    target = Path(directory).expanduser().absolute() if directory else archive.parent
    site, site_file = choose_site(choice)
    check_links(target, archive)
    try:
        if site_file is not None:
            layout.replace_file(target / SITE_COPY, site_file.read_bytes())
            site = str(target / SITE_COPY)
        links = link_commands(target, archive)
        layout.replace_file(target / PROFILE, profile_text(target).encode())
        layout.replace_file(target / COMPLETION, shell_file("completion.bash").encode())
        layout.replace_file(target / program.RECORD, record_text(site).encode())
    except OSError as exc:
        raise TykkyError(f"Cannot set up in {target}: {exc.strerror} ({exc.filename}). Choose a "
                         "writable directory with --dir.") from None
    print(f"tykky is set up in {target} for the site configuration {site}.\n"
          f"Commands: {', '.join(str(link) for link in links)}\n"
          f"To use them (and `tykky activate`), add this line to ~/.bashrc:\n"
          f"    source {shlex.quote(str(target / PROFILE))}")
    return target
