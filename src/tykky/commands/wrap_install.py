"""wrap-install: an existing installation directory in, a containerized installation out."""
from functools import partial
from pathlib import Path

from tykky import installation, wrapping
from tykky.config import Config
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


def new(config: Config, directory: str) -> Path:
    wrapping.check_wrapper_paths(config.wrapper_paths, directory)
    source = wrap_install.check_source(directory)
    if config.mask:
        config = wrap_install.masked_config(config, source)
    # A wrapped Python is used like the system's own: it sees its packages.
    config = config.with_values(enable_site_packages=True)
    wrap_install.in_container_paths(config, source)  # bad -w paths fail before the build starts
    return installation.build_new(config, mode_steps(source))
