"""Pure parts of the warm-mount module (shim/warm.py); real instances are in integration/test_warm.py."""
import json
import os
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
    monkeypatch.setattr(warm, "start_in_background", started.append)
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
