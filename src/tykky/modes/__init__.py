"""Modes: pip, conda and wrap-install fill a build tree; wrap-container has no image.

A mode is a `Mode`: what it contributes to a build. `build_session.BuildSession` runs the rest
(squash, manifest, place, record, write), the same for every mode. What a mode's install step
finds out (the Python to expose, conda's activation) is returned from `fill_tree` as a
`Filled`, never kept on the mode: one mode object serves a build and its fallbacks alike.

`Mode` is a plain base class, not a typing.Protocol: the tool runs on Python 3.6, which has none.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from tykky import containers, history
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.manifest import Manifest


@dataclass(frozen=True)
class Filled:
    """What a filled tree tells the rest of the build."""

    python: str = ""  # the in-container Python the probe looks at (candidates, colon-separated); "" none
    environment: Mapping[str, str] = field(default_factory=dict)  # launch-time variables
    activation: Optional[Mapping[str, Any]] = None  # conda: what `conda activate` would set


class Mode:
    """The base of every mode; a subclass overrides fill_tree and wrapper_paths, and what differs."""

    name = ""
    # The install step only runs inside the container (it never writes container.tree on the
    # host), so an update can run it over the existing layers and keep just what it changed.
    layered_update = False
    # False: no image of its own, the container's programs are wrapped as they are.
    has_image = True

    def stage_inputs(self, config: Config, build: Path) -> Dict[str, Optional[str]]:
        """The user's files into build/inputs; name -> source for the history."""
        return history.stage_inputs(config, build)

    def fill_tree(self, config: Config, container: BuildContainer) -> Filled:
        raise NotImplementedError

    def wrapper_paths(self, config: Config) -> List[str]:
        """In-container paths whose programs are wrapped."""
        raise NotImplementedError

    def finish_manifest(self, config: Config, manifest: Manifest) -> Manifest:
        """The last word on the manifest (wrap modes: which programs run by their own path)."""
        return manifest

    def place_container(self, image: Path, config: Config, stage: Path) -> str:
        """The container into a new prefix's staging directory; returns its name there."""
        return containers.place(image, config.container_src, stage / config.container_image, config)
