"""What wrap-container and wrap-install share: pure functions on probe results and manifests."""
import dataclasses

import pytest

from tests.helpers import RECORDED_RUNTIME
from tykky import history, wrapping
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.manifest import Manifest, PathVariable

PYTHON = {"executable": "/usr/bin/python3", "version": "3.11"}


def test_python_candidates_from_directories_and_files():
    candidates = wrapping.python_candidates(["/usr/bin/", "/opt/conda/bin/python3.12", "/opt/tool/bin/tool"])
    assert candidates.split(":") == ["/usr/bin/python3", "/usr/bin/python", "/opt/conda/bin/python3.12",
                                     "/opt/tool/bin/tool/python3", "/opt/tool/bin/tool/python"]


@pytest.mark.parametrize(("name", "expected"), [("python", True), ("python3", True), ("python3.11", True),
                                                ("python3-config", False), ("ipython", False), ("pythonw", False)])
def test_python_names(name, expected):
    assert wrapping.is_python_name(name) is expected


def test_python_alias_added_only_when_missing():
    assert wrapping.with_python_alias({"python3": "/usr/bin/python3"}, PYTHON)["python"] == "/usr/bin/python3"
    assert wrapping.with_python_alias({"python": "/opt/p"}, PYTHON) == {"python": "/opt/p"}
    assert wrapping.with_python_alias({"ls": "/usr/bin/ls"}, None) == {"ls": "/usr/bin/ls"}


def test_everything_but_pythons_runs_by_its_own_path():
    targets = {"ls": "/usr/bin/ls", "python3": "/usr/bin/python3", "python": "/usr/bin/python3", "x": "/o/x"}
    assert wrapping.direct_targets(targets) == ("ls", "x")


def test_path_gets_only_the_directories_the_container_lacks():
    targets = {"a": "/opt/x/bin/a", "b": "/usr/bin/b", "c": "/opt/x/bin/c", "d": "/opt/y/d"}
    assert wrapping.path_prepend(targets, "/usr/local/bin:/usr/bin:/bin") == ("/opt/x/bin", "/opt/y")


def manifest(**values) -> Manifest:  # type: ignore[no-untyped-def]
    base = Manifest(tool_version="0", build_id="b", mode="wrap-container", runtime=RECORDED_RUNTIME, container="c.sif",
                    layers=(), installation_path="/TYKKY", isolate=True, mount_points=(),
                    excluded_mount_points=(), targets={"ls": "/usr/bin/ls", "python3": "/usr/bin/python3",
                                                       "tool": "/opt/t/bin/tool"},
                    path=PathVariable(container="/usr/bin:/bin"),
                    ld_library_path=PathVariable(prepend=("/usr/lib", "/opt/t/lib", "/lib64/"), container="/x"),
                    python=PYTHON)
    return dataclasses.replace(base, **values)


def test_finished_manifest():
    finished = wrapping.finish_manifest(manifest())
    assert finished.targets["python"] == "/usr/bin/python3"
    assert finished.direct_targets == ("ls", "tool")
    assert finished.prefix_on_path is False
    assert finished.path == PathVariable(prepend=("/opt/t/bin",), container="/usr/bin:/bin")
    assert finished.ld_library_path == PathVariable(prepend=("/opt/t/lib",), container="/x")
    assert '"prefix_on_path": false' in finished.to_json()


@pytest.mark.parametrize(("paths", "message"), [((), "Nothing to wrap"), (("/a:b",), "contains ':'")])
def test_bad_wrapper_paths(paths, message):
    with pytest.raises(TykkyError, match=message):
        wrapping.check_wrapper_paths(paths, "the container")


def test_inputs_staged_for_the_history(tmp_path):
    environ = tmp_path / "env.sh"
    environ.write_text("export A=1\n")
    config = Config(environ_file=str(environ), pre_install=("echo pre",))
    staged = history.stage_inputs(config, tmp_path)
    assert (tmp_path / "inputs" / "environ.sh").read_text() == "export A=1\n"
    assert (tmp_path / "inputs" / "pre-install.sh").read_text() == "echo pre\n"
    assert {name for name, source in staged.items() if source} == {"environ.sh", "pre-install.sh"}


def test_unreadable_environ_file_is_an_error(tmp_path):
    with pytest.raises(TykkyError, match="Cannot read the environment file"):
        history.stage_inputs(Config(environ_file=str(tmp_path / "missing.sh")), tmp_path)


def test_local_containers_made_absolute_remote_kept(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert wrapping.absolute_or_remote("image.sif") == str(tmp_path / "image.sif")
    assert wrapping.absolute_or_remote("docker://python:3.12") == "docker://python:3.12"
