"""Checks a build makes before it starts: the launcher's interpreter, the inputs, the mode to update."""
import pytest

from tests.helpers import RECORDED_RUNTIME
from tykky import installation
from tykky import manifest as manifest_module
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.manifest import Layer, Manifest


def installed(mode: str) -> Manifest:
    return Manifest(tool_version="0", build_id="b", mode=mode, runtime=RECORDED_RUNTIME,
                    container="container.sif", layers=(Layer("img.sqfs", "/TYKKY"),), installation_path="/TYKKY",
                    isolate=False, mount_points=(), excluded_mount_points=(), targets={})


def test_the_configured_launcher_python_is_used_unless_it_is_a_shim():
    assert installation.launcher_interpreter(Config(launcher_python="/opt/python/bin/python3")) == \
        "/opt/python/bin/python3"
    with pytest.raises(TykkyError, match="pyenv-style shim.*pyenv which python3"):
        installation.launcher_interpreter(Config(launcher_python="/home/u/.pyenv/shims/python3"))


def test_without_a_setting_the_launcher_python_is_an_absolute_interpreter():
    assert installation.launcher_interpreter(Config()).startswith("/")


def test_missing_input_files_are_named_before_the_build(tmp_path):
    (tmp_path / "req.txt").write_text("six\n")
    installation._check_inputs(Config(requirements_file=str(tmp_path / "req.txt")))
    (tmp_path / "empty.txt").write_text("# later\n")
    with pytest.raises(TykkyError, match=r"empty.txt lists no packages"):
        installation._check_inputs(Config(requirements_file=str(tmp_path / "empty.txt")))
    installation._check_inputs(Config(requirements_file=str(tmp_path / "empty.txt"), post_install=("true",)))
    with pytest.raises(TykkyError, match=r"The requirements file .*nope.txt does not exist"):
        installation._check_inputs(Config(requirements_file=str(tmp_path / "nope.txt")))
    with pytest.raises(TykkyError, match=r"The environment file .*env.sh does not exist"):
        installation._check_inputs(Config(environ_file=str(tmp_path / "env.sh")))
    with pytest.raises(TykkyError, match="requirements file"):
        installation._check_inputs(Config(requirements_file=str(tmp_path)))  # a directory is no file


def test_update_accepts_the_modes_it_can_update(tmp_path):
    manifest_module.write(installed("wrap-install"), tmp_path)
    assert installation.check_update_mode(tmp_path, "pip-containerize", ("pip", "wrap-install")) == "wrap-install"


@pytest.mark.parametrize(("mode", "advice"), [
    ("conda", "update it with `conda-containerize update`"),
    ("wrap-install", "add to it with `pip-containerize update DIR"),
    ("wrap-container", "it has no image of its own: run wrap-container again"),
])
def test_update_of_another_mode_says_which_command_can(tmp_path, mode, advice):
    manifest_module.write(installed(mode), tmp_path)
    with pytest.raises(TykkyError, match=f"is a {mode} installation, which `pip-containerize update` cannot") as error:
        installation.check_update_mode(tmp_path, "pip-containerize", ("pip",))
    assert advice in error.value.message
