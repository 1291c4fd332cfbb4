"""Putting a finished build into the prefix without ever leaving it half-installed."""
import ctypes
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Optional

from tykky import interrupts, layout, log
from tykky.builddir import remove_tree
from tykky.errors import TykkyError
from tykky.manifest import MANIFEST_PATH

FORBIDDEN_IN_PREFIX = (",", ":")


def holds_installation(prefix: Path) -> bool:
    """An installation made by this tool, or by Tykky (its bin, _bin and common.sh)."""
    return (prefix / MANIFEST_PATH).is_file() or all((prefix / name).exists() for name in ("bin", "_bin", "common.sh"))


def check_new_prefix(prefix: Path) -> None:
    """A new installation goes to a missing or empty directory, or replaces an installation."""
    for character in FORBIDDEN_IN_PREFIX:
        if character in str(prefix):
            raise TykkyError(f"The prefix {prefix} contains '{character}', which the container "
                             "runtime cannot bind. Choose a path without commas and colons.")
    if prefix.exists() and (not prefix.is_dir() or any(prefix.iterdir())) and not holds_installation(prefix):
        raise TykkyError(f"The prefix {prefix} already exists and is neither an empty directory nor an "
                         "installation. Choose a new prefix, or use `update` to change an installation.")
    parent = _existing_ancestor(prefix)
    if not os.access(parent, os.W_OK | os.X_OK) or not os.access(_existing_ancestor(prefix.parent),
                                                                  os.W_OK | os.X_OK):
        raise TykkyError(f"Cannot create the installation at {prefix}: {parent} is not writable. "
                         "Choose a prefix in a directory you can write to.")


def check_update_prefix(prefix: Path) -> None:
    if not os.access(prefix, os.W_OK | os.X_OK):
        raise TykkyError(f"Cannot update {prefix}: it is not writable by you.")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def _adopt_group(tree: Path, gid: int) -> None:
    """Files of a new installation take the group of the directory the user prepared."""
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), -1, gid)
    os.lchown(tree, -1, gid)


def _move_or_copy(source: Path, destination: Path) -> None:
    """A rename when both are on one filesystem (no copy of the images), else a copy, whose
    launcher then records the copied manifest (it knows manifest.json by its inode)."""
    try:
        os.rename(source, destination)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copytree(source, destination, symlinks=True)
        if (destination / layout.LAUNCHER).exists():
            layout.refresh_launcher(destination)


def _wanted_group(prefix: Path) -> Optional[int]:
    """The group the user prepared: the existing prefix's, or a setgid parent's."""
    if prefix.is_dir():
        return prefix.stat().st_gid
    parent = prefix.parent.stat()
    return parent.st_gid if parent.st_mode & stat.S_ISGID else None


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (renameat2 RENAME_EXCHANGE), where kernel and filesystem can."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_cwd, rename_exchange = -100, 2
    return renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), rename_exchange) == 0


def _swap_in(staging: Path, prefix: Path) -> Path:
    """Put staging at prefix; returns where the installation that was there is now."""
    if _exchange(staging, prefix):
        return staging
    aside = staging.with_name("replaced")  # in the private staging directory
    os.rename(prefix, aside)
    try:
        os.rename(staging, prefix)
    except OSError:
        os.rename(aside, prefix)
        raise
    return aside


def _remove_replaced(old: Path) -> None:
    """Running programs keep the images they opened; the files of the old tree go."""
    try:
        remove_tree(old)
    except OSError as exc:
        log.warning(f"Could not remove the replaced installation, now at {old}: {exc.strerror}. "
                    "Remove it once nothing runs from it.")


def deploy_new(staging_tree: Path, prefix: Path) -> None:
    """Move the staged tree next to the prefix, then rename it into place in one step (swapping it
    with an installation already there)."""
    prefix = prefix.absolute()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    # A fresh private directory: the parent may be shared, and a predictable name could be
    # planted there by another user (a directory of theirs, a symlink).
    private = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.tykky-", dir=prefix.parent))
    staging = private / "installation"
    replaced: Optional[Path] = None
    try:
        _move_or_copy(staging_tree, staging)
        group = _wanted_group(prefix)
        if group is not None and group != staging.stat().st_gid:
            _adopt_group(staging, group)
        if prefix.is_dir():
            os.chmod(staging, prefix.stat().st_mode & 0o7777)
        with interrupts.publishing(prefix):
            if prefix.is_dir() and holds_installation(prefix):
                replaced = _swap_in(staging, prefix)
            else:
                os.rename(staging, prefix)
    except OSError as exc:  # shutil.Error (a failed copy) too
        raise TykkyError(f"Cannot install into {prefix}: {write_failure(exc, prefix.parent)}") from exc
    finally:  # also when an interruption held back while publishing is raised
        if replaced is not None:
            _remove_replaced(private)  # the old tree is in it now
        else:
            remove_tree(private)
    if replaced:
        log.info(f"Replaced the installation at {prefix}")
    log.info(f"Installed to {prefix}")


def write_failure(error: OSError, where: Path) -> str:
    """Why writing under `where` failed, and what to do, in words."""
    text = str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT) or "[Errno 28]" in text or "[Errno 122]" in text:
        return (f"no space left on the filesystem of {where} (or the disk quota is used up). "
                "Free space there, or choose a prefix on another filesystem.")
    if isinstance(error, shutil.Error) and error.args and error.args[0]:
        source, destination, why = error.args[0][0]
        return f"{why} ({destination})."
    return f"{error.strerror} ({error.filename})."


def place_file(source: Path, destination: Path) -> None:
    """Copy a file next to its destination, then rename over it: users of the old file keep it."""
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, destination)
    except OSError as exc:
        raise TykkyError(f"Cannot write {destination}: {write_failure(exc, destination.parent)}") from exc
    finally:
        if temporary.exists():
            temporary.unlink()
