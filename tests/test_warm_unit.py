"""Pure parts of the warm-mount module (shim/warm.py); real instances are in integration/test_warm.py."""
import os

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
