"""One frozen configuration: the site YAML, the command line and the CW_* variables.

The site file has Tykky's four sections: `defaults` (used when the user gave nothing),
`force` (always wins), `prepends` and `appends` (added around list values). User values
come from command-line flags and `-y` files; both go through the same validation, so a
wrong key or type is reported with the file (or "command line") it came from.
"""
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import yaml

from tykky._compat import resources
from tykky.errors import TykkyError

SECTIONS = ("defaults", "force", "appends", "prepends")
DEFAULT_SITE_CONFIG = "generic"
# Keys of Tykky site configs that this tool does not need; accepted so configs carry over.
COMPATIBLE_UNUSED_KEYS = ("conda_version", "conda_arch", "source_mount_point",
                          "create_wrappers", "update_mode", "work_dir", "workdir", "extra_envs")


@dataclass(frozen=True)
class Config:
    """Everything a build needs to know; built once per command, never changed."""

    # site policy
    installation_path: str = "/TYKKY"
    installation_prefix: str = ""
    container_src: str = ""
    container_image: str = "container.sif"
    sqfs_image: str = "img.sqfs"
    share_container: bool = False
    mount_points: Tuple[str, ...] = ()
    excluded_mount_points: Tuple[str, ...] = ()
    isolate: bool = False
    wrap_all: bool = False
    add_ld: bool = True
    num_cpus: int = 4
    max_num_cpus: int = 16
    sqfs_options: str = "-comp lz4"
    build_tmpdir_base: str = ""
    singularity_executable_path: str = ""
    composable: bool = False
    log_level: int = 2
    launcher_python: str = ""
    # Launches join a running instance per user, node and image instead of mounting anew.
    warm_mounts: bool = True
    warm_idle_timeout: int = 300
    # Updates add image layers; past this many, they are merged into one.
    max_layers: int = 8
    # Tasks of one Slurm step on a node run in one shared container (apptainer --sharens).
    share_step_container: bool = True
    # Where new/update write an environment module for the installation (Lmod Lua; Tcl too).
    modulefile_dir: str = ""
    modulefile_tcl: bool = False
    # GPUs at every launch and build: nv or rocm give the runtime --nv or --rocm; none (or empty) neither.
    gpu: str = ""
    # Seconds a writer waits for another writer of the same installation; negative: as long as it takes.
    lock_timeout: int = -1
    # what the user asked for
    requirements_file: str = ""
    pre_install: Tuple[str, ...] = ()
    post_install: Tuple[str, ...] = ()
    environ_file: str = ""
    wrapper_paths: Tuple[str, ...] = ()
    enable_site_packages: bool = False
    slim: bool = False
    python_version: str = ""
    use_uv: bool = False
    no_cache: bool = False
    mask: bool = False
    # conda mode
    env_file: str = ""
    env_name: str = "env1"
    use_mamba: bool = False
    activate_scripts_at_launch: bool = False
    channel_alias: str = ""
    default_channels: Tuple[str, ...] = ("conda-forge",)
    rattler_path: str = ""
    rattler_python: str = ""
    # environment switches (CW_* variables)
    debug_keep_files: bool = False
    enable_condarc: bool = False
    fix_permissions: bool = True
    extra_bind_mounts: Tuple[str, ...] = ()
    # where the site configuration came from, for messages and `info`
    site_config_path: str = field(default="", compare=False)
    # the keys the user chose (flags, -y files): an update keeps the installation's own value of
    # a per-installation setting (gpu) unless the user chose again
    given_keys: Tuple[str, ...] = field(default=(), compare=False)

    def with_values(self, **values: Any) -> "Config":
        return dataclasses.replace(self, **values)


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Config)}
_INTERNAL_KEYS = ("debug_keep_files", "fix_permissions", "extra_bind_mounts", "site_config_path",
                  "enable_condarc", "given_keys")
# Keys whose value is one of a few words.
CHOICES = {"gpu": ("nv", "rocm", "none")}
USER_KEYS = tuple(name for name in _FIELD_TYPES if name not in _INTERNAL_KEYS)


def _type_name(expected: Any) -> str:
    return {str: "a string", bool: "yes or no", int: "a whole number"}.get(expected, "a list of strings")


def _expand(value: str) -> str:
    return os.path.expandvars(value)


def coerce(key: str, value: Any, source: str) -> Any:
    """Check one value against the schema; returns it in the form Config stores."""
    if key in COMPATIBLE_UNUSED_KEYS:
        return value
    if key not in _FIELD_TYPES or key in _INTERNAL_KEYS:
        raise TykkyError(
            f"Unknown configuration key '{key}' in {source}. Known keys are: "
            f"{', '.join(sorted(USER_KEYS))}. Fix or remove the key."
        )
    expected = _FIELD_TYPES[key]
    if expected is bool and isinstance(value, bool):
        return value
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if key in CHOICES:
        return _choice(key, value, source)
    if expected is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return _expand(str(value))
    if expected not in (bool, int, str):
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(_expand(v) for v in value)
    raise TykkyError(
        f"Configuration key '{key}' in {source} must be {_type_name(expected)}, "
        f"not {value!r}. Fix the value."
    )


def _choice(key: str, value: Any, source: str) -> str:
    # YAML reads a bare `none` as a string but `no`/`off` as false: both mean none here.
    word = "none" if value is False or value is None else str(value).strip().lower()
    if word not in CHOICES[key]:
        raise TykkyError(f"Configuration key '{key}' in {source} must be one of "
                         f"{', '.join(CHOICES[key])}, not {value!r}. Fix the value.")
    return word


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise TykkyError(f"Cannot read the {what} {path}: {exc.strerror}.") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TykkyError(f"The {what} {path} is not valid YAML{where}: "
                         f"{getattr(exc, 'problem', exc)}. Fix the file.") from exc


def shipped_site_configs() -> Dict[str, Path]:
    folder = resources.files("tykky_configs")
    return {entry.name[:-5]: Path(str(entry)) for entry in folder.iterdir()
            if entry.name.endswith(".yaml")}


def site_config_path(environ: Mapping[str, str], selected: Optional[str] = None) -> Path:
    """CW_GLOBAL_YAML, else the config chosen at setup time, else the generic one.

    Either may be a file or the name of a config shipped with the tool.
    """
    choice = environ.get("CW_GLOBAL_YAML") or selected or DEFAULT_SITE_CONFIG
    shipped = shipped_site_configs()
    if choice in shipped:
        return shipped[choice]
    path = Path(choice).expanduser()
    if path.is_dir():
        raise TykkyError(f"The site configuration '{choice}' is a directory: give a YAML file or one of "
                         f"the shipped configurations ({', '.join(sorted(shipped))}) in CW_GLOBAL_YAML.")
    if not path.is_file():
        raise TykkyError(
            f"The site configuration '{choice}' does not exist: give a YAML file or one of "
            f"the shipped configurations ({', '.join(sorted(shipped))}) in CW_GLOBAL_YAML."
        )
    return path


def read_site_config(path: Path) -> Dict[str, Dict[str, Any]]:
    data = _read_yaml(path, "site configuration") or {}
    if not isinstance(data, dict):
        raise TykkyError(f"The site configuration {path} must be a mapping with the sections "
                         f"{', '.join(SECTIONS)}.")
    sections: Dict[str, Dict[str, Any]] = {}
    for name, content in data.items():
        if name not in SECTIONS:
            raise TykkyError(f"Unknown section '{name}' in the site configuration {path}: "
                             f"the sections are {', '.join(SECTIONS)}.")
        content = content or {}
        if not isinstance(content, dict):
            raise TykkyError(f"Section '{name}' of {path} must be a mapping of keys to values.")
        source = f"section '{name}' of {path}"
        sections[name] = {key: coerce(key, value, source) for key, value in content.items()}
    return {name: sections.get(name, {}) for name in SECTIONS}


def read_user_config(path: str) -> Dict[str, Any]:
    """A `-y CONF.yaml` file: plain keys, validated like the site file."""
    data = _read_yaml(Path(path), "configuration file") or {}
    if not isinstance(data, dict):
        raise TykkyError(f"The configuration file {path} must be a mapping of keys to values.")
    return {key: coerce(key, value, str(path)) for key, value in data.items()}


def _merge(key: str, user: Mapping[str, Any], site: Mapping[str, Dict[str, Any]]) -> Any:
    if key in site["force"]:
        value = site["force"][key]
    elif key in user:
        value = user[key]
    elif key in site["defaults"]:
        value = site["defaults"][key]
    else:
        return None
    if isinstance(value, tuple):
        value = tuple(site["prepends"].get(key, ())) + value + tuple(site["appends"].get(key, ()))
    return value


def _environment_values(environ: Mapping[str, str]) -> Dict[str, Any]:
    values: Dict[str, Any] = {
        "debug_keep_files": bool(environ.get("CW_DEBUG_KEEP_FILES")),
        "fix_permissions": not environ.get("CW_NO_FIX_PERM"),
        "extra_bind_mounts": tuple(p for p in environ.get("CW_EXTRA_BIND_MOUNTS", "").split(",") if p),
        "enable_condarc": bool(environ.get("CW_ENABLE_CONDARC")),
    }
    if environ.get("CW_LOG_LEVEL", "").strip().isdigit():
        values["log_level"] = int(environ["CW_LOG_LEVEL"])
    return values


def _lock_timeout(environ: Mapping[str, str]) -> Optional[int]:
    raw = environ.get("TYKKY_LOCK_TIMEOUT", "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise TykkyError(f"TYKKY_LOCK_TIMEOUT={raw} is not a whole number of seconds: set it to how long "
                         "to wait for another writer of the installation (-1: as long as it takes), "
                         "or unset it.") from None


def build_config(user: Mapping[str, Any], environ: Mapping[str, str],
                 selected_site: Optional[str] = None) -> Config:
    """Merge site file, user values and environment into the frozen Config."""
    path = site_config_path(environ, selected_site)
    site = read_site_config(path)
    values: Dict[str, Any] = {}
    for key in USER_KEYS:
        merged = _merge(key, user, site)
        if merged is not None:
            values[key] = merged
    values.update(_environment_values(environ))
    if environ.get("CW_BUILD_TMPDIR") and "build_tmpdir_base" not in site["force"]:
        values["build_tmpdir_base"] = environ["CW_BUILD_TMPDIR"]
    if _lock_timeout(environ) is not None and "lock_timeout" not in site["force"]:
        values["lock_timeout"] = _lock_timeout(environ)
    config = Config(site_config_path=str(path), given_keys=tuple(sorted(user)), **values)
    cores = os.cpu_count() or 1
    max_cpus = max(1, min(config.max_num_cpus, cores))
    return config.with_values(max_num_cpus=max_cpus, num_cpus=max(1, min(config.num_cpus, max_cpus)))
