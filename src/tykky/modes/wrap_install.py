"""wrap-install: an existing directory tree copied into the image, its programs wrapped.

Inside the container the tree is at installation_path (/TYKKY by default) or, with --mask, at
DIR's own path, so that absolute paths baked into it (scripts, configuration files) still
lead into it, even after DIR itself is removed.
"""
import os
import posixpath
import shutil
from pathlib import Path
from typing import List

from tykky import log, wrapping
from tykky._compat import copy_tree_into
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.errors import TykkyError
from tykky.manifest import Manifest
from tykky.modes import Filled, Mode

# Characters the runtime's --bind syntax cannot carry.
UNBINDABLE = (",", ":")


def check_source(directory: str) -> Path:
    source = Path(os.path.abspath(os.path.expanduser(directory)))
    if not source.is_dir():
        what = "is not a directory" if source.exists() else "does not exist"
        raise TykkyError(f"The installation to wrap, {source}, {what}. Give the directory that holds "
                         "the installation (its bin/, lib/, share/ ...).")
    if not os.access(source, os.R_OK | os.X_OK):
        raise TykkyError(f"Cannot read the installation {source}: check its permissions.")
    return source


def masked_config(config: Config, source: Path) -> Config:
    """--mask: the tree at DIR's own path; the launcher then leaves DIR's top-level directory
    unbound (a bind over it would hide the image, or recreate DIR on the host)."""
    prefix = Path(config.installation_prefix or os.getcwd()).absolute()
    if source == Path("/"):
        raise TykkyError("--mask cannot mount a tree over the root directory. Leave out --mask.")
    if any(character in str(source) for character in UNBINDABLE):
        raise TykkyError(f"--mask cannot mount the tree at {source}: the path contains ',' or ':', which "
                         "the container runtime cannot bind. Leave out --mask.")
    if prefix == source or source in prefix.parents:
        raise TykkyError(f"The prefix {prefix} is inside {source}, where --mask mounts the image. "
                         "Choose a prefix outside the installation.")
    return config.with_values(installation_path=str(source), mask=True)


def in_container_paths(config: Config, source: Path) -> List[str]:
    """-w paths: relative to DIR, or absolute (under DIR, or anywhere in the container)."""
    root = config.installation_path
    paths = []
    for given in config.wrapper_paths:
        if posixpath.isabs(given):
            path = posixpath.normpath(given)
            for base in dict.fromkeys((str(source), os.path.realpath(source))):
                if path == base or path.startswith(base.rstrip("/") + "/"):
                    path = root + path[len(base):]
                    break
            paths.append(path)
            continue
        relative = posixpath.normpath(given)
        if relative == ".." or relative.startswith("../"):
            raise TykkyError(f"The path to wrap {given} leads out of {source}. Give paths inside the "
                             "installation, relative to it, or absolute in-container paths.")
        paths.append(root if relative == "." else f"{root}/{relative}")
    return paths


def python(config: Config, source: Path) -> str:
    return wrapping.python_candidates(in_container_paths(config, source))


def copy_tree(source: Path, tree: Path) -> None:
    log.info(f"Copying {source} into the image")
    try:
        copy_tree_into(source, tree)
    except shutil.Error as exc:
        failures = [f"    {failed}: {why}" for failed, _target, why in exc.args[0][:8]]
        raise TykkyError(f"Cannot copy {source} into the image: {len(exc.args[0])} entries could not be "
                         "read. Fix their permissions (or remove them) and try again.",
                         details="\n".join(failures)) from None
    except OSError as exc:
        raise TykkyError(f"Cannot copy {source} into the image: {exc.strerror} ({exc.filename}).") from None


def run_hook(config: Config, container: BuildContainer, name: str, label: str) -> None:
    """pre/post-install commands run by bash in the container, the tree at its final path."""
    script = container.build / "inputs" / name
    if not script.is_file():
        return
    log.info(f"Running the {label} commands")
    command = 'cd "$TYKKY_WORKDIR" 2>/dev/null || cd "$TYKKY_INSTALLATION_PATH"; set -e; . "$1"'
    variables = {"TYKKY_INSTALLATION_PATH": config.installation_path,
                 "CW_INSTALLATION_PATH": config.installation_path, "TYKKY_WORKDIR": os.getcwd()}
    container.run(["/bin/bash", "-c", command, label, str(script)], what=f"running the {label} commands",
                  variables=variables)


def run_update_hooks(config: Config, container: BuildContainer) -> None:
    """An update: the commands run over the installation as its layers show it."""
    run_hook(config, container, "pre-install.sh", "pre-install")
    run_hook(config, container, "post-install.sh", "post-install")


def fill_tree(source: Path, config: Config, container: BuildContainer) -> None:
    if container.tree is None:
        raise TykkyError("wrap-install needs a build tree")
    run_hook(config, container, "pre-install.sh", "pre-install")
    copy_tree(source, container.tree)
    run_hook(config, container, "post-install.sh", "post-install")


class WrapInstallMode(Mode):
    """DIR copied into the tree between the pre- and post-install commands; an update runs
    only the commands, over the installation's layers (DIR is not needed: it may be gone)."""

    name = "wrap-install"

    def __init__(self, source: Path, updating: bool = False) -> None:
        self.source = source
        self.updating = updating
        self.layered_update = updating

    def fill_tree(self, config: Config, container: BuildContainer) -> Filled:
        if self.updating:
            run_update_hooks(config, container)
        else:
            fill_tree(self.source, config, container)
        return Filled(python=python(config, self.source))

    def wrapper_paths(self, config: Config) -> List[str]:
        return in_container_paths(config, self.source)

    def finish_manifest(self, config: Config, manifest: Manifest) -> Manifest:
        return wrapping.finish_manifest(manifest)
