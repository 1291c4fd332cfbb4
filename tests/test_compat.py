"""What older Pythons lack (tykky/_compat.py): package data, and copying into an existing tree."""
import os
import shutil

import pytest

from tykky import _compat


def test_package_data_is_read_the_same_way_on_every_python():
    standard = _compat.resources.files("tykky_configs")
    fallback = _compat.package_directory("tykky_configs")
    assert sorted(p.name for p in standard.iterdir() if p.name.endswith(".yaml")) == \
        sorted(p.name for p in fallback.iterdir() if p.name.endswith(".yaml"))
    assert fallback.joinpath("generic.yaml").read_text() == standard.joinpath("generic.yaml").read_text()


def source_tree(root):  # type: ignore[no-untyped-def]
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("new tool\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "lib" / "deep").mkdir(parents=True)
    (root / "lib" / "deep" / "data").write_text("data\n")
    (root / "lib" / "link").symlink_to("deep/data")
    return root


@pytest.fixture(params=["standard", "fallback"])
def copy_into(request):  # type: ignore[no-untyped-def]
    """copy_tree_into as this Python runs it, and the fallback that Pythons before 3.8 run."""
    if request.param == "standard":
        return _compat.copy_tree_into

    def fallback(source, target):  # type: ignore[no-untyped-def]
        errors = []
        _compat._merge(str(source), str(target), errors)
        if errors:
            raise shutil.Error(errors)

    return fallback


def test_copying_merges_into_what_the_tree_already_holds(copy_into, tmp_path):
    source = source_tree(tmp_path / "source")
    target = tmp_path / "target"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "tool").write_text("old tool\n")
    (target / "bin" / "from-pre-install").write_text("kept\n")
    (target / "lib").mkdir()
    copy_into(source, target)
    assert (target / "bin" / "tool").read_text() == "new tool\n"
    assert os.access(target / "bin" / "tool", os.X_OK)
    assert (target / "bin" / "from-pre-install").read_text() == "kept\n"
    assert (target / "lib" / "deep" / "data").read_text() == "data\n"
    assert os.readlink(target / "lib" / "link") == "deep/data"


def test_entries_that_cannot_be_copied_are_collected_not_fatal(copy_into, tmp_path):
    source = source_tree(tmp_path / "source")
    (tmp_path / "target" / "lib").mkdir(parents=True)
    (tmp_path / "target" / "lib" / "deep").write_text("a file where the source has a directory\n")
    with pytest.raises(shutil.Error) as caught:
        copy_into(source, tmp_path / "target")
    assert [failed for failed, _target, _why in caught.value.args[0]] == [str(source / "lib" / "deep")]
    assert (tmp_path / "target" / "bin" / "tool").read_text() == "new tool\n"
