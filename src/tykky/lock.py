"""The writer lock: one writer per installation at a time; launches never take it.

The lock file is `.<name>.tykky-lock` in the prefix's parent directory: it exists before the
prefix does (two `new` of one prefix are serialised too) and survives the rename that puts a
new installation in place. The holder writes a record into it (host, pid, process start time,
boot, since when, command), which a waiting writer shows.

flock(2) is the lock where the file system supports it; the holder removes the file before it
lets go, and a writer that gets the lock on a file that is no longer at the path starts again.
Where flock is not supported (Lustre mounted without `-o flock`: ENOSYS, EINVAL, EOPNOTSUPP;
NFS without a lock manager: ENOLCK) the lock is the file itself, created with O_EXCL. A crash
then leaves it behind; it is cleared only when its holder is provably gone: same host and boot,
and no process with that pid and start time.
"""
import errno
import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

from tykky import log
from tykky.errors import TykkyError

SUFFIX = ".tykky-lock"
FLOCK_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOLCK)
FLOCK_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
POLL_SECONDS = 0.2
_COMMAND_LENGTH = 300
# Polls a waiting writer lets pass before it says it waits for a holder that has no record yet.
_UNNAMED_POLLS = 10
# Prefixes this process holds, with how often: a command may take the lock a layer below one
# that already holds it (an update that ends in a compaction).
_held: Dict[str, int] = {}


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: what its record says."""

    host: str
    pid: int
    start: str
    boot: str
    since: str
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (`{self.command}`, since {self.since})"

    def text(self) -> str:
        return json.dumps(asdict(self)) + "\n"


class _FlockUnsupported(Exception):
    pass


def lock_path(prefix: Path) -> Path:
    """Where the lock of the installation at prefix lives (symlinks resolved: one file per installation).

    Beside the prefix; inside it only for a writer who may write the installation but not the
    directory it is in (who cannot make a new one there either)."""
    real = Path(os.path.realpath(prefix))
    if real.parent.is_dir() and not os.access(real.parent, os.W_OK | os.X_OK) and real.is_dir() \
            and os.access(real, os.W_OK | os.X_OK):
        return real / SUFFIX
    return real.parent / f".{real.name}{SUFFIX}"


def process_start(pid: int) -> Optional[str]:
    """The start time of a process (clock ticks after boot, /proc/PID/stat field 22); None when absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def this_process(command: Optional[str] = None) -> Holder:
    if command is None:
        command = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    command = " ".join(command.split())
    if len(command) > _COMMAND_LENGTH:
        command = command[:_COMMAND_LENGTH] + "..."
    return Holder(host=socket.gethostname(), pid=os.getpid(), start=process_start(os.getpid()) or "",
                  boot=boot_id(), since=time.strftime("%Y-%m-%d %H:%M:%S %Z"), command=command)


def parse_holder(text: str) -> Optional[Holder]:
    """The record of a lock file; None while it is being written or when it is damaged."""
    try:
        data = json.loads(text)
        return Holder(host=str(data["host"]), pid=int(data["pid"]), start=str(data["start"]),
                      boot=str(data["boot"]), since=str(data["since"]), command=str(data["command"]))
    except (ValueError, KeyError, TypeError):
        return None


def is_stale(holder: Optional[Holder], me: Holder, start_of: Callable[[int], Optional[str]] = process_start) -> bool:
    """Provably gone: recorded on this host, and this machine rebooted since or its process ended
    (no such pid, or a pid reused by a process that started at another time)."""
    if holder is None or holder.host != me.host:
        return False
    if holder.boot and me.boot and holder.boot != me.boot:
        return True
    return start_of(holder.pid) != holder.start


def _read_holder(path: Path) -> Optional[Holder]:
    try:
        return parse_holder(path.read_text())
    except OSError:
        return None


def _open_lock_file(path: Path) -> "tuple[int, bool]":
    """(descriptor, whether this call created the file)."""
    while True:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), True
        except FileExistsError:
            pass
        for flags in (os.O_RDWR, os.O_RDONLY):  # flock works on a file opened only for reading
            try:
                return os.open(path, flags | os.O_CLOEXEC), False
            except FileNotFoundError:
                break  # removed by its holder meanwhile: create it
            except PermissionError:
                if flags == os.O_RDONLY:
                    raise


def _try_flock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in FLOCK_BUSY:
            return False
        if exc.errno in FLOCK_UNSUPPORTED:
            raise _FlockUnsupported() from exc
        raise


def _is_at(descriptor: int, path: Path) -> bool:
    try:
        here, there = os.fstat(descriptor), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _write_record(descriptor: int, holder: Holder) -> None:
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, holder.text().encode(), 0)
    except OSError:
        pass  # opened read-only (another user's file): waiters see an older record, or none


@dataclass
class _Wait:
    """One writer's wait: when to give up, and whom it has already told the user about."""

    prefix: Path
    path: Path
    timeout: int
    deadline: Optional[float]
    told: Optional[Holder] = None
    told_unknown: bool = False
    unnamed_polls: int = 0

    def holder_is(self, holder: Optional[Holder], exclusive: bool) -> None:
        """Say once per holder that this writer waits; past the deadline fail, naming the holder."""
        who = holder.describe() if holder else f"another writer (its record in {self.path} is not readable yet)"
        removal = (f" If that build is gone, remove {self.path} (this file system has no working flock, "
                   "so a lock left by a build that crashed elsewhere, or with no record, is not cleared by itself)."
                   if exclusive and (holder is None or holder.host != socket.gethostname()) else "")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TykkyError(f"{self.prefix} is being written by {who}; gave up waiting after {self.timeout} "
                             f"s (lock_timeout, TYKKY_LOCK_TIMEOUT). Nothing was changed: try again when it "
                             f"has finished.{removal}")
        if holder is None and self.unnamed_polls < _UNNAMED_POLLS:
            self.unnamed_polls += 1  # its holder is writing the record: name it, rather than nobody
            return
        if holder != self.told and not (holder is None and self.told_unknown):
            self.told, self.told_unknown = holder, holder is None
            limit = (f"up to {self.timeout} s" if self.deadline is not None
                     else "until it has finished (set lock_timeout or TYKKY_LOCK_TIMEOUT to stop waiting)")
            log.info(f"{self.prefix} is being written by {who}; waiting {limit}.{removal}")


def _flock_wait(descriptor: int, wait: _Wait) -> None:
    while not _try_flock(descriptor):
        wait.holder_is(_read_holder(wait.path), exclusive=False)
        time.sleep(POLL_SECONDS)


def _break_if_stale(path: Path, me: Holder) -> None:
    """Remove the lock file of a holder that is provably gone. Writers that find it stale at the
    same time take turns through a second O_EXCL file, and each looks again once it has it."""
    breaker = path.with_name(path.name + ".break")
    try:
        descriptor = os.open(breaker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        if is_stale(_read_holder(breaker), me):
            _remove(breaker)
        return
    try:
        os.write(descriptor, me.text().encode())
        gone = _read_holder(path)
        if is_stale(gone, me):
            log.info(f"Removing the lock {path}: its holder {gone.describe()} is gone.")
            _remove(path)
    finally:
        os.close(descriptor)
        _remove(breaker)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _acquire(prefix: Path, path: Path, wait: _Wait, me: Holder) -> int:
    """The descriptor of the lock file, held (flock), or created by this call (O_EXCL)."""
    while True:
        descriptor, created = _open_lock_file(path)
        try:
            try:
                if not _try_flock(descriptor):
                    wait.holder_is(_read_holder(path), exclusive=False)
                    _flock_wait(descriptor, wait)
            except _FlockUnsupported:
                if created:
                    _write_record(descriptor, me)
                    return descriptor
                holder = parse_holder(os.pread(descriptor, 4096, 0).decode(errors="replace"))
                os.close(descriptor)
                descriptor = -1
                if is_stale(holder, me):
                    _break_if_stale(path, me)
                else:
                    wait.holder_is(holder, exclusive=True)
                    time.sleep(POLL_SECONDS)
                continue
            if _is_at(descriptor, path):
                _write_record(descriptor, me)
                return descriptor
        except BaseException:
            if descriptor >= 0:
                os.close(descriptor)
            raise
        os.close(descriptor)


def _make_parents(directory: Path) -> List[Path]:
    """Create directory and its missing parents; returns those created, deepest first."""
    created: List[Path] = []
    while not directory.exists():
        created.append(directory)
        directory = directory.parent
    for missing in reversed(created):
        try:
            missing.mkdir()
        except FileExistsError:
            pass
        except OSError as exc:
            raise TykkyError(f"Cannot create {missing}: {exc.strerror}. Choose a prefix in a directory "
                             "you can write to.") from None
    return created


@contextmanager
def held(prefix: Path, timeout: int = -1, command: Optional[str] = None, existing: bool = False) -> Iterator[None]:
    """Hold the writer lock of the installation at prefix (made or not yet) for the block.

    timeout: seconds to wait for another writer; negative waits as long as it takes.
    existing: the block changes an installation; where there is none it fails by itself with
    the better message, so nothing is locked (or made) for it."""
    path = lock_path(prefix)
    key = str(path)
    if existing and not Path(prefix).is_dir():
        yield
        return
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    created = _make_parents(path.parent)
    deadline = None if timeout < 0 else time.monotonic() + timeout
    try:
        descriptor = _acquire(prefix, path, _Wait(prefix, path, timeout, deadline), this_process(command))
    except PermissionError:
        _remove_empty(created)
        raise TykkyError(f"Cannot write {prefix}: you may not create or open its writer lock {path}. "
                         "Choose a prefix in a directory you can write to, or ask the owner of the "
                         "installation.") from None
    except BaseException:
        _remove_empty(created)
        raise
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        if _is_at(descriptor, path):
            try:
                _remove(path)  # before letting go: a writer waiting on it then starts again
            except OSError:
                pass  # another user's file in a sticky directory: it stays, and works as it is
        os.close(descriptor)
        _remove_empty(created)


def _remove_empty(directories: List[Path]) -> None:
    """The parents a failed `new` created go again; a finished one's hold the prefix and stay."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return
