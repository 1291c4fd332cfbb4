"""The launcher's conda activation: applied by default, not through a venv on top unless forced."""
from tykky_shim import contract

ACTIVATION = {"environment": {"CONDA_PREFIX": "/T/env1", "CONDA_SHLVL": "1", "FROM_SCRIPT": "yes"},
              "prepend": {"PATH": ["/T/env1/libexec", "/T/env1/bin"]}, "append": {"PATH": ["/T/late"]}}



def manifest(**activation_extra):
    return contract.with_defaults({"binds": {"isolate": False}, "activation": dict(ACTIVATION, **activation_extra),
                                   "shell": "/bin/bash"})


def test_activation_applied_to_the_installation(launcher, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("CW_NO_CONDA_ACTIVATE", raising=False)
    env = launcher.container_environment(manifest(), "/p", None)
    assert env["CONDA_PREFIX"] == "/T/env1" and env["FROM_SCRIPT"] == "yes"
    assert env["PATH"] == "/p/bin:/T/env1/libexec:/T/env1/bin:/usr/bin:/bin:/T/late"


def test_venv_on_top_is_not_activated_unless_forced(launcher, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.delenv("CW_FORCE_CONDA_ACTIVATE", raising=False)
    env = launcher.container_environment(manifest(), "/p", "/home/u/ve/bin")
    assert "CONDA_PREFIX" not in env
    assert env["PATH"] == "/home/u/ve/bin:/p/bin:/usr/bin"
    assert env["VIRTUAL_ENV"] == "/home/u/ve"
    monkeypatch.setenv("CW_FORCE_CONDA_ACTIVATE", "1")
    forced = launcher.container_environment(manifest(), "/p", "/home/u/ve/bin")
    assert forced["CONDA_PREFIX"] == "/T/env1"
    assert forced["PATH"].startswith("/home/u/ve/bin:/p/bin:/T/env1/libexec")


def test_no_conda_activate_switches_it_off(launcher, monkeypatch):
    monkeypatch.setenv("CW_NO_CONDA_ACTIVATE", "1")
    assert "CONDA_PREFIX" not in launcher.container_environment(manifest(), "/p", None)


def test_activate_scripts_rerun_at_launch_only_when_recorded(launcher, monkeypatch):
    monkeypatch.delenv("CW_NO_CONDA_ACTIVATE", raising=False)
    command = ["/T/env1/bin/prog", "a b"]
    assert launcher.with_activate_scripts(manifest(), None, command) == command
    wrapped = launcher.with_activate_scripts(manifest(scripts="/T/env1/etc/conda/activate.d"), None, command)
    assert wrapped[:2] == ["/bin/bash", "-c"] and wrapped[3] == "/T/env1/etc/conda/activate.d"
    assert wrapped[4:] == command
    assert launcher.with_activate_scripts(manifest(scripts="/x"), "/home/u/ve/bin", command) == command


def test_activate_scripts_wrapper_runs_them_then_the_program(launcher, tmp_path, monkeypatch):
    import subprocess

    monkeypatch.delenv("CW_NO_CONDA_ACTIVATE", raising=False)
    (tmp_path / "a.sh").write_text('export FROM_ACTIVATE="set by a.sh"\n')
    wrapped = launcher.with_activate_scripts(manifest(scripts=str(tmp_path)), None,
                                             ["/bin/sh", "-c", 'printf "%s|%s" "$FROM_ACTIVATE" "$1"', "sh", "x y"])
    output = subprocess.run(wrapped, check=True, stdout=subprocess.PIPE).stdout.decode()
    assert output == "set by a.sh|x y"
