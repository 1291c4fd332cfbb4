"""Building an installation new, or updating one, the same for every mode.

A mode only fills the tree (modes/); this module decides what to build (a new prefix, a layer
over the installation's, a rebuilt image) under the writer lock, and `BuildSession.publish`
puts every one of them in place.
"""
import os
from pathlib import Path
from typing import Tuple

from tykky import containers, deploy, history, inputs, interrupts, layers, layout, lock, log, modulefile
from tykky import manifest as manifest_module
from tykky.build_session import BuildSession, launcher_interpreter
from tykky.builddir import build_directory
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.errors import NeedsRebuild, TykkyError
from tykky.manifest import Layer, Manifest
from tykky.modes import Mode
from tykky.runtime import find_runtime

__all__ = ["Mode", "build_new", "check_update_mode", "compact", "launcher_interpreter", "update",
           "update_config"]
# How an install step's failure reads when the overlay could not remove a lower directory.
OVERLAY_REMOVAL_FAILURES = ("Invalid cross-device link", "Input/output error", "[Errno 18]", "[Errno 5]")


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


def build_new(config: Config, mode: Mode) -> Path:
    """Build an installation at config.installation_prefix; nothing is left behind on failure."""
    prefix = Path(config.installation_prefix).absolute()
    _check_inputs(config)
    modulefile.check(config)
    deploy.check_new_prefix(prefix)
    if mode.has_image:  # wrap-container ships the container as given: a sandbox directory is linked
        containers.check_buildable(config.container_src)
    with lock.held(prefix, config.lock_timeout):
        deploy.check_new_prefix(prefix)  # another writer may have made it while this one waited
        _build_new(config, mode, prefix)
        modulefile.write_for(config, prefix)
    return prefix


def _build_new(config: Config, mode: Mode, prefix: Path) -> None:
    runtime = find_runtime(config.singularity_executable_path)
    with build_directory(config.build_tmpdir_base, config.debug_keep_files) as build:
        image = containers.obtain(config.container_src, runtime, build)
        session = BuildSession(config, mode, runtime, build, prefix, None, mode.stage_inputs(config, build))
        squash_source, tree = layers.new_tree(build, config) if mode.has_image else (None, None)
        container = BuildContainer(runtime, image, config, tree, build)
        built = session.fill_and_squash(container, build / "new.sqfs", source=squash_source)
        stack = (layers.first_layer(config),) if mode.has_image else ()
        session.publish(built, stack, container_image=image)


def update(config: Config, mode: Mode, prefix: Path) -> None:
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
            session = BuildSession(config, mode, runtime, build, prefix, previous, mode.stage_inputs(config, build))
            if not (mode.layered_update and layers.can_stack(previous) and _try_stacked_update(session)):
                _rebuild_update(session)
        modulefile.write_for(config, prefix)
    log.info(f"Updated {prefix}")


def check_installation_files(prefix: Path, manifest: Manifest) -> None:
    """The container and image layers an update builds on must be whole."""
    advice = "The installation is damaged: rebuild it with `new` (or restore it from a copy)."
    for name in (manifest.container,) + tuple(layer.image for layer in manifest.layers):
        path = prefix / name
        if not os.path.lexists(path):
            raise TykkyError(f"{path} is missing. {advice}")
        containers.check_image_file(path, str(path), advice)


def _try_stacked_update(session: BuildSession) -> bool:
    """The O(change) update; False when it must be done by rebuilding the image instead.

    Where the overlay cannot remove directories of lower layers, an install step that needs
    to (pip upgrading or uninstalling a package) fails: then, and only then, the image is
    rebuilt. Nothing in the prefix changes before the step has succeeded.
    """
    config, prefix, previous = session.config, session.prefix, session.previous
    removals_work = layers.removals_work(session.runtime, prefix, previous, config, session.build)
    try:
        manifest = _stacked_update(session, removals_work)
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
        _replace_layers(prefix, manifest, layers.compact(prefix, session.runtime, config, session.build))
    return True


def _stacked_update(session: BuildSession, removals_work: bool) -> Manifest:
    """Run the install step over the existing layers; what it changed becomes a new layer."""
    config, previous = session.config, session.previous
    container, upper = layers.stacked_container(session.runtime, session.prefix, previous, config,
                                                session.build, removals_work)
    built = session.fill_and_squash(container, session.build / "layer.sqfs", source=upper,
                                    marker_tree=layers.marker_directory(upper, config))
    layer = Layer(image=layers.layer_name(built.build_id), target=previous.installation_path, mount=layers.OVERLAY)
    return session.publish(built, previous.layers + (layer,))


def _rebuild_update(session: BuildSession) -> None:
    """Copy the installation out of its image(s), apply the inputs, squash it into one new image."""
    config, prefix, previous = session.config, session.prefix, session.previous
    root, tree = layers.merged_tree(prefix, previous, session.runtime, config, session.build, name="rebuild")
    container = BuildContainer(session.runtime, prefix / previous.container, config, tree, session.build)
    built = session.fill_and_squash(container, session.build / "new.sqfs", source=root)
    first = previous.layers[0]
    name = first.image if len(previous.layers) == 1 else layers.layer_name(built.build_id)
    session.publish(built, (Layer(image=name, target=first.target, mount=first.mount),))


def _replace_layers(prefix: Path, before: Manifest, after: Manifest) -> None:
    with interrupts.publishing(prefix):
        manifest_module.write(after, prefix)
        layout.refresh_launcher(prefix)
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


# What every update keeps of the configuration the installation was built with.
KEPT_KEYS = ("installation_path", "isolate", "mount_points", "excluded_mount_points", "wrap_all",
             "add_ld", "wrapper_paths", "enable_site_packages", "python_version", "use_uv", "slim",
             "container_src", "mask")


def update_config(config: Config, prefix: Path, mode_keys: Tuple[str, ...] = ()) -> Config:
    """An update keeps the choices the installation was built with (KEPT_KEYS and the mode's
    own mode_keys), adding the new inputs."""
    previous = manifest_module.load(prefix)
    values = history.saved_values(prefix, ("modulefile_dir", "modulefile_tcl"))
    kept = history.saved_values(prefix, KEPT_KEYS + mode_keys)
    kept["installation_path"] = previous.installation_path
    if "gpu" not in config.given_keys:
        kept["gpu"] = previous.gpu or "none"
    # `update -w PATHS` wraps more programs, as in Tykky; the paths wrapped before stay.
    kept_paths = kept.get("wrapper_paths", ())
    kept["wrapper_paths"] = kept_paths + tuple(p for p in config.wrapper_paths if p not in kept_paths)
    if not config.modulefile_dir and values.get("modulefile_dir"):  # keep the module file current
        kept.update(modulefile_dir=values["modulefile_dir"], modulefile_tcl=bool(values.get("modulefile_tcl")))
    return config.with_values(installation_prefix=str(prefix), **kept)
