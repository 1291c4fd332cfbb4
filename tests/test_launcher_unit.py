"""Pure parts of the launcher (shim/launcher.py), loaded the way it runs: as a plain script."""
import json
import os

import pytest
from tykky_shim import contract


def test_manifest_parsed_without_json_module(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"a": [1, 2.5, "x\\u00e9"], "b": {"c": null, "d": true}}\n')
    assert contract.read_json(str(path)) == {"a": [1, 2.5, "xé"], "b": {"c": None, "d": True}}


@pytest.fixture
def chains(tmp_path):  # type: ignore[no-untyped-def]
    """An installation's bin/python, a venv made on top of it, and a user's directory of links."""
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "_tykky").mkdir()
    (prefix / "_tykky" / "launcher").write_text("")
    (prefix / "pyvenv.cfg").write_text("")
    os.symlink("../_tykky/launcher", prefix / "bin" / "python")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {prefix}/bin\n")
    os.symlink(prefix / "bin" / "python", venv / "bin" / "python")
    os.symlink("python", venv / "bin" / "python3")
    (tmp_path / "home" / "bin").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("links, invoked, runs_by, venv", [
    ({}, "prefix/bin/python", "prefix/bin/python", None),
    ({"home/bin/mypython": "/prefix/bin/python"}, "home/bin/mypython", "prefix/bin/python", None),
    ({"home/bin/mypython": "../../prefix/bin/python"}, "home/bin/mypython", "prefix/bin/python", None),
    ({"home/bin/mypython": "/prefix/bin/python", "home/py": "bin/mypython"}, "home/py", "prefix/bin/python", None),
    ({"home/pbin": "/prefix/bin"}, "home/pbin/python", "prefix/bin/python", None),
    ({"home/bin/python": "/prefix/_tykky/launcher"}, "home/bin/python", "prefix/bin/python", None),
    ({}, "venv/bin/python3", "venv/bin/python3", "venv/bin"),
    ({"home/bin/vpy": "/venv/bin/python3"}, "home/bin/vpy", "venv/bin/python3", "venv/bin"),
])
def test_program_runs_by_the_path_its_installation_is_found_from(launcher, chains, links, invoked, runs_by, venv):
    """A user's own link would make Python look for pyvenv.cfg next to that link, and start
    without the installation's packages: it runs by the installation's or the venv's entry."""
    for link, target in links.items():
        os.symlink(str(chains) + target if target.startswith("/") else target, chains / link)
    name, path, venv_bin = launcher.resolve_invocation(str(chains / invoked), str(chains / "prefix"))
    assert (name, path, venv_bin) == ("python", str(chains / runs_by), venv and str(chains / venv))


def test_a_moved_link_still_runs_by_the_installation(launcher, chains):
    os.symlink(chains / "prefix" / "bin" / "python", chains / "home" / "bin" / "mypython")
    os.rename(chains / "home" / "bin" / "mypython", chains / "home" / "moved")
    _, path, _ = launcher.resolve_invocation(str(chains / "home" / "moved"), str(chains / "prefix"))
    assert path == str(chains / "prefix" / "bin" / "python")


def test_a_link_loop_is_an_error(launcher, tmp_path):
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(launcher.LaunchError, match="too many levels"):
        launcher.resolve_invocation(str(tmp_path / "a"), str(tmp_path))


def test_leaked_runtime_variables_are_removed():
    cleaned = contract.without_runtime_variables({"APPTAINER_BIND": "x", "SINGULARITY_CONTAINER": "y",
                                                  "APPTAINERENV_PATH": "z", "APPTAINER_CACHEDIR": "/c", "HOME": "/h",
                                                  "SINGULARITYENV_FOO": "f"})
    assert cleaned == {"APPTAINER_CACHEDIR": "/c", "HOME": "/h"}


def test_a_users_gpu_request_is_kept():
    asked = {"APPTAINER_NV": "1", "SINGULARITY_ROCM": "true", "APPTAINER_NVCCLI": "1"}
    assert contract.without_runtime_variables(dict(asked, APPTAINER_BIND="x")) == asked


def test_gpu_setting_adds_the_runtime_flag(launcher, tmp_path, monkeypatch, capsys):
    prefix = tmp_path / "p"
    (prefix / "_tykky").mkdir(parents=True)
    (prefix / "bin").mkdir()
    data = {"format": 1, "binds": {"isolate": True, "mount_points": []}, "layers": [], "container": "c.sif",
            "gpu": "nv", "targets": {"tool": "/usr/bin/tool"}, "path": {}, "ld_library_path": {},
            "runtime": {"name": "apptainer", "path": "/bin/true"}}
    (prefix / "_tykky" / "manifest.json").write_text(json.dumps(data))
    (prefix / "_tykky" / "launcher.py").write_text("")
    (prefix / "c.sif").write_bytes(b"")  # cold launches check that the images are there
    os.symlink("../_tykky/launcher.py", prefix / "bin" / "tool")
    monkeypatch.setattr(launcher, "__file__", str(prefix / "_tykky" / "launcher.py"))
    monkeypatch.setenv("TYKKY_LAUNCHER_DRY_RUN", "1")
    launcher.launch([str(prefix / "bin" / "tool")])
    argv = eval(capsys.readouterr().out)["argv"]
    assert argv[argv.index("exec") + 1:argv.index(str(prefix / "c.sif"))] == ["--nv"]


def manifest(isolate: bool) -> dict:
    binds = {"isolate": isolate, "mount_points": ["/tmp", "/usr", "/does-not-exist"],
             "excluded_mount_points": ["/opt"]}
    return contract.with_defaults({"binds": binds, "layers": [{"image": "img.sqfs", "target": "/TYKKY"}]})


def test_binds_isolated(launcher, monkeypatch):
    monkeypatch.setenv("CW_EXTRA_BIND_MOUNTS", "/data,/more:/m")
    monkeypatch.delenv("TMPDIR", raising=False)
    binds = launcher.bind_list(manifest(True), "/p re")
    # /tmp is the runtime's own mount: binding it again would only make the runtime warn.
    assert binds == ["/usr", "/p re", "/data", "/more:/m", "/p re/_bin:/p re/bin",
                     "/p re/img.sqfs:/TYKKY:image-src=/,ro"]


def test_binds_not_isolated_cover_host_top_level(launcher, monkeypatch):
    monkeypatch.delenv("CW_EXTRA_BIND_MOUNTS", raising=False)
    binds = launcher.bind_list(manifest(False), "/p")
    assert "/tmp" in binds and "/usr" in binds
    assert not {"/dev", "/proc", "/sys", "/opt"} & set(binds)


def test_path_entries_deduplicated_in_order(launcher):
    assert launcher.join_path(["/a:/b", "", "/b:/c:/a"]) == "/a:/b:/c"


def test_isolated_environment_uses_container_path(launcher, monkeypatch):
    monkeypatch.setenv("PATH", "/host/bin")
    data = contract.with_defaults({"binds": {"isolate": True},
                                   "path": {"prepend": ["/opt/x/bin"], "container": "/usr/bin:/bin"},
                                   "ld_library_path": {"prepend": ["/opt/x/lib"]}, "environment": {"A": "1"}})
    env = launcher.container_environment(data, "/p", None)
    assert env == {"A": "1", "PATH": "/p/bin:/opt/x/bin:/usr/bin:/bin", "LD_LIBRARY_PATH": "/opt/x/lib"}
