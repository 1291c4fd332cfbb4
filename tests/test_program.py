"""Finding the setup a run belongs to: from D/bin/<command> or from the archive's directory."""
from pathlib import Path

import pytest

from tykky import program


def make_setup(directory: Path, site: str = "lumi") -> Path:
    (directory / "etc").mkdir(parents=True)
    (directory / "bin").mkdir()
    (directory / "etc" / "tykky.conf").write_text(f"# comment=ignored\n site_config = {site}\n")
    return directory


@pytest.fixture(autouse=True)
def no_archive(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(program, "ARCHIVE", "")


def test_setup_found_from_a_command_in_its_bin(tmp_path):
    setup = make_setup(tmp_path / "site")
    found = program.find_setup(str(setup / "bin" / "pip-containerize"))
    assert found is not None and found.directory == setup
    assert found.site_config == "lumi" and "comment" not in found.values


def test_setup_found_from_the_archive_directory(tmp_path, monkeypatch):
    setup = make_setup(tmp_path / "site", "/etc/site.yaml")
    (setup / "tykky.pyz").write_bytes(b"")
    link = tmp_path / "elsewhere" / "tool"
    link.parent.mkdir()
    link.symlink_to(setup / "tykky.pyz")
    monkeypatch.setattr(program, "ARCHIVE", str(link))
    assert program.selected_site(str(link)) == "/etc/site.yaml"


def test_no_setup_means_no_selection(tmp_path):
    (tmp_path / "bin").mkdir()
    assert program.find_setup(str(tmp_path / "bin" / "tykky")) is None
    assert program.selected_site(str(tmp_path / "bin" / "tykky")) is None


def test_origin_of_the_interpreter_is_described(monkeypatch):
    monkeypatch.setattr(program, "PYTHON_ORIGIN", "")
    program.started_from_archive("/x/tykky.pyz", "TYKKY_PYTHON")
    assert program.PYTHON_ORIGIN == "TYKKY_PYTHON" and program.ARCHIVE == "/x/tykky.pyz"
    program.started_from_archive("/x/tykky.pyz", "search")
    assert "newest suitable python3" in program.PYTHON_ORIGIN


def test_shims_are_recognised():
    assert program.is_shim("/home/u/.pyenv/shims/python3")
    assert not program.is_shim("/home/u/.pyenv/versions/3.11.7/bin/python3")
