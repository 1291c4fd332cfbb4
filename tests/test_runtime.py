"""Finding the container runtime and refusing one that is missing or too old."""
import pytest

from tykky.errors import TykkyError
from tykky.runtime import find_runtime, parse_version


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
