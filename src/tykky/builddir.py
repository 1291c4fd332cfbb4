"""The build directory: everything a build makes lives here until it is deployed."""
import errno
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

from tykky import interrupts, log
from tykky.errors import TykkyError


def build_base(configured: str) -> Path:
    """The directory builds happen in (build_tmpdir_base, CW_BUILD_TMPDIR), created when missing."""
    base = Path(configured or os.environ.get("TMPDIR") or "/tmp")
    how = ("Set CW_BUILD_TMPDIR (or build_tmpdir_base in the configuration) to a writable directory "
           "with room for the installation.")
    if not base.is_absolute():
        raise TykkyError(f"The build directory {base}: the path is not absolute, and it must be. {how}")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TykkyError(f"Could not create build directory {base}: {exc.strerror}. {how}") from None
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise TykkyError(f"The build directory {base} is not a writable directory. {how}")
    return base


def remove_tree(path: Path) -> None:
    """rmtree that also removes directories made unreadable or read-only by installers and
    by the runtime's overlay work directory (mode 000)."""
    def make_writable_and_retry(_function, target, _exc_info):  # type: ignore[no-untyped-def]
        parent = os.path.dirname(target)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IRWXU)
        if os.path.isdir(target) and not os.path.islink(target):
            os.chmod(target, stat.S_IRWXU)
            shutil.rmtree(target, onerror=make_writable_and_retry)
        elif os.path.lexists(target):
            os.unlink(target)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=make_writable_and_retry)


# What tools print when a write fails for want of space or quota.
OUT_OF_SPACE_SIGNS = ("No space left on device", "Disk quota exceeded", "[Errno 28]", "[Errno 122]")
FULL_BELOW = 4 * 1024 * 1024


def out_of_space(path: Path, error: Exception) -> bool:
    """Whether a build failed because its directory's filesystem is full (or over quota): the
    tools' own messages often do not say so (ensurepip hides pip's)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return _is_full(path)
    if isinstance(error, TykkyError) and any(sign in error.details for sign in OUT_OF_SPACE_SIGNS):
        return True
    return _is_full(path)


def _is_full(path: Path) -> bool:
    try:
        info = os.statvfs(path)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < FULL_BELOW or (info.f_files > 0 and info.f_favail == 0)


@contextmanager
def build_directory(configured_base: str, keep: bool) -> Iterator[Path]:
    """A fresh cw-XXXXXX directory, removed afterwards even on failure or Ctrl-C.

    With keep (CW_DEBUG_KEEP_FILES) it stays and its path is printed.
    """
    base = build_base(configured_base)
    path = Path(tempfile.mkdtemp(prefix="cw-", dir=base))
    os.chmod(path, 0o755)
    log.debug(f"build directory {path}")
    try:
        yield path
    except (TykkyError, OSError) as error:
        full = out_of_space(path, error)  # seen before the build's files are removed
        _finish(path, keep)
        if full:
            raise TykkyError(f"The build directory {base} ran out of space (No space left on device, or "
                             "the disk quota is used up). Set CW_BUILD_TMPDIR (or build_tmpdir_base in the "
                             "configuration) to a directory with room for about twice the installation.",
                             details=getattr(error, "details", "")) from error
        raise
    except BaseException:
        _finish(path, keep)
        raise
    pending = _finish(path, keep)
    if pending:
        raise interrupts.Interrupted(pending[0])


def _finish(path: Path, keep: bool) -> List[int]:
    """Remove the build directory; an interruption meanwhile waits (so nothing is left), and
    the signals that came are returned."""
    if keep:
        log.warning(f"Build files kept in {path} (CW_DEBUG_KEEP_FILES is set)")
        return []
    with interrupts.held_back() as pending:
        remove_tree(path)
    return pending
