"""The contract between builder and launcher (shim/contract.py): what the builder writes for each
mode is what the installed launcher reads (its dry run prints the runtime's argv and environment),
manifests of older builders keep working, and a format the launcher does not know is refused in
one line."""
import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from tykky_shim import contract

from tests.helpers import RECORDED_RUNTIME
from tykky import history, layout, wrapping
from tykky import manifest as manifest_module
from tykky.errors import TykkyError
from tykky.manifest import Layer, Manifest, PathVariable

PYTHON = {"version": "3.11", "full_version": "3.11.9", "executable": "/TYKKY/venv/bin/python",
          "site_packages": "/TYKKY/venv/lib/python3.11/site-packages", "stdlib_parent": "/usr/lib"}


def base(**values) -> Manifest:  # type: ignore[no-untyped-def]
    manifest = Manifest(tool_version="0", build_id="b", mode="pip", runtime=dict(RECORDED_RUNTIME, path="/bin/true"),
                        container="container.sif", layers=(Layer("img.sqfs", "/TYKKY"),), installation_path="/TYKKY",
                        isolate=False, mount_points=(), excluded_mount_points=(),
                        targets={"python": "/TYKKY/venv/bin/python"})
    return dataclasses.replace(manifest, **values)


def conda() -> Manifest:
    activation = {"environment": {"CONDA_PREFIX": "/TYKKY/env"}, "prepend": {"PATH": ["/TYKKY/env/bin"]},
                  "append": {}, "scripts": "/TYKKY/env/etc/conda/activate.d"}
    return base(mode="conda", shell="/bin/bash", activation=activation, targets={"python": "/TYKKY/env/bin/python"},
                path=PathVariable(container="/usr/bin:/bin"), python=PYTHON)


def wrap_container() -> Manifest:
    manifest = base(mode="wrap-container", layers=(), targets={"ls": "/usr/bin/ls", "tool": "/opt/t/bin/tool"},
                    path=PathVariable(container="/usr/bin:/bin"), environ_file=history.ENVIRON_FILE, isolate=True)
    return wrapping.finish_manifest(manifest)


def wrap_install_masked() -> Manifest:
    manifest = base(mode="wrap-install", layers=(Layer("img.sqfs", "/opt/site/app", "image-src"),),
                    targets={"tool": "/opt/site/app/bin/tool"}, installation_path="/opt/site/app")
    return wrapping.finish_manifest(manifest)


def stacked_update() -> Manifest:
    layers = (Layer("img.sqfs", "/TYKKY", "overlay"), Layer("layer-1.sqfs", "/TYKKY", "overlay"))
    return base(layers=layers, gpu="nv", share_step_container=True, environment={"A": "1"},
                ld_library_path=PathVariable(prepend=("/TYKKY/lib",)), python=PYTHON)


def installed(prefix: Path, manifest: Manifest, text: str = "") -> Path:
    """As the builder writes it: the manifest (text, else the manifest's), then the launcher,
    whose stub carries a copy of it."""
    (prefix / "_tykky").mkdir(parents=True)
    layout.link_programs(prefix, manifest.targets)
    (prefix / contract.MANIFEST_PATH).write_text(text or manifest.to_json())
    layout.install_launcher(prefix, sys.executable)
    for image in [manifest.container] + [layer.image for layer in manifest.layers]:
        (prefix / image).write_bytes(b"")
    return prefix


def only_the_copy(prefix: Path) -> None:
    """manifest.json blanked in place (same file, same size): a launch can only read the stub's copy."""
    path = prefix / contract.MANIFEST_PATH
    with open(path, "r+b") as handle:
        handle.write(b" " * path.stat().st_size)


def launched(prefix: Path, program: str, *args: str) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(prefix.parent), "TYKKY_LAUNCHER_DRY_RUN": "1"}
    return subprocess.run([str(prefix / "bin" / program), *args], env=environ, capture_output=True, text=True)


def dry_run(prefix: Path, program: str, *args: str) -> Dict:
    completed = launched(prefix, program, *args)
    assert completed.returncode == 0, completed.stderr
    return ast.literal_eval(completed.stdout)


def command(run: Dict, prefix: Path, container: str = "container.sif") -> List[str]:
    argv = run["argv"]
    return argv[argv.index(str(prefix / container)) + 1:]


def flags(run: Dict, prefix: Path) -> List[str]:
    argv = run["argv"]
    return argv[argv.index("exec") + 1:argv.index(str(prefix / "container.sif"))]


def test_pip(tmp_path):
    prefix = installed(tmp_path / "p", base(environment={"A": "1"}, python=PYTHON))
    run = dry_run(prefix, "python", "-c", "pass")
    assert run["argv"][:3] == ["/bin/true", "-q", "exec"]
    assert command(run, prefix) == [str(prefix / "bin" / "python"), "-c", "pass"]
    assert run["environment"]["APPTAINER_BIND"].endswith(f",{prefix}/img.sqfs:/TYKKY:image-src=/,ro")
    assert run["environment"]["APPTAINERENV_PATH"].startswith(f"{prefix}/bin:")
    assert run["environment"]["APPTAINERENV_A"] == "1"
    assert command(dry_run(prefix, "_debug_shell"), prefix) == ["/bin/sh"]


def test_conda(tmp_path):
    prefix = installed(tmp_path / "p", conda())
    run = dry_run(prefix, "python")
    assert command(run, prefix)[:2] == ["/bin/bash", "-c"]
    assert command(run, prefix)[3:] == ["/TYKKY/env/etc/conda/activate.d", str(prefix / "bin" / "python")]
    assert run["environment"]["APPTAINERENV_CONDA_PREFIX"] == "/TYKKY/env"
    assert run["environment"]["APPTAINERENV_PATH"] == f"{prefix}/bin:/TYKKY/env/bin:/usr/bin:/bin"


def test_wrap_container(tmp_path):
    prefix = installed(tmp_path / "p", wrap_container())
    (prefix / history.ENVIRON_FILE).parent.mkdir(parents=True, exist_ok=True)
    run = dry_run(prefix, "tool", "x")
    environ_file = str(prefix / history.ENVIRON_FILE)
    assert command(run, prefix)[3:] == ["sh", environ_file, "/opt/t/bin/tool", "x"]
    assert run["environment"]["APPTAINERENV_PATH"] == "/opt/t/bin:/usr/bin:/bin"  # prefix_on_path is false
    assert not any("image-src" in bind for bind in run["environment"]["APPTAINER_BIND"].split(","))


def test_wrap_install_masked(tmp_path):
    prefix = installed(tmp_path / "p", wrap_install_masked())
    run = dry_run(prefix, "tool")
    assert command(run, prefix) == ["/opt/site/app/bin/tool"]
    assert run["environment"]["APPTAINER_BIND"].endswith(f",{prefix}/img.sqfs:/opt/site/app:image-src=/,ro")
    assert "/opt" not in run["environment"]["APPTAINER_BIND"].split(",")  # it would hide the tree


def test_stacked_update_with_gpus(tmp_path):
    prefix = installed(tmp_path / "p", stacked_update())
    run = dry_run(prefix, "python")
    overlays = ["--overlay", f"{prefix}/img.sqfs:ro", "--overlay", f"{prefix}/layer-1.sqfs:ro"]
    assert flags(run, prefix) == ["--nv"] + overlays
    assert "image-src" not in run["environment"]["APPTAINER_BIND"]
    assert run["environment"]["APPTAINERENV_LD_LIBRARY_PATH"] == "/TYKKY/lib"


def without_optional_keys(value, schema):  # type: ignore[no-untyped-def]
    """A manifest as an older builder wrote it: no key that has a default, at any level."""
    if isinstance(schema, contract.Default):
        schema = schema.schema
    if isinstance(schema, list) and isinstance(schema[0], dict):
        return [without_optional_keys(item, schema[0]) for item in value]
    if isinstance(schema, dict) and isinstance(value, dict) and "*" not in schema:
        return {key: without_optional_keys(item, schema[key]) for key, item in value.items()
                if not isinstance(schema[key], contract.Default) or item != schema[key].value}
    return value


@pytest.mark.parametrize("read", ["file", "copy"])
@pytest.mark.parametrize("make", [base, conda, wrap_container, wrap_install_masked, stacked_update])
def test_a_manifest_without_the_keys_that_have_defaults_still_launches(tmp_path, make, read):
    """Format 1 without a key: its default. What a builder writes at the defaults launches as the
    manifest without those keys does (as one before the keys were added), read from the file or
    from the stub's copy of it (which gets the same conversions)."""
    manifest = make()
    full = installed(tmp_path / "full", manifest)
    bare_text = json.dumps(without_optional_keys(json.loads(manifest.to_json()), contract.MANIFEST_SCHEMA))
    bare = installed(tmp_path / "bare", manifest, bare_text)
    assert "environ_file" not in json.loads((bare / contract.MANIFEST_PATH).read_text()) or manifest.environ_file
    assert manifest_module.load(bare) == manifest
    if read == "file":
        (bare / "_tykky" / ".new").write_text(bare_text)  # another file: the copy is not used
        os.replace(bare / "_tykky" / ".new", bare / contract.MANIFEST_PATH)
    else:
        only_the_copy(bare)
    if history.ENVIRON_FILE in manifest.environ_file:
        (bare / history.ENVIRON_FILE).parent.mkdir(parents=True, exist_ok=True)
    for program in list(manifest.targets) + ["_debug_shell"]:
        runs = [dry_run(prefix, program, "a") for prefix in (full, bare)]
        assert repr(runs[0]).replace(str(full), "P") == repr(runs[1]).replace(str(bare), "P")


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_a_format_this_version_does_not_read_gives_one_line(tmp_path, version):
    prefix = installed(tmp_path / "p", base())
    data = json.loads((prefix / contract.MANIFEST_PATH).read_text())
    data["format"] = version
    (prefix / contract.MANIFEST_PATH).write_text(json.dumps(data))
    completed = launched(prefix, "python")
    assert completed.returncode == 127 and completed.stdout == ""
    assert completed.stderr.count("\n") == 1 and "is damaged" in completed.stderr
    assert f"is of format {version!r}, which this tykky does not read" in completed.stderr
    with pytest.raises(TykkyError, match="incompatible tykky version"):
        manifest_module.load(prefix)


def test_the_builder_writes_every_key_of_the_contract_and_no_other():
    data = json.loads(stacked_update().to_json())
    assert set(data) == set(contract.MANIFEST_SCHEMA)
    manifest_module.check_written(data)
    with pytest.raises(ValueError, match="renamed is not a key of the contract"):
        manifest_module.check_written(dict(data, renamed=1))
    with pytest.raises(ValueError, match="gpu is not written"):
        manifest_module.check_written({key: value for key, value in data.items() if key != "gpu"})
    with pytest.raises(ValueError, match="layers.0..mount is not a string"):
        manifest_module.check_written(dict(data, layers=[{"image": "i", "target": "/t", "mount": 1}]))


def test_defaults_fill_only_what_is_missing():
    given = {"layers": [{"image": "i", "target": "/t", "mount": "overlay"}, {"image": "j", "target": "/u"}],
             "activation": {"scripts": "/s"}, "shell": "/bin/bash", "binds": {"isolate": True}}
    completed = contract.with_defaults(given)
    assert [layer["mount"] for layer in completed["layers"]] == ["overlay", "image-src"]
    assert completed["activation"] == {"scripts": "/s", "environment": {}, "prepend": {}, "append": {}}
    assert completed["shell"] == "/bin/bash" and completed["path"] == {"prepend": [], "append": [], "container": ""}
    assert completed["binds"]["mount_points"] == [] and completed["marker"] is None
    completed["path"]["prepend"].append("/x")
    assert contract.with_defaults({})["path"]["prepend"] == []  # defaults are copies


def test_builds_drop_the_callers_message_level_launches_keep_it():
    """A build parses the runtime's output (stderr with stdout): debug messages would mix in."""
    environ = {"APPTAINER_MESSAGELEVEL": "5", "APPTAINER_CACHEDIR": "/c", "APPTAINER_NV": "1", "APPTAINER_BIND": "/b"}
    assert contract.without_runtime_variables(environ) == {key: environ[key] for key in list(environ)[:3]}
    assert contract.without_runtime_variables(environ, contract.KEPT_IN_BUILDS) == {
        "APPTAINER_CACHEDIR": "/c", "APPTAINER_NV": "1"}
