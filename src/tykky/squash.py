"""Turning a directory tree into a squashfs image."""
import os
import shlex
import shutil
import stat
from pathlib import Path

from tykky import runner
from tykky.errors import TykkyError


def fix_permissions(tree: Path) -> None:
    """Everything readable by all, nothing writable but by the owner's build user."""
    for root, dirs, files in os.walk(tree):
        for name in dirs:
            _chmod(Path(root, name), read_exec=True)
        for name in files:
            _chmod(Path(root, name), read_exec=False)
    _chmod(tree, read_exec=True)


def _chmod(path: Path, read_exec: bool) -> None:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return
    mode = stat.S_IMODE(info.st_mode) | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    if read_exec or mode & stat.S_IXUSR:
        mode |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    mode &= ~(stat.S_IWGRP | stat.S_IWOTH)
    if mode != stat.S_IMODE(info.st_mode):
        os.chmod(path, mode)


def mksquashfs_path() -> str:
    path = shutil.which("mksquashfs") or next(
        (p for p in ("/usr/sbin/mksquashfs", "/sbin/mksquashfs") if os.access(p, os.X_OK)), None)
    if not path:
        raise TykkyError("mksquashfs was not found. Install squashfs-tools (or load its module).")
    return path


def squash(tree: Path, image: Path, *, options: str, processors: int,
           fix_perm: bool = True) -> None:
    if fix_perm:
        fix_permissions(tree)
    argv = [mksquashfs_path(), str(tree), str(image), "-noappend", "-no-progress",
            "-processors", str(processors)] + shlex.split(options)
    runner.run(argv, what="creating the squashfs image with mksquashfs")


def unsquash(image: Path, destination: Path) -> None:
    tool = shutil.which("unsquashfs") or "/usr/bin/unsquashfs"
    runner.run([tool, "-no-progress", "-f", "-d", str(destination), str(image)],
               what=f"unpacking {image}")
