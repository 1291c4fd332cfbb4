"""The steps every image build shares: the marker, the manifest and the byte code."""
from tests.fake_runner import fake_runner
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.image_build import compile_bytecode, make_manifest, new_build_id, sources_without_bytecode, write_marker
from tykky.manifest import Layer, PathVariable
from tykky.probe import ProbeResult
from tykky.runtime import Runtime, exec_argv


def test_sources_lacking_pyc_for_that_version(tmp_path):
    package = tmp_path / "venv" / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    for name in ("compiled.py", "other_version.py", "plain.py"):
        (package / name).write_text("x = 1\n")
    (package / "__pycache__" / "compiled.cpython-311.pyc").write_bytes(b"")
    (package / "__pycache__" / "other_version.cpython-310.pyc").write_bytes(b"")
    (package / "data.txt").write_text("")
    assert sorted(sources_without_bytecode(tmp_path, "3.11")) == ["venv/pkg/other_version.py", "venv/pkg/plain.py"]


RUNTIME = Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5))
FOUND = ProbeResult(environment={"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "/opt/lib"}, shell="/bin/bash",
                    targets={"tool": "/TYKKY/bin/tool"}, library_dirs=["/TYKKY/lib"],
                    python={"executable": "/TYKKY/venv/bin/python", "version": "3.11"})


def container(tmp_path, **values) -> BuildContainer:  # type: ignore[no-untyped-def]
    (tmp_path / "tree").mkdir(exist_ok=True)
    return BuildContainer(RUNTIME, tmp_path / "c.sif", Config(**values), tmp_path / "tree", tmp_path)


def test_the_marker_holds_the_build_id(tmp_path):
    write_marker(tmp_path, "abc")
    write_marker(tmp_path, "def")
    assert (tmp_path / ".tykky" / "build-id").read_text() == "def\n"
    assert new_build_id() != new_build_id() and len(new_build_id()) == 16


def test_manifest_from_the_config_and_what_the_probe_found(tmp_path):
    config = {"isolate": True, "mount_points": ("/scratch",), "gpu": "none", "warm_idle_timeout": 60}
    manifest = make_manifest(Config(**config), container(tmp_path, **config), FOUND, mode="pip", build_id="b1",
                             container_name="container.sif", image_name="img.sqfs", environment={"A": "1"})
    assert manifest.runtime == {"name": "apptainer", "path": "/usr/bin/apptainer", "version": "1.4.5"}
    assert manifest.layers == (Layer("img.sqfs", "/TYKKY"),)
    assert (manifest.isolate, manifest.mount_points, manifest.gpu) == (True, ("/scratch",), "")
    assert manifest.path == PathVariable(container="/usr/bin:/bin")
    assert manifest.ld_library_path == PathVariable(prepend=("/TYKKY/lib",), container="/opt/lib")
    assert (manifest.shell, manifest.targets, manifest.python) == ("/bin/bash", FOUND.targets, FOUND.python)
    assert manifest.warm == {"enabled": True, "idle_timeout": 60} and manifest.environment == {"A": "1"}


def test_manifest_without_add_ld_adds_no_library_directories_and_keeps_given_layers(tmp_path):
    layers = (Layer("img.sqfs", "/TYKKY", "overlay"), Layer("layer-2.sqfs", "/TYKKY", "overlay"))
    manifest = make_manifest(Config(add_ld=False, gpu="rocm"), container(tmp_path), FOUND, mode="pip",
                             build_id="b2", container_name="c.sif", image_name="unused.sqfs", layers=layers)
    assert manifest.ld_library_path.prepend == () and manifest.layers == layers and manifest.gpu == "rocm"


def test_byte_code_is_compiled_in_the_container_for_the_files_lacking_it(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch)
    build = container(tmp_path)
    (tmp_path / "tree" / "pkg").mkdir()
    (tmp_path / "tree" / "pkg" / "mod.py").write_text("")
    compile_bytecode(build, FOUND.python, tmp_path / "tree")
    assert fake.argvs == [exec_argv(RUNTIME, str(tmp_path / "c.sif"),
                                    ["/TYKKY/venv/bin/python", "-m", "compileall", "-q", "-i",
                                     str(tmp_path / "compile-list.txt")], binds=build.binds())]
    assert (tmp_path / "compile-list.txt").read_text() == "/TYKKY/pkg/mod.py\n"


def test_no_container_starts_when_nothing_needs_compiling(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch)
    build = container(tmp_path)
    compile_bytecode(build, FOUND.python, tmp_path / "tree")
    (tmp_path / "tree" / "mod.py").write_text("")
    compile_bytecode(build, None, tmp_path / "tree")
    compile_bytecode(build, {"executable": ""}, tmp_path / "tree")
    assert fake.calls == []
