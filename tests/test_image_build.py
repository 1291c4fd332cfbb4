"""Finding Python sources that lack byte code before an image is squashed."""
from tykky.image_build import sources_without_bytecode


def test_sources_lacking_pyc_for_that_version(tmp_path):
    package = tmp_path / "venv" / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    for name in ("compiled.py", "other_version.py", "plain.py"):
        (package / name).write_text("x = 1\n")
    (package / "__pycache__" / "compiled.cpython-311.pyc").write_bytes(b"")
    (package / "__pycache__" / "other_version.cpython-310.pyc").write_bytes(b"")
    (package / "data.txt").write_text("")
    assert sorted(sources_without_bytecode(tmp_path, "3.11")) == ["venv/pkg/other_version.py", "venv/pkg/plain.py"]
