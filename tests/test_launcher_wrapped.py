"""Launcher functions for wrapped programs (wrap-container, wrap-install --mask), loaded as a script."""

import pytest
from tykky_shim import contract


def masked(isolate: bool, target: str = "/tmp/site/app") -> dict:
    return contract.with_defaults({"binds": {"isolate": isolate, "mount_points": ["/tmp", "/usr"]},
                                   "layers": [{"image": "img.sqfs", "target": target, "mount": "image-src"}]})


@pytest.mark.parametrize(("path", "target", "expected"), [
    ("/tmp", "/tmp/a/app", True), ("/tmp/a/app", "/tmp/a/app", True), ("/tmp/a/app/x", "/tmp/a/app", True),
    ("/tmp/a/other", "/tmp/a/app", False), ("/tmp/a/ap", "/tmp/a/app", False), ("/", "/tmp/a/app", False),
    ("/home", "/TYKKY", False),
])
def test_overlaps(launcher, path, target, expected):
    assert launcher.overlaps(path, target) is expected


def test_masked_tree_not_hidden_by_binds_isolated(launcher, monkeypatch):
    monkeypatch.delenv("CW_EXTRA_BIND_MOUNTS", raising=False)
    monkeypatch.setenv("TMPDIR", "/tmp")
    binds = launcher.bind_list(masked(True), "/tmp/site/prefix")
    assert "/tmp" not in binds
    assert binds[:2] == ["/usr", "/tmp/site/prefix"]
    assert binds[-1] == "/tmp/site/prefix/img.sqfs:/tmp/site/app:image-src=/,ro"


def test_masked_tree_not_hidden_by_binds_shared_with_host(launcher, monkeypatch):
    monkeypatch.delenv("CW_EXTRA_BIND_MOUNTS", raising=False)
    binds = launcher.bind_list(masked(False), "/tmp/site/prefix")
    assert "/tmp" not in binds and "/usr" in binds
    assert "/tmp/site/prefix" in binds  # its top-level is not bound, so the prefix itself is


def test_prefix_not_bound_twice_when_visible(launcher, monkeypatch):
    monkeypatch.delenv("CW_EXTRA_BIND_MOUNTS", raising=False)
    binds = launcher.bind_list(masked(False, target="/TYKKY"), "/tmp/site/prefix")
    assert "/tmp" in binds and "/tmp/site/prefix" not in binds


def test_runtime_mounts_that_would_hide_a_masked_tree_are_left_out(launcher, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert launcher.default_mount_flags(masked(False, target=str(tmp_path / "app"))) == \
        ["--no-mount", "home,tmp,cwd" if str(tmp_path).startswith("/tmp/") else "home,cwd"]
    assert launcher.default_mount_flags(masked(False, target="/TYKKY")) == []


def test_direct_target_runs_by_its_in_container_path(launcher):
    manifest = contract.with_defaults({"targets": {"tool": "/TYKKY/bin/tool", "python3": "/usr/bin/python3"},
                                       "direct_targets": ["tool"]})
    assert launcher.program_command(manifest, "/p", "tool", "/p/bin/tool", ["a"]) == ["/TYKKY/bin/tool", "a"]
    assert launcher.program_command(manifest, "/p", "python3", "/p/bin/python3", []) == ["/p/bin/python3"]


def test_prefix_bin_left_off_path_for_wrapped_programs(launcher):
    data = contract.with_defaults({"binds": {"isolate": True}, "prefix_on_path": False,
                                   "path": {"prepend": ["/opt/x/bin"], "container": "/usr/bin:/bin"},
                                   "ld_library_path": {"prepend": [], "container": "/.singularity.d/libs"}})
    env = launcher.container_environment(data, "/p", "/ve/bin")
    assert env["PATH"] == "/ve/bin:/opt/x/bin:/usr/bin:/bin"
    # Nothing of ours to add: the variable is left to the runtime, which then gives the image's own
    # value and /.singularity.d/libs (an empty value passed in would stay empty).
    assert "LD_LIBRARY_PATH" not in env


def test_own_container_without_marker_is_recognised_by_path(launcher, monkeypatch, tmp_path):
    (tmp_path / "container.sif").write_text("")
    manifest = {"marker": None, "container": "container.sif", "targets": {"ls": "/usr/bin/ls"}}
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    monkeypatch.setenv("APPTAINER_CONTAINER", str(tmp_path / "container.sif"))
    assert launcher.inside_container_command(manifest, str(tmp_path), "ls", ["-l"]) == ["/usr/bin/ls", "-l"]
    monkeypatch.setenv("APPTAINER_CONTAINER", "/elsewhere/other.sif")
    with pytest.raises(launcher.LaunchError, match="inside another container"):
        launcher.inside_container_command(manifest, str(tmp_path), "ls", [])
