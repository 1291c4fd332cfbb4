"""One build: its configuration, runtime, build directory, prefix and the installation it
replaces, and the one way a finished build is published (squash, manifest, place, record, write).

`installation.py` decides what to build (a new prefix, a layer over the old ones, a rebuilt
image); every path ends in `BuildSession.publish`.
"""
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple

from tykky import deploy, history, interrupts, layers, layout, program
from tykky.builddir import remove_tree
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.errors import TykkyError
from tykky.image_build import make_manifest, new_build_id, squash_tree
from tykky.manifest import Layer, Manifest
from tykky.modes import Filled, Mode
from tykky.probe import ProbeResult, probe
from tykky.runtime import Runtime


def launcher_interpreter(config: Config) -> str:
    """An absolute interpreter every node has: the system Python 3 when there is one."""
    if config.launcher_python:
        if program.is_shim(config.launcher_python):
            raise TykkyError(f"launcher_python {config.launcher_python} is a pyenv-style shim, which would "
                             "cost every launch ~60 ms. Give the interpreter it leads to (`pyenv which "
                             "python3`) in launcher_python.")
        return config.launcher_python
    for candidate in ("/usr/bin/python3", "/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return os.path.realpath(sys.executable)


@dataclass(frozen=True)
class Built:
    """A filled tree, listed and (for modes with an image) squashed, not yet published."""

    container: BuildContainer
    filled: Filled
    build_id: str
    found: ProbeResult
    image: Optional[Path]  # the new squashfs image in the build directory; None without one


@dataclass(frozen=True)
class BuildSession:
    config: Config
    mode: Mode
    runtime: Runtime
    build: Path
    prefix: Path
    previous: Optional[Manifest]  # the installation an update replaces; None for a new one
    staged: Mapping[str, Optional[str]]

    def fill_and_squash(self, container: BuildContainer, image: Path, source: Optional[Path] = None,
                        marker_tree: Optional[Path] = None) -> Built:
        """Fill the tree, list the programs and, for a mode with an image, squash source into image."""
        filled = self.mode.fill_tree(self.config, container)
        paths = self.mode.wrapper_paths(self.config)
        if not self.mode.has_image:
            return Built(container, filled, new_build_id(), probe(container, paths, filled.python), None)
        build_id, found = squash_tree(self.config, container, paths, image, python=filled.python, source=source,
                                      marker_tree=marker_tree)
        return Built(container, filled, build_id, found, image)

    def manifest(self, built: Built, container_name: str, stack: Tuple[Layer, ...]) -> Manifest:
        config, mode, filled = self.config, self.mode, built.filled
        kept = self.previous.environ_file if self.previous else ""
        manifest = make_manifest(config, built.container, built.found, mode=mode.name, build_id=built.build_id,
                                 container_name=container_name, image_name=stack[0].image if stack else "",
                                 environment=filled.environment,
                                 environ_file=history.ENVIRON_FILE if self.staged.get("environ.sh") else kept,
                                 activation=filled.activation, layers=stack)
        if not stack:
            manifest = dataclasses.replace(manifest, layers=())
        return mode.finish_manifest(config, manifest)

    def publish(self, built: Built, stack: Tuple[Layer, ...], container_image: Optional[Path] = None) -> Manifest:
        """Put the build in place: a new prefix staged and renamed in, or an update's files
        renamed over the installation's with the signals held back. Returns its manifest."""
        if self.previous is None:
            return self._publish_new(built, stack, container_image)
        manifest = self.manifest(built, self.previous.container, stack)
        with interrupts.publishing(self.prefix):
            self._commit_update(built, stack[-1].image, manifest)
            layers.remove_unused_layers(self.prefix, self.previous, manifest)
        return manifest

    def _commit_update(self, built: Built, name: str, manifest: Manifest) -> None:
        """Write the update into the prefix, the manifest last (interruptions wait meanwhile). A
        failure (a full disk) before the manifest is replaced takes back the new layer and history
        entry, so that the installation is as it was."""
        prefix, previous = self.prefix, self.previous
        entry = history.next_entry(prefix, "update")
        new_file = name not in {layer.image for layer in previous.layers}
        try:
            deploy.place_file(built.image, prefix / name)
            self._write(prefix, manifest, "update")
        except BaseException as error:
            if new_file and (prefix / name).exists():
                os.unlink(prefix / name)
            remove_tree(entry)
            if isinstance(error, OSError):
                raise TykkyError(f"Cannot update {prefix}: {deploy.write_failure(error, prefix)} "
                                 "The installation is unchanged.") from error
            raise

    def _publish_new(self, built: Built, stack: Tuple[Layer, ...], container_image: Optional[Path]) -> Manifest:
        if container_image is None:
            raise TykkyError("a new installation needs its container")
        stage = self.build / "stage"
        stage.mkdir()
        if built.image is not None:
            os.replace(built.image, stage / stack[-1].image)
        container_name = self.mode.place_container(container_image, self.config, stage)
        manifest = self.manifest(built, container_name, stack)
        self._write(stage, manifest, "new")
        deploy.deploy_new(stage, self.prefix)
        return manifest

    def _write(self, root: Path, manifest: Manifest, kind: str) -> None:
        """The history, then the launcher and programs; the manifest goes last."""
        history.record(root, kind, self.config, self.staged)
        # Without an image the prefix reads as a venv of the container's Python, which sees its
        # own packages.
        system_site = self.config.enable_site_packages or not self.mode.has_image
        layout.write_installation(root, manifest, interpreter=launcher_interpreter(self.config),
                                  system_site=system_site, previous=self.previous)
