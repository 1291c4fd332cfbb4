"""Getting the build's container: a local file, or a pull into the build directory; placing it."""
import os
import struct

import pytest

from tests.fake_runner import fake_runner
from tykky import containers
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.runtime import Runtime

RUNTIME = Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5))


@pytest.mark.parametrize(("source", "remote"), [
    ("docker://python:3.12", True), ("oras://r/x:1", True), ("library://a/b/c", True),
    ("https://host.invalid/c.sif", True), ("docker-daemon://x:1", True), ("/p/c.sif", False),
    ("c.sif", False), ("docker:/x", False),
])
def test_remote_references_are_recognised_by_scheme(source, remote):
    assert containers.is_remote(source) is remote


def test_a_local_container_is_used_where_it_is(tmp_path, monkeypatch):
    fake = fake_runner(monkeypatch)
    (tmp_path / "c.sif").write_bytes(sif(8192, 8192))
    monkeypatch.chdir(tmp_path)
    assert containers.obtain("c.sif", RUNTIME, tmp_path / "build") == tmp_path / "c.sif"
    assert fake.calls == []


def test_missing_or_no_container_say_what_to_give(tmp_path):
    with pytest.raises(TykkyError, match="No container given: set container_src"):
        containers.obtain("", RUNTIME, tmp_path)
    with pytest.raises(TykkyError, match=r"missing.sif does not exist\. Give an existing"):
        containers.obtain(str(tmp_path / "missing.sif"), RUNTIME, tmp_path)


def test_a_remote_container_is_pulled_with_its_cache_in_the_build(tmp_path, monkeypatch):
    fake = fake_runner(monkeypatch)
    monkeypatch.setenv("APPTAINER_BIND", "/leaked")
    assert containers.obtain("docker://python:3.12", RUNTIME, tmp_path) == tmp_path / "pulled.sif"
    (call,) = fake.calls
    assert call["argv"] == ["/usr/bin/apptainer", "pull", str(tmp_path / "pulled.sif"), "docker://python:3.12"]
    assert call["env"]["APPTAINER_CACHEDIR"] == str(tmp_path / "cache") and "APPTAINER_BIND" not in call["env"]
    assert call["cwd"] == str(tmp_path)


def test_a_failed_pull_names_the_reference_and_keeps_the_runtimes_words(tmp_path, monkeypatch):
    def refuse(argv, **_kwargs):  # type: ignore[no-untyped-def]
        raise TykkyError("pulling failed", details="    FATAL: manifest unknown")

    monkeypatch.setattr(containers.runner, "run", refuse)
    with pytest.raises(TykkyError, match="Could not pull the container docker://nope:1") as error:
        containers.obtain("docker://nope:1", RUNTIME, tmp_path)
    assert error.value.details == "    FATAL: manifest unknown"


def test_a_container_is_copied_or_shared_by_a_link(tmp_path):
    (tmp_path / "c.sif").write_text("image")
    assert containers.place(tmp_path / "c.sif", str(tmp_path / "c.sif"), tmp_path / "copy.sif", Config()) == "copy.sif"
    assert (tmp_path / "copy.sif").read_text() == "image" and not (tmp_path / "copy.sif").is_symlink()
    containers.place(tmp_path / "c.sif", "c.sif", tmp_path / "shared.sif", Config(share_container=True))
    assert os.readlink(tmp_path / "shared.sif") == str(tmp_path / "c.sif")
    pulled = tmp_path / "pulled.sif"
    pulled.write_text("pulled")
    containers.place(pulled, "docker://x:1", tmp_path / "own.sif", Config(share_container=True))
    assert not (tmp_path / "own.sif").is_symlink()  # a pull is removed with the build directory


def test_a_sandbox_directory_is_refused_with_how_to_build_a_sif(tmp_path):
    (tmp_path / "sandbox").mkdir()
    with pytest.raises(TykkyError, match="is a sandbox directory: build a .sif"):
        containers.place(tmp_path / "sandbox", str(tmp_path / "sandbox"), tmp_path / "c.sif", Config())


def sif(size: int, recorded_end: int) -> bytes:
    header = b"#!/usr/bin/env run-singularity\n\0" + b"SIF_MAGIC\0" + b"\0" * 70
    header = header[:112] + struct.pack("<2q", 4096, recorded_end - 4096)
    return header + b"\0" * (size - len(header))


def squashfs(size: int, bytes_used: int) -> bytes:
    header = b"hsqs" + b"\0" * 36 + struct.pack("<q", bytes_used)
    return header + b"\0" * (size - len(header))


@pytest.mark.parametrize("content, problem", [
    (sif(8192, 8192), ""),
    (sif(6000, 8192), "is truncated (6000 of 8192 bytes)"),
    (squashfs(4096, 4000), ""),
    (squashfs(2048, 4000), "is truncated (2048 of 4000 bytes)"),
    (b"not an image\n", "is not a container image (not a SIF, squashfs or ext3 file)"),
])
def test_image_problem(tmp_path, content, problem):
    path = tmp_path / "image"
    path.write_bytes(content)
    assert containers.image_problem(path) == problem
    if problem:
        with pytest.raises(TykkyError, match="Rebuild it"):
            containers.check_image_file(path, "The image", "Rebuild it.")


def test_directory_is_refused_for_image_builds(tmp_path):
    with pytest.raises(TykkyError, match="is a directory"):
        containers.check_buildable(str(tmp_path))
    containers.check_buildable("docker://python:3.12-slim")
