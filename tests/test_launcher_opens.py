"""What a launch reads of its installation: every file it opens is a metadata request on a
parallel filesystem (bench/metadata.py counts them on a FUSE stand-in). The stub carries the
launcher's byte code and the manifest, so a launch opens the stub and nothing else there."""
import json
import os
import subprocess
import sys
from pathlib import Path

from tykky import layout
from tykky import manifest as manifest_module

MANIFEST = {
    "format": 1, "tool_version": "0", "build_id": "0123456789abcdef", "mode": "wrap-container",
    "runtime": {"name": "apptainer", "path": "/usr/bin/apptainer", "version": "1.4.5"},
    "container": "container.sif", "layers": [], "installation_path": "/TYKKY",
    "binds": {"isolate": True, "mount_points": ["/tmp"], "excluded_mount_points": []},
    "targets": {"python3": "/usr/bin/python3"},
    "path": {"prepend": [], "append": [], "container": "/usr/bin:/bin"},
    "ld_library_path": {"prepend": [], "append": [], "container": ""},
    "environment": {}, "environ_file": "", "shell": "/bin/sh", "direct_targets": [], "prefix_on_path": False,
    "marker": None, "python": None, "warm": {"enabled": True, "idle_timeout": 300}, "activation": None,
    "share_step_container": False,
}
# Runs the stub as the kernel would have it run (as __main__, by path), recording what Python
# opens or lists under the prefix after the stub itself was read.
HARNESS = """
import os, sys
prefix, stub = sys.argv[1], sys.argv[2]
seen = []
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path.startswith(prefix + "/"):
            seen.append(event + " " + path[len(prefix) + 1:])
code = compile(open(stub).read(), stub, "exec")
sys.addaudithook(hook)
sys.argv = [os.path.join(prefix, "bin", "python3"), "-c", "pass"]
try:
    exec(code, {"__name__": "__main__", "__file__": sys.argv[0]})
finally:
    try:
        sys.modules["tykky_launcher"].load_module("warm")
    except ImportError:
        seen.append("import tykky_warm: not found")
    sys.stderr.write("\\n".join(seen) + "\\n")
"""


def installed(prefix: Path) -> Path:
    (prefix / "_tykky").mkdir(parents=True)
    (prefix / "container.sif").write_bytes(b"")  # cold launches check that it can be read
    (prefix / manifest_module.MANIFEST_PATH).write_text(json.dumps(MANIFEST))
    layout.install_launcher(prefix, sys.executable)
    layout.link_programs(prefix, MANIFEST["targets"])
    return prefix


def opened_by_launch(prefix: Path) -> list:
    env = {**os.environ, "TYKKY_LAUNCHER_DRY_RUN": "1"}
    completed = subprocess.run([sys.executable, "-I", "-S", "-c", HARNESS, str(prefix), str(prefix / layout.LAUNCHER)],
                               env=env, capture_output=True, text=True, check=True)
    assert "'argv'" in completed.stdout  # the launch ran to its runtime command
    return [line for line in completed.stderr.splitlines() if line]


def test_a_launch_opens_no_file_of_the_installation_but_the_stub(tmp_path):
    assert opened_by_launch(installed(tmp_path / "prefix")) == []


def test_a_manifest_changed_behind_the_stub_is_read(tmp_path):
    prefix = installed(tmp_path / "prefix")
    changed = dict(MANIFEST, build_id="fedcba9876543210")
    (prefix / "_tykky" / ".new").write_text(json.dumps(changed))
    os.replace(prefix / "_tykky" / ".new", prefix / manifest_module.MANIFEST_PATH)
    assert opened_by_launch(prefix) == ["open _tykky/manifest.json"]


def test_another_interpreter_imports_the_modules_beside_the_stub(tmp_path):
    prefix = installed(tmp_path / "prefix")
    stub = prefix / layout.LAUNCHER
    # As an upgraded interpreter sees it: the byte code in the stub is not its own.
    stub.write_text(stub.read_text().replace('sys.modules["_frozen_importlib_external"].MAGIC_NUMBER', 'b"none"'))
    completed = subprocess.run([sys.executable, "-IS", str(prefix / "bin" / "python3"), "-c", "pass"],
                               env={**os.environ, "TYKKY_LAUNCHER_DRY_RUN": "1"}, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert "'argv'" in completed.stdout and str(prefix / "container.sif") in completed.stdout
