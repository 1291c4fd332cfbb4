"""Module files: the text, quoting of awkward paths, and loading them with the real Lmod."""
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import RECORDED_RUNTIME
from tykky import manifest as manifest_module
from tykky import modulefile
from tykky.config import Config
from tykky.errors import TykkyError

LMOD_INIT = Path("/usr/share/lmod/lmod/init/bash")
PROGRAMS = {"python": "/TYKKY/venv/bin/python", "pip": "/TYKKY/venv/bin/pip", "tool]]x": "/TYKKY/bin/t"}


def fake_installation(prefix: Path) -> Path:
    manifest = manifest_module.Manifest(
        tool_version="0.1.0", build_id="b", mode="pip", runtime=RECORDED_RUNTIME, container="container.sif", layers=(),
        installation_path="/TYKKY", isolate=False, mount_points=(), excluded_mount_points=(), targets=PROGRAMS)
    manifest_module.write(manifest, prefix)
    (prefix / "bin").mkdir()
    return prefix


def lmod(module_dir: Path, name: str) -> subprocess.CompletedProcess:
    if not LMOD_INIT.is_file():
        pytest.skip("Lmod is not installed (scripts/setup-host.sh installs it)")
    script = ('source "$1"; module use "$2"; module load "$3" || exit 9; printf "PATH=%s\\n" "$PATH"; '
              'module help "$3"; module whatis "$3"; module unload "$3"; printf "AFTER=%s\\n" "$PATH"')
    return subprocess.run(["bash", "--noprofile", "--norc", "-c", script, "bash", str(LMOD_INIT), str(module_dir),
                           name], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


@pytest.fixture()
def installation(tmp_path):  # type: ignore[no-untyped-def]
    parent = tmp_path / 'we ird $HOME "q" [b] {c}'
    parent.mkdir()
    return fake_installation(parent / "app-1")


def test_lua_module_loads_with_lmod_and_lists_the_programs(installation, tmp_path):
    modules = tmp_path / "modules"
    written = modulefile.write_for(Config(modulefile_dir=str(modules)), installation)
    assert written == [modules / "app-1.lua"]
    completed = lmod(modules, "app-1")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout + completed.stderr
    assert f"PATH={installation}/bin:/usr/bin:/bin" in out
    assert "AFTER=/usr/bin:/bin" in out
    assert "Programs (3):" in out and "pip python tool]]x" in out
    assert f"Description: pip installation made by tykky, at {installation}" in out


def test_tcl_module_on_request_loads_too(tmp_path):
    # Lmod's Tcl reader passes double quotes in paths through to Lua unescaped: none here.
    parent = tmp_path / "we ird $HOME [b] {c}"
    parent.mkdir()
    installation = fake_installation(parent / "app-1")
    modules = tmp_path / "modules"
    written = modulefile.write_for(Config(modulefile_dir=str(modules), modulefile_tcl=True), installation)
    assert written == [modules / "app-1.lua", modules / "app-1"]
    assert (modules / "app-1").read_text().startswith("#%Module1.0\n")
    tcl_only = tmp_path / "tcl"
    tcl_only.mkdir()
    shutil.copy(modules / "app-1", tcl_only / "app-1")
    completed = lmod(tcl_only, "app-1")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout + completed.stderr
    assert f"PATH={installation}/bin:/usr/bin:/bin" in out
    assert "pip python tool]]x" in out


def test_no_directory_no_module(installation):
    assert modulefile.write_for(Config(), installation) == []


def test_lua_long_string_cannot_be_closed_by_the_text():
    assert modulefile.lua_long_string("a]]b") == "[=[\na]]b]=]"
    assert modulefile.lua_string('say "hi"\\') == '"say \\"hi\\"\\\\"'


def test_tcl_string_escapes_substitutions():
    assert modulefile.tcl_string("$x [y] {z}") == '"\\$x \\[y\\] \\{z\\}"'


def test_unwritable_module_directory_fails_before_the_build(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TykkyError, match="Cannot write module files to .*--modulefile"):
        modulefile.check(Config(modulefile_dir=str(blocker / "modules")))
    modulefile.check(Config(modulefile_dir=str(tmp_path / "new" / "modules")))  # creatable: fine


def test_update_keeps_writing_the_module_file_of_the_first_build(tmp_path):
    from tykky import history, installation

    prefix = fake_installation(tmp_path / "inst")
    (prefix / history.SHARE).mkdir(parents=True)
    first = Config(modulefile_dir=str(tmp_path / "mods"), modulefile_tcl=True)
    (prefix / history.SHARE / "config.yaml").write_text(history.config_snapshot(first))
    kept = installation.update_config(Config(), prefix)
    assert (kept.modulefile_dir, kept.modulefile_tcl) == (str(tmp_path / "mods"), True)
    moved = installation.update_config(Config(modulefile_dir=str(tmp_path / "other")), prefix)
    assert (moved.modulefile_dir, moved.modulefile_tcl) == (str(tmp_path / "other"), False)
