"""pip-containerize new|update: a requirements file in, a containerized venv out."""
import re
from pathlib import Path
from typing import Optional

from tykky import installation, lock, wrapping
from tykky.commands import wrap_install as wrap_install_command
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.modes.pip import PipMode

SLIM_CONTAINER = "docker://python:{version}-slim"


def container_source(container: Optional[str]) -> Optional[str]:
    """--container IMG: a vendor image extended with a venv on its own Python (isolated, unless the
    configuration says isolate: no); only the venv goes into the squashfs image."""
    return wrapping.absolute_or_remote(container) if container else None


def slim_config(config: Config) -> Config:
    """--slim: a Python container image, isolated from the host."""
    version = config.python_version or "3.12"
    return config.with_values(container_src=SLIM_CONTAINER.format(version=version), isolate=True,
                              python_version="")


def check_python_version(version: str, slim: bool) -> None:
    """--pyver names python3.X in the container, or with --slim the Python image's tag."""
    if not version:
        return
    if slim and not re.fullmatch(r"[\w][\w.-]*", version):
        raise TykkyError(f"--pyver {version} is not a tag of the Python image: give X.Y, such as 3.12, "
                         "or a tag such as 3.12-slim-bookworm.")
    if not slim and not re.fullmatch(r"3(\.\d+)?", version):
        raise TykkyError(f"--pyver {version} is not a Python version: give X.Y, such as 3.11.")


def check_wrapper_paths(paths: "tuple[str, ...]") -> None:
    relative = [path for path in paths if not path.startswith("/")]
    if relative:
        raise TykkyError(f"-w takes absolute paths inside the container, not {', '.join(relative)}. "
                         "Give them from the root, such as /usr/bin/tar.")


def new(config: Config) -> Path:
    check_python_version(config.python_version, config.slim)
    check_wrapper_paths(config.wrapper_paths)
    if config.slim:
        config = slim_config(config)
    return installation.build_new(config, PipMode())


def update(config: Config, prefix: Path) -> None:
    with lock.held(prefix, config.lock_timeout, existing=True):  # from reading the installation to the new one
        if installation.check_update_mode(prefix, "pip-containerize", ("pip", "wrap-install")) == "wrap-install":
            wrap_install_command.update(config, prefix)
            return
        installation.update(installation.update_config(config, prefix), PipMode(), prefix)
