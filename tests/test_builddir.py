"""The build directory: where it is made, and that it goes away (even its locked parts) unless kept."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers import REPO, SYSTEM_PYTHON, TEST_USER, user_named
from tykky import builddir, log
from tykky.errors import TykkyError


def test_the_base_is_the_setting_else_tmpdir_else_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert builddir.build_base("/var/tmp") == Path("/var/tmp")
    assert builddir.build_base("") == tmp_path
    monkeypatch.delenv("TMPDIR")
    assert builddir.build_base("") == Path("/tmp")


def test_the_directory_is_removed_after_a_failure_too(tmp_path):
    with pytest.raises(RuntimeError), builddir.build_directory(str(tmp_path), keep=False) as build:
        assert build.parent == tmp_path and build.name.startswith("cw-")
        assert oct(os.stat(build).st_mode & 0o777) == "0o755"
        (build / "sub").mkdir()
        (build / "sub" / "file").write_text("")
        os.symlink("/etc", build / "link")
        raise RuntimeError("the build failed")
    assert list(tmp_path.iterdir()) == []
    assert os.path.isdir("/etc")


def test_a_kept_directory_is_named(tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(log, "warning", said.append)
    with builddir.build_directory(str(tmp_path), keep=True) as build:
        pass
    assert build.is_dir() and said == [f"Build files kept in {build} (CW_DEBUG_KEEP_FILES is set)"]


def test_removing_a_missing_tree_or_a_link_to_one(tmp_path):
    builddir.remove_tree(tmp_path / "missing")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "kept").write_text("")
    os.symlink(tmp_path / "target", tmp_path / "link")
    builddir.remove_tree(tmp_path / "link")
    assert not os.path.lexists(tmp_path / "link")  # the link goes, what it leads to stays
    assert (tmp_path / "target" / "kept").is_file()
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    builddir.remove_tree(tmp_path / "dangling")
    assert not os.path.lexists(tmp_path / "dangling")


# What installers and the overlay's work directory leave: unreadable and read-only parts.
LOCK = ('mkdir -p "$1/work/work" "$1/pkg/data" && : > "$1/pkg/data/file" && chmod 500 "$1/pkg/data" '
        '&& chmod 000 "$1/pkg" "$1/work/work"')
REMOVE = ("import sys; sys.path.insert(0, sys.argv[2]); from pathlib import Path; "
          "from tykky.builddir import remove_tree; remove_tree(Path(sys.argv[1]))")


def test_unreadable_and_read_only_directories_are_removed_as_root(tmp_path):
    subprocess.run(["sh", "-c", LOCK, "sh", str(tmp_path / "build")], check=True)
    builddir.remove_tree(tmp_path / "build")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_and_read_only_directories_are_removed_as_the_user():
    if os.geteuid() != 0:
        pytest.skip("runs the removal as the test user, which needs root")
    user = user_named(TEST_USER)
    base = Path(tempfile.mkdtemp(prefix="tykky-builddir-", dir="/tmp"))
    try:
        os.chown(base, user.uid, user.gid)
        user.run(["sh", "-c", LOCK, "sh", str(base / "build")])
        assert os.stat(base / "build" / "pkg").st_uid == user.uid
        user.run([SYSTEM_PYTHON, "-c", REMOVE, str(base / "build"), str(REPO / "src")])
        assert list(base.iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_missing_base_is_created_with_its_parents(tmp_path):
    base = tmp_path / "a" / "b" / "c"
    with builddir.build_directory(str(base), keep=False) as build:
        assert build.parent == base and build.name.startswith("cw-")
    assert base.is_dir() and list(base.iterdir()) == []


def test_relative_base_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TykkyError, match="A/B/C: the path is not absolute"):
        builddir.build_base("A/B/C")
    assert not (tmp_path / "A").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may create directories anywhere")
def test_base_that_cannot_be_created_says_so(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(TykkyError, match="Could not create build directory .*: Permission denied"):
            builddir.build_base(str(tmp_path / "builds"))
    finally:
        tmp_path.chmod(0o700)


def test_base_under_a_file_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(TykkyError, match="Could not create build directory"):
        builddir.build_base(str(tmp_path / "file" / "builds"))
