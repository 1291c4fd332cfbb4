"""`tykky activate` reached as a program: the way to the shell function, and completion names."""
import pytest

from tykky import program
from tykky.commands import activate, setup
from tykky.errors import TykkyError


def installation(path):  # type: ignore[no-untyped-def]
    (path / "_tykky").mkdir(parents=True)
    (path / "_tykky" / "manifest.json").write_text("{}")
    (path / "bin").mkdir()
    return path


def test_completion_names_come_from_tykky_path_and_the_current_directory(tmp_path, monkeypatch):
    installation(tmp_path / "store" / "alpha")
    installation(tmp_path / "work" / "alpine")
    (tmp_path / "store" / "also-a-dir").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    names = activate.installation_names("al", {"TYKKY_PATH": f"{tmp_path / 'missing'}:{tmp_path / 'store'}"})
    assert names == ["alpha", "alpine"]


def test_program_explains_how_to_get_the_shell_function(tmp_path, monkeypatch):
    archive = tmp_path / "tykky.pyz"
    archive.write_bytes(b"")
    monkeypatch.setattr(program, "ARCHIVE", str(archive))
    setup.run("generic", str(tmp_path / "site"))
    monkeypatch.setattr(program.sys, "argv", [str(tmp_path / "site" / "bin" / "tykky")])
    with pytest.raises(TykkyError) as error:
        activate.needs_shell_function("activate")
    assert error.value.exit_code == 2
    assert f"source {tmp_path}/site/etc/profile.d/tykky.sh" in str(error.value)
