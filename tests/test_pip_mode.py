"""pip mode without a container: the venv's paths, the staged inputs and the install step's variables."""
import os

import pytest

from tests.fake_runner import fake_runner
from tykky import history
from tykky.commands import pip_containerize
from tykky.config import Config
from tykky.container_exec import BuildContainer, template
from tykky.errors import TykkyError
from tykky.modes import pip
from tykky.runtime import Runtime

RUNTIME = Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5))


def container(tmp_path, config: Config) -> BuildContainer:  # type: ignore[no-untyped-def]
    return BuildContainer(RUNTIME, tmp_path / "c.sif", config, tmp_path / "tree", tmp_path)


def test_the_venv_bin_is_wrapped_before_the_w_paths():
    config = Config(installation_path="/opt/inst", wrapper_paths=("/opt/tool/bin",))
    assert pip.venv_path(config) == "/opt/inst/venv"
    assert pip.wrapper_paths(config) == ["/opt/inst/venv/bin", "/opt/tool/bin"]


def test_inputs_are_copied_and_commands_written_as_scripts(tmp_path):
    requirements = tmp_path / "requirements.in"
    requirements.write_text("six\n")
    config = Config(requirements_file=str(requirements), pre_install=("echo a", "echo b"))
    (tmp_path / "build").mkdir()
    staged = history.stage_inputs(config, tmp_path / "build")
    inputs = tmp_path / "build" / "inputs"
    assert staged == {"requirements.txt": str(requirements), "environ.sh": None,
                      "pre-install.sh": str(inputs / "pre-install.sh")}
    assert (inputs / "requirements.txt").read_text() == "six\n"
    assert (inputs / "pre-install.sh").read_text() == "echo a\necho b\n"
    assert not (inputs / "post-install.sh").exists()


def test_an_unreadable_requirements_file_is_the_users_to_fix(tmp_path):
    with pytest.raises(TykkyError, match="Cannot read .*missing.txt"):
        history.stage_inputs(Config(requirements_file=str(tmp_path / "missing.txt")), tmp_path)


def test_the_install_step_is_told_what_was_staged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = Config(requirements_file="r.txt", post_install=("true",), python_version="3.11",
                    enable_site_packages=True)
    (tmp_path / "r.txt").write_text("")
    history.stage_inputs(config, tmp_path)
    assert pip.build_variables(config, container(tmp_path, config)) == {
        "TYKKY_VENV": "/TYKKY/venv", "TYKKY_PYTHON": "python3.11", "TYKKY_WORKDIR": str(tmp_path),
        "TYKKY_SYSTEM_SITE_PACKAGES": "yes", "TYKKY_NO_CACHE": "no",
        "TYKKY_REQUIREMENTS": str(tmp_path / "inputs" / "requirements.txt"),
        "TYKKY_POST_INSTALL": str(tmp_path / "inputs" / "post-install.sh")}


def test_with_uv_the_build_installs_uv_into_the_build_directory(tmp_path, monkeypatch):
    fake = fake_runner(monkeypatch)
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.invalid/simple")
    config = Config(use_uv=True, no_cache=True)
    variables = pip.build_variables(config, container(tmp_path, config))
    assert variables["TYKKY_UV"] == str(tmp_path / "uv" / "bin" / "uv")
    assert variables["UV_INDEX_URL"] == "https://mirror.invalid/simple" and variables["TYKKY_NO_CACHE"] == "yes"
    assert variables["TYKKY_PYTHON"] == "python3"
    (argv,) = fake.argvs
    assert argv[-8:] == ["python3", "-m", "pip", "install", "--disable-pip-version-check", "--target",
                         str(tmp_path / "uv"), "uv"]


def test_install_runs_the_install_script_with_those_variables(tmp_path, monkeypatch):
    fake = fake_runner(monkeypatch)
    pip.install(Config(), container(tmp_path, Config()))
    (call,) = fake.calls
    assert call["argv"][-4:] == ["/bin/bash", "-c", template("pip_install.sh"), "pip_install"]
    assert call["env"]["TYKKY_VENV"] == "/TYKKY/venv"


def test_slim_is_an_isolated_python_image_of_the_asked_version():
    slim = pip_containerize.slim_config(Config(python_version="3.11"))
    assert (slim.container_src, slim.isolate, slim.python_version) == ("docker://python:3.11-slim", True, "")
    assert pip_containerize.slim_config(Config()).container_src == "docker://python:3.12-slim"


def test_a_container_option_is_made_absolute_unless_remote(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pip_containerize.container_source("vendor.sif") == str(tmp_path / "vendor.sif")
    assert pip_containerize.container_source("docker://python:3.12") == "docker://python:3.12"
    assert pip_containerize.container_source(None) is None
    assert os.path.isabs(pip_containerize.container_source("~/x.sif"))
