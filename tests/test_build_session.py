"""BuildSession without a container: the manifest every build publishes, with and without an image."""
from pathlib import Path
from typing import Optional

from tykky import history
from tykky.build_session import BuildSession, Built
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.manifest import Layer, Manifest
from tykky.modes import Filled
from tykky.modes.pip import PipMode
from tykky.modes.wrap_container import WrapContainerMode
from tykky.probe import ProbeResult
from tykky.runtime import Runtime

RUNTIME = Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5))
FOUND = ProbeResult(environment={"PATH": "/usr/bin"}, shell="/bin/bash", targets={"tool": "/opt/t/bin/tool"},
                    library_dirs=[])
PREVIOUS = Manifest(tool_version="0", build_id="b0", mode="pip", runtime={"name": "apptainer"},
                    container="container.sif", layers=(Layer("img.sqfs", "/TYKKY", "overlay"),),
                    installation_path="/TYKKY", isolate=False, mount_points=(), excluded_mount_points=(),
                    targets={}, environ_file=history.ENVIRON_FILE)


def session(tmp_path: Path, previous, staged, mode=None) -> BuildSession:  # type: ignore[no-untyped-def]
    return BuildSession(Config(), mode or PipMode(), RUNTIME, tmp_path, tmp_path / "prefix", previous, staged)


def built(tmp_path: Path, filled: Optional[Filled] = None) -> Built:
    container = BuildContainer(RUNTIME, tmp_path / "c.sif", Config(), None, tmp_path)
    return Built(container, filled or Filled(), "b1", FOUND, None)


def test_an_update_without_an_environ_file_keeps_the_installations(tmp_path):
    stack = PREVIOUS.layers + (Layer("layer-b1.sqfs", "/TYKKY", "overlay"),)
    manifest = session(tmp_path, PREVIOUS, {}).manifest(built(tmp_path), "container.sif", stack)
    assert manifest.environ_file == history.ENVIRON_FILE and manifest.layers == stack
    assert manifest.build_id == "b1" and manifest.targets == {"tool": "/opt/t/bin/tool"}
    fresh = session(tmp_path, None, {"environ.sh": None}).manifest(built(tmp_path), "c.sif", stack[:1])
    assert fresh.environ_file == "" and fresh.container == "c.sif"


def test_a_mode_without_an_image_publishes_no_layer(tmp_path):
    manifest = session(tmp_path, None, {}, WrapContainerMode()).manifest(built(tmp_path), "c.sif", ())
    assert manifest.layers == () and manifest.marker() is None
    assert manifest.prefix_on_path is False and manifest.direct_targets == ("tool",)


def test_what_the_filled_tree_found_goes_into_the_manifest(tmp_path):
    filled = Filled(python="/TYKKY/env1/bin/python", environment={"A": "1"}, activation={"set": {"B": "2"}})
    manifest = session(tmp_path, None, {}).manifest(built(tmp_path, filled), "c.sif", PREVIOUS.layers)
    assert manifest.environment == {"A": "1"} and manifest.activation == {"set": {"B": "2"}}
