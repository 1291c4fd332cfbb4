"""The container runtime (Apptainer or SingularityCE) as the builder uses it."""
import os
import re
import shutil
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from tykky_shim import contract

from tykky import runner
from tykky.errors import TykkyError

RUNTIME_NAMES = ("apptainer", "singularity")
# image-src binds and unprivileged squashfuse mounts arrived with these versions.
MINIMUM_VERSIONS = {"apptainer": (1, 0), "singularity": (3, 8)}


@dataclass(frozen=True)
class Runtime:
    name: str
    path: str
    version: Tuple[int, ...]

    @property
    def version_text(self) -> str:
        return ".".join(str(part) for part in self.version)


def _candidate_paths(configured: str, environ: Mapping[str, str]) -> List[str]:
    if configured:
        return [configured]
    found = []
    for name in RUNTIME_NAMES:
        path = shutil.which(name, path=environ.get("PATH"))
        if path:
            found.append(path)
    return found


def parse_version(text: str) -> Tuple[str, Tuple[int, ...]]:
    """'apptainer version 1.4.5' or 'singularity-ce version 4.1.0' -> (name, (1, 4, 5))."""
    match = re.search(r"(apptainer|singularity)\S*\s+version\s+v?(\d+(?:\.\d+)*)", text)
    if not match:
        raise ValueError(text)
    return match.group(1), contract.version_tuple(match.group(2))


def find_runtime(configured: str = "", environ: Optional[Mapping[str, str]] = None) -> Runtime:
    """The runtime from `singularity_executable_path`, else apptainer or singularity on PATH."""
    environ = os.environ if environ is None else environ
    candidates = _candidate_paths(configured, environ)
    if not candidates:
        where = configured or "PATH"
        raise TykkyError(
            f"No container runtime found (looked for apptainer and singularity on {where}). "
            "Load the module that provides Apptainer or SingularityCE, or set "
            "singularity_executable_path in the site configuration."
        )
    path = os.path.realpath(candidates[0]) if not configured else candidates[0]
    completed = runner.run([path, "--version"], what=f"asking {path} for its version", check=False)
    try:
        name, version = parse_version(completed.output)
    except ValueError:
        raise TykkyError(f"{path} does not look like Apptainer or Singularity: "
                         f"'{completed.output.strip()}'. Fix singularity_executable_path.") from None
    minimum = MINIMUM_VERSIONS[name]
    if version[: len(minimum)] < minimum:
        wanted = ".".join(map(str, minimum))
        raise TykkyError(f"{name} {'.'.join(map(str, version))} at {path} is too old: "
                         f"tykky needs {name} {wanted} or newer. Load a newer module.")
    return Runtime(name=name, path=path, version=version)


def bind_argument(binds: Sequence[str]) -> List[str]:
    return ["--bind", ",".join(binds)] if binds else []


def exec_argv(runtime: Runtime, container: str, command: Sequence[str], *,
              binds: Sequence[str] = (), overlays: Sequence[str] = (),
              extra_flags: Sequence[str] = ()) -> List[str]:
    argv = [runtime.path, "-q", "exec"]
    for overlay in overlays:
        argv += ["--overlay", overlay]
    return argv + list(extra_flags) + bind_argument(binds) + [container] + list(command)


GPU_FLAGS = contract.GPU_FLAGS


def gpu_choice(setting: str) -> str:
    """The manifest's form of the gpu setting: "nv", "rocm", or "" for none."""
    return setting if setting in GPU_FLAGS else ""


def gpu_flags(setting: str) -> List[str]:
    return list(GPU_FLAGS.get(setting, ()))


def clean_environment(environ: Mapping[str, str]) -> Dict[str, str]:
    """The caller's environment without runtime variables leaked from a parent container: the
    launcher's policy (shim/contract.py), keeping what a build needs of the caller's."""
    return contract.without_runtime_variables(environ, contract.KEPT_IN_BUILDS)
