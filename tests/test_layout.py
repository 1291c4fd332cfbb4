"""The prefix's files, each replaced atomically."""
import os

from tykky import layout


def test_programs_linked_and_dropped_ones_removed(tmp_path):
    layout.link_programs(tmp_path, {"python": "/T/venv/bin/python", "old": "/T/venv/bin/old"})
    layout.link_programs(tmp_path, {"python": "/T/venv/bin/python3", "pip": "/T/venv/bin/pip"},
                         previous=["python", "old"])
    assert os.readlink(tmp_path / "_bin" / "python") == "/T/venv/bin/python3"
    assert os.readlink(tmp_path / "bin" / "pip") == "../_tykky/launcher"
    assert not (tmp_path / "bin" / "old").is_symlink() and not (tmp_path / "_bin" / "old").is_symlink()
    assert sorted(os.listdir(tmp_path / "bin")) == ["_debug_exec", "_debug_shell", "pip", "python"]


def test_venv_view_has_no_home(tmp_path):
    python = {"version": "3.11", "full_version": "3.11.2", "site_packages": "/T/venv/lib/python3.11/site-packages",
              "stdlib_parent": "/usr/lib", "include_parent": "/usr/include"}
    layout.write_venv_view(tmp_path, python, system_site=True)
    config = (tmp_path / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in config and "version = 3.11.2" in config
    assert not any(line.startswith("home") for line in config.splitlines())
    assert os.readlink(tmp_path / "lib" / "python3.11" / "site-packages") == python["site_packages"]
    assert os.readlink(tmp_path / "_bin" / "lib") == "/usr/lib"


def test_launcher_is_a_stub_carrying_the_byte_code(tmp_path):
    (tmp_path / "_tykky").mkdir()
    (tmp_path / "_tykky" / "tykky_diagnose.py").write_text("")  # an earlier version's, now in the contract
    layout.install_launcher(tmp_path, "/usr/bin/python3")
    assert not (tmp_path / "_tykky" / "tykky_diagnose.py").exists()
    stub = (tmp_path / "_tykky" / "launcher").read_text()
    assert stub.startswith("#!/usr/bin/python3 -IS\n") and len(stub.splitlines()) < 25
    assert os.access(tmp_path / "_tykky" / "launcher", os.X_OK)
    assert sorted(os.listdir(tmp_path / "_tykky")) == ["launcher", "tykky_contract.py", "tykky_launcher.py",
                                                       "tykky_warm.py"]


def test_replace_file_follows_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        layout.replace_file(tmp_path / "f", b"x", executable=True)
    finally:
        os.umask(previous)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o750
