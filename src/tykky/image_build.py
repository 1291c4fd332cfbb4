"""The steps every image-based build shares once its tree is filled: probe, squash, manifest."""
import secrets
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from tykky import __version__, log, squash
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
        share_step_container=config.share_step_container,
        warm={"enabled": config.warm_mounts, "idle_timeout": config.warm_idle_timeout},
    )


def compile_bytecode(container: BuildContainer, python: str) -> None:
    """Byte-compile every .py under the installation path: a read-only image cannot cache
    byte code later, so a missing .pyc would be compiled again on every launch."""
    if not python:
        return
    log.info("Byte-compiling Python files")
    container.run([python, "-m", "compileall", "-q", "-j", "0", container.config.installation_path],
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
    python_used = found.python.get("executable", python) if found.python else ""
    compile_bytecode(container, python_used)
    log.info("Creating the squashfs image")
    squash.squash(source or container.tree, image, options=config.sqfs_options,
                  processors=config.max_num_cpus, fix_perm=config.fix_permissions)
    return build_id, found
