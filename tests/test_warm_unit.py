"""Pure parts of the warm-mount module (shim/warm.py); real instances are in integration/test_warm.py."""
import errno
import json
import os
import shutil
import subprocess
import time

import pytest
from tykky_shim import warm


def test_an_instance_outside_the_users_namespace_is_not_entered(monkeypatch):
    # A setuid runtime's instance: entering its mount namespace needs root. Joining must give
    # up before exec'ing anything, so that the launch goes cold instead of failing.
    monkeypatch.setattr(os, "geteuid", lambda: 1001)
    executed = []
    monkeypatch.setattr(os, "execve", lambda *a: executed.append(a))
    monkeypatch.setattr(os, "execvpe", lambda *a: executed.append(a))
    state = {"pid": os.getpid(), "user_namespace": False}
    with pytest.raises(warm.WarmUnavailable, match="only root"):
        warm.join(state, ["true"], {})
    assert executed == []


@pytest.mark.parametrize("euid, expected", [(1001, True), (0, False)])
def test_instances_of_users_start_in_a_user_namespace(monkeypatch, tmp_path, euid, expected):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    started = []

    def fake_run(argv, environ, capture=False):  # the runner seam: no runtime is run
        started.append(argv)
        raise warm.WarmUnavailable("stop here")

    monkeypatch.setattr(warm, "run_quietly", fake_run)
    monkeypatch.setattr(warm, "subprocess_stop", lambda *a: None)
    with pytest.raises(warm.WarmUnavailable):
        warm.start_instance("/usr/bin/apptainer", "/c.sif", "tykky-x", ["--cleanenv"], {}, {"build_id": "b"},
                            "/p", str(tmp_path / "x.json"))
    assert started and ("--userns" in started[0]) is expected
    assert started[0][-2:] == ["/c.sif", "tykky-x"] and "--cleanenv" in started[0]


def failing_start(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """A state directory of the test's own, and a runtime whose instances never start."""
    monkeypatch.setenv("TYKKY_WARM_DIR", str(tmp_path / "state"))

    def refuse(*args, **kwargs):  # the runner seam: no runtime is run
        raise warm.WarmUnavailable("instance start failed: no user namespaces here")

    monkeypatch.setattr(warm, "start_instance", refuse)
    request = {"runtime": "/usr/bin/apptainer", "container": "/p/container.sif", "flags": [], "environ": {},
               "manifest": {"build_id": "b", "warm": {}}, "prefix": "/p", "name": "tykky-x"}
    warm.serve(request)
    return request


def test_a_failed_start_is_recorded_and_not_retried_at_every_launch(monkeypatch, tmp_path):
    failing_start(monkeypatch, tmp_path)
    assert warm.recent_failure("tykky-x") == "instance start failed: no user namespaces here"
    monkeypatch.setattr(warm, "instance_name", lambda *args: "tykky-x")
    started = []
    monkeypatch.setattr(warm, "in_background", lambda action, request: started.append(action))
    with pytest.raises(warm.WarmUnavailable, match="failed lately"):
        warm.warm_exec("/usr/bin/apptainer", "/p/container.sif", [], {}, {"build_id": "b"}, "/p", [], [], ["true"])
    assert started == []


def test_a_failure_is_forgotten_after_the_pause(monkeypatch, tmp_path):
    failing_start(monkeypatch, tmp_path)
    old = time.time() - warm.FAILURE_PAUSE - 1
    os.utime(tmp_path / "state" / "tykky-x.failed", (old, old))
    assert warm.recent_failure("tykky-x") == ""


def test_status_names_the_installation_whose_start_failed(monkeypatch, tmp_path):
    from tykky.commands import warm as warm_command

    failing_start(monkeypatch, tmp_path)
    text = warm_command.status(None)
    assert text.startswith("No warm instances")
    assert "Starting an instance of /p failed" in text and "no user namespaces here" in text


def test_an_instance_whose_start_cannot_finish_is_stopped(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1001)
    calls = []

    def fake_run(argv, environ, capture=False):  # the runner seam: no runtime is run
        calls.append(argv)
        if "list" in argv:
            return json.dumps({"instances": [{"instance": "tykky-x", "pid": os.getpid()}]}).encode()
        if "exec" in argv:
            raise warm.WarmUnavailable("joining user namespace with suid workflow is not allowed")
        return b""

    stopped = []
    monkeypatch.setattr(warm, "run_quietly", fake_run)
    monkeypatch.setattr(warm, "subprocess_stop", lambda runtime, name, environ: stopped.append(name))
    with pytest.raises(warm.WarmUnavailable, match="suid"):
        warm.start_instance("/usr/bin/apptainer", "/c.sif", "tykky-x", [], {}, {"build_id": "b"}, "/p",
                            str(tmp_path / "x.json"))
    assert stopped == ["tykky-x"] and not (tmp_path / "x.json").exists()
    probe = next(argv for argv in calls if "exec" in argv)
    assert probe[probe.index("exec") + 1] == "--userns"


def test_gpu_flags_and_variables_make_another_instance():
    plain = warm.instance_name("/p", {"build_id": "b"}, ["/x"], [])
    assert warm.instance_name("/p", {"build_id": "b"}, ["/x"], [], ["--nv"]) != plain
    assert warm.instance_name("/p", {"build_id": "b"}, ["/x"], [], [], {"APPTAINER_NV": "1"}) != plain
    assert warm.instance_name("/p", {"build_id": "b"}, ["/x"], [], [], {"HOME": "/h"}) == plain


def test_joined_library_path_is_the_cold_launchs():
    state = {"variables": {"LD_LIBRARY_PATH": "/opt/v/lib::/.singularity.d/libs"}}
    # Nothing passed in: the instance's own value, as the runtime computed it for a cold launch.
    assert warm.joined_environment({}, state, [])["LD_LIBRARY_PATH"] == "/opt/v/lib::/.singularity.d/libs"
    passed = warm.joined_environment({"APPTAINERENV_LD_LIBRARY_PATH": "/a:/opt/v/lib"}, state, [])
    assert passed["LD_LIBRARY_PATH"] == "/a:/opt/v/lib:/.singularity.d/libs"


@pytest.fixture
def siblings(tmp_path):  # type: ignore[no-untyped-def]
    """Two children of the test: a program, and a process named like a FUSE daemon."""
    daemon = tmp_path / "squashfuse_ll"
    shutil.copy("/bin/sleep", daemon)
    processes = [subprocess.Popen(["/bin/sleep", "60"]), subprocess.Popen([str(daemon), "60"])]
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def test_the_fuse_daemons_of_an_instance_are_its_processs_siblings(siblings):
    program, daemon = siblings
    assert wait_for_name(daemon.pid, "squashfuse_ll")
    assert warm.fuse_daemons(program.pid) == [[daemon.pid, warm.process_start_time(daemon.pid)]]


def wait_for_name(pid: int, name: str) -> bool:
    """A child's name is its program's once it has exec'd."""
    for _ in range(200):
        with open(f"/proc/{pid}/comm") as handle:
            if handle.read().strip() == name:
                return True
        time.sleep(0.05)
    return False


def running_state(**values) -> dict:  # type: ignore[no-untyped-def]
    """The state of an instance whose process is this test."""
    return {"pid": os.getpid(), "start_time": warm.process_start_time(os.getpid()), "user_namespace": True,
            "name": "tykky-x", "runtime": "/usr/bin/apptainer", "fuse_daemons": [], **values}


def test_an_instance_whose_fuse_daemon_is_gone_is_broken(siblings):
    program, daemon = siblings
    state = running_state(fuse_daemons=[[daemon.pid, warm.process_start_time(daemon.pid)]])
    os.close(warm.open_root(state))
    daemon.kill()
    daemon.wait()
    with pytest.raises(warm.InstanceBroken, match=f"pid {daemon.pid}"):
        warm.open_root(state)


@pytest.mark.parametrize("number, broken", [(errno.ENOTCONN, True), (errno.EIO, True), (errno.EACCES, False)])
def test_an_instance_whose_root_cannot_be_read_is_broken(monkeypatch, number, broken):
    def refuse(path, flags):  # type: ignore[no-untyped-def]
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(warm.WarmUnavailable) as raised:
        warm.open_root(running_state())
    assert isinstance(raised.value, warm.InstanceBroken) is broken


def test_a_broken_instance_is_not_joined_but_forgotten(monkeypatch, tmp_path):
    monkeypatch.setenv("TYKKY_WARM_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(warm, "instance_name", lambda *args: "tykky-x")
    warm.write_state(os.path.join(warm.state_directory(), "tykky-x.json"),
                     running_state(fuse_daemons=[[os.getpid(), "0"]]))
    executed, background = [], []
    monkeypatch.setattr(os, "execve", lambda *a: executed.append(a))
    monkeypatch.setattr(os, "execvpe", lambda *a: executed.append(a))
    monkeypatch.setattr(warm, "in_background", lambda action, request: background.append((action, request)))
    closed = []
    real_close = os.close
    monkeypatch.setattr(os, "close", lambda descriptor: (closed.append(descriptor), real_close(descriptor)))
    with pytest.raises(warm.WarmUnavailable, match="broken"):
        warm.warm_exec("/usr/bin/apptainer", "/p/container.sif", [], {}, {"build_id": "b"}, "/p", [], [], ["true"])
    assert executed == []
    assert background == [("forget", {"name": "tykky-x", "start_time": running_state()["start_time"]})]
    assert closed  # the usage lock: the cold launch must not keep the broken instance in use


@pytest.mark.parametrize("same, forgotten", [(True, True), (False, False)])
def test_forgetting_stops_only_the_broken_instance(monkeypatch, tmp_path, same, forgotten):
    monkeypatch.setenv("TYKKY_WARM_DIR", str(tmp_path / "state"))
    path = os.path.join(warm.state_directory(), "tykky-x.json")
    warm.write_state(path, running_state())
    stopped = []
    monkeypatch.setattr(warm, "subprocess_stop", lambda runtime, name, environ: stopped.append(name))
    # Not the same: another instance of the name took the broken one's place meanwhile.
    warm.forget({"name": "tykky-x", "start_time": running_state()["start_time"] if same else "1"})
    assert (stopped == ["tykky-x"]) is forgotten
    assert os.path.exists(path) is not forgotten
