"""conda-containerize new|update|advanced: an environment file in, a containerized conda env out."""
import os
from pathlib import Path
from typing import Any, Dict, List

import yaml

from tykky import installation, lock, log
from tykky.conda_env_file import read_env_file
from tykky.config import Config, coerce
from tykky.errors import TykkyError
from tykky.modes.conda import CondaMode, check_env_name

MODE = "conda"
# Chosen when the installation was made; an update keeps them.
KEPT_KEYS = ("env_name", "use_mamba", "activate_scripts_at_launch", "channel_alias", "default_channels")


def new(config: Config) -> Path:
    if not config.env_file:
        raise TykkyError("No environment file given: pass ENV_FILE (an environment.yml, an explicit "
                         "list or a list of package specs), or set env_file.")
    env_file = read_env_file(config.env_file)
    check_env_name(config)
    return installation.build_new(config, CondaMode(env_file))


def update(config: Config, prefix: Path) -> None:
    with lock.held(prefix, config.lock_timeout, existing=True):  # from reading the installation to the new one
        installation.check_update_mode(prefix, "conda-containerize", (MODE,))
        env_file = read_env_file(config.env_file) if config.env_file else None
        config = installation.update_config(config, prefix, KEPT_KEYS)
        installation.update(config, CondaMode(env_file), prefix)


def _commands(value: Any, key: str, source: str) -> List[str]:
    """Tykky's advanced format: a list of commands and {filenames: [...]} entries."""
    items = value if isinstance(value, list) else [value]
    commands: List[str] = []
    for item in items:
        if isinstance(item, str):
            commands.append(item)
        elif isinstance(item, dict) and isinstance(item.get("filenames"), list):
            for name in item["filenames"]:
                try:
                    commands.append(Path(name).read_text())
                except OSError as exc:
                    raise TykkyError(f"Cannot read {name}, named in '{key}' of {source}: {exc.strerror}.") from None
        else:
            raise TykkyError(f"'{key}' in {source} must list commands or {{filenames: [...]}} entries, "
                             f"not {item!r}. Fix the file.")
    return commands


def advanced_values(path: str) -> Dict[str, Any]:
    """The keys of an advanced CONF.yaml as configuration values; it must name env_file."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TykkyError(f"Cannot read the configuration file {path}: {exc}. Fix the file.") from None
    if not isinstance(data, dict):
        raise TykkyError(f"The configuration file {path} must be a mapping of keys to values.")
    mode = data.pop("mode", MODE)
    if mode != MODE:
        raise TykkyError(f"{path} sets mode: {mode}; conda-containerize advanced builds mode: conda. "
                         "Use `update` to change an installation.")
    if "extra_env" in data:
        log.warning(f"{path}: extra_env is not supported; use --environ FILE for launch-time variables.")
        data.pop("extra_env")
    for key in ("pre_install", "post_install"):
        if key in data:
            data[key] = _commands(data[key], key, path)
    for key in ("env_file", "requirements_file", "environ_file", "installation_prefix"):
        if isinstance(data.get(key), str):
            data[key] = os.path.abspath(os.path.expandvars(data[key]))
    if not data.get("env_file"):
        raise TykkyError(f"{path} does not set env_file: name the environment file to install.")
    return {key: coerce(key, value, path) for key, value in data.items()}
