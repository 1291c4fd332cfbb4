"""wrap-install: an existing installation directory in, a containerized installation out."""
from pathlib import Path

from tykky import installation, lock, wrapping
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.modes import wrap_install
from tykky.modes.wrap_install import WrapInstallMode


def update(config: Config, prefix: Path) -> None:
    """Pre/post-install commands over the installation's layers; the wrapped paths stay as built."""
    if config.requirements_file:
        raise TykkyError(f"{prefix} was made by wrap-install: it has no virtual environment to install "
                         "requirements into. Install them with --post-install commands instead.")
    with lock.held(prefix, config.lock_timeout, existing=True):  # from reading the installation to the new one
        _update(config, prefix)


def _update(config: Config, prefix: Path) -> None:
    config = installation.update_config(config, prefix)
    # The saved -w paths are in-container paths already (see new): DIR is not needed to map them.
    installation.update(config, WrapInstallMode(Path(config.installation_path), updating=True), prefix)


def new(config: Config, directory: str) -> Path:
    wrapping.check_wrapper_paths(config.wrapper_paths, directory)
    source = wrap_install.check_source(directory)
    if config.mask:
        config = wrap_install.masked_config(config, source)
    # A wrapped Python is used like the system's own: it sees its packages.
    config = config.with_values(enable_site_packages=True)
    # Bad -w paths fail before the build starts; the saved configuration keeps them as the
    # in-container paths they lead to, so that updates need no DIR (it may be gone).
    config = config.with_values(wrapper_paths=tuple(wrap_install.in_container_paths(config, source)))
    return installation.build_new(config, WrapInstallMode(source))
