"""tykky warm status|stop over this user's instance records, the runtime behind a fake stop."""
import fcntl
import json
import os

import pytest
from tykky_shim import warm

from tykky.commands import warm as warm_command
from tykky.errors import TykkyError


@pytest.fixture
def state_dir(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("TYKKY_WARM_DIR", str(directory))
    return directory


def instance(state_dir, tmp_path, name: str, build_id: str = "b1", running: bool = True) -> str:  # type: ignore[no-untyped-def]
    """A record of an instance of an installation under tmp_path, run by this very process."""
    prefix = tmp_path / name
    (prefix / "_tykky").mkdir(parents=True)
    (prefix / "_tykky" / "manifest.json").write_text(json.dumps({"build_id": "b1"}))
    start = warm.process_start_time(os.getpid()) if running else "0"
    (state_dir / f"tykky-{name}.json").write_text(json.dumps({
        "name": f"tykky-{name}", "pid": os.getpid(), "start_time": start, "prefix": str(prefix),
        "build_id": build_id, "runtime": "/usr/bin/apptainer"}))
    return str(prefix)


def hold_usage(state_dir, name: str) -> int:  # type: ignore[no-untyped-def]
    """A running program of the instance: it holds the usage lock shared."""
    descriptor = os.open(state_dir / f"tykky-{name}.usage", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_SH)
    return descriptor


def test_status_lists_running_instances_idle_in_use_and_replaced(state_dir, tmp_path):
    idle = instance(state_dir, tmp_path, "idle")
    busy = instance(state_dir, tmp_path, "busy")
    old = instance(state_dir, tmp_path, "old", build_id="b0")
    instance(state_dir, tmp_path, "gone", running=False)
    descriptor = hold_usage(state_dir, "busy")
    try:
        lines = warm_command.status(None).splitlines()
    finally:
        os.close(descriptor)
    assert lines[0].split() == ["instance", "pid", "state", "installation"]
    assert [line.split(None, 2)[2] for line in lines[1:]] == [
        f"in use  {busy}", f"idle    {idle}", f"idle    {old} (replaced by an update)"]


def test_status_of_one_installation_and_of_none(state_dir, tmp_path):
    instance(state_dir, tmp_path, "a")
    b = instance(state_dir, tmp_path, "b")
    assert [line.split()[-1] for line in warm_command.status(tmp_path / "b").splitlines()[1:]] == [b]
    assert warm_command.status(tmp_path / "c") == "No warm instances of this user on this node."


def test_stop_stops_idle_instances_and_keeps_busy_ones_unless_forced(state_dir, tmp_path, monkeypatch):
    stopped = []
    monkeypatch.setattr(warm, "subprocess_stop", lambda runtime, name, environ: stopped.append((runtime, name)))
    instance(state_dir, tmp_path, "idle")
    busy = instance(state_dir, tmp_path, "busy")
    descriptor = hold_usage(state_dir, "busy")
    try:
        with pytest.raises(TykkyError, match=f"Programs still run in the instances of {busy}.*--force"):
            warm_command.stop(None, force=False)
        assert stopped == [("/usr/bin/apptainer", "tykky-idle")]
        assert not (state_dir / "tykky-idle.json").exists() and (state_dir / "tykky-busy.json").exists()
        assert warm_command.stop(None, force=True) == ["tykky-busy"]
    finally:
        os.close(descriptor)
    assert not (state_dir / "tykky-busy.json").exists()


def test_a_state_directory_of_someone_else_is_refused(state_dir):
    state_dir.chmod(0o755)
    with pytest.raises(TykkyError, match="Cannot read the warm-mount state: .* is not a private directory"):
        warm_command.status(None)
