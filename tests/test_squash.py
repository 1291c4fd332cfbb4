"""Squashfs images: the permissions fixed first and the mksquashfs and unsquashfs commands."""
import os
import stat

import pytest

from tests.fake_runner import fake_runner
from tykky import squash
from tykky.errors import TykkyError


def mode(path) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_permissions_are_readable_by_all_and_writable_only_by_the_owner(tmp_path):
    tree = tmp_path / "tree"
    (tree / "private").mkdir(parents=True)
    (tree / "private").chmod(0o700)
    (tree / "private" / "data").write_text("")
    (tree / "private" / "data").chmod(0o600)
    (tree / "tool").write_text("")
    (tree / "tool").chmod(0o744)
    (tree / "shared").write_text("")
    (tree / "shared").chmod(0o666)
    os.symlink("tool", tree / "link")
    outside = tmp_path / "outside"
    outside.write_text("")
    outside.chmod(0o600)
    os.symlink(outside, tree / "out-link")
    os.symlink("missing", tree / "dangling")
    tree.chmod(0o700)
    squash.fix_permissions(tree)
    assert mode(tree) == mode(tree / "private") == 0o755
    assert mode(tree / "private" / "data") == 0o644
    assert mode(tree / "tool") == 0o755
    assert mode(tree / "shared") == 0o644
    assert os.readlink(tree / "link") == "tool"
    assert mode(outside) == 0o600  # links are not followed out of the tree


def test_squash_fixes_permissions_then_runs_mksquashfs_with_the_options(monkeypatch, tmp_path):
    monkeypatch.setattr(squash, "mksquashfs_path", lambda: "/usr/bin/mksquashfs")
    fake = fake_runner(monkeypatch)
    (tmp_path / "tree").mkdir(mode=0o700)
    squash.squash(tmp_path / "tree", tmp_path / "img.sqfs", options="-comp zstd  -Xcompression-level 3 -e 'a b'",
                  processors=2)
    assert fake.argvs == [["/usr/bin/mksquashfs", str(tmp_path / "tree"), str(tmp_path / "img.sqfs"),
                           "-noappend", "-no-progress", "-processors", "2", "-comp", "zstd",
                           "-Xcompression-level", "3", "-e", "a b"]]
    assert mode(tmp_path / "tree") == 0o755


def test_squash_leaves_permissions_when_told(monkeypatch, tmp_path):
    monkeypatch.setattr(squash, "mksquashfs_path", lambda: "/usr/bin/mksquashfs")
    fake_runner(monkeypatch)
    (tmp_path / "tree").mkdir(mode=0o700)
    squash.squash(tmp_path / "tree", tmp_path / "img.sqfs", options="", processors=1, fix_perm=False)
    assert mode(tmp_path / "tree") == 0o700


def test_missing_mksquashfs_says_what_to_install(monkeypatch):
    monkeypatch.setattr(squash.shutil, "which", lambda name: None)
    monkeypatch.setattr(squash.os, "access", lambda path, how: False)
    with pytest.raises(TykkyError, match="Install squashfs-tools"):
        squash.mksquashfs_path()


def test_unsquash_unpacks_over_the_destination(monkeypatch, tmp_path):
    monkeypatch.setattr(squash.shutil, "which", lambda name: f"/bin/{name}")
    fake = fake_runner(monkeypatch)
    squash.unsquash(tmp_path / "img.sqfs", tmp_path / "out")
    assert fake.argvs == [["/bin/unsquashfs", "-no-progress", "-f", "-d", str(tmp_path / "out"),
                           str(tmp_path / "img.sqfs")]]
