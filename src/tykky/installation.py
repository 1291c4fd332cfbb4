"""Building an image-based installation new, or updating one, shared by pip, conda and wrap-install.

A mode only fills the tree; this module owns the rest: build directory, container, history,
squashing, manifest and the atomic deploy.
"""
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import yaml

from tykky import containers, deploy, history, inputs, interrupts, layers, layout, lock, log, modulefile, program
from tykky import manifest as manifest_module
from tykky.builddir import build_directory, remove_tree
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.errors import NeedsRebuild, TykkyError
from tykky.image_build import make_manifest, squash_tree
from tykky.manifest import Layer, Manifest
from tykky.probe import ProbeResult
from tykky.runtime import Runtime, find_runtime

ENVIRON_FILE = "share/tykky/environ.sh"
# How an install step's failure reads when the overlay could not remove a lower directory.
OVERLAY_REMOVAL_FAILURES = ("Invalid cross-device link", "Input/output error", "[Errno 18]", "[Errno 5]")


@dataclass(frozen=True)
class ModeSteps:
    """What a mode contributes to a build."""

    name: str
    stage_inputs: Callable[[Config, Path], Dict[str, Optional[str]]]
    fill_tree: Callable[[Config, BuildContainer], None]
    wrapper_paths: Callable[[Config], List[str]]
    python: Callable[[Config], str]
    environment: Callable[[Config, BuildContainer], Mapping[str, str]] = lambda config, container: {}
    activation: Callable[[Config, BuildContainer], Optional[Mapping[str, Any]]] = lambda config, container: None
    # Last word on the manifest (wrap-install: which programs run by their own path).
    finish_manifest: Callable[[Config, Manifest], Manifest] = lambda config, manifest: manifest
    # The install step only runs inside the container (it never writes container.tree on the
    # host), so an update can run it over the existing layers and keep just what it changed.
    layered_update: bool = False


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


def _environ_file_name(config: Config, staged: Mapping[str, Optional[str]]) -> str:
    return ENVIRON_FILE if staged.get("environ.sh") else ""


def _check_inputs(config: Config) -> None:
    """The user's files, checked before a build starts: a mistake here costs no build."""
    if config.requirements_file:
        text = inputs.read_text_file(config.requirements_file, "requirements file")
        if not (inputs.has_requirements(text) or config.pre_install or config.post_install):
            raise TykkyError(f"The requirements file {config.requirements_file} lists no packages (it is "
                             "empty or only comments). Give a file with at least one requirement.")
    if config.environ_file:
        inputs.read_text_file(config.environ_file, "environment file")
        inputs.check_shell_syntax(config.environ_file, "environment file")


def build_new(config: Config, mode: ModeSteps) -> Path:
    """Build an installation at config.installation_prefix; nothing is left behind on failure."""
    prefix = Path(config.installation_prefix).absolute()
    _check_inputs(config)
    modulefile.check(config)
    deploy.check_new_prefix(prefix)
    containers.check_buildable(config.container_src)
    with lock.held(prefix, config.lock_timeout):
        deploy.check_new_prefix(prefix)  # another writer may have made it while this one waited
        _build_new(config, mode, prefix)
        modulefile.write_for(config, prefix)
    return prefix


def _build_new(config: Config, mode: ModeSteps, prefix: Path) -> None:
    runtime = find_runtime(config.singularity_executable_path)
    with build_directory(config.build_tmpdir_base, config.debug_keep_files) as build:
        image = containers.obtain(config.container_src, runtime, build)
        squash_source, tree = layers.new_tree(build, config)
        stage = build / "stage"
        stage.mkdir()
        staged = mode.stage_inputs(config, build)
        container = BuildContainer(runtime, image, config, tree, build)
        mode.fill_tree(config, container)
        build_id, found = squash_tree(config, container, mode.wrapper_paths(config),
                                      stage / config.sqfs_image, python=mode.python(config),
                                      source=squash_source)
        container_name = containers.place(image, config.container_src, stage / config.container_image, config)
        manifest = make_manifest(config, container, found, mode=mode.name, build_id=build_id,
                                 container_name=container_name, image_name=config.sqfs_image,
                                 layers=(layers.first_layer(config),),
                                 environment=mode.environment(config, container),
                                 environ_file=_environ_file_name(config, staged),
                                 activation=mode.activation(config, container))
        manifest = mode.finish_manifest(config, manifest)
        _record(stage, config, staged)
        layout.write_installation(stage, manifest, interpreter=launcher_interpreter(config),
                                  system_site=config.enable_site_packages)
        deploy.deploy_new(stage, prefix)


def _record(root: Path, config: Config, staged: Mapping[str, Optional[str]], kind: str = "new") -> None:
    history.record(root, kind, config, staged)
    if staged.get("environ.sh"):
        layout.replace_file(root / ENVIRON_FILE, Path(staged["environ.sh"]).read_bytes())


def update(config: Config, mode: ModeSteps, prefix: Path) -> None:
    """Apply new inputs to an installation; running programs keep the images they opened.

    The writer lock is held from reading the installation to putting the new one in place
    (the command takes it before it reads the saved configuration)."""
    prefix = prefix.absolute()
    with lock.held(prefix, config.lock_timeout, existing=True):
        previous = manifest_module.load(prefix)
        deploy.check_update_prefix(prefix)
        check_installation_files(prefix, previous)
        _check_inputs(config)
        modulefile.check(config)
        runtime = find_runtime(config.singularity_executable_path)
        with build_directory(config.build_tmpdir_base, config.debug_keep_files) as build:
            staged = mode.stage_inputs(config, build)
            if not (mode.layered_update and layers.can_stack(previous)
                    and _try_stacked_update(config, mode, prefix, previous, runtime, build, staged)):
                _rebuild_update(config, mode, prefix, previous, runtime, build, staged)
        modulefile.write_for(config, prefix)
    log.info(f"Updated {prefix}")


def _try_stacked_update(config: Config, mode: ModeSteps, prefix: Path, previous: Manifest, runtime: Runtime,
                        build: Path, staged: Mapping[str, Optional[str]]) -> bool:
    """The O(change) update; False when it must be done by rebuilding the image instead.

    Where the overlay cannot remove directories of lower layers, an install step that needs
    to (pip upgrading or uninstalling a package) fails: then, and only then, the image is
    rebuilt. Nothing in the prefix changes before the step has succeeded.
    """
    removals_work = layers.removals_work(runtime, prefix, previous, config, build)
    try:
        manifest = _stacked_update(config, mode, prefix, previous, runtime, build, staged, removals_work)
    except NeedsRebuild as error:
        log.info(f"{error.message} Rebuilding the image instead.")
        return False
    except TykkyError as error:
        if removals_work or not any(sign in error.details for sign in OVERLAY_REMOVAL_FAILURES):
            raise
        log.warning(f"The update could not run over the image layers ({error.message.rstrip(':')}); "
                    "rebuilding the image instead")
        return False
    if len(manifest.layers) > config.max_layers:
        _replace_layers(prefix, manifest, layers.compact(prefix, runtime, config, build))
    return True


def _finish_update(config: Config, mode: ModeSteps, prefix: Path, previous: Manifest,
                   container: BuildContainer, found: ProbeResult, build_id: str,
                   staged: Mapping[str, Optional[str]], stack: Tuple[Layer, ...]) -> Manifest:
    environ_file = ENVIRON_FILE if staged.get("environ.sh") else previous.environ_file
    manifest = make_manifest(config, container, found, mode=mode.name, build_id=build_id,
                             container_name=previous.container, image_name=stack[0].image,
                             environment=mode.environment(config, container), environ_file=environ_file,
                             activation=mode.activation(config, container), layers=stack)
    return mode.finish_manifest(config, manifest)


def _stacked_update(config: Config, mode: ModeSteps, prefix: Path, previous: Manifest, runtime: Runtime,
                    build: Path, staged: Mapping[str, Optional[str]], removals_work: bool) -> Manifest:
    """Run the install step over the existing layers; what it changed becomes a new layer."""
    container, upper = layers.stacked_container(runtime, prefix, previous, config, build, removals_work)
    mode.fill_tree(config, container)
    image = build / "layer.sqfs"
    build_id, found = squash_tree(config, container, mode.wrapper_paths(config), image,
                                  python=mode.python(config), source=upper,
                                  marker_tree=layers.marker_directory(upper, config))
    name = layers.layer_name(build_id)
    stack = previous.layers + (Layer(image=name, target=previous.installation_path, mount=layers.OVERLAY),)
    manifest = _finish_update(config, mode, prefix, previous, container, found, build_id, staged, stack)
    with interrupts.publishing(prefix):
        _commit_update(config, prefix, image, name, staged, manifest, previous)
    return manifest


def check_installation_files(prefix: Path, manifest: Manifest) -> None:
    """The container and image layers an update builds on must be whole."""
    advice = "The installation is damaged: rebuild it with `new` (or restore it from a copy)."
    for name in (manifest.container,) + tuple(layer.image for layer in manifest.layers):
        path = prefix / name
        if not os.path.lexists(path):
            raise TykkyError(f"{path} is missing. {advice}")
        containers.check_image_file(path, str(path), advice)


def _rebuild_update(config: Config, mode: ModeSteps, prefix: Path, previous: Manifest, runtime: Runtime,
                    build: Path, staged: Mapping[str, Optional[str]]) -> None:
    """Copy the installation out of its image(s), apply the inputs, squash it into one new image."""
    root, tree = layers.merged_tree(prefix, previous, runtime, config, build, name="rebuild")
    container = BuildContainer(runtime, prefix / previous.container, config, tree, build)
    mode.fill_tree(config, container)
    new_image = build / "new.sqfs"
    build_id, found = squash_tree(config, container, mode.wrapper_paths(config), new_image,
                                  python=mode.python(config), source=root)
    first = previous.layers[0]
    name = first.image if len(previous.layers) == 1 else layers.layer_name(build_id)
    stack = (Layer(image=name, target=first.target, mount=first.mount),)
    manifest = _finish_update(config, mode, prefix, previous, container, found, build_id, staged, stack)
    with interrupts.publishing(prefix):
        _commit_update(config, prefix, new_image, name, staged, manifest, previous)
        layers.remove_unused_layers(prefix, previous, manifest)


def _commit_update(config: Config, prefix: Path, image: Path, name: str, staged: Mapping[str, Optional[str]],
                   manifest: Manifest, previous: Manifest) -> None:
    """Write the update into the prefix, the manifest last (interruptions wait meanwhile). A
    failure (a full disk) before the manifest is replaced takes back the new layer and history
    entry, so that the installation is as it was."""
    entry = history.next_entry(prefix, "update")
    new_file = name not in {layer.image for layer in previous.layers}
    try:
        deploy.place_file(image, prefix / name)
        _record(prefix, config, staged, kind="update")
        layout.write_installation(prefix, manifest, interpreter=launcher_interpreter(config),
                                  system_site=config.enable_site_packages, previous=previous)
    except BaseException as error:
        if new_file and (prefix / name).exists():
            os.unlink(prefix / name)
        remove_tree(entry)
        if isinstance(error, OSError):
            raise TykkyError(f"Cannot update {prefix}: {deploy.write_failure(error, prefix)} "
                             "The installation is unchanged.") from error
        raise


def _replace_layers(prefix: Path, before: Manifest, after: Manifest) -> None:
    with interrupts.publishing(prefix):
        manifest_module.write(after, prefix)
        layers.remove_unused_layers(prefix, before, after)


def compact(config: Config, prefix: Path) -> None:
    """Merge an installation's layers into one image."""
    prefix = prefix.absolute()
    with lock.held(prefix, config.lock_timeout, existing=True):
        before = manifest_module.load(prefix)
        deploy.check_update_prefix(prefix)
        runtime = find_runtime(config.singularity_executable_path)
        with build_directory(config.build_tmpdir_base, config.debug_keep_files) as build:
            _replace_layers(prefix, before, layers.compact(prefix, runtime, config, build))
    log.info(f"Compacted {prefix} into one layer")


def check_update_mode(prefix: Path, command: str, modes: Tuple[str, ...]) -> str:
    """The installation's mode, when `command update` can update it."""
    mode = manifest_module.load(prefix).mode
    if mode in modes:
        return mode
    how = {"wrap-install": "add to it with `pip-containerize update DIR --pre-install F --post-install F`",
           "wrap-container": "it has no image of its own: run wrap-container again to change it"}
    raise TykkyError(f"{prefix} is a {mode} installation, which `{command} update` cannot update: "
                     + how.get(mode, f"update it with `{mode}-containerize update`") + ".")


def update_config(config: Config, prefix: Path) -> Config:
    """An update keeps the choices the installation was built with, adding the new inputs."""
    previous = manifest_module.load(prefix)
    saved = prefix / history.SHARE / "config.yaml"
    values = yaml.safe_load(saved.read_text()) if saved.is_file() else {}
    keep = ("installation_path", "isolate", "mount_points", "excluded_mount_points", "wrap_all",
            "add_ld", "wrapper_paths", "enable_site_packages", "python_version", "use_uv", "slim",
            "container_src", "mask")
    kept = {key: tuple(values[key]) if isinstance(values.get(key), list) else values[key]
            for key in keep if key in values}
    kept["installation_path"] = previous.installation_path
    if "gpu" not in config.given_keys:
        kept["gpu"] = previous.gpu or "none"
    # `update -w PATHS` wraps more programs, as in Tykky; the paths wrapped before stay.
    kept_paths = kept.get("wrapper_paths", ())
    kept["wrapper_paths"] = kept_paths + tuple(p for p in config.wrapper_paths if p not in kept_paths)
    if not config.modulefile_dir and values.get("modulefile_dir"):  # keep the module file current
        kept.update(modulefile_dir=values["modulefile_dir"], modulefile_tcl=bool(values.get("modulefile_tcl")))
    return config.with_values(installation_prefix=str(prefix), **kept)
