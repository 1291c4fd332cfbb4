"""Putting a build into its prefix: refusals, and replacing files under running readers."""
import os

import pytest

from tykky import deploy
from tykky.errors import TykkyError


def test_prefix_with_comma_is_refused(tmp_path):
    with pytest.raises(TykkyError, match="contains ','"):
        deploy.check_new_prefix(tmp_path / "a,b")


def test_non_empty_prefix_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(TykkyError, match="already exists and is neither an empty directory nor an installation"):
        deploy.check_new_prefix(tmp_path)


def test_new_prefix_replaces_prepared_empty_directory_keeping_its_mode(tmp_path):
    staged = tmp_path / "stage"
    (staged / "bin").mkdir(parents=True)
    (staged / "bin" / "x").write_text("x")
    prefix = tmp_path / "inst"
    prefix.mkdir()
    prefix.chmod(0o2750)
    deploy.deploy_new(staged, prefix)
    assert (prefix / "bin" / "x").read_text() == "x"
    assert prefix.stat().st_mode & 0o7777 == 0o2750
    assert [p.name for p in tmp_path.iterdir()] == ["inst"]


def test_placed_file_leaves_open_readers_on_the_old_content(tmp_path):
    destination = tmp_path / "img.sqfs"
    destination.write_text("old")
    new = tmp_path / "new"
    new.write_text("new")
    with open(destination) as reader:
        deploy.place_file(new, destination)
        assert reader.read() == "old"
    assert destination.read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["img.sqfs", "new"]


def installation(prefix, content: str):  # type: ignore[no-untyped-def]
    (prefix / "_tykky").mkdir(parents=True)
    (prefix / "_tykky" / "manifest.json").write_text("{}")
    (prefix / "img.sqfs").write_text(content)
    return prefix


def test_a_directory_that_is_not_an_installation_stays_refused(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "data.txt").write_text("mine")
    with pytest.raises(TykkyError, match="neither an empty directory nor an installation"):
        deploy.check_new_prefix(tmp_path)


def test_installations_of_this_tool_and_of_tykky_may_be_replaced(tmp_path):
    deploy.check_new_prefix(installation(tmp_path / "ours", "old"))
    for name in ("bin", "_bin"):
        (tmp_path / "theirs" / name).mkdir(parents=True)
    (tmp_path / "theirs" / "common.sh").write_text("")
    deploy.check_new_prefix(tmp_path / "theirs")


@pytest.mark.parametrize("exchange", [True, False])
def test_new_over_an_installation_swaps_it_and_open_files_stay_readable(tmp_path, monkeypatch, exchange):
    if not exchange:  # filesystems without renameat2's RENAME_EXCHANGE: two renames
        monkeypatch.setattr(deploy, "_exchange", lambda first, second: False)
    prefix = installation(tmp_path / "inst", "old")
    staged = installation(tmp_path / "stage", "new")
    with open(prefix / "img.sqfs") as reader:
        deploy.deploy_new(staged, prefix)
        assert reader.read() == "old"
    assert (prefix / "img.sqfs").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["inst"]
