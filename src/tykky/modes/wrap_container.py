"""wrap-container: the programs of an existing container, used as a normal installation.

A mode without an image: nothing is built. The prefix gets the container (copied; a sandbox
directory is linked, not copied), the launcher and one entry per program. One container call
lists every program, so wrapping all of /usr/bin costs little more than copying the container.
"""
import os
from pathlib import Path
from typing import List

from tykky import containers, wrapping
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.manifest import Manifest
from tykky.modes import Filled, Mode


def place(image: Path, config: Config, stage: Path) -> str:
    """The container into the prefix; a sandbox directory is linked: copying it would put its
    thousands of files on the file system this is meant to spare."""
    if image.is_dir():
        name = Path(config.container_image).stem or "container"
        os.symlink(os.path.realpath(image), stage / name)
        return name
    return containers.place(image, config.container_src, stage / config.container_image, config)


class WrapContainerMode(Mode):
    """No tree and no image: the probe lists the -w paths' programs in the container itself."""

    name = "wrap-container"
    has_image = False

    def fill_tree(self, config: Config, container: BuildContainer) -> Filled:
        return Filled(python=wrapping.python_candidates(config.wrapper_paths))

    def wrapper_paths(self, config: Config) -> List[str]:
        return list(config.wrapper_paths)

    def finish_manifest(self, config: Config, manifest: Manifest) -> Manifest:
        return wrapping.finish_manifest(manifest)

    def place_container(self, image: Path, config: Config, stage: Path) -> str:
        return place(image, config, stage)
