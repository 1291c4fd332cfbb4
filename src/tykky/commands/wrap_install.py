"""wrap-install: an existing installation directory in, a containerized installation out."""
import dataclasses
from functools import partial
from pathlib import Path

from tykky import history, installation, lock, wrapping
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.manifest import Manifest
from tykky.modes import ModeSteps, wrap_install


def _finish(config: Config, manifest: Manifest) -> Manifest:
    return wrapping.finish_manifest(manifest)


def mode_steps(source: Path) -> ModeSteps:
    return ModeSteps(
        name="wrap-install",
        stage_inputs=history.stage_inputs,
        fill_tree=partial(wrap_install.fill_tree, source),
        wrapper_paths=lambda config: wrap_install.in_container_paths(config, source),
        python=lambda config: wrap_install.python(config, source),
        finish_manifest=_finish,
    )


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
    steps = dataclasses.replace(mode_steps(Path(config.installation_path)), fill_tree=wrap_install.run_update_hooks,
                                layered_update=True)
    installation.update(config, steps, prefix)


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
    return installation.build_new(config, mode_steps(source))
