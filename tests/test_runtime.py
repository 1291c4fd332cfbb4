"""The container runtime: finding it, refusing a missing or too old one, and how it is started."""
import pytest

from tykky.errors import TykkyError
from tykky.runtime import (
    Runtime,
    bind_argument,
    clean_environment,
    exec_argv,
    find_runtime,
    gpu_choice,
    gpu_flags,
    parse_version,
)


def fake_runtime(tmp_path, name: str, version_line: str):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("text, expected", [
    ("apptainer version 1.4.5", ("apptainer", (1, 4, 5))),
    ("singularity-ce version 4.1.0-jammy", ("singularity", (4, 1, 0))),
    ("singularity version 3.8.7-1.el8", ("singularity", (3, 8, 7))),
])
def test_version_lines(text, expected):
    assert parse_version(text) == expected


def test_configured_singularity_is_accepted(tmp_path):
    path = fake_runtime(tmp_path, "singularity", "singularity-ce version 4.1.0")
    runtime = find_runtime(str(path), {"PATH": ""})
    assert (runtime.name, runtime.version, runtime.path) == ("singularity", (4, 1, 0), str(path))


def test_found_on_path(tmp_path):
    fake_runtime(tmp_path, "apptainer", "apptainer version 1.3.2")
    assert find_runtime("", {"PATH": str(tmp_path)}).version == (1, 3, 2)


def test_missing_runtime_says_what_to_do(tmp_path):
    with pytest.raises(TykkyError, match="No container runtime found.*singularity_executable_path"):
        find_runtime("", {"PATH": str(tmp_path)})


def test_too_old_runtime_is_refused(tmp_path):
    path = fake_runtime(tmp_path, "singularity", "singularity version 3.5.3")
    with pytest.raises(TykkyError, match="too old.*3.8 or newer"):
        find_runtime(str(path), {"PATH": ""})


def test_something_else_is_not_a_runtime(tmp_path):
    path = fake_runtime(tmp_path, "apptainer", "docker version 20")
    with pytest.raises(TykkyError, match="does not look like Apptainer or Singularity"):
        find_runtime(str(path), {"PATH": ""})


RUNTIME = Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5))


def test_version_text_joins_the_parts():
    assert RUNTIME.version_text == "1.4.5" and Runtime("singularity", "/s", (4, 1)).version_text == "4.1"


def test_exec_argv_orders_flags_overlays_binds_image_and_command():
    argv = exec_argv(RUNTIME, "/p/c.sif", ["python3", "-c", "x"], binds=["/a", "/b:/c"],
                     overlays=["/p/img.sqfs:ro", "/w"], extra_flags=["--nv"])
    assert argv == ["/usr/bin/apptainer", "-q", "exec", "--overlay", "/p/img.sqfs:ro",
                    "--overlay", "/w", "--nv", "--bind", "/a,/b:/c", "/p/c.sif", "python3", "-c", "x"]


def test_exec_argv_without_binds_has_no_bind_flag():
    assert exec_argv(RUNTIME, "c.sif", ["true"]) == ["/usr/bin/apptainer", "-q", "exec", "c.sif", "true"]
    assert bind_argument([]) == []


@pytest.mark.parametrize(("setting", "choice", "flags"), [
    ("nv", "nv", ["--nv"]), ("rocm", "rocm", ["--rocm"]), ("none", "", []), ("", "", []),
])
def test_gpu_setting_to_manifest_form_and_runtime_flags(setting, choice, flags):
    assert gpu_choice(setting) == choice and gpu_flags(setting) == flags


def test_clean_environment_drops_leaked_runtime_variables_but_keeps_the_users_choices():
    environ = {"APPTAINER_CONTAINER": "/c.sif", "SINGULARITY_NAME": "c", "APPTAINERENV_X": "1",
               "SINGULARITY_BIND": "/b", "APPTAINER_CACHEDIR": "/cache", "SINGULARITY_TMPDIR": "/t",
               "APPTAINER_NV": "1", "SINGULARITY_ROCM": "1", "APPTAINER_NVCCLI": "1",
               "HOME": "/home/u", "MY_APPTAINER": "kept"}
    assert clean_environment(environ) == {
        "APPTAINER_CACHEDIR": "/cache", "SINGULARITY_TMPDIR": "/t", "APPTAINER_NV": "1",
        "SINGULARITY_ROCM": "1", "APPTAINER_NVCCLI": "1", "HOME": "/home/u", "MY_APPTAINER": "kept"}
