"""wrap-install's pure parts: -w paths, --mask checks, copying the tree."""
import os
from pathlib import Path

import pytest

from tykky.config import Config
from tykky.errors import TykkyError
from tykky.modes import wrap_install


def test_wrapper_paths_relative_absolute_inside_and_outside(tmp_path):
    config = Config(wrapper_paths=("bin", "./libexec/", str(tmp_path / "sbin" / "tool"), "/usr/bin/env", "."))
    assert wrap_install.in_container_paths(config, tmp_path) == [
        "/TYKKY/bin", "/TYKKY/libexec", "/TYKKY/sbin/tool", "/usr/bin/env", "/TYKKY"]


def test_wrapper_paths_follow_the_mask(tmp_path):
    source = tmp_path / "app"
    config = Config(wrapper_paths=("bin", str(source / "x")), installation_path=str(source))
    assert wrap_install.in_container_paths(config, source) == [f"{source}/bin", f"{source}/x"]


def test_wrapper_path_leaving_the_tree(tmp_path):
    with pytest.raises(TykkyError, match="leads out of"):
        wrap_install.in_container_paths(Config(wrapper_paths=("bin/../../x",)), tmp_path)


def test_source_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(TykkyError, match="is not a directory"):
        wrap_install.check_source(str(tmp_path / "file"))
    with pytest.raises(TykkyError, match="does not exist"):
        wrap_install.check_source(str(tmp_path / "missing"))
    assert wrap_install.check_source(str(tmp_path)) == tmp_path


def test_mask_puts_the_tree_at_its_own_path(tmp_path):
    source = tmp_path / "app"
    config = wrap_install.masked_config(Config(installation_prefix=str(tmp_path / "inst")), source)
    assert config.installation_path == str(source) and config.mask


@pytest.mark.parametrize(("source", "prefix", "message"), [
    ("/", "/tmp/inst", "root directory"), ("/tmp/a,b", "/tmp/inst", "contains ','"),
    ("/tmp/app", "/tmp/app/inst", "inside /tmp/app"), ("/tmp/app", "/tmp/app", "inside /tmp/app"),
])
def test_mask_refusals(source, prefix, message):
    with pytest.raises(TykkyError, match=message):
        wrap_install.masked_config(Config(installation_prefix=prefix), Path(source))


def test_copy_keeps_symlinks_and_reports_unreadable_entries(tmp_path):
    source, tree = tmp_path / "src", tmp_path / "tree"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "tool").write_text("x")
    os.symlink("tool", source / "bin" / "alias")
    tree.mkdir()
    wrap_install.copy_tree(source, tree)
    assert os.readlink(tree / "bin" / "alias") == "tool"
    os.mkfifo(source / "bin" / "pipe")
    with pytest.raises(TykkyError, match="1 entries could not be read") as error:
        wrap_install.copy_tree(source, tmp_path / "tree2")
    assert "pipe" in error.value.details
