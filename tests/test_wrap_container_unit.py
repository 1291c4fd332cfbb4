"""wrap-container's checks and how it places a container, without a runtime."""
import os

import pytest

from tykky.commands import wrap_container
from tykky.config import Config
from tykky.errors import TykkyError


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
    name = wrap_container.place(sandbox, Config(container_src=str(sandbox)), stage)
    assert name == "container"
    assert os.readlink(stage / name) == str(sandbox)


def test_image_file_is_copied(tmp_path):
    image, stage = tmp_path / "image.sif", tmp_path / "stage"
    image.write_bytes(b"sif")
    stage.mkdir()
    name = wrap_container.place(image, Config(container_src=str(image)), stage)
    assert name == "container.sif"
    assert not (stage / name).is_symlink() and (stage / name).read_bytes() == b"sif"
