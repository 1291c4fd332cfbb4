"""wrap-install's parts that need no runtime: -w paths, --mask checks, copying the tree, the hooks."""
import dataclasses
import os
from pathlib import Path

import pytest

from tests.fake_runner import fake_runner
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.errors import TykkyError
from tykky.modes import wrap_install
from tykky.runtime import Runtime


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


def hook_container(tmp_path: Path, config: Config) -> BuildContainer:
    (tmp_path / "inputs").mkdir(exist_ok=True)
    return BuildContainer(Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5)), tmp_path / "c.sif", config,
                          tmp_path / "tree", tmp_path)


def test_hooks_run_only_when_commands_were_staged(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch)
    container = hook_container(tmp_path, Config())
    wrap_install.run_hook(container.config, container, "pre-install.sh", "pre-install")
    assert fake.calls == []
    (tmp_path / "inputs" / "pre-install.sh").write_text("make install\n")
    monkeypatch.chdir(tmp_path)
    config = Config(installation_path="/opt/app")
    wrap_install.run_hook(config, hook_container(tmp_path, config), "pre-install.sh", "pre-install")
    (call,) = fake.calls
    assert call["argv"][-5:-3] == ["/bin/bash", "-c"]
    assert call["argv"][-2:] == ["pre-install", str(tmp_path / "inputs" / "pre-install.sh")]
    assert 'set -e; . "$1"' in call["argv"][-3]
    env = call["env"]
    assert env["TYKKY_INSTALLATION_PATH"] == env["CW_INSTALLATION_PATH"] == "/opt/app"
    assert env["TYKKY_WORKDIR"] == str(tmp_path)


def test_pre_install_runs_before_the_copy_and_post_install_after(monkeypatch, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "tool").write_text("")
    container = hook_container(tmp_path, Config())
    for name in ("pre-install.sh", "post-install.sh"):
        (tmp_path / "inputs" / name).write_text("true\n")
    copied_when_run = []
    fake_runner(monkeypatch, effect=lambda argv: copied_when_run.append((argv[-2], (container.tree / "tool").exists())))
    wrap_install.fill_tree(source, container.config, container)
    assert copied_when_run == [("pre-install", False), ("post-install", True)]
    with pytest.raises(TykkyError, match="needs a build tree"):
        wrap_install.fill_tree(source, container.config, dataclasses.replace(container, tree=None))


def test_an_update_runs_both_hooks_over_the_layers(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch)
    container = hook_container(tmp_path, Config())
    for name in ("pre-install.sh", "post-install.sh"):
        (tmp_path / "inputs" / name).write_text("true\n")
    wrap_install.run_update_hooks(container.config, container)
    assert [argv[-2] for argv in fake.argvs] == ["pre-install", "post-install"]


def test_the_update_mode_runs_only_the_hooks_over_the_layers_and_returns_the_python(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch)
    container = dataclasses.replace(hook_container(tmp_path, Config(wrapper_paths=("/TYKKY/bin",))), tree=None)
    (tmp_path / "inputs" / "post-install.sh").write_text("true\n")
    mode = wrap_install.WrapInstallMode(Path("/TYKKY"), updating=True)
    assert mode.layered_update and not wrap_install.WrapInstallMode(tmp_path).layered_update
    filled = mode.fill_tree(container.config, container)  # no tree: it would refuse to copy
    assert [argv[-2] for argv in fake.argvs] == ["post-install"]
    assert filled.python == "/TYKKY/bin/python3:/TYKKY/bin/python"
    assert mode.wrapper_paths(container.config) == ["/TYKKY/bin"]
