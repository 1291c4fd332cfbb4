"""tykky setup: links, profile, completion and the recorded site configuration."""
import os
import subprocess

import pytest

from tykky import program
from tykky.commands import setup
from tykky.config import build_config
from tykky.errors import TykkyError


@pytest.fixture()
def archive(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    path = tmp_path / "dl" / "tykky.pyz"
    path.parent.mkdir()
    path.write_bytes(b"#!/bin/sh\n")
    monkeypatch.setattr(program, "ARCHIVE", str(path))
    return path


def test_setup_links_commands_and_writes_shell_files(archive, tmp_path, capsys):
    target = tmp_path / "site dir"
    assert setup.run("puhti", str(target)) == target
    for name in setup.COMMANDS:
        assert os.readlink(target / "bin" / name) == str(archive)
    profile = (target / "etc" / "profile.d" / "tykky.sh").read_text()
    assert "_tykky_program='" + str(target / "bin" / "tykky") + "'" in profile
    assert "tykky() {" in profile and "_tykky_deactivate" in profile
    assert "complete -o nosort -F _tykky_complete tykky" in (target / "etc" / "bash_completion.d" / "tykky").read_text()
    assert program.read_record(target / "etc" / "tykky.conf") == {"site_config": "puhti"}
    assert f"source '{target}/etc/profile.d/tykky.sh'" in capsys.readouterr().out


def test_later_runs_use_the_recorded_site_but_cw_global_yaml_wins(archive, tmp_path):
    target = tmp_path / "site"
    setup.run("mahti", str(target))
    selected = program.selected_site(str(target / "bin" / "pip-containerize"))
    assert selected == "mahti"
    assert build_config({}, {}, selected_site=selected).site_config_path.endswith("mahti.yaml")
    assert build_config({}, {"CW_GLOBAL_YAML": "lumi"}, selected_site=selected).site_config_path.endswith(
        "lumi.yaml")


def test_default_directory_is_the_archive_directory(archive):
    assert setup.run("generic", None) == archive.parent
    assert (archive.parent / "bin" / "wrap-install").is_symlink()
    assert program.find_setup(str(archive)).site_config == "generic"


def test_site_file_is_validated_and_copied(archive, tmp_path):
    site = tmp_path / "mysite.yaml"
    site.write_text("defaults:\n  installation_path: /MINE\n")
    target = tmp_path / "site"
    setup.run(str(site), str(target))
    copy = target / "etc" / "tykky" / "site.yaml"
    assert copy.read_text() == site.read_text()
    assert program.find_setup(str(target / "bin" / "tykky")).site_config == str(copy)
    assert build_config({}, {}, selected_site=str(copy)).installation_path == "/MINE"


def test_broken_site_file_is_refused_before_anything_is_written(archive, tmp_path):
    site = tmp_path / "broken.yaml"
    site.write_text("defaults:\n  instalation_path: /x\n")
    with pytest.raises(TykkyError, match="instalation_path"):
        setup.run(str(site), str(tmp_path / "site"))
    assert not (tmp_path / "site").exists()


def test_unknown_name_lists_the_shipped_configurations(archive, tmp_path):
    with pytest.raises(TykkyError, match=r"'lumii' is neither a file nor .*generic, lumi, mahti, puhti"):
        setup.run("lumii", str(tmp_path / "site"))


def test_a_foreign_file_in_bin_is_not_replaced(archive, tmp_path):
    target = tmp_path / "site"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "wrap-install").write_text("mine")
    with pytest.raises(TykkyError, match="wrap-install exists and is not a link made by tykky setup"):
        setup.run("generic", str(target))
    assert (target / "bin" / "wrap-install").read_text() == "mine"
    assert not (target / "bin" / "tykky").exists()


def test_setup_again_points_the_links_at_the_new_archive(archive, tmp_path, monkeypatch):
    target = tmp_path / "site"
    setup.run("generic", str(target))
    newer = tmp_path / "new" / "tykky.pyz"
    newer.parent.mkdir()
    newer.write_bytes(b"#!/bin/sh\n")
    monkeypatch.setattr(program, "ARCHIVE", str(newer))
    setup.run("lumi", str(target))
    assert os.readlink(target / "bin" / "conda-containerize") == str(newer)
    assert program.read_record(target / "etc" / "tykky.conf")["site_config"] == "lumi"


def test_the_archive_itself_in_bin_is_kept(tmp_path, monkeypatch):
    target = tmp_path / "home"
    (target / "bin").mkdir(parents=True)
    archive = target / "bin" / "tykky"
    archive.write_bytes(b"#!/bin/sh\n")
    monkeypatch.setattr(program, "ARCHIVE", str(archive))
    setup.run("generic", str(target))
    assert not archive.is_symlink() and os.readlink(target / "bin" / "pip-containerize") == str(archive)


def test_setup_needs_the_archive(tmp_path, monkeypatch):
    monkeypatch.setattr(program, "ARCHIVE", "")
    with pytest.raises(TykkyError, match="run it from there"):
        setup.run("generic", str(tmp_path))


def test_unwritable_directory_is_reported(archive, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TykkyError, match="Cannot set up in .*--dir"):
        setup.run("generic", str(blocker / "site"))


def test_profile_puts_bin_on_path_once_even_with_a_quote_in_the_path(archive, tmp_path):
    setup.run("generic", str(tmp_path / "s'q"))
    profile = tmp_path / "s'q" / "etc" / "profile.d" / "tykky.sh"
    for shell in ("dash", "bash"):
        subprocess.run([shell, "-n", str(profile)], check=True)
        completed = subprocess.run([shell, "-c", 'PATH=/usr/bin; . "$1"; . "$1"; printf %s "$PATH"', shell,
                                    str(profile)], capture_output=True, text=True, check=True)
        assert completed.stdout == f"{tmp_path}/s'q/bin:/usr/bin"
