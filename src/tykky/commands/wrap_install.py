"""wrap-install: an existing installation directory in, a containerized installation out."""
import dataclasses
import json
from functools import partial
from pathlib import Path

from tykky import history, installation, wrapping
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.installation import ModeSteps
from tykky.manifest import Manifest
from tykky.modes import wrap_install


def _finish(config: Config, manifest: Manifest) -> Manifest:
    return wrapping.finish_manifest(manifest)


def mode_steps(source: Path) -> ModeSteps:
    return ModeSteps(
        name="wrap-install",
        stage_inputs=wrapping.stage_inputs,
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
    config = installation.update_config(config, prefix)
    source = recorded_source(prefix)
    steps = dataclasses.replace(mode_steps(source), fill_tree=wrap_install.run_update_hooks, layered_update=True)
    installation.update(config, steps, prefix)


def recorded_source(prefix: Path) -> Path:
    """The DIR the installation was made from (it may be gone: only its path is used)."""
    command = prefix / history.SHARE / "history" / "0001-new" / "command.json"
    try:
        return Path(json.loads(command.read_text())["argv"][-1])
    except (OSError, ValueError, KeyError, IndexError):
        raise TykkyError(f"Cannot read how {prefix} was made ({command}): it is needed to update it. "
                         "Build the installation anew with wrap-install.") from None


def new(config: Config, directory: str) -> Path:
    wrapping.check_wrapper_paths(config.wrapper_paths, directory)
    source = wrap_install.check_source(directory)
    if config.mask:
        config = wrap_install.masked_config(config, source)
    # A wrapped Python is used like the system's own: it sees its packages.
    config = config.with_values(enable_site_packages=True)
    wrap_install.in_container_paths(config, source)  # bad -w paths fail before the build starts
    return installation.build_new(config, mode_steps(source))
