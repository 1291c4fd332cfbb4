"""A damaged installation: one line naming it and what to do, an error exit, never a traceback.

The launcher runs as in an installation (its stub, byte code and manifest); its runtime is
echo, which prints the arguments it would have been given.
"""
import ast
import json
import marshal
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict

import pytest

from tykky import layout
from tykky import manifest as manifest_module
from tykky.manifest import Layer, Manifest

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "inst"
    manifest = Manifest(tool_version="0", build_id="b", mode="pip", container="container.sif",
                        runtime={"name": "apptainer", "path": "/bin/echo", "version": "1.4.5"},
                        layers=(Layer("img.sqfs", "/TYKKY", "overlay"),), installation_path="/TYKKY",
                        isolate=False, mount_points=(), excluded_mount_points=(),
                        targets={"python": "/TYKKY/venv/bin/python"}, environment={"A": "1"})
    layout.install_launcher(prefix, sys.executable)
    layout.link_programs(prefix, manifest.targets)
    manifest_module.write(manifest, prefix)
    for image in ("container.sif", "img.sqfs"):
        (prefix / image).write_bytes(b"")
    return prefix


def launch(prefix: Path) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(prefix.parent)}
    return subprocess.run([str(prefix / "bin" / "python"), "-c", "pass"], env=environ, capture_output=True, text=True)


def rewrite(change: Callable[[Dict], None]) -> Callable[[Path], None]:
    def damage(manifest: Path) -> None:
        data = json.loads(manifest.read_text())
        change(data)
        manifest.write_text(json.dumps(data))
    return damage


def written(content: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    return lambda manifest: manifest.write_bytes(content(manifest.read_bytes()))


# The manifest's damage, and what the one line must name.
DAMAGES = {
    "truncated": (written(lambda text: text[: len(text) // 2]), "not valid JSON"),
    "garbage bytes": (written(lambda text: b"\x00\xff\xfe\x80 garbage \x1b[0m"), "not valid JSON"),
    "empty": (written(lambda text: b""), "the file is empty"),
    "only blanks": (written(lambda text: b" \n\n"), "the file is empty"),
    "trailing garbage": (written(lambda text: text + b"}{x"), "not valid JSON"),
    "nested too deeply": (written(lambda text: b"[" * 200000), "not valid JSON"),
    "not an object": (written(lambda text: b"[1, 2]"), "holds no JSON object"),
    "no layers": (rewrite(lambda m: m.pop("layers")), "it has no layers"),
    "no binds": (rewrite(lambda m: m.pop("binds")), "it has no binds"),
    "no runtime": (rewrite(lambda m: m.pop("runtime")), "it has no runtime"),
    "no container": (rewrite(lambda m: m.pop("container")), "it has no container"),
    "no targets": (rewrite(lambda m: m.pop("targets")), "it has no targets"),
    "no isolate": (rewrite(lambda m: m["binds"].pop("isolate")), "binds has no isolate"),
    "layers a string": (rewrite(lambda m: m.update(layers="img.sqfs")), "layers is not a list"),
    "layer a number": (rewrite(lambda m: m.update(layers=[1])), "layers[0] is not an object"),
    "layer without image": (rewrite(lambda m: m["layers"][0].pop("image")), "layers[0] has no image"),
    "runtime a string": (rewrite(lambda m: m.update(runtime="apptainer")), "runtime is not an object"),
    "container a number": (rewrite(lambda m: m.update(container=5)), "container is not a string"),
    "variable a number": (rewrite(lambda m: m.update(environment={"A": 1})), "environment.A is not a string"),
    "gpu a list": (rewrite(lambda m: m.update(gpu=["nv"])), "gpu is not a string"),
    "a directory": (lambda manifest: (manifest.unlink(), manifest.mkdir()), "cannot be read (Is a directory)"),
    "missing": (lambda manifest: manifest.unlink(), "cannot be read (No such file or directory)"),
}


def test_a_sound_installation_launches(prefix):
    completed = launch(prefix)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("-q exec ") and f" {prefix / 'container.sif'} " in completed.stdout


def stub_payload(prefix: Path) -> Dict:
    """What the stub carries (its interpreter is this one)."""
    line = next(line for line in (prefix / layout.LAUNCHER).read_text().splitlines() if line.startswith("PAYLOAD = "))
    return marshal.loads(ast.literal_eval(line[len("PAYLOAD = "):])[4:])


def assert_one_line_about(completed: subprocess.CompletedProcess, prefix: Path, *named: str) -> None:
    assert completed.returncode == 127
    assert completed.stdout == ""
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.splitlines()) == 1, completed.stderr
    assert completed.stderr.startswith(f"tykky: the installation at {prefix} is damaged: ")
    assert "Rebuild it with the command that made it" in completed.stderr
    for text in named:
        assert text in completed.stderr


@pytest.mark.parametrize("copied", [False, True], ids=["read", "copied"])
@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_manifest_gives_one_line(prefix, damage, copied):
    """Also when the stub carries a copy of the manifest as it was before (the stub runs the
    diagnosis from its own byte code of the contract)."""
    if copied:
        layout.write_stub(prefix, sys.executable)
        assert stub_payload(prefix)["manifest"]["manifest"]["build_id"] == "b"
    change, problem = DAMAGES[damage]
    manifest = prefix / manifest_module.MANIFEST_PATH
    change(manifest)
    assert_one_line_about(launch(prefix), prefix, f"its manifest {manifest} ", problem)


@pytest.mark.skipif(AS_ROOT, reason="root reads every file")
def test_an_unreadable_manifest_gives_one_line(prefix):
    manifest = prefix / manifest_module.MANIFEST_PATH
    manifest.chmod(0)
    assert_one_line_about(launch(prefix), prefix, f"its manifest {manifest} cannot be read (Permission denied)")


@pytest.mark.parametrize("image", ["container.sif", "img.sqfs"])
def test_a_missing_image_gives_one_line(prefix, image):
    (prefix / image).unlink()
    assert_one_line_about(launch(prefix), prefix, f"its image {prefix / image} is missing")


@pytest.mark.skipif(AS_ROOT, reason="root reads every file")
def test_an_unreadable_image_gives_one_line(prefix):
    (prefix / "img.sqfs").chmod(0)
    assert_one_line_about(launch(prefix), prefix, f"its image {prefix / 'img.sqfs'} cannot be read")


def test_an_unexpected_error_gives_one_line_and_a_traceback_only_when_asked(launcher, monkeypatch, capsys):
    def broken(argv):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(launcher, "launch", broken)
    monkeypatch.setattr(launcher, "read_manifest", lambda prefix: {"sound": True})
    monkeypatch.setattr(launcher.contract, "manifest_problem", lambda manifest: None)
    for level, traceback in (("1", False), ("3", True)):
        monkeypatch.setenv("CW_LOG_LEVEL", level)
        with pytest.raises(SystemExit) as ended:
            launcher.main()
        errors = capsys.readouterr().err
        assert ended.value.code != 0
        assert errors.splitlines()[-1].startswith("tykky: cannot start ")
        assert "unexpected ZeroDivisionError: a bug" in errors
        assert ("Traceback" in errors) is traceback


def test_a_truncated_layer_gives_one_line(prefix):
    """The manifest records each layer's size when it is placed; a launch compares it."""
    image = prefix / "img.sqfs"
    image.write_bytes(b"\0" * 4096)
    manifest_module.write(manifest_module.load(prefix), prefix)
    assert json.loads((prefix / manifest_module.MANIFEST_PATH).read_text())["layers"][0]["size"] == 4096
    assert launch(prefix).returncode == 0
    with open(image, "r+b") as handle:
        handle.truncate(1000)
    assert_one_line_about(launch(prefix), prefix, f"its image {image} has 1000 bytes, not the 4096 it was built with")
