"""wrap-container without a runtime: its checks, how it places a container, the prefix it makes."""
import os
import struct
from pathlib import Path

import pytest

from tests.fake_runner import fake_runner
from tykky import installation, layout, manifest
from tykky.commands import wrap_container
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.modes import wrap_container as wrap_container_mode
from tykky.runtime import Runtime

# The smallest whole squashfs image as far as tykky checks: its magic and the bytes it uses.
WHOLE_IMAGE = b"hsqs" + bytes(36) + struct.pack("<q", 48)


def test_relative_paths_are_refused():
    with pytest.raises(TykkyError, match="absolute paths inside the container: bin, lib"):
        wrap_container.check_paths(Config(wrapper_paths=("/usr/bin", "bin", "lib")))


def test_missing_environ_file_is_refused(tmp_path):
    with pytest.raises(TykkyError, match="environment file"):
        wrap_container.check_paths(Config(wrapper_paths=("/usr/bin",), environ_file=str(tmp_path / "no.sh")))


def test_sandbox_directory_is_linked(tmp_path):
    sandbox, stage = tmp_path / "sandbox", tmp_path / "stage"
    sandbox.mkdir()
    stage.mkdir()
    name = wrap_container_mode.place(sandbox, Config(container_src=str(sandbox)), stage)
    assert name == "container"
    assert os.readlink(stage / name) == str(sandbox)


def test_image_file_is_copied(tmp_path):
    image, stage = tmp_path / "image.sif", tmp_path / "stage"
    image.write_bytes(b"sif")
    stage.mkdir()
    name = wrap_container_mode.place(image, Config(container_src=str(image)), stage)
    assert name == "container.sif"
    assert not (stage / name).is_symlink() and (stage / name).read_bytes() == b"sif"


def write_launcher_payload(argv) -> None:  # type: ignore[no-untyped-def]
    """What the launcher's interpreter writes when it byte-compiles the launcher."""
    if layout.COMPILE_LAUNCHER in argv:
        Path(argv[argv.index(layout.COMPILE_LAUNCHER) + 1]).write_text("b''")


def test_the_prefix_has_the_container_programs_and_no_image(monkeypatch, tmp_path):
    image = tmp_path / "vendor.sif"
    image.write_bytes(WHOLE_IMAGE)  # obtain checks it is a whole image
    (tmp_path / "build").mkdir()
    fake = fake_runner(monkeypatch, output="ENV\tPATH\t/usr/bin:/bin\nSHELL\t/bin/bash\nTARGET\t/opt/tool/bin/tool\n",
                       effect=write_launcher_payload)
    runtime = Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5))
    monkeypatch.setattr(installation, "find_runtime", lambda path: runtime)
    config = Config(wrapper_paths=("/opt/tool/bin",), installation_prefix=str(tmp_path / "prefix"),
                    build_tmpdir_base=str(tmp_path / "build"))
    prefix = wrap_container.new(config, str(image))
    assert not list((tmp_path / "build").iterdir())  # the build directory is gone
    argv = fake.argvs[0]  # the probe; then the launcher is byte-compiled with its interpreter
    assert argv[argv.index(str(image)) + 1:][:2] == ["/bin/sh", "-c"]
    assert not any(bind.endswith(":/TYKKY") for bind in argv[argv.index("--bind") + 1].split(","))
    assert (prefix / "container.sif").read_bytes() == WHOLE_IMAGE
    written = manifest.load(prefix)
    assert (written.mode, written.layers, written.container) == ("wrap-container", (), "container.sif")
    assert written.targets == {"tool": "/opt/tool/bin/tool"} and written.path.prepend == ("/opt/tool/bin",)
    assert os.path.islink(prefix / "bin" / "tool")
    assert not list(prefix.glob("*.sqfs"))
