"""`list-packages`: the environment's packages, as `conda list` prints them, fixed at build time.

Conda packages come from conda-meta/*.json; Python packages that pip (or uv) installed on top
are the dist-info directories no conda package owns.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

LIST_PACKAGES = "bin/list-packages"


def conda_records(env: Path) -> List[Dict]:
    meta = env / "conda-meta"
    if not meta.is_dir():
        return []
    records = []
    for path in sorted(meta.glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def _channel_label(record: Dict) -> str:
    channel = str(record.get("channel") or "")
    return channel.rstrip("/").rsplit("/", 1)[-1] if channel.startswith(("http://", "https://")) else channel


def pip_packages(env: Path, owned: Set[str]) -> List[Tuple[str, str]]:
    """(name, version) of dist-info directories in site-packages that no conda package owns."""
    found = []
    for info in sorted(env.glob("lib/python*/site-packages/*.dist-info")):
        relative = info.relative_to(env).as_posix()
        if relative in owned:
            continue
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found.append((name, version))
    return found


def owned_directories(records: List[Dict]) -> Set[str]:
    """The dist-info directories that conda packages installed."""
    owned: Set[str] = set()
    for record in records:
        for file in record.get("files", []):
            parts = file.split("/")
            for depth, part in enumerate(parts[:-1], start=1):
                if part.endswith(".dist-info"):
                    owned.add("/".join(parts[:depth]))
                    break
    return owned


def listing(env: Path, env_path: str) -> str:
    records = conda_records(env)
    rows = [(r.get("name", "?"), str(r.get("version", "")), str(r.get("build", "")), _channel_label(r))
            for r in records]
    rows += [(name, version, "pypi_0", "pypi") for name, version in pip_packages(env, owned_directories(records))]
    lines = [f"# packages in environment at {env_path}:", "#",
             f"# {'Name':<24}{'Version':<26}{'Build':<20}Channel"]
    lines += [f"{name:<26}{version:<26}{build:<20}{channel}" for name, version, build, channel in
              sorted(rows, key=lambda row: row[0].lower())]
    return "\n".join(lines) + "\n"


def write_list_packages(env: Path, env_path: str, records_env: Optional[Path] = None) -> Path:
    """A script in the env's bin that prints the listing; wrapped like every other program.

    records_env: where to read the records, when not in env itself (an update over layers).
    """
    text = listing(records_env or env, env_path)
    marker = "TYKKY_PACKAGE_LIST_END"
    script = env / LIST_PACKAGES
    script.parent.mkdir(parents=True, exist_ok=True)
    if script.is_symlink() or script.exists():
        script.unlink()
    script.write_text(f"#!/bin/sh\ncat <<'{marker}'\n{text}{marker}\n")
    script.chmod(0o755)
    return script
