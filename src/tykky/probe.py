"""What the container holds: its environment, the programs to wrap and the Python to expose."""
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from tykky import log
from tykky.container_exec import BuildContainer, template
from tykky.errors import TykkyError
from tykky.layout import RESERVED_NAMES


@dataclass(frozen=True)
class ProbeResult:
    environment: Dict[str, str]
    shell: str
    targets: Dict[str, str]
    library_dirs: List[str]
    python: Optional[Dict[str, str]] = field(default=None)


def parse_probe(output: str, wrapper_paths: Sequence[str]) -> ProbeResult:
    environment: Dict[str, str] = {}
    targets: Dict[str, str] = {}
    library_dirs: List[str] = []
    missing: List[str] = []
    shell, python = "/bin/sh", None
    for line in output.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "ENV":
            name, _, value = rest.partition("\t")
            environment[name] = value
        elif kind == "SHELL":
            shell = rest
        elif kind == "TARGET":
            name = rest.rsplit("/", 1)[-1]
            if name in RESERVED_NAMES:
                log.warning(f"Not wrapping {rest}: the name {name} is reserved by tykky")
            elif name in targets and targets[name] != rest:
                log.warning(f"Two programs named {name}: using {targets[name]}, not {rest}")
            else:
                targets[name] = rest
        elif kind == "MISSING":
            missing.append(rest)
        elif kind == "LIBDIR" and rest not in library_dirs:
            library_dirs.append(rest)
        elif kind == "PYTHON":
            python = json.loads(rest)
    if missing:
        raise TykkyError(f"These paths to wrap do not exist in the container: {', '.join(missing)}. "
                         "Give absolute paths inside the container (see _debug_shell to look around).")
    if wrapper_paths and not targets:
        raise TykkyError(f"Nothing to wrap was found in {', '.join(wrapper_paths)}: no executable "
                         "files there (set wrap_all: yes to wrap every file).")
    return ProbeResult(environment, shell, targets, library_dirs, python)


def probe(container: BuildContainer, wrapper_paths: Sequence[str], python: str = "") -> ProbeResult:
    variables = {}
    if python:
        variables = {"TYKKY_INFO_PYTHON": python, "TYKKY_INFO_SCRIPT": template("python_info.py")}
    wrap_all = "yes" if container.config.wrap_all else "no"
    completed = container.run(["/bin/sh", "-c", template("probe.sh"), "probe", wrap_all] + list(wrapper_paths),
                              what="listing the programs in the container", variables=variables, echo=False)
    return parse_probe(completed.output, wrapper_paths)
