"""How this tool was started: its archive, its interpreter and the setup it belongs to.

`tykky setup --dir D` records the chosen site configuration in D/etc/tykky.conf. A command
finds that record from the path it was invoked by (D/bin/<command>) or from the archive's own
directory (D/tykky.pyz), so every way into one setup uses the same site configuration.
"""
import os
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

RECORD = Path("etc") / "tykky.conf"
SITE_KEY = "site_config"
# Set by the archive's __main__ (zipapp/main.py); empty when running from a source checkout.
ARCHIVE = ""
PYTHON_ORIGIN = "the command line"


def started_from_archive(archive: str, python_origin: str) -> None:
    """Called once by the archive's __main__ before the command line runs."""
    global ARCHIVE, PYTHON_ORIGIN
    ARCHIVE = archive
    PYTHON_ORIGIN = {"pinned": "pinned when tykky.pyz was built", "TYKKY_PYTHON": "TYKKY_PYTHON",
                     "search": "the newest suitable python3 on PATH and in /usr/bin"}.get(
                         python_origin, python_origin)


def is_shim(interpreter: str) -> bool:
    """A pyenv/asdf-style shim: a script in a `shims` directory that finds the real interpreter."""
    return Path(interpreter).parent.name == "shims"


def archive_path() -> Optional[Path]:
    """The real path of tykky.pyz, or None when not running from it."""
    return Path(os.path.realpath(ARCHIVE)) if ARCHIVE else None


class Setup(NamedTuple):  # not a dataclass: importing dataclasses slows every start
    directory: Path
    values: Dict[str, str]

    @property
    def record(self) -> Path:
        return self.directory / RECORD

    @property
    def site_config(self) -> Optional[str]:
        return self.values.get(SITE_KEY) or None


def read_record(path: Path) -> Dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, separator, value = line.partition("=")
        if separator and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


def setup_candidates(invoked: str) -> List[Path]:
    """D for D/bin/<command>; the directory of the real archive (D/tykky.pyz)."""
    candidates = []
    path = Path(os.path.abspath(invoked)) if invoked else None
    if path is not None and path.parent.name == "bin":
        candidates.append(path.parent.parent)
    real = archive_path() or (Path(os.path.realpath(invoked)) if invoked else None)
    if real is not None:
        candidates.append(real.parent)
    return candidates


def find_setup(invoked: Optional[str] = None) -> Optional[Setup]:
    for directory in setup_candidates(sys.argv[0] if invoked is None else invoked):
        record = directory / RECORD
        if record.is_file():
            try:
                return Setup(directory, read_record(record))
            except (OSError, UnicodeDecodeError):
                continue
    return None


def selected_site(invoked: Optional[str] = None) -> Optional[str]:
    """The site configuration recorded by `tykky setup`, if this run belongs to a setup."""
    setup = find_setup(invoked)
    return setup.site_config if setup else None
