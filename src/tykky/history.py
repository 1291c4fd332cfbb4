"""share/tykky: the resolved configuration, tool version and the inputs of every build.

`update` appends a numbered entry, so the record of earlier inputs is never lost.
"""
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence

import yaml

from tykky import __version__, layout
from tykky.config import Config
from tykky.errors import TykkyError

SHARE = Path("share") / "tykky"


def config_snapshot(config: Config) -> str:
    values = {key: list(value) if isinstance(value, tuple) else value
              for key, value in dataclasses.asdict(config).items()}
    return yaml.safe_dump(values, sort_keys=True)


def next_entry(prefix: Path, kind: str) -> Path:
    history = prefix / SHARE / "history"
    numbers = [int(p.name.split("-", 1)[0]) for p in history.glob("[0-9]*-*")] if history.is_dir() else []
    return history / f"{max(numbers, default=0) + 1:04d}-{kind}"


def copy_input(source: str, destination: Path) -> None:
    """Copy a file the user named; an unreadable one is the user's error to fix."""
    try:
        shutil.copyfile(source, destination)
    except OSError as exc:
        raise TykkyError(f"Cannot read {source}: {exc.strerror}. Check the path.") from None


def record(prefix: Path, kind: str, config: Config, inputs: Mapping[str, Optional[str]],
           argv: Sequence[str] = ()) -> Path:
    """Copy the input files into a new history entry; returns the entry."""
    entry = next_entry(prefix, kind)
    entry.mkdir(parents=True)
    for name, source in inputs.items():
        if source:
            copy_input(source, entry / name)
    command = {"argv": list(argv) or sys.argv, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "tool_version": __version__}
    (entry / "command.json").write_text(json.dumps(command, indent=1) + "\n")
    # Replaced, not rewritten: a full disk must not leave an update a truncated config to read.
    layout.replace_file(prefix / SHARE / "config.yaml", config_snapshot(config).encode())
    layout.replace_file(prefix / SHARE / "version", (__version__ + "\n").encode())
    return entry
