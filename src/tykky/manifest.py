"""The installation's runtime manifest: the one file the launcher reads.

It holds no absolute host path of the installation itself, so an installation moved with
`mv` or rsync keeps working; the launcher finds the prefix from its own location. Its path,
format, keys and defaults are the contract's (shim/contract.py), which the launcher reads by:
what is written here is checked against it, and what is read back is converted by it.
"""
import dataclasses
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from tykky_shim import contract

from tykky.errors import TykkyError

FORMAT = contract.FORMAT
MANIFEST_PATH = contract.MANIFEST_PATH
SCHEMA = contract.MANIFEST_SCHEMA
DAMAGED = "The installation is damaged: rebuild it with `new` (or restore it from a copy)."


@dataclass(frozen=True)
class Layer:
    image: str  # file name, relative to the prefix
    target: str  # where its root is mounted inside the container
    # "overlay": stacked at the container root (content under target's path), later layers win;
    # "image-src": bound at target, for trees whose target a host bind would hide.
    mount: str = SCHEMA["layers"][0]["mount"].value
    # Its size in bytes when it was placed (written by `write`): a launch tells a truncated or
    # half-copied image by it, where the runtime would only fail on it. 0: not recorded.
    size: int = SCHEMA["layers"][0]["size"].value


@dataclass(frozen=True)
class PathVariable:
    prepend: Tuple[str, ...] = ()
    append: Tuple[str, ...] = ()
    container: str = ""  # the container's own value, used when isolated


@dataclass(frozen=True)
class Manifest:
    tool_version: str
    build_id: str
    mode: str
    runtime: Mapping[str, str]
    container: str
    layers: Tuple[Layer, ...]
    installation_path: str
    isolate: bool
    mount_points: Tuple[str, ...]
    excluded_mount_points: Tuple[str, ...]
    targets: Mapping[str, str]
    path: PathVariable = PathVariable()
    ld_library_path: PathVariable = PathVariable()
    environment: Mapping[str, str] = field(default_factory=dict)
    environ_file: str = ""
    shell: str = SCHEMA["shell"].value
    # wrap modes: programs started by their in-container path, so that they find their own
    # files relative to themselves; the others get the wrapper's path as argv[0].
    direct_targets: Tuple[str, ...] = ()
    # wrap modes: <prefix>/bin stays off the in-container PATH; path.prepend names the
    # wrapped directories instead, so programs calling each other by name see native paths.
    prefix_on_path: bool = SCHEMA["prefix_on_path"].value
    python: Optional[Mapping[str, str]] = None
    warm: Mapping[str, Any] = field(default_factory=lambda: contract.with_defaults({}, SCHEMA["warm"]))
    # conda mode: what `conda activate` would set, applied at launch unless a venv on top is used
    activation: Optional[Mapping[str, Any]] = None
    share_step_container: bool = SCHEMA["share_step_container"].value
    # "nv" or "rocm": the runtime's --nv or --rocm at every launch; "" for none
    gpu: str = SCHEMA["gpu"].value

    def to_json(self) -> str:
        data: Dict[str, Any] = {
            "format": FORMAT,
            "tool_version": self.tool_version,
            "build_id": self.build_id,
            "mode": self.mode,
            "runtime": dict(self.runtime),
            "container": self.container,
            "layers": [asdict(layer) for layer in self.layers],
            "installation_path": self.installation_path,
            "binds": {"isolate": self.isolate, "mount_points": list(self.mount_points),
                      "excluded_mount_points": list(self.excluded_mount_points)},
            "targets": dict(sorted(self.targets.items())),
            "path": asdict(self.path),
            "ld_library_path": asdict(self.ld_library_path),
            "environment": dict(self.environment),
            "environ_file": self.environ_file,
            "shell": self.shell,
            "direct_targets": sorted(self.direct_targets),
            "prefix_on_path": self.prefix_on_path,
            "marker": self.marker(),
            "python": dict(self.python) if self.python else None,
            "warm": dict(self.warm),
            "activation": dict(self.activation) if self.activation else None,
            "share_step_container": self.share_step_container,
            "gpu": self.gpu,
        }
        text = json.dumps(data, indent=1) + "\n"
        check_written(json.loads(text))
        return text

    def marker(self) -> Optional[Dict[str, str]]:
        """A file only this installation's image has: tells the launcher it runs inside it."""
        if not self.layers:
            return None
        return {"path": f"{self.layers[0].target}/.tykky/build-id", "value": self.build_id}


def check_written(data: Mapping[str, Any]) -> None:
    """What the builder writes is what the contract names, every key of it: a field renamed or
    added on one side only fails here, at the first build, instead of at a launch."""
    unknown = sorted(set(data) - set(contract.MANIFEST_SCHEMA))
    problem = f"{unknown[0]} is not a key of the contract" if unknown else contract.manifest_problem(data)
    left_out = sorted(set(contract.MANIFEST_SCHEMA) - set(data))
    if problem or left_out:
        raise ValueError(f"the manifest does not fit shim/contract.py: {problem or left_out[0] + ' is not written'}")


def _path_variable(data: Mapping[str, Any]) -> PathVariable:
    return PathVariable(prepend=tuple(data["prepend"]), append=tuple(data["append"]), container=data["container"])


def load(prefix: Path) -> Manifest:
    path = prefix / MANIFEST_PATH
    if not prefix.is_dir():
        raise TykkyError(f"{prefix} does not exist. Give the prefix of an installation made by this tool.")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TykkyError(f"{prefix} is not a tykky installation (it has no {MANIFEST_PATH}). "
                         "Give the prefix of an installation made by this tool.") from None
    except (OSError, ValueError) as exc:
        raise TykkyError(f"Cannot read the manifest {path}: {exc}. {DAMAGED}") from exc
    if not isinstance(data, dict):
        raise TykkyError(f"The manifest {path} is not a JSON object. {DAMAGED}")
    try:
        data = contract.upgraded(data)
    except contract.Damaged:
        raise TykkyError(f"{prefix} was made by an incompatible tykky version "
                         f"({data.get('tool_version')}); rebuild it with `new`.") from None
    try:
        return _from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise TykkyError(f"The manifest {path} is incomplete (no valid {exc}). {DAMAGED}") from None


def _from_json(data: Mapping[str, Any]) -> Manifest:
    binds = data["binds"]
    return Manifest(
        tool_version=data["tool_version"], build_id=data["build_id"], mode=data["mode"],
        runtime=data["runtime"], container=data["container"],
        layers=tuple(Layer(**layer) for layer in data["layers"]),
        installation_path=data["installation_path"], isolate=binds["isolate"],
        mount_points=tuple(binds["mount_points"]),
        excluded_mount_points=tuple(binds["excluded_mount_points"]),
        targets=data["targets"], path=_path_variable(data["path"]),
        ld_library_path=_path_variable(data["ld_library_path"]),
        environment=data["environment"], environ_file=data["environ_file"],
        shell=data["shell"], direct_targets=tuple(data["direct_targets"]),
        prefix_on_path=data["prefix_on_path"], python=data["python"], warm=data["warm"],
        activation=data["activation"], share_step_container=data["share_step_container"], gpu=data["gpu"],
    )


def write(manifest: Manifest, prefix: Path) -> None:
    """Write atomically: a launch never sees half a manifest."""
    path = prefix / MANIFEST_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".manifest.{os.getpid()}.tmp")
    sized = tuple(dataclasses.replace(layer, size=_size_of(prefix / layer.image)) for layer in manifest.layers)
    temporary.write_text(dataclasses.replace(manifest, layers=sized).to_json())
    os.replace(temporary, path)


def _size_of(image: Path) -> int:
    try:
        return image.stat().st_size
    except OSError:
        return 0
