"""wrap-container: the programs of an existing container, used as a normal installation.

A mode without an image: nothing is built. The prefix gets the container (copied; a sandbox
directory is linked, not copied), the launcher and one entry per program. One container call
lists every program, so wrapping all of /usr/bin costs little more than copying the container.
"""
import os
from pathlib import Path

from tykky import containers, history, wrapping
from tykky.config import Config
from tykky.manifest import Manifest
from tykky.modes import ModeSteps

NAME = "wrap-container"


def place(image: Path, config: Config, stage: Path) -> str:
    """The container into the prefix; a sandbox directory is linked: copying it would put its
    thousands of files on the file system this is meant to spare."""
    if image.is_dir():
        name = Path(config.container_image).stem or "container"
        os.symlink(os.path.realpath(image), stage / name)
        return name
    return containers.place(image, config.container_src, stage / config.container_image, config)


def _finish(config: Config, manifest: Manifest) -> Manifest:
    return wrapping.finish_manifest(manifest)


def mode_steps() -> ModeSteps:
    return ModeSteps(
        name=NAME,
        stage_inputs=history.stage_inputs,
        wrapper_paths=lambda config: list(config.wrapper_paths),
        python=lambda config: wrapping.python_candidates(config.wrapper_paths),
        finish_manifest=_finish,
        has_image=False,
        place_container=place,
    )
