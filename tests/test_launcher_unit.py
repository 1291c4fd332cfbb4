"""Pure parts of the launcher (shim/launcher.py), loaded the way it runs: as a plain script."""
import json
import os


def test_manifest_parsed_without_json_module(launcher, tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"a": [1, 2.5, "x\\u00e9"], "b": {"c": null, "d": true}}')
    assert launcher.read_manifest(str(path)) == {"a": [1, 2.5, "xé"], "b": {"c": None, "d": True}}


def test_symlink_chain_gives_name_of_last_link(launcher, tmp_path):
    (tmp_path / "prefix" / "bin").mkdir(parents=True)
    (tmp_path / "prefix" / "_tykky").mkdir()
    (tmp_path / "prefix" / "_tykky" / "launcher").write_text("")
    os.symlink("../_tykky/launcher", tmp_path / "prefix" / "bin" / "python")
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    os.symlink(tmp_path / "prefix" / "bin" / "python", tmp_path / "venv" / "bin" / "python")
    os.symlink("python", tmp_path / "venv" / "bin" / "python3")
    name, wrapper = launcher.resolve_invocation(str(tmp_path / "venv" / "bin" / "python3"))
    assert name == "python" and wrapper == str(tmp_path / "prefix" / "bin" / "python")


def test_leaked_runtime_variables_are_removed(launcher):
    cleaned = launcher.clean_environ({"APPTAINER_BIND": "x", "SINGULARITY_CONTAINER": "y", "APPTAINERENV_PATH": "z",
                                      "APPTAINER_CACHEDIR": "/c", "HOME": "/h", "SINGULARITYENV_FOO": "f"})
    assert cleaned == {"APPTAINER_CACHEDIR": "/c", "HOME": "/h"}


def test_a_users_gpu_request_is_kept(launcher):
    asked = {"APPTAINER_NV": "1", "SINGULARITY_ROCM": "true", "APPTAINER_NVCCLI": "1"}
    assert launcher.clean_environ(dict(asked, APPTAINER_BIND="x")) == asked


def test_gpu_setting_adds_the_runtime_flag(launcher, tmp_path, monkeypatch, capsys):
    prefix = tmp_path / "p"
    (prefix / "_tykky").mkdir(parents=True)
    (prefix / "bin").mkdir()
    data = {"binds": {"isolate": True, "mount_points": []}, "layers": [], "container": "c.sif", "gpu": "nv",
            "targets": {"tool": "/usr/bin/tool"}, "path": {}, "ld_library_path": {},
            "runtime": {"name": "apptainer", "path": "/bin/true"}}
    (prefix / "_tykky" / "manifest.json").write_text(json.dumps(data))
    (prefix / "_tykky" / "launcher.py").write_text("")
    os.symlink("../_tykky/launcher.py", prefix / "bin" / "tool")
    monkeypatch.setattr(launcher, "__file__", str(prefix / "_tykky" / "launcher.py"))
    monkeypatch.setenv("TYKKY_LAUNCHER_DRY_RUN", "1")
    launcher.launch([str(prefix / "bin" / "tool")])
    argv = eval(capsys.readouterr().out)["argv"]
    assert argv[argv.index("exec") + 1:argv.index(str(prefix / "c.sif"))] == ["--nv"]


def manifest(isolate: bool) -> dict:
    binds = {"isolate": isolate, "mount_points": ["/tmp", "/usr", "/does-not-exist"],
             "excluded_mount_points": ["/opt"]}
    return {"binds": binds,
            "layers": [{"image": "img.sqfs", "target": "/TYKKY"}]}


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
    data = {"binds": {"isolate": True}, "path": {"prepend": ["/opt/x/bin"], "container": "/usr/bin:/bin"},
            "ld_library_path": {"prepend": ["/opt/x/lib"], "container": ""}, "environment": {"A": "1"}}
    env = launcher.container_environment(data, "/p", None)
    assert env == {"A": "1", "PATH": "/p/bin:/opt/x/bin:/usr/bin:/bin", "LD_LIBRARY_PATH": "/opt/x/lib"}
