"""Image layers: updates cost O(change), not O(installation).

A new installation's tree is squashed with its root at the container root, so the image can
be stacked as an overlay. An update runs the install step with the existing layers read-only
and a fresh writable upper directory on top; only that upper directory (what the step added,
changed or deleted, deletions as overlayfs whiteouts) becomes the next layer. `compact`
merges all layers into one; updates compact by themselves past `max_layers`.

Trees whose installation path a host bind would hide (wrap-install --mask into a bound
directory) are mounted with an image-src bind instead; they are updated by a full rebuild.
"""
import dataclasses
import os
from pathlib import Path
from typing import List, Tuple

from tykky import deploy, log, squash
from tykky import manifest as manifest_module
from tykky.builddir import remove_tree
from tykky.config import Config
from tykky.container_exec import BuildContainer, host_top_level_dirs
from tykky.errors import TykkyError
from tykky.image_build import new_build_id, write_marker
from tykky.manifest import Layer, Manifest
from tykky.runtime import Runtime

OVERLAY, IMAGE_SRC = "overlay", "image-src"


def is_at_or_under(path: str, directory: str) -> bool:
    """Whether path is directory or lies inside it, however either is written ("/a/b/", "/a/b")."""
    path, directory = path.rstrip("/"), directory.rstrip("/")
    return path == directory or path.startswith(directory + "/")


def layer_mount(config: Config) -> str:
    """Overlay unless a bind of the installation (or of a parent of its path) would hide it.

    The runtime's own $HOME and /tmp mounts hide nothing: launches and build containers alike
    leave them out where they would (the launcher's default_mount_flags).
    """
    top = "/" + config.installation_path.strip("/").split("/", 1)[0]
    hidden = (config.isolate and any(is_at_or_under(config.installation_path, p) for p in config.mount_points))
    hidden = hidden or (not config.isolate and top in host_top_level_dirs(config.excluded_mount_points))
    return IMAGE_SRC if hidden else OVERLAY


def new_tree(build: Path, config: Config) -> Tuple[Path, Path]:
    """(what to squash, host directory seen at the installation path) for a new build."""
    if layer_mount(config) == IMAGE_SRC:
        tree = build / "tree"
        tree.mkdir()
        return tree, tree
    root = build / "root"
    tree = root / config.installation_path.strip("/")
    tree.mkdir(parents=True)
    return root, tree


def first_layer(config: Config) -> Layer:
    return Layer(image=config.sqfs_image, target=config.installation_path, mount=layer_mount(config))


def can_stack(previous: Manifest) -> bool:
    return bool(previous.layers) and all(layer.mount == OVERLAY for layer in previous.layers)


def overlays_of(prefix: Path, layers: Tuple[Layer, ...]) -> List[str]:
    return [f"{prefix}/{layer.image}:ro" for layer in layers]


def upper_directory(build: Path) -> Path:
    """A writable overlay directory; the runtime keeps the changes in its upper/ part."""
    overlay = build / "overlay"
    (overlay / "upper").mkdir(parents=True)
    (overlay / "work").mkdir()
    return overlay


def layer_name(build_id: str) -> str:
    return f"layer-{build_id}.sqfs"


def stacked_container(runtime: Runtime, prefix: Path, previous: Manifest, config: Config,
                      build: Path, lower_removals: bool) -> Tuple[BuildContainer, Path]:
    """A build container seeing the installation's layers with a writable layer on top."""
    overlay = upper_directory(build)
    overlays = tuple(overlays_of(prefix, previous.layers)) + (str(overlay),)
    container = BuildContainer(runtime, prefix / previous.container, config, None, build, overlays=overlays,
                               lower_removals=lower_removals)
    return container, overlay / "upper"


def removals_work(runtime: Runtime, prefix: Path, previous: Manifest, config: Config, build: Path) -> bool:
    """Whether a writable overlay here can delete directories of lower layers.

    Unprivileged kernel overlays on some systems answer EIO when a directory of a lower layer
    is removed or renamed (pip does that when it upgrades or uninstalls). Checked once per
    update on a scratch layer that is thrown away.
    """
    scratch = build / "removal-check"
    (scratch / "upper").mkdir(parents=True)
    (scratch / "work").mkdir()
    overlays = tuple(overlays_of(prefix, previous.layers)) + (str(scratch),)
    container = BuildContainer(runtime, prefix / previous.container, config, None, build, overlays=overlays)
    completed = container.run(["rm", "-rf", f"{previous.installation_path}/.tykky"],
                              what="checking the overlay", check=False)
    remove_tree(scratch)
    if completed.returncode != 0:
        log.info("Directories of image layers cannot be removed through the overlay here: an update "
                 "step that needs to remove one makes the update rebuild the image")
    return completed.returncode == 0


def marker_directory(upper: Path, config: Config) -> Path:
    return upper / config.installation_path.strip("/")


def merged_tree(prefix: Path, previous: Manifest, runtime: Runtime, config: Config, build: Path,
                name: str = "merged") -> Tuple[Path, Path]:
    """The installation as its layers show it, copied into the build directory.

    Returns (root to squash, host directory of the installation path); the prefix is untouched.
    """
    root = build / name
    tree = root / previous.installation_path.strip("/")
    tree.mkdir(parents=True)
    if len(previous.layers) == 1:
        log.info(f"Unpacking the image {previous.layers[0].image}")
        squash.unsquash(prefix / previous.layers[0].image, tree if previous.layers[0].mount == IMAGE_SRC else root)
        return (tree if previous.layers[0].mount == IMAGE_SRC else root), tree
    container = BuildContainer(runtime, prefix / previous.container, config, None, build,
                               overlays=tuple(overlays_of(prefix, previous.layers)))
    log.info(f"Merging {len(previous.layers)} layers")
    container.run(["cp", "-a", f"{previous.installation_path}/.", str(tree)],
                  what="copying the installation out of its layers", extra_binds=[str(root)])
    return root, tree


def compact(prefix: Path, runtime: Runtime, config: Config, build: Path) -> Manifest:
    """Merge every layer into one new image; returns the manifest naming it (not yet written)."""
    previous = manifest_module.load(prefix)
    if not can_stack(previous):
        raise TykkyError(f"{prefix} has a single image that is bound in place; there is nothing to compact.")
    root, tree = merged_tree(prefix, previous, runtime, config, build)
    build_id = new_build_id()
    write_marker(tree, build_id)
    image = build / "compact.sqfs"
    squash.squash(root, image, options=config.sqfs_options, processors=config.max_num_cpus,
                  fix_perm=config.fix_permissions)
    name = layer_name(build_id)
    deploy.place_file(image, prefix / name)
    layer = Layer(image=name, target=previous.installation_path, mount=OVERLAY)
    return dataclasses.replace(previous, build_id=build_id, layers=(layer,))


def remove_unused_layers(prefix: Path, before: Manifest, after: Manifest) -> None:
    """Delete layer files the new manifest no longer names; programs using them keep them open."""
    kept = {layer.image for layer in after.layers}
    for layer in before.layers:
        if layer.image not in kept and (prefix / layer.image).is_file():
            os.unlink(prefix / layer.image)
