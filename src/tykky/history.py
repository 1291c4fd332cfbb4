"""share/tykky: the resolved configuration, tool version and the inputs of every build.

`update` appends a numbered entry, so the record of earlier inputs is never lost.
"""
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import yaml

from tykky import __version__, layout
from tykky.config import Config
from tykky.errors import TykkyError

SHARE = Path("share") / "tykky"
# The --environ file, sourced at every launch; kept by updates that give none.
ENVIRON_FILE = str(SHARE / "environ.sh")


def config_snapshot(config: Config) -> str:
    values = {key: list(value) if isinstance(value, tuple) else value
              for key, value in dataclasses.asdict(config).items()}
    return yaml.safe_dump(values, sort_keys=True)


def next_entry(prefix: Path, kind: str) -> Path:
    history = prefix / SHARE / "history"
    numbers = [int(p.name.split("-", 1)[0]) for p in history.glob("[0-9]*-*")] if history.is_dir() else []
    return history / f"{max(numbers, default=0) + 1:04d}-{kind}"


def copy_input(source: str, destination: Path, what: str = "") -> None:
    """Copy a file the user named; an unreadable one is the user's error to fix."""
    try:
        shutil.copyfile(source, destination)
    except OSError as exc:
        named = f"the {what} {source}" if what else source
        raise TykkyError(f"Cannot read {named}: {exc.strerror}. Check the path.") from None


def stage_inputs(config: Config, build: Path) -> Dict[str, Optional[str]]:
    """The user's files and pre/post-install commands into build/inputs, where the build steps
    read them; returns name -> source for the history (None: not given)."""
    inputs = build / "inputs"
    inputs.mkdir(exist_ok=True)
    sources = {"requirements.txt": config.requirements_file or None,
               "environ.sh": config.environ_file or None}
    for (name, source), what in zip(sources.items(), ("requirements file", "environment file")):
        if source:
            copy_input(source, inputs / name, what)
    for name, commands in (("pre-install.sh", config.pre_install), ("post-install.sh", config.post_install)):
        if commands:
            (inputs / name).write_text("\n".join(commands) + "\n")
            sources[name] = str(inputs / name)
    return sources


def saved_values(prefix: Path, keys: Sequence[str]) -> Dict[str, Any]:
    """The values of keys in the configuration the installation was last built with."""
    saved = prefix / SHARE / "config.yaml"
    values = (yaml.safe_load(saved.read_text()) if saved.is_file() else None) or {}
    return {key: tuple(values[key]) if isinstance(values[key], list) else values[key]
            for key in keys if key in values}


def record(prefix: Path, kind: str, config: Config, inputs: Mapping[str, Optional[str]],
           argv: Sequence[str] = ()) -> Path:
    """Copy the input files into a new history entry, and the environ file where launches read
    it; returns the entry."""
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
    if inputs.get("environ.sh"):
        layout.replace_file(prefix / ENVIRON_FILE, Path(str(inputs["environ.sh"])).read_bytes())
    return entry
