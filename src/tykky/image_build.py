"""The steps every image-based build shares once its tree is filled: probe, squash, manifest."""
import os
import secrets
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence

from tykky import __version__, log, squash
from tykky import runtime as runtime_module
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.manifest import Layer, Manifest, PathVariable
from tykky.probe import ProbeResult, probe


def new_build_id() -> str:
    return secrets.token_hex(8)


def write_marker(tree: Path, build_id: str) -> None:
    marker = tree / ".tykky" / "build-id"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(build_id + "\n")


def make_manifest(config: Config, container: BuildContainer, found: ProbeResult, *,
                  mode: str, build_id: str, container_name: str, image_name: str,
                  environment: Optional[Mapping[str, str]] = None, environ_file: str = "",
                  activation: Optional[Mapping[str, Any]] = None,
                  layers: Sequence[Layer] = ()) -> Manifest:
    runtime = container.runtime
    library_dirs = tuple(found.library_dirs) if config.add_ld else ()
    return Manifest(
        tool_version=__version__, build_id=build_id, mode=mode,
        runtime={"name": runtime.name, "path": runtime.path, "version": runtime.version_text},
        container=container_name,
        layers=tuple(layers) if layers else (Layer(image=image_name, target=config.installation_path),),
        installation_path=config.installation_path, isolate=config.isolate,
        mount_points=config.mount_points, excluded_mount_points=config.excluded_mount_points,
        targets=found.targets,
        path=PathVariable(container=found.environment.get("PATH", "")),
        ld_library_path=PathVariable(prepend=library_dirs,
                                     container=found.environment.get("LD_LIBRARY_PATH", "")),
        environment=dict(environment or {}), environ_file=environ_file,
        shell=found.shell, python=found.python, activation=activation,
        share_step_container=config.share_step_container, gpu=runtime_module.gpu_choice(config.gpu),
        warm={"enabled": config.warm_mounts, "idle_timeout": config.warm_idle_timeout},
    )


def sources_without_bytecode(tree: Path, version: str) -> List[str]:
    """.py files under tree lacking byte code for CPython `version` ("3.11"), relative to tree."""
    tag = "cpython-" + version.replace(".", "")
    missing = []
    for root, _dirs, files in os.walk(tree):
        for name in files:
            if name.endswith(".py") and not os.path.exists(os.path.join(root, "__pycache__",
                                                                        f"{name[:-3]}.{tag}.pyc")):
                missing.append(os.path.relpath(os.path.join(root, name), tree))
    return missing


def compile_bytecode(container: BuildContainer, python: Optional[Mapping[str, str]], tree: Path) -> None:
    """Byte-compile the .py files that lack byte code: a read-only image cannot cache byte code
    later, so a missing .pyc would be compiled again on every launch. Installers compile most
    of what they install; checking on the host spares a container start when they did all."""
    if not python or not python.get("executable"):
        return
    missing = sources_without_bytecode(tree, python["version"])
    if not missing:
        return
    log.info(f"Byte-compiling {len(missing)} Python files")
    listing = container.build / "compile-list.txt"
    inside = container.config.installation_path
    listing.write_text("".join(f"{inside}/{path}\n" for path in missing))
    container.run([python["executable"], "-m", "compileall", "-q", "-i", str(listing)],
                  what="byte-compiling", check=False)


def squash_tree(config: Config, container: BuildContainer, wrapper_paths: Sequence[str],
                image: Path, *, python: str = "", source: Optional[Path] = None,
                marker_tree: Optional[Path] = None) -> "tuple[str, ProbeResult]":
    """Mark the tree with a new build id, list its programs and squash it into image.

    source is what becomes the image (default: the tree itself); marker_tree is the host
    directory the installation path's new content lives in (default: the tree).
    """
    build_id = new_build_id()
    write_marker(marker_tree or container.tree, build_id)
    found = probe(container, wrapper_paths, python)
    compile_bytecode(container, found.python, marker_tree or container.tree)
    log.info("Creating the squashfs image")
    squash.squash(source or container.tree, image, options=config.sqfs_options,
                  processors=config.max_num_cpus, fix_perm=config.fix_permissions)
    return build_id, found
