"""Reading what probe.sh reports from inside the container, and how the probe is started."""
import json

import pytest

from tests.fake_runner import fake_runner
from tykky import log, probe
from tykky.config import Config
from tykky.container_exec import BuildContainer, template
from tykky.errors import TykkyError
from tykky.runtime import Runtime

PYTHON = {"executable": "/TYKKY/venv/bin/python", "version": "3.11", "site_packages": "/TYKKY/venv/lib"}


def lines(*entries: str) -> str:
    return "".join(entry.replace(" ", "\t", 2 if entry.startswith("ENV") else 1) + "\n" for entry in entries)


@pytest.fixture
def warnings(monkeypatch):  # type: ignore[no-untyped-def]
    said: list = []
    monkeypatch.setattr(log, "warning", said.append)
    return said


def test_everything_the_probe_reports_is_read():
    output = lines("ENV PATH /usr/local/bin:/usr/bin", "ENV LD_LIBRARY_PATH ", "SHELL /bin/bash",
                   "TARGET /TYKKY/bin/tool", "TARGET /usr/bin/env", "LIBDIR /TYKKY/lib", "LIBDIR /TYKKY/lib64",
                   "PYTHON " + json.dumps(PYTHON))
    found = probe.parse_probe(output, ["/TYKKY/bin", "/usr/bin/env"])
    assert found == probe.ProbeResult(
        environment={"PATH": "/usr/local/bin:/usr/bin", "LD_LIBRARY_PATH": ""}, shell="/bin/bash",
        targets={"tool": "/TYKKY/bin/tool", "env": "/usr/bin/env"},
        library_dirs=["/TYKKY/lib", "/TYKKY/lib64"], python=PYTHON)


def test_without_shell_or_python_lines_the_defaults_hold():
    found = probe.parse_probe(lines("ENV PATH /bin"), [])
    assert (found.shell, found.python, found.targets, found.library_dirs) == ("/bin/sh", None, {}, [])


def test_a_value_keeps_its_tabs_and_unknown_lines_are_ignored():
    output = "ENV\tNAME\ta\tb\nWARNING: something the runtime printed\n\nLIBDIR\t/x\nLIBDIR\t/x\n"
    found = probe.parse_probe(output, [])
    assert found.environment == {"NAME": "a\tb"} and found.library_dirs == ["/x"]


def test_the_first_of_two_programs_of_one_name_wins(warnings):
    output = lines("TARGET /TYKKY/bin/tool", "TARGET /TYKKY/sbin/tool", "TARGET /TYKKY/bin/tool")
    assert probe.parse_probe(output, ["/TYKKY/bin", "/TYKKY/sbin"]).targets == {"tool": "/TYKKY/bin/tool"}
    assert warnings == ["Two programs named tool: using /TYKKY/bin/tool, not /TYKKY/sbin/tool"]


@pytest.mark.parametrize("name", ["lib", "include", "_debug_exec", "_debug_shell"])
def test_reserved_names_are_not_wrapped(warnings, name):
    found = probe.parse_probe(lines(f"TARGET /TYKKY/bin/{name}", "TARGET /TYKKY/bin/tool"), ["/TYKKY/bin"])
    assert found.targets == {"tool": "/TYKKY/bin/tool"}
    assert warnings == [f"Not wrapping /TYKKY/bin/{name}: the name {name} is reserved by tykky"]


def test_missing_paths_are_named_together():
    output = lines("MISSING /opt/a", "TARGET /TYKKY/bin/tool", "MISSING /opt/b")
    with pytest.raises(TykkyError, match=r"do not exist in the container: /opt/a, /opt/b\. Give absolute"):
        probe.parse_probe(output, ["/opt/a", "/TYKKY/bin", "/opt/b"])


def test_paths_without_programs_are_an_error_naming_them_and_the_way_out():
    with pytest.raises(TykkyError, match=r"found in /TYKKY/share, /TYKKY/etc: no executable.*wrap_all: yes"):
        probe.parse_probe(lines("ENV PATH /bin", "SHELL /bin/sh"), ["/TYKKY/share", "/TYKKY/etc"])


def test_only_reserved_programs_is_nothing_to_wrap(warnings):
    with pytest.raises(TykkyError, match="Nothing to wrap"):
        probe.parse_probe(lines("TARGET /TYKKY/bin/lib"), ["/TYKKY/bin"])


def container(tmp_path, **values) -> BuildContainer:  # type: ignore[no-untyped-def]
    return BuildContainer(Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5)), tmp_path / "c.sif",
                          Config(**values), tmp_path / "tree", tmp_path)


@pytest.mark.parametrize(("wrap_all", "word"), [(False, "no"), (True, "yes")])
def test_the_probe_runs_the_script_over_the_paths_in_the_container(monkeypatch, tmp_path, wrap_all, word):
    fake = fake_runner(monkeypatch, output=lines("TARGET /TYKKY/bin/tool"))
    found = probe.probe(container(tmp_path, wrap_all=wrap_all), ["/TYKKY/bin", "/opt/x"])
    assert found.targets == {"tool": "/TYKKY/bin/tool"}
    (call,) = fake.calls
    assert call["argv"][-7:] == ["/bin/sh", "-c", template("probe.sh"), "probe", word, "/TYKKY/bin", "/opt/x"]
    assert "TYKKY_INFO_PYTHON" not in call["env"]


def test_the_probe_asks_the_python_about_itself_when_named(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch, output=lines("PYTHON " + json.dumps(PYTHON)))
    found = probe.probe(container(tmp_path), [], python="/TYKKY/venv/bin/python:/usr/bin/python3")
    assert found.python == PYTHON
    env = fake.calls[0]["env"]
    assert env["TYKKY_INFO_PYTHON"] == "/TYKKY/venv/bin/python:/usr/bin/python3"
    assert env["TYKKY_INFO_SCRIPT"] == template("python_info.py")
