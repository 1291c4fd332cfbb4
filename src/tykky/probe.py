"""What the container holds: its environment, the programs to wrap and the Python to expose."""
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from tykky_shim import launcher

from tykky import log
from tykky.config import Config
from tykky.container_exec import BuildContainer, template
from tykky.errors import TykkyError
from tykky.layout import RESERVED_NAMES

# Prints those of its arguments that exist: the paths to wrap that the image itself has.
EXISTING_PATHS = 'for p; do if [ -e "$p" ] || [ -L "$p" ]; then printf "%s\\n" "$p"; fi; done; exit 0'


@dataclass(frozen=True)
class ProbeResult:
    environment: Dict[str, str]
    shell: str
    targets: Dict[str, str]
    library_dirs: List[str]
    python: Optional[Dict[str, str]] = field(default=None)


def parse_probe(output: str, wrapper_paths: Sequence[str],
                check_missing: Callable[[List[str]], None] = lambda missing: None) -> ProbeResult:
    """check_missing raises its own error for missing paths it can explain better."""
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
        check_missing(missing)
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
    return parse_probe(completed.output, wrapper_paths, lambda missing: check_hidden(container, missing))


def covering_bind(path: str, binds: Sequence[str]) -> str:
    """The innermost of binds whose destination is path or one of its parents ("" if none)."""
    path = path.rstrip("/")
    covering = [launcher.bind_destination(b).rstrip("/") for b in binds]
    covering = [d for d in covering if d and (path == d or path.startswith(d + "/"))]
    return max(covering, key=len, default="")


def check_hidden(container: BuildContainer, missing: Sequence[str]) -> None:
    """Missing paths that the image has, where a host directory the site's policy binds covers
    them (in builds and at every launch), are an error naming that directory and how to keep it out."""
    binds = container.policy_binds()
    covered = {path: covering_bind(path, binds) for path in missing}
    covered = {path: bind for path, bind in covered.items() if bind}
    if not covered:
        return
    bare = dataclasses.replace(container, site_binds=False)
    listed = bare.run(["/bin/sh", "-c", EXISTING_PATHS, "exists"] + list(covered),
                      what="looking for the paths to wrap in the image itself", echo=False)
    hidden = {path: bind for path, bind in covered.items() if path in listed.output.splitlines()}
    if hidden:
        absent = [path for path in missing if path not in hidden]
        raise TykkyError(hidden_paths_message(container.config, hidden, absent))


def hidden_paths_message(config: Config, hidden: Dict[str, str], absent: Sequence[str]) -> str:
    binds = sorted(set(hidden.values()))
    named = " and ".join(binds)
    several = len(binds) > 1
    paths = ", ".join(f"{path} (under {bind})" if several else path for path, bind in hidden.items())
    where = "in a -y CONF.yaml or in a site configuration named by CW_GLOBAL_YAML"
    if config.isolate:
        who = f"the configuration's mount point{'s' if several else ''} {named} bind{'' if several else 's'}"
        kept = [point for point in config.mount_points if point.rstrip("/") not in binds]
        fix = f"leave {named} out of mount_points (for example mount_points: [{', '.join(kept)}] {where})"
    else:
        who, fix = "isolate: no binds", f"add {named} to excluded_mount_points ({where})"
    message = (f"These paths to wrap are in the image, but {who} the host's {named} over them, in builds "
               f"and at every launch: {paths}. To wrap them, {fix}; the installation then does not see "
               f"the host's {named}.")
    if absent:
        message += f" These do not exist in the image: {', '.join(absent)}."
    return message
