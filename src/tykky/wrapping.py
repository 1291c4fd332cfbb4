"""What wrap-container and wrap-install share: programs the tool did not build, used natively.

Such programs may find their own files relative to themselves (`$(dirname "$0")/../share`), so
they start by their in-container path. Python interpreters keep the wrapper's path as argv[0]:
the prefix then reads as a venv of them and venvs made on top work from the host. Inside the
container PATH holds the wrapped directories instead of <prefix>/bin, so programs that call
each other by name see the same paths as in a native installation.
"""
import dataclasses
import os
import posixpath
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from tykky.containers import is_remote
from tykky.errors import TykkyError
from tykky.manifest import Manifest

PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?")
# The dynamic loader searches these anyway; first on LD_LIBRARY_PATH they would override the
# container's own LD_LIBRARY_PATH (a vendor's newer libraries).
SYSTEM_LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64")


def is_python_name(name: str) -> bool:
    return PYTHON_NAME.fullmatch(name) is not None


def python_candidates(wrapper_paths: Sequence[str]) -> str:
    """In-container paths that may be the wrapped Python, best first, colon-separated for the probe."""
    candidates: List[str] = []
    for path in wrapper_paths:
        path = path.rstrip("/") or "/"
        if is_python_name(posixpath.basename(path)):
            candidates.append(path)
        else:
            candidates += [posixpath.join(path, "python3"), posixpath.join(path, "python")]
    return ":".join(c for c in dict.fromkeys(candidates) if ":" not in c)


def with_python_alias(targets: Mapping[str, str], python: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """A venv has bin/python: a Python wrapped only as python3 gets that name as well."""
    result = dict(targets)
    if python and python.get("executable") and "python" not in result:
        result["python"] = python["executable"]
    return result


def direct_targets(targets: Mapping[str, str]) -> Tuple[str, ...]:
    return tuple(sorted(name for name in targets if not is_python_name(name)))


def program_directories(targets: Mapping[str, str]) -> List[str]:
    return list(dict.fromkeys(posixpath.dirname(target) for target in targets.values()))


def path_prepend(targets: Mapping[str, str], container_path: str) -> Tuple[str, ...]:
    """The wrapped directories the container's PATH lacks; the container's order is kept."""
    present = set(container_path.split(":"))
    return tuple(d for d in program_directories(targets) if d not in present)


def finish_manifest(manifest: Manifest) -> Manifest:
    targets = with_python_alias(manifest.targets, manifest.python)
    path = dataclasses.replace(manifest.path,
                               prepend=path_prepend(targets, manifest.path.container) + manifest.path.prepend)
    libraries = tuple(d for d in manifest.ld_library_path.prepend if d.rstrip("/") not in SYSTEM_LIBRARY_DIRS)
    return dataclasses.replace(manifest, targets=targets, direct_targets=direct_targets(targets),
                               prefix_on_path=False, path=path,
                               ld_library_path=dataclasses.replace(manifest.ld_library_path, prepend=libraries))


def check_wrapper_paths(paths: Sequence[str], what: str) -> None:
    if not paths:
        raise TykkyError(f"Nothing to wrap: give the programs of {what} to wrap with -w, for example "
                         "-w /usr/bin or -w bin/tool,bin/other.")
    for path in paths:
        if ":" in path:
            raise TykkyError(f"The path to wrap {path} contains ':', which the container runtime cannot "
                             "handle. Wrap its directory or a path without ':'.")


def absolute_or_remote(source: str) -> str:
    return source if is_remote(source) else os.path.abspath(os.path.expanduser(source))
