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
    with pytest.raises(TykkyError, match="already exists and is not an empty directory"):
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
