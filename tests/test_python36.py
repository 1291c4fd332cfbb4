"""The tool's code on Python 3.6, the oldest it runs on, checked where ruff cannot: every source
parses, and the built archive's modules import and do their pure work (configuration, manifest,
history, package data, copying, the process runner, the command line) on 3.6 itself."""
import subprocess
import zipfile

from tests.helpers import REPO

SOURCES = sorted(str(p) for folder in ("src", "shim", "zipapp") for p in (REPO / folder).rglob("*.py"))

# Runs on Python 3.6 with the archive's packages (the backports directory too) on sys.path.
EXERCISE = r"""
import os, pkgutil, sys, tempfile
from pathlib import Path
import tykky
for module in pkgutil.walk_packages(tykky.__path__, "tykky."):
    if not module.name.endswith("__main__"):
        __import__(module.name)
from tykky import _compat, config, history, manifest, runner
from tykky.config import build_config, shipped_site_configs
for name in sorted(shipped_site_configs()):
    built = build_config({"installation_prefix": "/p"}, {"CW_GLOBAL_YAML": name})
    assert built.with_values(isolate=True).isolate and built.installation_prefix == "/p", name
assert "installation_prefix: /p" in history.config_snapshot(built)
work = Path(tempfile.mkdtemp())
written = manifest.Manifest(tool_version="0", build_id="b", mode="pip",
                            runtime={"name": "apptainer", "path": "/usr/bin/apptainer", "version": "1.4.5"},
                            container="c.sif", layers=(manifest.Layer("img.sqfs", "/TYKKY"),),
                            installation_path="/TYKKY", isolate=False, mount_points=("/home",),
                            excluded_mount_points=(), targets={"python": "/TYKKY/venv/bin/python"})
(work / "_tykky").mkdir()
manifest.write(written, work)
assert manifest.load(work) == written
(work / "source" / "bin").mkdir(parents=True)
(work / "source" / "bin" / "tool").write_text("tool")
(work / "tree" / "bin").mkdir(parents=True)
(work / "tree" / "bin" / "other").write_text("other")
_compat.copy_tree_into(work / "source", work / "tree")
assert sorted(os.listdir(str(work / "tree" / "bin"))) == ["other", "tool"]
assert runner.run(["sh", "-c", "echo ran"], what="a test").output == "ran\n"
import contextlib, io
from tykky import cli
for command in ([], ["pip-containerize", "new"], ["conda-containerize", "new"], ["wrap-container"],
                ["wrap-install"], ["setup"], ["info"], ["warm", "status"], ["compact"]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            cli.main(["tykky"] + command + ["--help"])
        except SystemExit as exit_request:
            assert exit_request.code == 0, (command, exit_request.code)
    assert out.getvalue().startswith("usage: tykky"), (command, out.getvalue())
arguments = cli.command_parser("pip-containerize").parse_args(["update", "DIR", "--post", "p.sh"])
assert arguments.post_install == "p.sh"
print("ok on", sys.version.split()[0])
"""


def test_every_source_parses_on_python_3_6(python36):
    check = "import sys\nfor name in sys.argv[1:]:\n    compile(open(name).read(), name, 'exec', dont_inherit=True)\n"
    completed = subprocess.run([python36, "-I", "-c", check, *SOURCES], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_the_archive_works_on_python_3_6(python36, pyz, tmp_path):
    with zipfile.ZipFile(pyz) as archive:
        archive.extractall(tmp_path, [name for name in archive.namelist() if name.startswith("site-packages/")])
    site = tmp_path / "site-packages"
    setup = f"import sys; sys.path[:0] = [{str(site)!r}, {str(site / 'backports-py36')!r}]\n"
    completed = subprocess.run([python36, "-I", "-S", "-c", setup + EXERCISE], capture_output=True, text=True,
                               cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("ok on 3.6.")
