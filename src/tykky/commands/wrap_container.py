"""wrap-container: the programs of an existing container, used as a normal installation
(modes/wrap_container.py)."""
import os
import posixpath
from pathlib import Path

from tykky import installation, wrapping
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.modes import wrap_container


def check_paths(config: Config) -> None:
    wrapping.check_wrapper_paths(config.wrapper_paths, "the container")
    relative = [path for path in config.wrapper_paths if not posixpath.isabs(path)]
    if relative:
        raise TykkyError(f"Paths to wrap must be absolute paths inside the container: {', '.join(relative)}. "
                         "For example -w /usr/bin or -w /opt/tool/bin/tool.")
    if config.environ_file and not os.path.isfile(config.environ_file):
        raise TykkyError(f"The environment file {config.environ_file} does not exist. Check the path.")


def new(config: Config, container_src: str) -> Path:
    """Wrap config.wrapper_paths of container_src into config.installation_prefix."""
    config = config.with_values(container_src=wrapping.absolute_or_remote(container_src))
    check_paths(config)
    return installation.build_new(config, wrap_container.WrapContainerMode())
