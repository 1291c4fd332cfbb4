"""`conda activate`, computed once at build time instead of on every launch.

The build runs the activation inside the container once (templates/conda_build.sh, phase
`capture`) and dumps the environment before, after the standard variables and after the
packages' etc/conda/activate.d scripts. The difference is stored in the manifest's
`activation` block, which the launcher applies with no conda process:

    {"environment": {"CONDA_PREFIX": ..., ...},
     "prepend": {"PATH": [...], "LD_LIBRARY_PATH": [...]}, "append": {...},
     "scripts": "<env>/etc/conda/activate.d"}   (only with activate_scripts_at_launch)
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from tykky import log

PATH_LIKE = ("PATH", "LD_LIBRARY_PATH")
# Variables every shell changes by itself; never part of an activation.
VOLATILE = ("PWD", "OLDPWD", "SHLVL", "_")
ACTIVATE_DIR = "etc/conda/activate.d"


def read_env_dump(path: Path) -> Dict[str, str]:
    """An `env -0` dump as a dict."""
    values: Dict[str, str] = {}
    for entry in path.read_bytes().decode("utf-8", errors="surrogateescape").split("\0"):
        name, equals, value = entry.partition("=")
        if equals and name:
            values[name] = value
    return values


def split_path_change(before: str, after: str) -> Tuple[List[str], List[str]]:
    """What activation put in front of and behind a PATH-like value."""
    old = [entry for entry in before.split(":") if entry]
    new = [entry for entry in after.split(":") if entry]
    if not old:
        return new, []
    for start in range(len(new) - len(old) + 1):
        if new[start:start + len(old)] == old:
            return new[:start], new[start + len(old):]
    # Scripts that rebuild PATH from scratch: keep what they added, in front.
    return [entry for entry in new if entry not in old], []


def _is_shell_internal(name: str) -> bool:
    return name in VOLATILE or name.startswith("BASH_FUNC_")


def environment_change(before: Mapping[str, str], after: Mapping[str, str]) -> Dict[str, Any]:
    environment = {name: value for name, value in sorted(after.items())
                   if name not in PATH_LIKE and not _is_shell_internal(name) and before.get(name) != value}
    prepend: Dict[str, List[str]] = {}
    append: Dict[str, List[str]] = {}
    for name in PATH_LIKE:
        if after.get(name, "") != before.get(name, ""):
            prepend[name], append[name] = split_path_change(before.get(name, ""), after.get(name, ""))
    dropped = sorted(name for name in before if name not in after and not _is_shell_internal(name))
    if dropped:
        log.warning(f"The activation scripts unset {', '.join(dropped)}; launches keep the caller's values.")
    return {"environment": environment, "prepend": prepend, "append": append}


def activation_block(out: Path, env_path: str, scripts_at_launch: bool) -> Optional[Dict[str, Any]]:
    """The manifest's activation block from the dumps the capture phase wrote into `out`."""
    if not (out / "before.env").is_file():
        return None
    before = read_env_dump(out / "before.env")
    if scripts_at_launch:
        block = environment_change(before, read_env_dump(out / "standard.env"))
        block["scripts"] = f"{env_path}/{ACTIVATE_DIR}"
    else:
        block = environment_change(before, read_env_dump(out / "after.env"))
    return block


def variables_script(variables: Mapping[str, str]) -> str:
    """The environment file's `variables:` as shell exports (conda sets them on activation)."""
    return "".join(f"export {name}={_shell_quote(value)}\n" for name, value in sorted(variables.items()))


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"
