"""Modes fill a build tree: pip, conda, wrap-install; wrap-container has no tree (no image).

A mode is a `ModeSteps`: what it contributes to a build. `build_session.BuildSession` runs
the rest (squash, manifest, place, record, write), the same for every mode.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.manifest import Manifest


def _no_tree(config: Config, container: BuildContainer) -> None:
    """A mode without an image has no tree to fill."""


@dataclass(frozen=True)
class ModeSteps:
    """What a mode contributes to a build."""

    name: str
    stage_inputs: Callable[[Config, Path], Dict[str, Optional[str]]]
    wrapper_paths: Callable[[Config], List[str]]
    python: Callable[[Config], str]
    fill_tree: Callable[[Config, BuildContainer], None] = _no_tree
    environment: Callable[[Config, BuildContainer], Mapping[str, str]] = lambda config, container: {}
    activation: Callable[[Config, BuildContainer], Optional[Mapping[str, Any]]] = lambda config, container: None
    # Last word on the manifest (wrap modes: which programs run by their own path).
    finish_manifest: Callable[[Config, Manifest], Manifest] = lambda config, manifest: manifest
    # The install step only runs inside the container (it never writes container.tree on the
    # host), so an update can run it over the existing layers and keep just what it changed.
    layered_update: bool = False
    # False: no image of its own, the container's programs are wrapped as they are (wrap-container).
    has_image: bool = True
    # The container into the new prefix (in its staging directory); returns its name there.
    place_container: Optional[Callable[[Path, Config, Path], str]] = None
