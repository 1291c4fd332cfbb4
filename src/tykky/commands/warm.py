"""tykky warm status|stop: this user's running instances on this node."""
import fcntl
import os
from pathlib import Path
from typing import List, Optional

from tykky_shim import warm

from tykky.errors import TykkyError


def _instances(prefix: Optional[Path]) -> List[dict]:
    try:
        directory = warm.state_directory()
    except warm.WarmUnavailable as exc:
        raise TykkyError(f"Cannot read the warm-mount state: {exc}.") from None
    found = []
    for entry in sorted(os.listdir(directory)):
        if entry.endswith(".json"):
            state = warm.read_state(os.path.join(directory, entry))
            if state and (prefix is None or os.path.realpath(state["prefix"]) == os.path.realpath(prefix)):
                state["base"] = os.path.join(directory, entry[: -len(".json")])
                found.append(state)
    return found


def _in_use(state: dict) -> bool:
    descriptor = os.open(state["base"] + ".usage", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(descriptor)


def status(prefix: Optional[Path]) -> str:
    lines = [f"{'instance':24} {'pid':>8} {'state':7} installation"]
    for state in _instances(prefix):
        current = "" if not warm.replaced(state) else " (replaced by an update)"
        lines.append(f"{state['name']:24} {state['pid']:>8} {'in use' if _in_use(state) else 'idle':7} "
                     f"{state['prefix']}{current}")
    failures = _recent_failures(prefix)
    if len(lines) == 1:
        return "\n".join(["No warm instances of this user on this node."] + failures)
    return "\n".join(lines + failures)


def _recent_failures(prefix: Optional[Path]) -> List[str]:
    """Installations whose instance failed to start lately: their launches run cold meanwhile."""
    directory = warm.state_directory()
    found = []
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".failed"):
            continue
        record = warm.failure_record(entry[: -len(".failed")])
        if record is None:
            continue
        failed_prefix, why = record
        if prefix is None or os.path.realpath(failed_prefix) == os.path.realpath(prefix):
            found.append(f"Starting an instance of {failed_prefix} failed (launches run cold for "
                         f"{warm.FAILURE_PAUSE // 60} minutes): {why}")
    return found


def stop(prefix: Optional[Path], force: bool) -> List[str]:
    """Stop the instances; one still running programs is kept unless force."""
    stopped = []
    busy = []
    for state in _instances(prefix):
        if _in_use(state) and not force:
            busy.append(state["prefix"])
            continue
        os.unlink(state["base"] + ".json")
        warm.subprocess_stop(state["runtime"], state["name"], dict(os.environ))
        stopped.append(state["name"])
    if busy:
        raise TykkyError(f"Programs still run in the instances of {', '.join(busy)}; stopping them would "
                         "break those programs. Wait for them to end, or use --force.")
    return stopped
